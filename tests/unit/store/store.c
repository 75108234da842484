/* Tests for src/store/store.c: the store thread, group commit, close. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <uv.h>

#include "core/err.h"
#include "core/log.h"
#include "store/store.h"

#include "helpers.h"

/*
 * A backend that wraps the real SQLite one and counts transactions, so that
 * a test can tell how many commits a batch took without relying on timing.
 * Counters are touched by the store thread and read by the test only after a
 * done callback (the store's mutex orders the two).
 */
struct counting {
    struct tern_store_backend base;   /* must be first */
    struct tern_store_backend *inner; /* the SQLite backend */
    int begins;                       /* BEGINs that succeeded */
    int commits;                      /* COMMITs that succeeded */
    int fail_commit;                  /* make commit fail (without committing) */
};

static struct counting *counting_of(struct tern_store_backend *b) {
    return (struct counting *)(void *)b;
}

static int c_begin(struct tern_store_backend *b) {
    struct counting *c = counting_of(b);
    int rc = c->inner->ops->begin(c->inner);
    if (rc == 0)
        c->begins++;
    return rc;
}

static int c_commit(struct tern_store_backend *b) {
    struct counting *c = counting_of(b);
    if (c->fail_commit)
        return TERN_E_IO;
    int rc = c->inner->ops->commit(c->inner);
    if (rc == 0)
        c->commits++;
    return rc;
}

#define FORWARD0(name)                                                                             \
    static int c_##name(struct tern_store_backend *b) {                                            \
        return counting_of(b)->inner->ops->name(counting_of(b)->inner);                            \
    }
FORWARD0(rollback)
FORWARD0(savepoint)
FORWARD0(release)
FORWARD0(rollback_to)

static int c_account_create(struct tern_store_backend *b, const char *u,
                            const struct tern_scram_creds *cr) {
    return counting_of(b)->inner->ops->account_create(counting_of(b)->inner, u, cr);
}
static int c_account_get(struct tern_store_backend *b, const char *u, struct tern_scram_creds *cr) {
    return counting_of(b)->inner->ops->account_get(counting_of(b)->inner, u, cr);
}
static int c_account_set(struct tern_store_backend *b, const char *u,
                         const struct tern_scram_creds *cr) {
    return counting_of(b)->inner->ops->account_set(counting_of(b)->inner, u, cr);
}
static int c_account_delete(struct tern_store_backend *b, const char *u) {
    return counting_of(b)->inner->ops->account_delete(counting_of(b)->inner, u);
}
static int c_account_list(struct tern_store_backend *b, char ***users, size_t *n) {
    return counting_of(b)->inner->ops->account_list(counting_of(b)->inner, users, n);
}
static int c_roster_get(struct tern_store_backend *b, const char *u, struct tern_roster *r) {
    return counting_of(b)->inner->ops->roster_get(counting_of(b)->inner, u, r);
}
static int c_roster_put(struct tern_store_backend *b, const char *u,
                        const struct tern_roster_item *it, uint64_t *v) {
    return counting_of(b)->inner->ops->roster_put(counting_of(b)->inner, u, it, v);
}
static int c_roster_del(struct tern_store_backend *b, const char *u, const char *contact,
                        uint64_t *v) {
    return counting_of(b)->inner->ops->roster_del(counting_of(b)->inner, u, contact, v);
}
static int c_roster_holders(struct tern_store_backend *b, const char *contact, char ***users,
                            size_t *n) {
    return counting_of(b)->inner->ops->roster_holders(counting_of(b)->inner, contact, users, n);
}
static int c_roster_clear(struct tern_store_backend *b, const char *u) {
    return counting_of(b)->inner->ops->roster_clear(counting_of(b)->inner, u);
}
static int c_offline_put(struct tern_store_backend *b, const char *u, const char *xml, size_t len,
                         int64_t stamp, int quota, int64_t *id) {
    return counting_of(b)->inner->ops->offline_put(counting_of(b)->inner, u, xml, len, stamp, quota,
                                                   id);
}
static int c_offline_get(struct tern_store_backend *b, const char *u,
                         struct tern_offline_msg **msgs, size_t *n) {
    return counting_of(b)->inner->ops->offline_get(counting_of(b)->inner, u, msgs, n);
}
static int c_offline_del(struct tern_store_backend *b, const char *u, int64_t upto) {
    return counting_of(b)->inner->ops->offline_del(counting_of(b)->inner, u, upto);
}
static int c_offline_count(struct tern_store_backend *b, const char *u, size_t *n) {
    return counting_of(b)->inner->ops->offline_count(counting_of(b)->inner, u, n);
}
static int c_push_put(struct tern_store_backend *b, const char *u, const struct tern_push_reg *reg,
                      int max, struct tern_push_reg **ev, size_t *nev) {
    return counting_of(b)->inner->ops->push_put(counting_of(b)->inner, u, reg, max, ev, nev);
}
static int c_push_get(struct tern_store_backend *b, const char *u, struct tern_push_reg **regs,
                      size_t *n) {
    return counting_of(b)->inner->ops->push_get(counting_of(b)->inner, u, regs, n);
}
static int c_push_del(struct tern_store_backend *b, const char *u, const char *jid,
                      const char *node, size_t *removed) {
    return counting_of(b)->inner->ops->push_del(counting_of(b)->inner, u, jid, node, removed);
}
static int c_push_error(struct tern_store_backend *b, const char *u, const char *jid,
                        const char *node, int max_errors, int *errors) {
    return counting_of(b)->inner->ops->push_error(counting_of(b)->inner, u, jid, node, max_errors,
                                                  errors);
}
static int c_push_ok(struct tern_store_backend *b, const char *u, const char *jid,
                     const char *node) {
    return counting_of(b)->inner->ops->push_ok(counting_of(b)->inner, u, jid, node);
}
static void c_close(struct tern_store_backend *b) {
    struct counting *c = counting_of(b);
    tern_store_backend_close(&c->inner);
    free(c);
}

