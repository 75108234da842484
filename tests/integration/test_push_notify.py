"""Push notifications (XEP-0357), server side: when ternd publishes to the
app server (offline, hibernated, ack overdue, several devices, call
invitations) and when it must not (live acking session, chat states), and
what a publish looks like (summary form, no body or sender by default,
publish-options echoed, OMEMO never leaks its fallback body)."""

import time

from harness import TIMEOUT
from push_common import (NS_JMI, NS_OMEMO_LEGACY, PLACEHOLDER, PUBLISH_OPTIONS, PushTestCase, esc, one)
from test_chat_common import NS_CHATSTATES, NS_HINTS, M, body_of, xml

ACK_DELAY = 2.0
BATCH_WINDOW = 1.0     # "batched within ~1 s"
SETTLE = 1.2           # how long "no further publish" is watched for


def propose(call_id='c1'):
    return ("<propose xmlns='%s' id='%s'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>"
            "</propose><store xmlns='%s'/>" % (NS_JMI, call_id, NS_HINTS))


def omemo(fallback):
    return ("<encrypted xmlns='%s'><header sid='1234'><key rid='42'>a2V5</key><iv>aXY=</iv></header>"
            "<payload>cGF5bG9hZA==</payload></encrypted><store xmlns='%s'/>" % (NS_OMEMO_LEGACY, NS_HINTS)), fallback


