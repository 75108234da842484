/*
 * SCRAM (RFC 5802, RFC 7677): key derivation, SASLprep and the server side of
 * the exchange, with channel binding (tls-exporter, RFC 9266, and
 * tls-server-end-point, RFC 5929).
 */
#include "xmpp/scram.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <idn-free.h>
#include <stringprep.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "xmpp/scram_internal.h"
#include "xmpp/utf8.h"

#define MSG_MAX         4096 /* ceiling on each client message */
#define PASSWORD_MAX    1024 /* ceiling on a password before SASLprep */
#define CB_DATA_MAX     512  /* channel binding data is 32..64 bytes in practice */
#define SNONCE_BYTES    24   /* random bytes in our part of the nonce */
#define FAKE_ITERATIONS 4096 /* iteration count shown for unknown users */
#define FAKE_KEY_LEN    32   /* bytes of the per-process key for fake salts */

/* Where an exchange stands; each step is allowed once, in order. */
enum state {
    ST_START,        /* waiting for client-first-message */
    ST_CLIENT_FIRST, /* client-first parsed, server-first not yet made */
    ST_SERVER_FIRST, /* server-first sent, waiting for client-final */
    ST_DONE,         /* authenticated, server-final made */
    ST_FAILED,       /* a step failed; the exchange is dead */
};

struct tern_scram_server {
    enum tern_scram_hash hash;   /* mechanism's hash */
    int plus;                    /* the mechanism is a -PLUS variant */
    int cb_offered;              /* -PLUS was advertised on this connection */
    enum state state;            /* progress of the exchange */
    enum tern_cb_type cb_type;   /* binding the client asked for */
    char *gs2_header;            /* gs2-header as received, e.g. "n,," */
    size_t gs2_len;              /* its length */
    char *username;              /* unescaped username */
    char *authzid;               /* unescaped authzid or NULL */
    char *client_first_bare;     /* client-first-message-bare, for AuthMessage */
    char *nonce;                 /* client nonce, then client + server nonce */
    char *fixed_snonce;          /* test hook: server nonce to use, or NULL */
    char *server_first;          /* server-first-message */
    size_t server_first_len;     /* its length */
    char *server_final;          /* server-final-message */
    size_t server_final_len;     /* its length */
    int unknown_user;            /* creds were NULL: final always fails */
    struct tern_scram_keys keys; /* the user's keys for this hash (wiped on free) */
};

void tern_random_bytes(void *buf, size_t len) {
    unsigned char *p = buf;
    while (len > 0) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        if (RAND_bytes(p, n) != 1) {
            /* Running on without randomness would hand out guessable nonces
             * and salts; there is no safe way to continue. */
            fprintf(stderr, "ternd: RAND_bytes failed, aborting\n");
            abort();
        }
        p += n;
        len -= (size_t)n;
    }
}

int tern_saslprep(const char *in, char **out) {
    char *prepped = NULL;
    int rc = TERN_E_INVAL;

    *out = NULL;
    if (!in)
        return TERN_E_INVAL;
    size_t len = strlen(in);
    if (len > PASSWORD_MAX || tern_utf8_check(in, len) != 0)
        return TERN_E_INVAL;
    /* RFC 4013 with unassigned code points allowed (flags 0): libidn's tables
     * are Unicode 3.2, so forbidding them would refuse newer characters. */
    if (stringprep_profile(in, &prepped, "SASLprep", 0) != STRINGPREP_OK)
        goto fail;
    size_t plen = strlen(prepped);
    if (plen == 0)
        goto fail;
    *out = tern_strndup(prepped, plen);
    rc = 0;

fail:
    if (prepped) {
        tern_memzero(prepped, strlen(prepped));
        idn_free(prepped);
    }
    return rc;
}

size_t tern_scram_hash_len(enum tern_scram_hash h) {
    switch (h) {
    case TERN_SCRAM_SHA1: return 20;
    case TERN_SCRAM_SHA256: return 32;
    }
    return 0;
}

static const EVP_MD *hash_md(enum tern_scram_hash h) {
    return h == TERN_SCRAM_SHA256 ? EVP_sha256() : EVP_sha1();
}

static int valid_hash(enum tern_scram_hash h) {
    return h == TERN_SCRAM_SHA1 || h == TERN_SCRAM_SHA256;
}

