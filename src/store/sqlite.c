/*
 * The SQLite backend: one connection, prepared statements with bound
 * parameters only, WAL so that ternctl and ternd share the file, and
 * synchronous=FULL so that a COMMIT that returned is on disk.
 */
#include "store/sqlite.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/store.h"

#define BUSY_TIMEOUT_MS 5000 /* how long a statement waits for another process's lock */
#define SHA1_LEN        20   /* bytes of a SHA-1 digest (TERN_SCRAM_SHA1 keys) */
#define SHA256_LEN      32   /* bytes of a SHA-256 digest (TERN_SCRAM_SHA256 keys) */

/*
 * Numbered migrations. Each runs once, in order, inside the transaction that
 * records its number in schema_version. Never edit a migration that shipped:
 * add the next one (roster, offline messages, push registrations ...) and
 * raise TERN__SQLITE_SCHEMA_VERSION.
 */
struct migration {
    int version;     /* number recorded in schema_version once applied */
    const char *sql; /* constant DDL, run with sqlite3_exec */
};

static const struct migration migrations[] = {
    {1, "CREATE TABLE accounts ("
        " username TEXT PRIMARY KEY NOT NULL,"
        " salt BLOB NOT NULL,"
        " iterations INTEGER NOT NULL,"
        " sha1_stored BLOB NOT NULL,"
        " sha1_server BLOB NOT NULL,"
        " sha256_stored BLOB NOT NULL,"
        " sha256_server BLOB NOT NULL,"
        " created_at INTEGER NOT NULL"
        ");"},
};

_Static_assert(sizeof migrations / sizeof migrations[0] == TERN__SQLITE_SCHEMA_VERSION,
               "TERN__SQLITE_SCHEMA_VERSION must equal the number of migrations");

/* The statements prepared once at open and reused for the connection's life. */
enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_ACC_INSERT,
    ST_ACC_SELECT,
    ST_ACC_UPDATE,
    ST_ACC_DELETE,
    ST_ACC_LIST,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    /* IMMEDIATE takes the write lock now (waiting up to the busy timeout)
     * rather than failing later when a read transaction tries to upgrade. */
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT tern_job",
    [ST_RELEASE] = "RELEASE tern_job",
    [ST_ROLLBACK_TO] = "ROLLBACK TO tern_job",
    [ST_ACC_INSERT] = "INSERT INTO accounts (username, salt, iterations, sha1_stored, sha1_server,"
                      " sha256_stored, sha256_server, created_at)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_ACC_SELECT] = "SELECT salt, iterations, sha1_stored, sha1_server, sha256_stored,"
                      " sha256_server FROM accounts WHERE username = ?1",
    [ST_ACC_UPDATE] = "UPDATE accounts SET salt = ?2, iterations = ?3, sha1_stored = ?4,"
                      " sha1_server = ?5, sha256_stored = ?6, sha256_server = ?7"
                      " WHERE username = ?1",
    [ST_ACC_DELETE] = "DELETE FROM accounts WHERE username = ?1",
    [ST_ACC_LIST] = "SELECT username FROM accounts ORDER BY username",
};

struct sqlite_backend {
    struct tern_store_backend base; /* must be first: the ops table */
    sqlite3 *db;                    /* the connection */
    char *path;                     /* database file, for messages */
    sqlite3_stmt *stmt[ST_COUNT];   /* prepared statements, by enum stmt_id */
};

static struct sqlite_backend *from_base(struct tern_store_backend *b) {
    return (struct sqlite_backend *)(void *)b;
}

/*
 * Map a SQLite result code to a tern_err. An existing key is an expected
 * answer (adduser of a taken name) and only logged at debug; anything else
 * is logged at warn with SQLite's own message.
 */
static int fail(struct sqlite_backend *sb, int rc, const char *what) {
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
        tern_debug("store", "sqlite %s: %s: %s", sb->path, what, sqlite3_errmsg(sb->db));
        return TERN_E_EXISTS;
    }
    tern_warn("store", "sqlite %s: %s: %s", sb->path, what, sqlite3_errmsg(sb->db));
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return TERN_E_BUSY;
    default: return TERN_E_IO;
    }
}