static const struct tern_store_backend_ops counting_ops = {
    .name = "counting",
    .begin = c_begin,
    .commit = c_commit,
    .rollback = c_rollback,
    .savepoint = c_savepoint,
    .release = c_release,
    .rollback_to = c_rollback_to,
    .account_create = c_account_create,
    .account_get = c_account_get,
    .account_set = c_account_set,
    .account_delete = c_account_delete,
    .account_list = c_account_list,
    .roster_get = c_roster_get,
    .roster_put = c_roster_put,
    .roster_del = c_roster_del,
    .roster_holders = c_roster_holders,
    .roster_clear = c_roster_clear,
    .offline_put = c_offline_put,
    .offline_get = c_offline_get,
    .offline_del = c_offline_del,
    .offline_count = c_offline_count,
    .push_put = c_push_put,
    .push_get = c_push_get,
    .push_del = c_push_del,
    .push_error = c_push_error,
    .push_ok = c_push_ok,
    .close = c_close,
};

struct fixture {
    char *dir;                /* temporary directory */
    char *db_path;            /* dir/tern.db */
    uv_loop_t loop;           /* the test's loop */
    uv_thread_t main_thread;  /* the loop thread */
    struct counting *counter; /* the backend, owned by store */
    struct tern_store *store; /* the store under test */
    int done_total;           /* done callbacks seen so far */
    int done_seq;             /* order stamp for the next done */
    uv_sem_t gate_entered;    /* posted by a gate job once it runs */
    uv_sem_t gate_release;    /* a gate job waits on this */
};

enum kind {
    K_CREATE,      /* create user */
    K_CREATE_FAIL, /* create user, then fail: must be rolled back */
    K_GET,         /* get user */
    K_COUNT,       /* count accounts into n */
    K_GATE,        /* block the store thread until the test releases it */
    K_OFFLINE,     /* store an offline message for user, quota OFFLINE_QUOTA */
    K_OFF_COUNT,   /* count user's offline messages into n */
};

#define OFFLINE_QUOTA 3 /* quota of K_OFFLINE jobs */

struct tjob {
    struct tern_store_job job; /* embedded, as real callers do */
    struct fixture *fx;        /* test state */
    enum kind kind;            /* what run does */
    char user[32];             /* account name */
    size_t n;                  /* K_COUNT, K_OFF_COUNT result */
    int64_t id;                /* K_OFFLINE: id of the stored message */
    int runs;                  /* times run was called */
    int dones;                 /* times done was called */
    int err;                   /* err given to done */
    int seq;                   /* done order */
    int run_on_main;           /* run happened on the loop thread (must not) */
    int done_on_main;          /* done happened on the loop thread (must) */
    int submit_in_done;        /* result of a submit made from done, if asked */
    int submit_from_done;      /* ask done to submit another job */
    int close_from_done;       /* ask done to close the store */
};

