/*
 * The local control socket: ternctl asks a running ternd to do what must
 * also reach connected clients (deleting an account informs its contacts
 * and ends its sessions). A Unix socket in data_dir, mode 0600: only the
 * server's own user can use it. One request line, one answer line.
 */
#ifndef TERN_SERVER_CONTROL_H
#define TERN_SERVER_CONTROL_H

#include <stddef.h>
#include <stdio.h>

struct tern_shard;
struct tern_control;

/** The socket's path for a data directory, into out (ternctl uses it too). */
static inline void tern_control_path(const char *data_dir, char *out, size_t len) {
    snprintf(out, len, "%s/ternd.sock", data_dir);
}

/**
 * Listen on the control socket of shard's data_dir (a stale socket file is
 * replaced). Returns 0 or a negative tern_err with a message in err.
 */
int tern_control_start(struct tern_shard *shard, struct tern_control **out, char *err,
                       size_t errlen);

/** Stop listening and remove the socket file; open requests finish first. */
void tern_control_close(struct tern_control **ctl);

#endif
