/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_probe.c - `duet probe HOST:PORT`: connect as an mTLS client and say,
 * step by step, what happened and why: TCP, the TLS parameters, the server's
 * chain as sent and its verification (verify.c, the one path), the OCSP
 * staple, the server's CertificateRequest (CA names, signature algorithms)
 * against our certificate, the server's answer (an alert read in context by
 * diagnose.c) and, for HTTP, the status and a duet proxy's refusal reason.
 * Every problem found ends with one "fix:" line.  Exit 0 when the mTLS
 * connection works, 1 when it does not, 2 on a usage error or unreadable
 * input.  docs/cli/probe.md is the contract, JSON keys included.
 *
 * The probe verifies nothing during the handshake (SSL_VERIFY_NONE): it must
 * see the whole exchange to explain it, and it sends no data but one GET.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cli/cli.h"
#include "cli/probe.h"
#include "lib/duration.h"
#include "lib/fileio.h"
#include "lib/load.h"
#include "lib/revset.h"
#include "lib/verify.h"
#include "lib/x509util.h"

/* The groups offered, in order of preference (OpenSSL 3.0's default, without FFDHE). */
#define PROBE_GROUPS "X25519:P-256:X448:P-521:P-384"

enum {
    OPT_CERT = 256,
    OPT_KEY,
    OPT_CACERT,
    OPT_SERVER_NAME,
    OPT_CRL,
    OPT_FORMAT,
    OPT_TIMEOUT,
    OPT_NO_HTTP,
    OPT_PATH,
    OPT_PASSWORD_FILE,
    OPT_HELP
};

static const struct cli_flag flags[] = {
    {{"cert", required_argument, NULL, OPT_CERT},
     "C",
     "our client certificate (leaf first, then its chain)"},
    {{"key", required_argument, NULL, OPT_KEY}, "K", "the key of --cert"},
    {{"password-file", required_argument, NULL, OPT_PASSWORD_FILE}, "F",
     "the passphrase of an encrypted --key (or PKCS#12), first line"},
    {{"cacert", required_argument, NULL, OPT_CACERT},
     "ROOTS",
     "trusted CAs for the server (default: the system store)"},
    {{"server-name", required_argument, NULL, OPT_SERVER_NAME},
     "N",
     "the name sent (SNI) and checked (default: HOST)"},
    {{"crl", required_argument, NULL, OPT_CRL}, "F", "a CRL for the server's chain (repeatable)"},
    {{"format", required_argument, NULL, OPT_FORMAT},
     "text|json",
     "the report as text (default) or one JSON object"},
    {{"timeout", required_argument, NULL, OPT_TIMEOUT},
     "S",
     "limit for connecting and for each answer (default 10s)"},
    {{"no-http", no_argument, NULL, OPT_NO_HTTP}, NULL, "send no HTTP request after the handshake"},
    {{"path", required_argument, NULL, OPT_PATH}, "P", "the path of the HTTP request (default /)"},
    {{"help", no_argument, NULL, OPT_HELP}, NULL, "print this help"},
};

/* The usage, with one line per option. */
static void
probe_usage(FILE *out)
{
    cli_flags_help(
        out,
        "usage: duet probe HOST:PORT [--cert C --key K] [--password-file F] [--cacert ROOTS]\n"
        "                  [--server-name N] [--crl F]... [--format text|json] [--timeout S]\n"
        "                  [--no-http] [--path P]\n"
        "Connects as an mTLS client and explains each step, with a fix for each problem.\n"
        "exit 0 the mTLS connection works, 1 it does not, 2 usage error or unreadable input\n",
        flags, CLI_NFLAGS(flags));
}

/* Milliseconds of the monotonic clock, for deadlines. */
static int64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- options and files ---------------------------------------------------------------- */

