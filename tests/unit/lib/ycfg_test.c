/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ycfg_test.c - unit tests of YAML configuration through key tables
 * (src/lib/ycfg.c).
 *
 * Each case writes a small YAML file, loads it and walks it with a key table
 * (name: string, required; enabled: boolean; tags: list of strings; inner: a
 * nested mapping with the same table).  A table of refusals asserts the
 * exact "FILE:LINE:COL: key.path: what; expected what" sentence, with
 * 1-based lines and columns; accepted files are checked value by value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/err.h"
#include "lib/ycfg.h"
#include "testlib/certfactory.h"

#define KEYS "name, enabled, tags, inner"

struct target {
    char *name;
    bool enabled;
    char **tags;
    size_t ntags;
    int inner_names; /* names seen in nested mappings */
};

static int k_name(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err);
static int k_enabled(struct ycfg *y, yaml_node_t *v, const char *path, void *t,
                     struct duet_err *err);
static int k_tags(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err);
static int k_inner(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err);

static const struct ycfg_key keys[] = {
    {"name", k_name, true},    {"enabled", k_enabled, false}, {"tags", k_tags, false},
    {"inner", k_inner, false}, {NULL, NULL, false},
};

static int
k_name(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    struct target *tg = t;

    if (strchr(path, '.') != NULL)
        tg->inner_names++;
    return ycfg_string(y, v, path, &tg->name, err);
}

static int
k_enabled(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return ycfg_bool(y, v, path, &((struct target *)t)->enabled, err);
}

static int
k_tags(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    struct target *tg = t;

    return ycfg_strings(y, v, path, &tg->tags, &tg->ntags, err);
}

static int
k_inner(struct ycfg *y, yaml_node_t *v, const char *path, void *t, struct duet_err *err)
{
    return ycfg_map(y, v, path, keys, t, err);
}

static void
target_clear(struct target *t)
{
    free(t->name);
    for (size_t i = 0; t->tags != NULL && t->tags[i] != NULL; i++)
        free(t->tags[i]);
    free(t->tags);
    memset(t, 0, sizeof(*t));
}

static char *dir;

static int
group_setup(void **state)
{
    (void)state;
    dir = cf_tmpdir();
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    cf_tmpdir_remove(dir);
    dir = NULL;
    return 0;
}

/* Write text to a fresh file; the path is malloc'd. */
static char *
write_yaml(const char *text)
{
    static int n;
    char name[32];
    char *path;

    snprintf(name, sizeof(name), "c%d.yaml", n++);
    path = cf_path(dir, name);
    cf_write_file(path, text, strlen(text));
    return path;
}

/* want with each "@F@" replaced by path. */
static void
expand(const char *want, const char *path, char *out, size_t len)
{
    size_t o = 0;

    for (const char *p = want; *p && o + 1 < len;) {
        if (strncmp(p, "@F@", 3) == 0) {
            o += (size_t)snprintf(out + o, len - o, "%s", path);
            p += 3;
        } else {
            out[o++] = *p++;
        }
    }
    out[o < len ? o : len - 1] = '\0';
}

/* ---- refusals ---- */

struct ecase {
    const char *name;
    const char *yaml;
    const char *prefix;
    const char *want; /* exact message; "@F@" is the file's path */
};

