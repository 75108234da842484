/* Push notifications, server role (XEP-0357): the module tern_mod_push. */
#ifndef TERN_MOD_PUSH_H
#define TERN_MOD_PUSH_H

#include "server/module.h"

struct tern_push_policy;

/** The module (listed in src/mod/modules.c). */
extern const struct tern_module tern_mod_push;

/**
 * Replace the policy that decides what is pushed to whom and what a
 * notification says (push_policy.h); NULL restores the default. The policy
 * is borrowed and must outlive the server. Call it before the loop runs
 * (e.g. from another module's init): it is read on loop threads unguarded.
 */
void tern_push_set_policy(const struct tern_push_policy *policy);

#endif