/* Split HOST:PORT, [V6]:PORT or https://HOST[:PORT][/]; false when it is none of these. */
static bool
split_target(const char *arg, struct probe *p)
{
    const char *s = arg, *colon;
    size_t hl;
    char *end = NULL;
    long port;
    bool https = strncmp(s, "https://", 8) == 0;

    if (https) {
        /* https://HOST and https://HOST/ are port 443 (RFC 9110 4.2.2) */
        size_t l = strlen(s + 8);
        bool slash = l > 0 && s[8 + l - 1] == '/';
        const char *last = strrchr(s + 8, ':');
        const char *rb = strrchr(s + 8, ']');
        if ((last == NULL || (rb != NULL && rb > last)) && l - slash > 0 &&
            l - slash < sizeof(p->host) && memchr(s + 8, '/', l - slash) == NULL) {
            const char *h = s + 8;
            size_t hl0 = l - slash;
            if (h[0] == '[' && hl0 >= 2 && h[hl0 - 1] == ']') {
                h++;
                hl0 -= 2;
            }
            if (hl0 == 0)
                return false;
            memcpy(p->host, h, hl0);
            p->host[hl0] = '\0';
            snprintf(p->port, sizeof(p->port), "443");
            return true;
        }
        s += 8;
    }
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return false;
        hl = (size_t)(rb - s - 1);
        s++;
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return false;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= sizeof(p->host))
        return false;
    memcpy(p->host, s, hl);
    p->host[hl] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || (*end != '\0' && strcmp(end, "/") != 0) || port < 1 || port > 65535)
        return false;
    snprintf(p->port, sizeof(p->port), "%ld", port);
    return true;
}

/* split_target(), then p->target for messages. */
static bool
parse_target(const char *arg, struct probe *p)
{
    if (!split_target(arg, p))
        return false;
    snprintf(p->target, sizeof(p->target), strchr(p->host, ':') ? "[%s]:%s" : "%s:%s", p->host,
             p->port);
    return true;
}

/*
 * Load --cert, --key (decrypted with `password` when not NULL), --cacert and
 * the CRLs; any problem is a usage error (exit 2).
 */
static int
load_files(struct probe *p, const char **crls, int ncrls, const char *password,
           struct duet_err *err)
{
    if (p->cert_file != NULL) {
        if (load_certs_file(p->cert_file, password, &p->our_chain, err) != 0 ||
            load_key_file(p->key_file, password, &p->our_key, err) != 0)
            return -1;
        if (X509_check_private_key(sk_X509_value(p->our_chain, 0), p->our_key) != 1) {
            ERR_clear_error();
            return err_set(err, DUET_ERR_INPUT,
                           "%s: the key does not belong to the first certificate of %s",
                           p->key_file, p->cert_file);
        }
        p->our_serial = x509u_serial(X509_get0_serialNumber(sk_X509_value(p->our_chain, 0)));
    }
    if ((p->store = X509_STORE_new()) == NULL)
        return err_nomem(err);
    if (p->cacert_file != NULL) {
        if (load_certs_file(p->cacert_file, NULL, &p->cacerts, err) != 0)
            return -1;
        for (int i = 0; i < sk_X509_num(p->cacerts); i++) {
            if (!X509_STORE_add_cert(p->store, sk_X509_value(p->cacerts, i)))
                ERR_clear_error(); /* a duplicate is harmless */
        }
    } else if (!X509_STORE_set_default_paths(p->store)) {
        ERR_clear_error();
    }
    if (ncrls > 0 && (p->revs = revset_new()) == NULL)
        return err_nomem(err);
    for (int i = 0; i < ncrls; i++) {
        if (revset_add_file(p->revs, crls[i], err) != 0)
            return -1;
    }
    return 0;
}

/* --- TCP ------------------------------------------------------------------------------- */

/* The connect error of one address as a finding; see docs/cli/probe.md for the codes. */
static void
tcp_failed(struct probe *p, const char *addr, int e)
{
    char problem[512];
    const char *code = "connect_failed", *fix = "check the address and port";

    if (e == ECONNREFUSED) {
        code = "refused";
        snprintf(problem, sizeof(problem),
                 "connection refused by %s: nothing listens on port %s there (or a firewall "
                 "rejects the connection)",
                 addr, p->port);
        fix = "start the server, or check the port: `ss -ltn` on the server shows what listens";
    } else if (e == ETIMEDOUT) {
        code = "timed_out";
        snprintf(problem, sizeof(problem),
                 "no answer from %s within %.1f s: a firewall drops the packets, or the host is "
                 "down",
                 addr, (double)p->timeout_ms / 1000.0);
        fix = "check the address, the firewalls between us and routing (or raise --timeout)";
    } else if (e == ECONNRESET) {
        code = "reset";
        snprintf(problem, sizeof(problem), "the connection to %s was reset", addr);
        fix = "check the server's and the firewall's logs";
    } else if (e == EHOSTUNREACH || e == ENETUNREACH) {
        code = "unreachable";
        snprintf(problem, sizeof(problem), "%s is unreachable (%s): no route to it", addr,
                 strerror(e));
        fix = "check the address and the network route";
    } else {
        snprintf(problem, sizeof(problem), "connecting to %s failed: %s", addr, strerror(e));
    }
    json_object_set_new(json_object_get(p->report, "tcp"), "error", json_string(code));
    probe_finding(p, "tcp", code, true, problem, fix);
}

