/* Tests for src/xml/element.c: building, attributes, lookup, detach, copy, refs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "xml/xml.h"

static void test_new_and_children(void **state) {
    struct tern_xml *iq = tern_xml_new("jabber:client", "iq");
    assert_int_equal(iq->kind, TERN_XML_ELEMENT);
    assert_string_equal(iq->ns, "jabber:client");
    assert_string_equal(iq->name, "iq");
    assert_int_equal(iq->refs, 1);
    assert_null(iq->parent);
    assert_null(iq->children);

    struct tern_xml *q = tern_xml_add_el(iq, "jabber:iq:roster", "query");
    assert_ptr_equal(q->parent, iq);
    assert_string_equal(q->ns, "jabber:iq:roster");
    /* NULL namespace means the parent's. */
    struct tern_xml *item = tern_xml_add_el(q, NULL, "item");
    assert_string_equal(item->ns, "jabber:iq:roster");
    struct tern_xml *e = tern_xml_add_el(iq, NULL, "error");
    assert_string_equal(e->ns, "jabber:client");
    assert_ptr_equal(iq->children, q);
    assert_ptr_equal(iq->last_child, e);
    assert_ptr_equal(q->next, e);

    struct tern_xml *other = tern_xml_new("", "x");
    assert_string_equal(other->ns, "");
    assert_ptr_equal(tern_xml_add_child_take(iq, other), other);
    assert_ptr_equal(iq->last_child, other);
    assert_ptr_equal(other->parent, iq);
    tern_xml_unref(&iq);
    assert_null(iq);
}

static void test_text_merge(void **state) {
    struct tern_xml *m = tern_xml_new("jabber:client", "body");
    tern_xml_add_text(m, "Hello", 5);
    tern_xml_add_text(m, "", 0); /* nothing */
    tern_xml_add_text(m, ", world", 7);
    assert_non_null(m->children);
    assert_ptr_equal(m->children, m->last_child);
    assert_int_equal(m->children->kind, TERN_XML_TEXT);
    assert_int_equal(m->children->text_len, 12);
    assert_string_equal(m->children->text, "Hello, world");

    /* An element between text runs keeps them apart. */
    tern_xml_add_el(m, NULL, "b");
    tern_xml_add_text(m, "!", 1);
    char *t = tern_xml_text(m);
    assert_string_equal(t, "Hello, world!");
    free(t);

    /* Text with an embedded NUL keeps its length. */
    struct tern_xml *n = tern_xml_new("", "n");
    tern_xml_add_text(n, "a\0b", 3);
    assert_int_equal(n->children->text_len, 3);
    assert_memory_equal(n->children->text, "a\0b", 3);
    tern_xml_unref(&n);

    struct tern_xml *empty = tern_xml_new("", "e");
    t = tern_xml_text(empty);
    assert_string_equal(t, "");
    free(t);
    tern_xml_unref(&empty);
    tern_xml_unref(&m);
}

static void test_attrs(void **state) {
    struct tern_xml *el = tern_xml_new("jabber:client", "message");
    assert_null(tern_xml_attr(el, "to"));
    tern_xml_set_attr(el, "to", "juliet@example.com");
    tern_xml_set_attr(el, "type", "chat");
    tern_xml_set_attr(el, "id", "m1");
    tern_xml_set_attr(el, "xml:lang", "en");
    assert_int_equal(el->nattrs, 4);
    assert_string_equal(tern_xml_attr(el, "to"), "juliet@example.com");
    assert_string_equal(tern_xml_attr(el, "xml:lang"), "en");

    /* Replace keeps the position. */
    tern_xml_set_attr(el, "type", "normal");
    assert_int_equal(el->nattrs, 4);
    assert_string_equal(el->attrs[1].name, "type");
    assert_string_equal(el->attrs[1].value, "normal");

    /* Setting an attribute to its own value (aliasing) is safe. */
    tern_xml_set_attr(el, "id", tern_xml_attr(el, "id"));
    assert_string_equal(tern_xml_attr(el, "id"), "m1");

    /* Remove keeps the order of the rest. */
    tern_xml_set_attr(el, "type", NULL);
    assert_int_equal(el->nattrs, 3);
    assert_null(tern_xml_attr(el, "type"));
    assert_string_equal(el->attrs[0].name, "to");
    assert_string_equal(el->attrs[1].name, "id");
    assert_string_equal(el->attrs[2].name, "xml:lang");
    tern_xml_set_attr(el, "absent", NULL);
    assert_int_equal(el->nattrs, 3);

    /* Growing past the initial capacity. */
    char name[16];
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof(name), "a%d", i);
        tern_xml_set_attr(el, name, name);
    }
    assert_int_equal(el->nattrs, 53);
    assert_string_equal(tern_xml_attr(el, "a49"), "a49");
    tern_xml_unref(&el);
}

