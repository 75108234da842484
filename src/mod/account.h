/* Deleting an account while the server runs (ternctl deluser). */
#ifndef TERN_MOD_ACCOUNT_H
#define TERN_MOD_ACCOUNT_H

struct tern_shard;

/** Completion: err 0, TERN_E_NOTFOUND for an unknown user, or another tern_err. */
typedef void (*tern_account_deleted_fn)(void *ud, int err);

/**
 * Delete the local account user (a prepared localpart): its sessions end
 * with <not-authorized/>, it disappears from every roster that held it
 * (those users' interested resources get a roster push, their available
 * resources an unavailable presence from it), and its roster, offline
 * messages and credentials are removed in one transaction. cb runs on the
 * loop thread when the deletion is durable (or failed).
 */
void tern_account_delete(struct tern_shard *shard, const char *user, tern_account_deleted_fn cb,
                         void *ud);

#endif
