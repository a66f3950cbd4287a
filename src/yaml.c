/*
 * Copyright (c) 2026 The natguard authors
 *
 * Permission to use, copy, modify, and distribute this software for any
 * purpose with or without fee is hereby granted, provided that the above
 * copyright notice and this permission notice appear in all copies.
 *
 * THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
 * WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
 * MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
 * ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
 * WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
 * ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
 * OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
 */

#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "natguard.h"

/*
 * A YAML document (a compose file) as a small tree, read through libyaml's
 * event parser; the only user of libyaml.  Aliases are resolved by copying
 * the anchored node, with a bound on the total so that a "billion laughs"
 * file is an error, not an exhausted machine.  Merge keys (<<: *base),
 * which compose files use for shared service settings, are honoured by
 * ynode_get().
 */

#define YAML_MAX_NODES	100000
#define YAML_MAX_DEPTH	64

struct ynode {
	enum ynode_type	  type;
	char		 *value;	/* scalar */
	char		**keys;		/* map: n keys */
	struct ynode	**items;	/* map values or sequence items */
	size_t		  n;
	unsigned long	  line;		/* 1-based */
};

struct anchor {
	char		*name;
	struct ynode	*node;		/* owned by the tree */
};

struct yparse {
	yaml_parser_t	 parser;
	struct anchor	*anchors;
	size_t		 nanchors;
	size_t		 nodes;
	char		*err;
};

static struct ynode	*parse_node(struct yparse *, yaml_event_t *, int);

static struct ynode *
ynode_new(struct yparse *yp, enum ynode_type type, unsigned long line)
{
	struct ynode	*n;

	if (++yp->nodes > YAML_MAX_NODES) {
		if (yp->err == NULL)
			xasprintf(&yp->err, "line %lu: more than %d nodes "
			    "(aliases expanding without end?)", line,
			    YAML_MAX_NODES);
		return (NULL);
	}
	n = xcalloc(1, sizeof(*n));
	n->type = type;
	n->line = line;
	return (n);
}

void
ynode_free(struct ynode *n)
{
	size_t	i;

	if (n == NULL)
		return;
	for (i = 0; i < n->n; i++) {
		if (n->keys != NULL)
			free(n->keys[i]);
		ynode_free(n->items[i]);
	}
	free(n->keys);
	free(n->items);
	free(n->value);
	free(n);
}

static struct ynode *
copy(struct yparse *yp, const struct ynode *src)
{
	struct ynode	*n;
	size_t		 i;

	if ((n = ynode_new(yp, src->type, src->line)) == NULL)
		return (NULL);
	if (src->value != NULL)
		n->value = xstrdup(src->value);
	n->items = xcalloc(src->n == 0 ? 1 : src->n, sizeof(*n->items));
	if (src->keys != NULL)
		n->keys = xcalloc(src->n == 0 ? 1 : src->n, sizeof(*n->keys));
	for (i = 0; i < src->n; i++) {
		if (src->keys != NULL)
			n->keys[i] = xstrdup(src->keys[i]);
		n->n = i + 1;
		if ((n->items[i] = copy(yp, src->items[i])) == NULL) {
			ynode_free(n);
			return (NULL);
		}
	}
	return (n);
}

static int
next_event(struct yparse *yp, yaml_event_t *ev)
{
	if (yaml_parser_parse(&yp->parser, ev))
		return (0);
	if (yp->err == NULL)
		xasprintf(&yp->err, "line %lu: %s",
		    (unsigned long)yp->parser.problem_mark.line + 1,
		    yp->parser.problem != NULL ? yp->parser.problem :
		    "syntax error");
	return (-1);
}

static void
remember(struct yparse *yp, const yaml_char_t *anchor, struct ynode *n)
{
	if (anchor == NULL || n == NULL)
		return;
	yp->anchors = xreallocarray(yp->anchors, yp->nanchors + 1,
	    sizeof(*yp->anchors));
	yp->anchors[yp->nanchors].name = xstrdup((const char *)anchor);
	yp->anchors[yp->nanchors].node = n;
	yp->nanchors++;
}

static void
append(struct ynode *n, char *key, struct ynode *item)
{
	n->items = xreallocarray(n->items, n->n + 1, sizeof(*n->items));
	if (n->type == YNODE_MAP) {
		n->keys = xreallocarray(n->keys, n->n + 1, sizeof(*n->keys));
		n->keys[n->n] = key;
	}
	n->items[n->n++] = item;
}

/* The children of a sequence or mapping, up to its end event. */
static int
parse_children(struct yparse *yp, struct ynode *n, int depth)
{
	yaml_event_t	 ev;
	yaml_event_type_t end;
	struct ynode	*k, *v;
	char		*key;

	end = n->type == YNODE_MAP ? YAML_MAPPING_END_EVENT :
	    YAML_SEQUENCE_END_EVENT;
	for (;;) {
		if (next_event(yp, &ev) != 0)
			return (-1);
		if (ev.type == end) {
			yaml_event_delete(&ev);
			return (0);
		}
		k = parse_node(yp, &ev, depth + 1);
		yaml_event_delete(&ev);
		if (k == NULL)
			return (-1);
		if (n->type == YNODE_SEQ) {
			append(n, NULL, k);
			continue;
		}
		/* A key that is not a scalar (rare in compose) matches none. */
		key = xstrdup(k->type == YNODE_SCALAR ? k->value : "");
		ynode_free(k);
		if (next_event(yp, &ev) != 0) {
			free(key);
			return (-1);
		}
		v = parse_node(yp, &ev, depth + 1);
		yaml_event_delete(&ev);
		if (v == NULL) {
			free(key);
			return (-1);
		}
		append(n, key, v);
	}
}

