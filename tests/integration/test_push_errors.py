"""Push notifications (XEP-0357), server side: what ternd does with the app
server's answers (wait errors keep a registration, other errors remove it
after push.max_errors in a row, a success resets the count, no answer is not
an error), the per-account device cap, and the bounded publish queue."""

import time

from harness import TIMEOUT, wait_until
from push_common import (CANCEL_ERROR, IGNORE, PUSH_JID, PUSH_SECRET, RESULT, WAIT_ERROR, Component,
                         PushTestCase, error)
from test_chat_common import M

PUSH_TIMEOUT = 2.0
SETTLE = 1.2


class PushErrorTests(PushTestCase):
    # BASE_PUSH: max_errors 2, timeout 2s

    def offline_user(self, prefix, node_actions, default=RESULT):
        acc, (node,), bob = self.registered_offline(prefix)
        self.comp.set_actions(node, node_actions, default)
        return acc, node, bob

    def publish_n(self, bob, acc, node, n, what=''):
        """Send message number n to the offline account and wait for the n-th
        publish (and for the component's answer to reach the server)."""
        bob.message(self.bare(acc), 'message %d' % n, id_='%s-%d' % (node, n))
        pubs = self.comp.wait_publishes(node, n, what='publish %d %s' % (n, what))
        self.comp.barrier()
        return pubs

    def test_wait_errors_keep_the_registration(self):
        acc, node, bob = self.offline_user('we', [WAIT_ERROR, WAIT_ERROR, WAIT_ERROR, WAIT_ERROR])
        for n in range(1, 6):
            self.publish_n(bob, acc, node, n, 'after %d type=wait errors (max_errors 2)' % (n - 1))

    def test_other_errors_remove_after_max_errors_success_resets(self):
        acc, node, bob = self.offline_user('ce', [CANCEL_ERROR, RESULT, CANCEL_ERROR, CANCEL_ERROR])
        self.publish_n(bob, acc, node, 1)
        self.publish_n(bob, acc, node, 2, 'after one cancel error')
        self.publish_n(bob, acc, node, 3, 'after a success (the count was reset)')
        self.publish_n(bob, acc, node, 4, 'after one cancel error following a success')
        # two cancel errors in a row (max_errors 2): the registration is gone
        bob.message(self.bare(acc), 'message 5', id_='%s-5' % node)
        bob.barrier()
        self.comp.expect_no_more(node, 4, SETTLE, 'publish after %d consecutive errors (max_errors 2)' % 2)
        r = self.server.ternctl('push', 'list', acc[0])
        if r.returncode == 0:
            self.assertNotIn(node, r.stdout, 'the removed registration is still listed:\n%s' % r.stdout)

    def test_other_error_conditions_count_too(self):
        acc, node, bob = self.offline_user('oe', [error('auth', 'forbidden'), error('modify', 'not-acceptable')])
        self.publish_n(bob, acc, node, 1)
        self.publish_n(bob, acc, node, 2, 'after one error')
        bob.message(self.bare(acc), 'message 3', id_='%s-3' % node)
        bob.barrier()
        self.comp.expect_no_more(node, 2, SETTLE, 'publish after auth + modify errors (max_errors 2)')

    def test_unanswered_publish_is_not_an_error(self):
        # timeout, cancel error, then the registration must still be there:
        # had the timeout counted it would be 2 errors in a row
        acc, node, bob = self.offline_user('to', [IGNORE, CANCEL_ERROR, RESULT])
        pubs = self.publish_n(bob, acc, node, 1)
        t_first = pubs[0]['time']
        self.publish_n(bob, acc, node, 2, 'after an unanswered publish')
        # let push.timeout pass for the unanswered one
        left = t_first + PUSH_TIMEOUT + 0.7 - time.monotonic()
        if left > 0:
            time.sleep(left)
        self.publish_n(bob, acc, node, 3, 'after a timeout and one cancel error (a timeout is no error)')

    def test_error_of_one_registration_does_not_touch_another(self):
        acc = self.new_user('ot')
        good, bad = self.new_node('ot-good'), self.new_node('ot-bad')
        p = self.peer(acc, 'r')
        self.enable_ok(p, good)
        self.enable_ok(p, bad)
        p.logout()
        self.comp.set_default(bad, CANCEL_ERROR)
        bob = self.peer(self.new_user('ots'), 's')
        for n in (1, 2, 3):
            bob.message(self.bare(acc), 'm%d' % n, id_='ot-%d' % n)
            self.comp.wait_publishes(good, n, what='publish %d to the healthy registration' % n)
            self.comp.barrier()
        self.assertEqual(len(self.comp.publishes(bad)), 2, self.comp.transcript())


