/* Tests for the roster operations of src/store/sqlite.c (RFC 6121 rosters). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "core/err.h"
#include "core/log.h"
#include "store/store.h"

#include "helpers.h"

struct fixture {
    char *dir;                    /* temporary directory, removed at teardown */
    char *db_path;                /* dir/tern.db */
    struct tern_store_backend *b; /* open backend; alice, bob and carol have accounts */
};

static int setup(void **state) {
    struct fixture *fx = calloc(1, sizeof *fx);
    fx->dir = test_mkdtemp();
    fx->db_path = test_path(fx->dir, "tern.db");
    fx->b = test_backend_open(fx->dir, fx->db_path);
    assert_non_null(fx->b);
    assert_int_equal(test_add_account(fx->b, "alice"), 0);
    assert_int_equal(test_add_account(fx->b, "bob"), 0);
    assert_int_equal(test_add_account(fx->b, "carol"), 0);
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

/* An item pointing into static strings, for roster_put (which copies nothing it keeps). */
static struct tern_roster_item item(const char *jid, const char *name, enum tern_sub sub,
                                    const char **groups, size_t ngroups) {
    struct tern_roster_item it;
    memset(&it, 0, sizeof it);
    it.jid = (char *)jid;
    it.name = (char *)name;
    it.sub = sub;
    it.groups = (char **)groups;
    it.ngroups = ngroups;
    return it;
}

static uint64_t put(struct tern_store_backend *b, const char *user,
                    const struct tern_roster_item *it) {
    uint64_t v = 0;
    assert_int_equal(b->ops->roster_put(b, user, it, &v), 0);
    return v;
}

static void get(struct tern_store_backend *b, const char *user, struct tern_roster *r) {
    memset(r, 0xaa, sizeof *r);
    assert_int_equal(b->ops->roster_get(b, user, r), 0);
}

static void assert_groups(const struct tern_roster_item *it, const char **want, size_t n) {
    assert_int_equal(it->ngroups, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(it->groups[i], want[i]);
}

static void test_put_get(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    const char *groups[] = {"Work", "Friends"}; /* given unsorted */
    struct tern_roster_item bob = item("bob@example.org", "Bob", TERN_SUB_BOTH, groups, 2);
    struct tern_roster_item anna = item("anna@example.net", NULL, TERN_SUB_NONE, NULL, 0);
    anna.ask = 1;
    struct tern_roster r;

    assert_int_equal(put(b, "alice", &bob), 1);
    assert_int_equal(put(b, "alice", &anna), 2);
    get(b, "alice", &r);
    assert_int_equal(r.version, 2);
    assert_int_equal(r.n, 2);
    /* Sorted by contact, groups sorted by name. */
    assert_string_equal(r.items[0].jid, "anna@example.net");
    assert_null(r.items[0].name);
    assert_int_equal(r.items[0].sub, TERN_SUB_NONE);
    assert_int_equal(r.items[0].ask, 1);
    assert_int_equal(r.items[0].pending_in, 0);
    assert_int_equal(r.items[0].approved, 0);
    assert_int_equal(r.items[0].hidden, 0);
    assert_groups(&r.items[0], NULL, 0);
    assert_string_equal(r.items[1].jid, "bob@example.org");
    assert_string_equal(r.items[1].name, "Bob");
    assert_int_equal(r.items[1].sub, TERN_SUB_BOTH);
    assert_int_equal(r.items[1].ask, 0);
    const char *sorted[] = {"Friends", "Work"};
    assert_groups(&r.items[1], sorted, 2);
    tern_roster_free(&r);
    assert_null(r.items);
    assert_int_equal(r.n, 0);

    /* Other users' rosters are their own; version pointer may be NULL. */
    assert_int_equal(b->ops->roster_put(b, "bob", &anna, NULL), 0);
    get(b, "bob", &r);
    assert_int_equal(r.version, 1);
    assert_int_equal(r.n, 1);
    tern_roster_free(&r);
    get(b, "alice", &r);
    assert_int_equal(r.version, 2);
    tern_roster_free(&r);
}

static void test_empty(void **state) {
    struct fixture *fx = *state;
    struct tern_roster r;

    get(fx->b, "alice", &r);
    assert_int_equal(r.n, 0);
    assert_null(r.items);
    assert_int_equal(r.version, 0);
    tern_roster_free(&r);
    /* No account: nothing to find, and no error either. */
    get(fx->b, "nobody", &r);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.version, 0);
    tern_roster_free(&r);
}

/* More items and groups than the first allocations (16 items, 4 groups). */
static void test_many(void **state) {
    struct fixture *fx = *state;
    const char *groups[10] = {"g9", "g8", "g7", "g6", "g5", "g4", "g3", "g2", "g1", "g0"};
    struct tern_roster r;

    for (int i = 39; i >= 0; i--) {
        char jid[32];
        snprintf(jid, sizeof jid, "c%02d@example.org", i);
        struct tern_roster_item it = item(jid, jid, TERN_SUB_TO, groups, (size_t)(i % 11));
        put(fx->b, "alice", &it);
    }
    get(fx->b, "alice", &r);
    assert_int_equal(r.version, 40);
    assert_int_equal(r.n, 40);
    for (size_t i = 0; i < r.n; i++) {
        char jid[48];
        snprintf(jid, sizeof jid, "c%02zu@example.org", i);
        assert_string_equal(r.items[i].jid, jid);
        assert_string_equal(r.items[i].name, jid);
        assert_int_equal(r.items[i].ngroups, i % 11);
        for (size_t g = 0; g < r.items[i].ngroups; g++) {
            char name[8];
            snprintf(name, sizeof name, "g%zu", 10 - i % 11 + g);
            assert_string_equal(r.items[i].groups[g], name);
        }
    }
    tern_roster_free(&r);
}

static void test_replace_groups(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    const char *ab[] = {"A", "B"}, *c[] = {"C"}, *dup[] = {"X", "X"};
    struct tern_roster r;

    struct tern_roster_item it = item("bob@example.org", "Bob", TERN_SUB_NONE, ab, 2);
    assert_int_equal(put(b, "alice", &it), 1);
    it = item("bob@example.org", NULL, TERN_SUB_TO, c, 1);
    assert_int_equal(put(b, "alice", &it), 2);
    get(b, "alice", &r);
    assert_int_equal(r.n, 1);
    assert_null(r.items[0].name);
    assert_int_equal(r.items[0].sub, TERN_SUB_TO);
    assert_groups(&r.items[0], c, 1);
    tern_roster_free(&r);

    /* A group named twice is kept once. */
    it = item("bob@example.org", NULL, TERN_SUB_TO, dup, 2);
    assert_int_equal(put(b, "alice", &it), 3);
    get(b, "alice", &r);
    assert_groups(&r.items[0], dup, 1);
    tern_roster_free(&r);

    /* No groups at all. */
    it = item("bob@example.org", NULL, TERN_SUB_TO, NULL, 0);
    assert_int_equal(put(b, "alice", &it), 4);
    get(b, "alice", &r);
    assert_int_equal(r.n, 1);
    assert_groups(&r.items[0], NULL, 0);
    assert_int_equal(r.version, 4);
    tern_roster_free(&r);
}

static void test_flags_round_trip(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    struct tern_roster r;

    /* Each flag alone, with each subscription; any non-zero value reads back as 1. */
    for (int f = 0; f < 4; f++) {
        char jid[32];
        snprintf(jid, sizeof jid, "f%d@example.org", f);
        struct tern_roster_item it = item(jid, NULL, (enum tern_sub)f, NULL, 0);
        it.ask = f == 0 ? 7 : 0;
        it.pending_in = f == 1;
        it.approved = f == 2;
        it.hidden = f == 3 ? -1 : 0;
        put(b, "alice", &it);
    }
    get(b, "alice", &r);
    assert_int_equal(r.n, 4);
    for (int f = 0; f < 4; f++) {
        const struct tern_roster_item *it = &r.items[f];
        assert_int_equal(it->sub, (enum tern_sub)f);
        assert_int_equal(it->ask, f == 0);
        assert_int_equal(it->pending_in, f == 1);
        assert_int_equal(it->approved, f == 2);
        assert_int_equal(it->hidden, f == 3);
    }
    tern_roster_free(&r);

    /* Flags are replaced with the item, not merged. */
    struct tern_roster_item it = item("f3@example.org", NULL, TERN_SUB_BOTH, NULL, 0);
    it.pending_in = 1;
    put(b, "alice", &it);
    get(b, "alice", &r);
    assert_int_equal(r.items[3].hidden, 0);
    assert_int_equal(r.items[3].pending_in, 1);
    tern_roster_free(&r);
}

static void test_del(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    const char *g[] = {"G"};
    struct tern_roster_item it = item("bob@example.org", NULL, TERN_SUB_BOTH, g, 1);
    struct tern_roster r;
    uint64_t v = 0;

    assert_int_equal(put(b, "alice", &it), 1);
    assert_int_equal(b->ops->roster_del(b, "alice", "bob@example.org", &v), 0);
    assert_int_equal(v, 2);
    /* The version outlives the last item. */
    get(b, "alice", &r);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.version, 2);
    tern_roster_free(&r);

    /* Absent: an error, and the version does not move. */
    v = 99;
    assert_int_equal(b->ops->roster_del(b, "alice", "bob@example.org", &v), TERN_E_NOTFOUND);
    assert_int_equal(v, 99);
    assert_int_equal(b->ops->roster_del(b, "bob", "bob@example.org", NULL), TERN_E_NOTFOUND);
    get(b, "alice", &r);
    assert_int_equal(r.version, 2);
    tern_roster_free(&r);

    /* The groups went with the item. */
    it = item("bob@example.org", NULL, TERN_SUB_BOTH, NULL, 0);
    assert_int_equal(put(b, "alice", &it), 3);
    get(b, "alice", &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.items[0].ngroups, 0);
    tern_roster_free(&r);
}

