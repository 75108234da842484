"""Presence subscriptions (RFC 6121 section 3) and presence (section 4)."""

import unittest

from harness import NS_STANZAS, q
from test_chat_common import NS_PREAPPROVAL, ChatTestCase, M, is_push, xml


def show_of(el):
    s = el.find('{jabber:client}show')
    return None if s is None else s.text


def status_of(el):
    s = el.find('{jabber:client}status')
    return None if s is None else s.text


class SubscriptionTests(ChatTestCase):

    def test_subscribe_and_approve(self):
        acc_a, acc_b = self.new_user('sa'), self.new_user('sb')
        alice = self.peer(acc_a, 'home', roster=True, available=True)
        bob = self.peer(acc_b, 'work', roster=True, available=True, show='dnd', status='busy')
        alice.presence('subscribe', to=bob.bare, id_='sub-1')
        # 3.1.2: the user's server pushes the item with ask='subscribe'
        it = alice.expect_push(bob.bare)
        self.assertEqual(it.get('ask'), 'subscribe', xml(it))
        self.assertIn(it.get('subscription'), (None, 'none'), xml(it))
        # 3.1.3: bob (available) gets it, stamped with alice's bare JID
        sub = bob.expect(M('presence', type='subscribe'))
        self.assertEqual(sub.get('from'), alice.bare, 'subscribe not stamped with the bare JID: %s' % xml(sub))
        self.assertIn(sub.get('to'), (bob.bare, bob.jid), xml(sub))
        # no roster item for bob yet (pending-in is not a roster state)
        bob.quiet(is_push(alice.bare), 'a roster push for an unanswered subscription request')
        # 3.1.5: bob approves
        bob.presence('subscribed', to=alice.bare)
        it = bob.expect_push(alice.bare)
        self.assertEqual(it.get('subscription'), 'from', xml(it))
        self.assertIsNone(it.get('ask'), xml(it))
        # 3.1.6: alice gets the approval, a push with 'to', then bob's presence
        it = alice.expect_push(bob.bare)
        self.assertEqual(it.get('subscription'), 'to', xml(it))
        self.assertIsNone(it.get('ask'), xml(it))
        subd = alice.expect(M('presence', type='subscribed', frm=bob.bare))
        avail = alice.expect(M('presence', type='available', frm=bob.jid),
                             what="bob's current presence after the approval")
        self.assertEqual(show_of(avail), 'dnd', xml(avail))
        self.assertEqual(status_of(avail), 'busy', xml(avail))
        self.assertLess(alice.seen.index(subd), alice.seen.index(avail),
                        "bob's presence arrived before the subscribed")
        # and the stored rosters agree
        self.assertEqual(alice.roster()[bob.bare].get('subscription'), 'to')
        self.assertEqual(bob.roster()[alice.bare].get('subscription'), 'from')
        # alice is not subscribed to by bob: bob gets no presence from alice
        alice.presence(show='away')
        bob.quiet(M('presence', frm=alice.jid), "alice's presence (bob has only 'from')")

    def test_subscribe_delivered_to_every_available_resource(self):
        acc_a, acc_b = self.new_user('va'), self.new_user('vb')
        alice = self.peer(acc_a, 'a', roster=True, available=True)
        bobs = [self.peer(acc_b, 'b%d' % i, roster=True, available=True, priority=p)
                for i, p in ((1, 5), (2, 0), (3, -1))]
        idle = self.peer(acc_b, 'idle', roster=True)              # not available
        alice.presence('subscribe', to=bobs[0].bare)
        for b in bobs:
            el = b.expect(M('presence', type='subscribe'), what='the subscription request on %s' % b.jid)
            self.assertEqual(el.get('from'), alice.bare, xml(el))
        idle.quiet(M('presence', type='subscribe'), 'a subscription request on a resource that is not available')

    def test_mutual_subscription_both(self):
        acc_a, acc_b = self.new_user('ma'), self.new_user('mb')
        alice = self.peer(acc_a, 'a', roster=True, available=True)
        bob = self.peer(acc_b, 'b', roster=True, available=True)
        self.subscribe(alice, bob)
        alice.clear()
        # now bob subscribes back
        bob.presence('subscribe', to=alice.bare)
        it = bob.expect_push(alice.bare)
        self.assertEqual((it.get('subscription'), it.get('ask')), ('from', 'subscribe'), xml(it))
        alice.expect(M('presence', type='subscribe', frm=bob.bare))
        alice.presence('subscribed', to=bob.bare)
        it = alice.expect_push(bob.bare)
        self.assertEqual((it.get('subscription'), it.get('ask')), ('both', None), xml(it))
        it = bob.expect_push(alice.bare)
        self.assertEqual((it.get('subscription'), it.get('ask')), ('both', None), xml(it))
        bob.expect(M('presence', type='subscribed', frm=alice.bare))
        bob.expect(M('presence', type='available', frm=alice.jid), what="alice's presence after approval")
        self.assertEqual(alice.roster()[bob.bare].get('subscription'), 'both')
        self.assertEqual(bob.roster()[alice.bare].get('subscription'), 'both')

    def test_unsubscribe_downgrades_both_sides(self):
        acc_a, acc_b = self.new_user('ua'), self.new_user('ub')
        alice = self.peer(acc_a, 'a', roster=True, available=True)
        bob = self.peer(acc_b, 'b', roster=True, available=True)
        self.befriend(alice, bob)
        # 3.3: alice no longer wants bob's presence
        alice.presence('unsubscribe', to=bob.bare)
        it = alice.expect_push(bob.bare)
        self.assertEqual(it.get('subscription'), 'from', xml(it))
        bob.expect(M('presence', type='unsubscribe', frm=alice.bare))
        it = bob.expect_push(alice.bare)
        self.assertEqual(it.get('subscription'), 'to', xml(it))
        self.assertEqual(alice.roster()[bob.bare].get('subscription'), 'from')
        self.assertEqual(bob.roster()[alice.bare].get('subscription'), 'to')
        # bob's presence no longer reaches alice, alice's still reaches bob
        bob.presence(show='chat')
        alice.quiet(M('presence', type='available', frm=bob.jid), "bob's presence after unsubscribe")
        alice.presence(show='away')
        bob.expect(M('presence', type='available', frm=alice.jid), what="alice's presence (bob still has 'to')")

    def test_unsubscribed_cancels_and_sends_unavailable(self):
        acc_a, acc_b = self.new_user('ca'), self.new_user('cb')
        alice = self.peer(acc_a, 'a', roster=True, available=True)
        bob = self.peer(acc_b, 'b', roster=True, available=True)
        self.befriend(alice, bob)
        # 3.2: bob cancels alice's subscription to his presence
        bob.presence('unsubscribed', to=alice.bare)
        it = bob.expect_push(alice.bare)
        self.assertEqual(it.get('subscription'), 'to', xml(it))
        alice.expect(M('presence', type='unsubscribed', frm=bob.bare))
        it = alice.expect_push(bob.bare)
        self.assertEqual(it.get('subscription'), 'from', xml(it))
        # 3.2.2: bob's server sends unavailable from his available resources
        alice.expect(M('presence', type='unavailable', frm=bob.jid),
                     what="unavailable presence from bob's resource after the cancellation")
        self.assertEqual(alice.roster()[bob.bare].get('subscription'), 'from')
        self.assertEqual(bob.roster()[alice.bare].get('subscription'), 'to')

    def test_roster_remove_cancels_subscriptions_both_ways(self):
        acc_a, acc_b = self.new_user('rma'), self.new_user('rmb')
        alice = self.peer(acc_a, 'a', roster=True, available=True)
        bob = self.peer(acc_b, 'b', roster=True, available=True)
        self.befriend(alice, bob)
        # 2.5.2: removing an item with subscription 'both' makes the user's
        # server send unsubscribe and unsubscribed to the contact
        self.assertResult(alice.roster_set("<item jid='%s' subscription='remove'/>" % bob.bare))
        alice.expect_push(bob.bare, 'remove')
        for t in ('unsubscribe', 'unsubscribed'):
            bob.expect(M('presence', type=t, frm=alice.bare), what='%s from %s after the removal' % (t, alice.bare))
        bob.expect(M('presence', type='unavailable', frm=alice.jid),
                   what="alice's unavailable presence (bob's subscription was cancelled)")
        bob.expect_push(alice.bare, 'none')
        self.assertEqual(bob.roster()[alice.bare].get('subscription'), 'none')
        self.assertNotIn(bob.bare, alice.roster())
        # no presence flows any more
        alice.presence(show='away')
        bob.quiet(M('presence', type='available', frm=alice.jid), 'presence after the subscription was removed')

    def test_subscribe_to_offline_user_delivered_at_initial_presence(self):
        acc_a, acc_c = self.new_user('oa'), self.new_user('oc')
        alice = self.peer(acc_a, 'a', roster=True, available=True)
        alice.presence('subscribe', to=acc_c[0] + '@localhost')
        it = alice.expect_push(acc_c[0] + '@localhost')
        self.assertEqual(it.get('ask'), 'subscribe', xml(it))
        # carol logs in later: the request is delivered once she is available
        carol = self.peer(acc_c, 'c', roster=True)
        carol.available()
        sub = carol.expect(M('presence', type='subscribe'), what='the pending subscription request')
        self.assertEqual(sub.get('from'), alice.bare, xml(sub))
        carol.presence('subscribed', to=alice.bare)
        self.assertEqual(carol.expect_push(alice.bare).get('subscription'), 'from')
        it = alice.expect_push(carol.bare)
        self.assertEqual((it.get('subscription'), it.get('ask')), ('to', None), xml(it))
        alice.expect(M('presence', type='subscribed', frm=carol.bare))
        alice.expect(M('presence', type='available', frm=carol.jid))
        # handled: not delivered again at carol's next login
        carol.logout()
        carol2 = self.peer(acc_c, 'c2', roster=True)
        carol2.available()
        carol2.quiet(M('presence', type='subscribe'), 'an already approved subscription request')

    def test_preapproval(self):
        acc_a, acc_b = self.new_user('pa'), self.new_user('pb')
        bob = self.peer(acc_b, 'b', roster=True, available=True)
        if bob.post_auth_features.find(q(NS_PREAPPROVAL, 'sub')) is None:
            self.skipTest('pre-approval (RFC 6121 3.4) not advertised')
        alice = self.peer(acc_a, 'a', roster=True, available=True)
        bob.presence('subscribed', to=alice.bare)
        it = bob.expect_push(alice.bare)
        self.assertEqual(it.get('approved'), 'true', xml(it))
        alice.presence('subscribe', to=bob.bare)
        alice.expect(M('presence', type='subscribed', frm=bob.bare))
        self.assertEqual(alice.expect_push(bob.bare, 'to').get('subscription'), 'to')
        # approved automatically as in 3.1.5: bob's current presence follows
        alice.expect(M('presence', type='available', frm=bob.jid),
                     what="bob's presence after the pre-approved subscription")
        self.assertEqual(bob.expect_push(alice.bare, 'from').get('subscription'), 'from')
        bob.quiet(M('presence', type='subscribe'), 'a subscription request that was pre-approved')


