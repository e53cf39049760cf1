/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pkcs11.c - the CA's issuing key in a PKCS#11 token (see pkcs11.h): the
 * RFC 7512 URI parser, the PIN, and the libp11 calls that find the key.
 *
 * Why libp11's API and not the pkcs11 ENGINE: the build refuses OpenSSL's
 * deprecated interfaces (OPENSSL_NO_DEPRECATED), which ENGINE_* is in 3.0,
 * and going through libp11 directly lets every failure be told precisely (no
 * such token, PIN refused, no such key) instead of one "cannot load key".
 */
#include "ca/pkcs11.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

/*
 * libp11.h names RSA_METHOD and EC_KEY_METHOD in prototypes duet never calls
 * (PKCS11_get_rsa_method, PKCS11_get_ec_key_method); OPENSSL_NO_DEPRECATED
 * hides their typedefs, so they are declared here as the opaque types they are.
 */
typedef struct rsa_meth_st RSA_METHOD;
typedef struct ec_key_method_st EC_KEY_METHOD;
#include <libp11.h>

#include "lib/fileio.h"

/* PKCS#11 return values libp11 leaves as the reason of its errors (pkcs11t.h). */
#define CKR_PIN_INCORRECT_ 0xA0UL
#define CKR_PIN_INVALID_ 0xA1UL
#define CKR_PIN_LEN_RANGE_ 0xA2UL
#define CKR_PIN_EXPIRED_ 0xA3UL
#define CKR_PIN_LOCKED_ 0xA4UL

#define URI_ATTRS "token, object, id, type, serial, manufacturer, model, module-path, pin-source"

struct ca_pkcs11 {
    PKCS11_CTX *ctx;
    char *module;
    PKCS11_SLOT *slots;
    unsigned int nslots;
    EVP_PKEY *key;
    EVP_PKEY *also[2]; /* ca_pkcs11_open_also()'s keys (the OCSP signer's, the root's) */
};

/* --- the URI --------------------------------------------------------------- */

bool
ca_pkcs11_is_uri(const char *text)
{
    return text != NULL && strncasecmp(text, "pkcs11:", 7) == 0;
}

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/*
 * Percent-decode [s, s+n) into a new buffer (NUL-terminated, *len without it).
 * RFC 7512 values are pchar/query characters; a raw byte outside visible
 * ASCII or a broken %XX is refused.
 */
static int
pct_decode(const char *name, const char *s, size_t n, uint8_t **out, size_t *len,
           struct duet_err *err)
{
    uint8_t *b = malloc(n + 1);
    size_t k = 0;

    *out = NULL;
    if (b == NULL)
        return err_nomem(err);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 1 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(b);
                return err_set(err, DUET_ERR_INPUT,
                               "pkcs11 URI: %s: a '%%' must start two hex digits (RFC 7512 "
                               "percent-encoding)",
                               name);
            }
            b[k++] = (uint8_t)(hi * 16 + lo);
            i += 2;
        } else if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            free(b);
            return err_set(err, DUET_ERR_INPUT,
                           "pkcs11 URI: %s: byte 0x%02x must be percent-encoded", name, c);
        } else {
            b[k++] = c;
        }
    }
    b[k] = '\0';
    *out = b;
    *len = k;
    return 0;
}

/* Decode a value meant as text: no NUL inside. */
static int
set_text(char **slot, const char *name, const char *s, size_t n, struct duet_err *err)
{
    uint8_t *v = NULL;
    size_t len = 0;

    if (*slot != NULL)
        return err_set(err, DUET_ERR_INPUT, "pkcs11 URI: %s is given twice", name);
    if (pct_decode(name, s, n, &v, &len, err) != 0)
        return -1;
    if (strlen((char *)v) != len || len == 0) {
        free(v);
        return err_set(err, DUET_ERR_INPUT, "pkcs11 URI: %s: expected a non-empty text value",
                       name);
    }
    *slot = (char *)v;
    return 0;
}