static int on_main(struct fixture *fx) {
    uv_thread_t self = uv_thread_self();
    return uv_thread_equal(&self, &fx->main_thread);
}

static int tjob_run(struct tern_store_backend *b, struct tern_store_job *job) {
    struct tjob *t = tern_store_container(job, struct tjob, job);
    struct tern_scram_creds c = test_creds(3), out;
    char **users = NULL;
    int rc = 0;

    t->runs++;
    t->run_on_main = on_main(t->fx);
    switch (t->kind) {
    case K_CREATE: return b->ops->account_create(b, t->user, &c);
    case K_CREATE_FAIL:
        rc = b->ops->account_create(b, t->user, &c);
        return rc < 0 ? rc : TERN_E_INVAL;
    case K_GET: return b->ops->account_get(b, t->user, &out);
    case K_COUNT:
        rc = b->ops->account_list(b, &users, &t->n);
        if (rc == 0)
            tern_store_free_list(users, t->n);
        return rc;
    case K_GATE:
        uv_sem_post(&t->fx->gate_entered);
        uv_sem_wait(&t->fx->gate_release);
        return 0;
    case K_OFFLINE: return b->ops->offline_put(b, t->user, "<m/>", 4, 0, OFFLINE_QUOTA, &t->id);
    case K_OFF_COUNT: return b->ops->offline_count(b, t->user, &t->n);
    }
    return TERN_E_INVAL;
}

static void tjob_done(struct tern_store_job *job, int err) {
    struct tjob *t = tern_store_container(job, struct tjob, job);
    struct fixture *fx = t->fx;
    t->dones++;
    t->err = err;
    t->seq = fx->done_seq++;
    t->done_on_main = on_main(fx);
    fx->done_total++;
    if (t->submit_from_done) {
        static struct tjob extra;
        memset(&extra, 0, sizeof extra);
        extra.fx = fx;
        extra.kind = K_GET;
        extra.job.run = tjob_run;
        extra.job.done = tjob_done;
        t->submit_in_done = tern_store_submit(fx->store, &extra.job);
    }
    if (t->close_from_done)
        tern_store_close(&fx->store);
}

static void tjob_init(struct tjob *t, struct fixture *fx, enum kind kind, const char *user) {
    memset(t, 0, sizeof *t);
    t->fx = fx;
    t->kind = kind;
    if (user)
        snprintf(t->user, sizeof t->user, "%s", user);
    t->job.run = tjob_run;
    t->job.done = tjob_done;
    t->job.write = kind == K_CREATE || kind == K_CREATE_FAIL || kind == K_OFFLINE;
}

static void submit(struct fixture *fx, struct tjob *t) {
    assert_int_equal(tern_store_submit(fx->store, &t->job), 0);
}

static void run_until(struct fixture *fx, int total) {
    while (fx->done_total < total)
        uv_run(&fx->loop, UV_RUN_ONCE);
}

/* Hold the store thread inside a gate job, so that what is submitted next is
 * queued together and taken as one batch. */
static void gate_close(struct fixture *fx, struct tjob *gate) {
    tjob_init(gate, fx, K_GATE, NULL);
    submit(fx, gate);
    uv_sem_wait(&fx->gate_entered);
}

static int setup(void **state) {
    struct fixture *fx = calloc(1, sizeof *fx);
    fx->dir = test_mkdtemp();
    fx->db_path = test_path(fx->dir, "tern.db");
    fx->main_thread = uv_thread_self();
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(uv_sem_init(&fx->gate_entered, 0), 0);
    assert_int_equal(uv_sem_init(&fx->gate_release, 0), 0);

    struct tern_config cfg = test_config(fx->dir, fx->db_path);
    char err[512] = "";
    fx->counter = calloc(1, sizeof *fx->counter);
    fx->counter->base.ops = &counting_ops;
    assert_int_equal(tern_store_backend_open(&cfg, &fx->counter->inner, err, sizeof err), 0);
    assert_int_equal(tern_store_new(&fx->loop, &fx->counter->base, &fx->store), 0);
    assert_non_null(fx->store);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    struct fixture *fx = *state;
    tern_store_close(&fx->store);
    assert_null(fx->store);
    /* The async handle's close callback frees the store. */
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    uv_sem_destroy(&fx->gate_entered);
    uv_sem_destroy(&fx->gate_release);
    test_rmtree(fx->dir);
    free(fx->db_path);
    free(fx->dir);
    free(fx);
    return 0;
}

