/* Tests for src/xmpp/scram.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/err.h"
#include "xmpp/scram.h"
#include "xmpp/scram_internal.h"

/* ---- helpers ---- */

static size_t b64_decode(const char *s, uint8_t *out, size_t max) {
    uint8_t *dec = NULL;
    size_t len = 0;
    assert_int_equal(tern_base64_decode(s, strlen(s), &dec, &len), 0);
    assert_true(len <= max);
    memcpy(out, dec, len);
    free(dec);
    return len;
}

/* Credentials for password with a given base64 salt, keys for hash h only. */
static void make_creds(struct tern_scram_creds *creds, enum tern_scram_hash h, const char *password,
                       const char *salt_b64, int iterations) {
    memset(creds, 0, sizeof *creds);
    creds->salt_len = b64_decode(salt_b64, creds->salt, sizeof creds->salt);
    creds->iterations = iterations;
    assert_int_equal(
        tern_scram_derive(h, password, creds->salt, creds->salt_len, iterations, &creds->keys[h]),
        0);
}

/*
 * An independent client (OpenSSL only, not the code under test): the proof
 * for AuthMessage = bare "," server_first "," without_proof, base64 into out.
 */
static void client_proof(enum tern_scram_hash h, const char *password, const uint8_t *salt,
                         size_t salt_len, int iterations, const char *bare,
                         const char *server_first, const char *without_proof, char *out,
                         size_t outmax) {
    const EVP_MD *md = h == TERN_SCRAM_SHA256 ? EVP_sha256() : EVP_sha1();
    int hl = EVP_MD_get_size(md);
    uint8_t salted[32], ckey[32], skey[32], sig[32], proof[32];
    unsigned int n;
    char am[4096];

    snprintf(am, sizeof am, "%s,%s,%s", bare, server_first, without_proof);
    assert_int_equal(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len,
                                       iterations, md, hl, salted),
                     1);
    HMAC(md, salted, hl, (const uint8_t *)"Client Key", 10, ckey, &n);
    EVP_Digest(ckey, (size_t)hl, skey, &n, md, NULL);
    HMAC(md, skey, hl, (const uint8_t *)am, strlen(am), sig, &n);
    for (int i = 0; i < hl; i++)
        proof[i] = ckey[i] ^ sig[i];
    char *b64 = tern_base64_encode(proof, (size_t)hl);
    assert_true(strlen(b64) < outmax);
    strcpy(out, b64);
    free(b64);
}

static int client_first(struct tern_scram_server *s, const char *msg, const char **user,
                        enum tern_cb_type *cb) {
    return tern_scram_server_client_first(s, msg, strlen(msg), user, cb);
}

static int server_final(struct tern_scram_server *s, const char *msg, const uint8_t *cb,
                        size_t cb_len, const char **out) {
    size_t outlen;
    return tern_scram_server_final(s, msg, strlen(msg), cb, cb_len, out, &outlen);
}

/*
 * Run one full exchange for user "user", password "pencil" with creds, our
 * client nonce "cnonce" and server nonce "snonce". gs2 is the gs2-header the
 * client sends, cb the binding data the client puts in c= (client_cb) and
 * the one the server passes to final (server_cb). Returns final's result.
 */
struct run {
    enum tern_scram_hash hash;
    int plus, cb_offered;
    const char *gs2;
    const uint8_t *client_cb, *server_cb;
    size_t client_cb_len, server_cb_len;
    const char *password;     /* the client's password; "pencil" if NULL */
    const char *nonce_suffix; /* appended to the nonce in client-final */
};

static int run_exchange(const struct run *r, const struct tern_scram_creds *creds) {
    struct tern_scram_server *s = tern_scram_server_new(r->hash, r->plus, r->cb_offered);
    const char *user, *out;
    size_t outlen;
    enum tern_cb_type cb;
    char msg[2048], bare[256], without[1024], proof[128];
    uint8_t cbind[512];

    snprintf(bare, sizeof bare, "n=user,r=cnonce");
    snprintf(msg, sizeof msg, "%s%s", r->gs2, bare);
    int rc = client_first(s, msg, &user, &cb);
    if (rc) {
        tern_scram_server_free(&s);
        return rc;
    }
    assert_string_equal(user, "user");
    tern__scram_server_set_nonce(s, "snonce");
    assert_int_equal(tern_scram_server_first(s, creds, &out, &outlen), 0);
    assert_int_equal(strlen(out), outlen);
    char server_first_msg[512];
    strcpy(server_first_msg, out);

    size_t gl = strlen(r->gs2);
    memcpy(cbind, r->gs2, gl);
    if (r->client_cb_len)
        memcpy(cbind + gl, r->client_cb, r->client_cb_len);
    char *c = tern_base64_encode(cbind, gl + r->client_cb_len);
    snprintf(without, sizeof without, "c=%s,r=cnoncesnonce%s", c,
             r->nonce_suffix ? r->nonce_suffix : "");
    free(c);
    client_proof(r->hash, r->password ? r->password : "pencil", creds->salt, creds->salt_len,
                 creds->iterations, bare, server_first_msg, without, proof, sizeof proof);
    snprintf(msg, sizeof msg, "%s,p=%s", without, proof);
    rc = server_final(s, msg, r->server_cb, r->server_cb_len, &out);
    if (rc == 0)
        assert_memory_equal(out, "v=", 2);
    else
        assert_null(out);
    tern_scram_server_free(&s);
    assert_null(s);
    return rc;
}