/* One attribute "name=value" from the path (query false) or the query. */
static int
uri_attr(struct ca_pkcs11_uri *u, const char *a, size_t n, bool query, struct duet_err *err)
{
    const char *eq = memchr(a, '=', n);
    char name[32];
    size_t nl;
    const char *v;
    size_t vl;

    if (eq == NULL || eq == a || (size_t)(eq - a) >= sizeof(name))
        return err_set(err, DUET_ERR_INPUT,
                       "pkcs11 URI: expected attributes as name=value separated by '%c'",
                       query ? '&' : ';');
    nl = (size_t)(eq - a);
    memcpy(name, a, nl);
    name[nl] = '\0';
    v = eq + 1;
    vl = n - nl - 1;
    if (strcmp(name, "pin-value") == 0)
        return err_set(err, DUET_ERR_INPUT,
                       "pkcs11 URI: pin-value is not accepted (the PIN would be written in "
                       "ca.yaml and shown in process lists); give the PIN in $" CA_PKCS11_PIN_ENV
                       " or a 0600 file named by pin-source=file:PATH");
    if (!query) {
        if (strcmp(name, "token") == 0)
            return set_text(&u->token, name, v, vl, err);
        if (strcmp(name, "object") == 0)
            return set_text(&u->object, name, v, vl, err);
        if (strcmp(name, "serial") == 0)
            return set_text(&u->serial, name, v, vl, err);
        if (strcmp(name, "manufacturer") == 0)
            return set_text(&u->manufacturer, name, v, vl, err);
        if (strcmp(name, "model") == 0)
            return set_text(&u->model, name, v, vl, err);
        if (strcmp(name, "id") == 0) {
            if (u->id != NULL)
                return err_set(err, DUET_ERR_INPUT, "pkcs11 URI: id is given twice");
            if (pct_decode(name, v, vl, &u->id, &u->id_len, err) != 0)
                return -1;
            if (u->id_len == 0)
                return err_set(err, DUET_ERR_INPUT, "pkcs11 URI: id: expected at least one byte");
            return 0;
        }
        if (strcmp(name, "type") == 0) {
            if (vl != 7 || strncmp(v, "private", 7) != 0)
                return err_set(err, DUET_ERR_INPUT,
                               "pkcs11 URI: type: expected private (the CA signs with a private "
                               "key)");
            return 0;
        }
    }
    /* module-path and pin-source belong in the query; accepted in the path too, as p11-kit does. */
    if (strcmp(name, "module-path") == 0)
        return set_text(&u->module_path, name, v, vl, err);
    if (strcmp(name, "pin-source") == 0)
        return set_text(&u->pin_source, name, v, vl, err);
    return err_set(err, DUET_ERR_INPUT, "pkcs11 URI: unknown attribute \"%s\"; expected " URI_ATTRS,
                   name);
}

/* Parse an RFC 7512 URI; see pkcs11.h. */
int
ca_pkcs11_uri_parse(const char *text, struct ca_pkcs11_uri *out, struct duet_err *err)
{
    struct ca_pkcs11_uri u;
    const char *p, *end, *q;

    memset(out, 0, sizeof(*out));
    memset(&u, 0, sizeof(u));
    if (!ca_pkcs11_is_uri(text))
        return err_set(err, DUET_ERR_INPUT,
                       "key URI: expected pkcs11:token=LABEL;object=LABEL (RFC 7512)");
    p = text + 7;
    q = strchr(p, '?');
    end = q != NULL ? q : p + strlen(p);
    while (p < end) {
        const char *sep = memchr(p, ';', (size_t)(end - p));
        size_t n = sep != NULL ? (size_t)(sep - p) : (size_t)(end - p);
        if (n > 0 && uri_attr(&u, p, n, false, err) != 0)
            goto err;
        p += n + (sep != NULL ? 1 : 0);
    }
    if (q != NULL) {
        p = q + 1;
        end = p + strlen(p);
        while (p < end) {
            const char *sep = memchr(p, '&', (size_t)(end - p));
            size_t n = sep != NULL ? (size_t)(sep - p) : (size_t)(end - p);
            if (n > 0 && uri_attr(&u, p, n, true, err) != 0)
                goto err;
            p += n + (sep != NULL ? 1 : 0);
        }
    }
    if (u.token == NULL && u.serial == NULL && u.manufacturer == NULL && u.model == NULL) {
        err_set(err, DUET_ERR_INPUT,
                "pkcs11 URI: no token named; expected token=LABEL (or serial=...)");
        goto err;
    }
    if (u.object == NULL && u.id == NULL) {
        err_set(err, DUET_ERR_INPUT,
                "pkcs11 URI: no key named; expected object=LABEL or id=%%XX..");
        goto err;
    }
    if (u.pin_source != NULL && strncmp(u.pin_source, "file:", 5) != 0 && u.pin_source[0] != '/') {
        err_set(
            err, DUET_ERR_INPUT,
            "pkcs11 URI: pin-source: expected file:/PATH (a file of mode 0600 holding the PIN)");
        goto err;
    }
    *out = u;
    return 0;
err:
    ca_pkcs11_uri_clear(&u);
    return -1;
}

