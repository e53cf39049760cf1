/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ycfg.h - YAML configuration files read through key tables.
 *
 * A file is loaded whole into a libyaml document; a mapping is walked with a
 * table of keys, one parse function each (the HAProxy habit).  Every error
 * carries "FILE:LINE:COL: key.path: what; expected what".
 */
#ifndef DUET_LIB_YCFG_H
#define DUET_LIB_YCFG_H

#include <stdbool.h>
#include <stdint.h>

#include <yaml.h>

#include "lib/err.h"

struct ycfg {
    yaml_document_t doc;
    bool loaded;
    char *path;
};

/* A key of a mapping and the function that parses its value into `target`. */
struct ycfg_key {
    const char *name;
    int (*parse)(struct ycfg *y, yaml_node_t *value, const char *keypath, void *target,
                 struct duet_err *err);
    bool required;
};

/* Load and parse a YAML file; syntax errors give line and column. */
int ycfg_load(const char *path, struct ycfg *y, struct duet_err *err) MUST_CHECK;
void ycfg_free(struct ycfg *y);
/* The root node, or NULL for an empty document. */
yaml_node_t *ycfg_root(struct ycfg *y);

/* Record "FILE:LINE:COL: keypath: message" for a node.  Returns -1. */
int ycfg_error(struct ycfg *y, const yaml_node_t *n, const char *keypath,
               struct duet_err *err, const char *fmt, ...) PRINTF_LIKE(5, 6);

/*
 * Walk a mapping with a key table: each known key's parse function is called
 * with "prefix.key" as its path; an unknown key or a missing required one is
 * an error listing the allowed keys.
 */
int ycfg_map(struct ycfg *y, yaml_node_t *map, const char *prefix, const struct ycfg_key *keys,
             void *target, struct duet_err *err) MUST_CHECK;

/* The text of a scalar node, or NULL when it is not a scalar. */
const char *ycfg_scalar(const yaml_node_t *n);

/* Typed readers: fail with "expected a string/boolean/list of strings". */
int ycfg_string(struct ycfg *y, yaml_node_t *n, const char *keypath, char **out,
                struct duet_err *err) MUST_CHECK;
int ycfg_bool(struct ycfg *y, yaml_node_t *n, const char *keypath, bool *out,
              struct duet_err *err) MUST_CHECK;
/* A sequence of scalars into a NULL-terminated array of strings (*out, *n). */
int ycfg_strings(struct ycfg *y, yaml_node_t *n, const char *keypath, char ***out, size_t *count,
                 struct duet_err *err) MUST_CHECK;
/* The node of a sequence item or mapping value for iteration. */
yaml_node_t *ycfg_node(struct ycfg *y, int id);

#endif
