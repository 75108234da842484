"""Message routing (RFC 6121 section 8.5, RFC 6120 section 8 and 10)."""

import time
import unittest

from harness import NS_STANZAS, TIMEOUT
from test_chat_common import (NS_DELAY, ChatTestCase, M, xml)


def any_message(body):
    return M('message', body=body)


def wait_any(peers, pred, what, timeout=TIMEOUT):
    """Wait until pred matches an inbox element of any of peers (left in place)."""
    deadline = time.monotonic() + timeout
    while True:
        for p in peers:
            if p.count(pred):
                return p
        if time.monotonic() > deadline:
            raise AssertionError('none of %s received %s within %.1fs\n%s'
                                 % ([p.jid for p in peers], what, timeout, '\n'.join(p.dump() for p in peers)))
        for p in peers:
            p._pump(0.02)


class MessageRoutingTests(ChatTestCase):

    def sender(self, prefix='snd'):
        acc = self.new_user(prefix)
        return self.peer(acc, 'sender', available=True)

    def test_full_jid_only_that_resource(self):
        alice = self.sender()
        acc_b = self.new_user('fb')
        b1 = self.peer(acc_b, 'one', available=True)
        b2 = self.peer(acc_b, 'two', available=True)
        alice.message(b1.jid, 'for one only', id_='full-1')
        el = b1.expect(M('message', body='for one only'))
        self.assertEqual(el.get('from'), alice.jid, xml(el))
        self.assertEqual(el.get('to'), b1.jid, xml(el))
        self.assertEqual(el.get('type'), 'chat', xml(el))
        self.assertEqual(el.get('id'), 'full-1', xml(el))
        # b2 gets a later marker but never the first message
        alice.message(b2.jid, 'marker')
        b2.expect(M('message', body='marker'))
        b2.quiet(any_message('for one only'), 'a message addressed to the other resource')
        b1.quiet(any_message('for one only'), 'a second copy')
        alice.quiet(M('message', type='error'), 'an error for a delivered message')

    def test_full_jid_of_unavailable_resource_treated_as_bare(self):
        alice = self.sender()
        acc_b = self.new_user('ub')
        hi = self.peer(acc_b, 'hi', available=True, priority=5)
        lo = self.peer(acc_b, 'lo', available=True, priority=1)
        for type_ in ('chat', 'normal'):
            with self.subTest(type=type_):
                body = 'to a gone resource (%s)' % type_
                alice.message(hi.bare + '/no-such-resource', body, type_=type_)
                el = hi.expect(M('message', body=body), what='the %s message for a missing resource' % type_)
                self.assertEqual(el.get('from'), alice.jid, xml(el))
                lo.quiet(any_message(body), 'a message for the bare JID (lower priority)')
        alice.quiet(M('message', type='error'), 'an error (the message was delivered)')

    def test_bare_jid_chat_to_all_highest_priority(self):
        alice = self.sender()
        acc_b = self.new_user('cb')
        top1 = self.peer(acc_b, 'top1', available=True, priority=5)
        top2 = self.peer(acc_b, 'top2', available=True, priority=5, show='away')
        low = self.peer(acc_b, 'low', available=True, priority=1)
        neg = self.peer(acc_b, 'neg', available=True, priority=-1)
        bound = self.peer(acc_b, 'bound')                        # never available
        alice.message(top1.bare, 'hello all tops', type_='chat')
        for p in (top1, top2):
            el = p.expect(M('message', body='hello all tops'), what='the chat message to the bare JID')
            self.assertEqual(el.get('from'), alice.jid, xml(el))
            self.assertEqual(el.get('type'), 'chat', xml(el))
        for p in (low, neg, bound):
            p.quiet(any_message('hello all tops'), 'a bare-JID chat message (not the highest priority)')

    def test_bare_jid_normal_to_one_of_highest_priority(self):
        alice = self.sender()
        acc_b = self.new_user('nb')
        tops = [self.peer(acc_b, 'top%d' % i, available=True, priority=7) for i in (1, 2)]
        low = self.peer(acc_b, 'low', available=True, priority=0)
        neg = self.peer(acc_b, 'neg', available=True, priority=-5)
        alice.message(low.bare, 'normal to bare', type_='normal')
        alice.message(low.bare, 'no type attribute', type_=None)
        for body in ('normal to bare', 'no type attribute'):
            with self.subTest(body=body):
                wait_any(tops, any_message(body), 'the normal message on one of the top resources')
                for p in tops:
                    p.quiet(lambda e: False)             # barrier + let a second copy arrive
                n = sum(p.count(any_message(body)) for p in tops)
                self.assertEqual(n, 1, 'a normal message to the bare JID must reach exactly one of the '
                                 'highest-priority resources; got %d:\n%s\n%s'
                                 % (n, tops[0].dump(), tops[1].dump()))
                for p in (low, neg):
                    p.quiet(any_message(body), 'a normal message meant for a higher-priority resource')

    def test_negative_priority_never_gets_bare_jid_messages(self):
        alice = self.sender()
        acc_b = self.new_user('ng')
        neg = self.peer(acc_b, 'neg', available=True, priority=-1)
        alice.message(neg.bare, 'stored, not for neg', type_='chat', id_='neg-1')
        alice.message(neg.bare, 'headline, nobody', type_='headline', id_='neg-2')
        neg.quiet(M('message'), 'a bare-JID message on a negative-priority resource')
        alice.quiet(M('message', type='error'), 'an error (chat goes to offline storage, headline is dropped)')
        # with only negative resources the chat message went to offline storage
        other = self.peer(acc_b, 'later')
        other.available(priority=1)
        el = other.expect(M('message', body='stored, not for neg'), what='the offline chat message')
        self.assertIsNotNone(el.find('{%s}delay' % NS_DELAY), 'offline message without <delay/>: %s' % xml(el))
        other.quiet(any_message('headline, nobody'), 'a stored headline')
        # a full-JID message does reach the negative-priority resource
        alice.message(neg.jid, 'direct to neg')
        neg.expect(M('message', body='direct to neg'))

    def test_headline_to_bare_jid_all_non_negative(self):
        alice = self.sender()
        acc_b = self.new_user('hb')
        rs = [self.peer(acc_b, 'p%d' % p, available=True, priority=p) for p in (9, 3, 0)]
        neg = self.peer(acc_b, 'neg', available=True, priority=-2)
        alice.message(neg.bare, 'news', type_='headline')
        for p in rs:
            el = p.expect(M('message', type='headline', body='news'), what='the headline on %s' % p.jid)
            self.assertEqual(el.get('from'), alice.jid, xml(el))
        neg.quiet(any_message('news'), 'a headline on a negative-priority resource')

    def test_groupchat_rules(self):
        # 8.5.2.1.1 / 8.5.2.2.1 / 8.5.3.2.1: groupchat only ever goes to a full JID
        alice = self.sender()
        acc_b = self.new_user('gc')
        bob = self.peer(acc_b, 'b', available=True)
        offline = self.new_user('gco')
        cases = [('bare JID of an online user', bob.bare), ('offline full JID', bob.bare + '/gone'),
                 ('bare JID of an offline user', offline[0] + '@localhost')]
        for label, to in cases:
            with self.subTest(case=label):
                mid = alice.message(to, 'room talk', type_='groupchat')
                el = alice.expect(M('message', id=mid), what='the error for groupchat to a %s' % label)
                self.assertStanzaError(el, 'service-unavailable', msg='%s: ' % label)
        bob.quiet(M('message', type='groupchat'), 'groupchat sent to the bare JID or another resource')
        alice.message(bob.jid, 'to the full JID', type_='groupchat')
        bob.expect(M('message', type='groupchat', body='to the full JID'))
        # nothing was stored for the offline user
        p = self.peer(offline, 'late')
        p.available()
        p.quiet(M('message'), 'a stored groupchat message')

    def test_from_stamped_with_senders_full_jid(self):
        alice = self.sender()
        bob = self.peer(self.new_user('st'), 'b', available=True)
        alice.message(bob.jid, 'no from')
        alice.message(bob.jid, 'own full from', frm=alice.jid)
        for body in ('no from', 'own full from'):
            el = bob.expect(M('message', body=body))
            self.assertEqual(el.get('from'), alice.jid, xml(el))

    def test_addresses_are_prepared(self):
        # RFC 7622: localpart and domainpart compare case-insensitively
        alice = self.sender()
        bob = self.peer(self.new_user('pr'), 'Desk', available=True)
        user, _, res = bob.jid.partition('@')
        alice.message('%s@LocalHost/Desk' % user.upper(), 'case folded full')
        alice.message('%s@LOCALHOST' % user.upper(), 'case folded bare')
        for body in ('case folded full', 'case folded bare'):
            el = bob.expect(M('message', body=body))
            self.assertEqual(el.get('from'), alice.jid, xml(el))
        alice.quiet(M('message', type='error'), 'an error for a deliverable message')

    def test_spoofed_from_invalid_from_stream_error(self):
        alice = self.sender('spoof')
        bob = self.peer(self.new_user('sv'), 'b', available=True)
        alice.message(bob.jid, 'I am bob', frm=bob.jid)
        self.assertStreamError(alice.rs, 'invalid-from')
        bob.quiet(any_message('I am bob'), 'the spoofed message')

    def test_from_of_own_other_resource_invalid_from(self):
        acc = self.new_user('so')
        alice = self.peer(acc, 'one', available=True)
        self.peer(acc, 'two', available=True)
        bob = self.peer(self.new_user('sw'), 'b', available=True)
        alice.message(bob.jid, 'I am two', frm=alice.bare + '/two')
        self.assertStreamError(alice.rs, 'invalid-from')
        bob.quiet(any_message('I am two'), 'the spoofed message')

    def test_error_message_never_answered(self):
        alice = self.sender()
        bob = self.peer(self.new_user('eb'), 'b', available=True)
        err = "<error type='cancel'><service-unavailable xmlns='%s'/></error>" % NS_STANZAS
        alice.message('nobody-at-all@localhost', None, type_='error', extra=err)
        alice.message(bob.bare + '/gone', None, type_='error', extra=err)
        alice.message('someone@remote.example', None, type_='error', extra=err)
        alice.quiet(M('message'), 'an answer to an error message')
        # an error to a present resource is delivered
        alice.message(bob.jid, None, type_='error', id_='err-ok', extra=err)
        el = bob.expect(M('message', type='error', id='err-ok'))
        self.assertEqual(el.get('from'), alice.jid)

    def test_unknown_local_user_service_unavailable(self):
        alice = self.sender()
        for type_ in ('chat', 'normal'):
            with self.subTest(type=type_):
                mid = alice.message('no-such-user@localhost', 'hello?', type_=type_)
                el = alice.expect(M('message', id=mid))
                self.assertStanzaError(el, 'service-unavailable', 'cancel')
                self.assertEqual(el.get('from'), 'no-such-user@localhost', xml(el))
                self.assertIn(el.get('to'), (alice.jid, None), xml(el))

    def test_other_domain_remote_server_not_found(self):
        alice = self.sender()
        mid = alice.message('someone@elsewhere.example', 'across the sea')
        el = alice.expect(M('message', id=mid))
        self.assertStanzaError(el, 'remote-server-not-found', 'cancel')
        self.assertEqual(el.get('from'), 'someone@elsewhere.example', xml(el))


