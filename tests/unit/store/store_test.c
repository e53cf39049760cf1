/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_test.c - unit tests of the certificate inventory (src/store/): the
 * SQLite backend in a temporary directory and the backend-independent
 * helpers.  Opening refuses a missing file, a file that is not SQLite and an
 * SQLite file without our schema, each naming the path; a row survives an
 * insert/get round trip field by field (the DER blob with its zero bytes,
 * NULL owner and location); a serial can be stored once; the list filters and
 * their order; revocation, renewal links, CRL numbers that persist, rollback,
 * and a second process holding the write lock.  Enrollment tokens: a round
 * trip, one redemption only (then "used" with its date and serial), expiry,
 * unknown ids, a rollback that gives the token back, and two handles racing
 * for the same token with exactly one winner.  Schema versions: an inventory
 * made by the first schema (its statements copied here) is migrated in place
 * and keeps its rows; one of version 2 gains who revoked (unknown for its
 * earlier revocations); a failed migration leaves it as it was; a newer
 * version is refused.  Negative cases assert the words of the message, not just the
 * failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "lib/err.h"
#include "store/store.h"
#include "testlib/certfactory.h"

/* A fixed reference time: 2023-11-14T22:13:20Z. */
#define T0 ((int64_t)1700000000)
#define T0_TEXT "2023-11-14T22:13:20Z"

/* Per-test state: a fresh directory and a freshly created inventory in it. */
struct fx {
    char *dir;
    char *path;
    struct store *s;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct duet_err err = {0};

    assert_non_null(f);
    f->dir = cf_tmpdir();
    f->path = cf_path(f->dir, "inventory.db");
    if (store_open_sqlite(f->path, true, &f->s, &err) != 0)
        fail_msg("store_open_sqlite: %s", err.msg);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    store_close(f->s);
    free(f->path);
    cf_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* Close and reopen the fixture's inventory (without create). */
static void
reopen(struct fx *f)
{
    struct duet_err err = {0};

    store_close(f->s);
    f->s = NULL;
    if (store_open_sqlite(f->path, false, &f->s, &err) != 0)
        fail_msg("reopen: %s", err.msg);
}

/* A DER stand-in with zero bytes inside, to catch any string handling of the blob. */
static const uint8_t blob[] = {0x30, 0x82, 0x00, 0x05, 0x00, 0xff, 0x00, 0x01, 0x02};

/* A minimal valid row; strings borrowed (never freed through this record). */
static struct store_cert
row(const char *serial, const char *owner, const char *profile, int64_t not_after)
{
    struct store_cert c = {0};

    c.serial = (char *)(uintptr_t)serial;
    c.name = (char *)(uintptr_t)"svc.example";
    c.subject = (char *)(uintptr_t)"CN=svc.example";
    c.issuer = (char *)(uintptr_t)"CN=Issuing CA,O=Test";
    c.sans = (char *)(uintptr_t)"DNS:svc.example";
    c.profile = (char *)(uintptr_t)profile;
    c.owner = (char *)(uintptr_t)owner;
    c.key_fingerprint = (char *)(uintptr_t)"AA:BB";
    c.not_before = not_after - 1000;
    c.not_after = not_after;
    c.issued_at = not_after - 1000;
    c.status = STORE_VALID;
    c.der = (uint8_t *)(uintptr_t)blob;
    c.der_len = sizeof(blob);
    return c;
}

static void
insert_ok(struct store *s, const struct store_cert *c)
{
    struct duet_err err = {0};

    if (store_insert(s, c, &err) != 0)
        fail_msg("store_insert %s: %s", c->serial, err.msg);
}

static struct store_cert *
get_ok(struct store *s, const char *serial)
{
    struct duet_err err = {0};
    struct store_cert *c = NULL;

    if (store_get(s, serial, &c, &err) != 0)
        fail_msg("store_get %s: %s", serial, err.msg);
    return c;
}

/* ---- opening ---- */

static void
test_create_then_reopen(void **state)
{
    struct fx *f = *state;
    struct stat sb;

    assert_int_equal(stat(f->path, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    /* It names owners and locations: readable by its owner only. */
    assert_int_equal(sb.st_mode & 077, 0);
    struct store_cert c = row("01", NULL, "server", T0);
    insert_ok(f->s, &c);
    reopen(f);
    struct store_cert *got = get_ok(f->s, "01");
    assert_non_null(got);
    assert_string_equal(got->serial, "01");
    store_cert_free(got);
}

/* Opening with create on an existing inventory keeps its rows and CRL number. */
static void
test_create_on_existing_keeps_data(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    uint64_t n = 0;

    struct store_cert c = row("01", NULL, "server", T0);
    insert_ok(f->s, &c);
    assert_int_equal(store_next_crl_number(f->s, &n, &err), 0);
    assert_int_equal(n, 1);
    store_close(f->s);
    f->s = NULL;
    if (store_open_sqlite(f->path, true, &f->s, &err) != 0)
        fail_msg("%s", err.msg);
    struct store_cert *got = get_ok(f->s, "01");
    assert_non_null(got);
    store_cert_free(got);
    assert_int_equal(store_next_crl_number(f->s, &n, &err), 0);
    assert_int_equal(n, 2);
}

static void
test_open_missing_without_create(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    struct store *s = (struct store *)(uintptr_t)1;
    char *missing = cf_path(f->dir, "nope.db");

    assert_int_equal(store_open_sqlite(missing, false, &s, &err), -1);
    assert_null(s);
    assert_contains(err.msg, missing);
    assert_contains(err.msg, "no inventory here");
    /* And nothing was created as a side effect. */
    assert_int_not_equal(access(missing, F_OK), 0);
    free(missing);
}

static void
test_open_create_in_missing_directory(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    struct store *s = NULL;
    char *path = cf_path(f->dir, "no/such/dir/inventory.db");

    assert_int_equal(store_open_sqlite(path, true, &s, &err), -1);
    assert_null(s);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "cannot open inventory");
    free(path);
}

static void
test_open_not_sqlite(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    struct store *s = NULL;
    char *path = cf_path(f->dir, "text.db");
    char junk[4096];

    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = "this is certainly not an SQLite database\n"[i % 41];
    cf_write_file(path, junk, sizeof(junk));
    assert_int_equal(store_open_sqlite(path, false, &s, &err), -1);
    assert_null(s);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "corrupt or not a database");
    free(path);
}

/* Run SQL on a new SQLite file, outside the store. */
static void
make_sqlite(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    char *msg = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("sqlite: %s", msg);
    sqlite3_close(db);
}

static void
test_open_foreign_sqlite(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    struct store *s = NULL;
    char *path = cf_path(f->dir, "other.db");

    make_sqlite(path, "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);"
                      "INSERT INTO notes(body) VALUES ('hello');");
    assert_int_equal(store_open_sqlite(path, false, &s, &err), -1);
    assert_null(s);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "not a duet inventory");
    free(path);
}

static void
test_open_other_schema_version(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    struct store *s = NULL;
    char *path = cf_path(f->dir, "v9.db");

    make_sqlite(path, "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                      "INSERT INTO meta VALUES ('schema_version', '9');");
    assert_int_equal(store_open_sqlite(path, false, &s, &err), -1);
    assert_null(s);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "inventory schema version 9 is newer than this duet knows (4)");
    free(path);
}

/* ---- rows ---- */

