"""Stream management (XEP-0198): hibernation of a session whose connection
died, resumption, what a resumption may not do, expiry (unacked messages to
offline storage, IQ errors), queue overflow, a new login replacing a
hibernated session, and dead peers (unanswered <r/>)."""

import time
import unittest

from harness import StreamErrorReceived, TIMEOUT, q
from test_chat_common import M, xml
from test_sm_common import (NS_SM, SM, SMPeer, SMTestCase, message_ids, stream_error_of)

RESUME_TIMEOUT = 3
NS_VERSION = 'jabber:iq:version'


def unavailable_from(jid):
    return M('presence', type='unavailable', frm=jid)


class SMResumeTests(SMTestCase):
    server_config = {'sm': {'enabled': True, 'resume_timeout': '%ds' % RESUME_TIMEOUT,
                            'max_resume_timeout': '1h', 'ack_timeout': '60s',
                            'request_every': 5, 'request_interval': '30s', 'max_queue': 500}}

    def pair(self, prefix):
        """alice (SM, available, auto_ack off) and bob (plain, available), with
        a mutual subscription so that bob sees alice's unavailable presence."""
        acc_a, acc_b = self.new_user(prefix + 'a'), self.new_user(prefix + 'b')
        self.befriend_accounts(acc_a, acc_b)
        bob = self.peer(acc_b, 'b', available=True)
        alice = self.sm_peer(acc_a, 'r', available=True, auto_ack=False)
        bob.expect(M('presence', frm=alice.jid))
        bob.clear()
        alice.barrier()
        alice.clear()
        return acc_a, acc_b, alice, bob

    def send_and_receive(self, bob, alice, ids, to=None):
        for i in ids:
            bob.message(to or alice.jid, 'body of %s' % i, id_=i)
        return self.expect_messages(alice, ids)

    # -- the happy path ---------------------------------------------------------
    def test_resume_after_abrupt_disconnect_delivers_everything_once(self):
        acc_a, acc_b, alice, bob = self.pair('rh')
        before = ['rh-pre-%d' % i for i in range(3)]
        self.send_and_receive(bob, alice, before)
        h_seen = alice.h_in
        handled = alice.h_out
        alice.drop()
        # during hibernation: to the full JID, to the bare JID, and an IQ
        during = ['rh-full-1', 'rh-bare-1', 'rh-full-2', 'rh-bare-2']
        for i in during:
            bob.message(alice.jid if 'full' in i else alice.bare, 'body of %s' % i, id_=i)
        bob.send("<iq type='get' id='rh-iq' to='%s'><query xmlns='%s'/></iq>" % (alice.jid, NS_VERSION))
        # the session stays available: no unavailable presence, no errors
        bob.quiet(M(fn=lambda el: el.get('type') in ('unavailable', 'error')),
                  'an unavailable presence or an error while alice is hibernated')
        alice2, el = self.resume_peer(acc_a, alice.sm_id, h_seen, auto_ack=False)
        self.assertResumed(el, alice.sm_id, handled)
        got = self.expect_messages(alice2, during)
        for e in got:
            self.assertIn(e.get('to'), (alice.jid, alice.bare), xml(e))
            self.assertEqual(e.get('from'), bob.jid, xml(e))
        iq = alice2.expect(M('iq', type='get', id='rh-iq'), what='the IQ sent during hibernation')
        self.assertEqual(iq.get('to'), alice.jid, xml(iq))
        # the queued stanzas come right after <resumed/>, before anything new
        alice2.send("<iq type='result' id='rh-iq' to='%s'/>" % bob.jid)
        bob.expect(M('iq', type='result', id='rh-iq', frm=alice.jid))
        alice2.quiet(M('message'), 'more messages')
        self.assertOnce(before + during, alice.seen + alice2.seen)
        # the session goes on with the old full JID and presence
        bob.message(alice.jid, 'after resume (full)', id_='rh-after-full')
        bob.message(alice.bare, 'after resume (bare)', id_='rh-after-bare')
        self.expect_messages(alice2, ['rh-after-full', 'rh-after-bare'])
        bob.quiet(M(fn=lambda el: el.get('type') in ('unavailable', 'error')), 'an unavailable presence or error')
        alice2.presence(show='away', id_='rh-away')
        el = bob.expect(M('presence', frm=alice.jid, id='rh-away'), what='a presence broadcast after resumption')
        # counting goes on from the resumed values in both directions
        self.assertEqual(alice2.request(), alice2.h_out, 'server h after resumption')
        alice2.ack()
        alice2.quiet(SM('failed'), 'a failure after the ack')
        self.assertFalse(alice2.rs.eof, 'stream closed after a correct ack:\n%s' % alice2.rs.text[-1500:])

    def test_resume_with_lower_h_retransmits_the_unacked_in_order(self):
        acc_a, acc_b, alice, bob = self.pair('rl')
        ids = ['rl-%d' % i for i in range(4)]
        self.send_and_receive(bob, alice, ids)
        alice.ack(alice.h_in - 4)     # acked all but the 4 messages
        alice.barrier()               # (+1 stanza received, not acked)
        h_claimed = alice.h_in - 3    # "received only the first 2 messages" (and not the ping result)
        alice.drop()
        bob.message(alice.jid, 'queued', id_='rl-q')
        bob.barrier()
        alice2, el = self.resume_peer(acc_a, alice.sm_id, h_claimed, auto_ack=False)
        self.assertResumed(el, alice.sm_id, alice.h_out)
        got = self.expect_messages(alice2, ['rl-2', 'rl-3', 'rl-q'])
        self.assertIs(got[0], next(e for e in alice2.seen if e.tag.startswith('{jabber:client}')),
                      'the first stanza after <resumed/> must be the first unacked one\n%s' % alice2.dump())
        alice2.quiet(M('message', id=('rl-0', 'rl-1')), 'a message the client had acknowledged')
        self.assertEqual(message_ids(alice2.seen).count('rl-2'), 1, alice2.dump())

    def test_resume_while_old_connection_open_closes_it(self):
        acc_a, acc_b, alice, bob = self.pair('ro')
        self.send_and_receive(bob, alice, ['ro-1'])
        alice2, el = self.resume_peer(acc_a, alice.sm_id, alice.h_in)
        self.assertResumed(el, alice.sm_id, alice.h_out)
        # old stream: conflict stream error or just closed
        text = alice.rs.read_until_closed()
        cond, err = stream_error_of(text[text.find('ro-1'):])
        self.assertIn(cond, (None, 'conflict'), 'old stream closed with %s' % err)
        bob.message(alice.jid, 'to the new connection', id_='ro-2')
        self.expect_messages(alice2, ['ro-2'])
        bob.quiet(unavailable_from(alice.jid), 'an unavailable presence (the session went on)')

    # -- what resumption may not do ---------------------------------------------
    def test_resume_unknown_id_item_not_found_then_bind_works(self):
        user, pw = self.new_user('ru')
        p = SMPeer(self, user, pw, bind=False, enable=False)
        el = p.resume('no-such-sm-id-0123456789', 0)
        self.assertFailed(el, 'item-not-found', 'unknown previd: ')
        # XEP-0198 section 5: the client may bind on the same stream
        p.jid = p.rs.bind('after-failed-resume')
        self.assertTrue(p.jid.endswith('/after-failed-resume'))
        self.assertEqual(p.enable().tag, q(NS_SM, 'enabled'))

    def test_resume_of_another_accounts_session_is_item_not_found(self):
        acc_a, acc_b, alice, bob = self.pair('rx')
        self.send_and_receive(bob, alice, ['rx-1'])
        alice.drop()
        bob.message(alice.jid, 'for alice only', id_='rx-2')
        bob.barrier()
        thief, el = self.resume_peer(acc_b, alice.sm_id, 0)
        self.assertFailed(el, 'item-not-found', 'bob resuming alice\'s session: ')
        thief.jid = thief.rs.bind('thief')
        thief.quiet(M('message', id=('rx-1', 'rx-2')), 'alice\'s messages on bob\'s stream')
        # and alice's own session was not harmed by the attempt
        alice2, el = self.resume_peer(acc_a, alice.sm_id, alice.h_in)
        self.assertResumed(el, alice.sm_id, alice.h_out)
        self.expect_messages(alice2, ['rx-2'])

    def test_resume_after_bind_is_unexpected_request(self):
        acc_a, acc_b, alice, bob = self.pair('rb')
        user, pw = acc_a
        p = SMPeer(self, user, pw, 'other', enable=False)
        el = p.resume(alice.sm_id, alice.h_in)
        self.assertFailed(el, 'unexpected-request', '<resume/> after bind: ')
        # the live session is untouched
        self.send_and_receive(bob, alice, ['rb-1'])
        self.assertFalse(alice.rs.eof)

    def test_resume_before_authentication_never_resumes(self):
        acc_a, acc_b, alice, bob = self.pair('rp')
        alice.drop()
        rs = self.raw()
        rs.open_stream()
        rs.starttls()
        rs.open_stream()
        rs.send("<resume xmlns='%s' previd='%s' h='0'/>" % (NS_SM, alice.sm_id))
        try:
            el = rs.next_element()
            self.assertNotEqual(el.tag, q(NS_SM, 'resumed'), 'resumed without authentication!')
        except AssertionError as e:
            # a stream error (not-authorized...) or a closed stream is fine
            if 'resumed' in str(e):
                raise
        self.assertNotIn('resumed', rs.text, 'resumed without authentication: %s' % rs.text[-1500:])
        alice2, el = self.resume_peer(acc_a, alice.sm_id, alice.h_in)
        self.assertResumed(el, alice.sm_id, alice.h_out)

    def test_resume_with_impossible_h_is_refused_and_harmless(self):
        acc_a, acc_b, alice, bob = self.pair('rt')
        self.send_and_receive(bob, alice, ['rt-1', 'rt-2'])
        alice.ack(alice.h_in - 1)            # acked all but rt-2
        alice.barrier()
        acked = alice.h_in - 2
        alice.drop()
        bob.message(alice.jid, 'queued', id_='rt-3')
        bob.barrier()
        user, pw = acc_a
        cases = ((alice.h_in + 5, 'higher than sent'), (4294967295, '2^32-1: "-1", higher than sent'),
                 (acked - 1, 'lower than the last <a/> (those stanzas are gone)'))
        for h, what in cases:
            with self.subTest(h=h, what=what):
                p = SMPeer(self, user, pw, bind=False, enable=False)
                p.rs.send("<resume xmlns='%s' previd='%s' h='%d'/>" % (NS_SM, alice.sm_id, h))
                try:
                    el = p.expect(lambda e: e.tag in (q(NS_SM, 'resumed'), q(NS_SM, 'failed')))
                    self.assertEqual(el.tag, q(NS_SM, 'failed'), 'resumed with h=%d (%s; sent %d, acked %d): %s'
                                     % (h, what, alice.h_in, acked, xml(el)))
                except StreamErrorReceived:
                    cond, err = stream_error_of(p.rs.text)
                    self.assertEqual(cond, 'undefined-condition', err)
                p.rs.close()
        # the session is still there: the right h resumes it, nothing lost
        alice2, el = self.resume_peer(acc_a, alice.sm_id, alice.h_in)
        self.assertResumed(el, alice.sm_id, alice.h_out)
        self.expect_messages(alice2, ['rt-3'])
        alice2.quiet(M('message'), 'a message acked before')

    # -- clean close ---------------------------------------------------------------
    def test_clean_close_ends_session_at_once_unacked_to_offline(self):
        acc_a, acc_b, alice, bob = self.pair('rc')
        self.send_and_receive(bob, alice, ['rc-1', 'rc-2'])
        alice.logout()
        # no hibernation: unavailable at once, resumption impossible
        bob.expect(unavailable_from(alice.jid), timeout=RESUME_TIMEOUT - 1,
                   what='alice\'s unavailable presence right after </stream:stream>')
        p, el = self.resume_peer(acc_a, alice.sm_id, alice.h_in)
        self.assertFailed(el, 'item-not-found', 'resume after a clean close: ')
        # the two unacked messages were stored offline
        user, pw = acc_a
        again = self.peer(acc_a, 'again')
        again.available()
        for el in self.expect_messages(again, ['rc-1', 'rc-2']):
            self.assertDelayed(el)
        again.quiet(M('message'), 'more messages')

    # -- expiry ---------------------------------------------------------------------
    def test_expiry_item_not_found_messages_offline_iq_error(self):
        acc_a, acc_b, alice, bob = self.pair('re')
        before = ['re-pre-1', 're-pre-2']
        self.send_and_receive(bob, alice, before)
        alice.drop()
        t_drop = time.monotonic()
        during = ['re-dur-1', 're-dur-2']
        self.assertEqual(bob.message(alice.jid, 'during 1', id_=during[0]), during[0])
        bob.message(alice.bare, 'during 2', id_=during[1])
        bob.send("<iq type='get' id='re-iq' to='%s'><query xmlns='%s'/></iq>" % (alice.jid, NS_VERSION))
        bob.send("<presence to='%s'><status>directed</status></presence>" % alice.jid)
        # hibernated for resume_timeout, then unavailable
        bob.expect(unavailable_from(alice.jid), timeout=RESUME_TIMEOUT + TIMEOUT,
                   what='alice\'s unavailable presence when her hibernated session expires')
        dt = time.monotonic() - t_drop
        self.assertGreater(dt, RESUME_TIMEOUT - 1.0, 'session ended %.1fs after the drop, before the resume '
                           'timeout of %ds' % (dt, RESUME_TIMEOUT))
        err = bob.expect(M('iq', id='re-iq'), what='the error for the IQ queued in the expired session')
        self.assertStanzaError(err, 'service-unavailable')
        bob.quiet(M('message', type='error'), 'an error for a message (they go to offline storage)')
        p, el = self.resume_peer(acc_a, alice.sm_id, alice.h_in)
        self.assertFailed(el, 'item-not-found', 'resume after expiry: ')
        # XEP-0198 §5: the <failed/> for an expired session says what the server handled
        self.assertEqual(el.get('h'), str(alice.h_out),
                         'h on <failed/> after expiry: %s' % xml(el))
        # bind on the same stream after the failed resumption, then offline delivery
        p.jid = p.rs.bind('r')
        p.available()
        got = self.expect_messages(p, before + during)
        for el in got:
            self.assertDelayed(el)
            self.assertEqual(el.get('from'), bob.jid, xml(el))
        p.quiet(M('message'), 'more messages (duplicates)')
        self.assertOnce(before + during, p.seen)

    # -- a new login with the same resource -------------------------------------------
    def test_new_bind_of_same_resource_replaces_hibernated_session(self):
        acc_a, acc_b, alice, bob = self.pair('rr')
        before = ['rr-1', 'rr-2']
        self.send_and_receive(bob, alice, before)
        alice.drop()
        bob.message(alice.jid, 'queued', id_='rr-3')
        bob.barrier()
        fresh = self.peer(acc_a, 'r')
        self.assertEqual(fresh.jid, alice.jid, 'the resource was not given back to the new login')
        p, el = self.resume_peer(acc_a, alice.sm_id, alice.h_in)
        self.assertFailed(el, 'item-not-found', 'resume of a replaced session: ')
        fresh.available()
        for el in self.expect_messages(fresh, before + ['rr-3']):
            self.assertDelayed(el)
        fresh.quiet(M('message'), 'more messages')
        self.assertOnce(before + ['rr-3'], fresh.seen)

    def test_new_login_with_another_resource_does_not_replace(self):
        acc_a, acc_b, alice, bob = self.pair('rd')
        self.send_and_receive(bob, alice, ['rd-1'])
        alice.drop()
        other = self.peer(acc_a, 'other', available=True)
        self.assertNotEqual(other.jid, alice.jid)
        bob.message(alice.jid, 'to the hibernated resource', id_='rd-2')
        bob.barrier()
        alice2, el = self.resume_peer(acc_a, alice.sm_id, alice.h_in)
        self.assertResumed(el, alice.sm_id, alice.h_out)
        self.expect_messages(alice2, ['rd-2'])
        other.quiet(M('message', id='rd-2'), 'a message for the hibernated full JID')

    def test_resume_twice_in_a_row(self):
        acc_a, acc_b, alice, bob = self.pair('r2')
        self.send_and_receive(bob, alice, ['r2-1'])
        alice.drop()
        bob.message(alice.jid, 'during the first hibernation', id_='r2-2')
        bob.barrier()
        alice2, el = self.resume_peer(acc_a, alice.sm_id, alice.h_in, auto_ack=False)
        self.assertResumed(el, alice.sm_id, alice.h_out)
        self.expect_messages(alice2, ['r2-2'])
        alice2.barrier()
        alice2.drop()
        bob.message(alice.bare, 'during the second hibernation', id_='r2-3')
        bob.quiet(M(fn=lambda el: el.get('type') in ('unavailable', 'error')), 'an unavailable presence or error')
        alice3, el = self.resume_peer(acc_a, alice.sm_id, alice2.h_in, auto_ack=False)
        self.assertResumed(el, alice.sm_id, alice2.h_out, 'second resumption: ')
        self.expect_messages(alice3, ['r2-3'])
        alice3.quiet(M('message'), 'a message delivered again')
        self.assertOnce(['r2-1', 'r2-2', 'r2-3'], alice.seen + alice2.seen + alice3.seen)
        self.assertEqual(alice3.request(), alice3.h_out)

    def test_non_resumable_sm_session_ends_at_once_unacked_to_offline(self):
        acc_a, acc_b = self.new_user('rna'), self.new_user('rnb')
        self.befriend_accounts(acc_a, acc_b)
        bob = self.peer(acc_b, 'b', available=True)
        alice = self.sm_peer(acc_a, 'r', available=True, auto_ack=False, resume=False)
        bob.expect(M('presence', frm=alice.jid))
        self.send_and_receive(bob, alice, ['rn-1', 'rn-2'])
        t = time.monotonic()
        alice.drop()
        bob.expect(unavailable_from(alice.jid), timeout=RESUME_TIMEOUT - 1,
                   what='the unavailable presence of a non-resumable session whose connection died')
        self.assertLess(time.monotonic() - t, RESUME_TIMEOUT - 1)
        again = self.peer(acc_a, 'again')
        again.available()
        for el in self.expect_messages(again, ['rn-1', 'rn-2']):
            self.assertDelayed(el)
        again.quiet(M('message'), 'more messages')

    def check_expiry_with_other_resource(self, prefix, other_stays):
        acc_a, acc_b, alice, bob = self.pair(prefix)
        other = self.peer(acc_a, 'other', available=True)
        bob.expect(M('presence', frm=other.jid))
        # a chat message to the bare JID reaches both resources (same priority)
        bob.message(alice.bare, 'to every resource', id_='%s-both' % prefix, type_='chat')
        self.expect_messages(alice, ['%s-both' % prefix])
        self.expect_messages(other, ['%s-both' % prefix])
        bob.message(alice.jid, 'to the SM resource only', id_='%s-full' % prefix)
        self.expect_messages(alice, ['%s-full' % prefix])
        if not other_stays:
            other.logout()
        alice.drop()
        bob.expect(unavailable_from(alice.jid), timeout=RESUME_TIMEOUT + TIMEOUT,
                   what='alice\'s unavailable presence when her hibernated session expires')
        fresh = self.peer(acc_a, 'n')
        fresh.available()
        if other_stays:
            # the full-JID message goes to offline storage (delivered at this
            # login) or, as the account is online, to the other resource
            other.barrier()
            fresh.barrier()
            copies = other.take_all(M('message', id='%s-full' % prefix)) + \
                fresh.take_all(M('message', id='%s-full' % prefix))
            if not copies:
                copies = [fresh.expect(M('message', id='%s-full' % prefix),
                                       what='the unacked full-JID message (offline storage)')]
            self.assertEqual(len(copies), 1, 'copies of the full-JID message: %s' % [xml(c) for c in copies])
            other.quiet(M('message', id='%s-both' % prefix), 'the bare-JID message a second time')
        else:
            got = self.expect_messages(fresh, ['%s-full' % prefix])
            self.assertDelayed(got[0])
        fresh.quiet(M('message', id='%s-both' % prefix),
                    'a bare-JID chat message that another resource had received (%s)'
                    % ('still online' if other_stays else 'since logged out'))

    def test_expiry_does_not_store_what_another_online_resource_received(self):
        self.check_expiry_with_other_resource('rm', other_stays=True)

    def test_expiry_does_not_store_what_a_since_closed_resource_received(self):
        self.check_expiry_with_other_resource('rk', other_stays=False)

    def test_enable_max_shorter_than_resume_timeout_is_honoured(self):
        acc_a, acc_b = self.new_user('rya'), self.new_user('ryb')
        self.befriend_accounts(acc_a, acc_b)
        bob = self.peer(acc_b, 'b', available=True)
        alice = self.sm_peer(acc_a, 'r', available=True, max_=1)
        self.assertEqual(alice.enabled.get('max'), '1', xml(alice.enabled))
        bob.expect(M('presence', frm=alice.jid))
        t = time.monotonic()
        alice.drop()
        bob.expect(unavailable_from(alice.jid), timeout=TIMEOUT,
                   what='the end of a session hibernated with max=1')
        dt = time.monotonic() - t
        self.assertGreater(dt, 0.5, 'ended %.1fs after the drop (hibernation of max=1s expected)' % dt)
        self.assertLess(dt, RESUME_TIMEOUT - 0.5, 'ended %.1fs after the drop: max=1 ignored (resume_timeout=%ds)'
                        % (dt, RESUME_TIMEOUT))

    def test_resumed_h_tells_exactly_what_the_server_handled(self):
        # the client sends a message and the connection dies at once: the
        # message may or may not have been handled; <resumed h/> must say
        # which, so that re-sending what is past h delivers it exactly once
        acc_a, acc_b, alice, bob = self.pair('rv')
        cur = alice
        for n in range(6):
            mid = 'rv-%d' % n
            cur.message(bob.jid, 'sent just before the drop %d' % n, id_=mid)
            sent = cur.h_out
            cur.drop()
            nxt, el = self.resume_peer(acc_a, alice.sm_id, cur.h_in)
            self.assertResumed(el, alice.sm_id, msg='round %d: ' % n)
            h = int(el.get('h'))
            self.assertIn(h, (sent - 1, sent), 'round %d: <resumed h=%d/>, the client sent %d' % (n, h, sent))
            if h == sent - 1:
                bob.quiet(M('message', id=mid), 'a message the server said it had not handled (h=%d)' % h)
                nxt.message(bob.jid, 'sent just before the drop %d' % n, id_=mid)    # re-sent
            bob.expect(M('message', id=mid), what='message %s (h=%d of %d)' % (mid, h, sent))
            nxt.barrier()
            cur = nxt
        bob.quiet(M('message'), 'a duplicate')
        self.assertOnce(['rv-%d' % n for n in range(6)], bob.seen)

    # -- timers -------------------------------------------------------------------------
    def test_resumed_session_outlives_the_resume_timeout(self):
        acc_a, acc_b, alice, bob = self.pair('rs')
        alice.drop()
        t0 = time.monotonic()
        time.sleep(RESUME_TIMEOUT * 0.6)          # part of the first hibernation used up
        alice2, el = self.resume_peer(acc_a, alice.sm_id, alice.h_in)
        self.assertResumed(el, alice.sm_id, alice.h_out)
        alice2.barrier()
        alice2.drop()                             # second hibernation: a full resume timeout again
        time.sleep(max(0.0, RESUME_TIMEOUT * 1.2 - (time.monotonic() - t0)))
        bob.message(alice.jid, 'after the first timeout would have fired', id_='rs-1')
        bob.quiet(unavailable_from(alice.jid), 'an unavailable presence: the first hibernation\'s timer '
                  'ended the resumed session')
        alice3, el = self.resume_peer(acc_a, alice.sm_id, alice2.h_in)
        self.assertResumed(el, alice.sm_id, alice2.h_out, 'second resumption %.1fs after the first drop: '
                           % (time.monotonic() - t0))
        self.expect_messages(alice3, ['rs-1'])
        # and a live resumed session is not ended by any timer
        alice3.pump_for(RESUME_TIMEOUT + 0.5)
        self.assertFalse(alice3.rs.eof, alice3.rs.text[-1500:])
        bob.quiet(unavailable_from(alice.jid), 'an unavailable presence for a live resumed session')
        bob.message(alice.jid, 'still there', id_='rs-2')
        self.expect_messages(alice3, ['rs-2'])

    # -- stream errors end the session for good --------------------------------------------
    def test_stream_error_ends_resumable_session_at_once(self):
        acc_a, acc_b, alice, bob = self.pair('rq')
        self.send_and_receive(bob, alice, ['rq-1'])
        alice.send('<message><<</message>')        # not well-formed
        cond, _ = stream_error_of(alice.rs.read_until_closed())
        self.assertIsNotNone(cond, 'no stream error for bad XML: %s' % alice.rs.text[-1000:])
        bob.expect(unavailable_from(alice.jid), timeout=RESUME_TIMEOUT - 1,
                   what='the unavailable presence right after the stream error (no hibernation)')
        p, el = self.resume_peer(acc_a, alice.sm_id, alice.h_in)
        self.assertFailed(el, 'item-not-found', 'resume after a stream error: ')
        p.jid = p.rs.bind('r')
        p.available()
        self.assertDelayed(self.expect_messages(p, ['rq-1'])[0])

    def test_malformed_resume_never_resumes(self):
        acc_a, acc_b, alice, bob = self.pair('rz')
        alice.drop()
        user, pw = acc_a
        bad = [
            "<resume xmlns='%s' h='0'/>" % NS_SM,                                   # no previd
            "<resume xmlns='%s' previd='%s'/>" % (NS_SM, alice.sm_id),              # no h
            "<resume xmlns='%s' previd='%s' h='abc'/>" % (NS_SM, alice.sm_id),
            "<resume xmlns='%s' previd='%s' h='-1'/>" % (NS_SM, alice.sm_id),
            "<resume xmlns='%s' previd='%s' h='4294967296'/>" % (NS_SM, alice.sm_id),
            "<resume xmlns='%s' previd='%s' h='0'/>" % (NS_SM, 'x' * 3000),
            "<resume xmlns='urn:xmpp:sm:2' previd='%s' h='0'/>" % alice.sm_id,    # wrong namespace
        ]
        for data in bad:
            with self.subTest(resume=data[:90]):
                p = SMPeer(self, user, pw, bind=False, enable=False)
                p.rs.send(data)
                try:
                    el = p.expect(lambda e: e.tag.startswith('{urn:xmpp:sm:'), timeout=3,
                                  what='an answer to a malformed <resume/>')
                    self.assertNotEqual(el.tag, q(NS_SM, 'resumed'), 'resumed with %s' % data[:200])
                    self.assertEqual(el.tag, q(NS_SM, 'failed'), xml(el))
                except AssertionError as e:
                    if 'resumed' in str(e) and 'failed' not in str(e):
                        raise
                    self.assertNotIn('<resumed', p.rs.text, data[:200])
                    cond, _ = stream_error_of(p.rs.text)
                    if cond is None and not p.rs.eof:
                        raise
                p.rs.close()
        # after all that, the real resumption works
        alice2, el = self.resume_peer(acc_a, alice.sm_id, alice.h_in)
        self.assertResumed(el, alice.sm_id, alice.h_out)


