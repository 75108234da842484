/* SCRAM client for the load generator; see scram.h. */
#include "scram.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define ITERATIONS_MAX 10000000u /* refuse a server that asks for more work than this */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int tern_bench_b64_encode(const uint8_t *in, size_t len, char *out, size_t outsize) {
    size_t need = (len + 2) / 3 * 4;
    if (need + 1 > outsize)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return (int)o;
}

static int b64_value(char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int tern_bench_b64_decode(const char *in, size_t len, uint8_t *out, size_t outsize) {
    if (len % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (in[i + k] == '=') {
                /* Padding only in the last group, only in its last two places, and
                 * nothing but padding after it. */
                if (i + 4 != len || k < 2)
                    return -1;
                pad++;
                v[k] = 0;
                continue;
            }
            if (pad)
                return -1;
            v[k] = b64_value(in[i + k]);
            if (v[k] < 0)
                return -1;
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        size_t n = 3 - (size_t)pad;
        if (o + n > outsize)
            return -1;
        out[o++] = (uint8_t)(w >> 16);
        if (n > 1)
            out[o++] = (uint8_t)(w >> 8);
        if (n > 2)
            out[o++] = (uint8_t)w;
    }
    return (int)o;
}

size_t tern_bench_scram_keylen(enum tern_bench_scram_alg alg) {
    return alg == TERN_BENCH_SCRAM_SHA256 ? 32 : 20;
}

const char *tern_bench_scram_name(enum tern_bench_scram_alg alg) {
    return alg == TERN_BENCH_SCRAM_SHA256 ? "SCRAM-SHA-256" : "SCRAM-SHA-1";
}

static const EVP_MD *digest(enum tern_bench_scram_alg alg) {
    return alg == TERN_BENCH_SCRAM_SHA256 ? EVP_sha256() : EVP_sha1();
}

/* RFC 5802 §5.1: ',' and '=' in a username are written =2C and =3D. */
static int escape_user(const char *user, char *out, size_t outsize) {
    size_t o = 0;
    for (const char *p = user; *p; p++) {
        const char *rep = *p == ',' ? "=2C" : *p == '=' ? "=3D" : NULL;
        size_t n = rep ? 3 : 1;
        if (o + n + 1 > outsize)
            return -1;
        if (rep)
            memcpy(out + o, rep, 3);
        else
            out[o] = *p;
        o += n;
    }
    out[o] = '\0';
    return (int)o;
}

int tern_bench_scram_start(struct tern_bench_scram *s, enum tern_bench_scram_alg alg,
                           const char *user, const char *nonce, char *out, size_t outsize) {
    memset(s, 0, sizeof *s);
    s->alg = alg;
    if (nonce) {
        size_t n = strlen(nonce);
        if (n == 0 || n > TERN_BENCH_SCRAM_NONCE_MAX)
            return -1;
        memcpy(s->nonce, nonce, n + 1);
        s->nonce_len = n;
    } else {
        /* 18 random bytes -> 24 printable characters, none of them ','. */
        uint8_t raw[18];
        if (RAND_bytes(raw, sizeof raw) != 1)
            return -1;
        s->nonce_len = (size_t)tern_bench_b64_encode(raw, sizeof raw, s->nonce, sizeof s->nonce);
    }
    char esc[256];
    if (escape_user(user, esc, sizeof esc) < 0)
        return -1;
    int n = snprintf(s->first_bare, sizeof s->first_bare, "n=%s,r=%s", esc, s->nonce);
    if (n < 0 || (size_t)n >= sizeof s->first_bare)
        return -1;
    s->first_bare_len = (size_t)n;
    n = snprintf(out, outsize, "n,,%s", s->first_bare);
    if (n < 0 || (size_t)n >= outsize)
        return -1;
    return n;
}

/* Find attribute `name=` in a comma-separated SCRAM message; sets *val and *vlen. */
static int find_attr(const char *msg, size_t len, char name, const char **val, size_t *vlen) {
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && msg[end] != ',')
            end++;
        if (end - i >= 2 && msg[i] == name && msg[i + 1] == '=') {
            *val = msg + i + 2;
            *vlen = end - i - 2;
            return 0;
        }
        i = end + 1;
    }
    return -1;
}

static int hmac(enum tern_bench_scram_alg alg, const uint8_t *key, size_t keylen, const void *data,
                size_t len, uint8_t *out) {
    unsigned int outlen = 0;
    if (!HMAC(digest(alg), key, (int)keylen, data, len, out, &outlen))
        return -1;
    return 0;
}