/* Wait for fd to become ready for `events` until the deadline: 1 ready, 0 timed out, -1. */
static int
wait_fd(struct probe *p, short events)
{
    for (;;) {
        int64_t left = p->deadline - mono_ms();
        struct pollfd pfd = {.fd = p->fd, .events = events};
        int r;
        if (left <= 0)
            return 0;
        r = poll(&pfd, 1, (int)left);
        if (r > 0)
            return 1;
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* Connect to the first address that answers; false after a finding. */
static bool
tcp_connect(struct probe *p)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
    struct addrinfo *res = NULL;
    json_t *tcp = json_object();
    char addr[300] = "";
    int last = 0, rc;
    bool ok = false;

    json_object_set_new(p->report, "tcp", tcp);
    json_object_set_new(tcp, "connected", json_false());
    rc = getaddrinfo(p->host, p->port, &hints, &res);
    if (rc != 0) {
        char problem[512];
        snprintf(problem, sizeof(problem), "%s does not resolve: %s", p->host,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        json_object_set_new(tcp, "error", json_string("dns_failure"));
        probe_finding(
            p, "tcp", "dns_failure", true, problem,
            "check the name (a typo, or a name only another network's DNS knows), or give "
            "the IP address");
        return false;
    }
    for (struct addrinfo *ai = res; ai != NULL && !ok; ai = ai->ai_next) {
        char h[256] = "?", s[16] = "?";
        int e = 0;
        socklen_t el = sizeof(e);

        (void)getnameinfo(ai->ai_addr, ai->ai_addrlen, h, sizeof(h), s, sizeof(s),
                          NI_NUMERICHOST | NI_NUMERICSERV);
        snprintf(addr, sizeof(addr), ai->ai_family == AF_INET6 ? "[%s]:%s" : "%s:%s", h, s);
        p->fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (p->fd < 0) {
            last = errno;
            continue;
        }
        p->deadline = mono_ms() + p->timeout_ms;
        if (connect(p->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            ok = true;
            break;
        }
        e = errno;
        if (e == EINPROGRESS) {
            int w = wait_fd(p, POLLOUT);
            e = w == 0 ? ETIMEDOUT : w < 0 ? errno : 0;
            if (w > 0 && getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0)
                e = errno;
        }
        if (e == 0) {
            ok = true;
            break;
        }
        last = e;
        close(p->fd);
        p->fd = -1;
    }
    freeaddrinfo(res);
    json_object_set_new(tcp, "address", json_string(addr));
    if (!ok) {
        probe_say(p, "tcp: %s", addr);
        tcp_failed(p, addr, last);
        return false;
    }
    json_object_set_new(tcp, "connected", json_true());
    probe_say(p, "tcp: connected to %s", addr);
    return true;
}

/* --- TLS callbacks ----------------------------------------------------------------------- */

/* Record the first alert the server sends (close_notify is no refusal). */
static void
info_cb(const SSL *ssl, int where, int ret)
{
    struct probe *p = SSL_get_app_data(ssl);

    if ((where & SSL_CB_ALERT) && (where & SSL_CB_READ) && (ret & 0xff) != SSL_AD_CLOSE_NOTIFY &&
        p->alert < 0)
        p->alert = ret & 0xff;
}

/*
 * Called when the server's CertificateRequest arrives (SSL_CTX_set_cert_cb
 * runs on the client at that point, and unlike the client_cert_cb it may set
 * a chain): record the CA names and signature algorithms, then present our
 * certificate and chain, if any.
 */
static int
cert_cb(SSL *ssl, void *arg)
{
    struct probe *p = arg;
    const STACK_OF(X509_NAME) *names = SSL_get0_peer_CA_list(ssl);
    int n = SSL_get_sigalgs(ssl, -1, NULL, NULL, NULL, NULL, NULL);

    p->requested = true;
    if (names == NULL)
        names = SSL_get_client_CA_list(ssl);
    if (names != NULL && p->ca_names == NULL)
        p->ca_names = sk_X509_NAME_deep_copy(names, X509_NAME_dup, X509_NAME_free);
    for (int i = 0; i < n && i < PROBE_MAX_SIGALGS; i++) {
        unsigned char rsig = 0, rhash = 0;
        char buf[16];
        (void)SSL_get_sigalgs(ssl, i, NULL, NULL, NULL, &rsig, &rhash);
        p->sigalg_codes[p->nsigalgs] = ((unsigned)rhash << 8) | rsig;
        json_array_append_new(p->sigalgs, json_string(diag_sigalg_name(p->sigalg_codes[p->nsigalgs],
                                                                       buf, sizeof(buf))));
        p->nsigalgs++;
    }
    if (p->our_chain != NULL) {
        STACK_OF(X509) *extra = sk_X509_dup(p->our_chain);
        if (extra != NULL)
            (void)sk_X509_shift(extra);
        if (SSL_use_cert_and_key(ssl, sk_X509_value(p->our_chain, 0), p->our_key, extra, 1))
            p->sent = true;
        sk_X509_free(extra);
        ERR_clear_error();
    }
    return 1;
}

/* The last OpenSSL reason, or a fallback. */
static const char *
ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    return r != NULL ? r : "unknown error";
}

/*
 * Drive an SSL call to completion within the deadline.  Returns 1 done, 0 when
 * the peer closed cleanly, -1 on error (errno or the OpenSSL queue says why),
 * -2 on timeout.
 */
static int
ssl_drive(struct probe *p, SSL *ssl, int (*fn)(SSL *, void *, int), void *buf, int n, int *got)
{
    for (;;) {
        int r = fn(ssl, buf, n);
        int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, r);
        int w;

        if (e == SSL_ERROR_NONE) {
            if (got != NULL)
                *got = r;
            return 1;
        }
        if (e == SSL_ERROR_ZERO_RETURN)
            return 0;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            w = wait_fd(p, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);
            if (w == 0)
                return -2;
            if (w < 0)
                return -1;
            continue;
        }
        if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0)
            return 0; /* EOF without close_notify */
        return -1;
    }
}