static void
test_insert_get_round_trip(void **state)
{
    struct fx *f = *state;
    struct store_cert *got = NULL;

    /* The certificate renewed, with NULL owner and location. */
    struct store_cert old = row("0A", NULL, "client", T0 + 500);
    old.location = NULL;
    insert_ok(f->s, &old);

    struct store_cert c = {
        .serial = (char *)(uintptr_t) "3F:A1:07",
        .name = (char *)(uintptr_t) "spiffe://example.org/ns/prod/sa/api",
        .subject = (char *)(uintptr_t) "CN=api,O=Example\\, Inc.",
        .issuer = (char *)(uintptr_t) "CN=Example Issuing CA,O=Example",
        .sans = (char *)(uintptr_t) "DNS:api.example.org, URI:spiffe://example.org/ns/prod/sa/api",
        .profile = (char *)(uintptr_t) "peer",
        .owner = (char *)(uintptr_t) "team-api",
        .location = (char *)(uintptr_t) "k8s/prod/api-0",
        .key_fingerprint = (char *)(uintptr_t) "01:23:45:67:89:AB:CD:EF",
        .not_before = T0 - 60,
        .not_after = T0 + 86400 * 30,
        .issued_at = T0,
        .status = STORE_VALID,
        .renews = (char *)(uintptr_t) "0A",
        .der = (uint8_t *)(uintptr_t)blob,
        .der_len = sizeof(blob),
    };
    insert_ok(f->s, &c);
    reopen(f);

    got = get_ok(f->s, "3F:A1:07");
    assert_non_null(got);
    assert_string_equal(got->serial, "3F:A1:07");
    assert_string_equal(got->name, "spiffe://example.org/ns/prod/sa/api");
    assert_string_equal(got->subject, "CN=api,O=Example\\, Inc.");
    assert_string_equal(got->issuer, "CN=Example Issuing CA,O=Example");
    assert_string_equal(got->sans,
                        "DNS:api.example.org, URI:spiffe://example.org/ns/prod/sa/api");
    assert_string_equal(got->profile, "peer");
    assert_string_equal(got->owner, "team-api");
    assert_string_equal(got->location, "k8s/prod/api-0");
    assert_string_equal(got->key_fingerprint, "01:23:45:67:89:AB:CD:EF");
    assert_int_equal(got->not_before, T0 - 60);
    assert_int_equal(got->not_after, T0 + 86400 * 30);
    assert_int_equal(got->issued_at, T0);
    assert_int_equal(got->status, STORE_VALID);
    assert_string_equal(got->renews, "0A");
    assert_null(got->renewed_by);
    assert_int_equal(got->der_len, sizeof(blob));
    assert_memory_equal(got->der, blob, sizeof(blob));
    store_cert_free(got);

    got = get_ok(f->s, "0A");
    assert_non_null(got);
    assert_null(got->owner);
    assert_null(got->location);
    assert_null(got->renews);
    assert_string_equal(got->profile, "client");
    store_cert_free(got);
}

/* Large times (past 2038) and a row inserted already revoked keep their values. */
static void
test_insert_revoked_and_64bit_times(void **state)
{
    struct fx *f = *state;
    const int64_t far = (int64_t)4102444800; /* 2100-01-01 */

    struct store_cert c = row("7F", "ops", "server", far);
    c.status = STORE_REVOKED;
    c.revoked_at = T0;
    c.reason = 4;
    insert_ok(f->s, &c);
    struct store_cert *got = get_ok(f->s, "7F");
    assert_non_null(got);
    assert_int_equal(got->not_after, far);
    assert_int_equal(got->status, STORE_REVOKED);
    assert_int_equal(got->revoked_at, T0);
    assert_int_equal(got->reason, 4);
    store_cert_free(got);
}

static void
test_get_unknown_is_null(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    struct store_cert *got = (struct store_cert *)(uintptr_t)1;

    assert_int_equal(store_get(f->s, "DE:AD", &got, &err), 0);
    assert_null(got);
}

static void
test_duplicate_serial_refused(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};

    struct store_cert first = row("12:34", "alice", "server", T0);
    insert_ok(f->s, &first);
    struct store_cert second = row("12:34", "mallory", "client", T0 + 999);
    second.name = (char *)(uintptr_t) "evil.example";
    assert_int_equal(store_insert(f->s, &second, &err), -1);
    assert_contains(err.msg, "serial 12:34 is already in the inventory");
    assert_contains(err.msg, f->path);

    struct store_cert *got = get_ok(f->s, "12:34");
    assert_non_null(got);
    assert_string_equal(got->name, "svc.example");
    assert_string_equal(got->owner, "alice");
    assert_string_equal(got->profile, "server");
    assert_int_equal(got->not_after, T0);
    store_cert_free(got);

    struct store_filter all = {.now = T0};
    struct store_cert **v = NULL;
    size_t n = 0;
    assert_int_equal(store_list(f->s, &all, &v, &n, &err), 0);
    assert_int_equal(n, 1);
    store_certs_free(v, n);
}

static void
test_serial_used(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    bool used = true;

    assert_int_equal(store_serial_used(f->s, "01:02", &used, &err), 0);
    assert_false(used);
    struct store_cert c = row("01:02", NULL, "server", T0);
    c.status = STORE_REVOKED;
    c.revoked_at = T0;
    insert_ok(f->s, &c);
    assert_int_equal(store_serial_used(f->s, "01:02", &used, &err), 0);
    assert_true(used);
    assert_int_equal(store_serial_used(f->s, "01:03", &used, &err), 0);
    assert_false(used);
}

/* ---- listing ---- */

/*
 * The list fixture, relative to now = T0:
 *   serial  not_after  status   owner  profile
 *   B1      -100       valid    bob    client   (expired)
 *   E1      -10        revoked  bob    server   (expired and revoked)
 *   X0      0          valid    NULL   server   (expires exactly now: expired)
 *   C1      +50        revoked  alice  client
 *   A1      +100       valid    alice  server
 *   A0      +100       valid    carol  server   (same not_after: ordered by serial)
 *   D1      +1000      valid    NULL   server
 * inserted in a scrambled order.
 */
static void
fill_list_fixture(struct store *s)
{
    struct store_cert c;

    c = row("D1", NULL, "server", T0 + 1000);
    insert_ok(s, &c);
    c = row("A1", "alice", "server", T0 + 100);
    insert_ok(s, &c);
    c = row("C1", "alice", "client", T0 + 50);
    c.status = STORE_REVOKED;
    c.revoked_at = T0 - 5;
    c.reason = 1;
    insert_ok(s, &c);
    c = row("B1", "bob", "client", T0 - 100);
    insert_ok(s, &c);
    c = row("X0", NULL, "server", T0);
    insert_ok(s, &c);
    c = row("E1", "bob", "server", T0 - 10);
    c.status = STORE_REVOKED;
    c.revoked_at = T0 - 20;
    c.reason = 5;
    insert_ok(s, &c);
    c = row("A0", "carol", "server", T0 + 100);
    insert_ok(s, &c);
}

/* The serials of a list, space separated, in order. */
static void
list_serials(struct store *s, const struct store_filter *flt, char *buf, size_t len)
{
    struct duet_err err = {0};
    struct store_cert **v = NULL;
    size_t n = 99;

    if (store_list(s, flt, &v, &n, &err) != 0)
        fail_msg("store_list: %s", err.msg);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            strncat(buf, " ", len - strlen(buf) - 1);
        strncat(buf, v[i]->serial, len - strlen(buf) - 1);
    }
    store_certs_free(v, n);
}

static void
test_list_filters(void **state)
{
    struct fx *f = *state;
    char got[256];
    static const struct {
        const char *what;
        struct store_filter flt;
        const char *want;
    } cases[] = {
        {"everything, by not_after then serial", {.now = T0}, "B1 E1 X0 C1 A0 A1 D1"},
        {"only_valid", {.now = T0, .only_valid = true}, "A0 A1 D1"},
        {"only_expired", {.now = T0, .only_expired = true}, "B1 X0"},
        {"only_revoked", {.now = T0, .only_revoked = true}, "E1 C1"},
        {"expiring_before (unrevoked only)", {.now = T0, .expiring_before = T0 + 500},
         "B1 X0 A0 A1"},
        {"expiring_before and only_valid",
         {.now = T0, .expiring_before = T0 + 500, .only_valid = true},
         "A0 A1"},
        {"owner", {.now = T0, .owner = "alice"}, "C1 A1"},
        {"owner with only_valid", {.now = T0, .owner = "alice", .only_valid = true}, "A1"},
        {"profile", {.now = T0, .profile = "client"}, "B1 C1"},
        {"owner and profile", {.now = T0, .owner = "bob", .profile = "server"}, "E1"},
        {"unknown owner", {.now = T0, .owner = "nobody"}, ""},
        {"a later now expires more", {.now = T0 + 100, .only_valid = true}, "D1"},
    };

    fill_list_fixture(f->s);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        list_serials(f->s, &cases[i].flt, got, sizeof(got));
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].what, got, cases[i].want);
    }
}