static struct ynode *
parse_node(struct yparse *yp, yaml_event_t *ev, int depth)
{
	struct ynode	*n;
	unsigned long	 line = (unsigned long)ev->start_mark.line + 1;
	size_t		 i;
	const char	*name;

	if (depth > YAML_MAX_DEPTH) {
		if (yp->err == NULL)
			xasprintf(&yp->err, "line %lu: nested more than %d "
			    "levels deep", line, YAML_MAX_DEPTH);
		return (NULL);
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		if ((n = ynode_new(yp, YNODE_SCALAR, line)) == NULL)
			return (NULL);
		n->value = xstrndup((const char *)ev->data.scalar.value,
		    ev->data.scalar.length);
		remember(yp, ev->data.scalar.anchor, n);
		return (n);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		n = ynode_new(yp, ev->type == YAML_MAPPING_START_EVENT ?
		    YNODE_MAP : YNODE_SEQ, line);
		if (n == NULL)
			return (NULL);
		if (parse_children(yp, n, depth) != 0) {
			ynode_free(n);
			return (NULL);
		}
		remember(yp, ev->type == YAML_MAPPING_START_EVENT ?
		    ev->data.mapping_start.anchor :
		    ev->data.sequence_start.anchor, n);
		return (n);
	case YAML_ALIAS_EVENT:
		name = (const char *)ev->data.alias.anchor;
		for (i = yp->nanchors; i > 0; i--) {
			if (strcmp(yp->anchors[i - 1].name, name) == 0)
				return (copy(yp, yp->anchors[i - 1].node));
		}
		if (yp->err == NULL)
			xasprintf(&yp->err, "line %lu: alias *%s names no "
			    "anchor", line, name);
		return (NULL);
	default:
		if (yp->err == NULL)
			xasprintf(&yp->err, "line %lu: unexpected YAML event",
			    line);
		return (NULL);
	}
}

/*
 * The first document of a file; NULL with *err set (the caller frees it)
 * when it cannot be read or parsed.  An empty file is an empty mapping.
 */
struct ynode *
yaml_load(const char *path, char **err)
{
	struct yparse	 yp;
	yaml_event_t	 ev;
	struct ynode	*root = NULL;
	FILE		*f;
	size_t		 i;
	int		 done = 0;

	*err = NULL;
	if ((f = fopen(path, "r")) == NULL) {
		xasprintf(err, "%s", strerror(errno));
		return (NULL);
	}
	memset(&yp, 0, sizeof(yp));
	if (!yaml_parser_initialize(&yp.parser))
		fatalx("yaml_parser_initialize");
	yaml_parser_set_input_file(&yp.parser, f);
	while (!done && next_event(&yp, &ev) == 0) {
		switch (ev.type) {
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_START_EVENT:
			break;
		case YAML_STREAM_END_EVENT:
		case YAML_DOCUMENT_END_EVENT:
			done = 1;
			break;
		default:
			root = parse_node(&yp, &ev, 0);
			if (root == NULL)
				done = 1;
			break;
		}
		yaml_event_delete(&ev);
	}
	if (yp.err != NULL) {
		ynode_free(root);
		root = NULL;
		*err = yp.err;
	} else if (root == NULL)
		root = ynode_new(&yp, YNODE_MAP, 1);
	for (i = 0; i < yp.nanchors; i++)
		free(yp.anchors[i].name);
	free(yp.anchors);
	yaml_parser_delete(&yp.parser);
	fclose(f);
	return (root);
}

enum ynode_type
ynode_type(const struct ynode *n)
{
	return (n->type);
}

unsigned long
ynode_line(const struct ynode *n)
{
	return (n->line);
}

/* A scalar's text; NULL for n NULL or not a scalar. */
const char *
ynode_str(const struct ynode *n)
{
	return (n != NULL && n->type == YNODE_SCALAR ? n->value : NULL);
}

size_t
ynode_len(const struct ynode *n)
{
	return (n == NULL || n->type == YNODE_SCALAR ? 0 : n->n);
}

const struct ynode *
ynode_at(const struct ynode *n, size_t i)
{
	return (i < ynode_len(n) ? n->items[i] : NULL);
}

const char *
ynode_key(const struct ynode *n, size_t i)
{
	return (n != NULL && n->type == YNODE_MAP && i < n->n ?
	    n->keys[i] : NULL);
}

/*
 * A mapping's value for key: its own first, then those of the mappings it
 * merges (<<: *a, or <<: [*a, *b], the earlier winning).
 */
const struct ynode *
ynode_get(const struct ynode *n, const char *key)
{
	const struct ynode	*m, *v;
	size_t			 i, j;

	if (n == NULL || n->type != YNODE_MAP)
		return (NULL);
	for (i = 0; i < n->n; i++) {
		if (strcmp(n->keys[i], key) == 0)
			return (n->items[i]);
	}
	for (i = 0; i < n->n; i++) {
		if (strcmp(n->keys[i], "<<") != 0)
			continue;
		m = n->items[i];
		if (m->type == YNODE_MAP)
			return (ynode_get(m, key));
		for (j = 0; j < ynode_len(m); j++) {
			if ((v = ynode_get(m->items[j], key)) != NULL)
				return (v);
		}
	}
	return (NULL);
}

/* YAML 1.1's booleans, as compose reads them. */
int
ynode_true(const struct ynode *n)
{
	const char	*s = ynode_str(n);
	static const char *const yes[] = { "true", "True", "TRUE", "yes",
	    "Yes", "YES", "on", "On", "ON" };
	size_t		 i;

	for (i = 0; s != NULL && i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(s, yes[i]) == 0)
			return (1);
	}
	return (0);
}