static int
connect_fn(SSL *ssl, void *buf, int n)
{
    (void)buf;
    (void)n;
    return SSL_connect(ssl);
}

static int
read_fn(SSL *ssl, void *buf, int n)
{
    return SSL_read(ssl, buf, n);
}

static int
write_fn(SSL *ssl, void *buf, int n)
{
    return SSL_write(ssl, buf, n);
}

/* A handshake that did not finish and brought no alert: timeout, close, reset, not TLS. */
static void
report_handshake_error(struct probe *p, int r, int e, json_t *ans)
{
    char problem[512];

    if (r == -2) {
        snprintf(problem, sizeof(problem),
                 "the server accepted the TCP connection but sent no TLS answer within %.1f s: "
                 "it may expect plaintext first, or be stuck",
                 (double)p->timeout_ms / 1000.0);
        json_object_set_new(ans, "result", json_string("timed_out"));
        probe_finding(
            p, "tls", "tls_timed_out", true, problem,
            "check that HOST:PORT is the TLS port of the service (not a plaintext one), and "
            "the server's load and log");
    } else if (r == 0) {
        json_object_set_new(ans, "result", json_string("closed"));
        probe_finding(p, "tls", "closed", true,
                      "the server closed the connection during the handshake without an alert",
                      "check that the port speaks TLS and read the server's log (a duet proxy also "
                      "closes clients its handshake throttle holds back)");
    } else if (e == ECONNRESET) {
        json_object_set_new(ans, "result", json_string("reset"));
        probe_finding(p, "tls", "reset", true,
                      "the server reset the connection during the handshake",
                      "read the server's log; a firewall or a load balancer may also reset it");
    } else {
        unsigned long le = ERR_peek_last_error();
        bool not_tls = ERR_GET_REASON(le) == SSL_R_WRONG_VERSION_NUMBER ||
                       ERR_GET_REASON(le) == SSL_R_PACKET_LENGTH_TOO_LONG;
        snprintf(problem, sizeof(problem), "%s (%s)",
                 not_tls ? "the server answered with bytes that are not TLS (plain HTTP on "
                           "this port?)"
                         : "the handshake failed on our side",
                 e != 0 && le == 0 ? strerror(e) : ssl_reason());
        json_object_set_new(ans, "result", json_string("error"));
        probe_finding(p, "tls", not_tls ? "not_tls" : "handshake_error", true, problem,
                      not_tls
                          ? "connect to the TLS port of the service"
                          : "compare the server's TLS settings (versions, groups, ciphers) with "
                            "what was offered");
    }
    ERR_clear_error();
}