static void test_holders(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    struct tern_roster_item dave = item("dave@example.org", NULL, TERN_SUB_FROM, NULL, 0);
    struct tern_roster_item erin = item("erin@example.org", NULL, TERN_SUB_NONE, NULL, 0);
    char **users = NULL;
    size_t n = 99;

    assert_int_equal(b->ops->roster_holders(b, "dave@example.org", &users, &n), 0);
    assert_int_equal(n, 0);
    tern_store_free_list(users, n);

    put(b, "carol", &dave);
    dave.hidden = 1; /* hidden items are held too: they remember a Pending In */
    dave.pending_in = 1;
    put(b, "alice", &dave);
    put(b, "bob", &erin);
    assert_int_equal(b->ops->roster_holders(b, "dave@example.org", &users, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(users[0], "alice");
    assert_string_equal(users[1], "carol");
    tern_store_free_list(users, n);

    assert_int_equal(b->ops->roster_holders(b, "erin@example.org", &users, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(users[0], "bob");
    tern_store_free_list(users, n);

    assert_int_equal(b->ops->roster_del(b, "alice", "dave@example.org", NULL), 0);
    assert_int_equal(b->ops->roster_holders(b, "dave@example.org", &users, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(users[0], "carol");
    tern_store_free_list(users, n);
}

static void test_clear(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    const char *g[] = {"G"};
    struct tern_roster r;

    for (int i = 0; i < 3; i++) {
        char jid[32];
        snprintf(jid, sizeof jid, "c%d@example.org", i);
        struct tern_roster_item it = item(jid, NULL, TERN_SUB_BOTH, g, 1);
        put(b, "alice", &it);
        if (i == 0)
            put(b, "carol", &it);
    }
    assert_int_equal(b->ops->roster_clear(b, "alice"), 0);
    get(b, "alice", &r);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.version, 0);
    tern_roster_free(&r);
    get(b, "carol", &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.version, 1);
    assert_int_equal(r.items[0].ngroups, 1);
    tern_roster_free(&r);

    /* Nothing to clear is not an error. */
    assert_int_equal(b->ops->roster_clear(b, "alice"), 0);
    assert_int_equal(b->ops->roster_clear(b, "nobody"), 0);
}

static void test_invalid(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    const char *bad_groups[] = {"ok", NULL};
    struct tern_roster r;

    struct tern_roster_item it = item(NULL, NULL, TERN_SUB_NONE, NULL, 0);
    assert_int_equal(b->ops->roster_put(b, "alice", &it, NULL), TERN_E_INVAL);
    it = item("x@example.org", NULL, (enum tern_sub)4, NULL, 0);
    assert_int_equal(b->ops->roster_put(b, "alice", &it, NULL), TERN_E_INVAL);
    it = item("x@example.org", NULL, (enum tern_sub) - 1, NULL, 0);
    assert_int_equal(b->ops->roster_put(b, "alice", &it, NULL), TERN_E_INVAL);
    it = item("x@example.org", NULL, TERN_SUB_NONE, bad_groups, 2);
    assert_int_equal(b->ops->roster_put(b, "alice", &it, NULL), TERN_E_INVAL);
    it = item("x@example.org", NULL, TERN_SUB_NONE, NULL, 1);
    assert_int_equal(b->ops->roster_put(b, "alice", &it, NULL), TERN_E_INVAL);

    /* A user without an account has no roster to write to. */
    it = item("x@example.org", NULL, TERN_SUB_NONE, NULL, 0);
    assert_int_equal(b->ops->roster_put(b, "nobody", &it, NULL), TERN_E_NOTFOUND);

    get(b, "alice", &r);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.version, 0);
    tern_roster_free(&r);
    get(b, "nobody", &r);
    assert_int_equal(r.version, 0);
    tern_roster_free(&r);
}

static void raw_exec(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/*
 * roster_put is several statements; if the last one fails, the item and its
 * groups must not stay behind, whether it runs on its own (ternctl) or inside
 * the store's transaction and job savepoint (ternd).
 */
static void test_put_is_atomic(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    const struct tern_store_backend_ops *ops = b->ops;
    const char *g[] = {"G"};
    struct tern_roster r;

    struct tern_roster_item ok = item("ok@example.org", NULL, TERN_SUB_BOTH, g, 1);
    put(b, "bob", &ok);
    /* From now on bumping alice's version fails: her put's last statement. */
    raw_exec(fx->db_path, "CREATE TRIGGER no_bump BEFORE INSERT ON roster_versions"
                          " WHEN NEW.username = 'alice'"
                          " BEGIN SELECT RAISE(ABORT, 'test: no version'); END;");

    struct tern_roster_item it = item("x@example.org", "X", TERN_SUB_BOTH, g, 1);
    assert_int_equal(ops->roster_put(b, "alice", &it, NULL), TERN_E_IO);
    get(b, "alice", &r);
    assert_int_equal(r.n, 0);
    tern_roster_free(&r);

    /* Inside a transaction: the failed put is undone, the one before it stays. */
    assert_int_equal(ops->begin(b), 0);
    assert_int_equal(ops->savepoint(b), 0);
    struct tern_roster_item more = item("more@example.org", NULL, TERN_SUB_TO, NULL, 0);
    assert_int_equal(ops->roster_put(b, "bob", &more, NULL), 0);
    assert_int_equal(ops->roster_put(b, "alice", &it, NULL), TERN_E_IO);
    assert_int_equal(ops->release(b), 0);
    assert_int_equal(ops->commit(b), 0);

    get(b, "alice", &r);
    assert_int_equal(r.n, 0);
    tern_roster_free(&r);
    get(b, "bob", &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.version, 2);
    tern_roster_free(&r);
    /* The connection is usable afterwards, outside any transaction. */
    assert_int_equal(ops->roster_del(b, "bob", "more@example.org", NULL), 0);
}

static void test_survives_reopen(void **state) {
    struct fixture *fx = *state;
    const char *g[] = {"B", "A"};
    struct tern_roster_item it = item("bob@example.org", "Bob", TERN_SUB_FROM, g, 2);
    it.hidden = 1;
    it.pending_in = 1;
    it.approved = 1;
    struct tern_roster r;

    put(fx->b, "alice", &it);
    put(fx->b, "alice", &it);
    tern_store_backend_close(&fx->b);
    fx->b = test_backend_open(fx->dir, fx->db_path);
    assert_non_null(fx->b);
    get(fx->b, "alice", &r);
    assert_int_equal(r.version, 2);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.items[0].jid, "bob@example.org");
    assert_string_equal(r.items[0].name, "Bob");
    assert_int_equal(r.items[0].sub, TERN_SUB_FROM);
    assert_int_equal(r.items[0].hidden, 1);
    assert_int_equal(r.items[0].pending_in, 1);
    assert_int_equal(r.items[0].approved, 1);
    assert_int_equal(r.items[0].ask, 0);
    const char *sorted[] = {"A", "B"};
    assert_groups(&r.items[0], sorted, 2);
    tern_roster_free(&r);
}

static void test_free_null(void **state) {
    (void)state;
    struct tern_roster_item it;
    memset(&it, 0, sizeof it);
    tern_roster_item_free(&it);
    tern_roster_item_free(NULL);
    tern_roster_free(NULL);

    it.jid = strdup("a@b");
    it.name = strdup("A");
    it.groups = calloc(2, sizeof *it.groups);
    it.groups[0] = strdup("x");
    it.groups[1] = strdup("y");
    it.ngroups = 2;
    tern_roster_item_free(&it);
    assert_null(it.jid);
    assert_null(it.groups);
    assert_int_equal(it.ngroups, 0);
}

int main(void) {
    tern_log_set_level(TERN_LOG_ERROR); /* expected warnings would clutter the output */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flags_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_holders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_is_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_survives_reopen, setup, teardown),
        cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
