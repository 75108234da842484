/* Test hooks into the SCRAM server exchange; not for use outside unit tests. */
#ifndef TERN_XMPP_SCRAM_INTERNAL_H
#define TERN_XMPP_SCRAM_INTERNAL_H

#include "xmpp/scram.h"

/**
 * Make the next tern_scram_server_first() use server_nonce (copied; printable
 * ASCII without ',') instead of 24 random bytes, so that a test can replay a
 * published exchange. Call it before tern_scram_server_first().
 */
void tern__scram_server_set_nonce(struct tern_scram_server *s, const char *server_nonce);

#endif
