#include "server/certgen.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/err.h"
#include "server/tls.h"
#include "xmpp/scram.h"

static int add_ext(X509 *cert, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static int write_pem(const char *path, int mode, int (*writer)(FILE *, void *), void *obj) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return -1;
    }
    int ok = writer(f, obj);
    if (fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

static int write_key(FILE *f, void *key) {
    return PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
}

static int write_cert(FILE *f, void *cert) {
    return PEM_write_X509(f, cert);
}

int tern_certgen_ensure(const char *domain, const char *cert_path, const char *key_path,
                        int *created, char *err, size_t errlen) {
    *created = 0;
    if (access(cert_path, R_OK) == 0 && access(key_path, R_OK) == 0)
        return 0;

    int rc = TERN_E_TLS;
    X509 *cert = NULL;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (!key) {
        snprintf(err, errlen, "cannot generate a P-256 key: %s", tern_tls_last_error());
        return TERN_E_TLS;
    }
    cert = X509_new();
    if (!cert)
        goto fail_ssl;
    X509_set_version(cert, 2);
    unsigned char serial[16];
    tern_random_bytes(serial, sizeof serial);
    serial[0] &= 0x7f; /* positive */
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert))) {
        BN_free(bn);
        goto fail_ssl;
    }
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 825L * 24 * 3600);
    X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)domain, -1, -1, 0);
    X509_set_issuer_name(cert, name);
    char san[1100];
    snprintf(san, sizeof san, "DNS:%s", domain);
    if (add_ext(cert, NID_subject_alt_name, san) ||
        add_ext(cert, NID_basic_constraints, "CA:FALSE") ||
        add_ext(cert, NID_key_usage, "critical,digitalSignature") ||
        add_ext(cert, NID_ext_key_usage, "serverAuth"))
        goto fail_ssl;
    if (!X509_sign(cert, key, EVP_sha256()))
        goto fail_ssl;
    if (write_pem(key_path, 0600, write_key, key) != 0) {
        snprintf(err, errlen, "%s: cannot write key: %s", key_path, strerror(errno));
        rc = TERN_E_IO;
        goto out;
    }
    if (write_pem(cert_path, 0644, write_cert, cert) != 0) {
        snprintf(err, errlen, "%s: cannot write certificate: %s", cert_path, strerror(errno));
        rc = TERN_E_IO;
        goto out;
    }
    *created = 1;
    rc = 0;
    goto out;
fail_ssl:
    snprintf(err, errlen, "cannot create a self-signed certificate: %s", tern_tls_last_error());
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}
