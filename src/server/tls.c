/*
 * TLS filter. OpenSSL talks to a custom BIO rather than to the socket or to
 * memory BIOs: reads come straight from the buffer libuv just filled, writes
 * are appended to the connection's output buffer. This way an idle TLS
 * connection holds no buffers of ours, and with SSL_MODE_RELEASE_BUFFERS
 * none of OpenSSL's either.
 */
#include "server/tls.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

struct tern_tls_ctx {
    SSL_CTX *ssl_ctx; /* shared by every connection */
};

struct tern_tls {
    SSL *ssl;             /* the session */
    const char *in;       /* ciphertext not yet given to OpenSSL (borrowed) */
    size_t in_len;        /* bytes at in */
    struct tern_buf *out; /* where ciphertext goes (borrowed) */
    int write_failed;     /* out hit its ceiling */
};

static BIO_METHOD *bio_method;

static int bio_write(BIO *b, const char *data, int len) {
    struct tern_tls *tls = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (tern_buf_add(tls->out, data, (size_t)len) != 0) {
        tls->write_failed = 1;
        return -1;
    }
    return len;
}

static int bio_read(BIO *b, char *data, int len) {
    struct tern_tls *tls = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (tls->in_len == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = (size_t)len < tls->in_len ? (size_t)len : tls->in_len;
    memcpy(data, tls->in, n);
    tls->in += n;
    tls->in_len -= n;
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_PENDING: {
        struct tern_tls *tls = BIO_get_data(b);
        return tls ? (long)tls->in_len : 0;
    }
    case BIO_CTRL_WPENDING: return 0;
    default: return 0;
    }
}

static int bio_create(BIO *b) {
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *method(void) {
    if (!bio_method) {
        bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tern");
        BIO_meth_set_write(bio_method, bio_write);
        BIO_meth_set_read(bio_method, bio_read);
        BIO_meth_set_ctrl(bio_method, bio_ctrl);
        BIO_meth_set_create(bio_method, bio_create);
    }
    return bio_method;
}

const char *tern_tls_last_error(void) {
    static _Thread_local char msg[256];
    unsigned long e = ERR_peek_last_error();
    if (!e)
        return "no OpenSSL error recorded";
    ERR_error_string_n(e, msg, sizeof msg);
    ERR_clear_error();
    return msg;
}

/* XEP-0368: a direct TLS client may ask for ALPN "xmpp-client"; anything else
 * is not refused (many clients send no ALPN at all). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
    for (unsigned int i = 0; i < inlen;) {
        unsigned int n = in[i];
        if (i + 1 + n > inlen)
            break;
        if (n == 11 && memcmp(in + i + 1, "xmpp-client", 11) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

int tern_tls_ctx_new(const char *cert_path, const char *key_path, struct tern_tls_ctx **out,
                     char *err, size_t errlen) {
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());
    if (!c) {
        snprintf(err, errlen, "cannot create TLS context: %s", tern_tls_last_error());
        return TERN_E_TLS;
    }
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Tickets would let a client resume; sessions are cheap to redo and
     * tickets need key rotation we do not have yet. */
    SSL_CTX_set_num_tickets(c, 0);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_use_certificate_chain_file(c, cert_path) != 1) {
        snprintf(err, errlen, "%s: cannot load certificate chain: %s", cert_path,
                 tern_tls_last_error());
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(c, key_path, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "%s: cannot load private key: %s", key_path, tern_tls_last_error());
        goto fail;
    }
    if (SSL_CTX_check_private_key(c) != 1) {
        snprintf(err, errlen, "%s does not match the certificate in %s", key_path, cert_path);
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(c, alpn_select, NULL);
    *out = tern_calloc(1, sizeof **out);
    (*out)->ssl_ctx = c;
    return 0;
fail:
    SSL_CTX_free(c);
    return TERN_E_TLS;
}

void tern_tls_ctx_free(struct tern_tls_ctx **ctx) {
    if (!*ctx)
        return;
    SSL_CTX_free((*ctx)->ssl_ctx);
    free(*ctx);
    *ctx = NULL;
}

struct tern_tls *tern_tls_new(struct tern_tls_ctx *ctx, struct tern_buf *out) {
    struct tern_tls *tls = tern_calloc(1, sizeof *tls);
    tls->out = out;
    tls->ssl = SSL_new(ctx->ssl_ctx);
    if (!tls->ssl) {
        tern_error("tls", "SSL_new failed: %s", tern_tls_last_error());
        abort();
    }
    BIO *b = BIO_new(method());
    BIO_set_data(b, tls);
    SSL_set_bio(tls->ssl, b, b);
    SSL_set_accept_state(tls->ssl);
    return tls;
}

