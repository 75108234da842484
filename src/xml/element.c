/* Element trees: construction, lookup, copy and release (see xml.h).
 *
 * Trees that come off the wire can be wide (many children) and, when a caller
 * configures a generous depth limit, deep. Nothing here recurses: free and
 * copy walk the tree with the parent/next links, so a deep tree cannot
 * exhaust the stack.
 */
#include "xml/xml.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

static struct tern_xml *node_new(enum tern_xml_kind kind) {
    struct tern_xml *n = tern_calloc(1, sizeof(*n));
    n->kind = kind;
    n->refs = 1;
    return n;
}

static struct tern_xml *text_new(const char *text, size_t len) {
    struct tern_xml *n = node_new(TERN_XML_TEXT);
    n->text = tern_strndup(text, len);
    n->text_len = len;
    return n;
}

struct tern_xml *tern_xml_new(const char *ns, const char *name) {
    struct tern_xml *el = node_new(TERN_XML_ELEMENT);
    el->ns = tern_strdup(ns ? ns : "");
    el->name = tern_strdup(name ? name : "");
    return el;
}

struct tern_xml *tern_xml_ref(struct tern_xml *root) {
    assert(root->parent == NULL);
    root->refs++;
    return root;
}

static void node_free_fields(struct tern_xml *n) {
    for (size_t i = 0; i < n->nattrs; i++) {
        free(n->attrs[i].name);
        free(n->attrs[i].value);
    }
    free(n->attrs);
    free(n->name);
    free(n->ns);
    free(n->text);
    free(n);
}

/* Free n and everything below it. The children of each freed node are spliced
 * in front of the work list, so the walk needs no stack. */
static void tree_free(struct tern_xml *n) {
    n->next = NULL;
    struct tern_xml *todo = n;
    while (todo) {
        struct tern_xml *cur = todo;
        todo = cur->next;
        if (cur->children) {
            cur->last_child->next = todo;
            todo = cur->children;
        }
        node_free_fields(cur);
    }
}

void tern_xml_unref(struct tern_xml **root) {
    struct tern_xml *el = *root;
    if (!el)
        return;
    *root = NULL;
    /* Only a root carries references; a child belongs to its parent. */
    assert(el->parent == NULL);
    assert(el->refs > 0);
    if (--el->refs > 0)
        return;
    tree_free(el);
}

static void append(struct tern_xml *el, struct tern_xml *child) {
    child->parent = el;
    child->next = NULL;
    if (el->last_child)
        el->last_child->next = child;
    else
        el->children = child;
    el->last_child = child;
}

/* A copy of one node without its children. */
static struct tern_xml *node_clone(const struct tern_xml *src) {
    if (src->kind == TERN_XML_TEXT)
        return text_new(src->text, src->text_len);
    struct tern_xml *n = tern_xml_new(src->ns, src->name);
    if (src->nattrs) {
        n->attrs = tern_calloc(src->nattrs, sizeof(*n->attrs));
        n->attrs_cap = src->nattrs;
        for (size_t i = 0; i < src->nattrs; i++) {
            n->attrs[i].name = tern_strdup(src->attrs[i].name);
            n->attrs[i].value = tern_strdup(src->attrs[i].value);
        }
        n->nattrs = src->nattrs;
    }
    return n;
}

struct tern_xml *tern_xml_copy(const struct tern_xml *el) {
    struct tern_xml *root = node_clone(el);
    const struct tern_xml *s = el;
    struct tern_xml *d = root;
    /* Pre-order walk of the source; d is always the copy of s. */
    for (;;) {
        if (s->children) {
            s = s->children;
            struct tern_xml *c = node_clone(s);
            append(d, c);
            d = c;
            continue;
        }
        while (s != el && !s->next) {
            s = s->parent;
            d = d->parent;
        }
        if (s == el)
            break;
        s = s->next;
        struct tern_xml *c = node_clone(s);
        append(d->parent, c);
        d = c;
    }
    return root;
}

const char *tern_xml_attr(const struct tern_xml *el, const char *name) {
    for (size_t i = 0; i < el->nattrs; i++)
        if (strcmp(el->attrs[i].name, name) == 0)
            return el->attrs[i].value;
    return NULL;
}

