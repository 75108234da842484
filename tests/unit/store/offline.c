/* Tests for the offline-message operations of src/store/sqlite.c (XEP-0160). */
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

/* Store a string message with no quota; returns its id. */
static int64_t put(struct tern_store_backend *b, const char *user, const char *xml, int64_t stamp) {
    int64_t id = -1;
    assert_int_equal(b->ops->offline_put(b, user, xml, strlen(xml), stamp, 0, &id), 0);
    assert_true(id > 0);
    return id;
}

static size_t count(struct tern_store_backend *b, const char *user) {
    size_t n = 99;
    assert_int_equal(b->ops->offline_count(b, user, &n), 0);
    return n;
}

static void test_put_get_order(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    const char *xml[] = {"<message><body>1</body></message>", "<message><body>2</body></message>",
                         "<message><body>3</body></message>"};
    int64_t ids[3];
    struct tern_offline_msg *m = (struct tern_offline_msg *)1;
    size_t n = 99;

    assert_int_equal(b->ops->offline_get(b, "alice", &m, &n), 0);
    assert_int_equal(n, 0);
    assert_null(m);

    /* Stamps out of order: the order is the order of storing. */
    for (int i = 0; i < 3; i++)
        ids[i] = put(b, "alice", xml[i], 3000 - i);
    put(b, "bob", "<message>bob</message>", 1);
    assert_true(ids[0] < ids[1] && ids[1] < ids[2]);

    assert_int_equal(b->ops->offline_get(b, "alice", &m, &n), 0);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(m[i].id, ids[i]);
        assert_int_equal(m[i].stamp, 3000 - i);
        assert_int_equal(m[i].len, strlen(xml[i]));
        assert_string_equal(m[i].xml, xml[i]); /* NUL-terminated */
    }
    tern_offline_msgs_free(m, n);
    tern_offline_msgs_free(NULL, 0);
}