static void
test_list_revoked_by_revocation_time(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    struct store_cert **v = NULL;
    size_t n = 0;

    fill_list_fixture(f->s);
    /* Revoke A1 before C1's revocation time and D1 after it. */
    assert_int_equal(store_revoke(f->s, "D1", T0 + 30, 3, NULL, &err), 0);
    assert_int_equal(store_revoke(f->s, "A1", T0 - 7, 1, NULL, &err), 0);
    assert_int_equal(store_list_revoked(f->s, &v, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_string_equal(v[0]->serial, "E1"); /* T0 - 20 */
    assert_string_equal(v[1]->serial, "A1"); /* T0 - 7 */
    assert_string_equal(v[2]->serial, "C1"); /* T0 - 5 */
    assert_string_equal(v[3]->serial, "D1"); /* T0 + 30 */
    assert_int_equal(v[0]->reason, 5);
    assert_int_equal(v[3]->reason, 3);
    assert_int_equal(v[3]->revoked_at, T0 + 30);
    store_certs_free(v, n);
}

static void
test_list_revoked_empty(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    struct store_cert **v = NULL;
    size_t n = 42;

    struct store_cert c = row("01", NULL, "server", T0);
    insert_ok(f->s, &c);
    assert_int_equal(store_list_revoked(f->s, &v, &n, &err), 0);
    assert_int_equal(n, 0);
    store_certs_free(v, n);
}

/* ---- revocation ---- */

static void
test_revoke_sets_fields(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};

    struct store_cert c = row("AB:CD", "alice", "server", T0 + 1000);
    insert_ok(f->s, &c);
    assert_int_equal(store_revoke(f->s, "AB:CD", T0, 1, "uri:spiffe://corp/admin/alice", &err), 0);
    reopen(f);
    struct store_cert *got = get_ok(f->s, "AB:CD");
    assert_non_null(got);
    assert_int_equal(got->status, STORE_REVOKED);
    assert_int_equal(got->revoked_at, T0);
    assert_int_equal(got->reason, 1);
    assert_string_equal(got->revoked_by, "uri:spiffe://corp/admin/alice");
    assert_string_equal(store_status_text(got, T0), "revoked");
    /* The rest of the row is untouched. */
    assert_string_equal(got->owner, "alice");
    assert_int_equal(got->not_after, T0 + 1000);
    assert_memory_equal(got->der, blob, sizeof(blob));
    store_cert_free(got);
}

/*
 * A long-lived handle (duet ca serve answering OCSP) sees a revocation made
 * through another handle (duet cert revoke, another process) on its very next
 * lookup: the lookup it keeps prepared holds no snapshot between calls.
 */
static void
test_lookup_sees_revocation_by_another_handle(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    struct store *other = NULL;
    struct store_cert *got;

    struct store_cert c = row("AB:CD", NULL, "server", T0 + 1000);
    insert_ok(f->s, &c);
    got = get_ok(f->s, "AB:CD");
    assert_non_null(got);
    assert_int_equal(got->status, STORE_VALID);
    store_cert_free(got);
    assert_null(get_ok(f->s, "EF:01"));
    if (store_open_sqlite(f->path, false, &other, &err) != 0)
        fail_msg("second handle: %s", err.msg);
    assert_int_equal(store_revoke(other, "AB:CD", T0, 1, "cli:test", &err), 0);
    got = get_ok(f->s, "AB:CD");
    assert_non_null(got);
    assert_int_equal(got->status, STORE_REVOKED);
    assert_int_equal(got->reason, 1);
    store_cert_free(got);
    /* And a row inserted by the other handle is found at once. */
    struct store_cert d = row("EF:01", NULL, "server", T0 + 1000);
    insert_ok(other, &d);
    got = get_ok(f->s, "EF:01");
    assert_non_null(got);
    store_cert_free(got);
    store_close(other);
}

/* The generation as the handle sees it now. */
static uint64_t
gen_of(struct store *s)
{
    struct duet_err err = {0};
    uint64_t g = 0;

    if (store_generation(s, &g, &err) != 0)
        fail_msg("store_generation: %s", err.msg);
    assert_true(g != 0);
    return g;
}

/*
 * store_generation() stays put while nothing is written and reads go on, and
 * moves on at once after a write through this handle (a revocation, an
 * insert, a transaction that is rolled back), a commit through another handle
 * (a revocation, an insert, a token redeemed), and never comes back to a value
 * it had.  It is what the OCSP cache of `duet ca serve` trusts to see a `duet
 * cert revoke` run by another process.
 */
static void
test_generation_moves_on_every_write(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    struct store *other = NULL;
    struct store_cert *got;
    uint64_t g0, g1, g2, g3, g4, g5;
    uint64_t number = 0;

    struct store_cert c = row("AB:CD", NULL, "server", T0 + 1000);
    struct store_cert d = row("EF:01", NULL, "server", T0 + 1000);
    struct store_cert e = row("EF:02", NULL, "server", T0 + 1000);
    g0 = gen_of(f->s);
    assert_int_equal(gen_of(f->s), g0);
    insert_ok(f->s, &c);
    g1 = gen_of(f->s);
    assert_true(g1 != g0);
    /* reads change nothing */
    got = get_ok(f->s, "AB:CD");
    store_cert_free(got);
    assert_null(get_ok(f->s, "77:77"));
    assert_int_equal(gen_of(f->s), g1);
    /* another handle's commits */
    if (store_open_sqlite(f->path, false, &other, &err) != 0)
        fail_msg("second handle: %s", err.msg);
    assert_int_equal(gen_of(f->s), g1);
    assert_int_equal(store_revoke(other, "AB:CD", T0, 1, "cli:test", &err), 0);
    g2 = gen_of(f->s);
    assert_true(g2 != g1 && g2 != g0);
    assert_int_equal(gen_of(f->s), g2);
    insert_ok(other, &d);
    g3 = gen_of(f->s);
    assert_true(g3 != g2 && g3 != g1 && g3 != g0);
    /* a transaction of this handle, rolled back: written, so not trusted as unchanged */
    assert_int_equal(store_begin(f->s, &err), 0);
    assert_int_equal(store_next_crl_number(f->s, &number, &err), 0);
    store_rollback(f->s);
    g4 = gen_of(f->s);
    assert_true(g4 != g3);
    /* another handle's own writes, seen from it too */
    {
        uint64_t o0 = gen_of(other), o1;
        insert_ok(f->s, &e);
        assert_int_equal(gen_of(other) != o0, true);
        o1 = gen_of(other);
        assert_int_equal(gen_of(other), o1);
    }
    g5 = gen_of(f->s);
    assert_true(g5 != g4);
    assert_int_equal(gen_of(f->s), g5);
    store_close(other);
}

/*
 * An issuance's transaction (store_begin_issue) on SQLite is store_begin's:
 * the row is there only after the commit, a rollback leaves nothing, and the
 * generation moves on as for any write (PostgreSQL's, which does not move it,
 * is tested against a server by tests/integration/test_ca_postgres.py).
 */
static void
test_begin_issue_is_a_write_transaction(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    struct store_cert c = row("0A:0B", NULL, "server", T0 + 1000);
    struct store_cert *got;
    uint64_t g0 = gen_of(f->s), g1;

    assert_int_equal(store_begin_issue(f->s, &err), 0);
    insert_ok(f->s, &c);
    store_rollback(f->s);
    assert_null(get_ok(f->s, "0A:0B"));
    g1 = gen_of(f->s);
    assert_true(g1 != g0);
    assert_int_equal(store_begin_issue(f->s, &err), 0);
    insert_ok(f->s, &c);
    assert_int_equal(store_commit(f->s, &err), 0);
    got = get_ok(f->s, "0A:0B");
    assert_non_null(got);
    assert_string_equal(got->serial, "0A:0B");
    store_cert_free(got);
    assert_true(gen_of(f->s) != g1);
}

/* Run sql on the inventory through a connection of SQLite's own, as the sqlite3 shell would. */
static void
raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, db != NULL ? sqlite3_errmsg(db) : "no memory");
    sqlite3_close(db);
}

