/*
 * The SQLite backend: one connection, prepared statements with bound
 * parameters only, WAL so that ternctl and ternd share the file, and
 * synchronous=FULL so that a COMMIT that returned is on disk.
 */
#include "store/sqlite.h"

#include <errno.h>
#include <stdint.h>
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
 * add the next one and raise
 * TERN__SQLITE_SCHEMA_VERSION.
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
    /*
     * Rosters (RFC 6121) and offline messages (XEP-0160). Everything a user
     * owns references accounts with ON DELETE CASCADE, so deleting the
     * account removes it in the same statement; groups hang off their item.
     * AUTOINCREMENT: an offline id is never reused, even after the newest
     * message was deleted, so "delete up to id N" cannot hit a later message.
     */
    {2, "CREATE TABLE roster_items ("
        " username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,"
        " contact TEXT NOT NULL,"
        " name TEXT,"
        " subscription INTEGER NOT NULL CHECK (subscription BETWEEN 0 AND 3),"
        " ask INTEGER NOT NULL,"
        " pending_in INTEGER NOT NULL,"
        " approved INTEGER NOT NULL,"
        " hidden INTEGER NOT NULL,"
        " PRIMARY KEY (username, contact)"
        ");"
        "CREATE INDEX roster_items_by_contact ON roster_items (contact, username);"
        "CREATE TABLE roster_groups ("
        " username TEXT NOT NULL,"
        " contact TEXT NOT NULL,"
        " name TEXT NOT NULL,"
        " PRIMARY KEY (username, contact, name),"
        " FOREIGN KEY (username, contact) REFERENCES roster_items (username, contact)"
        "  ON DELETE CASCADE"
        ");"
        "CREATE TABLE roster_versions ("
        " username TEXT PRIMARY KEY NOT NULL"
        "  REFERENCES accounts (username) ON DELETE CASCADE,"
        " version INTEGER NOT NULL"
        ");"
        "CREATE TABLE offline_messages ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,"
        " stamp INTEGER NOT NULL,"
        " xml BLOB NOT NULL"
        ");"
        "CREATE INDEX offline_messages_by_user ON offline_messages (username, id);"},
    /*
     * Push registrations (XEP-0357): one row per (user, service jid, node).
     * The UNIQUE constraint doubles as the per-user index. id only orders
     * registrations enabled in the same millisecond (eviction takes the
     * oldest); AUTOINCREMENT so that it only ever grows.
     */
    {3, "CREATE TABLE push_registrations ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,"
        " jid TEXT NOT NULL,"
        " node TEXT NOT NULL,"
        " options BLOB,"
        " resource TEXT,"
        " flags INTEGER NOT NULL DEFAULT 0,"
        " created_at INTEGER NOT NULL,"
        " errors INTEGER NOT NULL DEFAULT 0,"
        " UNIQUE (username, jid, node)"
        ");"},
    /*
     * A user's push content options (urn:xmpp:push:options), which replace
     * the per-registration flags 1 (no body) and 2 (no sender) of migration
     * 3: a user who had asked for less on any registration keeps asking for
     * it. The row lives only while the user has registrations: the trigger
     * drops it with the last one, however it goes (disable, errors, ternctl).
     */
    {4, "CREATE TABLE push_options ("
        " username TEXT PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE,"
        " senders INTEGER NOT NULL,"
        " count INTEGER NOT NULL,"
        " bodies INTEGER NOT NULL"
        ");"
        "INSERT INTO push_options (username, senders, count, bodies)"
        " SELECT username, MIN((flags & 2) = 0), 1, MIN((flags & 1) = 0)"
        " FROM push_registrations GROUP BY username HAVING MAX(flags & 3) <> 0;"
        "UPDATE push_registrations SET flags = flags & ~3 WHERE (flags & 3) <> 0;"
        "CREATE TRIGGER push_options_last AFTER DELETE ON push_registrations"
        " WHEN NOT EXISTS (SELECT 1 FROM push_registrations WHERE username = OLD.username)"
        " BEGIN DELETE FROM push_options WHERE username = OLD.username; END;"},
    /*
     * How many offline messages each user holds, kept by triggers, so that
     * the quota check of every insert and the message-count of every push
     * are one key lookup instead of a count over the user's messages.
     */
    {5, "CREATE TABLE offline_counts ("
        " username TEXT PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE,"
        " n INTEGER NOT NULL"
        ") WITHOUT ROWID;"
        "INSERT INTO offline_counts (username, n)"
        " SELECT username, COUNT(*) FROM offline_messages GROUP BY username;"
        "CREATE TRIGGER offline_counts_insert AFTER INSERT ON offline_messages BEGIN"
        " INSERT INTO offline_counts (username, n) VALUES (NEW.username, 1)"
        " ON CONFLICT (username) DO UPDATE SET n = n + 1; END;"
        "CREATE TRIGGER offline_counts_delete AFTER DELETE ON offline_messages BEGIN"
        " UPDATE offline_counts SET n = n - 1 WHERE username = OLD.username; END;"},
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
    ST_OP_SAVEPOINT,
    ST_OP_RELEASE,
    ST_OP_ROLLBACK_TO,
    ST_ROSTER_SELECT,
    ST_ROSTER_UPSERT,
    ST_ROSTER_DELETE,
    ST_ROSTER_CLEAR,
    ST_ROSTER_HOLDERS,
    ST_GROUPS_DELETE,
    ST_GROUP_INSERT,
    ST_RVER_BUMP,
    ST_RVER_SELECT,
    ST_RVER_DELETE,
    ST_OFF_INSERT,
    ST_OFF_SELECT,
    ST_OFF_DELETE,
    ST_OFF_COUNT,
    ST_PUSH_UPSERT,
    ST_PUSH_SELECT,
    ST_PUSH_EXCESS,
    ST_PUSH_DELETE_ID,
    ST_PUSH_DELETE_NODE,
    ST_PUSH_DELETE_JID,
    ST_PUSH_DELETE_USER,
    ST_PUSH_ERROR_ADD,
    ST_PUSH_ERROR_SELECT,
    ST_PUSH_ERROR_RESET,
    ST_PUSH_MARK,
    ST_PUSH_UNMARK_ALL,
    ST_PUSH_MARKED_USERS,
    ST_PUSH_OPTS_SELECT,
    ST_PUSH_OPTS_UPSERT,
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
    /* An operation's own savepoint (see op_begin), nested in tern_job if any. */
    [ST_OP_SAVEPOINT] = "SAVEPOINT tern_op",
    [ST_OP_RELEASE] = "RELEASE tern_op",
    [ST_OP_ROLLBACK_TO] = "ROLLBACK TO tern_op",
    /* One statement, so the version and the items come from one snapshot even
     * without a transaction. The outer row for ?1 makes a user with a version
     * but no items still return one row (with a NULL contact). */
    [ST_ROSTER_SELECT] = "SELECT v.version, i.contact, i.name, i.subscription, i.ask, i.pending_in,"
                         " i.approved, i.hidden, g.name"
                         " FROM (SELECT ?1 AS username) AS u"
                         " LEFT JOIN roster_versions AS v ON v.username = u.username"
                         " LEFT JOIN roster_items AS i ON i.username = u.username"
                         " LEFT JOIN roster_groups AS g"
                         "  ON g.username = i.username AND g.contact = i.contact"
                         " ORDER BY i.contact, g.name",
    /* An upsert, not INSERT OR REPLACE: REPLACE deletes the old row, which
     * would cascade into the groups behind our back. */
    [ST_ROSTER_UPSERT] = "INSERT INTO roster_items (username, contact, name, subscription, ask,"
                         " pending_in, approved, hidden) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                         " ON CONFLICT (username, contact) DO UPDATE SET name = excluded.name,"
                         " subscription = excluded.subscription, ask = excluded.ask,"
                         " pending_in = excluded.pending_in, approved = excluded.approved,"
                         " hidden = excluded.hidden",
    [ST_ROSTER_DELETE] = "DELETE FROM roster_items WHERE username = ?1 AND contact = ?2",
    [ST_ROSTER_CLEAR] = "DELETE FROM roster_items WHERE username = ?1",
    [ST_ROSTER_HOLDERS] = "SELECT username FROM roster_items WHERE contact = ?1 ORDER BY username",
    [ST_GROUPS_DELETE] = "DELETE FROM roster_groups WHERE username = ?1 AND contact = ?2",
    /* A group named twice in one item is stored once. */
    [ST_GROUP_INSERT] = "INSERT INTO roster_groups (username, contact, name) VALUES (?1, ?2, ?3)"
                        " ON CONFLICT DO NOTHING",
    [ST_RVER_BUMP] = "INSERT INTO roster_versions (username, version) VALUES (?1, 1)"
                     " ON CONFLICT (username) DO UPDATE SET version = version + 1",
    [ST_RVER_SELECT] = "SELECT version FROM roster_versions WHERE username = ?1",
    [ST_RVER_DELETE] = "DELETE FROM roster_versions WHERE username = ?1",
    /* Count and insert in one statement: atomic without a transaction, and no
     * read that must later upgrade to a write lock. ?4 <= 0: no quota. */
    [ST_OFF_INSERT] = "INSERT INTO offline_messages (username, stamp, xml) SELECT ?1, ?2, ?3"
                      " WHERE ?4 <= 0"
                      " OR COALESCE((SELECT n FROM offline_counts WHERE username = ?1), 0) < ?4",
    [ST_OFF_SELECT] = "SELECT id, stamp, xml FROM offline_messages WHERE username = ?1"
                      " ORDER BY id",
    [ST_OFF_DELETE] = "DELETE FROM offline_messages WHERE username = ?1 AND id <= ?2",
    [ST_OFF_COUNT] = "SELECT COALESCE((SELECT n FROM offline_counts WHERE username = ?1), 0)",
    /* An upsert keeps the row's id; created_at moves, so a re-enabled
     * registration counts as the newest. */
    [ST_PUSH_UPSERT] = "INSERT INTO push_registrations (username, jid, node, options, resource,"
                       " flags, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                       " ON CONFLICT (username, jid, node) DO UPDATE SET"
                       " options = excluded.options, resource = excluded.resource,"
                       " flags = excluded.flags, created_at = excluded.created_at, errors = 0",
    [ST_PUSH_SELECT] = "SELECT jid, node, options, resource, flags, created_at, errors, id"
                       " FROM push_registrations WHERE username = ?1 ORDER BY created_at, id",
    /* Everything but the ?2 newest, oldest first. */
    [ST_PUSH_EXCESS] = "SELECT jid, node, options, resource, flags, created_at, errors, id"
                       " FROM push_registrations WHERE username = ?1 AND id NOT IN"
                       " (SELECT id FROM push_registrations WHERE username = ?1"
                       "  ORDER BY created_at DESC, id DESC LIMIT ?2)"
                       " ORDER BY created_at, id",
    [ST_PUSH_DELETE_ID] = "DELETE FROM push_registrations WHERE id = ?1",
    [ST_PUSH_DELETE_NODE] = "DELETE FROM push_registrations WHERE username = ?1 AND jid = ?2"
                            " AND node = ?3",
    [ST_PUSH_DELETE_JID] = "DELETE FROM push_registrations WHERE username = ?1 AND jid = ?2",
    [ST_PUSH_DELETE_USER] = "DELETE FROM push_registrations WHERE username = ?1",
    [ST_PUSH_ERROR_ADD] = "UPDATE push_registrations SET errors = errors + 1"
                          " WHERE username = ?1 AND jid = ?2 AND node = ?3",
    [ST_PUSH_ERROR_SELECT] = "SELECT errors FROM push_registrations WHERE username = ?1"
                             " AND jid = ?2 AND node = ?3",
    [ST_PUSH_ERROR_RESET] = "UPDATE push_registrations SET errors = 0 WHERE username = ?1"
                            " AND jid = ?2 AND node = ?3 AND errors <> 0",
    /* push.on_start: TERN_PUSH_F_WAKE (4) in flags marks a registration
     * whose session was alive at shutdown. */
    [ST_PUSH_MARK] = "UPDATE push_registrations SET flags = flags | 4 WHERE username = ?1"
                     " AND resource = ?2 AND (flags & 4) = 0",
    [ST_PUSH_UNMARK_ALL] =
        "UPDATE push_registrations SET flags = flags & ~4 WHERE (flags & 4) <> 0",
    [ST_PUSH_MARKED_USERS] = "SELECT DISTINCT username FROM push_registrations"
                             " WHERE (flags & 4) <> 0 ORDER BY username",
    [ST_PUSH_OPTS_SELECT] = "SELECT senders, count, bodies FROM push_options WHERE username = ?1",
    [ST_PUSH_OPTS_UPSERT] = "INSERT INTO push_options (username, senders, count, bodies)"
                            " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (username) DO UPDATE SET"
                            " senders = excluded.senders, count = excluded.count,"
                            " bodies = excluded.bodies",
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
 * answer (adduser of a taken name), and so is a missing account under a
 * roster item or offline message (the foreign key); both are only logged at
 * debug. Anything else is logged at warn with SQLite's own message.
 */
