/*
 * yamldoc: read config and policy files through libyaml's document API.
 *
 * A file is loaded whole into a yaml_document_t; the loaders then walk it
 * with the helpers below, which check types and record every problem as
 * "file:line: name.key: reason" in a struct errors instead of stopping.
 *
 * A struct ymap is one mapping being read, with the dotted name used in
 * messages ("backend", "listen[1]", "" for the top level). Opening it with
 * the list of allowed keys reports unknown and duplicate keys, so a typo
 * in any section is an error at the key's own line.
 *
 * The getters return 1 when the key is present and valid (output set),
 * 0 when it is absent (output untouched: the default stays), and -1 when
 * it is present but wrong (error recorded, output untouched).
 */
#ifndef WARDEN_YAMLDOC_H
#define WARDEN_YAMLDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "errors.h"

struct yamldoc {
    yaml_document_t doc;
    char *file; /* path as given: the "file" in messages */
    struct errors *errs;
    bool loaded; /* doc holds a document to delete */
};

/* A value name and what it stands for, for ymap_enum(). */
struct yamldoc_enum {
    const char *name;
    int value;
};

struct ymap {
    struct yamldoc *d;
    yaml_node_t *node; /* a mapping, or NULL for an empty one */
    unsigned line;     /* where it is (an empty one too), for errors */
    char name[96];
};

/* A list of items; a lone scalar counts as a list of one. */
struct ylist {
    struct yamldoc *d;
    yaml_node_t *node; /* a sequence, a scalar, or NULL when empty */
    size_t n;
    char name[96];
};

/*
 * Load path into d. Returns 0, or -1 with the reason in errs ("path:
 * cannot open: ...", "path:line: YAML syntax error: ..."); d needs
 * yamldoc_free() either way (it is safe on a failed load).
 */
int yamldoc_load(struct yamldoc *d, const char *path, struct errors *errs);
void yamldoc_free(struct yamldoc *d);

/* The root node, or NULL for an empty file. */
yaml_node_t *yamldoc_root(struct yamldoc *d);

/* 1-based line of a node (libyaml counts from 0). */
unsigned yamldoc_line(const yaml_node_t *n);

/* "a mapping", "a list", "a string" or "nothing": for type errors. */
const char *yamldoc_kind(const yaml_node_t *n);

/* An empty, "~" or "null" plain scalar: "key:" with no value. */
bool yamldoc_is_null(const yaml_node_t *n);

/* Record "file:line: reason" at node at (line 0 when at is NULL). */
void yamldoc_error(struct yamldoc *d, const yaml_node_t *at, const char *fmt,
                   ...) __attribute__((format(printf, 3, 4)));

/*
 * rel resolved against the directory of the document's file (absolute
 * paths are returned as they are). The caller frees the result.
 */
char *yamldoc_path(const struct yamldoc *d, const char *rel);

/* Abort on allocation failure: loaders have no useful way to go on. */
void *yamldoc_must(void *p);

/* Free a string list from ymap_strlist(). */
void yamldoc_strv_free(char **v, size_t n);

/*
 * Open node as the mapping called name; a null value is an empty mapping.
 * keys (NULL-terminated) are the allowed keys: others are reported, as are
 * duplicates. Returns false, with an error, when node is not a mapping.
 */
bool ymap_open(struct ymap *m, struct yamldoc *d, yaml_node_t *node,
               const char *name, const char *const *keys);

/* Open the mapping under key; false when absent or not a mapping. */
bool ymap_sub(const struct ymap *parent, const char *key,
              const char *const *keys, struct ymap *out);

/* The value node under key, or NULL. */
yaml_node_t *ymap_get(const struct ymap *m, const char *key);

/* Record "file:line: name.key: reason" at node at (or at the mapping). */
void ymap_error(const struct ymap *m, const yaml_node_t *at, const char *key,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A non-empty string; *out is freed and replaced with a copy. */
int ymap_str(const struct ymap *m, const char *key, char **out);
/* true/false (also yes/no, on/off). */
int ymap_bool(const struct ymap *m, const char *key, bool *out);
/* A decimal number in [min, max]. */
int ymap_uint(const struct ymap *m, const char *key, unsigned min, unsigned max,
              unsigned *out);
/* A size (config_parse_size) of at least min bytes. */
int ymap_size(const struct ymap *m, const char *key, size_t min, size_t *out);
/* A duration (config_parse_duration) of at least min_ms milliseconds. */
int ymap_duration(const struct ymap *m, const char *key, unsigned min_ms,
                  unsigned *out);
/* One of names (terminated by a NULL name); *out gets its value. */
int ymap_enum(const struct ymap *m, const char *key,
              const struct yamldoc_enum *names, int *out);
/*
 * A list of non-empty strings; *v and *n are replaced (the old list is not
 * freed) by a new list the caller frees with yamldoc_strv_free().
 */
int ymap_strlist(const struct ymap *m, const char *key, char ***v, size_t *n);

/* The list under key, for items that need their own line in messages. */
int ymap_list(const struct ymap *m, const char *key, struct ylist *out);
/* Item i (i < l->n). */
yaml_node_t *ylist_at(const struct ylist *l, size_t i);
/* Item i as a string, or NULL with "name: expected a string" recorded. */
const char *ylist_str(const struct ylist *l, size_t i);

#endif