class PushNotifyTests(PushTestCase):

    # -- offline ----------------------------------------------------------------
    def test_offline_message_one_publish_default_privacy(self):
        acc, (node,), bob = self.registered_offline('of')
        secret_text = 'the real text 9f3a'
        bob.message(self.bare(acc), secret_text, id_='of-1')
        p = self.comp.wait_publishes(node, 1, what='publish for a message to an offline user')[0]
        self.assertNotification(p, node)
        self.assertNotIn('last-message-sender', p['summary'],
                         'sender included although push.include_sender is false: %s' % p['raw'])
        self.assertEqual(one(p['summary'], 'last-message-body'), PLACEHOLDER,
                         'last-message-body must be the placeholder: %s' % p['raw'])
        self.assertNotIn(secret_text, p['raw'], 'the message body leaked into the publish')
        self.assertNotIn(bob.bare, p['raw'], 'the sender leaked into the publish')
        self.assertEqual(p['options'], {'FORM_TYPE': [PUBLISH_OPTIONS], 'secret': ['s']},
                         'publish-options must echo the enable form: %s' % p['raw'])
        self.assertEqual(p['n_items'], 1, p['raw'])
        self.comp.expect_no_more(node, 1, SETTLE, 'more than one publish for one message')
        # and the message itself went to offline storage as usual
        back = self.peer(acc, 'back')
        back.available()
        el = back.expect(M('message', id='of-1'), what='the offline message')
        self.assertEqual(body_of(el), secret_text, xml(el))

    def test_each_offline_message_one_publish_counting_what_waits(self):
        acc, (node,), bob = self.registered_offline('om')
        for i in range(1, 4):
            bob.message(self.bare(acc), 'message %d' % i, id_='om-%d' % i)
        pubs = self.comp.wait_publishes(node, 3, what='one publish per message stored offline')
        counts = [int(one(p['summary'], 'message-count') or 0) for p in pubs]
        self.assertEqual(counts, sorted(counts), 'message-count went down: %s' % counts)
        self.assertEqual(counts[-1], 3, 'the last publish must count the 3 waiting messages: %s' % counts)
        self.assertGreaterEqual(counts[0], 1, counts)
        self.comp.expect_no_more(node, 3, SETTLE, 'more publishes than messages stored')

    def test_call_taken_by_a_live_session_rings_the_other_devices(self):
        """A call invitation to the bare JID reaches a connected session, is
        queued for a hibernated one and would go nowhere for a device whose
        session is gone: the two devices that are not connected each get one
        urgent publish; the connected one gets none."""
        acc = self.new_user('cl')
        n_live, n_hib, n_gone = self.new_node('cl-live'), self.new_node('cl-hib'), self.new_node('cl-gone')
        gone = self.peer(acc, 'gone')
        self.enable_ok(gone, n_gone)
        gone.logout()
        hib = self.sm_peer(acc, 'hib', available=True)
        self.enable_ok(hib, n_hib)
        hib.barrier()
        hib.drop()
        live = self.peer(acc, 'live')
        self.enable_ok(live, n_live)
        live.available()
        bob = self.peer(self.new_user('cls'), 's')
        bob.barrier()
        bob.message(self.bare(acc), None, type_='chat', id_='cl-1', extra=propose('call-live-1'))
        live.expect(M('message', id='cl-1'), what='the call invitation on the connected session')
        for n in (n_gone, n_hib):
            p = self.comp.wait_publishes(n, 1, what='an urgent publish to %s' % n)[0]
            self.assertNotification(p, n)
            prio = p['notification'].find('{tigase:push:priority:0}priority')
            self.assertIsNotNone(prio, 'a call must be marked urgent: %s' % p['raw'])
            self.assertEqual(prio.text, 'high', p['raw'])
        self.comp.expect_no_more(n_gone, 1, SETTLE, 'the call was announced twice to the device whose session is gone')
        self.comp.expect_no_more(n_hib, 1, 0, 'the call was announced twice to the hibernated device')
        self.comp.expect_no_more(n_live, 0, 0, 'a publish to the device that took the call')

    def test_two_devices_both_offline_one_publish_each(self):
        acc = self.new_user('td')
        n1, n2 = self.new_node('td-1'), self.new_node('td-2')
        d1, d2 = self.peer(acc, 'd1'), self.peer(acc, 'd2')
        self.enable_ok(d1, n1)
        self.enable_ok(d2, n2)
        d1.logout()
        d2.logout()
        bob = self.peer(self.new_user('tds'), 's')
        bob.message(self.bare(acc), 'to both devices', id_='td-1')
        self.assertNotification(self.comp.wait_publishes(n1, 1)[0], n1)
        self.assertNotification(self.comp.wait_publishes(n2, 1)[0], n2)
        self.comp.expect_no_more(n1, 1, SETTLE, 'device 1: more than one publish')
        self.comp.expect_no_more(n2, 1, 0, 'device 2: more than one publish')

    def test_offline_only_registrations_without_a_session_publish(self):
        """Messages go offline when every session has a negative priority
        (RFC 6121 8.5.2.1.1); then only the registration whose session is
        gone publishes, not those of a live or a hibernated session."""
        acc = self.new_user('nb')
        n_live, n_hib, n_gone = self.new_node('nb-live'), self.new_node('nb-hib'), self.new_node('nb-gone')
        gone = self.peer(acc, 'gone')
        self.enable_ok(gone, n_gone)
        gone.logout()
        hib = self.sm_peer(acc, 'hib')
        self.enable_ok(hib, n_hib)
        hib.presence(priority=-1)
        hib.barrier()
        hib.drop()
        live = self.sm_peer(acc, 'live')
        self.enable_ok(live, n_live)
        live.presence(priority=-1)
        live.barrier()
        bob = self.peer(self.new_user('nbs'), 's')
        bob.message(self.bare(acc), 'to nobody online', id_='nb-1')
        bob.quiet(M('message', type='error'), 'an error for a message that goes offline')
        self.assertNotification(self.comp.wait_publishes(n_gone, 1, what='publish to the registration '
                                                         'whose session is gone')[0], n_gone)
        live.pump_for(SETTLE)
        self.comp.expect_no_more(n_live, 0, 0, 'publish to the registration of a live session')
        self.comp.expect_no_more(n_hib, 0, 0, 'publish to the registration of a hibernated session')
        self.comp.expect_no_more(n_gone, 1, 0, 'more than one publish')
        live.expect_none(M('message', id='nb-1'), what='a bare-JID message on a negative-priority session')

    def test_chat_state_alone_to_offline_user_no_publish(self):
        acc, (node,), bob = self.registered_offline('cs')
        to = self.bare(acc)
        for state in ('active', 'composing', 'paused'):
            bob.message(to, None, type_='chat', id_='cs-' + state, extra="<%s xmlns='%s'/>" % (state, NS_CHATSTATES))
        bob.barrier()
        self.comp.expect_no_more(node, 0, SETTLE, 'publish for a chat state alone')
        bob.message(to, 'now with a body', id_='cs-body')
        self.comp.wait_publishes(node, 1, what='publish for the body message after the chat states')

    def test_omemo_message_gives_placeholder_not_fallback(self):
        acc, (node,), bob = self.registered_offline('om')
        payload, fallback = omemo('I sent you an OMEMO encrypted message but your client does not seem '
                                  'to support that 7c1e')
        bob.message(self.bare(acc), fallback, id_='om-1', extra=payload)
        p = self.comp.wait_publishes(node, 1)[0]
        self.assertNotification(p, node)
        self.assertNotIn('7c1e', p['raw'], 'the OMEMO fallback body leaked into the publish')
        self.assertEqual(one(p['summary'], 'last-message-body'), PLACEHOLDER, p['raw'])

    def test_call_invitation_to_offline_user_publishes(self):
        acc, (node,), bob = self.registered_offline('ci')
        bob.message(self.bare(acc), None, type_='chat', id_='ci-1', extra=propose('call-off-1'))
        p = self.comp.wait_publishes(node, 1, what='publish for a call invitation to an offline user')[0]
        self.assertNotification(p, node)
        body = one(p['summary'], 'last-message-body')
        self.assertIn(body, (None, PLACEHOLDER), 'a call invitation body other than the placeholder: %s' % p['raw'])

    # -- live sessions --------------------------------------------------------------
    def test_live_acking_session_no_publish(self):
        """The client answers every <r/> and also acknowledges each stanza
        as it arrives (XEP-0198 4: an <a/> may be sent at any time)."""
        acc = self.new_user('la')
        node = self.new_node('la')
        alice = self.sm_peer(acc, 'r', available=True)          # auto-acks every <r/>
        self.enable_ok(alice, node)
        bob = self.peer(self.new_user('las'), 's')
        bob.message(self.bare(acc), 'you are online', id_='la-1')
        alice.expect(M('message', id='la-1'))
        alice.ack()                                               # h includes the message
        alice.pump_for(ACK_DELAY + 1.0)                          # keeps answering <r/>
        self.comp.expect_no_more(node, 0, 0, 'publish although the session is live and acked the message')
        self.assertFalse(alice.rs.eof, alice.dump())
        # control: once the session is over the same registration publishes
        alice.logout()
        bob.message(self.bare(acc), 'now you are gone', id_='la-2')
        self.comp.wait_publishes(node, 1, what='publish after the device logged out')

    def test_live_session_answering_every_r_no_publish(self):
        """The client answers every <r/> the server sends, at once, and
        nothing else (like most clients).  Here the message is delivered
        while the server's previous <r/> is outstanding; the client's answer
        to that <r/> naturally does not cover the message, which came after
        it.  The server must ask again (or otherwise find out) before it
        decides the device is not acknowledging: a live client that answers
        every request must not be pushed."""
        acc = self.new_user('lr')
        node = self.new_node('lr')
        alice = self.sm_peer(acc, 'r', available=True, auto_ack=False)
        self.enable_ok(alice, node)
        alice.barrier()
        alice.expect(lambda el: el.tag == '{urn:xmpp:sm:3}r', what='an <r/> from the server')
        alice.take_all(lambda el: el.tag == '{urn:xmpp:sm:3}r')
        h_at_r = alice.h_in                                       # what the <r/> asks about
        bob = self.peer(self.new_user('lrs'), 's')
        bob.message(self.bare(acc), 'you are online', id_='lr-1')
        alice.expect(M('message', id='lr-1'))
        alice.ack(h_at_r)                                         # the answer to that <r/>
        alice.auto_ack = True                                     # and to every later one
        n_r = len(alice.r_received)
        alice.pump_for(ACK_DELAY + 1.0)
        self.comp.expect_no_more(
            node, 0, 0, 'publish to a live session that answered every <r/> (%d <r/> received after the '
            'message; the server never asked about the message)' % (len(alice.r_received) - n_r))
        self.assertFalse(alice.rs.eof, alice.dump())

    def test_ack_overdue_publishes(self):
        acc = self.new_user('ao')
        node = self.new_node('ao')
        alice = self.sm_peer(acc, 'r', available=True, auto_ack=False)
        self.enable_ok(alice, node)
        alice.barrier()
        alice.ack()                                               # everything so far acknowledged
        bob = self.peer(self.new_user('aos'), 's')
        t0 = time.monotonic()
        bob.message(self.bare(acc), 'ack me', id_='ao-1')
        alice.expect(M('message', id='ao-1'))                     # received, never acknowledged
        p = self.comp.wait_publishes(node, 1, timeout=ACK_DELAY + TIMEOUT,
                                     what='publish when the ack is overdue')[0]
        dt = p['time'] - t0
        self.assertNotification(p, node)
        self.assertGreaterEqual(dt, ACK_DELAY * 0.75,
                                'published %.2fs after the message: before push.ack_delay (%.0fs)' % (dt, ACK_DELAY))
        self.assertFalse(alice.rs.eof, 'connection closed:\n%s' % alice.dump())
        # acknowledging now: nothing more
        alice.ack()
        self.comp.expect_no_more(node, 1, SETTLE, 'second publish for the same overdue message')

    # -- hibernated sessions ---------------------------------------------------------
    def test_hibernated_session_batched_publish_then_resume_delivers_once(self):
        acc = self.new_user('hb')
        node = self.new_node('hb')
        alice = self.sm_peer(acc, 'r', available=True)
        self.enable_ok(alice, node)
        bob = self.peer(self.new_user('hbs'), 's')
        alice.barrier()
        h_seen = alice.h_in
        alice.drop()
        # chat states alone: no publish
        bob.message(alice.jid, None, type_='chat', id_='hb-cs', extra="<composing xmlns='%s'/>" % NS_CHATSTATES)
        bob.barrier()
        self.comp.expect_no_more(node, 0, SETTLE, 'publish for a chat state to a hibernated session')
        # three messages in one write: one publish for the batch
        ids = ['hb-1', 'hb-2', 'hb-3']
        t0 = time.monotonic()
        bob.send(''.join("<message type='chat' to='%s' id='%s'><body>hibernated %s</body></message>"
                         % (esc(alice.jid), i, i) for i in ids))
        p = self.comp.wait_publishes(node, 1, timeout=BATCH_WINDOW + TIMEOUT,
                                     what='publish for messages to a hibernated session')[0]
        self.assertNotification(p, node)
        self.assertEqual(one(p['summary'], 'message-count'), '3',
                         'message-count of a batch of 3 messages: %s' % p['raw'])
        self.assertLessEqual(p['time'] - t0, BATCH_WINDOW + 1.5,
                             'publish came %.2fs after the messages' % (p['time'] - t0))
        self.comp.expect_no_more(node, 1, BATCH_WINDOW + 0.5, 'more than one publish for one batch')
        # resume: every message exactly once
        alice2, el = self.resume_peer(acc, alice.sm_id, h_seen)
        self.assertResumed(el, alice.sm_id)
        self.expect_messages(alice2, ids)
        alice2.barrier()
        alice2.take_all(M('message', id='hb-cs'))
        alice2.quiet(M('message'), 'more messages after the queued ones')
        self.assertOnce(ids, alice.seen + alice2.seen)
        # live again and acking: no publish
        bob.message(alice.jid, 'after resume', id_='hb-4')
        alice2.expect(M('message', id='hb-4'))
        alice2.pump_for(ACK_DELAY + 0.5)
        self.comp.expect_no_more(node, 1, 0, 'publish after resumption to a live, acking session')

    def test_hibernated_session_publishes_only_to_its_own_registration(self):
        acc = self.new_user('ho')
        own, other = self.new_node('ho-own'), self.new_node('ho-other')
        d2 = self.peer(acc, 'other')
        self.enable_ok(d2, other)
        d2.logout()
        alice = self.sm_peer(acc, 'r', available=True)
        self.enable_ok(alice, own)
        alice.barrier()
        alice.drop()
        bob = self.peer(self.new_user('hos'), 's')
        bob.message(alice.jid, 'for the hibernated session', id_='ho-1')
        self.comp.wait_publishes(own, 1, what='publish to the hibernated session\'s registration')
        self.comp.expect_no_more(other, 0, SETTLE, 'publish to another device for a message queued in a '
                                 'hibernated session')

    def test_second_hibernation_after_resume_publishes_again(self):
        acc = self.new_user('h2')
        node = self.new_node('h2')
        alice = self.sm_peer(acc, 'r', available=True)
        self.enable_ok(alice, node)
        bob = self.peer(self.new_user('h2s'), 's')
        alice.barrier()
        alice.drop()
        bob.message(alice.jid, 'first hibernation', id_='h2-1')
        self.comp.wait_publishes(node, 1, what='publish during the first hibernation')
        alice2, el = self.resume_peer(acc, alice.sm_id, alice.h_in)
        self.assertResumed(el, alice.sm_id)
        alice2.expect(M('message', id='h2-1'))
        alice2.barrier()
        alice2.ack()
        alice2.drop()
        bob.message(alice.jid, 'second hibernation', id_='h2-2')
        self.comp.wait_publishes(node, 2, what='publish during the second hibernation (after a resume)')
        alice3, el = self.resume_peer(acc, alice.sm_id, alice2.h_in)
        self.assertResumed(el, alice.sm_id)
        alice3.expect(M('message', id='h2-2'))
        alice3.quiet(M('message', id='h2-1'), 'the message acknowledged before the second drop')

    def test_call_invitation_to_hibernated_session_published_at_once(self):
        acc = self.new_user('ch')
        node = self.new_node('ch')
        alice = self.sm_peer(acc, 'r', available=True)
        self.enable_ok(alice, node)
        bob = self.peer(self.new_user('chs'), 's')
        alice.barrier()
        alice.drop()
        bob.barrier()
        t0 = time.monotonic()
        bob.message(alice.jid, None, type_='chat', id_='ch-1', extra=propose('call-hib-1'))
        p = self.comp.wait_publishes(node, 1, what='publish for a call invitation to a hibernated session')[0]
        dt = p['time'] - t0
        self.assertNotification(p, node)
        self.assertLess(dt, BATCH_WINDOW * 0.6,
                        'a call invitation was published %.2fs after it was sent (not at once)' % dt)