static int fail(struct sqlite_backend *sb, int rc, const char *what) {
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
        tern_debug("store", "sqlite %s: %s: %s", sb->path, what, sqlite3_errmsg(sb->db));
        return TERN_E_EXISTS;
    }
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
        tern_debug("store", "sqlite %s: %s: %s (no such account)", sb->path, what,
                   sqlite3_errmsg(sb->db));
        return TERN_E_NOTFOUND;
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

/* After a failed bind: map the error and reset the statement. */
static int bind_failed(struct sqlite_backend *sb, sqlite3_stmt *st, int rc, const char *what) {
    rc = fail(sb, rc, what);
    finish(st);
    return rc;
}

/* Bind user to ?1 and, when contact is not NULL, contact to ?2. */
static int bind_user(struct sqlite_backend *sb, enum stmt_id id, const char *user,
                     const char *contact, const char *what) {
    sqlite3_stmt *st = sb->stmt[id];
    int rc = sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && contact)
        rc = sqlite3_bind_text(st, 2, contact, -1, SQLITE_STATIC);
    return rc == SQLITE_OK ? 0 : bind_failed(sb, st, rc, what);
}

/* Step a statement whose parameters are bound and that yields rows of one
 * text column into a malloc'd array of malloc'd strings; resets it. */