/*
 * While nothing is written, store_generation() does not ask SQLite (no
 * PRAGMA, so no read lock and no system call): the wal-index header it
 * compares is unchanged.  A commit by any connection - another duet handle,
 * or SQLite's own shell knowing nothing of duet - and this handle's own
 * writes move the generation on at the next call.
 */
static void
test_generation_skips_sqlite_while_unchanged(void **state)
{
    struct fx *f = *state;
    struct store_cert c = row("AB:CD", NULL, "server", T0 + 1000);
    uint64_t g0, g1, g2, g3, reads;

    insert_ok(f->s, &c);
    g0 = gen_of(f->s);
    g0 = gen_of(f->s);
    reads = store_generation_reads(f->s);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(gen_of(f->s), g0);
    assert_int_equal(store_generation_reads(f->s), reads);
    /* a revocation written by a client that knows nothing of duet */
    raw_exec(f->path, "UPDATE certificates SET status = 1, revoked_at = 5 WHERE serial = 'AB:CD'");
    g1 = gen_of(f->s);
    assert_true(g1 != g0);
    assert_int_equal(store_generation_reads(f->s), reads + 1);
    assert_int_equal(gen_of(f->s), g1);
    /* a commit that only checkpoints and restarts the log, then a write in the new log */
    raw_exec(f->path, "PRAGMA wal_checkpoint(TRUNCATE)");
    raw_exec(f->path, "UPDATE certificates SET reason = 4 WHERE serial = 'AB:CD'");
    g2 = gen_of(f->s);
    assert_true(g2 != g1);
    assert_int_equal(gen_of(f->s), g2);
    /* a write by another process (its own mapping of the `-shm` file), as `duet cert revoke` */
    {
        int status = -1;
        pid_t pid = fork();

        if (pid == 0) {
            sqlite3 *db = NULL;
            int rc = sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
                     sqlite3_exec(db, "UPDATE certificates SET reason = 5 WHERE serial = 'AB:CD'",
                                  NULL, NULL, NULL) == SQLITE_OK;
            sqlite3_close(db);
            _exit(rc ? 0 : 1);
        }
        assert_true(pid > 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        reads = store_generation_reads(f->s);
        g1 = gen_of(f->s);
        assert_true(g1 != g2);
        assert_int_equal(store_generation_reads(f->s), reads + 1);
        g2 = g1;
        assert_int_equal(gen_of(f->s), g2);
    }
    /* this handle's own write */
    assert_int_equal(store_revoke(f->s, "AB:CD", T0, 1, "cli:test", &(struct duet_err){0}), -1);
    {
        struct store_cert d = row("EF:01", NULL, "server", T0 + 1000);
        insert_ok(f->s, &d);
    }
    g3 = gen_of(f->s);
    assert_true(g3 != g2);
    assert_int_equal(gen_of(f->s), g3);
}

/* The inventory's `-shm` file mapped as SQLite maps it (the test's own mapping). */
static uint8_t *
map_shm(const char *path, int *fd)
{
    char shm[1024];
    void *p;

    snprintf(shm, sizeof(shm), "%s-shm", path);
    if ((*fd = open(shm, O_RDWR)) < 0)
        fail_msg("%s: cannot open", shm);
    p = mmap(NULL, 32768, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    if (p == MAP_FAILED)
        fail_msg("%s: cannot map", shm);
    return p;
}

/*
 * A wal-index header that cannot be trusted is never taken as "unchanged":
 * two copies that differ (a writer halfway through, or a scribbled file),
 * a header not built (isInit 0) or of another format version all send
 * store_generation() to SQLite, which sees the write that was made.
 */
static void
test_generation_distrusts_a_bad_header(void **state)
{
    struct fx *f = *state;
    struct store_cert c = row("AB:CD", NULL, "server", T0 + 1000);
    uint64_t g0, g1, reads;
    uint8_t *shm;
    int fd = -1;

    insert_ok(f->s, &c);
    g0 = gen_of(f->s);
    g0 = gen_of(f->s);
    shm = map_shm(f->path, &fd);
    /* the second copy differs: asked (SQLite rebuilds the header, and may say it changed) */
    reads = store_generation_reads(f->s);
    shm[48 + 8] ^= 0x55;
    (void)gen_of(f->s);
    assert_true(store_generation_reads(f->s) > reads);
    /* the header read before that PRAGMA was the bad one: asked once more, then trusted */
    (void)gen_of(f->s);
    reads = store_generation_reads(f->s);
    g0 = gen_of(f->s);
    assert_int_equal(store_generation_reads(f->s), reads);
    /* both copies not built: asked again */
    shm[12] = 0;
    shm[48 + 12] = 0;
    (void)gen_of(f->s);
    assert_true(store_generation_reads(f->s) > reads);
    (void)gen_of(f->s);
    reads = store_generation_reads(f->s);
    g0 = gen_of(f->s);
    assert_int_equal(store_generation_reads(f->s), reads);
    /* another format version in both copies: never trusted; SQLite itself refuses it */
    {
        uint32_t v = 3007001, old;
        struct duet_err err = {0};
        uint64_t g = 0;

        memcpy(&old, shm, sizeof(old));
        memcpy(shm, &v, sizeof(v));
        memcpy(shm + 48, &v, sizeof(v));
        int rc;

        reads = store_generation_reads(f->s);
        rc = store_generation(f->s, &g, &err);
        assert_true(store_generation_reads(f->s) > reads);
        assert_true(rc != 0 || g != 0);
        memcpy(shm, &old, sizeof(old));
        memcpy(shm + 48, &old, sizeof(old));
    }
    /* a write by another connection after all this is seen */
    raw_exec(f->path, "UPDATE certificates SET status = 1, revoked_at = 5 WHERE serial = 'AB:CD'");
    g1 = gen_of(f->s);
    assert_true(g1 != g0);
    munmap(shm, 32768);
    close(fd);
}

static void
test_revoke_twice_refused(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};

    struct store_cert c = row("AB:CD", NULL, "server", T0 + 1000);
    insert_ok(f->s, &c);
    assert_int_equal(store_revoke(f->s, "AB:CD", T0, 1, "cli:alice", &err), 0);
    assert_int_equal(store_revoke(f->s, "AB:CD", T0 + 3600, 4, "cli:mallory", &err), -1);
    assert_contains(err.msg, "serial AB:CD");
    assert_contains(err.msg, "already revoked");
    assert_contains(err.msg, T0_TEXT);
    assert_contains(err.msg, "keyCompromise");

    /* The first revocation stands. */
    struct store_cert *got = get_ok(f->s, "AB:CD");
    assert_non_null(got);
    assert_int_equal(got->revoked_at, T0);
    assert_int_equal(got->reason, 1);
    assert_string_equal(got->revoked_by, "cli:alice");
    store_cert_free(got);
}

static void
test_revoke_unknown_refused(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};

    struct store_cert c = row("01", NULL, "server", T0 + 1000);
    insert_ok(f->s, &c);
    assert_int_equal(store_revoke(f->s, "02", T0, 0, NULL, &err), -1);
    assert_contains(err.msg, "serial 02 is not in the inventory");
    struct store_cert *got = get_ok(f->s, "01");
    assert_int_equal(got->status, STORE_VALID);
    store_cert_free(got);
}