void tern_xml_set_attr(struct tern_xml *el, const char *name, const char *value) {
    assert(el->kind == TERN_XML_ELEMENT);
    for (size_t i = 0; i < el->nattrs; i++) {
        if (strcmp(el->attrs[i].name, name) != 0)
            continue;
        if (value) {
            char *v = tern_strdup(value);
            free(el->attrs[i].value);
            el->attrs[i].value = v;
            return;
        }
        free(el->attrs[i].name);
        free(el->attrs[i].value);
        /* Keep the order of the others: it is the order they are written in. */
        memmove(&el->attrs[i], &el->attrs[i + 1], (el->nattrs - i - 1) * sizeof(*el->attrs));
        el->nattrs--;
        return;
    }
    if (!value)
        return;
    if (el->nattrs == el->attrs_cap) {
        el->attrs_cap = el->attrs_cap ? el->attrs_cap * 2 : 4;
        el->attrs = tern_realloc(el->attrs, el->attrs_cap * sizeof(*el->attrs));
    }
    el->attrs[el->nattrs].name = tern_strdup(name);
    el->attrs[el->nattrs].value = tern_strdup(value);
    el->nattrs++;
}

struct tern_xml *tern_xml_add_child_take(struct tern_xml *el, struct tern_xml *child) {
    assert(el->kind == TERN_XML_ELEMENT);
    assert(child->parent == NULL && child->refs == 1 && child != el);
    append(el, child);
    return child;
}

struct tern_xml *tern_xml_add_el(struct tern_xml *el, const char *ns, const char *name) {
    return tern_xml_add_child_take(el, tern_xml_new(ns ? ns : el->ns, name));
}

void tern_xml_add_text(struct tern_xml *el, const char *text, size_t len) {
    assert(el->kind == TERN_XML_ELEMENT);
    if (len == 0)
        return;
    struct tern_xml *last = el->last_child;
    if (last && last->kind == TERN_XML_TEXT) {
        /* Callers that append many small runs (the parser) batch them first,
         * so a plain realloc per call is enough here. */
        last->text = tern_realloc(last->text, last->text_len + len + 1);
        memcpy(last->text + last->text_len, text, len);
        last->text_len += len;
        last->text[last->text_len] = '\0';
        return;
    }
    append(el, text_new(text, len));
}

struct tern_xml *tern_xml_detach(struct tern_xml *child) {
    struct tern_xml *parent = child->parent;
    if (!parent)
        return child;
    struct tern_xml *prev = NULL;
    for (struct tern_xml *c = parent->children; c != child; c = c->next)
        prev = c;
    if (prev)
        prev->next = child->next;
    else
        parent->children = child->next;
    if (parent->last_child == child)
        parent->last_child = prev;
    child->parent = NULL;
    child->next = NULL;
    child->refs = 1;
    return child;
}

static int matches(const struct tern_xml *n, const char *ns, const char *name) {
    return n->kind == TERN_XML_ELEMENT && (!ns || strcmp(n->ns, ns) == 0) &&
           (!name || strcmp(n->name, name) == 0);
}

struct tern_xml *tern_xml_child(const struct tern_xml *el, const char *ns, const char *name) {
    for (struct tern_xml *c = el->children; c; c = c->next)
        if (matches(c, ns, name))
            return c;
    return NULL;
}

struct tern_xml *tern_xml_next(const struct tern_xml *cur, const char *ns, const char *name) {
    for (struct tern_xml *c = cur->next; c; c = c->next)
        if (matches(c, ns, name))
            return c;
    return NULL;
}

struct tern_xml *tern_xml_first_el(const struct tern_xml *el) {
    return tern_xml_child(el, NULL, NULL);
}

char *tern_xml_text(const struct tern_xml *el) {
    if (el->kind == TERN_XML_TEXT)
        return tern_strndup(el->text, el->text_len);
    size_t len = 0;
    for (const struct tern_xml *c = el->children; c; c = c->next)
        if (c->kind == TERN_XML_TEXT)
            len += c->text_len;
    char *out = tern_malloc(len + 1);
    size_t off = 0;
    for (const struct tern_xml *c = el->children; c; c = c->next) {
        if (c->kind == TERN_XML_TEXT) {
            memcpy(out + off, c->text, c->text_len);
            off += c->text_len;
        }
    }
    out[off] = '\0';
    return out;
}
