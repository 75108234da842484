/* Tests for the push-registration operations of src/store/sqlite.c (XEP-0357). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/log.h"
#include "store/store.h"

#include "helpers.h"

struct fixture {
    char *dir;                    /* temporary directory, removed at teardown */
    char *db_path;                /* dir/tern.db */
    struct tern_store_backend *b; /* open backend; alice and bob have accounts */
};

static int setup(void **state) {
    struct fixture *fx = calloc(1, sizeof *fx);
    fx->dir = test_mkdtemp();
    fx->db_path = test_path(fx->dir, "tern.db");
    fx->b = test_backend_open(fx->dir, fx->db_path);
    assert_non_null(fx->b);
    assert_int_equal(test_add_account(fx->b, "alice"), 0);
    assert_int_equal(test_add_account(fx->b, "bob"), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    struct fixture *fx = *state;
    tern_store_backend_close(&fx->b);
    test_rmtree(fx->dir);
    free(fx->db_path);
    free(fx->dir);
    free(fx);
    return 0;
}

static struct tern_push_reg reg(const char *jid, const char *node, const char *options,
                                const char *resource, int64_t created) {
    struct tern_push_reg r = {
        .jid = (char *)jid,
        .node = (char *)node,
        .options = (char *)options,
        .resource = (char *)resource,
        .created_at = created,
    };
    return r;
}

/* Put with no limit; the call must succeed and evict nothing. */
static void put(struct tern_store_backend *b, const char *user, struct tern_push_reg r) {
    struct tern_push_reg *ev = (struct tern_push_reg *)1;
    size_t nev = 99;
    assert_int_equal(b->ops->push_put(b, user, &r, 0, &ev, &nev), 0);
    assert_null(ev);
    assert_int_equal(nev, 0);
}

static size_t count(struct tern_store_backend *b, const char *user) {
    struct tern_push_reg *regs = NULL;
    size_t n = 99;
    assert_int_equal(b->ops->push_get(b, user, &regs, &n), 0);
    tern_push_regs_free(regs, n);
    return n;
}

static void test_put_get(void **state) {
    struct tern_store_backend *b = ((struct fixture *)*state)->b;
    struct tern_push_reg *regs = (struct tern_push_reg *)1;
    size_t n = 99;

    assert_int_equal(b->ops->push_get(b, "alice", &regs, &n), 0);
    assert_null(regs);
    assert_int_equal(n, 0);

    /* Stored out of created_at order: read back oldest first. */
    put(b, "alice", reg("push.example", "n2", "<x xmlns='jabber:x:data'/>", "phone", 2000));
    struct tern_push_reg r1 = reg("push.example", "n1", NULL, NULL, 1000);
    r1.flags = TERN_PUSH_F_WAKE;
    put(b, "alice", r1);
    put(b, "bob", reg("push.example", "n1", NULL, "x", 500));

    assert_int_equal(b->ops->push_get(b, "alice", &regs, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(regs[0].jid, "push.example");
    assert_string_equal(regs[0].node, "n1");
    assert_null(regs[0].options);
    assert_null(regs[0].resource);
    assert_int_equal(regs[0].flags, TERN_PUSH_F_WAKE);
    assert_int_equal(regs[0].created_at, 1000);
    assert_int_equal(regs[0].errors, 0);
    assert_string_equal(regs[1].node, "n2");
    assert_string_equal(regs[1].options, "<x xmlns='jabber:x:data'/>");
    assert_string_equal(regs[1].resource, "phone");
    assert_int_equal(regs[1].flags, 0);
    assert_int_equal(regs[1].created_at, 2000);
    tern_push_regs_free(regs, n);
    assert_int_equal(count(b, "bob"), 1);
}

/* The same (jid, node) again replaces options, resource and time, and the
 * error count starts again. */
static void test_replace(void **state) {
    struct tern_store_backend *b = ((struct fixture *)*state)->b;
    struct tern_push_reg *regs = NULL;
    size_t n = 0;
    int errors = 0;

    put(b, "alice", reg("push.example", "n1", "<x>first</x>", "a", 1000));
    put(b, "alice", reg("push.example", "n2", NULL, "a", 1500));
    assert_int_equal(b->ops->push_error(b, "alice", "push.example", "n1", 0, &errors), 0);
    assert_int_equal(errors, 1);
    put(b, "alice", reg("push.example", "n1", "<x>second</x>", "b", 2000));

    assert_int_equal(b->ops->push_get(b, "alice", &regs, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(regs[0].node, "n2");
    assert_string_equal(regs[1].node, "n1");
    assert_string_equal(regs[1].options, "<x>second</x>");
    assert_string_equal(regs[1].resource, "b");
    assert_int_equal(regs[1].created_at, 2000);
    assert_int_equal(regs[1].errors, 0);
    tern_push_regs_free(regs, n);

    /* Options can be dropped by enabling again without them. */
    put(b, "alice", reg("push.example", "n1", NULL, NULL, 3000));
    assert_int_equal(b->ops->push_get(b, "alice", &regs, &n), 0);
    assert_null(regs[1].options);
    assert_null(regs[1].resource);
    tern_push_regs_free(regs, n);
}

/* Over max, the oldest go and are reported, oldest first; a re-enabled
 * registration counts as new. */
static void test_evict_oldest(void **state) {
    struct tern_store_backend *b = ((struct fixture *)*state)->b;
    struct tern_push_reg *ev = NULL, *regs = NULL;
    size_t nev = 0, n = 0;

    for (int i = 0; i < 3; i++) {
        char node[8];
        snprintf(node, sizeof node, "n%d", i);
        struct tern_push_reg r = reg("push.example", node, NULL, NULL, 1000 + i);
        assert_int_equal(b->ops->push_put(b, "alice", &r, 3, &ev, &nev), 0);
        assert_int_equal(nev, 0);
    }
    /* n0 enabled again: now the newest, so n1 is the oldest. */
    struct tern_push_reg again = reg("push.example", "n0", NULL, NULL, 2000);
    assert_int_equal(b->ops->push_put(b, "alice", &again, 3, &ev, &nev), 0);
    assert_int_equal(nev, 0);

    struct tern_push_reg r = reg("other.example", "x", NULL, NULL, 3000);
    assert_int_equal(b->ops->push_put(b, "alice", &r, 3, &ev, &nev), 0);
    assert_int_equal(nev, 1);
    assert_string_equal(ev[0].jid, "push.example");
    assert_string_equal(ev[0].node, "n1");
    tern_push_regs_free(ev, nev);

    /* A lower limit takes several at once; same millisecond: insertion order. */
    r = reg("other.example", "y", NULL, NULL, 3000);
    assert_int_equal(b->ops->push_put(b, "alice", &r, 2, &ev, &nev), 0);
    assert_int_equal(nev, 2);
    assert_string_equal(ev[0].node, "n2");
    assert_string_equal(ev[1].node, "n0");
    tern_push_regs_free(ev, nev);

    assert_int_equal(b->ops->push_get(b, "alice", &regs, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(regs[0].node, "x");
    assert_string_equal(regs[1].node, "y");
    tern_push_regs_free(regs, n);

    /* Evicted registrations need not be returned. */
    r = reg("other.example", "z", NULL, NULL, 4000);
    assert_int_equal(b->ops->push_put(b, "alice", &r, 1, NULL, NULL), 0);
    assert_int_equal(count(b, "alice"), 1);
    /* Another user's registrations are not counted. */
    assert_int_equal(count(b, "bob"), 0);
}

static void test_del(void **state) {
    struct tern_store_backend *b = ((struct fixture *)*state)->b;
    size_t removed = 99;

    put(b, "alice", reg("a.example", "n1", NULL, NULL, 1));
    put(b, "alice", reg("a.example", "n2", NULL, NULL, 2));
    put(b, "alice", reg("a.example", "n3", NULL, NULL, 3));
    put(b, "alice", reg("b.example", "n1", NULL, NULL, 4));
    put(b, "bob", reg("a.example", "n1", NULL, NULL, 5));

    assert_int_equal(b->ops->push_del(b, "alice", "a.example", "nope", &removed), 0);
    assert_int_equal(removed, 0);
    assert_int_equal(b->ops->push_del(b, "alice", "nobody.example", NULL, &removed), 0);
    assert_int_equal(removed, 0);
    assert_int_equal(b->ops->push_del(b, "alice", "a.example", "n1", &removed), 0);
    assert_int_equal(removed, 1);
    assert_int_equal(count(b, "alice"), 3);
    assert_int_equal(b->ops->push_del(b, "alice", "a.example", NULL, &removed), 0);
    assert_int_equal(removed, 2);
    assert_int_equal(count(b, "alice"), 1);
    assert_int_equal(count(b, "bob"), 1);
    put(b, "alice", reg("c.example", "n1", NULL, NULL, 6));
    assert_int_equal(b->ops->push_del(b, "alice", NULL, NULL, NULL), 0);
    assert_int_equal(count(b, "alice"), 0);
    assert_int_equal(count(b, "bob"), 1);
    /* A node without a jid names nothing. */
    assert_int_equal(b->ops->push_del(b, "alice", NULL, "n1", &removed), TERN_E_INVAL);
}

/* Consecutive errors count up; at max_errors the registration goes; a
 * success starts the count again. */
static void test_errors(void **state) {
    struct tern_store_backend *b = ((struct fixture *)*state)->b;
    struct tern_push_reg *regs = NULL;
    size_t n = 0;
    int errors = 0;

    put(b, "alice", reg("push.example", "n1", NULL, NULL, 1));
    put(b, "alice", reg("push.example", "n2", NULL, NULL, 2));
    assert_int_equal(b->ops->push_error(b, "alice", "push.example", "n1", 3, &errors), 0);
    assert_int_equal(errors, 1);
    assert_int_equal(b->ops->push_error(b, "alice", "push.example", "n1", 3, &errors), 0);
    assert_int_equal(errors, 2);
    assert_int_equal(b->ops->push_ok(b, "alice", "push.example", "n1"), 0);
    assert_int_equal(b->ops->push_get(b, "alice", &regs, &n), 0);
    assert_int_equal(regs[0].errors, 0);
    tern_push_regs_free(regs, n);
    /* push_ok on a registration without errors, or on none at all, is fine. */
    assert_int_equal(b->ops->push_ok(b, "alice", "push.example", "n1"), 0);
    assert_int_equal(b->ops->push_ok(b, "alice", "push.example", "none"), 0);

    for (int i = 1; i <= 3; i++) {
        assert_int_equal(b->ops->push_error(b, "alice", "push.example", "n1", 3, &errors), 0);
        assert_int_equal(errors, i);
    }
    assert_int_equal(b->ops->push_get(b, "alice", &regs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(regs[0].node, "n2");
    tern_push_regs_free(regs, n);
    assert_int_equal(b->ops->push_error(b, "alice", "push.example", "n1", 3, &errors),
                     TERN_E_NOTFOUND);
    /* max_errors 0: counted, never removed. */
    for (int i = 1; i <= 5; i++)
        assert_int_equal(b->ops->push_error(b, "alice", "push.example", "n2", 0, &errors), 0);
    assert_int_equal(errors, 5);
    assert_int_equal(count(b, "alice"), 1);
}

static void test_needs_account(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    struct tern_push_reg r = reg("push.example", "n1", NULL, NULL, 1);
    struct tern_push_reg *ev = NULL;
    size_t nev = 0;

    assert_int_equal(b->ops->push_put(b, "carol", &r, 5, &ev, &nev), TERN_E_NOTFOUND);
    assert_int_equal(count(b, "carol"), 0);
    r.node = NULL;
    assert_int_equal(b->ops->push_put(b, "alice", &r, 5, &ev, &nev), TERN_E_INVAL);
    r.node = (char *)"n1";
    r.jid = NULL;
    assert_int_equal(b->ops->push_put(b, "alice", &r, 5, &ev, &nev), TERN_E_INVAL);
    assert_int_equal(count(b, "alice"), 0);

    /* Deleting the account takes its registrations; a new one starts empty. */
    put(b, "alice", reg("push.example", "n1", NULL, NULL, 1));
    put(b, "bob", reg("push.example", "n1", NULL, NULL, 1));
    assert_int_equal(b->ops->account_delete(b, "alice"), 0);
    assert_int_equal(test_add_account(b, "alice"), 0);
    assert_int_equal(count(b, "alice"), 0);
    assert_int_equal(count(b, "bob"), 1);
}

/* Inside a caller's transaction, a failing put leaves nothing behind, and a
 * rolled-back put (with its eviction) is undone whole. */
static void test_all_or_nothing(void **state) {
    struct tern_store_backend *b = ((struct fixture *)*state)->b;
    struct tern_push_reg *ev = NULL;
    size_t nev = 0;

    put(b, "alice", reg("push.example", "old", NULL, NULL, 1));
    assert_int_equal(b->ops->begin(b), 0);
    assert_int_equal(b->ops->savepoint(b), 0);
    struct tern_push_reg r = reg("push.example", "new", NULL, NULL, 2);
    assert_int_equal(b->ops->push_put(b, "alice", &r, 1, &ev, &nev), 0);
    assert_int_equal(nev, 1);
    tern_push_regs_free(ev, nev);
    assert_int_equal(b->ops->rollback_to(b), 0);
    assert_int_equal(b->ops->commit(b), 0);

    struct tern_push_reg *regs = NULL;
    size_t n = 0;
    assert_int_equal(b->ops->push_get(b, "alice", &regs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(regs[0].node, "old");
    tern_push_regs_free(regs, n);
}

/* Registrations survive closing and reopening the file. */
static void test_survives_reopen(void **state) {
    struct fixture *fx = *state;
    put(fx->b, "alice", reg("push.example", "n1", "<x/>", "r", 42));
    tern_store_backend_close(&fx->b);
    fx->b = test_backend_open(fx->dir, fx->db_path);
    assert_non_null(fx->b);
    struct tern_push_reg *regs = NULL;
    size_t n = 0;
    assert_int_equal(fx->b->ops->push_get(fx->b, "alice", &regs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(regs[0].options, "<x/>");
    assert_int_equal(regs[0].created_at, 42);
    tern_push_regs_free(regs, n);
}

static void options_are(struct tern_store_backend *b, const char *user, int senders, int cnt,
                        int bodies) {
    struct tern_push_options o = {-1, -1, -1};
    assert_int_equal(b->ops->push_options_get(b, user, &o), 0);
    assert_int_equal(o.senders, senders);
    assert_int_equal(o.count, cnt);
    assert_int_equal(o.bodies, bodies);
}

/* A user's content options: set, replaced, per user, and gone with the last
 * registration whichever way it goes (disable, errors, account deletion). */
static void test_options(void **state) {
    struct tern_store_backend *b = ((struct fixture *)*state)->b;
    struct tern_push_options o = {0};
    int errors = 0;

    assert_int_equal(b->ops->push_options_get(b, "alice", &o), TERN_E_NOTFOUND);
    put(b, "alice", reg("push.example", "n1", NULL, NULL, 1));
    put(b, "alice", reg("push.example", "n2", NULL, NULL, 2));
    struct tern_push_options set = {.senders = 1, .count = 1, .bodies = 0};
    assert_int_equal(b->ops->push_options_put(b, "alice", &set), 0);
    options_are(b, "alice", 1, 1, 0);
    set = (struct tern_push_options){.senders = 0, .count = 2, .bodies = 0}; /* stored as 0/1 */
    assert_int_equal(b->ops->push_options_put(b, "alice", &set), 0);
    options_are(b, "alice", 0, 1, 0);
    assert_int_equal(b->ops->push_options_get(b, "bob", &o), TERN_E_NOTFOUND);

    /* One registration left: the options stay. */
    assert_int_equal(b->ops->push_del(b, "alice", "push.example", "n1", NULL), 0);
    options_are(b, "alice", 0, 1, 0);
    /* The last one goes through errors: the options go with it. */
    assert_int_equal(b->ops->push_error(b, "alice", "push.example", "n2", 1, &errors), 0);
    assert_int_equal(count(b, "alice"), 0);
    assert_int_equal(b->ops->push_options_get(b, "alice", &o), TERN_E_NOTFOUND);

    /* Disable-all, and account deletion. */
    put(b, "alice", reg("push.example", "n1", NULL, NULL, 3));
    assert_int_equal(b->ops->push_options_put(b, "alice", &set), 0);
    size_t removed = 0;
    assert_int_equal(b->ops->push_del(b, "alice", NULL, NULL, &removed), 0);
    assert_int_equal(removed, 1); /* the trigger's delete is not counted */
    assert_int_equal(b->ops->push_options_get(b, "alice", &o), TERN_E_NOTFOUND);
    put(b, "bob", reg("push.example", "n1", NULL, NULL, 3));
    assert_int_equal(b->ops->push_options_put(b, "bob", &set), 0);
    assert_int_equal(b->ops->account_delete(b, "bob"), 0);
    assert_int_equal(test_add_account(b, "bob"), 0);
    assert_int_equal(b->ops->push_options_get(b, "bob", &o), TERN_E_NOTFOUND);
    /* Options need an account. */
    assert_int_equal(b->ops->push_options_put(b, "carol", &set), TERN_E_NOTFOUND);
}

int main(void) {
    tern_log_set_level(TERN_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evict_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_needs_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
