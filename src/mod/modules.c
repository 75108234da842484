/*
 * The compiled-in modules, in the order they see IQs and events. disco
 * comes last: it answers disco#info for everyone, after any module that
 * adds to its own users' answer (push: the content options).
 */
#include "server/module.h"

extern const struct tern_module tern_mod_disco;
extern const struct tern_module tern_mod_roster;
extern const struct tern_module tern_mod_presence;
extern const struct tern_module tern_mod_offline;
extern const struct tern_module tern_mod_push;

const struct tern_module *const tern_modules[] = {
    &tern_mod_roster, &tern_mod_presence, &tern_mod_offline, &tern_mod_push, &tern_mod_disco, NULL,
};