static int read_strings(struct sqlite_backend *sb, enum stmt_id id, const char *what, char ***out,
                        size_t *n) {
    sqlite3_stmt *st = sb->stmt[id];
    char **list = NULL;
    size_t len = 0, cap = 0;
    int rc;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *s = sqlite3_column_text(st, 0);
        if (!s)
            continue;
        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            list = tern_realloc(list, cap * sizeof *list);
        }
        list[len++] = tern_strdup((const char *)s);
    }
    if (rc != SQLITE_DONE) {
        rc = fail(sb, rc, what);
        finish(st);
        tern_store_free_list(list, len);
        return rc;
    }
    finish(st);
    *out = list;
    *n = len;
    return 0;
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
    return read_strings(from_base(b), ST_ACC_LIST, "account_list", users, n);
}

/* ---- one operation, several statements --------------------------------------- */

/*
 * An operation of several statements runs in its own savepoint, so that it is
 * all-or-nothing wherever it is called: inside the store's group transaction
 * the savepoint nests in tern_job and RELEASE only folds it into the outer
 * transaction (nothing is committed); called by ternctl without a
 * transaction, it is the transaction, as a single statement would be.
 */
static int op_begin(struct sqlite_backend *sb, const char *what) {
    return step_done(sb, ST_OP_SAVEPOINT, what);
}

