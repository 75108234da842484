#include "server/server.h"

#include <stdatomic.h>

static atomic_uint_fast64_t next_uid = 1;

uint64_t tern_server_next_uid(void) {
    return atomic_fetch_add(&next_uid, 1);
}