class PresenceTests(ChatTestCase):

    def test_initial_presence_broadcast(self):
        acc_a, acc_b, acc_c = self.new_user('ia'), self.new_user('ib'), self.new_user('ic')
        self.befriend_accounts(acc_a, acc_b)
        a1 = self.peer(acc_a, 'one', roster=True, available=True)
        bob = self.peer(acc_b, 'b', roster=True, available=True)
        carol = self.peer(acc_c, 'c', roster=True, available=True)   # no subscription
        a1.clear()
        bob.clear()
        a2 = self.peer(acc_a, 'two', roster=True)
        a2.available(priority=3, show='away', status='out for lunch')
        for p, who in ((bob, 'the subscriber'), (a1, "the user's other resource"),
                       (a2, 'the resource itself (4.2.2)')):
            with self.subTest(receiver=who):
                el = p.expect(M('presence', type='available', frm=a2.jid), what='initial presence of %s' % a2.jid)
                self.assertEqual(show_of(el), 'away', xml(el))
                self.assertEqual(status_of(el), 'out for lunch', xml(el))
        carol.quiet(M('presence', frm=(a2.jid, a1.jid, a2.bare)), "presence of a user carol has no subscription to")

    def test_probes_at_login_from_each_available_resource(self):
        acc_a, acc_b = self.new_user('pra'), self.new_user('prb')
        self.befriend_accounts(acc_a, acc_b, one_way=True)          # alice 'to' bob, bob 'from' alice
        b1 = self.peer(acc_b, 'desk', roster=True, available=True, show='dnd', status='meeting')
        b2 = self.peer(acc_b, 'phone', roster=True, available=True, priority=-1)
        self.peer(acc_b, 'not-available', roster=True)                 # bound, never available
        alice = self.peer(acc_a, 'a', roster=True)
        alice.available()
        got = {}
        for b in (b1, b2):
            got[b.jid] = alice.expect(M('presence', type='available', frm=b.jid),
                                      what="bob's presence from %s (probe answered)" % b.jid)
        self.assertEqual(show_of(got[b1.jid]), 'dnd', xml(got[b1.jid]))
        self.assertEqual(status_of(got[b1.jid]), 'meeting', xml(got[b1.jid]))
        alice.quiet(M('presence', frm=bob_jid(acc_b, 'not-available')),
                    'presence from a resource that never sent initial presence')
        # bob has only 'from': he does not get alice's presence
        for b in (b1, b2):
            b.expect_none(M('presence', frm=alice.jid), what="alice's presence (bob is not subscribed to her)")
        # a new resource of bob: alice ('to') sees it come online
        b3 = self.peer(acc_b, 'tablet', roster=True, available=True, show='xa')
        alice.expect(M('presence', type='available', frm=b3.jid))
        # and bob's new resource gets no presence of alice
        b3.quiet(M('presence', frm=alice.jid), "alice's presence on bob's new resource")

    def test_presence_update_broadcast(self):
        acc_a, acc_b = self.new_user('upa'), self.new_user('upb')
        alice = self.peer(acc_a, 'a', roster=True, available=True)
        bob = self.peer(acc_b, 'b', roster=True, available=True)
        self.befriend(alice, bob)
        alice.presence(show='xa', status='gone fishing', priority=2)
        el = bob.expect(M('presence', type='available', frm=alice.jid, fn=lambda e: show_of(e) == 'xa'))
        self.assertEqual(status_of(el), 'gone fishing', xml(el))
        alice.expect(M('presence', frm=alice.jid, fn=lambda e: show_of(e) == 'xa'), what='the echo of the update')

    def _friends_online(self, prefix):
        acc_a, acc_b = self.new_user(prefix + 'a'), self.new_user(prefix + 'b')
        self.befriend_accounts(acc_a, acc_b)
        bob = self.peer(acc_b, 'b', roster=True, available=True)
        alice = self.peer(acc_a, 'a', roster=True, available=True)
        bob.expect(M('presence', type='available', frm=alice.jid))
        return alice, bob

    def test_unavailable_on_explicit_logout(self):
        alice, bob = self._friends_online('xl')
        alice.presence('unavailable', status='bye')
        el = bob.expect(M('presence', type='unavailable', frm=alice.jid))
        self.assertEqual(status_of(el), 'bye', xml(el))
        alice.logout()
        bob.quiet(M('presence', type='unavailable', frm=alice.jid), 'a second unavailable')

    def test_unavailable_on_stream_close(self):
        alice, bob = self._friends_online('sc')
        alice.logout(unavailable=False)
        bob.expect(M('presence', type='unavailable', frm=alice.jid))
        bob.quiet(M('presence', type='unavailable', frm=alice.jid), 'a second unavailable')

    def test_unavailable_on_abrupt_tcp_drop(self):
        alice, bob = self._friends_online('td')
        other = self.peer((alice.user, alice.password), 'other', roster=True, available=True)
        alice.drop()
        for p in (bob, other):
            p.expect(M('presence', type='unavailable', frm=alice.jid),
                     what='unavailable after the TCP connection of %s was reset' % alice.jid)

    def test_directed_presence_to_non_subscriber(self):
        acc_a, acc_c = self.new_user('da'), self.new_user('dc')
        alice = self.peer(acc_a, 'a', roster=True, available=True)
        carol = self.peer(acc_c, 'c', roster=True, available=True)
        alice.presence(to=carol.jid, status='psst')
        el = carol.expect(M('presence', type='available', frm=alice.jid))
        self.assertEqual(status_of(el), 'psst', xml(el))
        # broadcast presence does not go to carol
        alice.presence(show='away')
        carol.quiet(M('presence', frm=alice.jid), 'broadcast presence of a user she has no subscription to')
        # 4.6.3: when alice goes offline, carol is told
        alice.logout()
        carol.expect(M('presence', type='unavailable', frm=alice.jid),
                     what='unavailable after directed presence')

    def test_directed_presence_to_bare_jid_reaches_available_resources(self):
        acc_a, acc_c = self.new_user('dba'), self.new_user('dbc')
        alice = self.peer(acc_a, 'a', roster=True, available=True)
        c1 = self.peer(acc_c, 'c1', available=True, priority=3)
        c2 = self.peer(acc_c, 'c2', available=True, priority=-3)
        idle = self.peer(acc_c, 'idle')
        alice.presence(to=c1.bare, show='chat')
        for p in (c1, c2):
            p.expect(M('presence', type='available', frm=alice.jid), what='directed presence to the bare JID')
        idle.quiet(M('presence', frm=alice.jid), 'presence on a resource that is not available')

    def test_presence_error_delivered_not_answered(self):
        acc_a, acc_b = self.new_user('pea'), self.new_user('peb')
        alice = self.peer(acc_a, 'a', roster=True, available=True)
        bob = self.peer(acc_b, 'b', roster=True, available=True)
        err = ("<error type='cancel'><service-unavailable xmlns='%s'/></error>" % NS_STANZAS)
        alice.send("<presence type='error' to='%s' id='pe1'>%s</presence>" % (bob.jid, err))
        el = bob.expect(M('presence', type='error', frm=alice.jid, id='pe1'))
        self.assertIsNotNone(el.find('{jabber:client}error'), xml(el))
        # to nobody: silently dropped
        alice.send("<presence type='error' to='nobody-here@localhost' id='pe2'>%s</presence>" % err)
        alice.send("<presence type='error' to='%s/offline' id='pe3'>%s</presence>" % (bob.bare, err))
        alice.quiet(M('presence', type='error'), 'an answer to a presence error')
        alice.quiet(M('message', type='error'), 'an answer to a presence error')


