/* A self-signed certificate for local development, made on first run. */
#ifndef TERN_SERVER_CERTGEN_H
#define TERN_SERVER_CERTGEN_H

#include <stddef.h>

/**
 * Make sure cert_path and key_path exist: if both files are present nothing
 * happens; otherwise a P-256 key and a self-signed certificate for domain
 * (CN and subjectAltName DNS) valid for 825 days are written, the key with
 * mode 0600. Returns 0 (and *created = 1 if it wrote them) or a negative
 * tern_err with a message in err.
 */
int tern_certgen_ensure(const char *domain, const char *cert_path, const char *key_path,
                        int *created, char *err, size_t errlen);

#endif
