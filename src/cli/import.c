/*
 * ternctl import: create many accounts from a list, all or none.
 *
 * Three passes, so that a bad file costs nothing and a running ternd waits
 * for the database as briefly as possible:
 *   1. read and check every line (username, password, duplicates, existing
 *      accounts) and report every problem; stop there if there is one;
 *   2. derive the SCRAM keys (PBKDF2, nearly all the time) on one thread per
 *      CPU, outside any transaction;
 *   3. insert every account in one transaction.
 * The input format and the messages are in docs/ternctl.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/ctl.h"
#include "core/config.h"
#include "core/err.h"
#include "core/mem.h"
#include "store/store.h"
#include "xmpp/jid.h"
#include "xmpp/scram.h"

#define IMPORT_MAX_BYTES    (256u << 20) /* ceiling on the input file */
#define IMPORT_MAX_ACCOUNTS 1000000      /* ceiling on accounts in one import */
#define IMPORT_MAX_THREADS  64           /* ceiling on key derivation threads */

/** One account line of the input. */
struct entry {
    size_t line;                   /* line number in the input, from 1 */
    char *user;                    /* prepared localpart, owned */
    char *pw;                      /* password, inside the input buffer (NUL-terminated there) */
    size_t pwlen;                  /* bytes at pw */
    int skip;                      /* exists already and --skip-existing: left alone */
    int rc;                        /* result of the key derivation */
    struct tern_scram_creds creds; /* derived keys (secret: wiped on free) */
};

/** One reason a line cannot be imported. */
struct problem {
    size_t line; /* line number, from 1 */
    size_t seq;  /* order found, to keep a line's problems in order when sorting */
    char *msg;   /* owned; never holds a password */
};

/** The state of one import. */
struct import {
    const struct tern_config *cfg; /* domain, scram_iterations */
    const char *name;              /* the input as messages name it: FILE or "stdin" */
    char *buf;                     /* the whole input, NUL-terminated; holds passwords */
    size_t len;                    /* bytes of input in buf */
    size_t cap;                    /* bytes allocated at buf */
    struct entry *entries;         /* account lines, in input order */
    size_t n;                      /* entries used */
    size_t ncap;                   /* entries allocated */
    struct problem *problems;      /* what is wrong with the input */
    size_t np;                     /* problems used */
    size_t npcap;                  /* problems allocated */
};