/* Count accounts through the store. */
static size_t count_accounts(struct fixture *fx) {
    struct tjob t;
    tjob_init(&t, fx, K_COUNT, NULL);
    int before = fx->done_total;
    submit(fx, &t);
    run_until(fx, before + 1);
    assert_int_equal(t.err, 0);
    return t.n;
}

struct get_result {
    struct fixture *fx;            /* to count the completion */
    int calls;                     /* times cb ran */
    int err;                       /* err given to cb */
    int have_creds;                /* creds was non-NULL */
    struct tern_scram_creds creds; /* copy of creds */
    int on_main;                   /* cb ran on the loop thread */
};

static void on_get(void *ud, int err, const struct tern_scram_creds *creds) {
    struct get_result *r = ud;
    r->calls++;
    r->err = err;
    r->have_creds = creds != NULL;
    if (creds)
        r->creds = *creds;
    r->on_main = on_main(r->fx);
    r->fx->done_total++;
}

static void test_read_write_on_loop(void **state) {
    struct fixture *fx = *state;
    struct tjob create;
    struct get_result found = {.fx = fx}, missing = {.fx = fx};

    tjob_init(&create, fx, K_CREATE, "alice");
    submit(fx, &create);
    assert_int_equal(tern_store_account_get(fx->store, "alice", on_get, &found), 0);
    assert_int_equal(tern_store_account_get(fx->store, "nobody", on_get, &missing), 0);
    run_until(fx, 3);

    assert_int_equal(create.runs, 1);
    assert_int_equal(create.dones, 1);
    assert_int_equal(create.err, 0);
    assert_false(create.run_on_main);
    assert_true(create.done_on_main);

    assert_int_equal(found.calls, 1);
    assert_int_equal(found.err, 0);
    assert_true(found.have_creds);
    assert_true(found.on_main);
    struct tern_scram_creds expect = test_creds(3);
    assert_true(test_creds_equal(&expect, &found.creds));

    assert_int_equal(missing.calls, 1);
    assert_int_equal(missing.err, TERN_E_NOTFOUND);
    assert_false(missing.have_creds);
    assert_true(missing.on_main);

    /* Nothing more arrives. */
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(fx->done_total, 3);
}

static void test_batch_of_100(void **state) {
    struct fixture *fx = *state;
    struct tjob gate, jobs[100];

    gate_close(fx, &gate);
    for (int i = 0; i < 100; i++) {
        char name[16];
        snprintf(name, sizeof name, "user%03d", i);
        tjob_init(&jobs[i], fx, K_CREATE, name);
        submit(fx, &jobs[i]);
    }
    uv_sem_post(&fx->gate_release);
    run_until(fx, 101);

    assert_int_equal(gate.err, 0);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(jobs[i].err, 0);
        assert_int_equal(jobs[i].dones, 1);
        assert_true(jobs[i].done_on_main);
        assert_int_equal(jobs[i].seq, i + 1); /* FIFO, after the gate */
    }
    /* The gate is a read (no transaction); the 100 writes shared one. */
    assert_int_equal(fx->counter->begins, 1);
    assert_int_equal(fx->counter->commits, 1);
    assert_int_equal(count_accounts(fx), 100);
}

static void test_failing_job_keeps_others(void **state) {
    struct fixture *fx = *state;
    struct tjob gate, a, b, dup, d, get_b;

    gate_close(fx, &gate);
    tjob_init(&a, fx, K_CREATE, "a");
    tjob_init(&b, fx, K_CREATE_FAIL, "b");
    tjob_init(&dup, fx, K_CREATE, "a");
    tjob_init(&d, fx, K_CREATE, "d");
    tjob_init(&get_b, fx, K_GET, "b");
    submit(fx, &a);
    submit(fx, &b);
    submit(fx, &dup);
    submit(fx, &d);
    submit(fx, &get_b);
    uv_sem_post(&fx->gate_release);
    run_until(fx, 6);

    assert_int_equal(a.err, 0);
    assert_int_equal(b.err, TERN_E_INVAL);
    assert_int_equal(dup.err, TERN_E_EXISTS);
    assert_int_equal(d.err, 0);
    /* b's own write was undone at once, even inside the transaction. */
    assert_int_equal(get_b.err, TERN_E_NOTFOUND);
    assert_int_equal(fx->counter->begins, 1);
    assert_int_equal(fx->counter->commits, 1);
    assert_int_equal(count_accounts(fx), 2);
}