/* Step a statement that returns no row, then reset it for reuse. */
static int step_done(struct sqlite_backend *sb, enum stmt_id id, const char *what) {
    sqlite3_stmt *st = sb->stmt[id];
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : fail(sb, rc, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

static void finish(sqlite3_stmt *st) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* ---- transactions ---------------------------------------------------------- */

static int sq_begin(struct tern_store_backend *b) {
    return step_done(from_base(b), ST_BEGIN, "begin");
}

static int sq_commit(struct tern_store_backend *b) {
    return step_done(from_base(b), ST_COMMIT, "commit");
}

static int sq_rollback(struct tern_store_backend *b) {
    struct sqlite_backend *sb = from_base(b);
    /* SQLite may already have rolled back on its own (e.g. after a disk
     * error); there is then nothing to undo and no error to report. */
    if (sqlite3_get_autocommit(sb->db))
        return 0;
    return step_done(sb, ST_ROLLBACK, "rollback");
}

static int sq_savepoint(struct tern_store_backend *b) {
    return step_done(from_base(b), ST_SAVEPOINT, "savepoint");
}

static int sq_release(struct tern_store_backend *b) {
    return step_done(from_base(b), ST_RELEASE, "release savepoint");
}

/* ROLLBACK TO leaves the savepoint open; release it so that every savepoint
 * ends with exactly one of release or rollback_to. */
static int sq_rollback_to(struct tern_store_backend *b) {
    struct sqlite_backend *sb = from_base(b);
    int rc = step_done(sb, ST_ROLLBACK_TO, "rollback to savepoint");
    if (rc < 0)
        return rc;
    return step_done(sb, ST_RELEASE, "release savepoint");
}

/* ---- accounts -------------------------------------------------------------- */

static int creds_valid(const struct tern_scram_creds *c) {
    return c->salt_len > 0 && c->salt_len <= TERN_SCRAM_SALT_LEN && c->iterations > 0;
}

/* Bind username (?1) and the credential columns (?2 .. ?7). */
static int bind_creds(struct sqlite_backend *sb, sqlite3_stmt *st, const char *user,
                      const struct tern_scram_creds *c, const char *what) {
    const struct tern_scram_keys *k1 = &c->keys[TERN_SCRAM_SHA1];
    const struct tern_scram_keys *k256 = &c->keys[TERN_SCRAM_SHA256];
    int rc = sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(st, 2, c->salt, (int)c->salt_len, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 3, c->iterations);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(st, 4, k1->stored_key, SHA1_LEN, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(st, 5, k1->server_key, SHA1_LEN, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(st, 6, k256->stored_key, SHA256_LEN, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(st, 7, k256->server_key, SHA256_LEN, SQLITE_STATIC);
    if (rc != SQLITE_OK) {
        int ret = fail(sb, rc, what);
        finish(st);
        return ret;
    }
    return 0;
}

static int sq_account_create(struct tern_store_backend *b, const char *user,
                             const struct tern_scram_creds *creds) {
    struct sqlite_backend *sb = from_base(b);
    sqlite3_stmt *st = sb->stmt[ST_ACC_INSERT];
    if (!creds_valid(creds))
        return TERN_E_INVAL;
    int rc = bind_creds(sb, st, user, creds, "account_create");
    if (rc < 0)
        return rc;
    rc = sqlite3_bind_int64(st, 8, (sqlite3_int64)time(NULL));
    if (rc != SQLITE_OK) {
        rc = fail(sb, rc, "account_create");
        finish(st);
        return rc;
    }
    return step_done(sb, ST_ACC_INSERT, "account_create");
}

/* Copy a blob column of exactly len bytes into dst; -1 if the size differs. */
static int column_blob(sqlite3_stmt *st, int col, void *dst, size_t len) {
    if ((size_t)sqlite3_column_bytes(st, col) != len)
        return -1;
    const void *p = sqlite3_column_blob(st, col);
    if (len && !p)
        return -1;
    memcpy(dst, p, len);
    return 0;
}

static int sq_account_get(struct tern_store_backend *b, const char *user,
                          struct tern_scram_creds *creds) {
    struct sqlite_backend *sb = from_base(b);
    sqlite3_stmt *st = sb->stmt[ST_ACC_SELECT];
    int ret = 0;

    memset(creds, 0, sizeof *creds);
    int rc = sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    if (rc != SQLITE_OK) {
        ret = fail(sb, rc, "account_get");
        goto fail;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        ret = TERN_E_NOTFOUND;
        goto fail;
    }
    if (rc != SQLITE_ROW) {
        ret = fail(sb, rc, "account_get");
        goto fail;
    }
    int salt_len = sqlite3_column_bytes(st, 0);
    if (salt_len <= 0 || salt_len > TERN_SCRAM_SALT_LEN ||
        column_blob(st, 0, creds->salt, (size_t)salt_len) < 0 ||
        column_blob(st, 2, creds->keys[TERN_SCRAM_SHA1].stored_key, SHA1_LEN) < 0 ||
        column_blob(st, 3, creds->keys[TERN_SCRAM_SHA1].server_key, SHA1_LEN) < 0 ||
        column_blob(st, 4, creds->keys[TERN_SCRAM_SHA256].stored_key, SHA256_LEN) < 0 ||
        column_blob(st, 5, creds->keys[TERN_SCRAM_SHA256].server_key, SHA256_LEN) < 0 ||
        sqlite3_column_int(st, 1) <= 0) {
        tern_warn("store", "sqlite %s: account_get: malformed credentials for user '%s'", sb->path,
                  user);
        memset(creds, 0, sizeof *creds);
        ret = TERN_E_IO;
        goto fail;
    }
    creds->salt_len = (size_t)salt_len;
    creds->iterations = sqlite3_column_int(st, 1);

fail:
    finish(st);
    return ret;
}

static int sq_account_set(struct tern_store_backend *b, const char *user,
                          const struct tern_scram_creds *creds) {
    struct sqlite_backend *sb = from_base(b);
    if (!creds_valid(creds))
        return TERN_E_INVAL;
    int rc = bind_creds(sb, sb->stmt[ST_ACC_UPDATE], user, creds, "account_set");
    if (rc == 0)
        rc = step_done(sb, ST_ACC_UPDATE, "account_set");
    if (rc == 0 && sqlite3_changes(sb->db) == 0)
        rc = TERN_E_NOTFOUND;
    return rc;
}

static int sq_account_delete(struct tern_store_backend *b, const char *user) {
    struct sqlite_backend *sb = from_base(b);
    sqlite3_stmt *st = sb->stmt[ST_ACC_DELETE];
    int rc = sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    if (rc != SQLITE_OK) {
        rc = fail(sb, rc, "account_delete");
        finish(st);
        return rc;
    }
    rc = step_done(sb, ST_ACC_DELETE, "account_delete");
    if (rc == 0 && sqlite3_changes(sb->db) == 0)
        rc = TERN_E_NOTFOUND;
    return rc;
}

static int sq_account_list(struct tern_store_backend *b, char ***users, size_t *n) {
    struct sqlite_backend *sb = from_base(b);
    sqlite3_stmt *st = sb->stmt[ST_ACC_LIST];
    char **list = NULL;
    size_t len = 0, cap = 0;
    int rc;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *name = sqlite3_column_text(st, 0);
        if (!name)
            continue;
        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            list = tern_realloc(list, cap * sizeof *list);
        }
        list[len++] = tern_strdup((const char *)name);
    }
    if (rc != SQLITE_DONE) {
        rc = fail(sb, rc, "account_list");
        finish(st);
        tern_store_free_list(list, len);
        return rc;
    }
    finish(st);
    *users = list;
    *n = len;
    return 0;
}

/* ---- open / close ---------------------------------------------------------- */

static void sq_close(struct tern_store_backend *b) {
    struct sqlite_backend *sb = from_base(b);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(sb->stmt[i]);
    if (sb->db && sqlite3_close(sb->db) != SQLITE_OK)
        tern_warn("store", "sqlite %s: close: %s", sb->path, sqlite3_errmsg(sb->db));
    free(sb->path);
    free(sb);
}

static const struct tern_store_backend_ops sqlite_ops = {
    .name = "sqlite",
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .release = sq_release,
    .rollback_to = sq_rollback_to,
    .account_create = sq_account_create,
    .account_get = sq_account_get,
    .account_set = sq_account_set,
    .account_delete = sq_account_delete,
    .account_list = sq_account_list,
    .close = sq_close,
};

/* mkdir -p with mode 0700 for the directories it creates. */
static int make_dirs(const char *dir, const char *path, char *err, size_t errlen) {
    char *d = tern_strdup(dir);
    int ret = 0;
    size_t len = strlen(d);
    for (size_t i = 1; i <= len; i++) {
        if (d[i] != '/' && d[i] != '\0')
            continue;
        char c = d[i];
        d[i] = '\0';
        if (mkdir(d, 0700) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "%s: cannot create directory %s: %s", path, d, strerror(errno));
            ret = TERN_E_IO;
            goto fail;
        }
        d[i] = c;
    }
    struct stat sbuf;
    if (len && (stat(d, &sbuf) < 0 || !S_ISDIR(sbuf.st_mode))) {
        snprintf(err, errlen, "%s: %s is not a directory", path, d);
        ret = TERN_E_IO;
    }
fail:
    free(d);
    return ret;
}

static int exec_sql(struct sqlite_backend *sb, const char *sql, char *err, size_t errlen) {
    char *msg = NULL;
    int rc = sqlite3_exec(sb->db, sql, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        return 0;
    snprintf(err, errlen, "%s: %s", sb->path, msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return (rc & 0xff) == SQLITE_BUSY ? TERN_E_BUSY : TERN_E_IO;
}

/* Read one integer from a constant query with no parameters. */
static int query_int(struct sqlite_backend *sb, const char *sql, int *out, char *err,
                     size_t errlen) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(sb->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int(st, 0);
            rc = SQLITE_OK;
        }
    }
    if (rc != SQLITE_OK)
        snprintf(err, errlen, "%s: %s", sb->path, sqlite3_errmsg(sb->db));
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : ((rc & 0xff) == SQLITE_BUSY ? TERN_E_BUSY : TERN_E_IO);
}

static int record_version(struct sqlite_backend *sb, int version, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        sb->db, "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 1, version);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(sb->db);
    if (rc != SQLITE_OK)
        snprintf(err, errlen, "%s: recording schema version %d: %s", sb->path, version,
                 sqlite3_errmsg(sb->db));
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : TERN_E_IO;
}

/* The highest migration applied (0 for a new file); TERN_E_INVAL if newer than this code. */
static int read_version(struct sqlite_backend *sb, int *version, char *err, size_t errlen) {
    int exists = 0;
    *version = 0;
    int rc = query_int(sb,
                       "SELECT COUNT(*) FROM sqlite_master"
                       " WHERE type = 'table' AND name = 'schema_version'",
                       &exists, err, errlen);
    if (rc == 0 && exists)
        rc = query_int(sb, "SELECT COALESCE(MAX(version), 0) FROM schema_version", version, err,
                       errlen);
    if (rc == 0 && *version > TERN__SQLITE_SCHEMA_VERSION) {
        snprintf(err, errlen, "%s: database schema version %d is newer than this program's (%d)",
                 sb->path, *version, TERN__SQLITE_SCHEMA_VERSION);
        rc = TERN_E_INVAL;
    }
    return rc;
}

/*
 * Bring the schema to TERN__SQLITE_SCHEMA_VERSION. An up-to-date file is only
 * read (in WAL mode that never waits for a writer, so ternctl starts at once
 * beside a busy ternd). Otherwise the check-and-apply runs again in one
 * IMMEDIATE transaction, so two processes opening a new file at the same
 * moment cannot both apply a migration.
 */
static int migrate(struct sqlite_backend *sb, char *err, size_t errlen) {
    int version = 0;
    int rc = read_version(sb, &version, err, errlen);
    if (rc < 0 || version == TERN__SQLITE_SCHEMA_VERSION)
        return rc;

    rc = exec_sql(sb, "BEGIN IMMEDIATE", err, errlen);
    if (rc < 0)
        return rc;
    rc = exec_sql(sb,
                  "CREATE TABLE IF NOT EXISTS schema_version ("
                  " version INTEGER PRIMARY KEY NOT NULL,"
                  " applied_at INTEGER NOT NULL)",
                  err, errlen);
    if (rc == 0)
        rc = read_version(sb, &version, err, errlen);
    for (size_t i = 0; rc == 0 && i < sizeof migrations / sizeof migrations[0]; i++) {
        if (migrations[i].version <= version)
            continue;
        rc = exec_sql(sb, migrations[i].sql, err, errlen);
        if (rc == 0)
            rc = record_version(sb, migrations[i].version, err, errlen);
        if (rc == 0)
            tern_info("store", "sqlite %s: applied schema migration %d", sb->path,
                      migrations[i].version);
    }
    if (rc == 0)
        rc = exec_sql(sb, "COMMIT", err, errlen);
    if (rc < 0 && !sqlite3_get_autocommit(sb->db))
        sqlite3_exec(sb->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Set the journal mode, durability and lock waiting of the connection. */
static int configure(struct sqlite_backend *sb, char *err, size_t errlen) {
    sqlite3_extended_result_codes(sb->db, 1);
    sqlite3_busy_timeout(sb->db, BUSY_TIMEOUT_MS);

    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(sb->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        snprintf(err, errlen, "%s: setting WAL mode: %s", sb->path, sqlite3_errmsg(sb->db));
        sqlite3_finalize(st);
        return (rc & 0xff) == SQLITE_BUSY ? TERN_E_BUSY : TERN_E_IO;
    }
    const unsigned char *mode = sqlite3_column_text(st, 0);
    if (!mode || strcmp((const char *)mode, "wal") != 0)
        tern_warn("store",
                  "sqlite %s: journal mode is '%s', not 'wal' (ternctl and ternd may block "
                  "each other)",
                  sb->path, mode ? (const char *)mode : "?");
    sqlite3_finalize(st);

    /* FULL: a COMMIT returns only after the WAL is synced, which is what lets
     * the store acknowledge a write as durable. */
    return exec_sql(sb, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", err, errlen);
}

int tern__sqlite_open(const char *path, const char *data_dir, struct tern_store_backend **out,
                      char *err, size_t errlen) {
    struct sqlite_backend *sb = tern_calloc(1, sizeof *sb);
    int rc;

    *out = NULL;
    sb->base.ops = &sqlite_ops;
    sb->path = tern_strdup(path);

    if (data_dir && *data_dir && (rc = make_dirs(data_dir, path, err, errlen)) < 0)
        goto fail;
    const char *slash = strrchr(path, '/');
    if (slash && slash != path) {
        char *parent = tern_strndup(path, (size_t)(slash - path));
        rc = make_dirs(parent, path, err, errlen);
        free(parent);
        if (rc < 0)
            goto fail;
    }

    rc = sqlite3_open_v2(path, &sb->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open database: %s", path,
                 sb->db ? sqlite3_errmsg(sb->db) : sqlite3_errstr(rc));
        rc = TERN_E_IO;
        goto fail;
    }
    if ((rc = configure(sb, err, errlen)) < 0)
        goto fail;
    if ((rc = migrate(sb, err, errlen)) < 0)
        goto fail;
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(sb->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &sb->stmt[i],
                               NULL) != SQLITE_OK) {
            snprintf(err, errlen, "%s: preparing '%s': %s", path, stmt_sql[i],
                     sqlite3_errmsg(sb->db));
            rc = TERN_E_IO;
            goto fail;
        }
    }
    *out = &sb->base;
    return 0;

fail:
    sq_close(&sb->base);
    return rc;
}
