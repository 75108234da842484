/* Shared helpers for the store unit tests: temporary directories, test credentials, backends. */
#ifndef TERN_TESTS_UNIT_STORE_HELPERS_H
#define TERN_TESTS_UNIT_STORE_HELPERS_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "store/store.h"
#include "xmpp/scram.h"

/* A fresh directory under $TMPDIR (or /tmp); caller frees the string. */
static inline char *test_mkdtemp(void) {
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/tern-store-XXXXXX", base && *base ? base : "/tmp");
    char *dir = mkdtemp(tmpl);
    if (!dir) {
        perror("mkdtemp");
        abort();
    }
    return strdup(dir);
}

static inline int test_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* rm -rf dir. */
static inline void test_rmtree(const char *dir) {
    nftw(dir, test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A path inside dir; caller frees. */
static inline char *test_path(const char *dir, const char *name) {
    size_t len = strlen(dir) + 1 + strlen(name) + 1;
    char *p = malloc(len);
    snprintf(p, len, "%s/%s", dir, name);
    return p;
}

/*
 * A config with only what the store reads. Built by hand so that these tests
 * do not depend on config.c. Strings point into the caller's memory.
 */
static inline struct tern_config test_config(char *data_dir, char *store_path) {
    struct tern_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.domain = (char *)"localhost";
    cfg.data_dir = data_dir;
    cfg.store_backend = (char *)"sqlite";
    cfg.store_path = store_path;
    cfg.scram_iterations = 4096;
    return cfg;
}

/* Distinct, recognisable credentials derived from seed (no real crypto needed). */
static inline struct tern_scram_creds test_creds(unsigned seed) {
    struct tern_scram_creds c;
    memset(&c, 0, sizeof c);
    c.salt_len = TERN_SCRAM_SALT_LEN;
    for (size_t i = 0; i < c.salt_len; i++)
        c.salt[i] = (uint8_t)(seed * 7 + i);
    c.iterations = 4096 + (int)seed;
    /* SHA-1 keys are 20 bytes; the rest of the array stays zero. */
    for (size_t i = 0; i < 20; i++) {
        c.keys[TERN_SCRAM_SHA1].stored_key[i] = (uint8_t)(seed + 3 * i);
        c.keys[TERN_SCRAM_SHA1].server_key[i] = (uint8_t)(seed + 5 * i);
    }
    for (size_t i = 0; i < 32; i++) {
        c.keys[TERN_SCRAM_SHA256].stored_key[i] = (uint8_t)(seed + 11 * i);
        c.keys[TERN_SCRAM_SHA256].server_key[i] = (uint8_t)(seed + 13 * i);
    }
    return c;
}

/* Field-by-field equality (the struct may have padding). */
static inline int test_creds_equal(const struct tern_scram_creds *a,
                                   const struct tern_scram_creds *b) {
    return a->salt_len == b->salt_len && memcmp(a->salt, b->salt, a->salt_len) == 0 &&
           a->iterations == b->iterations && memcmp(a->keys, b->keys, sizeof a->keys) == 0;
}

/* Open the configured backend at store_path; NULL (and a message on stderr) on failure. */
static inline struct tern_store_backend *test_backend_open(char *data_dir, char *store_path) {
    struct tern_config cfg = test_config(data_dir, store_path);
    struct tern_store_backend *b = NULL;
    char err[512] = "";
    if (tern_store_backend_open(&cfg, &b, err, sizeof err) != 0) {
        fprintf(stderr, "open failed: %s\n", err);
        return NULL;
    }
    return b;
}

/* Create an account for user (rosters and offline messages need one); 0 or tern_err. */
static inline int test_add_account(struct tern_store_backend *b, const char *user) {
    struct tern_scram_creds c = test_creds(1);
    return b->ops->account_create(b, user, &c);
}

#endif