/* XEP-0160 quota inside group commit: the message over quota fails alone;
 * the writes around it, before and after, commit in the same transaction. */
static void test_offline_over_quota_fails_alone(void **state) {
    struct fixture *fx = *state;
    struct tjob alice, gate, off[OFFLINE_QUOTA + 1], bob, bob_off, count;

    tjob_init(&alice, fx, K_CREATE, "alice");
    submit(fx, &alice);
    run_until(fx, 1);
    assert_int_equal(alice.err, 0);
    int begins = fx->counter->begins, commits = fx->counter->commits;

    gate_close(fx, &gate);
    for (int i = 0; i <= OFFLINE_QUOTA; i++) {
        tjob_init(&off[i], fx, K_OFFLINE, "alice");
        submit(fx, &off[i]);
    }
    tjob_init(&bob, fx, K_CREATE, "bob");
    tjob_init(&bob_off, fx, K_OFFLINE, "bob");
    tjob_init(&count, fx, K_OFF_COUNT, "alice");
    submit(fx, &bob);
    submit(fx, &bob_off);
    submit(fx, &count);
    uv_sem_post(&fx->gate_release);
    run_until(fx, 1 + 1 + OFFLINE_QUOTA + 1 + 3);

    for (int i = 0; i < OFFLINE_QUOTA; i++) {
        assert_int_equal(off[i].err, 0);
        assert_true(off[i].id > 0);
        if (i)
            assert_true(off[i].id > off[i - 1].id);
    }
    assert_int_equal(off[OFFLINE_QUOTA].err, TERN_E_LIMIT);
    assert_int_equal(bob.err, 0);
    assert_int_equal(bob_off.err, 0); /* sees bob, created earlier in the batch */
    assert_int_equal(count.err, 0);
    assert_int_equal(count.n, OFFLINE_QUOTA); /* read inside the transaction */
    assert_int_equal(fx->counter->begins, begins + 1);
    assert_int_equal(fx->counter->commits, commits + 1);

    /* Committed: a fresh connection sees it all. */
    struct tern_store_backend *b = test_backend_open(fx->dir, fx->db_path);
    size_t n = 0;
    assert_non_null(b);
    assert_int_equal(b->ops->offline_count(b, "alice", &n), 0);
    assert_int_equal(n, OFFLINE_QUOTA);
    assert_int_equal(b->ops->offline_count(b, "bob", &n), 0);
    assert_int_equal(n, 1);
    tern_store_backend_close(&b);
    assert_int_equal(count_accounts(fx), 2);
}

static void test_commit_failure(void **state) {
    struct fixture *fx = *state;
    struct tjob gate, read_before, w1, w2, read_after;

    gate_close(fx, &gate);
    tjob_init(&read_before, fx, K_GET, "w1");
    tjob_init(&w1, fx, K_CREATE, "w1");
    tjob_init(&w2, fx, K_CREATE, "w2");
    tjob_init(&read_after, fx, K_GET, "w1");
    submit(fx, &read_before);
    submit(fx, &w1);
    submit(fx, &w2);
    submit(fx, &read_after);
    fx->counter->fail_commit = 1; /* the store thread is held in the gate */
    uv_sem_post(&fx->gate_release);
    run_until(fx, 5);

    /* Before the first write: its own answer stands. */
    assert_int_equal(read_before.err, TERN_E_NOTFOUND);
    /* Inside the lost transaction: nothing stands. */
    assert_int_equal(w1.err, TERN_E_IO);
    assert_int_equal(w2.err, TERN_E_IO);
    assert_int_equal(read_after.err, TERN_E_IO);
    assert_int_equal(fx->counter->commits, 0);

    fx->counter->fail_commit = 0; /* ordered by the done callbacks above */
    assert_int_equal(count_accounts(fx), 0);

    /* The store goes on working afterwards. */
    struct tjob w3;
    tjob_init(&w3, fx, K_CREATE, "w3");
    submit(fx, &w3);
    run_until(fx, 7);
    assert_int_equal(w3.err, 0);
    assert_int_equal(count_accounts(fx), 1);
}

