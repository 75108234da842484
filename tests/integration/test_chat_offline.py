"""Offline storage (XEP-0160) with delay stamps (XEP-0203), storage hints
(XEP-0334), the per-user quota and durability across a restart of ternd."""

import datetime
import unittest

from harness import q
from test_chat_common import (NS_CHATSTATES, NS_DELAY, NS_HINTS, ChatTestCase, M, body_of,
                              parse_stamp, xml)

STORE = "<store xmlns='%s'/>" % NS_HINTS


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


class OfflineTests(ChatTestCase):
    server_config = {'offline': {'max_messages': 3}}

    def sender(self):
        return self.peer(self.new_user('os'), 'sender', available=True)

    def assertDelay(self, el, t_before, t_after):
        d = el.find(q(NS_DELAY, 'delay'))
        self.assertIsNotNone(d, 'offline message without <delay xmlns=urn:xmpp:delay/>: %s' % xml(el))
        self.assertEqual(d.get('from'), 'localhost', xml(el))
        stamp = d.get('stamp')
        t = parse_stamp(stamp)
        self.assertIsNotNone(t, 'delay stamp %r is not an XEP-0082 UTC DateTime ending in Z' % stamp)
        # whole-second stamps may round down; allow 1s either way for clock granularity
        self.assertGreaterEqual(t, t_before - datetime.timedelta(seconds=1), 'stamp %s before the send' % stamp)
        self.assertLessEqual(t, t_after + datetime.timedelta(seconds=1), 'stamp %s in the future' % stamp)
        self.assertLessEqual(t, utcnow() + datetime.timedelta(seconds=1), 'stamp %s in the future' % stamp)

    def test_stored_and_delivered_in_order_at_initial_presence(self):
        alice = self.sender()
        acc_b = self.new_user('ob')
        bare_b = acc_b[0] + '@localhost'
        t0 = utcnow()
        alice.message(bare_b, 'first (chat)', type_='chat', id_='off-1')
        alice.message(bare_b, 'second (normal)', type_='normal', id_='off-2')
        alice.message(bare_b, None, type_='normal', id_='off-3', extra=STORE + '<subject>hinted</subject>')
        alice.quiet(M('message', type='error'), 'an error for a storable message')
        t1 = utcnow()
        bob = self.peer(acc_b, 'b', roster=True)
        # nothing before initial presence (XEP-0160: delivered on available presence)
        bob.quiet(M('message'), 'an offline message before initial presence')
        bob.available()
        got = [bob.expect(M('message', id=i), what='offline message %s' % i) for i in ('off-1', 'off-2', 'off-3')]
        order = [bob.seen.index(el) for el in got]
        self.assertEqual(order, sorted(order), 'offline messages out of order: %s' % [xml(e) for e in got])
        for el, body, type_ in zip(got, ('first (chat)', 'second (normal)', None), ('chat', 'normal', 'normal')):
            self.assertEqual(body_of(el), body, xml(el))
            self.assertEqual(el.get('type') or 'normal', type_, xml(el))
            self.assertEqual(el.get('from'), alice.jid, xml(el))
            self.assertIn(el.get('to'), (bare_b, bob.jid), xml(el))
            self.assertDelay(el, t0, t1)
        self.assertIsNotNone(got[2].find(q(NS_HINTS, 'store')), 'payload of the hinted message lost: %s' % xml(got[2]))
        bob.quiet(M('message'), 'more offline messages')
        # deleted after delivery: a new session gets nothing
        bob.logout()
        again = self.peer(acc_b, 'again', roster=True)
        again.available()
        again.quiet(M('message'), 'an offline message delivered a second time')

    def test_not_stored_headline_chatstate_error(self):
        alice = self.sender()
        acc_b = self.new_user('on')
        bare_b = acc_b[0] + '@localhost'
        alice.message(bare_b, 'breaking news', type_='headline', id_='ns-headline')
        alice.message(bare_b, None, type_='chat', id_='ns-state',
                      extra="<composing xmlns='%s'/>" % NS_CHATSTATES)
        alice.message(bare_b, None, type_='normal', id_='ns-empty')
        alice.message(bare_b, None, type_='error', id_='ns-error',
                      extra="<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>")
        alice.message(bare_b, 'the only stored one', type_='chat', id_='ns-marker')
        alice.barrier()
        alice.expect_none(M('message', id=('ns-headline', 'ns-error')), what='an error for a headline or error message')
        bob = self.peer(acc_b, 'b')
        bob.available()
        bob.expect(M('message', id='ns-marker'), what='the stored chat message')
        bob.quiet(M('message', id=('ns-headline', 'ns-state', 'ns-empty', 'ns-error')),
                  'a message that must not be stored offline')

    def test_quota_resource_constraint(self):
        alice = self.sender()
        acc_b = self.new_user('oq')
        bare_b = acc_b[0] + '@localhost'
        for i in range(1, 4):
            alice.message(bare_b, 'q%d' % i, id_='q%d' % i)
        alice.quiet(M('message', type='error'), 'an error within the quota of 3')
        alice.message(bare_b, 'q4 over quota', id_='q4')
        el = alice.expect(M('message', id='q4'), what='the error for the 4th offline message')
        self.assertStanzaError(el, 'resource-constraint', 'wait')
        self.assertEqual(el.get('from'), bare_b, xml(el))
        bob = self.peer(acc_b, 'b')
        bob.available()
        for i in range(1, 4):
            bob.expect(M('message', id='q%d' % i))
        bob.quiet(M('message', id='q4'), 'the message refused over quota')
        bob.logout()
        # delivered messages no longer count
        alice.message(bare_b, 'q5 after delivery', id_='q5')
        alice.quiet(M('message', id='q5'), 'an error after the store was emptied')

    def test_full_jid_of_offline_user_stored(self):
        # 8.5.3.2.1: a full JID without that resource is handled as the bare JID
        alice = self.sender()
        acc_b = self.new_user('of')
        alice.message(acc_b[0] + '@localhost/phone', 'to the phone', id_='fj-1')
        alice.quiet(M('message', id='fj-1'), 'an error for a storable message')
        bob = self.peer(acc_b, 'laptop')
        bob.available()
        el = bob.expect(M('message', id='fj-1'), what='the message sent to an offline full JID')
        self.assertEqual(body_of(el), 'to the phone')
        self.assertIsNotNone(el.find(q(NS_DELAY, 'delay')), xml(el))

    def test_store_hint_on_headline_is_not_an_error(self):
        # the hint asks for storage; whatever the server decides, the sender
        # must not get an error for a headline (RFC 6121 8.5.2.2.1)
        alice = self.sender()
        acc_b = self.new_user('oh')
        alice.message(acc_b[0] + '@localhost', 'hint on headline', type_='headline', id_='hh', extra=STORE)
        alice.quiet(M('message', id='hh'), 'an error for a headline')