/* HMAC(key, data) into out (hash length bytes). 0 or -1. */
static int hmac(enum tern_scram_hash h, const uint8_t *key, size_t keylen, const void *data,
                size_t len, uint8_t *out) {
    unsigned int outlen = 0;
    if (HMAC(hash_md(h), key, (int)keylen, data, len, out, &outlen) == NULL)
        return -1;
    return outlen == tern_scram_hash_len(h) ? 0 : -1;
}

/* H(data) into out (hash length bytes). 0 or -1. */
static int digest(enum tern_scram_hash h, const void *data, size_t len, uint8_t *out) {
    unsigned int outlen = 0;
    if (EVP_Digest(data, len, out, &outlen, hash_md(h), NULL) != 1)
        return -1;
    return outlen == tern_scram_hash_len(h) ? 0 : -1;
}

int tern_scram_derive(enum tern_scram_hash h, const char *password, const uint8_t *salt,
                      size_t salt_len, int iterations, struct tern_scram_keys *out) {
    char *prepped = NULL;
    uint8_t salted[TERN_SCRAM_MAX_KEY];
    uint8_t client_key[TERN_SCRAM_MAX_KEY];
    int rc;

    if (!valid_hash(h) || !salt || salt_len == 0 || salt_len > INT_MAX || iterations < 1)
        return TERN_E_INVAL;
    rc = tern_saslprep(password, &prepped);
    if (rc)
        return rc;

    size_t hl = tern_scram_hash_len(h);
    rc = TERN_E_INVAL;
    memset(out, 0, sizeof *out);
    /* RFC 5802 §3: SaltedPassword := Hi(Normalize(password), salt, i), and Hi
     * is PBKDF2 with HMAC as the PRF and one block of output. */
    if (PKCS5_PBKDF2_HMAC(prepped, (int)strlen(prepped), salt, (int)salt_len, iterations,
                          hash_md(h), (int)hl, salted) != 1)
        goto fail;
    if (hmac(h, salted, hl, "Client Key", 10, client_key) != 0)
        goto fail;
    if (digest(h, client_key, hl, out->stored_key) != 0)
        goto fail;
    if (hmac(h, salted, hl, "Server Key", 10, out->server_key) != 0)
        goto fail;
    rc = 0;

fail:
    if (rc)
        tern_memzero(out, sizeof *out);
    tern_memzero(salted, sizeof salted);
    tern_memzero(client_key, sizeof client_key);
    tern_memzero(prepped, strlen(prepped));
    free(prepped);
    return rc;
}

int tern_scram_creds_make(struct tern_scram_creds *creds, const char *password, int iterations) {
    int rc;

    memset(creds, 0, sizeof *creds);
    if (iterations < 1)
        return TERN_E_INVAL;
    tern_random_bytes(creds->salt, TERN_SCRAM_SALT_LEN);
    creds->salt_len = TERN_SCRAM_SALT_LEN;
    creds->iterations = iterations;
    rc = tern_scram_derive(TERN_SCRAM_SHA1, password, creds->salt, creds->salt_len, iterations,
                           &creds->keys[TERN_SCRAM_SHA1]);
    if (rc)
        goto fail;
    rc = tern_scram_derive(TERN_SCRAM_SHA256, password, creds->salt, creds->salt_len, iterations,
                           &creds->keys[TERN_SCRAM_SHA256]);
    if (rc)
        goto fail;
    return 0;

fail:
    tern_memzero(creds, sizeof *creds);
    return rc;
}

int tern_scram_check_password(const struct tern_scram_creds *creds, const char *password) {
    struct tern_scram_keys keys;
    int rc = TERN_E_AUTH;

    if (creds->salt_len > TERN_SCRAM_SALT_LEN)
        return TERN_E_AUTH;
    if (tern_scram_derive(TERN_SCRAM_SHA256, password, creds->salt, creds->salt_len,
                          creds->iterations, &keys) != 0)
        return TERN_E_AUTH;
    if (CRYPTO_memcmp(keys.stored_key, creds->keys[TERN_SCRAM_SHA256].stored_key,
                      tern_scram_hash_len(TERN_SCRAM_SHA256)) == 0)
        rc = 0;
    tern_memzero(&keys, sizeof keys);
    return rc;
}

/* ---- the server exchange ---- */

