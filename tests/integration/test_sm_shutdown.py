"""Stream management (XEP-0198) and a graceful shutdown: the unacked
messages of hibernated and of live SM sessions survive a SIGTERM and a
restart of ternd in offline storage."""

import unittest

from test_chat_common import M, xml
from test_sm_common import SMTestCase


class SMShutdownTests(SMTestCase):
    server_config = {'sm': {'enabled': True, 'resume_timeout': '300s', 'ack_timeout': '60s',
                            'request_every': 5}}

    def test_sigterm_keeps_unacked_messages_of_hibernated_and_live_sessions(self):
        acc_a, acc_c, acc_b = self.new_user('ka'), self.new_user('kc'), self.new_user('kb')
        bob = self.peer(acc_b, 'b', available=True)
        # alice: hibernated, 2 received but unacked + 2 queued while hibernated
        alice = self.sm_peer(acc_a, 'r', available=True, auto_ack=False)
        # carol: live, 3 received but unacked
        carol = self.sm_peer(acc_c, 'r', available=True, auto_ack=False)
        a_ids = ['ka-1', 'ka-2']
        c_ids = ['kc-1', 'kc-2', 'kc-3']
        for i in a_ids:
            bob.message(alice.jid, 'for alice %s' % i, id_=i)
        for i in c_ids:
            bob.message(carol.bare, 'for carol %s' % i, id_=i)
        self.expect_messages(alice, a_ids)
        self.expect_messages(carol, c_ids)
        alice.drop()
        q_ids = ['ka-q1', 'ka-q2']
        bob.message(alice.jid, 'queued 1', id_=q_ids[0])
        bob.message(alice.bare, 'queued 2', id_=q_ids[1])
        bob.quiet(M('message', type='error'), 'an error for a message to a hibernated session')
        rc = self.server.restart()
        self.assertEqual(rc, 0, 'ternd exit status on SIGTERM:\n' + self.server.log_tail())
        # resumption does not survive a restart (fine), the messages do
        p, el = self.resume_peer(acc_a, alice.sm_id, alice.h_in)
        self.assertFailed(el, 'item-not-found', 'resume after a restart: ')
        p.jid = p.rs.bind('r')
        p.available()
        for el in self.expect_messages(p, a_ids + q_ids, in_order=False):
            self.assertDelayed(el, 'alice: ')
            self.assertEqual(el.get('from'), bob.jid, xml(el))
        p.quiet(M('message'), 'more messages for alice')
        self.assertOnce(a_ids + q_ids, p.seen, 'alice: ')
        c2 = self.peer(acc_c, 'r2')
        c2.available()
        for el in self.expect_messages(c2, c_ids):
            self.assertDelayed(el, 'carol: ')
        c2.quiet(M('message'), 'more messages for carol')
        self.assertOnce(c_ids, c2.seen, 'carol: ')
        # the messages carol acked are not re-delivered: a second SIGTERM
        # with carol acking everything leaves nothing in storage
        c3 = self.sm_peer(acc_c, 'r3', available=True)
        bob2 = self.peer(acc_b, 'b2', available=True)
        bob2.message(c3.bare, 'acked before shutdown', id_='kc-acked')
        self.expect_messages(c3, ['kc-acked'])
        c3.ack()
        c3.barrier()
        c3.ack()
        c3.barrier()          # the server has processed the acks
        self.assertEqual(self.server.restart(), 0)
        c4 = self.peer(acc_c, 'r4')
        c4.available()
        c4.quiet(M('message'), 'a message acked before the shutdown (delivered again)')


if __name__ == '__main__':
    unittest.main()
