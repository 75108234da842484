/* Element trees: what a stanza is once parsed, and how it is written back. */
#ifndef TERN_XML_XML_H
#define TERN_XML_XML_H

#include <stddef.h>

struct tern_buf;

/** An attribute. Namespaced attributes other than xml:* are not kept. */
struct tern_xml_attr {
    char *name;  /* "type", "id", or "xml:lang" for the XML namespace */
    char *value; /* unescaped UTF-8 value */
};

enum tern_xml_kind {
    TERN_XML_ELEMENT,
    TERN_XML_TEXT,
};

/**
 * A node of an element tree: an element or a run of character data.
 * A tree is refcounted at its root (stanzas are shared between queues);
 * children are owned by their parent and freed with it.
 */
struct tern_xml {
    enum tern_xml_kind kind;     /* element or text */
    struct tern_xml *parent;     /* NULL for a root */
    struct tern_xml *next;       /* next sibling */
    struct tern_xml *children;   /* first child (elements only) */
    struct tern_xml *last_child; /* last child, for O(1) append */
    char *name;                  /* element local name; NULL for text */
    char *ns;                    /* element namespace URI ("" for none); NULL for text */
    struct tern_xml_attr *attrs; /* element attributes */
    size_t nattrs;               /* used entries of attrs */
    size_t attrs_cap;            /* allocated entries of attrs */
    char *text;                  /* text node content (unescaped UTF-8); NULL for elements */
    size_t text_len;             /* bytes in text */
    int refs;                    /* references held on a root; 1 after _new */
    unsigned flags;              /* routing marks on a root (TERN_XML_F_*), 0 when parsed */
};

/** Delivered to several resources of its addressee (RFC 6121 §8.5.2.1.1). */
#define TERN_XML_F_MULTI 1u
/** Known to have reached one of them (written without SM, or acknowledged). */
#define TERN_XML_F_RECEIVED 2u

/** New element with namespace ns (may be "") and local name; refs = 1. */
struct tern_xml *tern_xml_new(const char *ns, const char *name);
/** Take one more reference to a root. */
struct tern_xml *tern_xml_ref(struct tern_xml *root);
/** Drop a reference; frees the tree when it was the last. Sets *root to NULL. */
void tern_xml_unref(struct tern_xml **root);
/** Deep copy (a new root with refs = 1). */
struct tern_xml *tern_xml_copy(const struct tern_xml *el);

/** Attribute value or NULL. */
const char *tern_xml_attr(const struct tern_xml *el, const char *name);
/** Set (replace) an attribute; value NULL removes it. */
void tern_xml_set_attr(struct tern_xml *el, const char *name, const char *value);

/** Append child (a root with refs 1, which becomes owned by el); returns child. */
struct tern_xml *tern_xml_add_child_take(struct tern_xml *el, struct tern_xml *child);
/** Create and append a child element with namespace ns (NULL = same as el). */
struct tern_xml *tern_xml_add_el(struct tern_xml *el, const char *ns, const char *name);
/** Append character data (merged with a preceding text node). */
void tern_xml_add_text(struct tern_xml *el, const char *text, size_t len);
/** Detach child from its parent; it becomes a root with refs 1 owned by the caller. */
struct tern_xml *tern_xml_detach(struct tern_xml *child);

/** First child element with this namespace (NULL = any) and name (NULL = any). */
struct tern_xml *tern_xml_child(const struct tern_xml *el, const char *ns, const char *name);
/** Next sibling element after cur matching ns/name the same way. */
struct tern_xml *tern_xml_next(const struct tern_xml *cur, const char *ns, const char *name);
/** First child element of any name (NULL if none). */
struct tern_xml *tern_xml_first_el(const struct tern_xml *el);
/** Concatenated character data of el's direct text children; caller frees. Never NULL. */
char *tern_xml_text(const struct tern_xml *el);

/**
 * Serialize el and its subtree to out. An xmlns attribute is written where the
 * element's namespace differs from parent_ns (pass the stream's content
 * namespace, e.g. "jabber:client", so stanzas carry no redundant xmlns).
 * Text and attribute values are escaped (& < > " ' and control characters
 * that XML 1.0 forbids are dropped). Returns TERN_E_LIMIT if out's ceiling is
 * hit, leaving out as it was. Does not recurse, so any depth is fine.
 * Bytes that are not valid UTF-8 are dropped too; CR (and in attributes tab
 * and LF) is written as a character reference so that it survives a reparse.
 */
int tern_xml_serialize(const struct tern_xml *el, const char *parent_ns, struct tern_buf *out);

/** Append s escaped for use in text or a single- or double-quoted attribute. */
int tern_xml_escape(struct tern_buf *out, const char *s, size_t len);

#endif
