/* Account deletion as one unit of store work, shared by ternd and ternctl. */
#include "store/store.h"

#include <stdlib.h>

#include "core/err.h"
#include "core/mem.h"

int tern_store_account_purge(struct tern_store_backend *b, const char *user, const char *bare,
                             char ***holders, uint64_t **versions, size_t *n) {
    *holders = NULL;
    *versions = NULL;
    *n = 0;
    struct tern_scram_creds creds;
    int rc = b->ops->account_get(b, user, &creds);
    tern_memzero(&creds, sizeof creds);
    if (rc)
        return rc;
    char **users = NULL;
    size_t count = 0;
    rc = b->ops->roster_holders(b, bare, &users, &count);
    if (rc)
        return rc;
    uint64_t *vers = tern_calloc(count ? count : 1, sizeof *vers);
    for (size_t i = 0; i < count; i++) {
        rc = b->ops->roster_del(b, users[i], bare, &vers[i]);
        if (rc && rc != TERN_E_NOTFOUND)
            goto fail;
    }
    /* The account's own roster, offline messages and keys go with it (cascade). */
    rc = b->ops->account_delete(b, user);
    if (rc)
        goto fail;
    *holders = users;
    *versions = vers;
    *n = count;
    return 0;
fail:
    tern_store_free_list(users, count);
    free(vers);
    return rc;
}