class SMOverflowTests(SMTestCase):
    MAX_QUEUE = 5
    server_config = {'sm': {'enabled': True, 'resume_timeout': '60s', 'max_queue': MAX_QUEUE,
                            'ack_timeout': '60s', 'request_every': 5}}

    def test_queue_overflow_ends_session_nothing_lost(self):
        acc_a, acc_b = self.new_user('oa'), self.new_user('ob')
        self.befriend_accounts(acc_a, acc_b)
        bob = self.peer(acc_b, 'b', available=True)
        alice = self.sm_peer(acc_a, 'r', available=True)
        bob.expect(M('presence', frm=alice.jid))
        alice.barrier()
        alice.ack()
        alice.barrier()
        alice.ack()                     # everything acked: the queue is empty
        h_seen = alice.h_in
        alice.drop()
        bob.send("<iq type='get' id='ov-iq' to='%s'><query xmlns='%s'/></iq>" % (alice.jid, NS_VERSION))
        ids = ['ov-%02d' % i for i in range(2 * self.MAX_QUEUE)]
        for i in ids:
            bob.message(alice.bare if int(i[-2:]) % 2 else alice.jid, 'overflow %s' % i, id_=i)
        bob.expect(unavailable_from(alice.jid), what='alice\'s unavailable presence after the queue overflowed '
                   '(max_queue=%d, %d sent)' % (self.MAX_QUEUE, len(ids)))
        self.assertStanzaError(bob.expect(M('iq', id='ov-iq'), what='the error for the IQ of the ended session'),
                               'service-unavailable')
        bob.quiet(M('message', type='error'), 'an error for a message')
        p, el = self.resume_peer(acc_a, alice.sm_id, h_seen)
        self.assertFailed(el, 'item-not-found', 'resume after overflow: ')
        p.jid = p.rs.bind('r')
        p.available()
        for el in self.expect_messages(p, ids):
            self.assertDelayed(el)
        p.quiet(M('message'), 'more messages')
        self.assertOnce(ids, p.seen)

    def test_live_client_leaving_too_much_unacked_gets_policy_violation(self):
        # configuration.md: a live client that leaves more than max_queue
        # unacknowledged gets <policy-violation/>; nothing is lost
        acc_a, acc_b = self.new_user('pa'), self.new_user('pb')
        bob = self.peer(acc_b, 'b', available=True)
        alice = self.sm_peer(acc_a, 'r', available=True, auto_ack=True)
        alice.barrier()
        alice.ack()
        alice.barrier()
        alice.ack()
        alice.auto_ack = False
        ids = ['pv-%d' % i for i in range(self.MAX_QUEUE + 2)]
        for i in ids:
            bob.message(alice.jid, 'unacked %s' % i, id_=i)
        text = alice.rs.read_until_closed()
        cond, err = stream_error_of(text)
        self.assertEqual(cond, 'policy-violation', 'stream error for %d unacked stanzas (max_queue=%d):\n%s'
                         % (len(ids), self.MAX_QUEUE, text[-2000:]))
        bob.quiet(M('message', type='error'), 'an error for a message')
        again = self.peer(acc_a, 'again')
        again.available()
        for el in self.expect_messages(again, ids):
            self.assertDelayed(el)
        again.quiet(M('message'), 'more messages')
        self.assertOnce(ids, again.seen)