/* The TLS parameters chosen and offered. */
static void
report_tls(struct probe *p, SSL *ssl)
{
    int gid = SSL_get_negotiated_group(ssl);
    const char *group = gid != 0 ? SSL_group_to_name(ssl, gid) : NULL;
    json_t *tls = json_object_get(p->report, "tls");

    json_object_set_new(tls, "version", json_string(SSL_get_version(ssl)));
    json_object_set_new(tls, "cipher", json_string(SSL_get_cipher_name(ssl)));
    json_object_set_new(tls, "group", group != NULL ? json_string(group) : json_null());
    probe_say(p,
              "tls: %s, cipher %s, group %s (offered TLS 1.2 and 1.3; groups X25519, P-256, X448, "
              "P-521, P-384)",
              SSL_get_version(ssl), SSL_get_cipher_name(ssl), group != NULL ? group : "none");
    if (SSL_version(ssl) == TLS1_2_VERSION)
        probe_finding(p, "tls", "tls12_only", false,
                      "the server chose TLS 1.2 although we offered TLS 1.3: it does not speak TLS "
                      "1.3, so duet tunnel (TLS 1.3 only unless told) cannot reach it as it is",
                      "enable TLS 1.3 on the server (nginx: ssl_protocols TLSv1.2 TLSv1.3), or "
                      "allow TLS 1.2 on duet's side: duet tunnel --tls12 (YAML tls12: true)");
}

/* Find "\r\n\r\n" in buf[0..n); the offset after it, or 0. */
static size_t
head_end(const char *buf, size_t n)
{
    for (size_t i = 3; i < n; i++) {
        if (buf[i - 3] == '\r' && buf[i - 2] == '\n' && buf[i - 1] == '\r' && buf[i] == '\n')
            return i + 1;
    }
    return 0;
}

/*
 * The server ended the connection right after the handshake, without an alert
 * and without a byte: how a duet proxy in TCP mode refuses an identity its
 * policy does not admit.
 */
static void
closed_after_handshake(struct probe *p, json_t *ans)
{
    json_object_set_new(ans, "result", json_string("closed"));
    probe_finding(p, "server_answer", "closed_after_handshake", true,
                  "the server closed the connection right after the handshake, without an "
                  "alert or an answer (a duet proxy in TCP mode does so when its policy does not "
                  "admit our identity)",
                  "read the server's log for its reason (duet proxy: the handshake line names "
                  "the rule), and ask for a rule that admits our identity");
}

/* One GET, its status line and what a refusal says; also catches a TLS 1.3 late alert. */
static void
report_http(struct probe *p, SSL *ssl, json_t *ans)
{
    char req[1024], *buf = malloc(PROBE_HTTP_MAX + 1);
    const char *name = p->server_name != NULL ? p->server_name : p->host;
    size_t n = 0, he = 0;
    int r = 1, got = 0;
    json_t *h;

    if (buf == NULL)
        return;
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: duet-probe\r\nAccept: */*\r\n"
             "Connection: close\r\n\r\n",
             p->path, strchr(name, ':') ? "[" : "", name, strchr(name, ':') ? "]" : "", p->port);
    p->deadline = mono_ms() + p->timeout_ms;
    r = ssl_drive(p, ssl, write_fn, req, (int)strlen(req), NULL);
    while (r == 1 && n < PROBE_HTTP_MAX) {
        r = ssl_drive(p, ssl, read_fn, buf + n, (int)(PROBE_HTTP_MAX - n), &got);
        if (r == 1)
            n += (size_t)got;
        if ((he = head_end(buf, n)) != 0) {
            /* enough of the body for a refusal's reason: until close or a short wait */
            p->deadline = mono_ms() + (p->timeout_ms < 1000 ? p->timeout_ms : 1000);
            while (r == 1 && n < PROBE_HTTP_MAX) {
                r = ssl_drive(p, ssl, read_fn, buf + n, (int)(PROBE_HTTP_MAX - n), &got);
                if (r == 1)
                    n += (size_t)got;
            }
            break;
        }
    }
    buf[n] = '\0';
    if (p->alert >= 0) {
        probe_report_alert(p, ans);
        goto out;
    }
    if (he == 0) {
        json_object_set_new(ans, "result", json_string("accepted"));
        probe_say(p, "server answer: handshake accepted");
        json_object_set_new(p->report, "http", json_pack("{s:n}", "status"));
        if (n >= PROBE_HTTP_MAX)
            probe_finding(p, "http", "http_head_too_large", false,
                          "the server's HTTP answer has no end of head within 16 KiB",
                          "check what the service answers (curl -v), or use --no-http");
        else if (n == 0 && r != -2)
            closed_after_handshake(p, ans);
        else
            probe_finding(p, "http", r == -2 ? "http_timed_out" : "http_no_answer", false,
                          r == -2 ? "no HTTP answer within the timeout (the service may not "
                                    "speak HTTP)"
                                  : "the server closed the connection without an HTTP answer",
                          "use --no-http for a service that is not HTTP");
        goto out;
    }
    {
        char *eol = strstr(buf, "\r\n");
        int status = 0;
        size_t ll = eol != NULL ? (size_t)(eol - buf) : 0;
        char line[256];

        snprintf(line, sizeof(line), "%.*s", (int)(ll < sizeof(line) ? ll : sizeof(line) - 1), buf);
        if (sscanf(line, "HTTP/1.%*1d %3d", &status) != 1)
            status = 0;
        json_object_set_new(ans, "result", json_string("accepted"));
        probe_say(p, "server answer: handshake accepted");
        h = json_pack("{s:i,s:o}", "status", status, "status_line", cli_json_text(line));
        json_object_set_new(p->report, "http", h);
        probe_say(p, "http: GET %s -> %s", p->path, line);
        probe_report_http_refusal(p, status, buf + he, n - he, h);
    }