class OfflineRestartTests(ChatTestCase):
    N = 20

    def test_offline_messages_survive_restart(self):
        acc_a, acc_b = self.new_user('ra'), self.new_user('rb')
        bare_b = acc_b[0] + '@localhost'
        alice = self.peer(acc_a, 'sender', roster=True, available=True)
        self.assertResult(alice.roster_set("<item jid='kept@example.com' name='Kept'><group>G</group></item>"))
        ids = ['persist-%02d' % i for i in range(self.N)]
        for i, mid in enumerate(ids):
            alice.message(bare_b, 'durable %d' % i, id_=mid)
        alice.barrier()
        alice.expect_none(M('message', type='error'), 0.0, 'an error for a storable message')
        # SIGTERM right away: everything accepted must be on disk
        rc = self.server.restart()
        self.assertEqual(rc, 0, 'ternd exit status on SIGTERM:\n' + self.server.log_tail())
        bob = self.peer(acc_b, 'b')
        bob.available()
        got = []
        for mid in ids:
            el = bob.expect(M('message', id=mid), what='offline message %s after the restart' % mid)
            got.append(el)
        bob.quiet(M('message'), 'more messages than were sent (duplicates)')
        received = [el.get('id') for el in sorted(got, key=bob.seen.index)]
        self.assertEqual(received, ids, 'offline messages out of order after restart')
        self.assertEqual(len([e for e in bob.seen if e.tag.endswith('}message')]), self.N,
                         'duplicates: %s' % [e.get('id') for e in bob.seen if e.tag.endswith('}message')])
        bob.logout()
        again = self.peer(acc_b, 'again')
        again.available()
        again.quiet(M('message'), 'offline messages delivered again')
        # the roster survived too
        items = self.peer(acc_a, 'after', roster=True).roster()
        self.assertIn('kept@example.com', items)
        self.assertEqual(items['kept@example.com'].get('name'), 'Kept')


if __name__ == '__main__':
    unittest.main()
