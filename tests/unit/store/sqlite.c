/* Tests for src/store/sqlite.c through the backend ops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/log.h"
#include "store/sqlite.h"
#include "store/store.h"

#include "helpers.h"

struct fixture {
    char *dir;                    /* temporary directory, removed at teardown */
    char *db_path;                /* dir/tern.db */
    struct tern_store_backend *b; /* open backend */
};

static struct tern_store_backend *open_at(struct fixture *fx) {
    struct tern_config cfg = test_config(fx->dir, fx->db_path);
    struct tern_store_backend *b = NULL;
    char err[512] = "";
    int rc = tern_store_backend_open(&cfg, &b, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "open failed: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(b);
    assert_string_equal(b->ops->name, "sqlite");
    return b;
}

static int setup(void **state) {
    struct fixture *fx = calloc(1, sizeof *fx);
    fx->dir = test_mkdtemp();
    fx->db_path = test_path(fx->dir, "tern.db");
    fx->b = open_at(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    struct fixture *fx = *state;
    tern_store_backend_close(&fx->b);
    assert_null(fx->b);
    test_rmtree(fx->dir);
    free(fx->db_path);
    free(fx->dir);
    free(fx);
    return 0;
}

static void test_create_get(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    struct tern_scram_creds in = test_creds(1), out;

    assert_int_equal(b->ops->account_create(b, "alice", &in), 0);
    memset(&out, 0xaa, sizeof out);
    assert_int_equal(b->ops->account_get(b, "alice", &out), 0);
    assert_true(test_creds_equal(&in, &out));
}

static void test_duplicate_and_unknown(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    struct tern_scram_creds c1 = test_creds(1), c2 = test_creds(2), out;

    assert_int_equal(b->ops->account_create(b, "alice", &c1), 0);
    assert_int_equal(b->ops->account_create(b, "alice", &c2), TERN_E_EXISTS);
    /* The failed create changed nothing. */
    assert_int_equal(b->ops->account_get(b, "alice", &out), 0);
    assert_true(test_creds_equal(&c1, &out));

    assert_int_equal(b->ops->account_get(b, "bob", &out), TERN_E_NOTFOUND);
    assert_int_equal(b->ops->account_set(b, "bob", &c2), TERN_E_NOTFOUND);
    assert_int_equal(b->ops->account_delete(b, "bob"), TERN_E_NOTFOUND);
}

static void test_set_delete(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    struct tern_scram_creds c1 = test_creds(1), c2 = test_creds(2), out;

    assert_int_equal(b->ops->account_create(b, "alice", &c1), 0);
    assert_int_equal(b->ops->account_create(b, "bob", &c1), 0);
    assert_int_equal(b->ops->account_set(b, "alice", &c2), 0);
    assert_int_equal(b->ops->account_get(b, "alice", &out), 0);
    assert_true(test_creds_equal(&c2, &out));
    assert_int_equal(b->ops->account_get(b, "bob", &out), 0);
    assert_true(test_creds_equal(&c1, &out));

    assert_int_equal(b->ops->account_delete(b, "alice"), 0);
    assert_int_equal(b->ops->account_get(b, "alice", &out), TERN_E_NOTFOUND);
    assert_int_equal(b->ops->account_delete(b, "alice"), TERN_E_NOTFOUND);
    assert_int_equal(b->ops->account_get(b, "bob", &out), 0);
}

static void test_invalid_creds(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    struct tern_scram_creds c = test_creds(1), out;

    c.salt_len = 0;
    assert_int_equal(b->ops->account_create(b, "alice", &c), TERN_E_INVAL);
    c.salt_len = TERN_SCRAM_SALT_LEN + 1;
    assert_int_equal(b->ops->account_create(b, "alice", &c), TERN_E_INVAL);
    c = test_creds(1);
    c.iterations = 0;
    assert_int_equal(b->ops->account_create(b, "alice", &c), TERN_E_INVAL);
    assert_int_equal(b->ops->account_get(b, "alice", &out), TERN_E_NOTFOUND);
}

static void test_list_sorted(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    struct tern_scram_creds c = test_creds(1);
    char **users = (char **)1;
    size_t n = 99;

    assert_int_equal(b->ops->account_list(b, &users, &n), 0);
    assert_int_equal(n, 0);
    tern_store_free_list(users, n);

    const char *names[] = {"charlie", "alice", "dave", "bob"};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(b->ops->account_create(b, names[i], &c), 0);
    assert_int_equal(b->ops->account_list(b, &users, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(users[0], "alice");
    assert_string_equal(users[1], "bob");
    assert_string_equal(users[2], "charlie");
    assert_string_equal(users[3], "dave");
    tern_store_free_list(users, n);

    /* More than the first allocation (16) of the result array. */
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "u%02d", i);
        assert_int_equal(b->ops->account_create(b, name, &c), 0);
    }
    assert_int_equal(b->ops->account_list(b, &users, &n), 0);
    assert_int_equal(n, 44);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(users[i - 1], users[i]) < 0);
    tern_store_free_list(users, n);
}

static void test_survives_reopen(void **state) {
    struct fixture *fx = *state;
    struct tern_scram_creds c = test_creds(5), out;

    assert_int_equal(fx->b->ops->account_create(fx->b, "alice", &c), 0);
    tern_store_backend_close(&fx->b);
    fx->b = open_at(fx);
    assert_int_equal(fx->b->ops->account_get(fx->b, "alice", &out), 0);
    assert_true(test_creds_equal(&c, &out));
}

/* Read one integer or text with a separate raw connection. */
static int raw_int(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void raw_exec(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_schema_version(void **state) {
    struct fixture *fx = *state;
    assert_int_equal(raw_int(fx->db_path, "SELECT MAX(version) FROM schema_version"),
                     TERN__SQLITE_SCHEMA_VERSION);
    assert_int_equal(raw_int(fx->db_path, "SELECT COUNT(*) FROM schema_version"),
                     TERN__SQLITE_SCHEMA_VERSION);
    /* The journal mode is persistent in the file. */
    assert_int_equal(raw_int(fx->db_path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"),
                     1);
    /* No column can hold a password. */
    assert_int_equal(raw_int(fx->db_path, "SELECT COUNT(*) FROM pragma_table_info('accounts')"
                                          " WHERE name LIKE '%pass%'"),
                     0);

    /* Reopening does not apply migrations again. */
    tern_store_backend_close(&fx->b);
    fx->b = open_at(fx);
    assert_int_equal(raw_int(fx->db_path, "SELECT COUNT(*) FROM schema_version"),
                     TERN__SQLITE_SCHEMA_VERSION);
}

static void test_newer_schema_refused(void **state) {
    struct fixture *fx = *state;
    tern_store_backend_close(&fx->b);
    raw_exec(fx->db_path, "INSERT INTO schema_version (version, applied_at) VALUES (999, 0)");

    struct tern_config cfg = test_config(fx->dir, fx->db_path);
    char err[512] = "";
    assert_int_equal(tern_store_backend_open(&cfg, &fx->b, err, sizeof err), TERN_E_INVAL);
    assert_null(fx->b);
    assert_non_null(strstr(err, fx->db_path));
    assert_non_null(strstr(err, "999"));
}

static void test_corrupt_row(void **state) {
    struct fixture *fx = *state;
    struct tern_scram_creds c = test_creds(1), out;
    assert_int_equal(fx->b->ops->account_create(fx->b, "alice", &c), 0);
    raw_exec(fx->db_path, "UPDATE accounts SET sha256_stored = x'0102' WHERE username = 'alice'");
    assert_int_equal(fx->b->ops->account_get(fx->b, "alice", &out), TERN_E_IO);
}

static void test_savepoints(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    const struct tern_store_backend_ops *ops = b->ops;
    struct tern_scram_creds c = test_creds(1), out;

    assert_int_equal(ops->begin(b), 0);
    assert_int_equal(ops->savepoint(b), 0);
    assert_int_equal(ops->account_create(b, "a", &c), 0);
    assert_int_equal(ops->release(b), 0);

    assert_int_equal(ops->savepoint(b), 0);
    assert_int_equal(ops->account_create(b, "b", &c), 0);
    assert_int_equal(ops->account_delete(b, "a"), 0);
    assert_int_equal(ops->rollback_to(b), 0);

    assert_int_equal(ops->savepoint(b), 0);
    assert_int_equal(ops->account_create(b, "a", &c), TERN_E_EXISTS);
    assert_int_equal(ops->rollback_to(b), 0);

    assert_int_equal(ops->savepoint(b), 0);
    assert_int_equal(ops->account_create(b, "c", &c), 0);
    assert_int_equal(ops->release(b), 0);
    assert_int_equal(ops->commit(b), 0);

    assert_int_equal(ops->account_get(b, "a", &out), 0);
    assert_int_equal(ops->account_get(b, "b", &out), TERN_E_NOTFOUND);
    assert_int_equal(ops->account_get(b, "c", &out), 0);

    /* A whole transaction rolled back leaves nothing. */
    assert_int_equal(ops->begin(b), 0);
    assert_int_equal(ops->account_create(b, "d", &c), 0);
    assert_int_equal(ops->rollback(b), 0);
    assert_int_equal(ops->account_get(b, "d", &out), TERN_E_NOTFOUND);
    /* Rolling back with no transaction open is harmless. */
    assert_int_equal(ops->rollback(b), 0);

    /* The changes are in the file, not just in this connection. */
    assert_int_equal(raw_int(fx->db_path, "SELECT COUNT(*) FROM accounts"), 2);
}

/* WAL: a second connection reads while the first holds the write lock. */
static void test_two_connections(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b1 = fx->b, *b2 = open_at(fx);
    struct tern_scram_creds c = test_creds(1), out;

    assert_int_equal(b1->ops->account_create(b1, "y", &c), 0);
    assert_int_equal(b1->ops->begin(b1), 0);
    assert_int_equal(b1->ops->account_create(b1, "x", &c), 0);
    assert_int_equal(b2->ops->account_get(b2, "y", &out), 0);
    assert_int_equal(b2->ops->account_get(b2, "x", &out), TERN_E_NOTFOUND);
    assert_int_equal(b1->ops->commit(b1), 0);
    assert_int_equal(b2->ops->account_get(b2, "x", &out), 0);
    tern_store_backend_close(&b2);
}

/* Rows in table for username = user, read with a separate connection. */
static int raw_rows(const char *path, const char *table, const char *user) {
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s WHERE username = '%s'", table, user);
    return raw_int(path, sql);
}

/* Deleting an account removes its roster (items, groups, version) and its
 * offline messages in the same statement, and nobody else's. */
static void test_account_delete_cascades(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = fx->b;
    const char *groups[] = {"Friends", "Work"};
    struct tern_roster_item it = {.jid = (char *)"bob@localhost",
                                  .sub = TERN_SUB_BOTH,
                                  .groups = (char **)groups,
                                  .ngroups = 2};
    const char *tables[] = {"roster_items", "roster_groups", "roster_versions", "offline_messages"};

    assert_int_equal(test_add_account(b, "alice"), 0);
    assert_int_equal(test_add_account(b, "bob"), 0);
    for (int u = 0; u < 2; u++) {
        const char *user = u ? "bob" : "alice";
        assert_int_equal(b->ops->roster_put(b, user, &it, NULL), 0);
        assert_int_equal(b->ops->offline_put(b, user, "<m/>", 4, 1, 0, NULL), 0);
    }
    for (size_t t = 0; t < 4; t++)
        assert_true(raw_rows(fx->db_path, tables[t], "alice") > 0);

    assert_int_equal(b->ops->account_delete(b, "alice"), 0);
    for (size_t t = 0; t < 4; t++) {
        assert_int_equal(raw_rows(fx->db_path, tables[t], "alice"), 0);
        assert_true(raw_rows(fx->db_path, tables[t], "bob") > 0);
    }

    /* A new account of the same name starts empty. */
    struct tern_roster r;
    size_t n = 99;
    assert_int_equal(test_add_account(b, "alice"), 0);
    assert_int_equal(b->ops->roster_get(b, "alice", &r), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.version, 0);
    tern_roster_free(&r);
    assert_int_equal(b->ops->offline_count(b, "alice", &n), 0);
    assert_int_equal(n, 0);
}

/*
 * A file written by the first release (schema 1: accounts only) is brought
 * to the current schema at open, keeping its accounts. The v1 schema is
 * spelled out here on purpose: it is what shipped, whatever sqlite.c says now.
 */
static void test_migrate_from_v1(void **state) {
    struct fixture *fx = *state;
    char *path = test_path(fx->dir, "v1.db");
    struct tern_scram_creds c = test_creds(9), out;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL;"
                     "CREATE TABLE schema_version (version INTEGER PRIMARY KEY NOT NULL,"
                     " applied_at INTEGER NOT NULL);"
                     "CREATE TABLE accounts (username TEXT PRIMARY KEY NOT NULL,"
                     " salt BLOB NOT NULL, iterations INTEGER NOT NULL,"
                     " sha1_stored BLOB NOT NULL, sha1_server BLOB NOT NULL,"
                     " sha256_stored BLOB NOT NULL, sha256_server BLOB NOT NULL,"
                     " created_at INTEGER NOT NULL);"
                     "INSERT INTO schema_version (version, applied_at) VALUES (1, 0);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO accounts VALUES ('old', ?1, ?2, ?3, ?4, ?5,"
                                        " ?6, 0)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_blob(st, 1, c.salt, (int)c.salt_len, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, c.iterations);
    sqlite3_bind_blob(st, 3, c.keys[TERN_SCRAM_SHA1].stored_key, 20, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, c.keys[TERN_SCRAM_SHA1].server_key, 20, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, c.keys[TERN_SCRAM_SHA256].stored_key, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, c.keys[TERN_SCRAM_SHA256].server_key, 32, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);

    struct tern_store_backend *b = test_backend_open(fx->dir, path);
    assert_non_null(b);
    assert_int_equal(raw_int(path, "SELECT MAX(version) FROM schema_version"),
                     TERN__SQLITE_SCHEMA_VERSION);
    assert_int_equal(raw_int(path, "SELECT COUNT(*) FROM schema_version"),
                     TERN__SQLITE_SCHEMA_VERSION);
    assert_int_equal(b->ops->account_get(b, "old", &out), 0);
    assert_true(test_creds_equal(&c, &out));

    /* The new tables work for the old account, and hold across a reopen. */
    struct tern_roster_item it = {.jid = (char *)"x@example.org", .sub = TERN_SUB_TO};
    uint64_t v = 0;
    assert_int_equal(b->ops->roster_put(b, "old", &it, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(b->ops->offline_put(b, "old", "<m/>", 4, 1, 3, NULL), 0);
    tern_store_backend_close(&b);

    b = test_backend_open(fx->dir, path);
    assert_non_null(b);
    struct tern_roster r;
    size_t n = 0;
    assert_int_equal(b->ops->roster_get(b, "old", &r), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.version, 1);
    tern_roster_free(&r);
    assert_int_equal(b->ops->offline_count(b, "old", &n), 0);
    assert_int_equal(n, 1);
    /* Foreign keys hold in the migrated file too. */
    assert_int_equal(b->ops->account_delete(b, "old"), 0);
    assert_int_equal(raw_int(path, "SELECT COUNT(*) FROM roster_items"), 0);
    assert_int_equal(raw_int(path, "SELECT COUNT(*) FROM offline_messages"), 0);
    tern_store_backend_close(&b);
    free(path);
}

/*
 * A file of schema 2 (accounts, rosters, offline messages), spelled out as it
 * shipped, gains the push registrations of schema 3 at open, keeping its
 * data; the new table cascades from accounts like the old ones.
 */
static void test_migrate_from_v2(void **state) {
    struct fixture *fx = *state;
    char *path = test_path(fx->dir, "v2.db");
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(
            db,
            "PRAGMA journal_mode=WAL;"
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY NOT NULL,"
            " applied_at INTEGER NOT NULL);"
            "CREATE TABLE accounts (username TEXT PRIMARY KEY NOT NULL,"
            " salt BLOB NOT NULL, iterations INTEGER NOT NULL,"
            " sha1_stored BLOB NOT NULL, sha1_server BLOB NOT NULL,"
            " sha256_stored BLOB NOT NULL, sha256_server BLOB NOT NULL,"
            " created_at INTEGER NOT NULL);"
            "CREATE TABLE roster_items ("
            " username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,"
            " contact TEXT NOT NULL, name TEXT,"
            " subscription INTEGER NOT NULL CHECK (subscription BETWEEN 0 AND 3),"
            " ask INTEGER NOT NULL, pending_in INTEGER NOT NULL, approved INTEGER NOT NULL,"
            " hidden INTEGER NOT NULL, PRIMARY KEY (username, contact));"
            "CREATE INDEX roster_items_by_contact ON roster_items (contact, username);"
            "CREATE TABLE roster_groups (username TEXT NOT NULL, contact TEXT NOT NULL,"
            " name TEXT NOT NULL, PRIMARY KEY (username, contact, name),"
            " FOREIGN KEY (username, contact) REFERENCES roster_items (username, contact)"
            "  ON DELETE CASCADE);"
            "CREATE TABLE roster_versions (username TEXT PRIMARY KEY NOT NULL"
            "  REFERENCES accounts (username) ON DELETE CASCADE, version INTEGER NOT NULL);"
            "CREATE TABLE offline_messages (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,"
            " stamp INTEGER NOT NULL, xml BLOB NOT NULL);"
            "CREATE INDEX offline_messages_by_user ON offline_messages (username, id);"
            "INSERT INTO schema_version (version, applied_at) VALUES (1, 0), (2, 0);"
            "INSERT INTO accounts VALUES ('old', x'00', 4096, x'00', x'00', x'00', x'00', 0);"
            "INSERT INTO offline_messages (username, stamp, xml) VALUES ('old', 1, '<m/>');",
            NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    struct tern_store_backend *b = test_backend_open(fx->dir, path);
    assert_non_null(b);
    assert_int_equal(raw_int(path, "SELECT MAX(version) FROM schema_version"),
                     TERN__SQLITE_SCHEMA_VERSION);
    assert_int_equal(raw_int(path, "SELECT COUNT(*) FROM schema_version"),
                     TERN__SQLITE_SCHEMA_VERSION);
    size_t n = 0;
    assert_int_equal(b->ops->offline_count(b, "old", &n), 0);
    assert_int_equal(n, 1);

    struct tern_push_reg r = {.jid = (char *)"push.example", .node = (char *)"n", .created_at = 1};
    assert_int_equal(b->ops->push_put(b, "old", &r, 5, NULL, NULL), 0);
    tern_store_backend_close(&b);

    b = test_backend_open(fx->dir, path);
    assert_non_null(b);
    struct tern_push_reg *regs = NULL;
    assert_int_equal(b->ops->push_get(b, "old", &regs, &n), 0);
    assert_int_equal(n, 1);
    tern_push_regs_free(regs, n);
    assert_int_equal(b->ops->account_delete(b, "old"), 0);
    assert_int_equal(raw_int(path, "SELECT COUNT(*) FROM push_registrations"), 0);
    tern_store_backend_close(&b);
    free(path);
}

/*
 * Schema 3 kept content restrictions per registration (flags 1: no body,
 * 2: no sender); schema 4 keeps them per user. A user who restricted any
 * registration keeps the restriction, the flag bits are cleared, and the
 * wake mark (4) stays.
 */
static void test_migrate_from_v3(void **state) {
    struct fixture *fx = *state;
    char *path = test_path(fx->dir, "v3.db");
    struct tern_store_backend *b = test_backend_open(fx->dir, path);
    assert_non_null(b);
    assert_int_equal(test_add_account(b, "a"), 0);
    assert_int_equal(test_add_account(b, "z"), 0);
    assert_int_equal(test_add_account(b, "n"), 0);
    tern_store_backend_close(&b);
    raw_exec(path, "DROP TRIGGER push_options_last; DROP TABLE push_options;"
                   "DROP TRIGGER offline_counts_insert; DROP TRIGGER offline_counts_delete;"
                   "DROP TABLE offline_counts; DELETE FROM schema_version WHERE version >= 4;"
                   "INSERT INTO push_registrations (username, jid, node, flags, created_at)"
                   " VALUES ('a', 'p', '1', 1, 1), ('a', 'p', '2', 6, 2),"
                   " ('z', 'p', '1', 0, 1), ('n', 'p', '1', 4, 1);");

    b = test_backend_open(fx->dir, path);
    assert_non_null(b);
    struct tern_push_options o = {0};
    assert_int_equal(b->ops->push_options_get(b, "a", &o), 0);
    assert_int_equal(o.senders, 0);
    assert_int_equal(o.count, 1);
    assert_int_equal(o.bodies, 0);
    assert_int_equal(b->ops->push_options_get(b, "z", &o), TERN_E_NOTFOUND);
    assert_int_equal(b->ops->push_options_get(b, "n", &o), TERN_E_NOTFOUND);
    assert_int_equal(
        raw_int(path, "SELECT COUNT(*) FROM push_registrations WHERE (flags & 3) <> 0"), 0);
    assert_int_equal(raw_int(path, "SELECT COUNT(*) FROM push_registrations WHERE flags = 4"), 2);
    tern_store_backend_close(&b);
    free(path);
}

/*
 * Schema 5 keeps each user's offline message count in offline_counts
 * (triggers). A file of schema 4 gets the counts of the messages it holds,
 * and from then on inserts, deletes and account deletion keep them.
 */
static void test_migrate_from_v4(void **state) {
    struct fixture *fx = *state;
    char *path = test_path(fx->dir, "v4.db");
    struct tern_store_backend *b = test_backend_open(fx->dir, path);
    assert_non_null(b);
    assert_int_equal(test_add_account(b, "a"), 0);
    assert_int_equal(test_add_account(b, "z"), 0);
    tern_store_backend_close(&b);
    raw_exec(path, "DROP TRIGGER offline_counts_insert; DROP TRIGGER offline_counts_delete;"
                   "DROP TABLE offline_counts; DELETE FROM schema_version WHERE version = 5;"
                   "INSERT INTO offline_messages (username, stamp, xml)"
                   " VALUES ('a', 1, '<m/>'), ('a', 2, '<m/>'), ('a', 3, '<m/>');");

    b = test_backend_open(fx->dir, path);
    assert_non_null(b);
    size_t n = 99;
    assert_int_equal(b->ops->offline_count(b, "a", &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(b->ops->offline_count(b, "z", &n), 0);
    assert_int_equal(n, 0);
    int64_t id = 0;
    assert_int_equal(b->ops->offline_put(b, "a", "<m/>", 4, 4, 4, &id), 0);
    assert_int_equal(b->ops->offline_put(b, "a", "<m/>", 4, 5, 4, &id), TERN_E_LIMIT);
    assert_int_equal(b->ops->offline_del(b, "a", id - 1), 0);
    assert_int_equal(b->ops->offline_count(b, "a", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(b->ops->account_delete(b, "a"), 0);
    assert_int_equal(raw_int(path, "SELECT COUNT(*) FROM offline_counts"), 0);
    assert_int_equal(test_add_account(b, "a"), 0);
    assert_int_equal(b->ops->offline_count(b, "a", &n), 0);
    assert_int_equal(n, 0);
    tern_store_backend_close(&b);
    free(path);
}

static void test_creates_data_dir(void **state) {
    struct fixture *fx = *state;
    char *dir = test_path(fx->dir, "a/b");
    char *path = test_path(fx->dir, "a/b/c/x.db");
    struct tern_config cfg = test_config(dir, path);
    struct tern_store_backend *b = NULL;
    char err[512] = "";
    struct stat st;

    assert_int_equal(tern_store_backend_open(&cfg, &b, err, sizeof err), 0);
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(path, &st), 0);
    tern_store_backend_close(&b);

    /* Without store_path the file is data_dir/tern.db. */
    cfg.store_path = NULL;
    assert_int_equal(tern_store_backend_open(&cfg, &b, err, sizeof err), 0);
    tern_store_backend_close(&b);
    char *def = test_path(dir, "tern.db");
    assert_int_equal(stat(def, &st), 0);
    free(def);
    free(dir);
    free(path);
}

static void test_open_errors(void **state) {
    struct fixture *fx = *state;
    struct tern_store_backend *b = NULL;
    char err[512];

    /* A regular file where a directory should be. */
    char *file = test_path(fx->dir, "file");
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    char *path = test_path(fx->dir, "file/tern.db");
    struct tern_config cfg = test_config(fx->dir, path);
    err[0] = '\0';
    assert_true(tern_store_backend_open(&cfg, &b, err, sizeof err) < 0);
    assert_null(b);
    assert_non_null(strstr(err, path));

    /* A directory where the database file should be: SQLite's own message. */
    cfg = test_config(fx->dir, fx->dir);
    err[0] = '\0';
    assert_int_equal(tern_store_backend_open(&cfg, &b, err, sizeof err), TERN_E_IO);
    assert_null(b);
    assert_non_null(strstr(err, fx->dir));
    assert_non_null(strstr(err, "unable to open"));

    cfg = test_config(fx->dir, fx->db_path);
    cfg.store_backend = (char *)"mongodb";
    err[0] = '\0';
    assert_int_equal(tern_store_backend_open(&cfg, &b, err, sizeof err), TERN_E_INVAL);
    assert_null(b);
    assert_non_null(strstr(err, "mongodb"));
    free(file);
    free(path);
}

int main(void) {
    tern_log_set_level(TERN_LOG_ERROR); /* expected warnings would clutter the output */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_and_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_creds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_sorted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_savepoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_delete_cascades, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_creates_data_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