/* Per-process key for deriving fake salts, drawn once. */
static uint8_t fake_key[FAKE_KEY_LEN];
static pthread_once_t fake_key_once = PTHREAD_ONCE_INIT;

static void fake_key_init(void) {
    tern_random_bytes(fake_key, sizeof fake_key);
}

struct tern_scram_server *tern_scram_server_new(enum tern_scram_hash h, int plus, int cb_offered) {
    if (!valid_hash(h))
        return NULL;
    struct tern_scram_server *s = tern_calloc(1, sizeof *s);
    s->hash = h;
    s->plus = plus != 0;
    s->cb_offered = cb_offered != 0;
    s->state = ST_START;
    s->cb_type = TERN_CB_NONE;
    return s;
}

void tern_scram_server_free(struct tern_scram_server **sp) {
    struct tern_scram_server *s = *sp;
    if (!s)
        return;
    free(s->gs2_header);
    free(s->username);
    free(s->authzid);
    free(s->client_first_bare);
    free(s->nonce);
    free(s->fixed_snonce);
    free(s->server_first);
    free(s->server_final);
    tern_memzero(s, sizeof *s);
    free(s);
    *sp = NULL;
}

const char *tern_scram_server_authzid(const struct tern_scram_server *s) {
    return s->authzid;
}

void tern__scram_server_set_nonce(struct tern_scram_server *s, const char *server_nonce) {
    free(s->fixed_snonce);
    s->fixed_snonce = tern_strdup(server_nonce);
}

/* A message is at most MSG_MAX bytes of UTF-8 without NULs. */
static int check_msg(const char *msg, size_t len) {
    if (!msg || len == 0 || len > MSG_MAX)
        return TERN_E_INVAL;
    return tern_utf8_check(msg, len);
}

/* Does [p, end) start with the two bytes "<c>="? */
static int has_attr(const char *p, const char *end, char c) {
    return end - p >= 2 && p[0] == c && p[1] == '=';
}

/* End of the current field: the next ',' or end. */
static const char *field_end(const char *p, const char *end) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    return comma ? comma : end;
}

/*
 * RFC 5802 §5.1 saslname: "=2C" and "=3D" stand for ',' and '='; any other
 * '=' fails the exchange. [p, end) holds no ',' (the caller split at it).
 */
static int unescape_saslname(const char *p, const char *end, char **out) {
    *out = NULL;
    if (p == end)
        return TERN_E_INVAL;
    char *buf = tern_malloc((size_t)(end - p) + 1);
    char *o = buf;
    while (p < end) {
        if (*p != '=') {
            *o++ = *p++;
            continue;
        }
        if (end - p >= 3 && p[1] == '2' && p[2] == 'C') {
            *o++ = ',';
        } else if (end - p >= 3 && p[1] == '3' && p[2] == 'D') {
            *o++ = '=';
        } else {
            free(buf);
            return TERN_E_INVAL;
        }
        p += 3;
    }
    *o = '\0';
    *out = buf;
    return 0;
}

/* RFC 5802 §7 printable: %x21-2B / %x2D-7E, at least one. */
static int check_printable(const char *p, const char *end) {
    if (p == end)
        return TERN_E_INVAL;
    for (; p < end; p++) {
        if (*p < 0x21 || *p > 0x7E || *p == ',')
            return TERN_E_INVAL;
    }
    return 0;
}

/*
 * Skip optional extensions (",x=value" repeated) up to end or up to the
 * attribute stop (0 for none), which is left unconsumed. RFC 5802 §5.1:
 * "m" is reserved and MUST fail the exchange; others we do not know are ignored.
 */
static int skip_extensions(const char **pp, const char *end, char stop) {
    const char *p = *pp;
    while (p < end) {
        if (*p != ',')
            return TERN_E_INVAL;
        p++;
        if (stop && has_attr(p, end, stop))
            break;
        int alpha = p < end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'));
        if (!alpha || !has_attr(p, end, *p) || *p == 'm')
            return TERN_E_INVAL;
        const char *fe = field_end(p, end);
        if (fe - p < 3) /* value = 1*value-char */
            return TERN_E_INVAL;
        p = fe;
    }
    *pp = p;
    return 0;
}

/* RFC 5056 §7 cb-name: 1*(ALPHA / DIGIT / "." / "-"). */
static int check_cb_name(const char *p, const char *end) {
    if (p == end)
        return TERN_E_INVAL;
    for (; p < end; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-';
        if (!ok)
            return TERN_E_INVAL;
    }
    return 0;
}