/* Keep the operation's work if rc is 0, else undo it; returns rc or the end's error. */
static int op_end(struct sqlite_backend *sb, int rc, const char *what) {
    if (rc == 0) {
        rc = step_done(sb, ST_OP_RELEASE, what);
        if (rc == 0)
            return 0;
    }
    /* SQLite may have rolled back the whole transaction on its own (a disk
     * error): then there is no savepoint left, and nothing to undo. */
    if (!sqlite3_get_autocommit(sb->db) && step_done(sb, ST_OP_ROLLBACK_TO, what) == 0)
        step_done(sb, ST_OP_RELEASE, what);
    return rc;
}

/* ---- roster ---------------------------------------------------------------- */

static int item_valid(const struct tern_roster_item *item) {
    int sub = (int)item->sub;
    if (!item->jid || sub < TERN_SUB_NONE || sub > TERN_SUB_BOTH)
        return 0;
    if (item->ngroups && !item->groups)
        return 0;
    for (size_t i = 0; i < item->ngroups; i++)
        if (!item->groups[i])
            return 0;
    return 1;
}

/* RFC 6121 §2.6: the version changes with every change of the roster. */
static int bump_version(struct sqlite_backend *sb, const char *user, uint64_t *version,
                        const char *what) {
    int rc = bind_user(sb, ST_RVER_BUMP, user, NULL, what);
    if (rc == 0)
        rc = step_done(sb, ST_RVER_BUMP, what);
    if (rc == 0)
        rc = bind_user(sb, ST_RVER_SELECT, user, NULL, what);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = sb->stmt[ST_RVER_SELECT];
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (version)
            *version = (uint64_t)sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        /* SQLITE_DONE cannot happen right after the upsert; treat it as I/O. */
        rc = fail(sb, rc == SQLITE_DONE ? SQLITE_ERROR : rc, what);
    }
    finish(st);
    return rc;
}

/* Append a copy of the current row's item (columns 1 .. 7) to r. */
static struct tern_roster_item *add_item(struct tern_roster *r, size_t *cap, sqlite3_stmt *st) {
    if (r->n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        r->items = tern_realloc(r->items, *cap * sizeof *r->items);
    }
    struct tern_roster_item *it = &r->items[r->n++];
    memset(it, 0, sizeof *it);
    it->jid = tern_strdup((const char *)sqlite3_column_text(st, 1));
    it->name = tern_strdup((const char *)sqlite3_column_text(st, 2));
    it->sub = (enum tern_sub)sqlite3_column_int(st, 3); /* CHECKed to 0 .. 3 */
    it->ask = sqlite3_column_int(st, 4) != 0;
    it->pending_in = sqlite3_column_int(st, 5) != 0;
    it->approved = sqlite3_column_int(st, 6) != 0;
    it->hidden = sqlite3_column_int(st, 7) != 0;
    return it;
}

static int sq_roster_get(struct tern_store_backend *b, const char *user, struct tern_roster *out) {
    struct sqlite_backend *sb = from_base(b);
    sqlite3_stmt *st = sb->stmt[ST_ROSTER_SELECT];
    struct tern_roster r = {0};
    size_t cap = 0, gcap = 0; /* allocated items; allocated groups of the last item */
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = bind_user(sb, ST_ROSTER_SELECT, user, NULL, "roster_get")) < 0)
        return rc;
    /* One row per (item, group), ordered by contact then group: an item's
     * rows are adjacent, so a new contact starts a new item. */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL)
            r.version = (uint64_t)sqlite3_column_int64(st, 0);
        const char *contact = (const char *)sqlite3_column_text(st, 1);
        if (!contact)
            continue; /* no items: the row only carries the version */
        struct tern_roster_item *it = r.n ? &r.items[r.n - 1] : NULL;
        if (!it || strcmp(it->jid, contact) != 0) {
            it = add_item(&r, &cap, st);
            gcap = 0;
        }
        const char *group = (const char *)sqlite3_column_text(st, 8);
        if (!group)
            continue;
        if (it->ngroups == gcap) {
            gcap = gcap ? gcap * 2 : 4;
            it->groups = tern_realloc(it->groups, gcap * sizeof *it->groups);
        }
        it->groups[it->ngroups++] = tern_strdup(group);
    }
    if (rc != SQLITE_DONE) {
        rc = fail(sb, rc, "roster_get");
        finish(st);
        tern_roster_free(&r);
        return rc;
    }
    finish(st);
    *out = r;
    return 0;
}

