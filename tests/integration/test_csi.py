"""Client state indication (XEP-0352): while a client is inactive the server
holds back presence (only the latest per sender) and chat-state-only
messages, and flushes them, in order, before anything important, or when
the client becomes active again.

While alice is inactive a test must not use alice.barrier()/quiet(): the
ping result is an IQ and flushes the held stanzas.  Barriers go through
the senders instead."""

import unittest

from harness import q
from test_chat_common import NS_CHATSTATES, QUIET, M, xml
from test_sm_common import NS_CSI, NS_SM, SMTestCase

HOLD_WAIT = max(QUIET, 0.6)


def show_of(el):
    s = el.find('{jabber:client}show')
    return None if s is None else s.text


def is_stanza(el):
    return el.tag.startswith('{jabber:client}')


class CSITests(SMTestCase):
    server_config = {'csi': {'enabled': True, 'max_buffer': 100},
                     'sm': {'enabled': True, 'resume_timeout': '30s', 'request_every': 5}}

    def trio(self, prefix):
        """alice with two contacts bob and carol (all available, mutual
        subscriptions), inboxes empty."""
        accs = [self.new_user(prefix + x) for x in 'abc']
        alice, bob, carol = [self.peer(a, 'r', roster=True, available=True) for a in accs]
        self.befriend(alice, bob)
        self.befriend(alice, carol)
        for p in (alice, bob, carol):
            p.barrier()
            p.clear()
        return alice, bob, carol

    def go_inactive(self, alice):
        alice.send("<inactive xmlns='%s'/>" % NS_CSI)
        alice.barrier()          # <inactive/> is processed (nothing held yet)
        alice.clear()

    def held(self, alice, what):
        """Nothing (no stanza) reaches alice for a while."""
        alice.expect_none(is_stanza, HOLD_WAIT, what)

    def stanza_order(self, alice, els):
        return [alice.seen.index(e) for e in els]

    def test_feature_after_auth(self):
        p = self.peer(self.new_user('cf'), 'r')
        self.assertIsNotNone(p.post_auth_features.find(q(NS_CSI, 'csi')),
                             'no <csi xmlns=urn:xmpp:csi:0/> in the post-auth features: %s'
                             % xml(p.post_auth_features))

    def test_inactive_holds_presence_and_chat_states_body_flushes_them_first(self):
        alice, bob, carol = self.trio('ch')
        self.go_inactive(alice)
        mark = len(alice.seen)
        bob.presence(show='away', id_='bp-1')
        bob.presence(show='xa', id_='bp-2')
        bob.presence(show='dnd', status='the latest', id_='bp-3')
        bob.message(alice.jid, None, type_='chat', id_='cs-1',
                    extra="<composing xmlns='%s'/>" % NS_CHATSTATES)
        bob.barrier()            # bob's stanzas reached alice's session before carol's
        carol.presence(show='chat', id_='cp-1')
        carol.barrier()
        self.held(alice, 'a presence or chat state while inactive')
        bob.message(alice.jid, 'an important message', type_='chat', id_='body-1')
        body = alice.expect(M('message', id='body-1'), what='the message with a body (delivered at once)')
        p_bob = alice.expect(M('presence', frm=bob.jid), what='bob\'s latest presence, flushed')
        cs = alice.expect(M('message', id='cs-1'), what='the held chat state')
        p_carol = alice.expect(M('presence', frm=carol.jid), what='carol\'s presence, flushed')
        self.assertEqual(show_of(p_bob), 'dnd', 'not the latest presence of bob: %s' % xml(p_bob))
        self.assertEqual(p_bob.get('id'), 'bp-3', xml(p_bob))
        self.assertEqual(show_of(p_carol), 'chat', xml(p_carol))
        self.assertIsNotNone(cs.find(q(NS_CHATSTATES, 'composing')), xml(cs))
        order = self.stanza_order(alice, [p_bob, cs, p_carol, body])
        self.assertEqual(order, sorted(order), 'held stanzas must come first, in order, then the message: %s'
                         % [xml(alice.seen[i]) for i in sorted(order)])
        alice.quiet(M('presence', frm=bob.jid), 'an older presence of bob (only the latest is kept)')
        self.assertEqual([e.get('id') for e in alice.seen[mark:] if e.tag == '{jabber:client}presence'
                          and e.get('from') == bob.jid], ['bp-3'])

    def test_active_flushes(self):
        alice, bob, carol = self.trio('ca')
        # active (the default): delivered at once
        bob.presence(show='away', id_='ap-0')
        alice.expect(M('presence', id='ap-0'), timeout=2, what='a presence while active')
        self.go_inactive(alice)
        bob.presence(show='xa', id_='ap-1')
        bob.barrier()
        carol.message(alice.jid, None, type_='chat', id_='acs', extra="<paused xmlns='%s'/>" % NS_CHATSTATES)
        carol.barrier()
        self.held(alice, 'a presence while inactive')
        alice.send("<active xmlns='%s'/>" % NS_CSI)
        p = alice.expect(M('presence', id='ap-1'), timeout=2, what='the held presence after <active/>')
        cs = alice.expect(M('message', id='acs'), timeout=2, what='the held chat state after <active/>')
        self.assertLess(alice.seen.index(p), alice.seen.index(cs), 'held stanzas out of order')
        # active again: nothing held any more
        bob.presence(show='dnd', id_='ap-2')
        alice.expect(M('presence', id='ap-2'), timeout=2, what='a presence after <active/>')

    def test_iq_flushes_first_and_holding_resumes_after_a_flush(self):
        alice, bob, carol = self.trio('ci')
        self.go_inactive(alice)
        bob.presence(show='away', id_='ip-1')
        bob.barrier()
        self.held(alice, 'a presence while inactive')
        bob.send("<iq type='get' id='ver-1' to='%s'><query xmlns='jabber:iq:version'/></iq>" % alice.jid)
        iq = alice.expect(M('iq', id='ver-1'), what='an IQ while inactive (delivered at once)')
        p = alice.expect(M('presence', id='ip-1'), what='the held presence, flushed by the IQ')
        self.assertLess(alice.seen.index(p), alice.seen.index(iq), 'the held presence must come before the IQ')
        alice.send("<iq type='result' id='ver-1' to='%s'/>" % bob.jid)
        bob.expect(M('iq', id='ver-1', type='result'))
        # still inactive: the next presence is held again
        alice.clear()
        carol.presence(show='xa', id_='ip-2')
        carol.barrier()
        self.held(alice, 'a presence while still inactive after a flush')
        # alice's own IQ: its result flushes too
        alice.barrier()
        self.assertTrue(any(e.get('id') == 'ip-2' for e in alice.seen),
                        'the held presence did not come before the ping result\n%s' % alice.dump())
        order = [i for i, e in enumerate(alice.seen) if e.get('id') == 'ip-2']
        res = [i for i, e in enumerate(alice.seen) if e.tag == '{jabber:client}iq' and e.get('type') == 'result']
        self.assertLess(order[0], res[-1], 'the held presence must come before the ping result')

    def test_message_with_body_while_inactive_is_not_delayed(self):
        alice, bob, carol = self.trio('cm')
        self.go_inactive(alice)
        for i in range(3):
            bob.message(alice.bare, 'body %d' % i, id_='mb-%d' % i)
            alice.expect(M('message', id='mb-%d' % i), timeout=2, what='a message with a body while inactive')


    def test_important_bodyless_stanzas_flush(self):
        # docs/csi.md: an encrypted message, a call invitation, an error are important
        alice, bob, carol = self.trio('cb')
        cases = [
            ('omemo', "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'/></encrypted>"
                      "<store xmlns='urn:xmpp:hints'/>", 'chat'),
            ('jingle', "<propose xmlns='urn:xmpp:jingle-message:0' id='call-1'>"
                       "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>", 'chat'),
            ('error', "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                      "</error>", 'error'),
        ]
        for n, (name, payload, type_) in enumerate(cases):
            with self.subTest(kind=name):
                self.go_inactive(alice)
                bob.presence(show=('away', 'xa', 'dnd')[n], id_='bl-p%d' % n)
                bob.barrier()
                self.held(alice, 'a presence while inactive')
                bob.message(alice.jid, None, type_=type_, id_='bl-%s' % name, extra=payload)
                m = alice.expect(M('message', id='bl-%s' % name), timeout=2,
                                 what='the %s message (important) while inactive' % name)
                p = alice.expect(M('presence', id='bl-p%d' % n), timeout=2,
                                 what='the held presence, flushed by the %s message' % name)
                self.assertLess(alice.seen.index(p), alice.seen.index(m), 'held presence after the %s message' % name)
                alice.send("<active xmlns='%s'/>" % NS_CSI)
                alice.barrier()
                alice.clear()

    def test_held_stanzas_survive_a_broken_connection_with_sm(self):
        accs = [self.new_user('cs' + x) for x in 'ab']
        self.befriend_accounts(accs[0], accs[1])
        bob = self.peer(accs[1], 'b', available=True)
        alice = self.sm_peer(accs[0], 'r', available=True)
        bob.expect(M('presence', frm=alice.jid))
        # bob's presence (the answer to alice's probe) must be in before
        # alice goes inactive, or it is held and flushed by a barrier below
        alice.expect(M('presence', frm=bob.jid))
        alice.barrier()
        alice.clear()
        alice.send("<inactive xmlns='%s'/>" % NS_CSI)
        alice.barrier()
        alice.ack()
        alice.barrier()
        alice.ack()
        bob.presence(show='away', id_='sh-p1')
        bob.presence(show='xa', id_='sh-p2')
        bob.message(alice.jid, None, type_='chat', id_='sh-cs', extra="<composing xmlns='%s'/>" % NS_CHATSTATES)
        bob.barrier()
        alice.expect_none(is_stanza, HOLD_WAIT, 'a stanza while inactive')
        h = alice.h_in
        alice.drop()
        alice2, el = self.resume_peer(accs[0], alice.sm_id, h)
        self.assertResumed(el, alice.sm_id, alice.h_out)
        p = alice2.expect(M('presence', id='sh-p2'), what='the held presence, re-sent on resumption')
        cs = alice2.expect(M('message', id='sh-cs'), what='the held chat state, re-sent on resumption')
        self.assertLess(alice2.seen.index(p), alice2.seen.index(cs))
        alice2.quiet(M('presence', id='sh-p1'), 'a presence replaced while held')


class CSIBufferTests(SMTestCase):
    server_config = {'csi': {'enabled': True, 'max_buffer': 3}}

    def test_max_buffer_flushes(self):
        accs = [self.new_user('cx' + x) for x in 'ab']
        alice = self.peer(accs[0], 'r', available=True)
        bob = self.peer(accs[1], 'b', available=True)
        alice.send("<inactive xmlns='%s'/>" % NS_CSI)
        alice.barrier()
        alice.clear()
        states = ('composing', 'paused', 'active')
        for i, st in enumerate(states[:2]):
            bob.message(alice.jid, None, type_='chat', id_='mb-%d' % i, extra="<%s xmlns='%s'/>" % (st, NS_CHATSTATES))
        bob.barrier()
        alice.expect_none(is_stanza, HOLD_WAIT, 'a chat state with 2 of max_buffer=3 held')
        bob.message(alice.jid, None, type_='chat', id_='mb-2', extra="<active xmlns='%s'/>" % NS_CHATSTATES)
        got = [alice.expect(M('message', id='mb-%d' % i), timeout=2,
                            what='held chat state %d once max_buffer=3 stanzas are held' % i) for i in range(3)]
        order = [alice.seen.index(e) for e in got]
        self.assertEqual(order, sorted(order), 'flushed out of order')


class CSIDisabledTests(SMTestCase):
    server_config = {'csi': {'enabled': False}, 'sm': {'enabled': False}}

    def test_features_not_offered_and_enable_refused(self):
        acc = self.new_user('cd')
        p = self.peer(acc, 'r')
        feats = p.post_auth_features
        self.assertIsNone(feats.find(q(NS_CSI, 'csi')), 'csi offered although disabled: %s' % xml(feats))
        self.assertIsNone(feats.find(q(NS_SM, 'sm')), 'sm offered although disabled: %s' % xml(feats))
        p.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
        try:
            el = p.expect(lambda e: e.tag.startswith('{%s}' % NS_SM), timeout=2, what='an answer to <enable/>')
            self.assertEqual(el.tag, q(NS_SM, 'failed'), 'SM disabled, but: %s' % xml(el))
        except AssertionError:
            # or a stream error (unsupported-stanza-type); never <enabled/>
            self.assertNotIn('enabled', p.rs.text.split('</stream:features>')[-1], p.rs.text[-1000:])
            if not p.rs.eof:
                raise


if __name__ == '__main__':
    unittest.main()