static int cb_name_type(const char *p, size_t len, enum tern_cb_type *type) {
    if (len == strlen("tls-exporter") && memcmp(p, "tls-exporter", len) == 0) {
        *type = TERN_CB_TLS_EXPORTER;
        return 0;
    }
    if (len == strlen("tls-server-end-point") && memcmp(p, "tls-server-end-point", len) == 0) {
        *type = TERN_CB_TLS_SERVER_END_POINT;
        return 0;
    }
    if (len == strlen("tls-unique") && memcmp(p, "tls-unique", len) == 0) {
        /* RFC 5929 §3; whether the connection offers it (TLS 1.2 only) is
         * the caller's check when it asks the TLS layer for the data. */
        *type = TERN_CB_TLS_UNIQUE;
        return 0;
    }
    return TERN_E_AUTH;
}

int tern_scram_server_client_first(struct tern_scram_server *s, const char *msg, size_t len,
                                   const char **username, enum tern_cb_type *cb_type) {
    const char *end = msg + len;
    const char *p = msg;
    const char *cb_name = NULL;
    size_t cb_name_len = 0;
    char flag;
    int rc = TERN_E_INVAL;

    *username = NULL;
    *cb_type = TERN_CB_NONE;
    if (s->state != ST_START)
        goto fail;
    rc = check_msg(msg, len);
    if (rc)
        goto fail;
    rc = TERN_E_INVAL;

    /* gs2-header = gs2-cbind-flag "," [ authzid ] "," (RFC 5802 §7) */
    if (len >= 2 && (p[0] == 'n' || p[0] == 'y') && p[1] == ',') {
        flag = p[0];
        p += 2;
    } else if (has_attr(p, end, 'p')) {
        flag = 'p';
        cb_name = p + 2;
        p = field_end(cb_name, end);
        cb_name_len = (size_t)(p - cb_name);
        if (p == end || check_cb_name(cb_name, p) != 0)
            goto fail;
        p++;
    } else {
        goto fail;
    }
    if (has_attr(p, end, 'a')) {
        const char *fe = field_end(p + 2, end);
        if (fe == end || unescape_saslname(p + 2, fe, &s->authzid) != 0)
            goto fail;
        p = fe;
    }
    if (p == end || *p != ',')
        goto fail;
    p++;
    s->gs2_len = (size_t)(p - msg);
    s->gs2_header = tern_strndup(msg, s->gs2_len);

    /* client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions] */
    const char *bare = p;
    if (!has_attr(p, end, 'n')) /* also refuses reserved-mext "m=" */
        goto fail;
    const char *fe = field_end(p + 2, end);
    if (fe == end || unescape_saslname(p + 2, fe, &s->username) != 0)
        goto fail;
    p = fe + 1;
    if (!has_attr(p, end, 'r'))
        goto fail;
    fe = field_end(p + 2, end);
    if (check_printable(p + 2, fe) != 0)
        goto fail;
    s->nonce = tern_strndup(p + 2, (size_t)(fe - p - 2));
    p = fe;
    if (skip_extensions(&p, end, 0) != 0)
        goto fail;
    s->client_first_bare = tern_strndup(bare, (size_t)(end - bare));

    /* RFC 5802 §6: the binding flag must agree with the mechanism chosen. */
    rc = TERN_E_AUTH;
    if (flag == 'p') {
        if (!s->plus || cb_name_type(cb_name, cb_name_len, &s->cb_type) != 0)
            goto fail;
    } else {
        /* A -PLUS mechanism without binding is a contradiction; "y" while we
         * advertised -PLUS means someone stripped it from the list. */
        if (s->plus || (flag == 'y' && s->cb_offered))
            goto fail;
    }

    s->state = ST_CLIENT_FIRST;
    *username = s->username;
    *cb_type = s->cb_type;
    return 0;

fail:
    s->state = ST_FAILED;
    s->cb_type = TERN_CB_NONE;
    return rc;
}

/* Fake salt for an unknown user: stable per name within this process. */
static int fake_salt(const char *username, uint8_t *salt) {
    uint8_t mac[32];
    pthread_once(&fake_key_once, fake_key_init);
    if (hmac(TERN_SCRAM_SHA256, fake_key, sizeof fake_key, username, strlen(username), mac) != 0)
        return -1;
    memcpy(salt, mac, TERN_SCRAM_SALT_LEN);
    return 0;
}