/* ---- renewals, CRL numbers, transactions ---- */

static void
test_link_renewal(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};

    struct store_cert old = row("10", "alice", "server", T0 + 100);
    insert_ok(f->s, &old);
    struct store_cert neu = row("20", "alice", "server", T0 + 1000);
    neu.renews = (char *)(uintptr_t) "10";
    insert_ok(f->s, &neu);
    assert_int_equal(store_link_renewal(f->s, "10", "20", &err), 0);

    struct store_cert *got = get_ok(f->s, "10");
    assert_string_equal(got->renewed_by, "20");
    assert_null(got->renews);
    store_cert_free(got);
    got = get_ok(f->s, "20");
    assert_string_equal(got->renews, "10");
    assert_null(got->renewed_by);
    store_cert_free(got);

    assert_int_equal(store_link_renewal(f->s, "99", "20", &err), -1);
    assert_contains(err.msg, "serial 99 is not in the inventory");

    /* A second renewal of 10 (a race lost between two processes) is refused, 20 stays. */
    struct store_cert other = row("30", "alice", "server", T0 + 1000);
    other.renews = (char *)(uintptr_t) "10";
    insert_ok(f->s, &other);
    assert_int_equal(store_link_renewal(f->s, "10", "30", &err), -1);
    assert_int_equal(err.kind, DUET_ERR_INPUT);
    assert_contains(err.msg, "certificate 10 was renewed already, by certificate 20");
    got = get_ok(f->s, "10");
    assert_string_equal(got->renewed_by, "20");
    store_cert_free(got);
}

static void
test_crl_number_sequence_persists(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    uint64_t n = 0;

    for (uint64_t want = 1; want <= 3; want++) {
        assert_int_equal(store_begin(f->s, &err), 0);
        assert_int_equal(store_next_crl_number(f->s, &n, &err), 0);
        assert_int_equal(n, want);
        assert_int_equal(store_commit(f->s, &err), 0);
    }
    reopen(f);
    assert_int_equal(store_next_crl_number(f->s, &n, &err), 0);
    assert_int_equal(n, 4);

    /* Durable with the transaction: a rolled back number is taken again. */
    assert_int_equal(store_begin(f->s, &err), 0);
    assert_int_equal(store_next_crl_number(f->s, &n, &err), 0);
    assert_int_equal(n, 5);
    store_rollback(f->s);
    assert_int_equal(store_next_crl_number(f->s, &n, &err), 0);
    assert_int_equal(n, 5);
}

/* Publish a CRL record (DER: the blob) in a transaction of its own. */
static int
crl_put(struct store *s, uint64_t number, uint64_t revoked, struct duet_err *err)
{
    struct store_crl c = {.number = number,
                          .this_update = T0 + (int64_t)number,
                          .next_update = T0 + 100 + (int64_t)number,
                          .revoked = revoked,
                          .der = (uint8_t *)(uintptr_t)blob,
                          .der_len = sizeof(blob)};

    if (store_begin(s, err) != 0)
        return -1;
    if (store_crl_put(s, &c, err) != 0) {
        store_rollback(s);
        return -1;
    }
    return store_commit(s, err);
}

/*
 * The published CRL: none at first, then the newest one only (a lower number
 * never replaces it), read by another handle, DER only when asked, with the
 * count of revoked rows moving on each revocation.
 */
static void
test_crl_published_newest_only(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    struct store *other = NULL;
    struct store_crl *c = NULL;
    uint64_t revoked = 99;
    struct store_cert a = row("0A", NULL, "server", T0 + 1000);
    struct store_cert b = row("0B", NULL, "server", T0 + 1000);

    assert_int_equal(store_crl_get(f->s, true, &c, &revoked, &err), 0);
    assert_null(c);
    assert_int_equal(revoked, 0);
    insert_ok(f->s, &a);
    insert_ok(f->s, &b);
    assert_int_equal(store_revoke(f->s, "0A", T0, 1, NULL, &err), 0);
    assert_int_equal(crl_put(f->s, 5, 1, &err), 0);
    assert_int_equal(crl_put(f->s, 4, 0, &err), -1); /* older: refused, kept out */
    assert_contains(err.msg, "CRL number 4 is not above the CRL already published");
    assert_int_equal(crl_put(f->s, 5, 0, &err), -1); /* the same number again too */
    if (store_open_sqlite(f->path, false, &other, &err) != 0)
        fail_msg("second handle: %s", err.msg);
    assert_int_equal(store_crl_get(other, false, &c, &revoked, &err), 0);
    assert_non_null(c);
    assert_int_equal(c->number, 5);
    assert_int_equal(c->this_update, T0 + 5);
    assert_int_equal(c->next_update, T0 + 105);
    assert_int_equal(c->revoked, 1);
    assert_null(c->der);
    assert_int_equal(revoked, 1);
    store_crl_free(c);
    /* A revocation elsewhere moves the count the next look reads. */
    assert_int_equal(store_revoke(other, "0B", T0, 1, NULL, &err), 0);
    assert_int_equal(store_crl_get(f->s, true, &c, &revoked, &err), 0);
    assert_int_equal(revoked, 2);
    assert_int_equal(c->der_len, sizeof(blob));
    assert_memory_equal(c->der, blob, sizeof(blob));
    store_crl_free(c);
    assert_int_equal(crl_put(other, 6, 2, &err), 0);
    assert_int_equal(store_crl_get(f->s, false, &c, &revoked, &err), 0);
    assert_int_equal(c->number, 6);
    assert_int_equal(c->revoked, 2);
    store_crl_free(c);
    /* Rolled back with its transaction. */
    {
        struct store_crl n7 = {.number = 7,
                               .this_update = T0,
                               .next_update = T0 + 1,
                               .der = (uint8_t *)(uintptr_t)blob,
                               .der_len = sizeof(blob)};
        assert_int_equal(store_begin(f->s, &err), 0);
        assert_int_equal(store_crl_put(f->s, &n7, &err), 0);
        store_rollback(f->s);
    }
    reopen(f);
    assert_int_equal(store_crl_get(f->s, false, &c, &revoked, &err), 0);
    assert_int_equal(c->number, 6);
    store_crl_free(c);
    store_close(other);
}

static void
test_rollback_discards_insert(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    bool used = true;

    assert_int_equal(store_begin(f->s, &err), 0);
    struct store_cert c = row("0B", NULL, "server", T0);
    insert_ok(f->s, &c);
    struct store_cert *got = get_ok(f->s, "0B"); /* visible inside the transaction */
    assert_non_null(got);
    store_cert_free(got);
    store_rollback(f->s);

    assert_int_equal(store_serial_used(f->s, "0B", &used, &err), 0);
    assert_false(used);
    reopen(f);
    got = get_ok(f->s, "0B");
    assert_null(got);

    /* A committed one stays. */
    assert_int_equal(store_begin(f->s, &err), 0);
    insert_ok(f->s, &c);
    assert_int_equal(store_commit(f->s, &err), 0);
    reopen(f);
    got = get_ok(f->s, "0B");
    assert_non_null(got);
    store_cert_free(got);
}

/* Closing with a transaction open rolls it back. */
static void
test_close_in_transaction_rolls_back(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};

    assert_int_equal(store_begin(f->s, &err), 0);
    struct store_cert c = row("0C", NULL, "server", T0);
    insert_ok(f->s, &c);
    reopen(f);
    struct store_cert *got = get_ok(f->s, "0C");
    assert_null(got);
}

static double
mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * A second process holds BEGIN IMMEDIATE for about a second: store_begin
 * here waits for it (busy timeout) instead of failing, then sees its row.
 * (The "inventory is locked" failure needs the full 10 s timeout, which the
 * API does not let a test shorten; it is not tested here.)
 */
