"""Push notifications (XEP-0357), the two optional wake-ups:

* push.wake_before_expiry - one publish to a hibernated session's own
  registration that long before the session expires (message-count of what
  waits, 0 if nothing), once per hibernation, never after a resumption;
* push.on_start - after a restart, one publish to each registration whose
  session (live or hibernated) was alive at shutdown, once the app server's
  component is connected again; not to registrations without a session,
  and not again at the next restart."""

import time

from push_common import PLACEHOLDER, PushTestCase, one
from test_chat_common import M

RESUME_TIMEOUT = 4.0
WAKE_BEFORE = 2.0
BATCH_WINDOW = 1.0
SLACK = 1.0            # scheduling and transport jitter allowed around a due time


class PushWakeBeforeExpiryTests(PushTestCase):
    """resume_timeout 4 s, wake_before_expiry 2 s, max_hibernation off (so the
    expiry is the resume timeout, counted from the drop)."""

    push_config = {'wake_before_expiry': '2s', 'max_hibernation': 0}
    BASE_SM = dict(PushTestCase.BASE_SM, resume_timeout='4s')

    def hibernated(self, prefix):
        acc = self.new_user(prefix)
        node = self.new_node(prefix)
        alice = self.sm_peer(acc, 'r', available=True)
        self.enable_ok(alice, node)
        alice.barrier()
        alice.ack()
        t0 = time.monotonic()
        alice.drop()
        return acc, node, alice, t0

    def test_nothing_queued_one_wake_with_count_zero(self):
        acc, node, alice, t0 = self.hibernated('wz')
        p = self.comp.wait_publishes(node, 1, timeout=RESUME_TIMEOUT + SLACK,
                                     what='wake-up publish before the hibernation expires')[0]
        waited = p['time'] - t0
        self.assertGreaterEqual(waited, RESUME_TIMEOUT - WAKE_BEFORE - 0.3,
                                'wake-up came %.2fs after the drop, too early: %s' % (waited, p['raw']))
        self.assertLessEqual(waited, RESUME_TIMEOUT - WAKE_BEFORE + SLACK,
                             'wake-up came %.2fs after the drop, too late: %s' % (waited, p['raw']))
        self.assertEqual(p['frm'], self.server.domain, p['raw'])
        self.assertEqual(p['type'], 'set', p['raw'])
        self.assertEqual(one(p['summary'], 'message-count'), '0',
                         'message-count of a wake-up with nothing queued: %s' % p['raw'])
        self.assertIsNone(one(p['summary'], 'last-message-body'),
                          'a body placeholder with no message: %s' % p['raw'])
        self.assertEqual(one(p['options'], 'secret'), 's', 'publish-options not echoed: %s' % p['raw'])
        # once per hibernation: nothing more until (and after) it expires
        self.comp.expect_no_more(node, 1, RESUME_TIMEOUT - WAKE_BEFORE + SLACK,
                                 'a second wake-up in one hibernation')

    def test_queued_message_notified_then_woken_with_its_count(self):
        acc, node, alice, t0 = self.hibernated('wq')
        bob = self.peer(self.new_user('wqs'), 's')
        bob.message(alice.jid, 'while hibernated', id_='wq-1')
        pubs = self.comp.wait_publishes(node, 2, timeout=RESUME_TIMEOUT + SLACK,
                                        what='the batch publish and the wake-up')
        first, wake = pubs[0], pubs[1]
        self.assertEqual(one(first['summary'], 'message-count'), '1', first['raw'])
        self.assertEqual(one(wake['summary'], 'message-count'), '1',
                         'the wake-up counts what waits: %s' % wake['raw'])
        self.assertEqual(one(wake['summary'], 'last-message-body'), PLACEHOLDER,
                         'placeholder rules as usual: %s' % wake['raw'])
        self.assertLessEqual(wake['time'] - t0, RESUME_TIMEOUT - WAKE_BEFORE + SLACK,
                             'wake-up came %.2fs after the drop' % (wake['time'] - t0))
        self.comp.expect_no_more(node, 2, RESUME_TIMEOUT - WAKE_BEFORE + SLACK,
                                 'more publishes after the wake-up')

    def test_resumed_session_is_not_woken(self):
        acc, node, alice, t0 = self.hibernated('wr')
        time.sleep(0.5)
        alice2, el = self.resume_peer(acc, alice.sm_id, alice.h_in)
        self.assertResumed(el, alice.sm_id)
        alice2.pump_for(RESUME_TIMEOUT - WAKE_BEFORE + SLACK)
        self.comp.expect_no_more(node, 0, 0.5, 'wake-up of a session that resumed')
        # hibernating again arms a new wake-up (once per hibernation)
        alice2.barrier()
        alice2.ack()
        t1 = time.monotonic()
        alice2.drop()
        p = self.comp.wait_publishes(node, 1, timeout=RESUME_TIMEOUT + SLACK,
                                     what='wake-up in the second hibernation')[0]
        self.assertLessEqual(p['time'] - t1, RESUME_TIMEOUT - WAKE_BEFORE + SLACK)
        self.assertEqual(one(p['summary'], 'message-count'), '0', p['raw'])

    def test_ended_session_is_not_woken(self):
        acc = self.new_user('we')
        node = self.new_node('we')
        alice = self.sm_peer(acc, 'r', available=True)
        self.enable_ok(alice, node)
        alice.logout()
        self.comp.expect_no_more(node, 0, RESUME_TIMEOUT - WAKE_BEFORE + SLACK,
                                 'wake-up of a session that ended')

    def test_session_without_registration_is_not_woken(self):
        acc = self.new_user('wn')
        node = self.new_node('wn')
        dev = self.peer(acc, 'other')
        self.enable_ok(dev, node)          # a registration of another device
        dev.logout()
        alice = self.sm_peer(acc, 'r', available=True)
        alice.barrier()
        alice.drop()
        self.comp.expect_no_more(node, 0, RESUME_TIMEOUT - WAKE_BEFORE + SLACK,
                                 'wake-up sent to another device\'s registration')