int tern_scram_server_first(struct tern_scram_server *s, const struct tern_scram_creds *creds,
                            const char **out, size_t *outlen) {
    uint8_t salt[TERN_SCRAM_SALT_LEN];
    size_t salt_len;
    int iterations;
    char *salt_b64 = NULL;
    char *snonce = NULL;
    struct tern_buf b;
    int rc = TERN_E_INVAL;

    tern_buf_init(&b, MSG_MAX);
    *out = NULL;
    *outlen = 0;
    if (s->state != ST_CLIENT_FIRST)
        goto fail;

    if (creds) {
        if (creds->salt_len == 0 || creds->salt_len > TERN_SCRAM_SALT_LEN || creds->iterations < 1)
            goto fail;
        memcpy(salt, creds->salt, creds->salt_len);
        salt_len = creds->salt_len;
        iterations = creds->iterations;
        s->keys = creds->keys[s->hash];
    } else {
        /* Unknown user: answer exactly as for a real one, with a salt that
         * does not change between attempts, so probing reveals nothing. The
         * keys are random and final fails regardless. */
        if (fake_salt(s->username, salt) != 0)
            goto fail;
        salt_len = TERN_SCRAM_SALT_LEN;
        iterations = FAKE_ITERATIONS;
        tern_random_bytes(&s->keys, sizeof s->keys);
        s->unknown_user = 1;
    }

    if (s->fixed_snonce) {
        snonce = tern_strdup(s->fixed_snonce);
    } else {
        uint8_t raw[SNONCE_BYTES];
        tern_random_bytes(raw, sizeof raw);
        /* base64 output is printable and has no ',' (RFC 5802 §5.1 nonce) */
        snonce = tern_base64_encode(raw, sizeof raw);
    }
    salt_b64 = tern_base64_encode(salt, salt_len);
    if (!snonce || !salt_b64)
        goto fail;

    rc = tern_buf_printf(&b, "%s%s", s->nonce, snonce);
    if (rc)
        goto fail;
    free(s->nonce);
    s->nonce = tern_buf_take(&b);

    tern_buf_init(&b, MSG_MAX);
    rc = tern_buf_printf(&b, "r=%s,s=%s,i=%d", s->nonce, salt_b64, iterations);
    if (rc)
        goto fail;
    s->server_first_len = b.len;
    s->server_first = tern_buf_take(&b);
    free(snonce);
    free(salt_b64);
    s->state = ST_SERVER_FIRST;
    *out = s->server_first;
    *outlen = s->server_first_len;
    return 0;

fail:
    tern_buf_free(&b);
    free(snonce);
    free(salt_b64);
    s->state = ST_FAILED;
    return rc ? rc : TERN_E_INVAL;
}

/* c= must carry gs2-header followed by the binding data (RFC 5802 §7 cbind-input). */
static int check_cbind(const struct tern_scram_server *s, const uint8_t *got, size_t got_len,
                       const uint8_t *cb_data, size_t cb_len) {
    size_t want_len = s->gs2_len;
    if (s->cb_type != TERN_CB_NONE) {
        /* The caller could not get the binding: nothing to check against. */
        if (!cb_data || cb_len == 0)
            return TERN_E_AUTH;
        want_len += cb_len;
    }
    if (got_len != want_len)
        return TERN_E_AUTH;
    int diff = CRYPTO_memcmp(got, s->gs2_header, s->gs2_len);
    if (s->cb_type != TERN_CB_NONE)
        diff |= CRYPTO_memcmp(got + s->gs2_len, cb_data, cb_len);
    return diff ? TERN_E_AUTH : 0;
}