class SMOfflineQuotaTests(SMTestCase):
    server_config = {'sm': {'enabled': True, 'resume_timeout': '1s'}, 'offline': {'max_messages': 2}}

    def test_handoff_beyond_offline_quota_bounces_to_sender(self):
        acc_a, acc_b = self.new_user('qa'), self.new_user('qb')
        self.befriend_accounts(acc_a, acc_b)
        bob = self.peer(acc_b, 'b', available=True)
        alice = self.sm_peer(acc_a, 'r', available=True)
        bob.expect(M('presence', frm=alice.jid))
        alice.barrier()
        alice.ack()
        alice.drop()
        ids = ['qt-%d' % i for i in range(4)]
        for i in ids:
            bob.message(alice.jid, 'over quota %s' % i, id_=i)
        bob.expect(unavailable_from(alice.jid), timeout=1 + TIMEOUT, what='the end of the hibernated session')
        p = self.peer(acc_a, 'n')
        p.available()
        p.barrier()
        stored = [e.get('id') for e in p.take_all(M('message'))]
        self.assertEqual(len(stored), 2, 'offline quota is 2; stored: %s' % stored)
        bounced = []
        for i in ids:
            if i not in stored:
                el = bob.expect(M('message', id=i, type='error'),
                                what='an error for %s, refused by the full offline storage' % i)
                self.assertStanzaError(el, ('resource-constraint', 'service-unavailable'))
                bounced.append(i)
        bob.quiet(M('message', type='error'), 'more errors')
        self.assertEqual(sorted(stored + bounced), ids,
                         'every message must be stored or bounced to its sender, once: stored %s bounced %s'
                         % (stored, bounced))


