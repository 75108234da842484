/*
 * SCRAM client (RFC 5802, RFC 7677) for the load generator: SCRAM-SHA-1 and
 * SCRAM-SHA-256 without channel binding ("n,,"). Pure functions over
 * caller-owned buffers, so the unit tests can drive them with the RFC vectors.
 *
 * Written for the benchmark, independent of the server's own SCRAM code, so a
 * bug in one cannot hide in the other.
 */
#ifndef TERN_BENCH_SCRAM_H
#define TERN_BENCH_SCRAM_H

#include <stddef.h>
#include <stdint.h>

#define TERN_BENCH_SCRAM_KEY_MAX   32  /* largest digest: SHA-256 */
#define TERN_BENCH_SCRAM_SALT_MAX  64  /* longest salt we accept, decoded */
#define TERN_BENCH_SCRAM_NONCE_MAX 64  /* longest client nonce */
#define TERN_BENCH_SCRAM_MSG_MAX   512 /* longest SCRAM message we build or accept */

enum tern_bench_scram_alg {
    TERN_BENCH_SCRAM_SHA1,   /* SCRAM-SHA-1 */
    TERN_BENCH_SCRAM_SHA256, /* SCRAM-SHA-256 */
};

/**
 * A SaltedPassword remembered across logins of one user: computing Hi() costs
 * thousands of HMACs, and real clients keep it too. Owned by the caller; the
 * exchange reads it and fills it when salt or iteration count differ.
 */
struct tern_bench_scram_cache {
    enum tern_bench_scram_alg alg;            /* digest the key was made with */
    uint32_t iterations;                      /* i= of the server-first-message */
    size_t salt_len;                          /* bytes in salt; 0 = empty cache */
    uint8_t salt[TERN_BENCH_SCRAM_SALT_MAX];  /* decoded s= */
    uint8_t salted[TERN_BENCH_SCRAM_KEY_MAX]; /* Hi(password, salt, i) */
};

/** One SCRAM exchange in progress. Plain data, no heap: zero it or let start() fill it. */
struct tern_bench_scram {
    enum tern_bench_scram_alg alg;                /* mechanism in use */
    size_t first_bare_len;                        /* bytes of client-first-message-bare */
    char first_bare[TERN_BENCH_SCRAM_MSG_MAX];    /* "n=user,r=nonce" */
    size_t nonce_len;                             /* bytes in nonce */
    char nonce[TERN_BENCH_SCRAM_NONCE_MAX + 1];   /* our nonce, NUL-terminated */
    uint8_t server_sig[TERN_BENCH_SCRAM_KEY_MAX]; /* expected v= */
    int step;                                     /* 0 started, 1 final sent, 2 verified */
};

/** Digest length in bytes for alg. */
size_t tern_bench_scram_keylen(enum tern_bench_scram_alg alg);

/** Mechanism name as offered in stream features ("SCRAM-SHA-1"). */
const char *tern_bench_scram_name(enum tern_bench_scram_alg alg);

/**
 * Begin an exchange for user (escaped here per RFC 5802 §5.1). nonce may be
 * NULL for a random one. Writes the client-first-message ("n,,n=...,r=...")
 * into out (NUL-terminated) and returns its length, or -1 if it does not fit.
 */
int tern_bench_scram_start(struct tern_bench_scram *s, enum tern_bench_scram_alg alg,
                           const char *user, const char *nonce, char *out, size_t outsize);

/**
 * Answer the server-first-message (len bytes, not base64). Uses or refills
 * cache (may be NULL). Writes the client-final-message into out and returns its
 * length, or -1 on a malformed message, a nonce that does not extend ours, an
 * iteration count below 1 or above 10^7, or no room.
 */
int tern_bench_scram_final(struct tern_bench_scram *s, const char *password,
                           const char *server_first, size_t len,
                           struct tern_bench_scram_cache *cache, char *out, size_t outsize);

/**
 * Check the server-final-message ("v=..."). Returns 0 when the server proved
 * it knows the key, -1 otherwise (including "e=..." errors).
 */
int tern_bench_scram_verify(struct tern_bench_scram *s, const char *server_final, size_t len);

/** Base64-encode len bytes into out (NUL-terminated); returns the length or -1 if no room. */
int tern_bench_b64_encode(const uint8_t *in, size_t len, char *out, size_t outsize);

/** Decode base64 (padding required, no whitespace); returns bytes written or -1. */
int tern_bench_b64_decode(const char *in, size_t len, uint8_t *out, size_t outsize);

#endif