void tern_tls_free(struct tern_tls **tls) {
    if (!*tls)
        return;
    SSL_free((*tls)->ssl);
    free(*tls);
    *tls = NULL;
}

int tern_tls_input(struct tern_tls *tls, const char *cipher, size_t len,
                   int (*plain)(void *ud, const char *data, size_t len), void *ud) {
    char buf[16384];
    tls->in = cipher;
    tls->in_len = len;
    for (;;) {
        ERR_clear_error();
        int n = SSL_read(tls->ssl, buf, sizeof buf);
        if (n > 0) {
            int rc = plain(ud, buf, (size_t)n);
            if (rc) {
                tls->in = NULL;
                tls->in_len = 0;
                return rc;
            }
            continue;
        }
        int e = SSL_get_error(tls->ssl, n);
        tls->in = NULL;
        if (e == SSL_ERROR_WANT_READ && !tls->write_failed) {
            tls->in_len = 0;
            return 0;
        }
        tls->in_len = 0;
        if (e == SSL_ERROR_ZERO_RETURN)
            return TERN_E_CLOSED;
        return TERN_E_TLS;
    }
}

int tern_tls_write(struct tern_tls *tls, const char *data, size_t len) {
    if (len == 0)
        return 0;
    ERR_clear_error();
    int n = SSL_write(tls->ssl, data, (int)len);
    if (n <= 0 || tls->write_failed)
        return TERN_E_TLS;
    return 0;
}

void tern_tls_shutdown(struct tern_tls *tls) {
    if (SSL_is_init_finished(tls->ssl))
        SSL_shutdown(tls->ssl);
}

int tern_tls_established(const struct tern_tls *tls) {
    return SSL_is_init_finished(tls->ssl);
}

const char *tern_tls_version(const struct tern_tls *tls) {
    return SSL_get_version(tls->ssl);
}

int tern_tls_is_v13(const struct tern_tls *tls) {
    return SSL_version(tls->ssl) == TLS1_3_VERSION;
}

int tern_tls_channel_binding(struct tern_tls *tls, enum tern_cb_type type, uint8_t *out,
                             size_t *len) {
    if (!SSL_is_init_finished(tls->ssl))
        return TERN_E_INVAL;
    if (type == TERN_CB_TLS_EXPORTER) {
        /* RFC 9266 §2: 32 bytes, label EXPORTER-Channel-Binding, no context;
         * only defined for TLS 1.3 here. */
        static const char label[] = "EXPORTER-Channel-Binding";
        if (!tern_tls_is_v13(tls) || *len < 32)
            return TERN_E_INVAL;
        if (SSL_export_keying_material(tls->ssl, out, 32, label, sizeof label - 1, NULL, 0, 0) != 1)
            return TERN_E_INVAL;
        *len = 32;
        return 0;
    }
    if (type == TERN_CB_TLS_UNIQUE) {
        /* RFC 5929 §3.1: the first Finished message of the latest handshake:
         * the client's in a full handshake (we never resume). Undefined for
         * TLS 1.3 (RFC 9266 §3), so not offered there. */
        if (tern_tls_is_v13(tls) || SSL_session_reused(tls->ssl))
            return TERN_E_INVAL;
        size_t n = SSL_get_peer_finished(tls->ssl, out, *len);
        if (n == 0 || n > *len)
            return TERN_E_INVAL;
        *len = n;
        return 0;
    }
    if (type == TERN_CB_TLS_SERVER_END_POINT) {
        /* RFC 5929 §4.1: hash of our certificate with its signature's hash,
         * SHA-256 where that is MD5 or SHA-1. */
        X509 *cert = SSL_get_certificate(tls->ssl);
        if (!cert)
            return TERN_E_INVAL;
        int md_nid = NID_undef;
        if (!X509_get_signature_info(cert, &md_nid, NULL, NULL, NULL))
            return TERN_E_INVAL;
        const EVP_MD *md = NULL;
        if (md_nid == NID_md5 || md_nid == NID_sha1 || md_nid == NID_undef)
            md = EVP_sha256();
        else
            md = EVP_get_digestbynid(md_nid);
        if (!md)
            return TERN_E_INVAL;
        unsigned int n = 0;
        if ((size_t)EVP_MD_get_size(md) > *len || !X509_digest(cert, md, out, &n))
            return TERN_E_INVAL;
        *len = n;
        return 0;
    }
    return TERN_E_INVAL;
}
