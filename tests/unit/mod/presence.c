/*
 * Unit tests for src/mod/presence.c: the subscription state machine
 * (tern__sub_transition) against the eight tables of RFC 6121 Appendix A,
 * written out here independently of the code, plus hidden items (Pending
 * In for a contact not in the roster) and pre-approval (§3.4).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/mem.h"
#include "mod/presence.h"
#include "store/store.h"

/* The nine states of RFC 6121 §A.1, as (subscription, Pending Out, Pending In). */
struct state {
    const char *name;
    enum tern_sub sub;
    int ask;
    int pending_in;
};

static const struct state states[] = {
    {"None", TERN_SUB_NONE, 0, 0},    {"None+PO", TERN_SUB_NONE, 1, 0},
    {"None+PI", TERN_SUB_NONE, 0, 1}, {"None+POI", TERN_SUB_NONE, 1, 1},
    {"To", TERN_SUB_TO, 0, 0},        {"To+PI", TERN_SUB_TO, 0, 1},
    {"From", TERN_SUB_FROM, 0, 0},    {"From+PO", TERN_SUB_FROM, 1, 0},
    {"Both", TERN_SUB_BOTH, 0, 0},
};
#define NSTATES (sizeof states / sizeof states[0])

/*
 * One table of Appendix A: for each existing state (in the order above),
 * whether the stanza is routed (outbound) or delivered (inbound), and the
 * new state ("" = no state change, "pre" = pre-approval).
 */
struct table {
    const char *title;
    enum tern__sub_type type;
    int inbound;
    struct {
        int route;
        const char *next;
    } row[NSTATES];
};

static const struct table tables[] = {
    {"A.2.1 outbound subscribe",
     TERN__SUB_SUBSCRIBE,
     0,
     {{1, "None+PO"},
      {1, ""},
      {1, "None+POI"},
      {1, ""},
      {1, ""},
      {1, ""},
      {1, "From+PO"},
      {1, ""},
      {1, ""}}},
    {"A.2.2 outbound unsubscribe",
     TERN__SUB_UNSUBSCRIBE,
     0,
     {{1, ""},
      {1, "None"},
      {1, ""},
      {1, "None+PI"},
      {1, "None"},
      {1, "None+PI"},
      {1, ""},
      {1, "From"},
      {1, "From"}}},
    {"A.2.3 outbound subscribed",
     TERN__SUB_SUBSCRIBED,
     0,
     {{0, "pre"},
      {0, "pre"},
      {1, "From"},
      {1, "From+PO"},
      {0, "pre"},
      {1, "Both"},
      {0, ""},
      {0, ""},
      {0, ""}}},
    {"A.2.4 outbound unsubscribed",
     TERN__SUB_UNSUBSCRIBED,
     0,
     {{0, ""},
      {0, ""},
      {1, "None"},
      {1, "None+PO"},
      {0, ""},
      {1, "To"},
      {1, "None"},
      {1, "None+PO"},
      {1, "To"}}},
    {"A.3.1 inbound subscribe",
     TERN__SUB_SUBSCRIBE,
     1,
     {{1, "None+PI"},
      {1, "None+POI"},
      {0, ""},
      {0, ""},
      {1, "To+PI"},
      {0, ""},
      {0, ""},
      {0, ""},
      {0, ""}}},
    {"A.3.2 inbound unsubscribe",
     TERN__SUB_UNSUBSCRIBE,
     1,
     {{0, ""},
      {0, ""},
      {1, "None"},
      {1, "None+PO"},
      {0, ""},
      {1, "To"},
      {1, "None"},
      {1, "None+PO"},
      {1, "To"}}},
    {"A.3.3 inbound subscribed",
     TERN__SUB_SUBSCRIBED,
     1,
     {{0, ""}, {1, "To"}, {0, ""}, {1, "To+PI"}, {0, ""}, {0, ""}, {0, ""}, {1, "Both"}, {0, ""}}},
    {"A.3.4 inbound unsubscribed",
     TERN__SUB_UNSUBSCRIBED,
     1,
     {{0, ""},
      {1, "None"},
      {0, ""},
      {1, "None+PI"},
      {1, "None"},
      {1, "None+PI"},
      {0, ""},
      {1, "From"},
      {1, "From"}}},
};

static const struct state *state_named(const char *name) {
    for (size_t i = 0; i < NSTATES; i++)
        if (strcmp(states[i].name, name) == 0)
            return &states[i];
    fail_msg("no state %s", name);
    return NULL;
}

