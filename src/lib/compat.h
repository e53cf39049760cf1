/* SPDX-License-Identifier: Apache-2.0 */
/*
 * compat.h - what later OpenSSL releases provide and Debian 12's OpenSSL 3.0
 * lacks: the X509 stack free helper and a typed stack of X509_REQ.
 */
#ifndef DUET_LIB_COMPAT_H
#define DUET_LIB_COMPAT_H

#include <openssl/opensslv.h>
#include <openssl/safestack.h>
#include <openssl/x509.h>

#if OPENSSL_VERSION_NUMBER < 0x30200000L
#define OSSL_STACK_OF_X509_free(s) sk_X509_pop_free((s), X509_free)
#endif

#ifndef sk_X509_REQ_num
DEFINE_STACK_OF(X509_REQ)
#endif

#endif
