/*
 * The storage interface: backend selection, and the asynchronous front that
 * ternd uses so that no database call ever runs on a loop thread.
 *
 * One store thread owns the backend. The loop queues jobs (embedded in the
 * caller's structs, so queuing never allocates); the thread takes every job
 * queued (up to BATCH_MAX), runs the writes among them in one transaction with
 * a savepoint per job, commits once, and hands the whole batch back to the
 * loop through a uv_async_t. See docs/internals/store.md.
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/sqlite.h"

/*
 * Most jobs one transaction holds. Bounds how long the write lock is held
 * (ternctl waits behind it) and how much a failed commit takes down.
 */
#define BATCH_MAX 512

/* ---- backends ---------------------------------------------------------------- */

int tern_store_backend_open(const struct tern_config *cfg, struct tern_store_backend **out,
                            char *err, size_t errlen) {
    const char *name = cfg->store_backend ? cfg->store_backend : "sqlite";
    *out = NULL;
    if (strcmp(name, "sqlite") == 0) {
        if (cfg->store_path)
            return tern__sqlite_open(cfg->store_path, cfg->data_dir, out, err, errlen);
        /* The documented default when the config leaves it out. */
        const char *dir = cfg->data_dir ? cfg->data_dir : "var";
        size_t len = strlen(dir) + sizeof "/tern.db";
        char *path = tern_malloc(len);
        snprintf(path, len, "%s/tern.db", dir);
        int rc = tern__sqlite_open(path, cfg->data_dir, out, err, errlen);
        free(path);
        return rc;
    }
    snprintf(err, errlen, "unknown store backend '%s' (known: sqlite)", name);
    return TERN_E_INVAL;
}

void tern_store_backend_close(struct tern_store_backend **b) {
    if (!*b)
        return;
    (*b)->ops->close(*b);
    *b = NULL;
}

