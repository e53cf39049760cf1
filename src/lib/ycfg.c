/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ycfg.c - YAML files through key tables, with file:line:column errors.
 * libyaml marks are 0-based; messages use 1-based lines and columns as
 * editors do.
 */
#include "lib/ycfg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fileio.h"

/* Record libyaml's problem with its 1-based line and column.  Returns -1. */
static int
syntax_error(const char *path, const yaml_parser_t *parser, struct duet_err *err)
{
    return err_set(err, DUET_ERR_INPUT, "%s:%zu:%zu: %s", path, parser->problem_mark.line + 1,
                   parser->problem_mark.column + 1,
                   parser->problem != NULL ? parser->problem : "YAML syntax error");
}

/*
 * Load a file into one libyaml document.  A syntax error, or a second
 * document in the stream (which would otherwise be ignored silently), is
 * reported with its 1-based line and column.  On failure nothing is left to
 * free.
 */
int
ycfg_load(const char *path, struct ycfg *y, struct duet_err *err)
{
    yaml_parser_t parser;
    yaml_document_t extra;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = -1;

    memset(y, 0, sizeof(*y));
    if (fileio_read(path, &data, &len, err) != 0)
        return -1;
    if (!yaml_parser_initialize(&parser)) {
        free(data);
        return err_nomem(err);
    }
    yaml_parser_set_input_string(&parser, data, len);
    if (!yaml_parser_load(&parser, &y->doc)) {
        syntax_error(path, &parser, err);
        goto out;
    }
    y->loaded = true;
    if (!yaml_parser_load(&parser, &extra)) {
        syntax_error(path, &parser, err);
        goto out;
    }
    if (yaml_document_get_root_node(&extra) != NULL) {
        err_set(err, DUET_ERR_INPUT, "%s:%zu:%zu: a second YAML document; expected one per file",
                path, extra.start_mark.line + 1, extra.start_mark.column + 1);
        yaml_document_delete(&extra);
        goto out;
    }
    yaml_document_delete(&extra);
    if ((y->path = strdup(path)) == NULL) {
        err_nomem(err);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0 && y->loaded) {
        yaml_document_delete(&y->doc);
        y->loaded = false;
    }
    yaml_parser_delete(&parser);
    free(data);
    return rc;
}

void
ycfg_free(struct ycfg *y)
{
    if (y == NULL)
        return;
    if (y->loaded)
        yaml_document_delete(&y->doc);
    free(y->path);
    memset(y, 0, sizeof(*y));
}

yaml_node_t *
ycfg_root(struct ycfg *y)
{
    return yaml_document_get_root_node(&y->doc);
}

yaml_node_t *
ycfg_node(struct ycfg *y, int id)
{
    return yaml_document_get_node(&y->doc, id);
}

int
ycfg_error(struct ycfg *y, const yaml_node_t *n, const char *keypath, struct duet_err *err,
           const char *fmt, ...)
{
    char msg[700];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n != NULL)
        return err_set(err, DUET_ERR_INPUT, "%s:%zu:%zu: %s: %s", y->path, n->start_mark.line + 1,
                       n->start_mark.column + 1, keypath, msg);
    return err_set(err, DUET_ERR_INPUT, "%s: %s: %s", y->path, keypath, msg);
}

const char *
ycfg_scalar(const yaml_node_t *n)
{
    if (n == NULL || n->type != YAML_SCALAR_NODE)
        return NULL;
    return (const char *)n->data.scalar.value;
}

/* Walk a mapping with a key table; see ycfg.h. */
int
ycfg_map(struct ycfg *y, yaml_node_t *map, const char *prefix, const struct ycfg_key *keys,
         void *target, struct duet_err *err)
{
    bool seen[64] = {false};
    size_t nkeys = 0;

    while (keys[nkeys].name != NULL)
        nkeys++;
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return ycfg_error(y, map, prefix[0] ? prefix : "(top level)", err,
                          "expected a mapping of keys to values");
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = ycfg_node(y, p->key);
        yaml_node_t *v = ycfg_node(y, p->value);
        const char *name = ycfg_scalar(k);
        char path[256];
        size_t i;

        if (name == NULL)
            return ycfg_error(y, k, prefix[0] ? prefix : "(top level)", err,
                              "expected a plain key");
        snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", name);
        for (i = 0; i < nkeys; i++) {
            if (strcmp(keys[i].name, name) == 0)
                break;
        }
        if (i == nkeys) {
            char allowed[512];
            size_t off = 0;
            for (size_t j = 0; j < nkeys && off < sizeof(allowed); j++)
                off += (size_t)snprintf(allowed + off, sizeof(allowed) - off, "%s%s",
                                        j ? ", " : "", keys[j].name);
            return ycfg_error(y, k, path, err, "unknown key; expected one of %s", allowed);
        }
        if (i < sizeof(seen) && seen[i])
            return ycfg_error(y, k, path, err, "key given twice");
        if (i < sizeof(seen))
            seen[i] = true;
        if (keys[i].parse(y, v, path, target, err) != 0)
            return -1;
    }
    for (size_t i = 0; i < nkeys && i < sizeof(seen); i++) {
        if (keys[i].required && !seen[i]) {
            char path[256];
            snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", keys[i].name);
            return ycfg_error(y, map, path, err, "required key is missing");
        }
    }
    return 0;
}

int
ycfg_string(struct ycfg *y, yaml_node_t *n, const char *keypath, char **out,
            struct duet_err *err)
{
    const char *s = ycfg_scalar(n);
    char *copy;

    if (s == NULL)
        return ycfg_error(y, n, keypath, err, "expected a string");
    if ((copy = strdup(s)) == NULL)
        return err_nomem(err);
    free(*out);
    *out = copy;
    return 0;
}

int
ycfg_bool(struct ycfg *y, yaml_node_t *n, const char *keypath, bool *out, struct duet_err *err)
{
    const char *s = ycfg_scalar(n);

    if (s != NULL && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0)) {
        *out = true;
        return 0;
    }
    if (s != NULL && (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0)) {
        *out = false;
        return 0;
    }
    return ycfg_error(y, n, keypath, err, "\"%s\" is not a boolean; expected true or false",
                      s != NULL ? s : "(not a scalar)");
}

int
ycfg_strings(struct ycfg *y, yaml_node_t *n, const char *keypath, char ***out, size_t *count,
             struct duet_err *err)
{
    char **v;
    size_t len = 0;

    if (n == NULL || n->type != YAML_SEQUENCE_NODE)
        return ycfg_error(y, n, keypath, err, "expected a list of strings, e.g. [a, b]");
    size_t cap = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start) + 1;
    v = calloc(cap, sizeof(*v));
    if (v == NULL)
        return err_nomem(err);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *item = ycfg_node(y, *it);
        const char *s = ycfg_scalar(item);
        if (s == NULL) {
            for (size_t i = 0; i < len; i++)
                free(v[i]);
            free(v);
            return ycfg_error(y, item, keypath, err, "expected a list of strings");
        }
        if ((v[len] = strdup(s)) == NULL) {
            for (size_t i = 0; i < len; i++)
                free(v[i]);
            free(v);
            return err_nomem(err);
        }
        len++;
    }
    for (size_t i = 0; *out != NULL && (*out)[i] != NULL; i++)
        free((*out)[i]);
    free(*out);
    *out = v;
    *count = len;
    return 0;
}