static void
test_second_writer_waits_for_lock(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    int ready[2];
    char byte = 0;
    int status = 0;
    bool used = false;

    /* No SQLite connection crosses the fork. */
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct store *s = NULL;
        struct duet_err cerr = {0};
        struct store_cert c = row("C0:FF:EE", "child", "server", T0);
        int rc = 0;

        close(ready[0]);
        if (store_open_sqlite(f->path, false, &s, &cerr) != 0 || store_begin(s, &cerr) != 0 ||
            store_insert(s, &c, &cerr) != 0) {
            fprintf(stderr, "child: %s\n", cerr.msg);
            rc = 1;
        }
        if (write(ready[1], rc == 0 ? "1" : "0", 1) != 1)
            rc = 1;
        if (rc == 0) {
            usleep(1200 * 1000);
            if (store_commit(s, &cerr) != 0) {
                fprintf(stderr, "child commit: %s\n", cerr.msg);
                rc = 1;
            }
        }
        store_close(s);
        _exit(rc);
    }
    close(ready[1]);
    if (read(ready[0], &byte, 1) != 1 || byte != '1') {
        waitpid(pid, &status, 0);
        fail_msg("the child could not take the lock");
    }
    close(ready[0]);

    if (store_open_sqlite(f->path, false, &f->s, &err) != 0)
        fail_msg("%s", err.msg);
    double t = mono_now();
    if (store_begin(f->s, &err) != 0)
        fail_msg("store_begin while another process commits: %s", err.msg);
    double waited = mono_now() - t;
    assert_true(waited < 9.0);
    /*
     * The child commits only after its sleep, and holds the write lock until
     * then: seeing its row proves that store_begin waited for the commit.
     */
    assert_int_equal(store_serial_used(f->s, "C0:FF:EE", &used, &err), 0);
    assert_true(used);
    assert_int_equal(store_commit(f->s, &err), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- helpers without a database ---- */

static void
test_serial_canonical(void **state)
{
    static const struct {
        const char *in;
        const char *want; /* NULL: refused */
        const char *msg;  /* words of the refusal */
    } cases[] = {
        {"3f:a1:07", "3F:A1:07", NULL},
        {"3FA107", "3F:A1:07", NULL},
        {"0x3fa107", "3F:A1:07", NULL},
        {"0X3FA107", "3F:A1:07", NULL},
        {"00:3F:A1:07", "3F:A1:07", NULL},
        {"3f a1 07", "3F:A1:07", NULL},
        {"fa107", "0F:A1:07", NULL},
        {"7", "07", NULL},
        {"00", "00", NULL},
        {"0:0:0", "00", NULL},
        {"00:80", "80", NULL},
        {"xyz", NULL, "\"xyz\" is not a serial number"},
        {"3f:g1", NULL, "\"3f:g1\" is not a serial number"},
        {"", NULL, "empty serial number"},
        {"0x", NULL, "\"0x\" is not a serial number"},
        {"::", NULL, "\"::\" is not a serial number"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct duet_err err = {0};
        char *got = store_serial_canonical(cases[i].in, &err);
        if (cases[i].want != NULL) {
            if (got == NULL || strcmp(got, cases[i].want) != 0)
                fail_msg("\"%s\": got %s, want %s (%s)", cases[i].in, got ? got : "NULL",
                         cases[i].want, err.msg);
        } else {
            if (got != NULL)
                fail_msg("\"%s\": accepted as %s", cases[i].in, got);
            assert_contains(err.msg, cases[i].msg);
        }
        free(got);
    }
}

/* A 20-byte serial (the RFC 5280 maximum) round-trips. */
static void
test_serial_canonical_long(void **state)
{
    struct duet_err err = {0};
    char *got;

    (void)state;
    got = store_serial_canonical("7fffffffffffffffffffffffffffffffffffffff", &err);
    assert_non_null(got);
    assert_string_equal(got, "7F:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF");
    free(got);
}

static void
test_status_text(void **state)
{
    struct store_cert c = {0};

    (void)state;
    c.not_after = T0 + 1;
    c.status = STORE_VALID;
    assert_string_equal(store_status_text(&c, T0), "valid");
    assert_string_equal(store_status_text(&c, T0 + 1), "expired");
    assert_string_equal(store_status_text(&c, T0 + 2), "expired");
    c.status = STORE_REVOKED;
    assert_string_equal(store_status_text(&c, T0), "revoked");
    assert_string_equal(store_status_text(&c, T0 + 2), "revoked");
}

/* ---- schema versions ---- */

/* The inventory as duet made it before enrollment tokens (schema version 1), verbatim. */
static const char schema_v1[] =
    "CREATE TABLE IF NOT EXISTS meta ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS certificates ("
    "  serial TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  issuer TEXT NOT NULL,"
    "  sans TEXT NOT NULL,"
    "  profile TEXT NOT NULL,"
    "  owner TEXT,"
    "  location TEXT,"
    "  key_fingerprint TEXT NOT NULL,"
    "  not_before INTEGER NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  issued_at INTEGER NOT NULL,"
    "  status INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1)),"
    "  revoked_at INTEGER,"
    "  reason INTEGER,"
    "  renews TEXT REFERENCES certificates(serial),"
    "  renewed_by TEXT REFERENCES certificates(serial),"
    "  der BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS certificates_not_after ON certificates(not_after);"
    "CREATE INDEX IF NOT EXISTS certificates_owner ON certificates(owner);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('crl_number', '0');";

/* One text value from an SQLite file, read outside the store (NULL: no row). */
static char *
sql_text(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char *out = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_text(st, 0) != NULL)
        out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

static void
test_migrate_v1_in_place(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    struct store *s = NULL;
    struct store_token **v = NULL;
    size_t n = 9;
    char *path = cf_path(f->dir, "v1.db");
    char *text;

    make_sqlite(path, schema_v1);
    make_sqlite(path, "INSERT INTO certificates (serial, name, subject, issuer, sans, profile, "
                      "key_fingerprint, not_before, not_after, issued_at, der) VALUES ('0A', "
                      "'old.example', 'CN=old.example', 'CN=CA', 'DNS:old.example', 'server', "
                      "'AA', 1, 2, 1, x'3000');"
                      "UPDATE meta SET value = '7' WHERE key = 'crl_number';");
    if (store_open_sqlite(path, false, &s, &err) != 0)
        fail_msg("open v1: %s", err.msg);
    /* The old rows are there, the token table is new and empty. */
    struct store_cert *c = get_ok(s, "0A");
    assert_non_null(c);
    assert_string_equal(c->name, "old.example");
    store_cert_free(c);
    uint64_t crl = 0;
    assert_int_equal(store_next_crl_number(s, &crl, &err), 0);
    assert_int_equal(crl, 8);
    assert_int_equal(store_token_list(s, &v, &n, &err), 0);
    assert_int_equal(n, 0);
    store_tokens_free(v, n);
    store_close(s);
    /* The version is recorded, with the migrations that brought it. */
    text = sql_text(path, "SELECT value FROM meta WHERE key = 'schema_version'");
    assert_string_equal(text, "4");
    free(text);
    text = sql_text(path, "SELECT description FROM schema_migrations WHERE version = 2");
    assert_string_equal(text, "enrollment tokens");
    free(text);
    text = sql_text(path, "SELECT description FROM schema_migrations WHERE version = 3");
    assert_string_equal(text, "who revoked");
    free(text);
    text = sql_text(path, "SELECT description FROM schema_migrations WHERE version = 4");
    assert_string_equal(text, "the published CRL");
    free(text);
    /* Opening again migrates nothing more. */
    s = NULL;
    if (store_open_sqlite(path, false, &s, &err) != 0)
        fail_msg("reopen: %s", err.msg);
    store_close(s);
    text = sql_text(path, "SELECT COUNT(*) FROM schema_migrations");
    assert_string_equal(text, "3");
    free(text);
    free(path);
}

/* Version 2 as duet made it before who revoked was recorded: version 1 plus tokens, verbatim. */
static const char schema_v2_tokens[] =
    "CREATE TABLE schema_migrations ("
    "  version INTEGER PRIMARY KEY,"
    "  applied_at INTEGER NOT NULL,"
    "  description TEXT NOT NULL);"
    "CREATE TABLE tokens ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  profile TEXT NOT NULL,"
    "  sans TEXT NOT NULL,"
    "  owner TEXT,"
    "  location TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  used_at INTEGER,"
    "  serial TEXT REFERENCES certificates(serial),"
    "  created_by TEXT,"
    "  CHECK ((used_at IS NULL) = (serial IS NULL)));"
    "CREATE INDEX tokens_created_at ON tokens(created_at);"
    "INSERT INTO schema_migrations VALUES (2, 1700000000, 'enrollment tokens');"
    "UPDATE meta SET value = '2' WHERE key = 'schema_version';";

/*
 * An inventory of version 2 with a revoked row and a valid one: migrated in
 * place, the revoked row keeps its revocation and says nobody knows who
 * (NULL), the valid one can be revoked with who did it, and a token survives.
 */
static void
test_migrate_v2_who_revoked(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    struct store *s = NULL;
    struct store_token *t = NULL;
    char *path = cf_path(f->dir, "v2.db");
    char *text;

    make_sqlite(path, schema_v1);
    make_sqlite(path, schema_v2_tokens);
    make_sqlite(path, "INSERT INTO certificates (serial, name, subject, issuer, sans, profile, "
                      "key_fingerprint, not_before, not_after, issued_at, status, revoked_at, "
                      "reason, der) VALUES ('0A', 'old.example', 'CN=old.example', 'CN=CA', "
                      "'DNS:old.example', 'server', 'AA', 1, 2, 1, 1, 1700000000, 1, x'3000');"
                      "INSERT INTO certificates (serial, name, subject, issuer, sans, profile, "
                      "key_fingerprint, not_before, not_after, issued_at, der) VALUES ('0B', "
                      "'new.example', 'CN=new.example', 'CN=CA', 'DNS:new.example', 'server', "
                      "'BB', 1, 2, 1, x'3000');"
                      "INSERT INTO tokens (id, name, profile, sans, created_at, expires_at) "
                      "VALUES ('t1', 'a', 'peer', '', 1, 2);");
    if (store_open_sqlite(path, false, &s, &err) != 0)
        fail_msg("open v2: %s", err.msg);
    struct store_cert *c = get_ok(s, "0A");
    assert_non_null(c);
    assert_int_equal(c->status, STORE_REVOKED);
    assert_int_equal(c->revoked_at, T0);
    assert_int_equal(c->reason, 1);
    assert_null(c->revoked_by);
    store_cert_free(c);
    assert_int_equal(store_revoke(s, "0B", T0 + 5, 4, "cli:alice", &err), 0);
    c = get_ok(s, "0B");
    assert_string_equal(c->revoked_by, "cli:alice");
    store_cert_free(c);
    assert_int_equal(store_token_get(s, "t1", &t, &err), 0);
    assert_non_null(t);
    assert_string_equal(t->profile, "peer");
    store_token_free(t);
    store_close(s);
    text = sql_text(path, "SELECT value FROM meta WHERE key = 'schema_version'");
    assert_string_equal(text, "4");
    free(text);
    text = sql_text(path, "SELECT description FROM schema_migrations WHERE version = 3");
    assert_string_equal(text, "who revoked");
    free(text);
    text = sql_text(path, "SELECT COUNT(*) FROM schema_migrations");
    assert_string_equal(text, "3");
    free(text);
    free(path);
}

/* A migration that fails leaves the inventory exactly as it was (one transaction). */
static void
test_migrate_failure_rolls_back(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    struct store *s = NULL;
    char *path = cf_path(f->dir, "v1-clash.db");
    char *text;

    make_sqlite(path, schema_v1);
    /* Something in the way of the migration's second statement. */
    make_sqlite(path, "CREATE TABLE tokens (x INTEGER);");
    assert_int_equal(store_open_sqlite(path, false, &s, &err), -1);
    assert_null(s);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "migrating the schema to version 2 (enrollment tokens)");
    text = sql_text(path, "SELECT value FROM meta WHERE key = 'schema_version'");
    assert_string_equal(text, "1");
    free(text);
    text = sql_text(path, "SELECT name FROM sqlite_master WHERE name = 'schema_migrations'");
    assert_null(text);
    free(path);
}

/* A new inventory is at the current version, with its migration recorded. */
static void
test_create_records_version(void **state)
{
    struct fx *f = *state;
    char *text = sql_text(f->path, "SELECT value FROM meta WHERE key = 'schema_version'");

    assert_string_equal(text, "4");
    free(text);
    text = sql_text(f->path, "SELECT group_concat(version) FROM schema_migrations");
    assert_string_equal(text, "2,3,4");
    free(text);
}

/* ---- enrollment tokens ---- */

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* A token row; strings borrowed. */
static struct store_token
token(const char *id, int64_t created, int64_t expires)
{
    static const char *const sans[] = {"uri:spiffe://corp/a", "dns:a.corp.example"};
    struct store_token t = {0};

    t.id = (char *)(uintptr_t)id;
    t.name = (char *)(uintptr_t)"a";
    t.profile = (char *)(uintptr_t)"peer";
    t.sans = (char **)(uintptr_t)sans;
    t.nsans = 2;
    t.location = (char *)(uintptr_t)"rack 4";
    t.created_at = created;
    t.expires_at = expires;
    t.created_by = (char *)(uintptr_t)"alice";
    return t;
}

static void
token_insert_ok(struct store *s, const struct store_token *t)
{
    struct duet_err err = {0};

    if (store_token_insert(s, t, &err) != 0)
        fail_msg("store_token_insert: %s", err.msg);
}

static void
test_token_round_trip_and_list(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    struct store_token a = token(ID_A, T0, T0 + 900), b = token(ID_B, T0 + 5, T0 + 905);
    struct store_token *got = NULL, **v = NULL;
    size_t n = 0;

    b.nsans = 0;
    token_insert_ok(f->s, &a);
    token_insert_ok(f->s, &b);
    reopen(f);
    assert_int_equal(store_token_get(f->s, ID_A, &got, &err), 0);
    assert_non_null(got);
    assert_string_equal(got->id, ID_A);
    assert_string_equal(got->name, "a");
    assert_string_equal(got->profile, "peer");
    assert_int_equal(got->nsans, 2);
    assert_string_equal(got->sans[0], "uri:spiffe://corp/a");
    assert_string_equal(got->sans[1], "dns:a.corp.example");
    assert_null(got->owner);
    assert_string_equal(got->location, "rack 4");
    assert_int_equal(got->created_at, T0);
    assert_int_equal(got->expires_at, T0 + 900);
    assert_int_equal(got->used_at, 0);
    assert_null(got->serial);
    assert_string_equal(got->created_by, "alice");
    store_token_free(got);
    got = NULL;
    assert_int_equal(store_token_get(f->s, "00", &got, &err), 0);
    assert_null(got);
    /* Newest first; a token without SANs has none. */
    assert_int_equal(store_token_list(f->s, &v, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0]->id, ID_B);
    assert_int_equal(v[0]->nsans, 0);
    assert_string_equal(v[1]->id, ID_A);
    store_tokens_free(v, n);
    /* An id is stored once; a newline in a name is refused. */
    assert_int_equal(store_token_insert(f->s, &a, &err), -1);
    assert_contains(err.msg, "this token is already in the inventory");
    static const char *const bad[] = {"dns:a\nb"};
    b.id = (char *)(uintptr_t) "cc";
    b.sans = (char **)(uintptr_t)bad;
    b.nsans = 1;
    assert_int_equal(store_token_insert(f->s, &b, &err), -1);
    assert_contains(err.msg, "a token's name cannot hold a newline");
}

static void
test_token_redeem_once(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    struct store_token a = token(ID_A, T0, T0 + 900);
    struct store_cert c1 = row("01", NULL, "peer", T0 + 3600);
    struct store_cert c2 = row("02", NULL, "peer", T0 + 3600);
    struct store_token *got = NULL;
    enum store_token_state st = STORE_TOKEN_UNKNOWN;

    insert_ok(f->s, &c1);
    insert_ok(f->s, &c2);
    token_insert_ok(f->s, &a);
    assert_int_equal(store_token_redeem(f->s, ID_A, "01", T0 + 60, &st, &got, &err), 0);
    assert_int_equal(st, STORE_TOKEN_REDEEMED);
    assert_non_null(got);
    assert_int_equal(got->used_at, T0 + 60);
    assert_string_equal(got->serial, "01");
    store_token_free(got);
    /* Twice: refused, with when and for which certificate it was used. */
    assert_int_equal(store_token_redeem(f->s, ID_A, "02", T0 + 61, &st, &got, &err), 0);
    assert_int_equal(st, STORE_TOKEN_USED);
    assert_int_equal(got->used_at, T0 + 60);
    assert_string_equal(got->serial, "01");
    store_token_free(got);
    /* Unknown. */
    assert_int_equal(store_token_redeem(f->s, ID_B, "02", T0 + 61, &st, &got, &err), 0);
    assert_int_equal(st, STORE_TOKEN_UNKNOWN);
    assert_null(got);
    /* Expired: at expires_at it is already too late, and it stays unused. */
    struct store_token b = token(ID_B, T0, T0 + 900);
    token_insert_ok(f->s, &b);
    assert_int_equal(store_token_redeem(f->s, ID_B, "02", T0 + 900, &st, NULL, &err), 0);
    assert_int_equal(st, STORE_TOKEN_EXPIRED);
    assert_int_equal(store_token_get(f->s, ID_B, &got, &err), 0);
    assert_int_equal(got->used_at, 0);
    assert_null(got->serial);
    store_token_free(got);
}

/* Inside a transaction, a rollback gives the token back. */
static void
test_token_redeem_rolled_back(void **state)
{
    struct fx *f = *state;
    struct duet_err err = {0};
    struct store_token a = token(ID_A, T0, T0 + 900);
    struct store_cert c1 = row("01", NULL, "peer", T0 + 3600);
    enum store_token_state st = STORE_TOKEN_UNKNOWN;

    token_insert_ok(f->s, &a);
    assert_int_equal(store_begin(f->s, &err), 0);
    insert_ok(f->s, &c1);
    assert_int_equal(store_token_redeem(f->s, ID_A, "01", T0 + 1, &st, NULL, &err), 0);
    assert_int_equal(st, STORE_TOKEN_REDEEMED);
    store_rollback(f->s);
    reopen(f);
    assert_int_equal(store_token_redeem(f->s, ID_A, "01", T0 + 2, &st, NULL, &err), -1);
    /* The certificate row went with the rollback too: the serial must exist. */
    assert_contains(err.msg, "redeeming a token failed");
    assert_int_equal(store_begin(f->s, &err), 0);
    insert_ok(f->s, &c1);
    assert_int_equal(store_token_redeem(f->s, ID_A, "01", T0 + 2, &st, NULL, &err), 0);
    assert_int_equal(st, STORE_TOKEN_REDEEMED);
    assert_int_equal(store_commit(f->s, &err), 0);
}

#define RACE_TOKENS 16

struct racer {
    const char *path;
    const char *serial;
    pthread_barrier_t *start;
    int wins;
    int errors;
};

/* One contender: its own store handle, every token once, as fast as it can. */
static void *
race(void *arg)
{
    struct racer *r = arg;
    struct duet_err err = {0};
    struct store *s = NULL;

    if (store_open_sqlite(r->path, false, &s, &err) != 0) {
        r->errors++;
        pthread_barrier_wait(r->start);
        return NULL;
    }
    pthread_barrier_wait(r->start);
    for (int i = 0; i < RACE_TOKENS; i++) {
        char id[16];
        enum store_token_state st = STORE_TOKEN_UNKNOWN;
        snprintf(id, sizeof(id), "race%02d", i);
        if (store_token_redeem(s, id, r->serial, T0 + 1, &st, NULL, &err) != 0)
            r->errors++;
        else if (st == STORE_TOKEN_REDEEMED)
            r->wins++;
        else if (st != STORE_TOKEN_USED)
            r->errors++;
    }
    store_close(s);
    return NULL;
}

/* Two handles on one file redeem the same tokens at once: each token has exactly one winner. */
static void
test_token_race_one_winner(void **state)
{
    struct fx *f = *state;
    pthread_barrier_t start;
    pthread_t th[2];
    struct racer r[2] = {{.path = f->path, .serial = "01", .start = &start},
                         {.path = f->path, .serial = "02", .start = &start}};
    struct store_cert c1 = row("01", NULL, "peer", T0 + 3600);
    struct store_cert c2 = row("02", NULL, "peer", T0 + 3600);
    struct store_token **v = NULL;
    struct duet_err err = {0};
    size_t n = 0;

    insert_ok(f->s, &c1);
    insert_ok(f->s, &c2);
    for (int i = 0; i < RACE_TOKENS; i++) {
        char id[16];
        snprintf(id, sizeof(id), "race%02d", i);
        struct store_token t = token(id, T0, T0 + 900);
        token_insert_ok(f->s, &t);
    }
    assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    assert_int_equal(r[0].errors + r[1].errors, 0);
    assert_int_equal(r[0].wins + r[1].wins, RACE_TOKENS);
    /* And the inventory agrees: each token used once, by its winner's serial. */
    assert_int_equal(store_token_list(f->s, &v, &n, &err), 0);
    assert_int_equal(n, RACE_TOKENS);
    int by1 = 0;
    for (size_t i = 0; i < n; i++) {
        assert_non_null(v[i]->serial);
        by1 += strcmp(v[i]->serial, "01") == 0;
    }
    assert_int_equal(by1, r[0].wins);
    store_tokens_free(v, n);
}

static void
test_free_null(void **state)
{
    (void)state;
    store_cert_free(NULL);
    store_certs_free(NULL, 0);
    store_close(NULL);
    store_token_free(NULL);
    store_tokens_free(NULL, 0);
    store_crl_free(NULL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_create_then_reopen),
        T(test_create_on_existing_keeps_data),
        T(test_open_missing_without_create),
        T(test_open_create_in_missing_directory),
        T(test_open_not_sqlite),
        T(test_open_foreign_sqlite),
        T(test_open_other_schema_version),
        T(test_insert_get_round_trip),
        T(test_insert_revoked_and_64bit_times),
        T(test_get_unknown_is_null),
        T(test_duplicate_serial_refused),
        T(test_serial_used),
        T(test_list_filters),
        T(test_list_revoked_by_revocation_time),
        T(test_list_revoked_empty),
        T(test_revoke_sets_fields),
        T(test_lookup_sees_revocation_by_another_handle),
        T(test_generation_moves_on_every_write),
        T(test_begin_issue_is_a_write_transaction),
        T(test_generation_skips_sqlite_while_unchanged),
        T(test_generation_distrusts_a_bad_header),
        T(test_revoke_twice_refused),
        T(test_revoke_unknown_refused),
        T(test_link_renewal),
        T(test_crl_number_sequence_persists),
        T(test_crl_published_newest_only),
        T(test_rollback_discards_insert),
        T(test_close_in_transaction_rolls_back),
        T(test_second_writer_waits_for_lock),
        T(test_migrate_v1_in_place),
        T(test_migrate_v2_who_revoked),
        T(test_migrate_failure_rolls_back),
        T(test_create_records_version),
        T(test_token_round_trip_and_list),
        T(test_token_redeem_once),
        T(test_token_redeem_rolled_back),
        T(test_token_race_one_winner),
        cmocka_unit_test(test_serial_canonical),
        cmocka_unit_test(test_serial_canonical_long),
        cmocka_unit_test(test_status_text),
        cmocka_unit_test(test_free_null),
    };

    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