/* ---- RFC vectors ---- */

/* RFC 5802 §5: SCRAM-SHA-1, user "user", password "pencil". */
static void test_rfc5802_sha1(void **state) {
    (void)state;
    struct tern_scram_creds creds;
    make_creds(&creds, TERN_SCRAM_SHA1, "pencil", "QSXCR+Q6sek8bf92", 4096);

    struct tern_scram_server *s = tern_scram_server_new(TERN_SCRAM_SHA1, 0, 0);
    const char *user, *out;
    size_t outlen;
    enum tern_cb_type cb = TERN_CB_TLS_EXPORTER;
    assert_int_equal(client_first(s, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", &user, &cb), 0);
    assert_string_equal(user, "user");
    assert_int_equal(cb, TERN_CB_NONE);
    assert_null(tern_scram_server_authzid(s));

    tern__scram_server_set_nonce(s, "3rfcNHYJY1ZVvWVs7j");
    assert_int_equal(tern_scram_server_first(s, &creds, &out, &outlen), 0);
    assert_string_equal(out, "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,"
                             "i=4096");
    assert_int_equal(outlen, strlen(out));

    assert_int_equal(server_final(s,
                                  "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
                                  "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                                  NULL, 0, &out),
                     0);
    assert_string_equal(out, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    /* Steps run once: a replayed final fails. */
    assert_int_equal(server_final(s,
                                  "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
                                  "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                                  NULL, 0, &out),
                     TERN_E_INVAL);
    tern_scram_server_free(&s);
    tern_scram_server_free(&s); /* NULL: no-op */
}

#define RFC7677_CFIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC7677_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC7677_SFIRST                                                                             \
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC7677_CFINAL_NP "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC7677_PROOF     "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC7677_SFINAL    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/* Run the RFC 7677 §3 exchange with a chosen client-final and binding data. */
static int rfc7677_cb(const char *client_final, const uint8_t *cb_data, size_t cb_len,
                      const char **out, struct tern_scram_server **sp) {
    struct tern_scram_creds creds;
    make_creds(&creds, TERN_SCRAM_SHA256, "pencil", "W22ZaJ0SNY7soEsUEjb6gQ==", 4096);
    struct tern_scram_server *s = tern_scram_server_new(TERN_SCRAM_SHA256, 0, 0);
    const char *user, *sf;
    size_t sflen;
    enum tern_cb_type cb;
    assert_int_equal(client_first(s, RFC7677_CFIRST, &user, &cb), 0);
    tern__scram_server_set_nonce(s, RFC7677_SNONCE);
    assert_int_equal(tern_scram_server_first(s, &creds, &sf, &sflen), 0);
    assert_string_equal(sf, RFC7677_SFIRST);
    *sp = s;
    return server_final(s, client_final, cb_data, cb_len, out);
}

/* Run the RFC 7677 §3 exchange with a chosen client-final; returns final's rc. */
static int rfc7677(const char *client_final, const char **out, struct tern_scram_server **sp) {
    return rfc7677_cb(client_final, NULL, 0, out, sp);
}

/* RFC 7677 §3: SCRAM-SHA-256, user "user", password "pencil". */
static void test_rfc7677_sha256(void **state) {
    (void)state;
    struct tern_scram_server *s;
    const char *out;
    assert_int_equal(rfc7677(RFC7677_CFINAL_NP ",p=" RFC7677_PROOF, &out, &s), 0);
    assert_string_equal(out, RFC7677_SFINAL);
    tern_scram_server_free(&s);
}

static void test_wrong_proof(void **state) {
    (void)state;
    struct tern_scram_server *s;
    const char *out = (const char *)1;
    /* One bit flipped in the proof ('d' -> 'e' in the first character). */
    assert_int_equal(
        rfc7677(RFC7677_CFINAL_NP ",p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", &out, &s),
        TERN_E_AUTH);
    assert_null(out);
    /* After a failure the exchange is dead. */
    assert_int_equal(server_final(s, RFC7677_CFINAL_NP ",p=" RFC7677_PROOF, NULL, 0, &out),
                     TERN_E_INVAL);
    tern_scram_server_free(&s);

    /* The RFC 5802 proof under SCRAM-SHA-1 with a different password. */
    struct tern_scram_creds creds;
    make_creds(&creds, TERN_SCRAM_SHA1, "pencil2", "QSXCR+Q6sek8bf92", 4096);
    s = tern_scram_server_new(TERN_SCRAM_SHA1, 0, 0);
    const char *user;
    size_t len;
    enum tern_cb_type cb;
    assert_int_equal(client_first(s, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", &user, &cb), 0);
    tern__scram_server_set_nonce(s, "3rfcNHYJY1ZVvWVs7j");
    assert_int_equal(tern_scram_server_first(s, &creds, &out, &len), 0);
    assert_int_equal(server_final(s,
                                  "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
                                  "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                                  NULL, 0, &out),
                     TERN_E_AUTH);
    tern_scram_server_free(&s);

    /* And through the independent client. */
    make_creds(&creds, TERN_SCRAM_SHA256, "pencil", "W22ZaJ0SNY7soEsUEjb6gQ==", 4096);
    struct run r = {.hash = TERN_SCRAM_SHA256, .gs2 = "n,,", .password = "pencil "};
    assert_int_equal(run_exchange(&r, &creds), TERN_E_AUTH);
    r.password = NULL;
    assert_int_equal(run_exchange(&r, &creds), 0);
}

static void test_wrong_nonce(void **state) {
    (void)state;
    struct tern_scram_server *s;
    const char *out;
    /* Server part of the nonce changed: the proof is computed over it, so
     * this also checks that the nonce is compared and not merely signed. */
    assert_int_equal(
        rfc7677("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,p=" RFC7677_PROOF,
                &out, &s),
        TERN_E_AUTH);
    tern_scram_server_free(&s);
    /* Only the client's nonce echoed back. */
    assert_int_equal(rfc7677("c=biws,r=rOprNGfwEbeRWgbNEkqO,p=" RFC7677_PROOF, &out, &s),
                     TERN_E_AUTH);
    tern_scram_server_free(&s);

    /* With a correct proof over the wrong nonce. */
    struct tern_scram_creds creds;
    make_creds(&creds, TERN_SCRAM_SHA256, "pencil", "W22ZaJ0SNY7soEsUEjb6gQ==", 4096);
    struct run r = {.hash = TERN_SCRAM_SHA256, .gs2 = "n,,", .nonce_suffix = "x"};
    assert_int_equal(run_exchange(&r, &creds), TERN_E_AUTH);
}

/* c= that does not match the gs2-header we received. */
static void test_wrong_cbind_header(void **state) {
    (void)state;
    struct tern_scram_server *s;
    const char *out;
    /* "eSws" is "y,,", but the client sent "n,,". */
    assert_int_equal(
        rfc7677("c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=" RFC7677_PROOF,
                &out, &s),
        TERN_E_AUTH);
    tern_scram_server_free(&s);
}

/* ---- channel binding ---- */

static const uint8_t exporter[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                     12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                     23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t other[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 33};

static void test_cb_plus(void **state) {
    (void)state;
    struct tern_scram_creds creds;
    make_creds(&creds, TERN_SCRAM_SHA256, "pencil", "W22ZaJ0SNY7soEsUEjb6gQ==", 4096);
    struct run r = {
        .hash = TERN_SCRAM_SHA256,
        .plus = 1,
        .cb_offered = 1,
        .gs2 = "p=tls-exporter,,",
        .client_cb = exporter,
        .client_cb_len = sizeof exporter,
        .server_cb = exporter,
        .server_cb_len = sizeof exporter,
    };
    assert_int_equal(run_exchange(&r, &creds), 0);

    /* The client saw a different TLS channel (a man in the middle). */
    r.server_cb = other;
    assert_int_equal(run_exchange(&r, &creds), TERN_E_AUTH);

    /* The client left the data out of c=. */
    r.client_cb_len = 0;
    r.server_cb = exporter;
    assert_int_equal(run_exchange(&r, &creds), TERN_E_AUTH);

    /* The server could not obtain binding data. */
    r.client_cb_len = sizeof exporter;
    r.server_cb = NULL;
    r.server_cb_len = 0;
    assert_int_equal(run_exchange(&r, &creds), TERN_E_AUTH);

    /* tls-server-end-point works the same way, with SHA-1 too. */
    make_creds(&creds, TERN_SCRAM_SHA1, "pencil", "QSXCR+Q6sek8bf92", 4096);
    r.hash = TERN_SCRAM_SHA1;
    r.gs2 = "p=tls-server-end-point,,";
    r.server_cb = exporter;
    r.server_cb_len = sizeof exporter;
    assert_int_equal(run_exchange(&r, &creds), 0);
}

static void test_cb_type_reported(void **state) {
    (void)state;
    const char *user;
    enum tern_cb_type cb;
    struct tern_scram_server *s = tern_scram_server_new(TERN_SCRAM_SHA256, 1, 1);
    assert_int_equal(client_first(s, "p=tls-exporter,,n=user,r=abc", &user, &cb), 0);
    assert_int_equal(cb, TERN_CB_TLS_EXPORTER);
    tern_scram_server_free(&s);

    s = tern_scram_server_new(TERN_SCRAM_SHA256, 1, 1);
    assert_int_equal(client_first(s, "p=tls-server-end-point,,n=user,r=abc", &user, &cb), 0);
    assert_int_equal(cb, TERN_CB_TLS_SERVER_END_POINT);
    tern_scram_server_free(&s);
}

static void expect_first_rc(int plus, int cb_offered, const char *msg, int want) {
    const char *user;
    enum tern_cb_type cb;
    struct tern_scram_server *s = tern_scram_server_new(TERN_SCRAM_SHA256, plus, cb_offered);
    int rc = client_first(s, msg, &user, &cb);
    if (rc != want)
        fail_msg("client-first \"%s\" (plus %d, offered %d): %d, wanted %d", msg, plus, cb_offered,
                 rc, want);
    if (rc)
        assert_null(user);
    tern_scram_server_free(&s);
}

static void test_cb_policy(void **state) {
    (void)state;
    /* RFC 5802 §6: "y" while -PLUS was offered is a downgrade. */
    expect_first_rc(0, 1, "y,,n=user,r=abc", TERN_E_AUTH);
    expect_first_rc(0, 0, "y,,n=user,r=abc", 0);
    expect_first_rc(0, 1, "n,,n=user,r=abc", 0);
    /* "p=" on a non-PLUS mechanism. */
    expect_first_rc(0, 1, "p=tls-exporter,,n=user,r=abc", TERN_E_AUTH);
    expect_first_rc(0, 0, "p=tls-exporter,,n=user,r=abc", TERN_E_AUTH);
    /* A -PLUS mechanism without "p=". */
    expect_first_rc(1, 1, "n,,n=user,r=abc", TERN_E_AUTH);
    expect_first_rc(1, 1, "y,,n=user,r=abc", TERN_E_AUTH);
    /* tls-unique is parsed (the TLS layer decides whether it is available). */
    expect_first_rc(1, 1, "p=tls-unique,,n=user,r=abc", 0);
    /* Binding types we do not support. */
    expect_first_rc(1, 1, "p=tls-unique-for-telnet,,n=user,r=abc", TERN_E_AUTH);
    expect_first_rc(1, 1, "p=TLS-EXPORTER,,n=user,r=abc", TERN_E_AUTH);
    /* Malformed beats policy. */
    expect_first_rc(1, 1, "p=tls_exporter,,n=user,r=abc", TERN_E_INVAL);
    expect_first_rc(1, 1, "p=,,n=user,r=abc", TERN_E_INVAL);

    /* "y" without -PLUS offered runs to the end (c= is "y,,"). */
    struct tern_scram_creds creds;
    make_creds(&creds, TERN_SCRAM_SHA256, "pencil", "W22ZaJ0SNY7soEsUEjb6gQ==", 4096);
    struct run r = {.hash = TERN_SCRAM_SHA256, .gs2 = "y,,"};
    assert_int_equal(run_exchange(&r, &creds), 0);
    /* Binding data passed to a non-binding exchange is ignored. */
    r.server_cb = exporter;
    r.server_cb_len = sizeof exporter;
    assert_int_equal(run_exchange(&r, &creds), 0);
}

/* ---- authzid ---- */

static void test_authzid(void **state) {
    (void)state;
    const char *user;
    enum tern_cb_type cb;
    struct tern_scram_server *s = tern_scram_server_new(TERN_SCRAM_SHA256, 0, 0);
    assert_int_equal(client_first(s, "n,a=user@example.com,n=user,r=abc", &user, &cb), 0);
    assert_string_equal(tern_scram_server_authzid(s), "user@example.com");
    tern_scram_server_free(&s);

    /* An authzid naming someone else is the caller's business, not ours. */
    s = tern_scram_server_new(TERN_SCRAM_SHA256, 0, 0);
    assert_int_equal(client_first(s, "n,a=a=3Db=2Cc,n=user,r=abc", &user, &cb), 0);
    assert_string_equal(tern_scram_server_authzid(s), "a=b,c");
    tern_scram_server_free(&s);

    /* The gs2-header with authzid is what c= must repeat. */
    struct tern_scram_creds creds;
    make_creds(&creds, TERN_SCRAM_SHA256, "pencil", "W22ZaJ0SNY7soEsUEjb6gQ==", 4096);
    struct run r = {.hash = TERN_SCRAM_SHA256, .gs2 = "n,a=user@example.com,"};
    assert_int_equal(run_exchange(&r, &creds), 0);
    r.plus = 1;
    r.cb_offered = 1;
    r.gs2 = "p=tls-exporter,a=user,";
    r.client_cb = r.server_cb = exporter;
    r.client_cb_len = r.server_cb_len = sizeof exporter;
    assert_int_equal(run_exchange(&r, &creds), 0);

    expect_first_rc(0, 0, "n,a=,n=user,r=abc", TERN_E_INVAL);
    expect_first_rc(0, 0, "n,a=x=2Dy,n=user,r=abc", TERN_E_INVAL);
    expect_first_rc(0, 0, "n,b=x,n=user,r=abc", TERN_E_INVAL);
}

static void test_username_escapes(void **state) {
    (void)state;
    const char *user;
    enum tern_cb_type cb;
    struct tern_scram_server *s = tern_scram_server_new(TERN_SCRAM_SHA1, 0, 0);
    assert_int_equal(client_first(s, "n,,n=a=2Cb=3Dc,r=abc", &user, &cb), 0);
    assert_string_equal(user, "a,b=c");
    tern_scram_server_free(&s);

    s = tern_scram_server_new(TERN_SCRAM_SHA1, 0, 0);
    assert_int_equal(client_first(s, "n,,n=\xc3\xa4lice,r=abc", &user, &cb), 0);
    assert_string_equal(user, "\xc3\xa4lice");
    tern_scram_server_free(&s);
}

/* ---- unknown users ---- */

/* server-first for user name, nonce from the server chosen at random. */
static char *unknown_first(const char *name) {
    char msg[256];
    const char *user, *out;
    size_t len;
    enum tern_cb_type cb;
    struct tern_scram_server *s = tern_scram_server_new(TERN_SCRAM_SHA256, 0, 0);
    snprintf(msg, sizeof msg, "n,,n=%s,r=cnonce", name);
    assert_int_equal(client_first(s, msg, &user, &cb), 0);
    assert_int_equal(tern_scram_server_first(s, NULL, &out, &len), 0);
    char *copy = strdup(out);
    tern_scram_server_free(&s);
    return copy;
}

static void test_unknown_user(void **state) {
    (void)state;
    char *a = unknown_first("ghost");
    char *b = unknown_first("ghost");
    char *c = unknown_first("phantom");

    /* Looks like any other: r=<cnonce><32 chars of base64>,s=<16 bytes>,i=4096 */
    assert_int_equal(strlen(a), strlen("r=cnonce") + 32 + strlen(",s=") + 24 + strlen(",i=4096"));
    assert_memory_equal(a, "r=cnonce", 8);
    const char *salt = strstr(a, ",s=");
    assert_non_null(salt);
    assert_string_equal(salt + 3 + 24, ",i=4096");
    uint8_t raw[32];
    char salt_b64[25];
    memcpy(salt_b64, salt + 3, 24);
    salt_b64[24] = '\0';
    assert_int_equal(b64_decode(salt_b64, raw, sizeof raw), 16);

    /* Same name, same salt (a new salt per try would give it away), new nonce. */
    assert_string_equal(strstr(a, ",s="), strstr(b, ",s="));
    assert_memory_not_equal(a, b, 8 + 32);
    assert_string_not_equal(strstr(a, ",s="), strstr(c, ",s="));

    /* Whatever the client does, final fails with TERN_E_AUTH. */
    struct tern_scram_server *s = tern_scram_server_new(TERN_SCRAM_SHA256, 0, 0);
    const char *user, *out;
    size_t len;
    enum tern_cb_type cb;
    char without[256], proof[128], msg[512];
    assert_int_equal(client_first(s, "n,,n=ghost,r=cnonce", &user, &cb), 0);
    tern__scram_server_set_nonce(s, "snonce");
    assert_int_equal(tern_scram_server_first(s, NULL, &out, &len), 0);
    char sf[256];
    strcpy(sf, out);
    snprintf(without, sizeof without, "c=biws,r=cnoncesnonce");
    client_proof(TERN_SCRAM_SHA256, "pencil", raw, 16, 4096, "n=ghost,r=cnonce", sf, without, proof,
                 sizeof proof);
    snprintf(msg, sizeof msg, "%s,p=%s", without, proof);
    assert_int_equal(server_final(s, msg, NULL, 0, &out), TERN_E_AUTH);
    assert_null(out);
    tern_scram_server_free(&s);

    free(a);
    free(b);
    free(c);
}

/* ---- malformed input ---- */

static void test_malformed_client_first(void **state) {
    (void)state;
    static const char *const bad[] = {
        "",
        "n",
        "n,",
        "n,,",
        "x,,n=user,r=abc",
        "n,n=user,r=abc", /* gs2-header lacks its second ',' */
        "nn,,n=user,r=abc",
        "n,,r=abc",  /* no username */
        "n,,n=user", /* no nonce */
        "n,,n=user,",
        "n,,n=user,r=",          /* empty nonce */
        "n,,n=,r=abc",           /* empty username */
        "n,,n=us=2Xer,r=abc",    /* bad escape */
        "n,,n=us=er,r=abc",      /* bare '=' */
        "n,,n=user=2,r=abc",     /* truncated escape */
        "n,,n=us=2cer,r=abc",    /* escapes are upper case */
        "n,,m=ext,n=user,r=abc", /* reserved-mext */
        "n,,n=user,r=abc,m=ext", /* m in the extensions */
        "n,,n=user,r=abc,",      /* trailing ',' */
        "n,,n=user,r=abc,x",     /* extension without value */
        "n,,n=user,r=abc,x=",    /* extension with empty value */
        "n,,n=user,r=abc,1=x",   /* extension name not ALPHA */
        "n,,n=user,r=a b",       /* nonce not printable */
        "n,,n=user,r=a\x7f",
        "n,,n=user,r=\xc3\xa4",   /* nonce not ASCII */
        "n,,r=abc,n=user",        /* wrong order */
        "n,,n=\xff,r=abc",        /* not UTF-8 */
        "n,,n=us\xc0\xafr,r=abc", /* overlong UTF-8 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_first_rc(0, 0, bad[i], TERN_E_INVAL);

    /* Well-formed extensions other than m are ignored. */
    expect_first_rc(0, 0, "n,,n=user,r=abc,x=1,y=a=b", 0);

    /* A NUL inside the counted message. */
    const char *user;
    enum tern_cb_type cb;
    struct tern_scram_server *s = tern_scram_server_new(TERN_SCRAM_SHA256, 0, 0);
    assert_int_equal(tern_scram_server_client_first(s, "n,,n=u\0x,r=abc", 14, &user, &cb),
                     TERN_E_INVAL);
    tern_scram_server_free(&s);

    /* Overlong: 4097 bytes. */
    char *big = malloc(4098);
    strcpy(big, "n,,n=user,r=");
    memset(big + 12, 'a', 4097 - 12);
    big[4097] = '\0';
    expect_first_rc(0, 0, big, TERN_E_INVAL);
    big[4096] = '\0'; /* exactly 4096 is fine */
    expect_first_rc(0, 0, big, 0);
    free(big);

    /* Out of order. */
    s = tern_scram_server_new(TERN_SCRAM_SHA256, 0, 0);
    const char *out;
    size_t len;
    assert_int_equal(tern_scram_server_first(s, NULL, &out, &len), TERN_E_INVAL);
    tern_scram_server_free(&s);
    s = tern_scram_server_new(TERN_SCRAM_SHA256, 0, 0);
    assert_int_equal(client_first(s, "n,,n=user,r=abc", &user, &cb), 0);
    assert_int_equal(client_first(s, "n,,n=user,r=abc", &user, &cb), TERN_E_INVAL);
    tern_scram_server_free(&s);
}

static void expect_final_rc(const char *msg, int want) {
    struct tern_scram_server *s;
    const char *out;
    int rc = rfc7677(msg, &out, &s);
    if (rc != want)
        fail_msg("client-final \"%s\": %d, wanted %d", msg, rc, want);
    tern_scram_server_free(&s);
}

#define NONCE "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"

static void test_malformed_client_final(void **state) {
    (void)state;
    expect_final_rc("c=biws," NONCE, TERN_E_INVAL);                            /* no proof */
    expect_final_rc("c=biws,p=" RFC7677_PROOF, TERN_E_INVAL);                  /* no nonce */
    expect_final_rc(NONCE ",p=" RFC7677_PROOF, TERN_E_INVAL);                  /* no c= */
    expect_final_rc("c=biw," NONCE ",p=" RFC7677_PROOF, TERN_E_INVAL);         /* bad base64 */
    expect_final_rc("c=biws," NONCE ",p=dHzbZapW", TERN_E_INVAL);              /* short proof */
    expect_final_rc("c=biws," NONCE ",p=" RFC7677_PROOF "x", TERN_E_INVAL);    /* bad base64 */
    expect_final_rc("c=biws," NONCE ",p=" RFC7677_PROOF ",x=y", TERN_E_INVAL); /* after p */
    expect_final_rc("c=biws," NONCE ",m=x,p=" RFC7677_PROOF, TERN_E_INVAL);
    expect_final_rc("c=biws," NONCE ",,p=" RFC7677_PROOF, TERN_E_INVAL);
    expect_final_rc("r=x,c=biws," NONCE ",p=" RFC7677_PROOF, TERN_E_INVAL);
    expect_final_rc("", TERN_E_INVAL);
    expect_final_rc("c=biws," NONCE ",p=\xff", TERN_E_INVAL);

    /* An unknown extension is signed like the rest: accepted by the parser,
     * but the RFC proof was not computed over it. */
    expect_final_rc("c=biws," NONCE ",x=y,p=" RFC7677_PROOF, TERN_E_AUTH);

    char *big = malloc(4200);
    strcpy(big, "c=biws," NONCE ",x=");
    size_t n = strlen(big);
    memset(big + n, 'y', 4100 - n);
    strcpy(big + 4100, ",p=" RFC7677_PROOF);
    expect_final_rc(big, TERN_E_INVAL);
    free(big);

    /* Binding data past any sane size. */
    struct tern_scram_server *s;
    const char *out;
    static const uint8_t huge[513];
    assert_int_equal(rfc7677_cb("c=biws," NONCE ",p=" RFC7677_PROOF, huge, sizeof huge, &out, &s),
                     TERN_E_INVAL);
    tern_scram_server_free(&s);
    /* ...while ordinary binding data is ignored for "n,,". */
    assert_int_equal(rfc7677_cb("c=biws," NONCE ",p=" RFC7677_PROOF, huge, 64, &out, &s), 0);
    assert_string_equal(out, RFC7677_SFINAL);
    tern_scram_server_free(&s);
}

/* ---- key derivation and passwords ---- */

static void test_derive(void **state) {
    (void)state;
    struct tern_scram_keys keys;
    uint8_t salt[16];
    size_t salt_len = b64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", salt, sizeof salt);
    assert_int_equal(tern_scram_derive(TERN_SCRAM_SHA256, "pencil", salt, salt_len, 4096, &keys),
                     0);
    /* The SHA-1 keys fill 20 bytes and leave the rest zero. */
    assert_int_equal(tern_scram_derive(TERN_SCRAM_SHA1, "pencil", salt, salt_len, 4096, &keys), 0);
    static const uint8_t zero[12];
    assert_memory_equal(keys.stored_key + 20, zero, 12);
    assert_memory_equal(keys.server_key + 20, zero, 12);

    assert_int_equal(tern_scram_derive(TERN_SCRAM_SHA256, "pencil", salt, 0, 4096, &keys),
                     TERN_E_INVAL);
    assert_int_equal(tern_scram_derive(TERN_SCRAM_SHA256, "pencil", salt, salt_len, 0, &keys),
                     TERN_E_INVAL);
    assert_int_equal(tern_scram_derive(TERN_SCRAM_SHA256, "", salt, salt_len, 1, &keys),
                     TERN_E_INVAL);
    assert_int_equal(tern_scram_derive(TERN_SCRAM_SHA256, "a\x07", salt, salt_len, 1, &keys),
                     TERN_E_INVAL);
    assert_int_equal(tern_scram_derive((enum tern_scram_hash)7, "pencil", salt, salt_len, 1, &keys),
                     TERN_E_INVAL);
    assert_int_equal(tern_scram_hash_len(TERN_SCRAM_SHA1), 20);
    assert_int_equal(tern_scram_hash_len(TERN_SCRAM_SHA256), 32);
    assert_null(tern_scram_server_new((enum tern_scram_hash)7, 0, 0));
}

static void test_creds_and_check(void **state) {
    (void)state;
    struct tern_scram_creds creds, creds2;
    assert_int_equal(tern_scram_creds_make(&creds, "pencil", 4096), 0);
    assert_int_equal(creds.salt_len, TERN_SCRAM_SALT_LEN);
    assert_int_equal(creds.iterations, 4096);
    assert_int_equal(tern_scram_check_password(&creds, "pencil"), 0);
    assert_int_equal(tern_scram_check_password(&creds, "pencil2"), TERN_E_AUTH);
    assert_int_equal(tern_scram_check_password(&creds, "Pencil"), TERN_E_AUTH);
    assert_int_equal(tern_scram_check_password(&creds, ""), TERN_E_AUTH);
    assert_int_equal(tern_scram_check_password(&creds, "a\x07"), TERN_E_AUTH);

    /* Both hashes match what derive gives for the same salt. */
    struct tern_scram_keys keys;
    for (int h = 0; h < 2; h++) {
        assert_int_equal(tern_scram_derive((enum tern_scram_hash)h, "pencil", creds.salt,
                                           creds.salt_len, 4096, &keys),
                         0);
        assert_memory_equal(&keys, &creds.keys[h], sizeof keys);
    }

    /* Fresh salt each time. */
    assert_int_equal(tern_scram_creds_make(&creds2, "pencil", 4096), 0);
    assert_memory_not_equal(creds.salt, creds2.salt, TERN_SCRAM_SALT_LEN);

    /* SASLprep makes equivalent spellings one password (RFC 4013 §3). */
    assert_int_equal(tern_scram_creds_make(&creds, "I\xc2\xadX", 1), 0);
    assert_int_equal(tern_scram_check_password(&creds, "IX"), 0);
    assert_int_equal(tern_scram_check_password(&creds, "\xe2\x85\xa8"), 0); /* U+2168 */
    assert_int_equal(tern_scram_check_password(&creds, "ix"), TERN_E_AUTH);

    /* And the creds work for a full SCRAM-SHA-1 exchange. */
    assert_int_equal(tern_scram_creds_make(&creds, "pencil", 4096), 0);
    struct run r = {.hash = TERN_SCRAM_SHA1, .gs2 = "n,,"};
    assert_int_equal(run_exchange(&r, &creds), 0);
    r.hash = TERN_SCRAM_SHA256;
    assert_int_equal(run_exchange(&r, &creds), 0);

    assert_int_equal(tern_scram_creds_make(&creds, "", 4096), TERN_E_INVAL);
    assert_int_equal(tern_scram_creds_make(&creds, "\x07", 4096), TERN_E_INVAL);
    assert_int_equal(tern_scram_creds_make(&creds, "pencil", 0), TERN_E_INVAL);
}

static void expect_saslprep(const char *in, const char *want) {
    char *out = (char *)"junk";
    int rc = tern_saslprep(in, &out);
    if (!want) {
        assert_int_equal(rc, TERN_E_INVAL);
        assert_null(out);
        return;
    }
    assert_int_equal(rc, 0);
    assert_string_equal(out, want);
    free(out);
}

static void test_saslprep(void **state) {
    (void)state;
    /* RFC 4013 §3 examples. */
    expect_saslprep("I\xc2\xadX", "IX"); /* SOFT HYPHEN mapped to nothing */
    expect_saslprep("user", "user");
    expect_saslprep("USER", "USER");       /* case preserved */
    expect_saslprep("\xc2\xaa", "a");      /* U+00AA, NFKC */
    expect_saslprep("\xe2\x85\xa8", "IX"); /* U+2168, NFKC */
    expect_saslprep("\x07", NULL);         /* prohibited control */
    expect_saslprep("\xd8\xa7"
                    "1",
                    NULL); /* bidi rule */
    /* Non-ASCII space becomes ASCII space. */
    expect_saslprep("a\xc2\xa0"
                    "b",
                    "a b");
    expect_saslprep("", NULL);
    expect_saslprep("\xc2\xad", NULL); /* prepares to "" */
    expect_saslprep("\xff", NULL);
    expect_saslprep(NULL, NULL);

    char *big = malloc(1026);
    memset(big, 'p', 1025);
    big[1025] = '\0';
    expect_saslprep(big, NULL);
    big[1024] = '\0';
    expect_saslprep(big, big);
    free(big);
}

static void test_random(void **state) {
    (void)state;
    uint8_t a[32] = {0}, b[32] = {0};
    tern_random_bytes(a, sizeof a);
    tern_random_bytes(b, sizeof b);
    assert_memory_not_equal(a, b, sizeof a);
    tern_random_bytes(a, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5802_sha1),
        cmocka_unit_test(test_rfc7677_sha256),
        cmocka_unit_test(test_wrong_proof),
        cmocka_unit_test(test_wrong_nonce),
        cmocka_unit_test(test_wrong_cbind_header),
        cmocka_unit_test(test_cb_plus),
        cmocka_unit_test(test_cb_type_reported),
        cmocka_unit_test(test_cb_policy),
        cmocka_unit_test(test_authzid),
        cmocka_unit_test(test_username_escapes),
        cmocka_unit_test(test_unknown_user),
        cmocka_unit_test(test_malformed_client_first),
        cmocka_unit_test(test_malformed_client_final),
        cmocka_unit_test(test_derive),
        cmocka_unit_test(test_creds_and_check),
        cmocka_unit_test(test_saslprep),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
