/* TLS as a filter between the socket and the XML stream (OpenSSL, no BIO buffers of our own). */
#ifndef TERN_SERVER_TLS_H
#define TERN_SERVER_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "xmpp/scram.h"

struct tern_buf;
struct tern_tls_ctx;
struct tern_tls;

/**
 * Load certificate chain and key (PEM) into a server context: TLS 1.2 and
 * newer only, SSL_MODE_RELEASE_BUFFERS, ALPN "xmpp-client" accepted
 * (XEP-0368). On failure returns a negative tern_err with a message in err.
 */
int tern_tls_ctx_new(const char *cert_path, const char *key_path, struct tern_tls_ctx **out,
                     char *err, size_t errlen);
void tern_tls_ctx_free(struct tern_tls_ctx **ctx);

/**
 * A server-side TLS session. Ciphertext produced by OpenSSL is appended to
 * out (borrowed; the owner flushes it to the socket after each call).
 */
struct tern_tls *tern_tls_new(struct tern_tls_ctx *ctx, struct tern_buf *out);
void tern_tls_free(struct tern_tls **tls);

/**
 * Give received ciphertext and collect the plaintext it yields: plain is
 * called for each decrypted run (zero or more times). Drives the handshake.
 * Returns 0, or TERN_E_TLS on a fatal TLS error (alert already queued in
 * out), or TERN_E_CLOSED when the peer sent close_notify, or the first
 * non-zero value plain returned (processing stops there).
 */
int tern_tls_input(struct tern_tls *tls, const char *cipher, size_t len,
                   int (*plain)(void *ud, const char *data, size_t len), void *ud);

/** Encrypt plaintext into out. Returns 0 or TERN_E_TLS. */
int tern_tls_write(struct tern_tls *tls, const char *data, size_t len);

/** Queue close_notify into out. */
void tern_tls_shutdown(struct tern_tls *tls);

/** Has the handshake completed? */
int tern_tls_established(const struct tern_tls *tls);
/** "TLSv1.3" etc. */
const char *tern_tls_version(const struct tern_tls *tls);
/** Negotiated protocol is TLS 1.3? */
int tern_tls_is_v13(const struct tern_tls *tls);

/**
 * Channel binding data for SCRAM -PLUS: tls-exporter (RFC 9266, TLS 1.3
 * only), tls-unique (RFC 5929 §3, TLS 1.2 only) or tls-server-end-point
 * (RFC 5929 §4.1). Writes up to *len bytes
 * into out and sets *len. Returns TERN_E_INVAL if the type is not available.
 */
int tern_tls_channel_binding(struct tern_tls *tls, enum tern_cb_type type, uint8_t *out,
                             size_t *len);

/** Last OpenSSL error as text, for logs (static buffer per thread). */
const char *tern_tls_last_error(void);

#endif