def bob_jid(acc, resource):
    return '%s@localhost/%s' % (acc[0], resource)


class SlixPresenceTests(ChatTestCase):

    def test_slixmpp_subscription_roundtrip(self):
        acc_a, acc_b = self.new_user('xa'), self.new_user('xb')
        bare_a, bare_b = acc_a[0] + '@localhost', acc_b[0] + '@localhost'

        async def go():
            # slixmpp's defaults: auto_authorize and auto_subscribe are on
            alice = await self.slix(acc_a, 'slix')
            bob = await self.slix(acc_b, 'slix', show='chat')
            alice.xmpp.send_presence_subscription(pto=bare_b)
            ra = alice.xmpp.client_roster
            rb = bob.xmpp.client_roster
            await self.until(lambda: ra.has_jid(bare_b) and ra[bare_b]['subscription'] == 'both'
                             and rb.has_jid(bare_a) and rb[bare_a]['subscription'] == 'both',
                             "'both' on both slixmpp rosters", clients=(alice, bob))
            await self.until(lambda: ra.presence(bare_b).get('slix', {}).get('show') == 'chat',
                             "bob's presence on alice's client", clients=(alice, bob))
            await self.until(lambda: 'slix' in rb.presence(bare_a),
                             "alice's presence on bob's client", clients=(alice, bob))
            # alice goes away: bob's client sees the resource gone
            await alice.stop()
            await self.until(lambda: 'slix' not in rb.presence(bare_a),
                             "alice's unavailable on bob's client", clients=(bob,))
        self.run_slix(go)


if __name__ == '__main__':
    unittest.main()