out:
    free(buf);
}

/* Without HTTP: wait a moment for a late alert (TLS 1.3 refuses client certificates then). */
static void
report_quiet(struct probe *p, SSL *ssl, json_t *ans)
{
    char buf[512];
    int got = 0;

    size_t total = 0;
    int r;

    p->deadline = mono_ms() + (p->timeout_ms < 2000 ? p->timeout_ms : 2000);
    while ((r = ssl_drive(p, ssl, read_fn, buf, sizeof(buf), &got)) == 1)
        total += (size_t)got;
    if (p->alert >= 0) {
        probe_report_alert(p, ans);
        return;
    }
    json_object_set_new(ans, "result", json_string("accepted"));
    probe_say(p, "server answer: handshake accepted, no alert");
    if (r != -2 && total == 0)
        closed_after_handshake(p, ans);
}

/* The TLS part: handshake, everything reported in order. */
static void
probe_tls(struct probe *p)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    json_t *tls = json_object(), *ans = json_object();
    const char *sni = p->server_name != NULL ? p->server_name : p->host;
    STACK_OF(X509) * chain;
    int r;

    json_object_set_new(p->report, "tls", tls);
    json_object_set_new(tls, "offered",
                        json_pack("{s:[s,s],s:[s,s,s,s,s]}", "versions", "TLSv1.2", "TLSv1.3",
                                  "groups", "x25519", "secp256r1", "x448", "secp521r1",
                                  "secp384r1"));
    json_object_set_new(p->report, "server_answer", ans);
    if (ctx != NULL) {
        /* before SSL_new(), which copies the context's certificate settings */
        (void)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        /* named, so that the report says exactly what was offered */
        (void)SSL_CTX_set1_groups_list(ctx, PROBE_GROUPS);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_cert_cb(ctx, cert_cb, p);
        SSL_CTX_set_info_callback(ctx, info_cb);
    }
    if (ctx == NULL || (ssl = SSL_new(ctx)) == NULL) {
        json_object_set_new(ans, "result", json_string("error"));
        probe_finding(p, "tls", "internal", true, "out of memory", "retry");
        goto out;
    }
    SSL_set_app_data(ssl, p);
    (void)SSL_set_tlsext_status_type(ssl, TLSEXT_STATUSTYPE_ocsp);
    {
        /* SNI carries host names only (RFC 6066 3), never an IP literal. */
        struct in6_addr a6;
        if (inet_pton(AF_INET, sni, &a6) != 1 && inet_pton(AF_INET6, sni, &a6) != 1)
            (void)SSL_set_tlsext_host_name(ssl, sni);
    }
    SSL_set_fd(ssl, p->fd);
    p->deadline = mono_ms() + p->timeout_ms;
    errno = 0;
    r = ssl_drive(p, ssl, connect_fn, NULL, 0, NULL);
    json_object_set_new(tls, "handshake", json_boolean(r == 1));
    chain = SSL_get_peer_cert_chain(ssl);
    if (r != 1) {
        int e = errno;
        probe_say(p, "tls: the handshake did not complete");
        if (chain != NULL && sk_X509_num(chain) > 0)
            probe_report_chain(p, chain);
        if (p->requested) /* else the handshake ended before any CertificateRequest */
            probe_report_request(p);
        if (p->alert >= 0)
            probe_report_alert(p, ans);
        else
            report_handshake_error(p, r, e, ans);
        goto out;
    }
    report_tls(p, ssl);
    if (chain != NULL && sk_X509_num(chain) > 0) {
        probe_report_chain(p, chain);
        probe_report_verification(p, chain);
        probe_report_staple(p, ssl, chain);
    }
    probe_report_request(p);
    if (p->no_http)
        report_quiet(p, ssl, ans);
    else
        report_http(p, ssl, ans);
