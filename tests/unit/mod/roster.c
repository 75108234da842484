/*
 * Unit tests for src/mod/roster.c: the roster transaction and the account
 * view against a real SQLite store thread. What they pin down is the
 * ordering invariant of docs/internals/presence.md: a continuation queued
 * with tern__view_when_ready() sees every change submitted before it, and
 * runs at once when nothing is in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <uv.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "mod/roster.h"
#include "server/server.h"
#include "server/sessions.h"
#include "server/shard.h"
#include "store/store.h"
#include "xml/xml.h"

#include "../store/helpers.h"

struct fixture {
    char *dir;               /* temporary directory */
    char *db;                /* database path */
    struct tern_config cfg;  /* what the store and the modules read */
    uv_loop_t loop;          /* runs store completions */
    struct tern_server srv;  /* the bits of a server the module uses */
    struct tern_shard shard; /* shard 0 */
    struct tern_shard *shards[1];
};

static int setup(void **state) {
    struct fixture *f = calloc(1, sizeof *f);
    f->dir = test_mkdtemp();
    f->db = test_path(f->dir, "tern.db");
    f->cfg = test_config(f->dir, f->db);
    struct tern_store_backend *b;
    char err[256];
    assert_int_equal(tern_store_backend_open(&f->cfg, &b, err, sizeof err), 0);
    struct tern_scram_creds creds = test_creds(1);
    assert_int_equal(b->ops->account_create(b, "alice", &creds), 0);
    assert_int_equal(b->ops->account_create(b, "bob", &creds), 0);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(tern_store_new(&f->loop, b, &f->srv.store), 0);
    f->srv.cfg = &f->cfg;
    f->srv.sessions = tern_sessions_new();
    f->shard.id = 0;
    f->shard.loop = &f->loop;
    f->shard.server = &f->srv;
    f->shards[0] = &f->shard;
    f->srv.shards = f->shards;
    f->srv.nshards = 1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    struct fixture *f = *state;
    tern_store_close(&f->srv.store);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    tern_sessions_free(&f->srv.sessions);
    test_rmtree(f->dir);
    free(f->dir);
    free(f->db);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

/* Everything the callbacks record, in the order it happened. */
static struct {
    char log[64][64]; /* what ran */
    int n;            /* entries */
} rec;

static void note(const char *fmt, const char *arg) {
    if (rec.n == 64)
        return; /* only the first ones are looked at */
    snprintf(rec.log[rec.n++], sizeof rec.log[0], fmt, arg);
}

/* A transition that gives the contact the subscription in t->op. */
static int apply_sub(struct tern__roster_txn *t, struct tern_roster_item *item, int *exists) {
    *exists = 1;
    item->sub = (enum tern_sub)t->op;
    t->write = 1;
    return 0;
}

static int apply_missing(struct tern__roster_txn *t, struct tern_roster_item *item, int *exists) {
    return *exists ? 0 : TERN_E_NOTFOUND;
}

static int last_err;

static void txn_noted(struct tern_shard *shard, struct tern__roster_txn *t, int err) {
    last_err = err;
    note("txn %s", t->contact);
}

static void submit_sub(struct fixture *f, const char *owner, const char *contact,
                       enum tern_sub sub) {
    struct tern__roster_txn *t = tern__roster_txn_new(&f->srv, owner, contact);
    t->op = (int)sub;
    t->apply = apply_sub;
    t->done = txn_noted;
    assert_int_equal(tern__roster_txn_submit(t), 0);
}

struct seen {
    const char *contact; /* whose flags to look at */
    unsigned flags;      /* what they were */
    int ran;             /* the continuation ran */
    int cancelled;       /* ... with shard NULL */
};

static void look(struct tern_shard *shard, struct tern__view *v, void *ud) {
    struct seen *s = ud;
    s->ran = 1;
    s->cancelled = shard == NULL;
    s->flags = tern__view_flags(v, s->contact);
    note("look %s", s->contact);
}

/* ---- tests --------------------------------------------------------------------------------------
 */

static void test_when_ready_sees_earlier_changes(void **state) {
    struct fixture *f = *state;
    rec.n = 0;
    struct tern__view *v = tern__view_acquire(&f->srv, "alice@localhost");
    submit_sub(f, "alice@localhost", "bob@localhost", TERN_SUB_FROM);
    struct seen s1 = {"bob@localhost", 0, 0, 0};
    tern__view_when_ready(&f->shard, v, look, &s1);
    assert_false(s1.ran); /* the load and the change are in flight */
    submit_sub(f, "alice@localhost", "bob@localhost", TERN_SUB_BOTH);
    struct seen s2 = {"bob@localhost", 0, 0, 0};
    tern__view_when_ready(&f->shard, v, look, &s2);
    uv_run(&f->loop, UV_RUN_DEFAULT);

    assert_true(s1.ran && s2.ran);
    assert_false(s1.cancelled);
    assert_true(tern__view_loaded(v));
    /* each continuation saw exactly what was submitted before it */
    assert_int_equal(s1.flags, TERN__VIEW_FROM);
    assert_int_equal(s2.flags, TERN__VIEW_FROM | TERN__VIEW_TO);
    assert_int_equal(rec.n, 4);
    assert_string_equal(rec.log[0], "txn bob@localhost");
    assert_string_equal(rec.log[1], "look bob@localhost");
    assert_string_equal(rec.log[2], "txn bob@localhost");
    assert_string_equal(rec.log[3], "look bob@localhost");

    /* nothing in flight: at once, on the caller's stack */
    struct seen s3 = {"bob@localhost", 0, 0, 0};
    tern__view_when_ready(&f->shard, v, look, &s3);
    assert_true(s3.ran);
    assert_int_equal(s3.flags, TERN__VIEW_FROM | TERN__VIEW_TO);
    tern__view_release(&v);
    assert_null(v);
}

static void test_view_loads_what_is_stored(void **state) {
    struct fixture *f = *state;
    rec.n = 0;
    /* changes made while alice has no view ... */
    submit_sub(f, "alice@localhost", "carol@localhost", TERN_SUB_TO);
    submit_sub(f, "alice@localhost", "dave@localhost", TERN_SUB_FROM);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_null(tern__view_find("alice@localhost"));
    /* ... are in the view once it is loaded */
    struct tern__view *v = tern__view_acquire(&f->srv, "alice@localhost");
    struct seen s = {"carol@localhost", 0, 0, 0};
    tern__view_when_ready(&f->shard, v, look, &s);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(s.ran);
    assert_int_equal(s.flags, TERN__VIEW_TO);
    size_t n;
    char **from = tern__view_contacts(v, TERN__VIEW_FROM, 0, &n);
    assert_int_equal(n, 1);
    assert_string_equal(from[0], "dave@localhost");
    tern_store_free_list(from, n);
    /* an account deleted elsewhere is forgotten by every view */
    tern__views_forget("dave@localhost");
    assert_int_equal(tern__view_flags(v, "dave@localhost"), 0);
    tern__view_release(&v);
}

static void test_failed_transition_writes_nothing(void **state) {
    struct fixture *f = *state;
    rec.n = 0;
    struct tern__roster_txn *t = tern__roster_txn_new(&f->srv, "bob@localhost", "nobody@localhost");
    t->apply = apply_missing;
    t->done = txn_noted;
    assert_int_equal(tern__roster_txn_submit(t), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(last_err, TERN_E_NOTFOUND);
    /* an item for an account that does not exist cannot be stored */
    submit_sub(f, "ghost@localhost", "bob@localhost", TERN_SUB_TO);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(last_err, TERN_E_NOTFOUND);
}

static void test_roster_limit(void **state) {
    struct fixture *f = *state;
    char jid[64];
    for (int i = 0; i < TERN_ROSTER_MAX; i++) {
        snprintf(jid, sizeof jid, "c%d@example.com", i);
        submit_sub(f, "bob@localhost", jid, TERN_SUB_NONE);
    }
    rec.n = 0;
    last_err = 1;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(last_err, 0);
    submit_sub(f, "bob@localhost", "one-too-many@example.com", TERN_SUB_NONE);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(last_err, TERN_E_LIMIT);
    /* an existing item can still change */
    submit_sub(f, "bob@localhost", "c7@example.com", TERN_SUB_TO);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(last_err, 0);
}

static void test_lasts(void **state) {
    struct fixture *f = *state;
    struct tern__view *v = tern__view_acquire(&f->srv, "alice@localhost");
    struct tern_xml *p = tern_xml_new(TERN_NS_CLIENT, "presence");
    struct tern_xml *show = tern_xml_add_el(p, NULL, "show");
    tern_xml_add_text(show, "away", 4);
    tern_xml_set_attr(p, "to", "someone@localhost");
    tern__view_set_last(v, "alice@localhost/a", 1, p);
    /* the same full JID bound again is another session */
    tern__view_set_last(v, "alice@localhost/a", 2, p);
    tern__view_set_last(v, "alice@localhost/a", 2, p); /* an update replaces */
    size_t n;
    struct tern_xml **ps = tern__view_lasts(v, "bob@localhost", &n);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(tern_xml_attr(ps[i], "from"), "alice@localhost/a");
        assert_string_equal(tern_xml_attr(ps[i], "to"), "bob@localhost");
        assert_non_null(tern_xml_child(ps[i], TERN_NS_CLIENT, "show"));
        tern_xml_unref(&ps[i]);
    }
    free(ps);
    tern__view_del_last(v, 1);
    ps = tern__view_lasts(v, "bob@localhost", &n);
    assert_int_equal(n, 1);
    tern_xml_unref(&ps[0]);
    free(ps);
    tern_xml_unref(&p);
    tern__view_release(&v);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* the load job still holds a reference */
    assert_null(tern__view_find("alice@localhost"));
}

static void test_item_xml(void **state) {
    struct tern_roster_item it = {0};
    char *groups[] = {(char *)"Friends", (char *)"Work"};
    it.jid = (char *)"bob@localhost";
    it.name = (char *)"Bob";
    it.sub = TERN_SUB_FROM;
    it.ask = 1;
    it.groups = groups;
    it.ngroups = 2;
    struct tern_xml *q = tern_xml_new(TERN_NS_ROSTER, "query");
    tern__roster_item_el(q, &it, 0);
    tern__roster_item_el(q, &it, 1);
    struct tern_buf b;
    tern_buf_init(&b, 4096);
    assert_int_equal(tern_xml_serialize(q, TERN_NS_CLIENT, &b), 0);
    assert_string_equal(b.data, "<query xmlns='jabber:iq:roster'>"
                                "<item jid='bob@localhost' name='Bob' subscription='from' "
                                "ask='subscribe'><group>Friends</group><group>Work</group></item>"
                                "<item jid='bob@localhost' subscription='remove'/></query>");
    tern_buf_free(&b);
    tern_xml_unref(&q);
}

int main(void) {
    tern_log_set_level(TERN_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_when_ready_sees_earlier_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_loads_what_is_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_transition_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roster_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lasts, setup, teardown),
        cmocka_unit_test(test_item_xml),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