static struct ecase ecases[] = {
    /* Syntax errors: libyaml's problem, 1-based line and column. */
    {"unclosed flow sequence", "name: [a, b\nenabled: true\n", "",
     "@F@:2:8: did not find expected ',' or ']'"},
    {"tab indentation", "name: a\ninner:\n\tname: b\n", "",
     "@F@:3:1: found character that cannot start any token"},
    {"bad indentation", "name: a\n  enabled: true\n", "",
     "@F@:2:10: mapping values are not allowed in this context"},
    {"unterminated quote", "name: 'abc\n", "", "@F@:2:1: found unexpected end of stream"},
    {"two documents", "name: a\n---\nname: b\n", "",
     "@F@:2:1: a second YAML document; expected one per file"},
    {"syntax error in a second document", "name: a\n---\nname: [b\n", "",
     "@F@:4:1: did not find expected ',' or ']'"},
    /* Key tables. */
    {"unknown key", "nmae: x\n", "", "@F@:1:1: nmae: unknown key; expected one of " KEYS},
    {"unknown key with prefix", "name: a\nport: 1\n", "listeners[0]",
     "@F@:2:1: listeners[0].port: unknown key; expected one of " KEYS},
    {"unknown nested key", "name: a\ninner:\n  name: b\n  bad: 1\n", "",
     "@F@:4:3: inner.bad: unknown key; expected one of " KEYS},
    {"missing required key", "enabled: true\n", "", "@F@:1:1: name: required key is missing"},
    {"missing required key with prefix", "\n\nenabled: true\n", "listeners[0]",
     "@F@:3:1: listeners[0].name: required key is missing"},
    {"missing nested required key", "name: a\ninner:\n  enabled: no\n", "",
     "@F@:3:3: inner.name: required key is missing"},
    {"duplicate key", "name: a\nenabled: true\nname: b\n", "", "@F@:3:1: name: key given twice"},
    {"not a mapping", "- a\n- b\n", "",
     "@F@:1:1: (top level): expected a mapping of keys to values"},
    {"not a mapping with prefix", "just a string\n", "listeners[1]",
     "@F@:1:1: listeners[1]: expected a mapping of keys to values"},
    {"nested not a mapping", "name: a\ninner: [1]\n", "",
     "@F@:2:8: inner: expected a mapping of keys to values"},
    {"empty document", "# nothing here\n", "",
     "@F@: (top level): expected a mapping of keys to values"},
    {"key not a scalar", "[a, b]: c\n", "", "@F@:1:1: (top level): expected a plain key"},
    /* Typed readers. */
    {"bool not a boolean", "name: a\nenabled: maybe\n", "",
     "@F@:2:10: enabled: \"maybe\" is not a boolean; expected true or false"},
    {"bool from a number", "name: a\nenabled: 1\n", "",
     "@F@:2:10: enabled: \"1\" is not a boolean; expected true or false"},
    {"bool not a scalar", "name: a\nenabled: [true]\n", "",
     "@F@:2:10: enabled: \"(not a scalar)\" is not a boolean; expected true or false"},
    {"string not a scalar", "name: [a]\n", "", "@F@:1:7: name: expected a string"},
    {"string is a mapping", "name: {a: b}\n", "", "@F@:1:7: name: expected a string"},
    {"strings from a scalar", "name: a\ntags: abc\n", "",
     "@F@:2:7: tags: expected a list of strings, e.g. [a, b]"},
    {"strings from a mapping", "name: a\ntags: {a: b}\n", "",
     "@F@:2:7: tags: expected a list of strings, e.g. [a, b]"},
    {"strings with a nested list", "name: a\ntags: [a, [b]]\n", "",
     "@F@:2:11: tags: expected a list of strings"},
    {"strings with a mapping item", "name: a\ntags:\n  - a\n  - b: c\n", "",
     "@F@:4:5: tags: expected a list of strings"},
};

static void
run_error(void **state)
{
    const struct ecase *c = *state;
    char *path = write_yaml(c->yaml);
    struct ycfg y;
    struct target t = {0};
    struct duet_err err;
    char want[1024];
    int rc;

    expand(c->want, path, want, sizeof(want));
    err_clear(&err);
    rc = ycfg_load(path, &y, &err);
    if (rc == 0) {
        rc = ycfg_map(&y, ycfg_root(&y), c->prefix, keys, &t, &err);
        ycfg_free(&y);
    } else {
        /* A failed load leaves nothing to free (callers do not call ycfg_free). */
        assert_false(y.loaded);
        assert_null(y.path);
    }
    assert_int_equal(rc, -1);
    assert_int_equal(err.kind, DUET_ERR_INPUT);
    assert_string_equal(err.msg, want);
    target_clear(&t);
    free(path);
}

static void
test_missing_file(void **state)
{
    char *path = cf_path(dir, "absent.yaml");
    char want[512];
    struct ycfg y;
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(ycfg_load(path, &y, &err), -1);
    snprintf(want, sizeof(want), "%s: no such file", path);
    assert_string_equal(err.msg, want);
    assert_null(y.path);
    free(path);
}

/* ---- accepted files ---- */

static void
test_parse_ok(void **state)
{
    char *path = write_yaml("# a comment\n"
                            "name: svc\n"
                            "enabled: yes\n"
                            "tags: [a, \"b c\"]\n"
                            "inner:\n"
                            "  name: nested\n");
    struct ycfg y;
    struct target t = {0};
    struct duet_err err;

    (void)state;
    err_clear(&err);
    if (ycfg_load(path, &y, &err) != 0)
        fail_msg("%s", err.msg);
    assert_non_null(ycfg_root(&y));
    if (ycfg_map(&y, ycfg_root(&y), "", keys, &t, &err) != 0)
        fail_msg("%s", err.msg);
    /* The nested name came last and replaced the outer one. */
    assert_string_equal(t.name, "nested");
    assert_int_equal(t.inner_names, 1);
    assert_true(t.enabled);
    assert_int_equal(t.ntags, 2);
    assert_string_equal(t.tags[0], "a");
    assert_string_equal(t.tags[1], "b c");
    assert_null(t.tags[2]);
    ycfg_free(&y);
    assert_false(y.loaded);
    ycfg_free(&y); /* twice is fine */
    ycfg_free(NULL);
    target_clear(&t);
    free(path);
}