out:
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
}

/* --- a live endpoint's chain, for `duet cert inspect` and `duet cert verify` ----------- */

/* Whether an argument names an endpoint rather than a file; see cli.h. */
bool
cli_is_endpoint(const char *arg)
{
    struct probe pr;

    if (strncmp(arg, "https://", 8) == 0)
        return true;
    if (access(arg, F_OK) == 0)
        return false; /* a file of that name wins */
    return parse_target(arg, &pr);
}

/* Connect, complete a handshake without verifying, keep the chain; see cli.h. */
int
cli_fetch_chain(const char *target, int64_t timeout_ms, STACK_OF(X509) * *chain, char **host,
                struct duet_err *err)
{
    struct probe pr = {.fd = -1, .alert = -1, .timeout_ms = timeout_ms, .json = true};
    struct probe *p = &pr;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    STACK_OF(X509) * got;
    struct in6_addr a6;
    int r, rc = -1;

    *chain = NULL;
    *host = NULL;
    if (!parse_target(target, p))
        return err_set(err, DUET_ERR_INPUT,
                       "\"%s\": expected HOST:PORT, [IPV6]:PORT or https://HOST[:PORT]", target);
    p->report = json_object();
    p->findings = json_array();
    if (p->report == NULL || p->findings == NULL) {
        err_nomem(err);
        goto out;
    }
    if (!tcp_connect(p)) {
        json_t *f = json_array_get(p->findings, 0);
        err_set(err, DUET_ERR_INPUT, "%s: %s", p->target,
                f != NULL ? json_string_value(json_object_get(f, "problem")) : "no connection");
        goto out;
    }
    if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
        err_nomem(err);
        goto out;
    }
    (void)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* the caller shows or verifies the chain */
    SSL_CTX_set_info_callback(ctx, info_cb);
    if ((ssl = SSL_new(ctx)) == NULL) {
        err_nomem(err);
        goto out;
    }
    SSL_set_app_data(ssl, p);
    if (inet_pton(AF_INET, p->host, &a6) != 1 && inet_pton(AF_INET6, p->host, &a6) != 1)
        (void)SSL_set_tlsext_host_name(ssl, p->host);
    SSL_set_fd(ssl, p->fd);
    p->deadline = mono_ms() + p->timeout_ms;
    errno = 0;
    r = ssl_drive(p, ssl, connect_fn, NULL, 0, NULL);
    got = SSL_get_peer_cert_chain(ssl);
    if (got == NULL || sk_X509_num(got) == 0) {
        if (p->alert >= 0)
            err_set(err, DUET_ERR_INPUT, "%s: the server ended the handshake with the alert %s",
                    p->target, diag_alert_name(p->alert));
        else if (r == -2)
            err_set(err, DUET_ERR_INPUT, "%s: no TLS answer within %.1f s", p->target,
                    (double)p->timeout_ms / 1000.0);
        else
            err_set(err, DUET_ERR_INPUT,
                    "%s: the TLS handshake failed before the server "
                    "sent its certificate (%s)",
                    p->target, ssl_reason());
        goto out;
    }
    /* A server that refuses us after its Certificate still showed its chain. */
    if ((*chain = X509_chain_up_ref(got)) == NULL || (*host = strdup(p->host)) == NULL) {
        OSSL_STACK_OF_X509_free(*chain);
        *chain = NULL;
        err_nomem(err);
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (p->fd >= 0)
        close(p->fd);
    json_decref(p->findings);
    json_decref(p->report);
    return rc;
}

/* --- the command ------------------------------------------------------------------------- */