static void test_lookup(void **state) {
    struct tern_xml *iq = tern_xml_new("jabber:client", "iq");
    tern_xml_add_text(iq, " ", 1);
    struct tern_xml *a = tern_xml_add_el(iq, "urn:a", "x");
    tern_xml_add_text(iq, " ", 1);
    struct tern_xml *b = tern_xml_add_el(iq, "urn:b", "x");
    struct tern_xml *c = tern_xml_add_el(iq, "urn:a", "y");
    struct tern_xml *d = tern_xml_add_el(iq, "urn:a", "x");

    assert_ptr_equal(tern_xml_first_el(iq), a);
    assert_ptr_equal(tern_xml_child(iq, NULL, NULL), a);
    assert_ptr_equal(tern_xml_child(iq, "urn:b", NULL), b);
    assert_ptr_equal(tern_xml_child(iq, NULL, "y"), c);
    assert_ptr_equal(tern_xml_child(iq, "urn:a", "y"), c);
    assert_null(tern_xml_child(iq, "urn:b", "y"));
    assert_null(tern_xml_child(iq, "urn:c", NULL));

    assert_ptr_equal(tern_xml_next(a, "urn:a", "x"), d);
    assert_ptr_equal(tern_xml_next(a, NULL, "x"), b);
    assert_ptr_equal(tern_xml_next(a, NULL, NULL), b);
    assert_null(tern_xml_next(d, NULL, NULL));

    int n = 0;
    for (struct tern_xml *x = tern_xml_child(iq, "urn:a", NULL); x;
         x = tern_xml_next(x, "urn:a", NULL))
        n++;
    assert_int_equal(n, 3);

    struct tern_xml *leaf = tern_xml_new("", "leaf");
    assert_null(tern_xml_first_el(leaf));
    tern_xml_unref(&leaf);
    tern_xml_unref(&iq);
}

static void test_detach(void **state) {
    struct tern_xml *p = tern_xml_new("", "p");
    struct tern_xml *a = tern_xml_add_el(p, NULL, "a");
    struct tern_xml *b = tern_xml_add_el(p, NULL, "b");
    struct tern_xml *c = tern_xml_add_el(p, NULL, "c");
    tern_xml_add_el(b, NULL, "inner");

    /* Middle. */
    assert_ptr_equal(tern_xml_detach(b), b);
    assert_null(b->parent);
    assert_null(b->next);
    assert_int_equal(b->refs, 1);
    assert_ptr_equal(p->children, a);
    assert_ptr_equal(a->next, c);
    assert_ptr_equal(p->last_child, c);
    assert_non_null(tern_xml_child(b, NULL, "inner"));

    /* Last. */
    tern_xml_detach(c);
    assert_ptr_equal(p->last_child, a);
    assert_null(a->next);
    /* A detached element can be attached elsewhere. */
    tern_xml_add_child_take(b, c);
    assert_ptr_equal(b->last_child, c);

    /* Only child. */
    tern_xml_detach(a);
    assert_null(p->children);
    assert_null(p->last_child);
    /* A root detaches to itself. */
    assert_ptr_equal(tern_xml_detach(a), a);

    /* The parent can still grow. */
    tern_xml_add_el(p, NULL, "d");
    assert_string_equal(p->children->name, "d");

    tern_xml_unref(&a);
    tern_xml_unref(&b);
    tern_xml_unref(&p);
}