static struct tern_roster_item item_in(const struct state *s) {
    struct tern_roster_item it = {0};
    it.jid = tern_strdup("contact@localhost");
    it.sub = s->sub;
    it.ask = s->ask;
    it.pending_in = s->pending_in;
    return it;
}

static void test_appendix_a(void **unused) {
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        const struct table *tb = &tables[t];
        for (size_t i = 0; i < NSTATES; i++) {
            const struct state *from = &states[i];
            struct tern_roster_item it = item_in(from);
            int exists = 1, write = -1;
            unsigned fx = tern__sub_transition(tb->type, tb->inbound, &it, &exists, &write);
            const char *next = tb->row[i].next;
            if (((fx & TERN__FX_ROUTE) != 0) != tb->row[i].route)
                fail_msg("%s, %s: routed/delivered is %d, want %d", tb->title, from->name,
                         (fx & TERN__FX_ROUTE) != 0, tb->row[i].route);
            assert_int_equal(exists, 1);
            if (strcmp(next, "pre") == 0) {
                /* §3.4: the state stays, the item is marked approved */
                if (!it.approved || it.sub != from->sub || it.ask != from->ask ||
                    it.pending_in != from->pending_in || !write)
                    fail_msg("%s, %s: not a pre-approval", tb->title, from->name);
            } else {
                const struct state *want = next[0] ? state_named(next) : from;
                if (it.sub != want->sub || it.ask != want->ask ||
                    it.pending_in != want->pending_in || it.approved)
                    fail_msg("%s, %s: got sub=%d ask=%d pending_in=%d, want %s", tb->title,
                             from->name, (int)it.sub, it.ask, it.pending_in, want->name);
                if (write != (want != from))
                    fail_msg("%s, %s: write=%d but the state %s", tb->title, from->name, write,
                             want != from ? "changed" : "did not change");
            }
            /* the contact gets or loses the user's presence exactly when 'from' flips */
            int had_from = (from->sub & TERN_SUB_FROM) != 0,
                has_from = (it.sub & TERN_SUB_FROM) != 0;
            if (((fx & TERN__FX_GAINED_FROM) != 0) != (!had_from && has_from) ||
                ((fx & TERN__FX_LOST_FROM) != 0) != (had_from && !has_from))
                fail_msg("%s, %s: gained/lost 'from' effects wrong (fx=%u)", tb->title, from->name,
                         fx);
            /* §3.1.3: an inbound subscribe is answered for the user who already said yes */
            int autoreply = tb->inbound && tb->type == TERN__SUB_SUBSCRIBE && had_from;
            if (((fx & TERN__FX_AUTOREPLY) != 0) != autoreply)
                fail_msg("%s, %s: auto-reply is %d, want %d", tb->title, from->name,
                         (fx & TERN__FX_AUTOREPLY) != 0, autoreply);
            tern_roster_item_free(&it);
        }
    }
}

/* No item at all: what each stanza does to a contact the user never had. */
static void test_no_item(void **unused) {
    for (int in = 0; in <= 1; in++) {
        for (int type = TERN__SUB_SUBSCRIBE; type <= TERN__SUB_UNSUBSCRIBED; type++) {
            struct tern_roster_item it = {0};
            it.jid = tern_strdup("stranger@localhost");
            int exists = 0, write = -1;
            unsigned fx = tern__sub_transition((enum tern__sub_type)type, in, &it, &exists, &write);
            if (!in && type == TERN__SUB_SUBSCRIBE) {
                /* §3.1.2: the contact joins the roster, None + Pending Out, routed */
                assert_true(exists && write && it.ask && !it.hidden);
                assert_int_equal(fx, TERN__FX_ROUTE);
            } else if (!in && type == TERN__SUB_SUBSCRIBED) {
                /* §3.4: a pre-approval creates a visible item */
                assert_true(exists && write && it.approved && !it.hidden);
                assert_int_equal(fx, 0);
            } else if (in && type == TERN__SUB_SUBSCRIBE) {
                /* §3.1.3: remembered as a hidden Pending In item and delivered */
                assert_true(exists && write && it.pending_in && it.hidden);
                assert_int_equal(it.sub, TERN_SUB_NONE);
                assert_int_equal(fx, TERN__FX_ROUTE);
            } else {
                assert_false(exists);
                assert_false(write);
                /* A.2.2 routes an unsubscribe whatever the state */
                assert_int_equal(fx, !in && type == TERN__SUB_UNSUBSCRIBE ? TERN__FX_ROUTE : 0);
            }
            tern_roster_item_free(&it);
        }
    }
}

