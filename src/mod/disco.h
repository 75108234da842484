/* Service discovery (XEP-0030): what other modules need of the disco module. */
#ifndef TERN_MOD_DISCO_H
#define TERN_MOD_DISCO_H

struct tern_xml;

#define TERN_NS_DISCO_INFO "http://jabber.org/protocol/disco#info"

/**
 * The result to the disco#info get iq (borrowed): identity and every
 * module's features, for the server (account 0) or an account (1). A new
 * root (refs 1) whose first child is the <query/>, to which a module may
 * add an extended form (XEP-0128) before sending it.
 */
struct tern_xml *tern_disco_info_result(const struct tern_xml *iq, int account);

#endif
