/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conns_test.c - unit tests of the connection count of `duet ca serve`
 * (src/caserver/conns.c): a plain evhttp on 127.0.0.1 with a cap of two,
 * driven one loop turn at a time (the third connection waits in the
 * backlog until one closes, answered and kept-alive connections count
 * once), a TLS bufferevent uncounted when its SSL is freed, a plain one
 * freed before answering, and the pause timer freed on stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "caserver/caserver_int.h"

struct world {
    struct caserver_opts o;
    struct casrv s;
    struct evhttp *h;
    struct sockaddr_in addr;
};

/* The plain listener's bufferevents, as server.c makes them. */
static struct bufferevent *
bev_cb(struct event_base *base, void *arg)
{
    return caserver_conn_counted(arg, bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE));
}

/* Every request: 200 "ok". */
static void
gen_cb(struct evhttp_request *req, void *arg)
{
    struct evbuffer *b = evbuffer_new();

    (void)arg;
    evbuffer_add(b, "ok", 2);
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

/* A few turns of the loop, with time for the kernel to pass bytes along. */
static void
turn(struct world *w)
{
    for (int i = 0; i < 5; i++) {
        event_base_loop(w->s.base, EVLOOP_NONBLOCK);
        usleep(5000);
    }
}

static int
setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    struct duet_err err = {.kind = DUET_ERR_NONE};
    struct evconnlistener *lev;
    socklen_t len = sizeof(w->addr);

    w->o.max_connections = 2;
    w->s.o = &w->o;
    w->s.base = event_base_new();
    assert_non_null(w->s.base);
    assert_int_equal(caserver_conns_init(&w->s, &err), 0);
    w->addr.sin_family = AF_INET;
    w->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lev = evconnlistener_new_bind(w->s.base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE, 16,
                                  (struct sockaddr *)&w->addr, sizeof(w->addr));
    assert_non_null(lev);
    assert_int_equal(getsockname(evconnlistener_get_fd(lev), (struct sockaddr *)&w->addr, &len), 0);
    w->h = evhttp_new(w->s.base);
    assert_non_null(evhttp_bind_listener(w->h, lev));
    caserver_conns_listen(&w->s.lst[1], lev);
    evhttp_set_bevcb(w->h, bev_cb, &w->s.lst[1]);
    evhttp_set_gencb(w->h, gen_cb, NULL);
    *state = w;
    return 0;
}

static int
teardown(void **state)
{
    struct world *w = *state;

    caserver_conns_stop(&w->s);
    assert_null(w->s.accept_backoff);
    evhttp_free(w->h);
    event_base_free(w->s.base);
    caserver_metrics_clear();
    free(w);
    return 0;
}

static int
client(const struct world *w)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (const struct sockaddr *)&w->addr, sizeof(w->addr)), 0);
    return fd;
}

/* Ask for "/" on fd and read the answer's status line. */
static void
ask(struct world *w, int fd)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    char buf[256];
    ssize_t n;

    assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
    turn(w);
    n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    assert_true(n > 12);
    buf[n] = '\0';
    assert_memory_equal(buf, "HTTP/1.1 200", 12);
}

static void
test_cap_holds_the_third_until_one_closes(void **state)
{
    struct world *w = *state;
    struct caserver_listener *l = &w->s.lst[1];
    int a = client(w), b = client(w), c;

    turn(w);
    assert_int_equal(l->open, 2);
    assert_true(l->at_cap);
    c = client(w); /* the kernel completes it; the server does not take it */
    turn(w);
    assert_int_equal(l->open, 2);
    assert_int_equal(caserver_conns_waiting(l), 1);
    /* An answered, kept-alive connection still counts once. */
    ask(w, a);
    ask(w, a);
    assert_int_equal(l->open, 2);
    close(b);
    turn(w);
    assert_int_equal(l->open, 2); /* c taken in b's place */
    assert_int_equal(caserver_conns_waiting(l), 0);
    ask(w, c);
    close(a);
    close(c);
    turn(w);
    assert_int_equal(l->open, 0);
    assert_false(l->at_cap);
}

static void
test_tls_connection_uncounted_when_its_ssl_is_freed(void **state)
{
    struct world *w = *state;
    struct caserver_listener *l = &w->s.lst[0];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL *ssl = SSL_new(ctx);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        w->s.base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);

    assert_non_null(bev);
    assert_ptr_equal(caserver_conn_counted(l, bev), bev);
    assert_int_equal(l->open, 1);
    assert_false(l->at_cap); /* no socket to stop: lst[0] does not listen here */
    bufferevent_free(bev);
    turn(w);
    assert_int_equal(l->open, 0);
    SSL_CTX_free(ctx);
}

static void
test_plain_bufferevent_freed_before_answering_is_uncounted(void **state)
{
    struct world *w = *state;
    struct caserver_listener *l = &w->s.lst[0];
    struct bufferevent *bev = bufferevent_socket_new(w->s.base, -1, BEV_OPT_CLOSE_ON_FREE);

    assert_ptr_equal(caserver_conn_counted(l, bev), bev);
    assert_int_equal(l->open, 1);
    bufferevent_free(bev);
    turn(w);
    assert_int_equal(l->open, 0);
    assert_null(caserver_conn_counted(l, NULL));
    assert_int_equal(l->open, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cap_holds_the_third_until_one_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_connection_uncounted_when_its_ssl_is_freed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_plain_bufferevent_freed_before_answering_is_uncounted,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