void tern_store_free_list(char **list, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* ---- results of the roster and offline operations ------------------------------ */

void tern_roster_item_free(struct tern_roster_item *item) {
    if (!item)
        return;
    free(item->jid);
    free(item->name);
    tern_store_free_list(item->groups, item->ngroups);
    memset(item, 0, sizeof *item);
}

void tern_roster_free(struct tern_roster *roster) {
    if (!roster)
        return;
    for (size_t i = 0; i < roster->n; i++)
        tern_roster_item_free(&roster->items[i]);
    free(roster->items);
    memset(roster, 0, sizeof *roster);
}

void tern_offline_msgs_free(struct tern_offline_msg *msgs, size_t n) {
    for (size_t i = 0; msgs && i < n; i++)
        free(msgs[i].xml);
    free(msgs);
}

void tern_push_regs_free(struct tern_push_reg *regs, size_t n) {
    for (size_t i = 0; regs && i < n; i++) {
        free(regs[i].jid);
        free(regs[i].node);
        free(regs[i].options);
        free(regs[i].resource);
    }
    free(regs);
}

/* ---- the asynchronous front -------------------------------------------------- */

struct tern_store {
    uv_loop_t *loop;                    /* where done callbacks run */
    struct tern_store_backend *backend; /* owned; used only by the store thread until joined */
    uv_thread_t thread;                 /* the store thread */
    uv_async_t async;                   /* store thread -> loop: completions are ready */
    uv_mutex_t lock;                    /* guards the fields marked (lock) */
    uv_cond_t wake;                     /* signalled on a new job or on stopping */
    struct tern_store_job *queue_head;  /* (lock) submitted, not yet taken; FIFO */
    struct tern_store_job *queue_tail;  /* (lock) last queued job */
    struct tern_store_job *done_head;   /* (lock) finished, done not yet called; FIFO */
    struct tern_store_job *done_tail;   /* (lock) last finished job */
    int closing;                        /* (lock) close began: submit refuses */
    int stopping;                       /* (lock) the thread exits once the queue is empty */
    struct tern_store_job *delivering;  /* loop only: taken from done_head, being delivered */
    size_t inflight;                    /* loop only: submitted, done not yet called */
};

/* Every job from first up to (not including) stop ran in a transaction that
 * was lost: none of its effects exist, whatever run returned. */
static void fail_range(struct tern_store_job *first, struct tern_store_job *stop) {
    for (struct tern_store_job *j = first; j && j != stop; j = j->next)
        j->err = TERN_E_IO;
}

/*
 * Run one batch on the store thread. Reads that come before the batch's
 * first write run on their own (autocommit); from the first write on,
 * everything runs inside one transaction, each write in its own savepoint, so
 * that a job sees what earlier jobs of the batch wrote. If the transaction is
 * lost (commit fails, or a savepoint cannot be rolled back) every job that
 * ran in it gets TERN_E_IO: a read may have seen a write that never became
 * durable.
 */
static void run_batch(struct tern_store_backend *b, struct tern_store_job *batch) {
    const struct tern_store_backend_ops *ops = b->ops;
    struct tern_store_job *txn_first = NULL; /* first job inside the open transaction */
    int begin_err = 0; /* BEGIN failed: the batch's remaining writes fail the same way */

    for (struct tern_store_job *j = batch; j; j = j->next) {
        if (!j->write) {
            j->err = j->run(b, j);
            continue;
        }
        if (begin_err) {
            j->err = begin_err;
            continue;
        }
        if (!txn_first) {
            int rc = ops->begin(b);
            if (rc < 0) {
                begin_err = j->err = rc;
                continue;
            }
            txn_first = j;
        }
        int rc = ops->savepoint(b);
        if (rc < 0) {
            j->err = rc;
            continue;
        }
        rc = j->run(b, j);
        int end = rc == 0 ? ops->release(b) : ops->rollback_to(b);
        j->err = rc != 0 ? rc : end;
        if (end < 0) {
            /* The savepoint could not be closed: the transaction is in an
             * unknown state, so give it up and start afresh with the next write. */
            ops->rollback(b);
            fail_range(txn_first, j);
            txn_first = NULL;
        }
    }
    if (txn_first && ops->commit(b) < 0) {
        ops->rollback(b);
        fail_range(txn_first, NULL);
    }
}

static void thread_main(void *arg) {
    struct tern_store *s = arg;

    uv_mutex_lock(&s->lock);
    for (;;) {
        while (!s->queue_head && !s->stopping)
            uv_cond_wait(&s->wake, &s->lock);
        if (!s->queue_head)
            break; /* stopping, and nothing left to do */

        struct tern_store_job *batch = s->queue_head, *last = batch;
        for (int n = 1; n < BATCH_MAX && last->next; n++)
            last = last->next;
        s->queue_head = last->next;
        if (!s->queue_head)
            s->queue_tail = NULL;
        last->next = NULL;
        uv_mutex_unlock(&s->lock);

        run_batch(s->backend, batch);

        uv_mutex_lock(&s->lock);
        if (s->done_tail)
            s->done_tail->next = batch;
        else
            s->done_head = batch;
        s->done_tail = last;
        /* Safe under the lock: uv_async_send is thread-safe, and close joins
         * this thread before it closes the handle. */
        uv_async_send(&s->async);
    }
    uv_mutex_unlock(&s->lock);
}

/*
 * Call done for finished jobs, in order, on the loop thread. With all false,
 * deliver what had finished when we started (so a busy store thread cannot
 * keep the loop here); with all true, until nothing is left. Jobs waiting in
 * s->delivering survive a reentrant call (a done that calls tern_store_close).
 */
static void deliver(struct tern_store *s, int all) {
    int refills = 0;
    for (;;) {
        if (!s->delivering) {
            if (!all && refills++)
                return;
            uv_mutex_lock(&s->lock);
            s->delivering = s->done_head;
            s->done_head = s->done_tail = NULL;
            uv_mutex_unlock(&s->lock);
            if (!s->delivering)
                return;
        }
        struct tern_store_job *j = s->delivering;
        s->delivering = j->next;
        j->next = NULL;
        if (--s->inflight == 0)
            uv_unref((uv_handle_t *)&s->async);
        j->done(j, j->err); /* may free j */
    }
}

static void on_async(uv_async_t *h) {
    deliver(h->data, 0);
}

static void on_async_closed(uv_handle_t *h) {
    struct tern_store *s = h->data;
    uv_cond_destroy(&s->wake);
    uv_mutex_destroy(&s->lock);
    free(s);
}

int tern_store_new(uv_loop_t *loop, struct tern_store_backend *backend_take,
                   struct tern_store **out) {
    struct tern_store *s = tern_calloc(1, sizeof *s);
    int have_mutex = 0, have_cond = 0, have_async = 0;
    int rc;

    *out = NULL;
    s->loop = loop;
    s->backend = backend_take;

    if ((rc = uv_mutex_init(&s->lock)) < 0)
        goto fail;
    have_mutex = 1;
    if ((rc = uv_cond_init(&s->wake)) < 0)
        goto fail;
    have_cond = 1;
    if ((rc = uv_async_init(loop, &s->async, on_async)) < 0)
        goto fail;
    s->async.data = s;
    /* Referenced only while jobs are in flight: an idle store does not keep
     * the loop alive, a pending completion does. */
    uv_unref((uv_handle_t *)&s->async);
    have_async = 1;
    if ((rc = uv_thread_create(&s->thread, thread_main, s)) < 0)
        goto fail;
    *out = s;
    return 0;

fail:
    tern_error("store", "cannot start the store thread: %s", uv_strerror(rc));
    tern_store_backend_close(&s->backend);
    if (have_async) {
        /* The handle's memory is s: free it in the close callback. */
        uv_close((uv_handle_t *)&s->async, on_async_closed);
        return TERN_E_IO;
    }
    if (have_cond)
        uv_cond_destroy(&s->wake);
    if (have_mutex)
        uv_mutex_destroy(&s->lock);
    free(s);
    return TERN_E_IO;
}

int tern_store_submit(struct tern_store *s, struct tern_store_job *job) {
    if (!s)
        return TERN_E_CLOSED;
    job->next = NULL;
    job->err = 0;
    uv_mutex_lock(&s->lock);
    if (s->closing) {
        uv_mutex_unlock(&s->lock);
        return TERN_E_CLOSED;
    }
    if (s->queue_tail)
        s->queue_tail->next = job;
    else
        s->queue_head = job;
    s->queue_tail = job;
    uv_cond_signal(&s->wake);
    uv_mutex_unlock(&s->lock);
    if (s->inflight++ == 0)
        uv_ref((uv_handle_t *)&s->async);
    return 0;
}

void tern_store_close(struct tern_store **sp) {
    struct tern_store *s = *sp;
    if (!s)
        return;
    *sp = NULL;

    uv_mutex_lock(&s->lock);
    s->closing = 1;
    s->stopping = 1;
    uv_cond_signal(&s->wake);
    uv_mutex_unlock(&s->lock);

    /* The thread finishes every queued job before it exits. */
    uv_thread_join(&s->thread);
    deliver(s, 1);
    tern_store_backend_close(&s->backend);
    if (uv_is_closing((uv_handle_t *)&s->async)) {
        /* Someone else closed our handle (a uv_walk that closes every
         * handle): we will get no close callback. uv_close() again would
         * abort; freeing now is safe only because such a walk is followed by
         * a loop run that finished the close. Call close before the walk. */
        tern_warn("store", "the store's async handle was closed by someone else; "
                           "call tern_store_close() before closing every handle");
        on_async_closed((uv_handle_t *)&s->async);
        return;
    }
    /* The mutex and s itself go in the close callback: a done callback still
     * running up the stack (close called from a done) or a late submit may
     * touch them until then. */
    uv_close((uv_handle_t *)&s->async, on_async_closed);
}

/* ---- typed operations -------------------------------------------------------- */

struct account_get_req {
    struct tern_store_job job;     /* queued in the store */
    tern_store_creds_fn cb;        /* the caller's completion */
    void *ud;                      /* the caller's pointer */
    struct tern_scram_creds creds; /* filled by run on the store thread */
    char user[];                   /* copy of the username */
};

static int account_get_run(struct tern_store_backend *b, struct tern_store_job *job) {
    struct account_get_req *req = tern_store_container(job, struct account_get_req, job);
    return b->ops->account_get(b, req->user, &req->creds);
}

static void account_get_done(struct tern_store_job *job, int err) {
    struct account_get_req *req = tern_store_container(job, struct account_get_req, job);
    req->cb(req->ud, err, err == 0 ? &req->creds : NULL);
    tern_memzero(&req->creds, sizeof req->creds);
    free(req);
}

int tern_store_account_get(struct tern_store *s, const char *user, tern_store_creds_fn cb,
                           void *ud) {
    size_t len = strlen(user);
    struct account_get_req *req = tern_calloc(1, sizeof *req + len + 1);
    req->job.run = account_get_run;
    req->job.done = account_get_done;
    req->job.write = 0;
    req->cb = cb;
    req->ud = ud;
    memcpy(req->user, user, len + 1);
    int rc = tern_store_submit(s, &req->job);
    if (rc < 0)
        free(req);
    return rc;
}