/* Any bytes, including NUL, and the empty message come back exactly. */
static void test_binary_and_empty(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    const char bin[] = {'<', 'a', '\0', '>', '\xff'};
    struct tern_offline_msg *m = NULL;
    size_t n = 0;
    int64_t id;

    assert_int_equal(b->ops->offline_put(b, "alice", bin, sizeof bin, 1, 0, &id), 0);
    assert_int_equal(b->ops->offline_put(b, "alice", "", 0, 2, 0, &id), 0);
    assert_int_equal(b->ops->offline_put(b, "alice", NULL, 0, 3, 0, NULL), 0);
    assert_int_equal(b->ops->offline_put(b, "alice", NULL, 5, 4, 0, &id), TERN_E_INVAL);
    assert_int_equal(b->ops->offline_get(b, "alice", &m, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(m[0].len, sizeof bin);
    assert_memory_equal(m[0].xml, bin, sizeof bin);
    assert_int_equal(m[0].xml[sizeof bin], '\0');
    for (int i = 1; i < 3; i++) {
        assert_int_equal(m[i].len, 0);
        assert_string_equal(m[i].xml, "");
    }
    tern_offline_msgs_free(m, n);
}

static void test_quota_boundary(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    int64_t id = 0, first = 0;

    for (int i = 0; i < 3; i++) {
        assert_int_equal(b->ops->offline_put(b, "alice", "<m/>", 4, i, 3, &id), 0);
        if (i == 0)
            first = id;
    }
    /* The 4th is refused and stores nothing; *id is left alone. */
    id = -7;
    assert_int_equal(b->ops->offline_put(b, "alice", "<m/>", 4, 9, 3, &id), TERN_E_LIMIT);
    assert_int_equal(id, -7);
    assert_int_equal(count(b, "alice"), 3);
    /* The quota is per user. */
    assert_int_equal(b->ops->offline_put(b, "bob", "<m/>", 4, 9, 3, &id), 0);
    /* A smaller quota than what is held refuses too. */
    assert_int_equal(b->ops->offline_put(b, "alice", "<m/>", 4, 9, 1, &id), TERN_E_LIMIT);

    /* Delivering one makes room for exactly one. */
    assert_int_equal(b->ops->offline_del(b, "alice", first), 0);
    assert_int_equal(b->ops->offline_put(b, "alice", "<m/>", 4, 10, 3, &id), 0);
    assert_int_equal(b->ops->offline_put(b, "alice", "<m/>", 4, 11, 3, &id), TERN_E_LIMIT);
    assert_int_equal(count(b, "alice"), 3);

    /* quota <= 0: no limit. */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(b->ops->offline_put(b, "alice", "<m/>", 4, 12, 0, &id), 0);
        assert_int_equal(b->ops->offline_put(b, "alice", "<m/>", 4, 12, -1, &id), 0);
    }
    assert_int_equal(count(b, "alice"), 13);
}

static void test_del_upto(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    int64_t ids[5], bob_id;
    struct tern_offline_msg *m = NULL;
    size_t n = 0;

    for (int i = 0; i < 5; i++)
        ids[i] = put(b, "alice", "<m/>", i);
    bob_id = put(b, "bob", "<m/>", 0);

    assert_int_equal(b->ops->offline_del(b, "alice", 0), 0);
    assert_int_equal(count(b, "alice"), 5);
    assert_int_equal(b->ops->offline_del(b, "alice", ids[1]), 0);
    assert_int_equal(b->ops->offline_get(b, "alice", &m, &n), 0);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(m[i].id, ids[i + 2]);
    tern_offline_msgs_free(m, n);

    /* Beyond the newest id: all of alice's, none of bob's (his id is larger). */
    assert_true(bob_id > ids[4]);
    assert_int_equal(b->ops->offline_del(b, "alice", INT64_MAX), 0);
    assert_int_equal(count(b, "alice"), 0);
    assert_int_equal(count(b, "bob"), 1);
    /* Nothing to delete is not an error. */
    assert_int_equal(b->ops->offline_del(b, "alice", INT64_MAX), 0);
    assert_int_equal(b->ops->offline_del(b, "nobody", INT64_MAX), 0);
}

/* An id is never handed out twice, even after the newest message was deleted. */
static void test_ids_not_reused(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;

    put(b, "alice", "<m/>", 0);
    int64_t last = put(b, "alice", "<m/>", 0);
    assert_int_equal(b->ops->offline_del(b, "alice", last), 0);
    tern_store_backend_close(&fx->b);
    fx->b = test_backend_open(fx->dir, fx->db_path);
    assert_non_null(fx->b);
    assert_true(put(fx->b, "alice", "<m/>", 0) > last);
}

static void test_count_and_no_account(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    int64_t id = -7;

    assert_int_equal(count(b, "alice"), 0);
    assert_int_equal(count(b, "nobody"), 0);
    put(b, "alice", "<m/>", 0);
    put(b, "alice", "<m/>", 0);
    put(b, "bob", "<m/>", 0);
    assert_int_equal(count(b, "alice"), 2);
    assert_int_equal(count(b, "bob"), 1);

    assert_int_equal(b->ops->offline_put(b, "nobody", "<m/>", 4, 0, 0, &id), TERN_E_NOTFOUND);
    assert_int_equal(id, -7);
    assert_int_equal(count(b, "nobody"), 0);
}

static void test_survives_reopen(void **state) {
    struct fixture *fx = *state;
    struct offline_msg_want {
        int64_t id;
        int64_t stamp;
    } want[2];
    struct tern_offline_msg *m = NULL;
    size_t n = 0;

    want[0].id = put(fx->b, "alice", "<message>one</message>", 1700000000000);
    want[0].stamp = 1700000000000;
    want[1].id = put(fx->b, "alice", "<message>two</message>", 1700000000001);
    want[1].stamp = 1700000000001;
    tern_store_backend_close(&fx->b);
    fx->b = test_backend_open(fx->dir, fx->db_path);
    assert_non_null(fx->b);
    assert_int_equal(fx->b->ops->offline_get(fx->b, "alice", &m, &n), 0);
    assert_int_equal(n, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(m[i].id, want[i].id);
        assert_int_equal(m[i].stamp, want[i].stamp);
    }
    assert_string_equal(m[0].xml, "<message>one</message>");
    assert_string_equal(m[1].xml, "<message>two</message>");
    tern_offline_msgs_free(m, n);
}

/* More messages than the first allocation (16) of the result array. */
static void test_many(void **state) {
    struct fixture *fx = *state;
    struct tern_offline_msg *m = NULL;
    size_t n = 0;

    for (int i = 0; i < 100; i++) {
        char xml[32];
        snprintf(xml, sizeof xml, "<m n='%d'/>", i);
        put(fx->b, "alice", xml, i);
    }
    assert_int_equal(fx->b->ops->offline_get(fx->b, "alice", &m, &n), 0);
    assert_int_equal(n, 100);
    for (size_t i = 0; i < n; i++) {
        char xml[32];
        snprintf(xml, sizeof xml, "<m n='%zu'/>", i);
        assert_string_equal(m[i].xml, xml);
        assert_int_equal(m[i].stamp, (int64_t)i);
        if (i)
            assert_true(m[i - 1].id < m[i].id);
    }
    tern_offline_msgs_free(m, n);
}

int main(void) {
    tern_log_set_level(TERN_LOG_ERROR); /* expected warnings would clutter the output */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_and_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_del_upto, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_not_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_count_and_no_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