int tern_bench_scram_final(struct tern_bench_scram *s, const char *password,
                           const char *server_first, size_t len,
                           struct tern_bench_scram_cache *cache, char *out, size_t outsize) {
    const char *r, *salt64, *it;
    size_t rlen, salt64len, itlen;
    if (s->step != 0 || len >= TERN_BENCH_SCRAM_MSG_MAX)
        return -1;
    /* RFC 5802 §5.1: "m=" announces an extension we do not know; it must fail. */
    if (len >= 2 && server_first[0] == 'm' && server_first[1] == '=')
        return -1;
    if (find_attr(server_first, len, 'r', &r, &rlen) < 0 ||
        find_attr(server_first, len, 's', &salt64, &salt64len) < 0 ||
        find_attr(server_first, len, 'i', &it, &itlen) < 0)
        return -1;
    /* The server's nonce must start with ours and add something (§5.1 r=). */
    if (rlen <= s->nonce_len || memcmp(r, s->nonce, s->nonce_len) != 0)
        return -1;
    if (itlen == 0 || itlen > 8)
        return -1;
    uint32_t iterations = 0;
    for (size_t i = 0; i < itlen; i++) {
        if (it[i] < '0' || it[i] > '9')
            return -1;
        iterations = iterations * 10 + (uint32_t)(it[i] - '0');
    }
    if (iterations < 1 || iterations > ITERATIONS_MAX)
        return -1;
    uint8_t salt[TERN_BENCH_SCRAM_SALT_MAX];
    int saltlen = tern_bench_b64_decode(salt64, salt64len, salt, sizeof salt);
    if (saltlen <= 0)
        return -1;

    size_t klen = tern_bench_scram_keylen(s->alg);
    uint8_t salted[TERN_BENCH_SCRAM_KEY_MAX];
    if (cache && cache->salt_len == (size_t)saltlen && cache->alg == s->alg &&
        cache->iterations == iterations && memcmp(cache->salt, salt, (size_t)saltlen) == 0) {
        memcpy(salted, cache->salted, klen);
    } else {
        if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, saltlen, (int)iterations,
                              digest(s->alg), (int)klen, salted) != 1)
            return -1;
        if (cache) {
            cache->alg = s->alg;
            cache->iterations = iterations;
            cache->salt_len = (size_t)saltlen;
            memcpy(cache->salt, salt, (size_t)saltlen);
            memcpy(cache->salted, salted, klen);
        }
    }

    /* client-final-message-without-proof: c=base64("n,,") = "biws". */
    char without_proof[TERN_BENCH_SCRAM_MSG_MAX];
    int wlen = snprintf(without_proof, sizeof without_proof, "c=biws,r=%.*s", (int)rlen, r);
    if (wlen < 0 || (size_t)wlen >= sizeof without_proof)
        return -1;
    char auth[3 * TERN_BENCH_SCRAM_MSG_MAX];
    int alen = snprintf(auth, sizeof auth, "%.*s,%.*s,%.*s", (int)s->first_bare_len, s->first_bare,
                        (int)len, server_first, wlen, without_proof);
    if (alen < 0 || (size_t)alen >= sizeof auth)
        return -1;

    uint8_t client_key[TERN_BENCH_SCRAM_KEY_MAX], stored_key[TERN_BENCH_SCRAM_KEY_MAX];
    uint8_t client_sig[TERN_BENCH_SCRAM_KEY_MAX], server_key[TERN_BENCH_SCRAM_KEY_MAX];
    unsigned int dlen = 0;
    if (hmac(s->alg, salted, klen, "Client Key", 10, client_key) < 0 ||
        EVP_Digest(client_key, klen, stored_key, &dlen, digest(s->alg), NULL) != 1 ||
        hmac(s->alg, stored_key, klen, auth, (size_t)alen, client_sig) < 0 ||
        hmac(s->alg, salted, klen, "Server Key", 10, server_key) < 0 ||
        hmac(s->alg, server_key, klen, auth, (size_t)alen, s->server_sig) < 0)
        return -1;
    uint8_t proof[TERN_BENCH_SCRAM_KEY_MAX];
    for (size_t i = 0; i < klen; i++)
        proof[i] = client_key[i] ^ client_sig[i];
    char proof64[64];
    tern_bench_b64_encode(proof, klen, proof64, sizeof proof64);
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(client_key, sizeof client_key);

    int n = snprintf(out, outsize, "%.*s,p=%s", wlen, without_proof, proof64);
    if (n < 0 || (size_t)n >= outsize)
        return -1;
    s->step = 1;
    return n;
}

int tern_bench_scram_verify(struct tern_bench_scram *s, const char *server_final, size_t len) {
    const char *v;
    size_t vlen;
    if (s->step != 1 || find_attr(server_final, len, 'v', &v, &vlen) < 0)
        return -1;
    uint8_t sig[TERN_BENCH_SCRAM_KEY_MAX + 3];
    int n = tern_bench_b64_decode(v, vlen, sig, sizeof sig);
    size_t klen = tern_bench_scram_keylen(s->alg);
    if (n != (int)klen || CRYPTO_memcmp(sig, s->server_sig, klen) != 0)
        return -1;
    s->step = 2;
    return 0;
}
