/* Writing element trees back as XML (see xml.h).
 *
 * Whatever a tree holds, the output must be well-formed XML 1.0 for the peer:
 * bytes that are not valid UTF-8 and characters XML 1.0 does not allow
 * (C0 controls other than tab, LF and CR; U+FFFE; U+FFFF) are dropped rather
 * than written. Element and attribute names are written as they are; trees
 * from the parser always carry valid names and code builds them from literals.
 */
#include "xml/xml.h"

#include <string.h>

#include "core/buf.h"
#include "core/err.h"

static int is_cont(unsigned char c) {
    return (c & 0xc0) == 0x80;
}

/* Length of the UTF-8 sequence at s (n > 0 bytes available, s[0] >= 0x80)
 * if it is well-formed and encodes a character XML 1.0 allows, else 0. */
static size_t utf8_char_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c >= 0xc2 && c <= 0xdf)
        return n >= 2 && is_cont(s[1]) ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || !is_cont(s[1]) || !is_cont(s[2]))
            return 0;
        if (c == 0xe0 && s[1] < 0xa0) /* overlong */
            return 0;
        if (c == 0xed && s[1] > 0x9f) /* UTF-16 surrogates */
            return 0;
        if (c == 0xef && s[1] == 0xbf && (s[2] == 0xbe || s[2] == 0xbf)) /* U+FFFE, U+FFFF */
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || !is_cont(s[1]) || !is_cont(s[2]) || !is_cont(s[3]))
            return 0;
        if (c == 0xf0 && s[1] < 0x90) /* overlong */
            return 0;
        if (c == 0xf4 && s[1] > 0x8f) /* above U+10FFFF */
            return 0;
        return 4;
    }
    return 0;
}

/*
 * Append s escaped. In attribute mode both quote characters are escaped, and
 * so are tab and LF, which attribute-value normalisation would otherwise turn
 * into spaces on the way back in. CR is escaped in both modes because a parser
 * folds a literal CR into LF.
 */
static int escape(struct tern_buf *out, const char *str, size_t len, int attr) {
    const unsigned char *s = (const unsigned char *)str;
    size_t run = 0; /* start of the pending run of bytes to copy as they are */
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        const char *rep = NULL;
        size_t adv = 1;
        int keep = 0;
        if (c >= 0x80) {
            adv = utf8_char_len(s + i, len - i);
            keep = adv > 0;
            if (!keep)
                adv = 1; /* drop one byte and resynchronise */
        } else {
            int drop = 0;
            switch (c) {
            case '&': rep = "&amp;"; break;
            case '<': rep = "&lt;"; break;
            case '>': rep = "&gt;"; break;
            case '\'': rep = attr ? "&apos;" : NULL; break;
            case '"': rep = attr ? "&quot;" : NULL; break;
            case '\t': rep = attr ? "&#9;" : NULL; break;
            case '\n': rep = attr ? "&#10;" : NULL; break;
            case '\r': rep = "&#13;"; break;
            default: drop = c < 0x20; break;
            }
            keep = !rep && !drop;
        }
        if (keep) {
            i += adv;
            continue;
        }
        int rc = tern_buf_add(out, s + run, i - run);
        if (rc)
            return rc;
        if (rep && (rc = tern_buf_adds(out, rep)))
            return rc;
        i += adv;
        run = i;
    }
    return tern_buf_add(out, s + run, len - run);
}

int tern_xml_escape(struct tern_buf *out, const char *s, size_t len) {
    return escape(out, s, len, 1);
}

static int write_attr(struct tern_buf *out, const char *name, const char *value) {
    int rc;
    if ((rc = tern_buf_adds(out, " ")) || (rc = tern_buf_adds(out, name)) ||
        (rc = tern_buf_adds(out, "='")) || (rc = escape(out, value, strlen(value), 1)) ||
        (rc = tern_buf_adds(out, "'")))
        return rc;
    return 0;
}

/* "<name xmlns='..' a='..'" followed by ">" or, without children, "/>". */
static int write_open(struct tern_buf *out, const struct tern_xml *el, const char *scope_ns) {
    int rc;
    if ((rc = tern_buf_adds(out, "<")) || (rc = tern_buf_adds(out, el->name)))
        return rc;
    if (strcmp(el->ns, scope_ns) != 0 && (rc = write_attr(out, "xmlns", el->ns)))
        return rc;
    for (size_t i = 0; i < el->nattrs; i++)
        if ((rc = write_attr(out, el->attrs[i].name, el->attrs[i].value)))
            return rc;
    return tern_buf_adds(out, el->children ? ">" : "/>");
}

static int write_close(struct tern_buf *out, const struct tern_xml *el) {
    int rc;
    if ((rc = tern_buf_adds(out, "</")) || (rc = tern_buf_adds(out, el->name)) ||
        (rc = tern_buf_adds(out, ">")))
        return rc;
    return 0;
}

/*
 * Pre-order walk with the parent/next links (no recursion, so tree depth does
 * not matter). Every element written declares its own namespace as the
 * default whenever it differs from its parent's, so the namespace in scope for
 * a child is always its parent's ns.
 */
int tern_xml_serialize(const struct tern_xml *el, const char *parent_ns, struct tern_buf *out) {
    size_t start = out->len;
    const struct tern_xml *n = el;
    int rc;
    for (;;) {
        if (n->kind == TERN_XML_TEXT)
            rc = escape(out, n->text, n->text_len, 0);
        else
            rc = write_open(out, n, n == el ? (parent_ns ? parent_ns : "") : n->parent->ns);
        if (rc)
            goto fail;
        if (n->kind == TERN_XML_ELEMENT && n->children) {
            n = n->children;
            continue;
        }
        while (n != el && !n->next) {
            n = n->parent;
            if ((rc = write_close(out, n)))
                goto fail;
        }
        if (n == el)
            break;
        n = n->next;
    }
    return 0;

fail:
    /* Leave the buffer as it was: half an element is of no use to anyone. */
    out->len = start;
    if (out->data)
        out->data[start] = '\0';
    return rc;
}