/* Write the item's row and replace its groups. */
static int put_item(struct sqlite_backend *sb, const char *user,
                    const struct tern_roster_item *item) {
    const char *what = "roster_put";
    sqlite3_stmt *st = sb->stmt[ST_ROSTER_UPSERT];
    int rc = sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 2, item->jid, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) /* a NULL name binds NULL */
        rc = sqlite3_bind_text(st, 3, item->name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 4, (int)item->sub);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 5, item->ask != 0);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 6, item->pending_in != 0);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 7, item->approved != 0);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 8, item->hidden != 0);
    if (rc != SQLITE_OK)
        return bind_failed(sb, st, rc, what);
    if ((rc = step_done(sb, ST_ROSTER_UPSERT, what)) < 0)
        return rc;

    if ((rc = bind_user(sb, ST_GROUPS_DELETE, user, item->jid, what)) < 0 ||
        (rc = step_done(sb, ST_GROUPS_DELETE, what)) < 0)
        return rc;
    st = sb->stmt[ST_GROUP_INSERT];
    for (size_t i = 0; i < item->ngroups; i++) {
        if ((rc = bind_user(sb, ST_GROUP_INSERT, user, item->jid, what)) < 0)
            return rc;
        rc = sqlite3_bind_text(st, 3, item->groups[i], -1, SQLITE_STATIC);
        if (rc != SQLITE_OK)
            return bind_failed(sb, st, rc, what);
        if ((rc = step_done(sb, ST_GROUP_INSERT, what)) < 0)
            return rc;
    }
    return 0;
}

static int sq_roster_put(struct tern_store_backend *b, const char *user,
                         const struct tern_roster_item *item, uint64_t *version) {
    struct sqlite_backend *sb = from_base(b);
    if (!item_valid(item))
        return TERN_E_INVAL;
    int rc = op_begin(sb, "roster_put");
    if (rc < 0)
        return rc;
    rc = put_item(sb, user, item);
    if (rc == 0)
        rc = bump_version(sb, user, version, "roster_put");
    return op_end(sb, rc, "roster_put");
}

static int sq_roster_del(struct tern_store_backend *b, const char *user, const char *contact,
                         uint64_t *version) {
    struct sqlite_backend *sb = from_base(b);
    int rc = op_begin(sb, "roster_del");
    if (rc < 0)
        return rc;
    /* The item's groups go with it (ON DELETE CASCADE). */
    rc = bind_user(sb, ST_ROSTER_DELETE, user, contact, "roster_del");
    if (rc == 0)
        rc = step_done(sb, ST_ROSTER_DELETE, "roster_del");
    if (rc == 0 && sqlite3_changes(sb->db) == 0)
        rc = TERN_E_NOTFOUND;
    if (rc == 0)
        rc = bump_version(sb, user, version, "roster_del");
    return op_end(sb, rc, "roster_del");
}

static int sq_roster_holders(struct tern_store_backend *b, const char *contact, char ***users,
                             size_t *n) {
    struct sqlite_backend *sb = from_base(b);
    /* ?1 of this statement is the contact. */
    int rc = bind_user(sb, ST_ROSTER_HOLDERS, contact, NULL, "roster_holders");
    if (rc < 0)
        return rc;
    return read_strings(sb, ST_ROSTER_HOLDERS, "roster_holders", users, n);
}

static int sq_roster_clear(struct tern_store_backend *b, const char *user) {
    struct sqlite_backend *sb = from_base(b);
    int rc = op_begin(sb, "roster_clear");
    if (rc < 0)
        return rc;
    rc = bind_user(sb, ST_ROSTER_CLEAR, user, NULL, "roster_clear");
    if (rc == 0)
        rc = step_done(sb, ST_ROSTER_CLEAR, "roster_clear");
    if (rc == 0)
        rc = bind_user(sb, ST_RVER_DELETE, user, NULL, "roster_clear");
    if (rc == 0)
        rc = step_done(sb, ST_RVER_DELETE, "roster_clear");
    return op_end(sb, rc, "roster_clear");
}

/* ---- offline messages (XEP-0160) --------------------------------------------- */

static int sq_offline_put(struct tern_store_backend *b, const char *user, const char *xml,
                          size_t len, int64_t stamp, int quota, int64_t *id) {
    struct sqlite_backend *sb = from_base(b);
    sqlite3_stmt *st = sb->stmt[ST_OFF_INSERT];
    if (!xml && len)
        return TERN_E_INVAL;
    int rc = sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)stamp);
    if (rc == SQLITE_OK) /* "" for an empty message: a NULL pointer would bind NULL */
        rc = sqlite3_bind_blob64(st, 3, xml ? xml : "", (sqlite3_uint64)len, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 4, quota);
    if (rc != SQLITE_OK)
        return bind_failed(sb, st, rc, "offline_put");
    if ((rc = step_done(sb, ST_OFF_INSERT, "offline_put")) < 0)
        return rc;
    if (sqlite3_changes(sb->db) == 0)
        return TERN_E_LIMIT; /* the WHERE refused: the user holds quota messages */
    if (id)
        *id = (int64_t)sqlite3_last_insert_rowid(sb->db);
    return 0;
}