void
ca_pkcs11_uri_clear(struct ca_pkcs11_uri *u)
{
    if (u == NULL)
        return;
    free(u->token);
    free(u->object);
    free(u->id);
    free(u->serial);
    free(u->manufacturer);
    free(u->model);
    free(u->module_path);
    free(u->pin_source);
    memset(u, 0, sizeof(*u));
}

/* The URI with pin-source=file:ABSPATH; see pkcs11.h. */
char *
ca_pkcs11_uri_with_pin_file(const char *text, const char *pin_file, struct duet_err *err)
{
    struct ca_pkcs11_uri u;
    char *abs = NULL, *out = NULL;
    size_t n;

    if (ca_pkcs11_uri_parse(text, &u, err) != 0)
        return NULL;
    if (u.pin_source != NULL) {
        err_set(err, DUET_ERR_INPUT,
                "--pin-file and the URI's pin-source both name the PIN; give one of them");
        goto out;
    }
    if ((abs = realpath(pin_file, NULL)) == NULL) {
        err_set(err, DUET_ERR_INPUT, "%s: the PIN file cannot be found", pin_file);
        goto out;
    }
    for (const char *c = abs; *c; c++) {
        if (*c <= 0x20 || *c >= 0x7f || strchr("\"\\%?&;", *c) != NULL) {
            err_set(err, DUET_ERR_INPUT,
                    "%s: the PIN file's path holds characters a URI cannot carry as is; move it",
                    abs);
            goto out;
        }
    }
    n = strlen(text) + strlen(abs) + 20;
    if ((out = malloc(n)) == NULL) {
        err_nomem(err);
        goto out;
    }
    snprintf(out, n, "%s%cpin-source=file:%s", text, strchr(text, '?') != NULL ? '&' : '?', abs);
out:
    free(abs);
    ca_pkcs11_uri_clear(&u);
    return out;
}

/* The module a URI names; see pkcs11.h. */
const char *
ca_pkcs11_module(const struct ca_pkcs11_uri *u, const char *uri, struct duet_err *err)
{
    const char *module = u->module_path != NULL ? u->module_path : getenv(CA_PKCS11_MODULE_ENV);

    if (module == NULL || module[0] == '\0') {
        err_set(err, DUET_ERR_INPUT,
                "%s: no PKCS#11 module named; add ?module-path=/usr/lib/softhsm/libsofthsm2.so "
                "(your token's module) to the URI or set $" CA_PKCS11_MODULE_ENV,
                uri);
        return NULL;
    }
    return ca_pkcs11_module_check(module, uri, err) == 0 ? module : NULL;
}

/* --- the PIN ------------------------------------------------------------- */

/* The PIN from pin-source or $DUET_PKCS11_PIN; see pkcs11.h. */
int
ca_pkcs11_read_pin(const struct ca_pkcs11_uri *u, char **pin, struct duet_err *err)
{
    const char *env = getenv(CA_PKCS11_PIN_ENV);

    *pin = NULL;
    if (u->pin_source != NULL) {
        const char *path =
            strncmp(u->pin_source, "file:", 5) == 0 ? u->pin_source + 5 : u->pin_source;
        struct stat st;
        if (stat(path, &st) != 0)
            return err_set(err, DUET_ERR_INPUT, "%s: the PIN file (pin-source) cannot be read",
                           path);
        if ((st.st_mode & 077) != 0)
            return err_set(err, DUET_ERR_INPUT,
                           "%s: the PIN file is readable by group or others (mode %03o); fix "
                           "with: chmod 600 %s",
                           path, (unsigned)(st.st_mode & 0777), path);
        return fileio_read_secret(path, pin, err);
    }
    if (env != NULL && env[0] != '\0') {
        *pin = strdup(env);
        return *pin != NULL ? 0 : err_nomem(err);
    }
    return 0;
}

/* --- the token ------------------------------------------------------------- */

static bool
field_matches(const char *want, const char *have)
{
    return want == NULL || (have != NULL && strcmp(want, have) == 0);
}