/* Record a problem of line; printed later, sorted by line. */
static void problem(struct import *im, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(struct import *im, size_t line, const char *fmt, ...) {
    char msg[TERN_JID_PART_MAX + 300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (im->np == im->npcap) {
        im->npcap = im->npcap ? im->npcap * 2 : 16;
        im->problems = tern_realloc(im->problems, im->npcap * sizeof *im->problems);
    }
    im->problems[im->np] = (struct problem){.line = line, .seq = im->np, .msg = tern_strdup(msg)};
    im->np++;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- pass 1: read and check ---------------------------------------------------- */

/*
 * Read all of fd into im->buf with read(2): stdio would keep copies of the
 * passwords in buffers we cannot wipe. A grown buffer is wiped before it is
 * freed for the same reason. Returns 0, or -1 after printing why.
 */
static int read_all(struct import *im, int fd) {
    im->cap = 64 * 1024;
    im->buf = tern_malloc(im->cap);
    for (;;) {
        if (im->len + 1 == im->cap) {
            if (im->cap >= IMPORT_MAX_BYTES) {
                fprintf(stderr, "ternctl: %s: larger than %u MiB; split it into several imports\n",
                        im->name, IMPORT_MAX_BYTES >> 20);
                return -1;
            }
            char *bigger = tern_malloc(im->cap * 2);
            memcpy(bigger, im->buf, im->len);
            tern_memzero(im->buf, im->cap);
            free(im->buf);
            im->buf = bigger;
            im->cap *= 2;
        }
        ssize_t got = read(fd, im->buf + im->len, im->cap - 1 - im->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            fprintf(stderr, "ternctl: %s: %s\n", im->name, strerror(errno));
            return -1;
        }
        if (got == 0)
            break;
        im->len += (size_t)got;
    }
    im->buf[im->len] = '\0';
    return 0;
}

/*
 * Check one line (NUL-terminated at line[len], no newline) and, if it is an
 * account, add it. USER and PASSWORD are split at the first TAB, or at the
 * first space if there is no TAB, so that a password may hold spaces (a
 * username never does). The password is the rest of the line exactly, as
 * adduser takes the whole line, but it may not start with a space or TAB.
 */
static void parse_line(struct import *im, size_t lineno, char *line, size_t len) {
    char why[TERN_JID_PART_MAX + 300];

    if (len > 0 && line[len - 1] == '\r') /* a file written on Windows */
        line[--len] = '\0';
    if (strspn(line, " \t") == len || line[0] == '#')
        return;
    char *sep = memchr(line, '\t', len);
    if (!sep)
        sep = memchr(line, ' ', len);
    if (!sep) {
        problem(im, lineno, "no password: expected USER, a TAB or a space, then the password");
        return;
    }
    if (sep == line) {
        problem(im, lineno, "no username: the line starts with a %s",
                *sep == '\t' ? "TAB" : "space");
        return;
    }
    *sep = '\0';
    char *pw = sep + 1;
    size_t pwlen = len - (size_t)(pw - line);
    char *user = NULL;
    int bad = 0;

    /* Most likely columns lined up with several spaces: importing " secret"
     * would give every account a password its user does not know. */
    if (pw[0] == ' ' || pw[0] == '\t') {
        problem(im, lineno,
                "the password starts with a %s: put exactly one TAB or space between USER and "
                "PASSWORD",
                pw[0] == '\t' ? "TAB" : "space");
        return;
    }

    if (memchr(line, '\0', (size_t)(sep - line))) {
        problem(im, lineno, "the username contains a NUL byte");
        bad = 1;
    } else if (tern__ctl_prep_user(line, im->cfg, &user, why, sizeof why) < 0) {
        problem(im, lineno, "%s", why);
        bad = 1;
    }
    if (tern__ctl_check_password(pw, pwlen, why, sizeof why) < 0) {
        problem(im, lineno, "%s", why);
        bad = 1;
    }
    if (bad) {
        free(user);
        return;
    }
    if (im->n == im->ncap) {
        im->ncap = im->ncap ? im->ncap * 2 : 256;
        im->entries = tern_realloc(im->entries, im->ncap * sizeof *im->entries);
    }
    im->entries[im->n++] = (struct entry){.line = lineno, .user = user, .pw = pw, .pwlen = pwlen};
}

/* Split the input into lines and check each. Returns 0, or -1 after printing why. */
static int parse(struct import *im) {
    char *p = im->buf;
    char *end = im->buf + im->len;
    size_t lineno = 0;

    /* A byte order mark is not part of the first username. */
    if (im->len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *eol = nl ? nl : end;
        *eol = '\0';
        lineno++;
        parse_line(im, lineno, p, (size_t)(eol - p));
        if (im->n > IMPORT_MAX_ACCOUNTS) {
            fprintf(stderr, "ternctl: %s: more than %d accounts; split it into several imports\n",
                    im->name, IMPORT_MAX_ACCOUNTS);
            return -1;
        }
        p = eol + 1;
    }
    return 0;
}

static int by_user_then_line(const void *a, const void *b) {
    const struct entry *x = *(const struct entry *const *)a;
    const struct entry *y = *(const struct entry *const *)b;
    int c = strcmp(x->user, y->user);
    if (c != 0)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

/*
 * A user listed twice is a problem on every line after the first (after
 * preparation: "Alice" and "alice" are the same user).
 */
static void find_duplicates(struct import *im) {
    if (im->n < 2)
        return;
    struct entry **sorted = tern_malloc(im->n * sizeof *sorted);
    for (size_t i = 0; i < im->n; i++)
        sorted[i] = &im->entries[i];
    qsort(sorted, im->n, sizeof *sorted, by_user_then_line);
    size_t first = 0;
    for (size_t i = 1; i < im->n; i++) {
        if (strcmp(sorted[i]->user, sorted[first]->user) != 0) {
            first = i;
            continue;
        }
        problem(im, sorted[i]->line, "user %s@%s is already on line %zu", sorted[i]->user,
                im->cfg->domain, sorted[first]->line);
    }
    free(sorted);
}

/*
 * An account that exists already is a problem, or with skip_existing is
 * marked to be left alone. Reads only, so a running ternd is not held up.
 * Returns 0, or -1 after printing a database error.
 */
static int find_existing(struct import *im, struct tern_store_backend *b, int skip_existing) {
    for (size_t i = 0; i < im->n; i++) {
        struct entry *e = &im->entries[i];
        struct tern_scram_creds creds;
        int rc = b->ops->account_get(b, e->user, &creds);
        tern_memzero(&creds, sizeof creds);
        if (rc == TERN_E_NOTFOUND)
            continue;
        if (rc < 0) {
            tern__ctl_store_error("import", rc);
            return -1;
        }
        if (skip_existing) {
            e->skip = 1;
            tern_memzero(e->pw, e->pwlen); /* never needed */
        } else {
            problem(im, e->line, "user %s@%s already exists", e->user, im->cfg->domain);
        }
    }
    return 0;
}

static int by_line(const void *a, const void *b) {
    const struct problem *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Print every problem as FILE:LINE: reason, in line order, then the verdict. */
static void report_problems(struct import *im) {
    qsort(im->problems, im->np, sizeof *im->problems, by_line);
    size_t lines = 0;
    for (size_t i = 0; i < im->np; i++) {
        fprintf(stderr, "%s:%zu: %s\n", im->name, im->problems[i].line, im->problems[i].msg);
        if (i == 0 || im->problems[i].line != im->problems[i - 1].line)
            lines++;
    }
    fprintf(stderr, "ternctl: %zu bad line%s in %s; no account imported\n", lines,
            lines == 1 ? "" : "s", im->name);
}

/* ---- pass 2: derive the keys --------------------------------------------------- */

/** Work shared by the derivation threads. */
struct deriver {
    struct entry *entries; /* all entries; those with skip set are passed over */
    size_t n;              /* entries */
    int iterations;        /* PBKDF2 iteration count (auth.scram_iterations) */
    atomic_size_t next;    /* next entry to take */
    atomic_size_t done;    /* entries whose keys are derived */
};

/*
 * Take entries one at a time until none is left, so that threads that get
 * less CPU simply do fewer. Each password is wiped once its keys exist.
 */
static void *derive_main(void *arg) {
    struct deriver *d = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&d->next, 1);
        if (i >= d->n)
            break;
        struct entry *e = &d->entries[i];
        if (!e->skip) {
            e->rc = tern_scram_creds_make(&e->creds, e->pw, d->iterations);
            tern_memzero(e->pw, e->pwlen);
            atomic_fetch_add(&d->done, 1);
        }
    }
    return NULL;
}

/* CPUs this process may run on (so taskset and cgroup cpusets limit the threads). */
static int cpus_usable(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/*
 * Derive the keys of every entry not skipped, on one thread per usable CPU.
 * On a terminal, show how far it got. Returns 0, or -1 after printing why.
 */
static int derive_all(struct import *im, size_t todo) {
    struct deriver d = {
        .entries = im->entries, .n = im->n, .iterations = im->cfg->scram_iterations};
    pthread_t threads[IMPORT_MAX_THREADS];
    int nthreads = cpus_usable();
    if (nthreads > IMPORT_MAX_THREADS)
        nthreads = IMPORT_MAX_THREADS;
    if ((size_t)nthreads > todo)
        nthreads = (int)todo;
    atomic_init(&d.next, 0);
    atomic_init(&d.done, 0);

    int started = 0;
    while (started < nthreads && pthread_create(&threads[started], NULL, derive_main, &d) == 0)
        started++;
    if (started == 0) {
        derive_main(&d); /* no thread to be had: do it here */
    } else if (isatty(STDERR_FILENO)) {
        /* Thousands of accounts take a while: say how far it got. */
        struct timespec tick = {.tv_sec = 0, .tv_nsec = 250 * 1000 * 1000};
        while (atomic_load(&d.done) < todo) {
            fprintf(stderr, "\rternctl: deriving keys: %zu/%zu", atomic_load(&d.done), todo);
            nanosleep(&tick, NULL);
        }
        fprintf(stderr, "\rternctl: deriving keys: %zu/%zu\n", todo, todo);
    }
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);

    for (size_t i = 0; i < im->n; i++) {
        if (!im->entries[i].skip && im->entries[i].rc < 0) {
            fprintf(stderr, "ternctl: %s:%zu: cannot derive the SCRAM keys: %s\n", im->name,
                    im->entries[i].line, tern_strerror(im->entries[i].rc));
            return -1;
        }
    }
    return 0;
}

/* ---- pass 3: store --------------------------------------------------------------- */

/*
 * Create every account not skipped in one transaction. An account created
 * by someone else since pass 1 is skipped too with skip_existing, else it
 * undoes the whole import. Returns 0 with *skipped counted, or -1 after
 * printing why (nothing was stored).
 */
static int store_all(struct import *im, struct tern_store_backend *b, int skip_existing,
                     size_t *skipped) {
    int rc = b->ops->begin(b);
    if (rc < 0) {
        tern__ctl_store_error("import", rc);
        return -1;
    }
    for (size_t i = 0; i < im->n; i++) {
        struct entry *e = &im->entries[i];
        if (e->skip)
            continue;
        rc = b->ops->account_create(b, e->user, &e->creds);
        if (rc == TERN_E_EXISTS && skip_existing) {
            e->skip = 1;
            (*skipped)++;
            continue;
        }
        if (rc == TERN_E_EXISTS) {
            fprintf(stderr, "%s:%zu: user %s@%s already exists (created during the import)\n",
                    im->name, e->line, e->user, im->cfg->domain);
            fprintf(stderr, "ternctl: no account imported\n");
            goto fail;
        }
        if (rc < 0) {
            tern__ctl_store_error("import", rc);
            goto fail;
        }
    }
    rc = b->ops->commit(b);
    if (rc < 0) {
        tern__ctl_store_error("import", rc);
        goto fail;
    }
    return 0;
fail:
    b->ops->rollback(b);
    return -1;
}

/* ---- the command ------------------------------------------------------------------ */

static void import_free(struct import *im) {
    for (size_t i = 0; i < im->n; i++)
        free(im->entries[i].user);
    if (im->entries)
        tern_memzero(im->entries, im->ncap * sizeof *im->entries);
    free(im->entries);
    for (size_t i = 0; i < im->np; i++)
        free(im->problems[i].msg);
    free(im->problems);
    if (im->buf)
        tern_memzero(im->buf, im->cap);
    free(im->buf);
}

int tern__ctl_import(struct tern_store_backend *b, const struct tern_config *cfg, const char *path,
                     int skip_existing) {
    int stdin_input = !path || strcmp(path, "-") == 0;
    struct import im = {.cfg = cfg, .name = stdin_input ? "stdin" : path};
    double start = now_s();
    int fd = STDIN_FILENO;
    int ret = TERN__CTL_EXIT_FAIL;

    if (!stdin_input) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "ternctl: %s: %s\n", path, strerror(errno));
            goto fail;
        }
    }
    int rc = read_all(&im, fd);
    if (!stdin_input)
        close(fd);
    if (rc < 0 || parse(&im) < 0)
        goto fail;
    find_duplicates(&im);
    if (find_existing(&im, b, skip_existing) < 0)
        goto fail;
    if (im.np > 0) {
        report_problems(&im);
        goto fail;
    }

    size_t skipped = 0;
    for (size_t i = 0; i < im.n; i++)
        skipped += (size_t)im.entries[i].skip;
    if (im.n > skipped && derive_all(&im, im.n - skipped) < 0)
        goto fail;
    if (im.n > skipped && store_all(&im, b, skip_existing, &skipped) < 0)
        goto fail;

    size_t imported = im.n - skipped;
    printf("ternctl: imported %zu account%s (%zu skipped) in %.1f s\n", imported,
           imported == 1 ? "" : "s", skipped, now_s() - start);
    ret = 0;
fail:
    import_free(&im);
    return ret;
}