static int sq_offline_get(struct tern_store_backend *b, const char *user,
                          struct tern_offline_msg **msgs, size_t *n) {
    struct sqlite_backend *sb = from_base(b);
    sqlite3_stmt *st = sb->stmt[ST_OFF_SELECT];
    struct tern_offline_msg *list = NULL;
    size_t len = 0, cap = 0;
    int rc;

    *msgs = NULL;
    *n = 0;
    if ((rc = bind_user(sb, ST_OFF_SELECT, user, NULL, "offline_get")) < 0)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            list = tern_realloc(list, cap * sizeof *list);
        }
        struct tern_offline_msg *m = &list[len++];
        m->id = (int64_t)sqlite3_column_int64(st, 0);
        m->stamp = (int64_t)sqlite3_column_int64(st, 1);
        const void *p = sqlite3_column_blob(st, 2);
        m->len = (size_t)sqlite3_column_bytes(st, 2);
        /* NUL-terminated as well, so that a parser taking strings can use it. */
        m->xml = tern_malloc(m->len + 1);
        if (m->len)
            memcpy(m->xml, p, m->len);
        m->xml[m->len] = '\0';
    }
    if (rc != SQLITE_DONE) {
        rc = fail(sb, rc, "offline_get");
        finish(st);
        tern_offline_msgs_free(list, len);
        return rc;
    }
    finish(st);
    *msgs = list;
    *n = len;
    return 0;
}

static int sq_offline_del(struct tern_store_backend *b, const char *user, int64_t upto) {
    struct sqlite_backend *sb = from_base(b);
    sqlite3_stmt *st = sb->stmt[ST_OFF_DELETE];
    int rc = bind_user(sb, ST_OFF_DELETE, user, NULL, "offline_del");
    if (rc < 0)
        return rc;
    rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)upto);
    if (rc != SQLITE_OK)
        return bind_failed(sb, st, rc, "offline_del");
    return step_done(sb, ST_OFF_DELETE, "offline_del");
}

static int sq_offline_count(struct tern_store_backend *b, const char *user, size_t *n) {
    struct sqlite_backend *sb = from_base(b);
    sqlite3_stmt *st = sb->stmt[ST_OFF_COUNT];
    int rc = bind_user(sb, ST_OFF_COUNT, user, NULL, "offline_count");
    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *n = (size_t)sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        rc = fail(sb, rc == SQLITE_DONE ? SQLITE_ERROR : rc, "offline_count");
    }
    finish(st);
    return rc;
}

/* ---- push registrations (XEP-0357) -------------------------------------------- */

/* Bind user, jid and node to ?1 .. ?3. */
static int bind_reg_key(struct sqlite_backend *sb, enum stmt_id id, const char *user,
                        const char *jid, const char *node, const char *what) {
    sqlite3_stmt *st = sb->stmt[id];
    int rc = bind_user(sb, id, user, jid, what);
    if (rc < 0)
        return rc;
    rc = sqlite3_bind_text(st, 3, node, -1, SQLITE_STATIC);
    return rc == SQLITE_OK ? 0 : bind_failed(sb, st, rc, what);
}

static char *column_strdup(sqlite3_stmt *st, int col) {
    const unsigned char *s = sqlite3_column_text(st, col);
    return s ? tern_strdup((const char *)s) : NULL;
}

/* Step a statement yielding registration rows (columns as in ST_PUSH_SELECT)
 * into a malloc'd array, ids into *ids when not NULL; resets it. */
static int read_regs(struct sqlite_backend *sb, enum stmt_id id, const char *what,
                     struct tern_push_reg **out, int64_t **ids, size_t *n) {
    sqlite3_stmt *st = sb->stmt[id];
    struct tern_push_reg *list = NULL;
    int64_t *idl = NULL;
    size_t len = 0, cap = 0;
    int rc;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : 8;
            list = tern_realloc(list, cap * sizeof *list);
            idl = tern_realloc(idl, cap * sizeof *idl);
        }
        struct tern_push_reg *r = &list[len];
        r->jid = column_strdup(st, 0);
        r->node = column_strdup(st, 1);
        r->options = NULL;
        if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
            size_t olen = (size_t)sqlite3_column_bytes(st, 2);
            const void *p = sqlite3_column_blob(st, 2);
            r->options = tern_malloc(olen + 1);
            if (olen)
                memcpy(r->options, p, olen);
            r->options[olen] = '\0';
        }
        r->resource = column_strdup(st, 3);
        r->flags = (unsigned)sqlite3_column_int(st, 4);
        r->created_at = (int64_t)sqlite3_column_int64(st, 5);
        r->errors = sqlite3_column_int(st, 6);
        idl[len] = (int64_t)sqlite3_column_int64(st, 7);
        len++;
        if (!r->jid || !r->node) { /* NOT NULL columns: cannot happen */
            rc = SQLITE_CORRUPT;
            break;
        }
    }
    if (rc != SQLITE_DONE) {
        rc = fail(sb, rc, what);
        finish(st);
        tern_push_regs_free(list, len);
        free(idl);
        return rc;
    }
    finish(st);
    *out = list;
    *n = len;
    if (ids)
        *ids = idl;
    else
        free(idl);
    return 0;
}