static void release_later(void *arg) {
    struct fixture *fx = arg;
    uv_sleep(20);
    uv_sem_post(&fx->gate_release);
}

static void test_close_drains(void **state) {
    struct fixture *fx = *state;
    struct tjob gate, jobs[50];
    uv_thread_t helper;

    gate_close(fx, &gate);
    for (int i = 0; i < 50; i++) {
        char name[16];
        snprintf(name, sizeof name, "u%02d", i);
        tjob_init(&jobs[i], fx, K_CREATE, name);
        submit(fx, &jobs[i]);
    }
    jobs[49].submit_from_done = 1;
    /* Whenever the helper lets the gate go, before or during close, every
     * job must still be finished and delivered by close. */
    assert_int_equal(uv_thread_create(&helper, release_later, fx), 0);
    tern_store_close(&fx->store);
    assert_null(fx->store);
    assert_int_equal(uv_thread_join(&helper), 0);

    assert_int_equal(fx->done_total, 51);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(jobs[i].dones, 1);
        assert_int_equal(jobs[i].err, 0);
        assert_true(jobs[i].done_on_main);
    }
    assert_int_equal(jobs[49].submit_in_done, TERN_E_CLOSED);

    struct tjob late;
    tjob_init(&late, fx, K_GET, "u00");
    assert_int_equal(tern_store_submit(fx->store, &late.job), TERN_E_CLOSED);

    /* Durable: another connection sees all 50. */
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    struct tern_config cfg = test_config(fx->dir, fx->db_path);
    struct tern_store_backend *b = NULL;
    char err[512];
    char **users = NULL;
    size_t n = 0;
    assert_int_equal(tern_store_backend_open(&cfg, &b, err, sizeof err), 0);
    assert_int_equal(b->ops->account_list(b, &users, &n), 0);
    assert_int_equal(n, 50);
    tern_store_free_list(users, n);
    tern_store_backend_close(&b);
}

static void test_close_from_done(void **state) {
    struct fixture *fx = *state;
    struct tjob gate, jobs[3];

    gate_close(fx, &gate);
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%d", i);
        tjob_init(&jobs[i], fx, K_CREATE, name);
        submit(fx, &jobs[i]);
    }
    jobs[0].close_from_done = 1;
    jobs[1].submit_from_done = 1;
    uv_sem_post(&fx->gate_release);
    run_until(fx, 4);
    assert_null(fx->store);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(jobs[i].dones, 1);
        assert_int_equal(jobs[i].err, 0);
        assert_int_equal(jobs[i].seq, i + 1); /* still in order */
    }
    assert_int_equal(jobs[1].submit_in_done, TERN_E_CLOSED);
}

static void test_account_get_after_close(void **state) {
    struct fixture *fx = *state;
    struct get_result r = {.fx = fx};
    tern_store_close(&fx->store);
    assert_int_equal(tern_store_account_get(fx->store, "alice", on_get, &r), TERN_E_CLOSED);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(r.calls, 0);
}

/* An idle store does not keep the loop alive; a job in flight does. */
static void test_loop_alive_only_while_busy(void **state) {
    struct fixture *fx = *state;
    struct tjob t;

    assert_int_equal(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
    tjob_init(&t, fx, K_CREATE, "alice");
    submit(fx, &t);
    assert_int_equal(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(t.dones, 1);
    assert_int_equal(t.err, 0);
    assert_int_equal(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
}

static void close_everything(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* A daemon that closes every handle with uv_walk before closing the store
 * must not crash it (the store then frees itself at once). */
static void test_handle_closed_by_walk(void **state) {
    struct fixture *fx = *state;
    struct tjob t;

    tjob_init(&t, fx, K_CREATE, "alice");
    submit(fx, &t);
    run_until(fx, 1);
    uv_walk(&fx->loop, close_everything, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    tern_store_close(&fx->store);
    assert_null(fx->store);
}

int main(void) {
    tern_log_set_level(TERN_LOG_ERROR); /* expected warnings would clutter the output */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_write_on_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_of_100, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_job_keeps_others, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_over_quota_fails_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_from_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_get_after_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_alive_only_while_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handle_closed_by_walk, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
