/*
 * Client state indication (XEP-0352). While a client says it is inactive,
 * stanzas it would not show the user at once are held: presence (only the
 * latest per sender is kept) and messages that carry nothing but chat states
 * (XEP-0085). Anything else is important: it is sent at once, after
 * everything held, in order. <active/> sends everything held. What counts as
 * important is documented in docs/csi.md.
 */
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "server/c2s_internal.h"
#include "server/shard.h"
#include "server/server.h"
#include "xml/xml.h"

#define NS_CSI        "urn:xmpp:csi:0"
#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"

/* Unimportant: presence, and messages whose children are all chat states. */
static int unimportant(const struct tern_xml *st) {
    if (strcmp(st->name, "presence") == 0)
        return 1;
    if (strcmp(st->name, "message") != 0)
        return 0;
    const char *type = tern_xml_attr(st, "type");
    if (type && strcmp(type, "error") == 0)
        return 0;
    int states = 0;
    for (const struct tern_xml *ch = tern_xml_first_el(st); ch;
         ch = tern_xml_next(ch, NULL, NULL)) {
        if (strcmp(ch->ns, NS_CHATSTATES) != 0)
            return 0;
        states++;
    }
    return states > 0;
}

void tern__csi_flush(struct tern_c2s *c) {
    struct tern_csi *csi = &c->csi;
    struct tern_sm_entry *e = csi->head;
    csi->head = csi->tail = NULL;
    csi->count = 0;
    while (e) {
        struct tern_sm_entry *next = e->next;
        tern__sm_send_take(c, e->stanza);
        free(e);
        e = next;
    }
}

void tern__csi_release(struct tern_c2s *c) {
    struct tern_csi *csi = &c->csi;
    while (csi->head) {
        struct tern_sm_entry *e = csi->head;
        csi->head = e->next;
        tern_xml_unref(&e->stanza);
        free(e);
    }
    csi->tail = NULL;
    csi->count = 0;
}

/* A newer presence from the same sender replaces the held one. */
static void replace_presence(struct tern_csi *csi, struct tern_xml *st) {
    const char *from = tern_xml_attr(st, "from");
    if (strcmp(st->name, "presence") != 0 || !from)
        return;
    struct tern_sm_entry **pp = &csi->head, *prev = NULL;
    for (; *pp; prev = *pp, pp = &(*pp)->next) {
        struct tern_xml *held = (*pp)->stanza;
        const char *hf = tern_xml_attr(held, "from");
        if (strcmp(held->name, "presence") == 0 && hf && strcmp(hf, from) == 0) {
            /* drop the old one; the new one goes to the end, keeping order */
            struct tern_sm_entry *e = *pp;
            *pp = e->next;
            if (csi->tail == e)
                csi->tail = prev;
            tern_xml_unref(&e->stanza);
            free(e);
            csi->count--;
            return;
        }
    }
}

void tern__csi_send_take(struct tern_c2s *c, struct tern_xml *st) {
    struct tern_csi *csi = &c->csi;
    if (!csi->inactive || c->closing || c->transport_gone) {
        tern__sm_send_take(c, st);
        return;
    }
    if (!unimportant(st)) {
        tern__csi_flush(c);
        tern__sm_send_take(c, st);
        return;
    }
    replace_presence(csi, st);
    struct tern_sm_entry *e = tern_malloc(sizeof *e);
    e->next = NULL;
    e->stanza = st;
    e->stamp = 0; /* stamped when it joins the SM queue */
    if (csi->tail)
        csi->tail->next = e;
    else
        csi->head = e;
    csi->tail = e;
    if (++csi->count >= c->shard->server->cfg->csi_max_buffer)
        tern__csi_flush(c);
}

void tern__csi_handle(struct tern_c2s *c, struct tern_xml *el) {
    if (!c->shard->server->cfg->csi_enabled)
        return;
    if (strcmp(el->name, "inactive") == 0) {
        c->csi.inactive = 1;
    } else if (strcmp(el->name, "active") == 0) {
        c->csi.inactive = 0;
        tern__csi_flush(c);
    }
}