/* `duet probe`; see the top of the file. */
int
cmd_probe(int argc, char **argv)
{
    struct option opts[CLI_NFLAGS(flags) + 1];
    struct probe pr = {.fd = -1, .alert = -1, .timeout_ms = 10000, .path = "/"};
    struct probe *p = &pr;
    const char **crls = calloc((size_t)argc + 1, sizeof(char *));
    char *password = NULL;
    struct duet_err err;
    int ncrls = 0, rc = EXIT_USAGE, c;

    err_clear(&err);
    if (crls == NULL) {
        fprintf(stderr, "duet probe: out of memory\n");
        goto out;
    }
    cli_flags_longopts(flags, CLI_NFLAGS(flags), opts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case OPT_CERT:
            p->cert_file = optarg;
            break;
        case OPT_KEY:
            p->key_file = optarg;
            break;
        case OPT_CACERT:
            p->cacert_file = optarg;
            break;
        case OPT_SERVER_NAME:
            if (!verify_name_valid(optarg)) {
                fprintf(stderr, "duet probe: --server-name \"");
                cli_put_text(stderr, optarg);
                fprintf(stderr, "\": expected a DNS name or an IP address\n");
                goto out;
            }
            p->server_name = optarg;
            break;
        case OPT_CRL:
            crls[ncrls++] = optarg;
            break;
        case OPT_FORMAT:
            if (!cli_format("duet probe", optarg, &p->json))
                goto out;
            break;
        case OPT_TIMEOUT:
            if (duration_parse_ms(optarg, 1, 600000, &p->timeout_ms, &err) != 0) {
                fprintf(stderr, "duet probe: --timeout: ");
                cli_put_text(stderr, err.msg);
                fprintf(stderr, "\n");
                goto out;
            }
            break;
        case OPT_NO_HTTP:
            p->no_http = true;
            break;
        case OPT_PATH:
            if (optarg[0] != '/' || strpbrk(optarg, " \r\n\t") != NULL || strlen(optarg) > 512) {
                fprintf(stderr, "duet probe: --path: expected an absolute path such as "
                                "/healthz, without spaces, at most 512 bytes\n");
                goto out;
            }
            p->path = optarg;
            break;
        case OPT_PASSWORD_FILE:
            fileio_free_secret(password);
            password = NULL;
            if (fileio_read_secret(optarg, &password, &err) != 0) {
                fprintf(stderr, "duet probe: --password-file: ");
                cli_put_text(stderr, err.msg);
                fprintf(stderr, "\n");
                goto out;
            }
            break;
        case OPT_HELP:
            probe_usage(stdout);
            rc = EXIT_OK;
            goto out;
        default: /* ':' too */
            cli_bad_option("duet probe", c, argv);
            probe_usage(stderr);
            goto out;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, optind >= argc ? "duet probe: no HOST:PORT was given\n"
                                       : "duet probe: one HOST:PORT is probed at a time\n");
        probe_usage(stderr);
        goto out;
    }
    if (!parse_target(argv[optind], p)) {
        fprintf(stderr, "duet probe: \"");
        cli_put_text(stderr, argv[optind]);
        fprintf(stderr, "\": expected HOST:PORT, [IPV6]:PORT or https://HOST[:PORT]\n");
        goto out;
    }
    if ((p->cert_file == NULL) != (p->key_file == NULL)) {
        fprintf(stderr, "duet probe: --cert and --key go together\n");
        goto out;
    }
    if (load_files(p, crls, ncrls, password, &err) != 0) {
        fprintf(stderr, "duet probe: ");
        cli_put_text(stderr, err.msg);
        if (password == NULL && strstr(err.msg, "a passphrase is needed") != NULL)
            fprintf(stderr, " (give it with --password-file F)");
        fprintf(stderr, "\n");
        goto out;
    }
    p->now = (int64_t)time(NULL);
    p->report = json_object();
    p->findings = json_array();
    p->sigalgs = json_array();
    if (p->report == NULL || p->findings == NULL || p->sigalgs == NULL) {
        fprintf(stderr, "duet probe: out of memory\n");
        goto out;
    }
    json_object_set_new(p->report, "target", json_string(p->target));
    probe_say(p, "duet probe %s", p->target);
    if (tcp_connect(p))
        probe_tls(p);
    json_object_set_new(p->report, "ok", json_boolean(!p->failed));
    json_object_set(p->report, "findings", p->findings);
    if (p->json) {
        json_dumpf(p->report, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        fputc('\n', stdout);
    } else {
        probe_say(p, "result: %s",
                  p->failed ? "the mTLS connection does NOT work" : "the mTLS connection works");
    }
    rc = p->failed ? EXIT_INVALID : EXIT_OK;
out:
    if (p->fd >= 0)
        close(p->fd);
    free(crls);
    fileio_free_secret(password);
    free(p->our_serial);
    OSSL_STACK_OF_X509_free(p->our_chain);
    OSSL_STACK_OF_X509_free(p->cacerts);
    EVP_PKEY_free(p->our_key);
    X509_STORE_free(p->store);
    revset_free(p->revs);
    sk_X509_NAME_pop_free(p->ca_names, X509_NAME_free);
    json_decref(p->sigalgs);
    json_decref(p->findings);
    json_decref(p->report);
    return rc;
}
