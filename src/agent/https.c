/* SPDX-License-Identifier: Apache-2.0 */
/*
 * https.c - the agent's HTTPS client: one blocking HTTP/1.1 request per TLS
 * connection, with timeouts.  The agent is a single-purpose daemon that talks
 * to its CA a few times a day, so a blocking client in one thread is simpler
 * than an event loop and costs nothing.  Answers are read to the end of the
 * connection (`Connection: close`), bounded by AGENT_MAX_BODY, and framed by
 * Content-Length or chunked transfer coding (RFC 9112 section 7.1).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "agent/agent.h"
#include "lib/tls.h"

void
agent_resp_clear(struct agent_resp *r)
{
    if (r == NULL)
        return;
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* Connect to one of the host's addresses within timeout seconds; the socket or -1. */
static int
connect_host(const struct agent_url *u, int timeout, struct duet_err *err)
{
    struct addrinfo hints, *res = NULL;
    int fd = -1, rc, last = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(u->host, u->port, &hints, &res)) != 0) {
        err_set(err, DUET_ERR_INPUT, "%s: cannot resolve %s: %s", u->text, u->host,
                gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        struct pollfd pfd;
        int flags, soerr = 0;
        socklen_t sl = sizeof(soerr);

        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        flags = fcntl(fd, F_GETFL);
        (void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            last = errno;
            goto next;
        }
        pfd.fd = fd;
        pfd.events = POLLOUT;
        rc = poll(&pfd, 1, timeout * 1000);
        if (rc <= 0) {
            last = rc == 0 ? ETIMEDOUT : errno;
            goto next;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            last = soerr != 0 ? soerr : errno;
            goto next;
        }
        (void)fcntl(fd, F_SETFL, flags);
        {
            struct timeval tv = {.tv_sec = timeout, .tv_usec = 0};
            (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        }
        freeaddrinfo(res);
        return fd;
    next:
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    err_set(err, DUET_ERR_INPUT, "%s: cannot connect: %s", u->text, strerror(last));
    return -1;
}

/* Decode a chunked body in place; returns its length or -1 when malformed. */
static long
dechunk(char *b, size_t len)
{
    size_t in = 0, out = 0;

    for (;;) {
        char *end = NULL;
        unsigned long n;
        char *crlf = memmem(b + in, len - in, "\r\n", 2);

        if (crlf == NULL)
            return -1;
        n = strtoul(b + in, &end, 16);
        if (end == b + in || n > len)
            return -1;
        in = (size_t)(crlf - b) + 2;
        if (n == 0)
            return (long)out;
        if (in + n + 2 > len)
            return -1;
        memmove(b + out, b + in, n);
        out += n;
        in += n + 2;
    }
}

/* Split a raw answer into status and body; see agent.h for the framing. */
static int
parse_answer(const struct agent_url *u, char *raw, size_t len, struct agent_resp *r,
             struct duet_err *err)
{
    char *hend = memmem(raw, len, "\r\n\r\n", 4);
    char *body;
    size_t blen;
    bool chunked = false;
    long clen = -1;

    if (hend == NULL || len < 12 || strncmp(raw, "HTTP/1.", 7) != 0)
        return err_set(err, DUET_ERR_INPUT, "%s: not an HTTP answer", u->text);
    *hend = '\0';
    r->status = atoi(raw + 9);
    if (r->status < 100 || r->status > 599)
        return err_set(err, DUET_ERR_INPUT, "%s: bad HTTP status line", u->text);
    for (char *line = strstr(raw, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
        char *h = line + 2;
        if (strncasecmp(h, "content-length:", 15) == 0)
            clen = atol(h + 15);
        else if (strncasecmp(h, "transfer-encoding:", 18) == 0 && strcasestr(h, "chunked") != NULL)
            chunked = true;
    }
    body = hend + 4;
    blen = len - (size_t)(body - raw);
    if (chunked) {
        long n = dechunk(body, blen);
        if (n < 0)
            return err_set(err, DUET_ERR_INPUT, "%s: malformed chunked answer", u->text);
        blen = (size_t)n;
    } else if (clen >= 0) {
        if ((size_t)clen > blen)
            return err_set(err, DUET_ERR_INPUT, "%s: answer cut short (%zu of %ld bytes)", u->text,
                           blen, clen);
        blen = (size_t)clen;
    }
    if ((r->body = malloc(blen + 1)) == NULL)
        return err_nomem(err);
    memcpy(r->body, body, blen);
    r->body[blen] = '\0';
    r->len = blen;
    return 0;
}

/* One request; see agent.h. */
int
agent_https(SSL_CTX *ctx, bool verify_name, const struct agent_url *u, const char *method,
            const char *path, const char *json, int timeout, struct agent_resp *r,
            struct duet_err *err)
{
    SSL *ssl = NULL;
    int fd = -1, rc = -1;
    char *req = NULL, *raw = NULL;
    size_t rawlen = 0, rawcap = 0;
    int reqlen;
    bool ipv6 = strchr(u->host, ':') != NULL;
    char clen[96] = "";

    memset(r, 0, sizeof(*r));
    if (json != NULL)
        snprintf(clen, sizeof(clen), "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                 strlen(json));
    reqlen = asprintf(&req,
                      "%s %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: duet-agent/" DUET_VERSION
                      "\r\nAccept: application/json\r\nConnection: close\r\n%s\r\n%s",
                      method, path, ipv6 ? "[" : "", u->host, ipv6 ? "]" : "", u->port, clen,
                      json != NULL ? json : "");
    if (reqlen < 0) {
        req = NULL;
        err_nomem(err);
        goto out;
    }
    if ((fd = connect_host(u, timeout, err)) < 0)
        goto out;
    if ((ssl = SSL_new(ctx)) == NULL) {
        err_set_ssl(err, DUET_ERR_INTERNAL, "cannot make a TLS connection");
        goto out;
    }
    if (verify_name) {
        if (tls_client_set_name(ssl, u->host, err) != 0)
            goto out;
    } else if (!ipv6 && strspn(u->host, "0123456789.") != strlen(u->host)) {
        SSL_set_tlsext_host_name(ssl, u->host);
    }
    SSL_set_fd(ssl, fd);
    ERR_clear_error();
    if (SSL_connect(ssl) != 1) {
        const char *why = verify_name ? tls_verify_reason(ssl) : NULL;
        if (why != NULL)
            err_set(err, DUET_ERR_INVALID, "%s: the CA's server certificate is refused: %s",
                    u->text, why);
        else
            err_set_ssl(err, DUET_ERR_INPUT, "%s: TLS handshake failed", u->text);
        goto out;
    }
    if (SSL_write(ssl, req, reqlen) != reqlen) {
        err_set_ssl(err, DUET_ERR_INPUT, "%s: sending the request failed", u->text);
        goto out;
    }
    for (;;) {
        int n;
        if (rawcap - rawlen < 4096) {
            char *nr;
            if (rawcap >= AGENT_MAX_BODY + 16384) {
                err_set(err, DUET_ERR_INPUT, "%s: answer larger than %u bytes", u->text,
                        AGENT_MAX_BODY);
                goto out;
            }
            rawcap = rawcap == 0 ? 16384 : rawcap * 2;
            if ((nr = realloc(raw, rawcap + 1)) == NULL) {
                err_nomem(err);
                goto out;
            }
            raw = nr;
        }
        n = SSL_read(ssl, raw + rawlen, (int)(rawcap - rawlen));
        if (n > 0) {
            rawlen += (size_t)n;
            continue;
        }
        if (SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN || rawlen > 0)
            break; /* close_notify, or a peer that closes without it after a full answer */
        err_set_ssl(err, DUET_ERR_INPUT, "%s: no answer (connection closed or timed out)", u->text);
        goto out;
    }
    raw[rawlen] = '\0';
    if (parse_answer(u, raw, rawlen, r, err) != 0) {
        agent_resp_clear(r);
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    if (ssl != NULL) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    if (fd >= 0)
        close(fd);
    free(req);
    free(raw);
    return rc;
}