/* Delete the user's registrations beyond the max newest; what went into *evicted. */
static int evict(struct sqlite_backend *sb, const char *user, int max,
                 struct tern_push_reg **evicted, size_t *nevicted) {
    const char *what = "push_put";
    struct tern_push_reg *regs = NULL;
    int64_t *ids = NULL;
    size_t n = 0;
    int rc = bind_user(sb, ST_PUSH_EXCESS, user, NULL, what);
    if (rc == 0) {
        rc = sqlite3_bind_int(sb->stmt[ST_PUSH_EXCESS], 2, max);
        if (rc != SQLITE_OK)
            return bind_failed(sb, sb->stmt[ST_PUSH_EXCESS], rc, what);
        rc = read_regs(sb, ST_PUSH_EXCESS, what, &regs, &ids, &n);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = sqlite3_bind_int64(sb->stmt[ST_PUSH_DELETE_ID], 1, (sqlite3_int64)ids[i]);
        rc = rc == SQLITE_OK ? step_done(sb, ST_PUSH_DELETE_ID, what)
                             : bind_failed(sb, sb->stmt[ST_PUSH_DELETE_ID], rc, what);
    }
    free(ids);
    if (rc < 0 || !evicted) {
        tern_push_regs_free(regs, n);
        return rc;
    }
    *evicted = regs;
    *nevicted = n;
    return 0;
}

static int sq_push_put(struct tern_store_backend *b, const char *user,
                       const struct tern_push_reg *reg, int max, struct tern_push_reg **evicted,
                       size_t *nevicted) {
    struct sqlite_backend *sb = from_base(b);
    sqlite3_stmt *st = sb->stmt[ST_PUSH_UPSERT];
    const char *what = "push_put";
    if (evicted) {
        *evicted = NULL;
        *nevicted = 0;
    }
    if (!reg->jid || !reg->node)
        return TERN_E_INVAL;
    int rc = op_begin(sb, what);
    if (rc < 0)
        return rc;
    rc = bind_reg_key(sb, ST_PUSH_UPSERT, user, reg->jid, reg->node, what);
    if (rc == 0) {
        int brc = reg->options
                      ? sqlite3_bind_blob64(st, 4, reg->options,
                                            (sqlite3_uint64)strlen(reg->options), SQLITE_STATIC)
                      : sqlite3_bind_null(st, 4);
        if (brc == SQLITE_OK) /* a NULL resource binds NULL */
            brc = sqlite3_bind_text(st, 5, reg->resource, -1, SQLITE_STATIC);
        if (brc == SQLITE_OK)
            brc = sqlite3_bind_int(st, 6, (int)reg->flags);
        if (brc == SQLITE_OK)
            brc = sqlite3_bind_int64(st, 7, (sqlite3_int64)reg->created_at);
        rc =
            brc == SQLITE_OK ? step_done(sb, ST_PUSH_UPSERT, what) : bind_failed(sb, st, brc, what);
    }
    if (rc == 0 && max > 0)
        rc = evict(sb, user, max, evicted, nevicted);
    rc = op_end(sb, rc, what);
    if (rc < 0 && evicted) {
        tern_push_regs_free(*evicted, *nevicted);
        *evicted = NULL;
        *nevicted = 0;
    }
    return rc;
}

static int sq_push_get(struct tern_store_backend *b, const char *user, struct tern_push_reg **regs,
                       size_t *n) {
    struct sqlite_backend *sb = from_base(b);
    *regs = NULL;
    *n = 0;
    int rc = bind_user(sb, ST_PUSH_SELECT, user, NULL, "push_get");
    if (rc < 0)
        return rc;
    return read_regs(sb, ST_PUSH_SELECT, "push_get", regs, NULL, n);
}

static int sq_push_del(struct tern_store_backend *b, const char *user, const char *jid,
                       const char *node, size_t *removed) {
    struct sqlite_backend *sb = from_base(b);
    const char *what = "push_del";
    enum stmt_id id;
    int rc;
    if (removed)
        *removed = 0;
    if (!jid && node)
        return TERN_E_INVAL;
    if (node) {
        id = ST_PUSH_DELETE_NODE;
        rc = bind_reg_key(sb, id, user, jid, node, what);
    } else {
        id = jid ? ST_PUSH_DELETE_JID : ST_PUSH_DELETE_USER;
        rc = bind_user(sb, id, user, jid, what);
    }
    if (rc == 0)
        rc = step_done(sb, id, what);
    if (rc == 0 && removed)
        *removed = (size_t)sqlite3_changes(sb->db);
    return rc;
}