static void
test_bools(void **state)
{
    static const struct {
        const char *text;
        bool want;
    } t[] = {{"true", true},   {"yes", true}, {"on", true},
             {"false", false}, {"no", false}, {"off", false}};

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char yaml[64];
        char *path;
        struct ycfg y;
        struct target tg = {0};
        struct duet_err err;

        snprintf(yaml, sizeof(yaml), "name: a\nenabled: %s\n", t[i].text);
        path = write_yaml(yaml);
        tg.enabled = !t[i].want;
        err_clear(&err);
        assert_int_equal(ycfg_load(path, &y, &err), 0);
        if (ycfg_map(&y, ycfg_root(&y), "", keys, &tg, &err) != 0)
            fail_msg("%s: %s", t[i].text, err.msg);
        if (tg.enabled != t[i].want)
            fail_msg("\"%s\" read as %d", t[i].text, tg.enabled);
        ycfg_free(&y);
        target_clear(&tg);
        free(path);
    }
}

/* Readers replace what the target held (no leak under ASan) and an empty list is empty. */
static void
test_readers_replace(void **state)
{
    char *path = write_yaml("name: first\ntags: [x, y, z]\n");
    char *path2 = write_yaml("name: second\ntags: []\n");
    struct ycfg y;
    struct target t = {0};
    struct duet_err err;

    (void)state;
    err_clear(&err);
    assert_int_equal(ycfg_load(path, &y, &err), 0);
    assert_int_equal(ycfg_map(&y, ycfg_root(&y), "", keys, &t, &err), 0);
    ycfg_free(&y);
    assert_string_equal(t.name, "first");
    assert_int_equal(t.ntags, 3);
    assert_int_equal(ycfg_load(path2, &y, &err), 0);
    assert_int_equal(ycfg_map(&y, ycfg_root(&y), "", keys, &t, &err), 0);
    ycfg_free(&y);
    assert_string_equal(t.name, "second");
    assert_int_equal(t.ntags, 0);
    assert_non_null(t.tags);
    assert_null(t.tags[0]);
    target_clear(&t);
    free(path);
    free(path2);
}

/* ycfg_error: with a node FILE:LINE:COL, without one FILE only. */
static void
test_error_format(void **state)
{
    char *path = write_yaml("name: a\nlisteners:\n  - port: 80\n");
    struct ycfg y;
    struct duet_err err;
    char want[512];
    yaml_node_t *root;
    yaml_node_t *v = NULL;

    (void)state;
    err_clear(&err);
    assert_int_equal(ycfg_load(path, &y, &err), 0);
    root = ycfg_root(&y);
    assert_non_null(root);
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        const char *k = ycfg_scalar(ycfg_node(&y, p->key));
        if (k != NULL && strcmp(k, "listeners") == 0)
            v = ycfg_node(&y, p->value);
    }
    assert_non_null(v);
    assert_null(ycfg_scalar(v));
    assert_int_equal(ycfg_error(&y, v, "listeners", &err, "expected %d items", 2), -1);
    snprintf(want, sizeof(want), "%s:3:3: listeners: expected 2 items", path);
    assert_string_equal(err.msg, want);
    assert_int_equal(err.kind, DUET_ERR_INPUT);
    assert_int_equal(ycfg_error(&y, NULL, "x.y", &err, "missing"), -1);
    snprintf(want, sizeof(want), "%s: x.y: missing", path);
    assert_string_equal(err.msg, want);
    ycfg_free(&y);
    free(path);
}

int
main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_missing_file), cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_bools),        cmocka_unit_test(test_readers_replace),
        cmocka_unit_test(test_error_format),
    };
    enum { NE = sizeof(ecases) / sizeof(ecases[0]), NF = sizeof(fixed) / sizeof(fixed[0]) };
    struct CMUnitTest tests[NE + NF];
    size_t n = 0;

    /* One named test per refusal, so that TAP reports each. */
    for (size_t i = 0; i < NE; i++)
        tests[n++] = (struct CMUnitTest){
            .name = ecases[i].name, .test_func = run_error, .initial_state = &ecases[i]};
    for (size_t i = 0; i < NF; i++)
        tests[n++] = fixed[i];
    return _cmocka_run_group_tests("ycfg", tests, n, group_setup, group_teardown);
}
