/* SCRAM (RFC 5802, RFC 7677): key derivation and the server side exchange. */
#ifndef TERN_XMPP_SCRAM_H
#define TERN_XMPP_SCRAM_H

#include <stddef.h>
#include <stdint.h>

enum tern_scram_hash {
    TERN_SCRAM_SHA1 = 0,
    TERN_SCRAM_SHA256 = 1,
};

#define TERN_SCRAM_MAX_KEY  32 /* bytes of the largest digest we use */
#define TERN_SCRAM_SALT_LEN 16 /* bytes of salt we generate */

/** What the store keeps for one hash: never the password. */
struct tern_scram_keys {
    uint8_t stored_key[TERN_SCRAM_MAX_KEY]; /* H(ClientKey) */
    uint8_t server_key[TERN_SCRAM_MAX_KEY]; /* HMAC(SaltedPassword, "Server Key") */
};

/** An account's credentials: salt, iterations and keys for each hash. */
struct tern_scram_creds {
    uint8_t salt[TERN_SCRAM_SALT_LEN]; /* random salt shared by both hashes */
    size_t salt_len;                   /* bytes of salt used */
    int iterations;                    /* PBKDF2 iteration count */
    struct tern_scram_keys keys[2];    /* indexed by enum tern_scram_hash */
};

/** Digest size in bytes (20 or 32). */
size_t tern_scram_hash_len(enum tern_scram_hash h);

/**
 * Derive creds from a password: SASLprep the password (RFC 4013), draw a
 * random salt, and compute both hashes' keys. TERN_E_INVAL if the password
 * fails SASLprep or is empty.
 */
int tern_scram_creds_make(struct tern_scram_creds *creds, const char *password, int iterations);

/** Derive one hash's keys for a given salt (used by creds_make and tests). */
int tern_scram_derive(enum tern_scram_hash h, const char *password, const uint8_t *salt,
                      size_t salt_len, int iterations, struct tern_scram_keys *out);

/** Check a plaintext password (SASL PLAIN) against creds in constant time: 0 or TERN_E_AUTH. */
int tern_scram_check_password(const struct tern_scram_creds *creds, const char *password);

/** Channel binding types we can offer (RFC 5929, RFC 9266). */
enum tern_cb_type {
    TERN_CB_NONE = 0,
    TERN_CB_TLS_EXPORTER,
    TERN_CB_TLS_SERVER_END_POINT,
    TERN_CB_TLS_UNIQUE, /* RFC 5929 §3: TLS 1.2 and older only (RFC 9266 §3) */
};

struct tern_scram_server;

/**
 * A server-side exchange for one mechanism. plus: the mechanism was a -PLUS
 * variant. cb_offered: channel binding is available on this connection (the
 * -PLUS mechanisms were advertised), which matters for the "y" flag.
 * Returns NULL only if h is not a known hash.
 */
struct tern_scram_server *tern_scram_server_new(enum tern_scram_hash h, int plus, int cb_offered);
/** Free the exchange (secrets wiped) and set *s to NULL; NULL *s is a no-op. */
void tern_scram_server_free(struct tern_scram_server **s);

/**
 * Step 1: parse client-first-message. On success *username points at the
 * decoded, unescaped username (owned by s) and *cb_type says which channel
 * binding the client asked for. TERN_E_INVAL for a malformed message (at most
 * 4096 bytes of UTF-8, bad "=2C"/"=3D" escapes, an "m=" extension);
 * TERN_E_AUTH for a channel-binding mismatch ("y" when we offered -PLUS, "p="
 * on a non-PLUS mechanism, a -PLUS mechanism without "p=", or a cb-name other
 * than tls-exporter and tls-server-end-point). An authzid is not checked here:
 * see tern_scram_server_authzid(). Each step may be called once, in order;
 * after any failure the exchange only fails.
 */
int tern_scram_server_client_first(struct tern_scram_server *s, const char *msg, size_t len,
                                   const char **username, enum tern_cb_type *cb_type);

/**
 * The unescaped authzid ("a=") of client-first-message, owned by s, or NULL if
 * the client sent none. The caller decides whether it names the authenticated
 * user (e.g. equals the username, or is username@our-domain).
 */
const char *tern_scram_server_authzid(const struct tern_scram_server *s);

/**
 * Step 2: with the user's creds (NULL when the user does not exist: a fake
 * salt is derived from the username so the answer does not reveal it),
 * produce server-first-message into *out (owned by s, NUL-terminated).
 */
int tern_scram_server_first(struct tern_scram_server *s, const struct tern_scram_creds *creds,
                            const char **out, size_t *outlen);

/**
 * Step 3: verify client-final-message. cb_data is the channel binding data of
 * the type returned in step 1 (NULL/0 for none). On success *out is the
 * server-final-message ("v=..."). TERN_E_AUTH for a wrong proof (compared in
 * constant time), wrong channel binding or wrong nonce; TERN_E_INVAL if malformed.
 */
int tern_scram_server_final(struct tern_scram_server *s, const char *msg, size_t len,
                            const uint8_t *cb_data, size_t cb_len, const char **out,
                            size_t *outlen);

/** Base64 helpers (standard alphabet, padded). Caller frees. */
char *tern_base64_encode(const uint8_t *in, size_t len);
/** Returns TERN_E_INVAL on bad input; *out (caller frees) is NUL-terminated. */
int tern_base64_decode(const char *in, size_t len, uint8_t **out, size_t *outlen);

/** Cryptographically random bytes (aborts if the RNG fails). */
void tern_random_bytes(void *buf, size_t len);

/**
 * SASLprep (RFC 4013) a string; caller frees *out. TERN_E_INVAL if it holds a
 * prohibited character, is not UTF-8, prepares to "", or is over 1024 bytes.
 */
int tern_saslprep(const char *in, char **out);

#endif