class PushOnStartTests(PushTestCase):
    """push.on_start: sessions alive at shutdown get one publish after the restart."""

    push_config = {'on_start': True}

    def test_restart_publishes_once_to_sessions_alive_at_shutdown(self):
        live_acc, hib_acc, off_acc = self.new_user('sl'), self.new_user('sh'), self.new_user('so')
        live_node, hib_node, off_node = self.new_node('sl'), self.new_node('sh'), self.new_node('so')
        live = self.sm_peer(live_acc, 'r', available=True)
        self.enable_ok(live, live_node)
        plain = self.peer(hib_acc, 'p')            # a session without SM counts too
        hib = self.sm_peer(hib_acc, 'r', available=True)
        self.enable_ok(hib, hib_node)
        plain.logout()
        hib.barrier()
        hib.ack()
        hib.drop()
        off = self.peer(off_acc, 'r')
        self.enable_ok(off, off_node)
        off.logout()
        live.barrier()
        self.comp.expect_no_more(hib_node, 0, 0.3, 'publish before the restart')
        before = self.comp.handshakes
        self.server.restart()
        self.comp.wait_connected(after=before)
        got_live = self.comp.wait_publishes(live_node, 1, what='on_start publish for the live session')
        got_hib = self.comp.wait_publishes(hib_node, 1, what='on_start publish for the hibernated session')
        for p, node in ((got_live[0], live_node), (got_hib[0], hib_node)):
            self.assertEqual(p['frm'], self.server.domain, p['raw'])
            self.assertEqual(p['node'], node, p['raw'])
            self.assertIsNotNone(one(p['summary'], 'message-count'), p['raw'])
            self.assertEqual(one(p['options'], 'secret'), 's', p['raw'])
        self.comp.expect_no_more(off_node, 0, 1.0, 'on_start publish to a registration without a session')
        self.comp.expect_no_more(live_node, 1, 0.5, 'two on_start publishes')
        self.comp.expect_no_more(hib_node, 1, 0, 'two on_start publishes')
        # the records were cleared: the next restart (no sessions) tells nobody
        before = self.comp.handshakes
        self.server.restart()
        self.comp.wait_connected(after=before)
        self.comp.expect_no_more(live_node, 1, 2.0, 'on_start publish repeated at the next restart')
        self.comp.expect_no_more(hib_node, 1, 0, 'on_start publish repeated at the next restart')

    def test_waits_for_the_component_to_connect(self):
        acc = self.new_user('sw')
        node = self.new_node('sw')
        alice = self.sm_peer(acc, 'r', available=True)
        self.enable_ok(alice, node)
        alice.barrier()
        # the app server stays away for a while after ternd is back
        self.comp.stop()
        self.server.restart()
        time.sleep(1.5)
        self.comp._stop = False
        self.comp.start()
        p = self.comp.wait_publishes(node, 1, what='on_start publish once the component connected')[0]
        self.assertEqual(p['node'], node, p['raw'])
        # published once the component was there, not bounced while it was away
        self.assertNotIn('service-unavailable to a publish', self.server.log_text(),
                         'an on_start publish was sent before the component connected')