static struct tern_roster_item hidden_pending_in(void) {
    struct tern_roster_item it = {0};
    it.jid = tern_strdup("asker@localhost");
    it.pending_in = 1;
    it.hidden = 1;
    return it;
}

static void test_hidden_item_goes_when_empty(void **unused) {
    /* the asker withdraws, or the user declines: nothing left to remember */
    const struct {
        enum tern__sub_type type;
        int inbound;
    } cases[] = {{TERN__SUB_UNSUBSCRIBE, 1}, {TERN__SUB_UNSUBSCRIBED, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tern_roster_item it = hidden_pending_in();
        int exists = 1, write = 0;
        unsigned fx = tern__sub_transition(cases[i].type, cases[i].inbound, &it, &exists, &write);
        assert_false(exists);
        assert_true(write);
        assert_int_equal(fx, TERN__FX_ROUTE);
        tern_roster_item_free(&it);
    }
}

static void test_hidden_item_joins_roster(void **unused) {
    /* approving the request: the contact appears with 'from' */
    struct tern_roster_item it = hidden_pending_in();
    int exists = 1, write = 0;
    unsigned fx = tern__sub_transition(TERN__SUB_SUBSCRIBED, 0, &it, &exists, &write);
    assert_true(exists && write);
    assert_false(it.hidden);
    assert_false(it.pending_in);
    assert_int_equal(it.sub, TERN_SUB_FROM);
    assert_int_equal(fx, TERN__FX_ROUTE | TERN__FX_GAINED_FROM);
    tern_roster_item_free(&it);
    /* subscribing back: the contact appears, None + Pending Out/In */
    it = hidden_pending_in();
    fx = tern__sub_transition(TERN__SUB_SUBSCRIBE, 0, &it, &exists, &write);
    assert_true(exists && write);
    assert_false(it.hidden);
    assert_true(it.ask && it.pending_in);
    tern_roster_item_free(&it);
    /* a second request while one is pending: not delivered again (A.3.1) */
    it = hidden_pending_in();
    fx = tern__sub_transition(TERN__SUB_SUBSCRIBE, 1, &it, &exists, &write);
    assert_true(exists);
    assert_false(write);
    assert_int_equal(fx, 0);
    tern_roster_item_free(&it);
}

static void test_preapproval(void **unused) {
    /* §3.4.1: the user pre-approves a contact that is in the roster with 'to' */
    struct tern_roster_item it = item_in(state_named("To"));
    int exists = 1, write = 0;
    unsigned fx = tern__sub_transition(TERN__SUB_SUBSCRIBED, 0, &it, &exists, &write);
    assert_true(it.approved && write);
    assert_int_equal(fx, 0);
    /* pre-approving twice changes nothing */
    fx = tern__sub_transition(TERN__SUB_SUBSCRIBED, 0, &it, &exists, &write);
    assert_false(write);
    /* §3.4.2: the contact's request is approved for the user, not delivered */
    fx = tern__sub_transition(TERN__SUB_SUBSCRIBE, 1, &it, &exists, &write);
    assert_true(write);
    assert_int_equal(fx, TERN__FX_AUTOREPLY | TERN__FX_GAINED_FROM);
    assert_int_equal(it.sub, TERN_SUB_BOTH);
    assert_false(it.approved);
    assert_false(it.pending_in);
    tern_roster_item_free(&it);

    /* §3.4: 'unsubscribed' cancels a pre-approval, and is not routed */
    it = item_in(state_named("None"));
    it.approved = 1;
    fx = tern__sub_transition(TERN__SUB_UNSUBSCRIBED, 0, &it, &exists, &write);
    assert_true(write);
    assert_false(it.approved);
    assert_int_equal(fx, 0);
    assert_true(exists);
    /* and the next request is delivered as usual */
    fx = tern__sub_transition(TERN__SUB_SUBSCRIBE, 1, &it, &exists, &write);
    assert_int_equal(fx, TERN__FX_ROUTE);
    assert_true(it.pending_in);
    assert_int_equal(it.sub, TERN_SUB_NONE);
    tern_roster_item_free(&it);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appendix_a),
        cmocka_unit_test(test_no_item),
        cmocka_unit_test(test_hidden_item_goes_when_empty),
        cmocka_unit_test(test_hidden_item_joins_roster),
        cmocka_unit_test(test_preapproval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
