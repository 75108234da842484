/*
 * What ternctl accepts as an account: the username preparation and the
 * password rules, the same for adduser, passwd and import.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ctl.h"
#include "core/config.h"
#include "core/err.h"
#include "core/mem.h"
#include "xmpp/jid.h"
#include "xmpp/scram.h"
#include "xmpp/utf8.h"

int tern__ctl_prep_user(const char *arg, const struct tern_config *cfg, char **user, char *why,
                        size_t whylen) {
    const char *at = strchr(arg, '@');
    char *local = at ? tern_strndup(arg, (size_t)(at - arg)) : tern_strdup(arg);
    char *domain = NULL;
    int ret = -1;

    *user = NULL;
    if (at) {
        if (strchr(at + 1, '/')) {
            snprintf(why, whylen, "%s: give a localpart or a bare JID (no resource)", arg);
            goto fail;
        }
        if (tern_jid_prep_domain(at + 1, &domain) < 0 || strcmp(domain, cfg->domain) != 0) {
            snprintf(why, whylen, "%s: not a user of this server (domain is %s)", arg, cfg->domain);
            goto fail;
        }
    }
    if (tern_jid_prep_local(local, user) < 0) {
        *user = NULL;
        snprintf(why, whylen,
                 "'%s': not a valid username (it must be a JID localpart, RFC 7622: not empty, "
                 "at most %d bytes, none of the characters \"&'/:<>@ or spaces)",
                 local, TERN_JID_PART_MAX);
        goto fail;
    }
    ret = 0;
fail:
    free(local);
    free(domain);
    return ret;
}

int tern__ctl_check_password(const char *pw, size_t len, char *why, size_t whylen) {
    char *prepped = NULL;

    if (len == 0) {
        snprintf(why, whylen, "empty password refused");
        return -1;
    }
    if (len > TERN__CTL_PASSWORD_MAX) {
        snprintf(why, whylen, "password too long (at most %d bytes)", TERN__CTL_PASSWORD_MAX);
        return -1;
    }
    if (memchr(pw, '\0', len)) {
        snprintf(why, whylen, "password refused: it contains a NUL byte");
        return -1;
    }
    if (tern_utf8_check(pw, len) != 0) {
        snprintf(why, whylen, "password refused: it is not valid UTF-8");
        return -1;
    }
    /* The check tern_scram_creds_make() makes, without its key derivation. */
    if (tern_saslprep(pw, &prepped) < 0) {
        snprintf(why, whylen,
                 "password refused: it contains characters that SASLprep "
                 "(RFC 4013) does not allow");
        return -1;
    }
    tern_memzero(prepped, strlen(prepped));
    free(prepped);
    return 0;
}

void tern__ctl_store_error(const char *what, int rc) {
    if (rc == TERN_E_BUSY)
        fprintf(stderr, "ternctl: %s: the database is locked by another process; try again\n",
                what);
    else
        fprintf(stderr, "ternctl: %s: %s\n", what, tern_strerror(rc));
}