class PushDeviceCapTests(PushTestCase):
    push_config = {'max_devices': 2}

    def test_third_registration_evicts_the_oldest(self):
        acc = self.new_user('dc')
        n1, n2, n3 = self.new_node('dc-1'), self.new_node('dc-2'), self.new_node('dc-3')
        p = self.peer(acc, 'r')
        for n in (n1, n2, n3):
            self.enable_ok(p, n)
        p.logout()
        bob = self.peer(self.new_user('dcs'), 's')
        bob.message(self.bare(acc), 'capped', id_='dc-1')
        self.comp.wait_publishes(n2, 1, what='publish to the second (kept) registration')
        self.comp.wait_publishes(n3, 1, what='publish to the newest registration')
        self.comp.expect_no_more(n1, 0, SETTLE, 'publish to the evicted (oldest) registration')

    def test_cap_counts_per_account(self):
        a, b = self.new_user('dca'), self.new_user('dcb')
        na = [self.new_node('dca') for _ in range(2)]
        nb = [self.new_node('dcb') for _ in range(2)]
        for acc, nodes in ((a, na), (b, nb)):
            p = self.peer(acc, 'r')
            for n in nodes:
                self.enable_ok(p, n)
            p.logout()
        bob = self.peer(self.new_user('dcs'), 's')
        bob.message(self.bare(a), 'to a', id_='dca-1')
        bob.message(self.bare(b), 'to b', id_='dcb-1')
        for n in na + nb:
            self.comp.wait_publishes(n, 1, what='publish to %s (2 registrations per account are allowed)' % n)


class PushQueueTests(PushTestCase):
    """push.max_queue 1 and an app server that never answers."""

    push_config = {'max_queue': 1, 'timeout': '%ds' % PUSH_TIMEOUT}

    def test_queue_overflow_is_logged_and_messages_kept_slot_freed_by_timeout(self):
        self.comp.default_action = IGNORE
        accs = []
        for i in range(4):
            acc, (node,), _ = self.registered_offline('qo%d' % i)
            accs.append((acc, node))
        bob = self.peer(self.new_user('qos'), 's')
        batch = []
        for acc, node in accs:
            for k in range(3):
                batch.append("<message type='chat' to='%s' id='%s-%d'><body>q%d</body></message>"
                             % (self.bare(acc), node, k, k))
        bob.send(''.join(batch))
        bob.barrier()
        wait_until(lambda: 'push queue full' in self.server.log_text().lower(), timeout=TIMEOUT,
                   what='"push queue full" in the ternd log\n%s' % self.comp.transcript())
        bob.quiet(M('message', type='error'), 'an error bounced to the sender because the push queue was full')
        # the messages themselves are all in offline storage
        acc, node = accs[-1]
        back = self.peer(acc, 'back')
        back.available()
        for k in range(3):
            back.expect(M('message', id='%s-%d' % (node, k)), what='offline message %d' % k)
        # the unanswered publish times out (push.timeout) and frees its slot
        self.comp.default_action = RESULT
        acc2, (node2,), bob2 = self.registered_offline('qf')
        sent = self.comp.publishes()
        self.assertEqual(len(sent), 1, 'push.max_queue 1: only one publish may be in flight\n%s'
                         % self.comp.transcript())
        left = sent[0]['time'] + PUSH_TIMEOUT + 0.3 - time.monotonic()
        if left > 0:
            time.sleep(left)                      # until the unanswered one timed out
        t0 = time.monotonic()
        bob2.message(self.bare(acc2), 'after the overflow', id_='qf-1')
        self.comp.wait_publishes(node2, 1, timeout=PUSH_TIMEOUT + TIMEOUT,
                                 what='publish once the unanswered one timed out')
        self.assertLess(time.monotonic() - t0, PUSH_TIMEOUT + TIMEOUT)


class PushComponentDownTests(PushTestCase):
    """The app server's component is not connected for a while: ternd does
    not send its publishes (it says so at once instead of waiting for
    push.timeout).  That is no answer from the app server, so it must not
    count towards push.max_errors: a restart of the app server must not wipe
    the registrations of everyone who got messages meanwhile."""

    def test_publishes_while_component_down_do_not_remove_registration(self):
        acc, (node,), bob = self.registered_offline('cd')
        self.comp.reconnect = False
        self.comp.stop()
        wait_until(lambda: 'component %s disconnected' % PUSH_JID in self.server.log_text()
                   or 'disconnected' in self.server.log_text().split('component %s connected' % PUSH_JID)[-1],
                   what='ternd to notice the component is gone')
        attempts = 'component %s is not connected: notification for %s (node %s) not sent' % (
            PUSH_JID, acc[0], node)
        for n in range(1, 4):                    # push.max_errors is 2
            bob.message(self.bare(acc), 'while down %d' % n, id_='cd-%d' % n)
            # one notification per stored message; ternd's log is the only
            # witness while nothing is connected
            wait_until(lambda: self.server.log_text().count(attempts) >= n, timeout=TIMEOUT,
                       what='publish attempt %d in the ternd log (%r)' % (n, attempts))
        bob.barrier()
        comp = Component(self.component_port, PUSH_JID, PUSH_SECRET)
        self.addCleanup(comp.stop)
        comp.start()
        bob.message(self.bare(acc), 'back up', id_='cd-4')
        comp.wait_publishes(node, 1, what='publish after the component reconnected (the bounces while it '
                            'was down must not have removed the registration)')