class PushBodySenderTests(PushTestCase):
    """push.include_body and push.include_sender on."""

    push_config = {'include_body': True, 'include_sender': True}

    def test_real_body_and_sender_bare_jid(self):
        acc, (node,), bob = self.registered_offline('ib')
        bob.message(self.bare(acc), 'hello <world> & you', id_='ib-1')
        p = self.comp.wait_publishes(node, 1)[0]
        self.assertNotification(p, node)
        self.assertEqual(one(p['summary'], 'last-message-body'), 'hello <world> & you',
                         'include_body: the real body expected: %s' % p['raw'])
        self.assertEqual(one(p['summary'], 'last-message-sender'), bob.bare,
                         'include_sender: the sender\'s bare JID expected: %s' % p['raw'])

    def test_omemo_fallback_never_included(self):
        acc, (node,), bob = self.registered_offline('io')
        payload, fallback = omemo('OMEMO fallback text 5d2b')
        bob.message(self.bare(acc), fallback, id_='io-1', extra=payload)
        p = self.comp.wait_publishes(node, 1)[0]
        self.assertNotification(p, node)
        self.assertNotIn('5d2b', p['raw'], 'the OMEMO fallback body leaked into the publish')
        self.assertEqual(one(p['summary'], 'last-message-body'), PLACEHOLDER,
                         'an encrypted message must give the placeholder: %s' % p['raw'])
        self.assertEqual(one(p['summary'], 'last-message-sender'), bob.bare, p['raw'])