static bool
token_matches(const struct ca_pkcs11_uri *u, const PKCS11_TOKEN *t)
{
    return t != NULL && t->initialized && field_matches(u->token, t->label) &&
           field_matches(u->serial, t->serialnr) &&
           field_matches(u->manufacturer, t->manufacturer) && field_matches(u->model, t->model);
}

static bool
key_matches(const struct ca_pkcs11_uri *u, const PKCS11_KEY *k)
{
    if (u->object != NULL && (k->label == NULL || strcmp(u->object, k->label) != 0))
        return false;
    if (u->id != NULL && (k->id_len != u->id_len || memcmp(k->id, u->id, u->id_len) != 0))
        return false;
    return true;
}

/* The labels of the tokens present, for a message ("a", "b"). */
static void
list_tokens(const struct ca_pkcs11 *p, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (unsigned int i = 0; i < p->nslots && used + 1 < size; i++) {
        const PKCS11_TOKEN *t = p->slots[i].token;
        int w;
        if (t == NULL || !t->initialized || t->label == NULL)
            continue;
        w = snprintf(buf + used, size - used, "%s\"%s\"", used > 0 ? ", " : "", t->label);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    if (used == 0)
        snprintf(buf, size, "none");
}

/* Why a login failed, from the PKCS#11 code libp11 left in OpenSSL's error queue. */
static const char *
login_failure(void)
{
    unsigned long e;
    const char *why = "the token refused the login";

    while ((e = ERR_get_error()) != 0) {
        unsigned long r = (unsigned long)ERR_GET_REASON(e);
        if (r == CKR_PIN_INCORRECT_ || r == CKR_PIN_INVALID_ || r == CKR_PIN_LEN_RANGE_)
            why = "the PIN was refused (wrong PIN)";
        else if (r == CKR_PIN_LOCKED_)
            why = "the PIN is locked (too many wrong PINs; the security officer must reset it)";
        else if (r == CKR_PIN_EXPIRED_)
            why = "the PIN has expired; set a new one on the token";
    }
    return why;
}

/*
 * In the loaded module of p: find the token u names, log in to it (unless
 * this process already is), and find the one private key u names; *out is
 * a new reference the caller frees before p is closed.
 */
static int
find_key(struct ca_pkcs11 *p, const struct ca_pkcs11_uri *u, const char *uri, const char *module,
         EVP_PKEY **out, struct duet_err *err)
{
    PKCS11_SLOT *slot = NULL;
    PKCS11_KEY *keys = NULL, *found = NULL;
    unsigned int nkeys = 0;
    char *pin = NULL;
    char names[256];
    int logged_in = 0;
    int rc = -1;

    *out = NULL;
    for (unsigned int i = 0; i < p->nslots; i++) {
        if (token_matches(u, p->slots[i].token)) {
            slot = &p->slots[i];
            break;
        }
    }
    if (slot == NULL) {
        list_tokens(p, names, sizeof(names));
        err_set(err, DUET_ERR_INPUT, "%s: no such token in %s (tokens present: %s)", uri, module,
                names);
        goto out;
    }
    if (ca_pkcs11_read_pin(u, &pin, err) != 0)
        goto out;
    if (slot->token->loginRequired &&
        (PKCS11_is_logged_in(slot, 0, &logged_in) != 0 || !logged_in)) {
        if (pin == NULL) {
            err_set(err, DUET_ERR_INPUT,
                    "token \"%s\" needs its PIN: set $" CA_PKCS11_PIN_ENV
                    " or name a 0600 file with pin-source=file:PATH (duet ca init --pin-file)",
                    slot->token->label);
            goto out;
        }
        if (PKCS11_open_session(slot, 0) != 0 || PKCS11_login(slot, 0, pin) != 0) {
            err_set(err, DUET_ERR_INPUT, "token \"%s\": %s", slot->token->label, login_failure());
            goto out;
        }
    }
    if (PKCS11_enumerate_keys(slot->token, &keys, &nkeys) != 0) {
        ERR_clear_error();
        err_set(err, DUET_ERR_INPUT, "%s: the private keys of token \"%s\" cannot be listed", uri,
                slot->token->label);
        goto out;
    }
    for (unsigned int i = 0; i < nkeys; i++) {
        if (!key_matches(u, &keys[i]))
            continue;
        if (found != NULL) {
            err_set(err, DUET_ERR_INPUT,
                    "%s: more than one private key on token \"%s\" matches; name it by object "
                    "and id",
                    uri, slot->token->label);
            goto out;
        }
        found = &keys[i];
    }
    if (found == NULL) {
        err_set(err, DUET_ERR_INPUT, "%s: token \"%s\" holds no private key of that %s", uri,
                slot->token->label,
                u->object != NULL && u->id != NULL ? "object and id"
                : u->object != NULL                ? "object label"
                                                   : "id");
        goto out;
    }
    if ((*out = PKCS11_get_private_key(found)) == NULL) {
        err_set_ssl(err, DUET_ERR_INPUT, "%s: the key cannot be used through libp11", uri);
        goto out;
    }
    rc = 0;
out:
    fileio_free_secret(pin);
    return rc;
}

/* Open the key a URI names; see pkcs11.h. */
int
ca_pkcs11_open(const char *uri, struct ca_pkcs11 **out, EVP_PKEY **key, struct duet_err *err)
{
    struct ca_pkcs11_uri u;
    struct ca_pkcs11 *p = NULL;
    const char *module;
    int rc = -1;

    *out = NULL;
    *key = NULL;
    if (ca_pkcs11_uri_parse(uri, &u, err) != 0)
        return -1;
    if ((module = ca_pkcs11_module(&u, uri, err)) == NULL)
        goto out;
    if ((p = calloc(1, sizeof(*p))) == NULL || (p->module = strdup(module)) == NULL ||
        (p->ctx = PKCS11_CTX_new()) == NULL) {
        err_nomem(err);
        goto out;
    }
    if (PKCS11_CTX_load(p->ctx, module) != 0) {
        ERR_clear_error();
        PKCS11_CTX_free(p->ctx);
        p->ctx = NULL;
        err_set(err, DUET_ERR_INPUT, "%s: the PKCS#11 module %s cannot be loaded", uri, module);
        goto out;
    }
    if (PKCS11_enumerate_slots(p->ctx, &p->slots, &p->nslots) != 0) {
        ERR_clear_error();
        p->slots = NULL;
        p->nslots = 0;
        err_set(err, DUET_ERR_INPUT, "%s: the module %s lists no slots", uri, module);
        goto out;
    }
    if (find_key(p, &u, uri, module, &p->key, err) != 0)
        goto out;
    *out = p;
    *key = p->key;
    p = NULL;
    rc = 0;
out:
    ERR_clear_error();
    ca_pkcs11_uri_clear(&u);
    ca_pkcs11_close(p);
    return rc;
}

/* A second key through an open handle; see pkcs11.h. */
int
ca_pkcs11_open_also(struct ca_pkcs11 *p, const char *uri, EVP_PKEY **key, struct duet_err *err)
{
    struct ca_pkcs11_uri u;
    const char *module;
    int rc = -1;

    *key = NULL;
    if (ca_pkcs11_uri_parse(uri, &u, err) != 0)
        return -1;
    if ((module = ca_pkcs11_module(&u, uri, err)) == NULL)
        goto out;
    if (strcmp(module, p->module) != 0) {
        err_set(err, DUET_ERR_INPUT,
                "%s: the module %s is not key_uri's (%s); one process loads one PKCS#11 module",
                uri, module, p->module);
        goto out;
    }
    {
        size_t i = p->also[0] == NULL ? 0 : 1;
        if (p->also[i] != NULL) {
            err_set(err, DUET_ERR_INTERNAL, "%s: two more keys are open already", uri);
            goto out;
        }
        if (find_key(p, &u, uri, module, &p->also[i], err) != 0)
            goto out;
        *key = p->also[i];
    }
    rc = 0;
out:
    ERR_clear_error();
    ca_pkcs11_uri_clear(&u);
    return rc;
}

void
ca_pkcs11_close(struct ca_pkcs11 *p)
{
    if (p == NULL)
        return;
    EVP_PKEY_free(p->key);
    EVP_PKEY_free(p->also[0]);
    EVP_PKEY_free(p->also[1]);
    free(p->module);
    if (p->slots != NULL)
        PKCS11_release_all_slots(p->ctx, p->slots, p->nslots);
    if (p->ctx != NULL) {
        PKCS11_CTX_unload(p->ctx);
        PKCS11_CTX_free(p->ctx);
    }
    free(p);
}