class SlixMessageTests(ChatTestCase):

    def test_slixmpp_three_clients(self):
        acc_a, acc_b = self.new_user('sla'), self.new_user('slb')

        async def go():
            alice = await self.slix(acc_a, 'desk')
            phone = await self.slix(acc_b, 'phone', priority=1)
            laptop = await self.slix(acc_b, 'laptop', priority=1)
            # wait until both bob resources are surely available: a full-JID
            # round trip to each
            bare_b = acc_b[0] + '@localhost'
            alice.xmpp.send_message(mto=bare_b, mbody='to both', mtype='chat')
            got = lambda c, b: [m for m in c.messages if m['body'] == b]
            await self.until(lambda: got(phone, 'to both') and got(laptop, 'to both'),
                             'the bare-JID chat on both equal-priority resources', clients=(alice, phone, laptop))
            for c in (phone, laptop):
                m = got(c, 'to both')[0]
                self.assertEqual(str(m['from']), alice.bound_jid, str(m))
            alice.xmpp.send_message(mto=bare_b + '/phone', mbody='phone only', mtype='chat')
            alice.xmpp.send_message(mto=bare_b + '/laptop', mbody='laptop marker', mtype='chat')
            await self.until(lambda: got(phone, 'phone only') and got(laptop, 'laptop marker'),
                             'the full-JID messages', clients=(alice, phone, laptop))
            self.assertEqual(got(laptop, 'phone only'), [])
            # bob answers from the phone: alice sees his full JID
            phone.xmpp.send_message(mto=alice.bound_jid, mbody='hi alice', mtype='chat')
            await self.until(lambda: got(alice, 'hi alice'), 'the answer', clients=(alice, phone))
            self.assertEqual(str(got(alice, 'hi alice')[0]['from']), bare_b + '/phone')
            self.assertEqual([m for m in alice.messages if m['type'] == 'error'], [])
        self.run_slix(go)


if __name__ == '__main__':
    unittest.main()