ACK_TIMEOUT = 2
REQUEST_INTERVAL = 1


class SMDeadPeerTests(SMTestCase):
    server_config = {'sm': {'enabled': True, 'resume_timeout': '30s', 'ack_timeout': '%ds' % ACK_TIMEOUT,
                            'request_every': 50, 'request_interval': '%ds' % REQUEST_INTERVAL}}

    def setup_pair(self, prefix, auto_ack):
        acc_a, acc_b = self.new_user(prefix + 'a'), self.new_user(prefix + 'b')
        self.befriend_accounts(acc_a, acc_b)
        bob = self.peer(acc_b, 'b', available=True)
        alice = self.sm_peer(acc_a, 'r', available=True, auto_ack=True)
        bob.expect(M('presence', frm=alice.jid))
        alice.barrier()
        alice.ack()
        alice.auto_ack = auto_ack
        return acc_a, acc_b, alice, bob

    def test_unanswered_r_hibernates_then_resume_works(self):
        acc_a, acc_b, alice, bob = self.setup_pair('da', auto_ack=False)
        bob.message(alice.jid, 'unacked', id_='dp-1')
        self.expect_messages(alice, ['dp-1'])
        # request_interval with unacked stanzas: the server asks
        alice.expect(SM('r'), timeout=REQUEST_INTERVAL + TIMEOUT, what='<r/> after request_interval')
        t_r = time.monotonic()
        alice.wait_closed(timeout=ACK_TIMEOUT + TIMEOUT)
        dt = time.monotonic() - t_r
        self.assertGreater(dt, ACK_TIMEOUT - 0.6, 'closed %.1fs after <r/>, before ack_timeout' % dt)
        # hibernated, not ended
        bob.message(alice.jid, 'while hibernated', id_='dp-2')
        bob.quiet(M(fn=lambda el: el.get('type') in ('unavailable', 'error')),
                  'an unavailable presence or error (the session must be hibernated)')
        alice2, el = self.resume_peer(acc_a, alice.sm_id, alice.h_in)
        self.assertResumed(el, alice.sm_id, alice.h_out)
        self.expect_messages(alice2, ['dp-2'])
        alice2.quiet(M('message', id='dp-1'), 'a message already received and acked by the resume h')

    def test_ack_timer_of_the_old_connection_does_not_kill_the_resumed_one(self):
        acc_a, acc_b, alice, bob = self.setup_pair('do', auto_ack=False)
        bob.message(alice.jid, 'unacked', id_='do-1')
        self.expect_messages(alice, ['do-1'])
        alice.expect(SM('r'), timeout=REQUEST_INTERVAL + TIMEOUT, what='<r/> after request_interval')
        alice.drop()                  # <r/> pending, its ack timer running
        alice2, el = self.resume_peer(acc_a, alice.sm_id, alice.h_in, auto_ack=True)
        self.assertResumed(el, alice.sm_id, alice.h_out)
        alice2.pump_for(ACK_TIMEOUT + 1.0)
        self.assertFalse(alice2.rs.eof, 'the resumed connection was closed (old <r/> timer?):\n%s'
                         % alice2.rs.text[-1500:])
        bob.quiet(unavailable_from(alice.jid), 'an unavailable presence')
        bob.message(alice.jid, 'still alive', id_='do-2')
        self.expect_messages(alice2, ['do-2'])

    def test_answered_r_keeps_connection(self):
        acc_a, acc_b, alice, bob = self.setup_pair('dk', auto_ack=True)
        bob.message(alice.jid, 'acked', id_='dk-1')
        self.expect_messages(alice, ['dk-1'])
        alice.pump_for(REQUEST_INTERVAL + ACK_TIMEOUT + 1.5)
        self.assertFalse(alice.rs.eof, 'connection closed although every <r/> was answered:\n%s'
                         % alice.rs.text[-1500:])
        self.assertTrue(alice.r_received, 'no <r/> within %ds with an unacked stanza (request_interval=%ds)'
                        % (REQUEST_INTERVAL + ACK_TIMEOUT + 1, REQUEST_INTERVAL))
        alice.barrier()


if __name__ == '__main__':
    unittest.main()