static int sq_push_error(struct tern_store_backend *b, const char *user, const char *jid,
                         const char *node, int max_errors, int *errors) {
    struct sqlite_backend *sb = from_base(b);
    const char *what = "push_error";
    if (!jid || !node)
        return TERN_E_INVAL;
    int rc = op_begin(sb, what);
    if (rc < 0)
        return rc;
    rc = bind_reg_key(sb, ST_PUSH_ERROR_ADD, user, jid, node, what);
    if (rc == 0)
        rc = step_done(sb, ST_PUSH_ERROR_ADD, what);
    if (rc == 0 && sqlite3_changes(sb->db) == 0)
        rc = TERN_E_NOTFOUND;
    if (rc == 0)
        rc = bind_reg_key(sb, ST_PUSH_ERROR_SELECT, user, jid, node, what);
    if (rc == 0) {
        sqlite3_stmt *st = sb->stmt[ST_PUSH_ERROR_SELECT];
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            *errors = sqlite3_column_int(st, 0);
        else
            rc = fail(sb, src == SQLITE_DONE ? SQLITE_ERROR : src, what);
        finish(st);
    }
    /* XEP-0357 §7.1: enough errors in a row and the service counts as disabled. */
    if (rc == 0 && max_errors > 0 && *errors >= max_errors) {
        rc = bind_reg_key(sb, ST_PUSH_DELETE_NODE, user, jid, node, what);
        if (rc == 0)
            rc = step_done(sb, ST_PUSH_DELETE_NODE, what);
    }
    return op_end(sb, rc, what);
}

static int sq_push_ok(struct tern_store_backend *b, const char *user, const char *jid,
                      const char *node) {
    struct sqlite_backend *sb = from_base(b);
    if (!jid || !node)
        return TERN_E_INVAL;
    int rc = bind_reg_key(sb, ST_PUSH_ERROR_RESET, user, jid, node, "push_ok");
    if (rc < 0)
        return rc;
    return step_done(sb, ST_PUSH_ERROR_RESET, "push_ok");
}

static int sq_push_mark(struct tern_store_backend *b, const char *user, const char *resource) {
    struct sqlite_backend *sb = from_base(b);
    const char *what = "push_mark";
    if (!user)
        return step_done(sb, ST_PUSH_UNMARK_ALL, what);
    if (!resource)
        return TERN_E_INVAL;
    int rc = bind_user(sb, ST_PUSH_MARK, user, resource, what);
    if (rc < 0)
        return rc;
    return step_done(sb, ST_PUSH_MARK, what);
}

static int sq_push_marked(struct tern_store_backend *b, char ***users, size_t *n) {
    *users = NULL;
    *n = 0;
    return read_strings(from_base(b), ST_PUSH_MARKED_USERS, "push_marked", users, n);
}

static int sq_push_options_get(struct tern_store_backend *b, const char *user,
                               struct tern_push_options *opts) {
    struct sqlite_backend *sb = from_base(b);
    const char *what = "push_options_get";
    sqlite3_stmt *st = sb->stmt[ST_PUSH_OPTS_SELECT];
    int rc = bind_user(sb, ST_PUSH_OPTS_SELECT, user, NULL, what);
    if (rc < 0)
        return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        opts->senders = sqlite3_column_int(st, 0) != 0;
        opts->count = sqlite3_column_int(st, 1) != 0;
        opts->bodies = sqlite3_column_int(st, 2) != 0;
        rc = 0;
    } else {
        rc = src == SQLITE_DONE ? TERN_E_NOTFOUND : fail(sb, src, what);
    }
    finish(st);
    return rc;
}

static int sq_push_options_put(struct tern_store_backend *b, const char *user,
                               const struct tern_push_options *opts) {
    struct sqlite_backend *sb = from_base(b);
    const char *what = "push_options_put";
    sqlite3_stmt *st = sb->stmt[ST_PUSH_OPTS_UPSERT];
    int rc = bind_user(sb, ST_PUSH_OPTS_UPSERT, user, NULL, what);
    if (rc < 0)
        return rc;
    int brc = sqlite3_bind_int(st, 2, opts->senders != 0);
    if (brc == SQLITE_OK)
        brc = sqlite3_bind_int(st, 3, opts->count != 0);
    if (brc == SQLITE_OK)
        brc = sqlite3_bind_int(st, 4, opts->bodies != 0);
    return brc == SQLITE_OK ? step_done(sb, ST_PUSH_OPTS_UPSERT, what)
                            : bind_failed(sb, st, brc, what);
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
    .roster_get = sq_roster_get,
    .roster_put = sq_roster_put,
    .roster_del = sq_roster_del,
    .roster_holders = sq_roster_holders,
    .roster_clear = sq_roster_clear,
    .offline_put = sq_offline_put,
    .offline_get = sq_offline_get,
    .offline_del = sq_offline_del,
    .offline_count = sq_offline_count,
    .push_put = sq_push_put,
    .push_get = sq_push_get,
    .push_del = sq_push_del,
    .push_error = sq_push_error,
    .push_ok = sq_push_ok,
    .push_mark = sq_push_mark,
    .push_marked = sq_push_marked,
    .push_options_get = sq_push_options_get,
    .push_options_put = sq_push_options_put,
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