int tern_scram_server_final(struct tern_scram_server *s, const char *msg, size_t len,
                            const uint8_t *cb_data, size_t cb_len, const char **out,
                            size_t *outlen) {
    const char *end = msg + len;
    const char *p = msg;
    uint8_t *cbind = NULL;
    size_t cbind_len = 0;
    uint8_t *proof = NULL;
    size_t proof_len = 0;
    uint8_t signature[TERN_SCRAM_MAX_KEY];
    uint8_t client_key[TERN_SCRAM_MAX_KEY];
    uint8_t stored_key[TERN_SCRAM_MAX_KEY];
    char *v_b64 = NULL;
    struct tern_buf auth;
    struct tern_buf fin;
    size_t hl = tern_scram_hash_len(s->hash);
    int rc = TERN_E_INVAL;

    tern_buf_init(&auth, 3 * MSG_MAX);
    tern_buf_init(&fin, MSG_MAX);
    *out = NULL;
    *outlen = 0;
    if (s->state != ST_SERVER_FIRST)
        goto fail;
    if (check_msg(msg, len) != 0 || cb_len > CB_DATA_MAX)
        goto fail;

    /* client-final-message = channel-binding "," nonce ["," extensions] "," proof */
    if (!has_attr(p, end, 'c'))
        goto fail;
    const char *fe = field_end(p + 2, end);
    if (fe == end || tern_base64_decode(p + 2, (size_t)(fe - p - 2), &cbind, &cbind_len) != 0)
        goto fail;
    p = fe + 1;
    if (!has_attr(p, end, 'r'))
        goto fail;
    const char *nonce = p + 2;
    fe = field_end(nonce, end);
    size_t nonce_len = (size_t)(fe - nonce);
    p = fe;
    if (skip_extensions(&p, end, 'p') != 0 || p == end)
        goto fail;
    /* p is at "p=", just after the ',' that ends client-final-message-without-proof */
    size_t without_proof_len = (size_t)(p - 1 - msg);
    const char *proof_b64 = p + 2;
    if (memchr(proof_b64, ',', (size_t)(end - proof_b64)) != NULL)
        goto fail;
    if (tern_base64_decode(proof_b64, (size_t)(end - proof_b64), &proof, &proof_len) != 0 ||
        proof_len != hl)
        goto fail;

    rc = TERN_E_AUTH;
    if (check_cbind(s, cbind, cbind_len, cb_data, cb_len) != 0)
        goto fail;
    if (nonce_len != strlen(s->nonce) || memcmp(nonce, s->nonce, nonce_len) != 0)
        goto fail;

    /* RFC 5802 §3: AuthMessage := client-first-message-bare + "," +
     * server-first-message + "," + client-final-message-without-proof */
    if (tern_buf_adds(&auth, s->client_first_bare) != 0 || tern_buf_adds(&auth, ",") != 0 ||
        tern_buf_add(&auth, s->server_first, s->server_first_len) != 0 ||
        tern_buf_adds(&auth, ",") != 0 || tern_buf_add(&auth, msg, without_proof_len) != 0)
        goto fail;

    /* ClientKey := ClientProof XOR HMAC(StoredKey, AuthMessage); the proof
     * holds iff H(ClientKey) == StoredKey. */
    if (hmac(s->hash, s->keys.stored_key, hl, auth.data, auth.len, signature) != 0)
        goto fail;
    for (size_t i = 0; i < hl; i++)
        client_key[i] = proof[i] ^ signature[i];
    if (digest(s->hash, client_key, hl, stored_key) != 0)
        goto fail;
    int mismatch = CRYPTO_memcmp(stored_key, s->keys.stored_key, hl) != 0;
    if (mismatch || s->unknown_user)
        goto fail;

    /* ServerSignature := HMAC(ServerKey, AuthMessage) */
    if (hmac(s->hash, s->keys.server_key, hl, auth.data, auth.len, signature) != 0)
        goto fail;
    v_b64 = tern_base64_encode(signature, hl);
    if (!v_b64 || tern_buf_printf(&fin, "v=%s", v_b64) != 0)
        goto fail;
    s->server_final_len = fin.len;
    s->server_final = tern_buf_take(&fin);
    s->state = ST_DONE;
    *out = s->server_final;
    *outlen = s->server_final_len;
    rc = 0;

fail:
    if (rc)
        s->state = ST_FAILED;
    /* Past the exchange the keys are not needed any more. */
    tern_memzero(&s->keys, sizeof s->keys);
    tern_memzero(signature, sizeof signature);
    tern_memzero(client_key, sizeof client_key);
    tern_memzero(stored_key, sizeof stored_key);
    if (proof)
        tern_memzero(proof, proof_len);
    free(proof);
    free(cbind);
    free(v_b64);
    tern_buf_free(&auth);
    tern_buf_free(&fin);
    return rc;
}