static void assert_trees_equal(const struct tern_xml *x, const struct tern_xml *y) {
    assert_int_equal(x->kind, y->kind);
    if (x->kind == TERN_XML_TEXT) {
        assert_int_equal(x->text_len, y->text_len);
        assert_memory_equal(x->text, y->text, x->text_len);
        return;
    }
    assert_string_equal(x->ns, y->ns);
    assert_string_equal(x->name, y->name);
    assert_int_equal(x->nattrs, y->nattrs);
    for (size_t i = 0; i < x->nattrs; i++) {
        assert_string_equal(x->attrs[i].name, y->attrs[i].name);
        assert_string_equal(x->attrs[i].value, y->attrs[i].value);
    }
    const struct tern_xml *cx = x->children, *cy = y->children;
    for (; cx && cy; cx = cx->next, cy = cy->next) {
        assert_ptr_equal(cy->parent, y);
        assert_trees_equal(cx, cy);
    }
    assert_null(cx);
    assert_null(cy);
}

static void test_copy(void **state) {
    struct tern_xml *m = tern_xml_new("jabber:client", "message");
    tern_xml_set_attr(m, "to", "romeo@example.net");
    tern_xml_set_attr(m, "xml:lang", "en");
    struct tern_xml *body = tern_xml_add_el(m, NULL, "body");
    tern_xml_add_text(body, "Art thou not Romeo?", 19);
    struct tern_xml *x = tern_xml_add_el(m, "urn:x", "x");
    tern_xml_add_el(tern_xml_add_el(x, NULL, "deep"), NULL, "deeper");
    tern_xml_add_text(x, "tail", 4);
    tern_xml_add_el(m, NULL, "empty");

    struct tern_xml *cp = tern_xml_copy(m);
    assert_ptr_not_equal(cp, m);
    assert_int_equal(cp->refs, 1);
    assert_null(cp->parent);
    assert_trees_equal(m, cp);
    assert_ptr_equal(cp->last_child->parent, cp);

    /* Independent: changing the copy leaves the original alone. */
    tern_xml_set_attr(cp, "to", "other");
    assert_string_equal(tern_xml_attr(m, "to"), "romeo@example.net");

    /* Copy of a subtree is a new root. */
    struct tern_xml *xc = tern_xml_copy(x);
    assert_null(xc->parent);
    assert_null(xc->next);
    assert_trees_equal(x, xc);
    tern_xml_unref(&xc);

    /* Copy of a leaf and of a text node. */
    struct tern_xml *lc = tern_xml_copy(m->last_child);
    assert_string_equal(lc->name, "empty");
    assert_null(lc->children);
    tern_xml_unref(&lc);
    struct tern_xml *tc = tern_xml_copy(body->children);
    assert_int_equal(tc->kind, TERN_XML_TEXT);
    assert_string_equal(tc->text, "Art thou not Romeo?");
    tern_xml_unref(&tc);

    tern_xml_unref(&cp);
    tern_xml_unref(&m);
}

static void test_refcount(void **state) {
    struct tern_xml *m = tern_xml_new("jabber:client", "presence");
    tern_xml_add_el(m, NULL, "show");
    struct tern_xml *r = tern_xml_ref(m);
    assert_ptr_equal(r, m);
    assert_int_equal(m->refs, 2);
    tern_xml_unref(&r);
    assert_null(r);
    assert_int_equal(m->refs, 1);
    /* Still usable after the first unref. */
    assert_string_equal(m->children->name, "show");
    tern_xml_unref(&m);
    assert_null(m);
    tern_xml_unref(&m); /* NULL is fine */
}

static void test_deep_tree(void **state) {
    /* Free and copy do not recurse: a very deep tree is fine. */
    struct tern_xml *root = tern_xml_new("", "r");
    struct tern_xml *cur = root;
    for (int i = 0; i < 200000; i++)
        cur = tern_xml_add_el(cur, NULL, "d");
    struct tern_xml *cp = tern_xml_copy(root);
    tern_xml_unref(&cp);
    tern_xml_unref(&root);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_and_children),
        cmocka_unit_test(test_text_merge),
        cmocka_unit_test(test_attrs),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_detach),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_deep_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
