"""Stream management (XEP-0198): the feature, <enable/>, acks in both
directions with exact h values, and the errors of misuse."""

import unittest

from harness import NS_BIND, NS_PING, q
from test_chat_common import M, xml
from test_sm_common import (NS_CSI, NS_SM, SM, SMPeer, SMTestCase, handled_count_too_high,
                            stream_error_of)

RESUME_TIMEOUT = 30
MAX_RESUME_TIMEOUT = 60
REQUEST_EVERY = 5


class SMBasicTests(SMTestCase):
    server_config = {'sm': {'enabled': True, 'resume_timeout': '%ds' % RESUME_TIMEOUT,
                            'max_resume_timeout': '%ds' % MAX_RESUME_TIMEOUT,
                            'ack_timeout': '60s', 'request_every': REQUEST_EVERY,
                            'request_interval': '30s'}}

    def ping(self, p, n=1):
        for _ in range(n):
            self.assertResult(p.iq('get', "<ping xmlns='%s'/>" % NS_PING, to=self.server.domain))

    # -- the feature ----------------------------------------------------------
    def test_feature_offered_with_bind_only(self):
        user, pw = self.new_user('sf')
        rs = self.raw()
        pre = rs.open_stream()
        self.assertIsNone(pre.find(q(NS_SM, 'sm')), 'sm offered before TLS/auth: %s' % xml(pre))
        rs.starttls()
        pre_tls = rs.open_stream()
        self.assertIsNone(pre_tls.find(q(NS_SM, 'sm')), 'sm offered before auth: %s' % xml(pre_tls))
        self.assertIsNone(pre_tls.find(q(NS_CSI, 'csi')), 'csi offered before auth: %s' % xml(pre_tls))
        el, _ = rs.auth_scram(user, pw)
        self.assertEqual(rs.sasl_condition(el), 'success')
        post = rs.open_stream()
        self.assertIsNotNone(post.find(q(NS_BIND, 'bind')), xml(post))
        self.assertIsNotNone(post.find(q(NS_SM, 'sm')),
                             'no <sm xmlns=urn:xmpp:sm:3/> in the features offering bind: %s' % xml(post))
        self.assertIsNotNone(post.find(q(NS_CSI, 'csi')),
                             'no <csi xmlns=urn:xmpp:csi:0/> in the features offering bind: %s' % xml(post))

    # -- enable -----------------------------------------------------------------
    def test_enable_resume_and_max(self):
        acc = self.new_user('se')
        ids = set()
        for asked, granted in ((None, RESUME_TIMEOUT), (10, 10), (3600, MAX_RESUME_TIMEOUT)):
            with self.subTest(max=asked):
                p = self.sm_peer(acc, 'r%s' % asked, max_=asked)
                el = p.enabled
                self.assertTrue(el.get('id'), '<enabled/> without id although resume was asked: %s' % xml(el))
                self.assertIn(el.get('resume'), ('true', '1'), xml(el))
                self.assertEqual(el.get('max'), str(granted), 'max must be min(asked or resume_timeout, '
                                 'max_resume_timeout): %s' % xml(el))
                ids.add(el.get('id'))
        self.assertEqual(len(ids), 3, 'SM ids are not unique: %s' % ids)

    def test_enable_without_resume(self):
        p = self.sm_peer(self.new_user('sn'), resume=False)
        self.assertNotIn(p.enabled.get('resume'), ('true', '1'), xml(p.enabled))
        # acks work all the same
        self.ping(p, 2)
        self.assertEqual(p.request(), 2)

    def test_enable_before_bind_fails_then_bind_and_enable_work(self):
        user, pw = self.new_user('sb')
        p = SMPeer(self, user, pw, bind=False, enable=False)
        el = p.enable()
        self.assertFailed(el, 'unexpected-request', '<enable/> before bind: ')
        self.assertFalse(p.rs.eof)
        p.jid = p.rs.bind('late')
        el = p.enable()
        self.assertEqual(el.tag, q(NS_SM, 'enabled'), 'enable after a failed early one: %s' % xml(el))
        self.ping(p)
        self.assertEqual(p.request(), 1)

    def test_enable_twice_fails(self):
        p = self.sm_peer(self.new_user('st'))
        self.ping(p, 2)
        el = p.enable()
        self.assertFailed(el, 'unexpected-request', 'second <enable/>: ')
        # the first enable is still in force, its counters untouched (a
        # server may also end the stream here, XEP-0198 section 3)
        if not p.rs.eof:
            p.counting_out, p.h_out = True, 2
            self.ping(p)
            self.assertEqual(p.request(), 3, 'the h count changed after a refused second <enable/>')

    # -- client requests, server acks -------------------------------------------
    def test_server_h_counts_client_stanzas_exactly(self):
        acc_a, acc_b = self.new_user('sca'), self.new_user('scb')
        bob = self.peer(acc_b, 'b', available=True)
        p = self.sm_peer(acc_a)
        self.assertEqual(p.request(), 0, 'h before any stanza')
        # iq (2 pings), presence (initial), messages (to bob, to nobody, to self)
        self.ping(p, 2)
        self.assertEqual(p.request(), 2)
        p.available()
        for i in range(8):
            p.message(bob.jid, 'n%d' % i, id_='cnt-%d' % i)
        p.message('nobody@localhost', 'to an unknown user', type_='normal', id_='cnt-x')   # bounced
        p.presence(to=bob.jid)                                       # directed presence
        p.message(p.jid, 'self', id_='cnt-self')
        for i in range(6):
            p.send("<iq type='get' id='v%d' to='localhost'><query xmlns='jabber:iq:version'/></iq>" % i)
        # 2 + 1 + 8 + 1 + 1 + 1 + 6 = 20 stanzas, whatever the server did with them
        self.assertEqual(p.h_out, 20)
        self.assertEqual(p.request(), 20, 'the server\'s h after 20 stanzas of every kind')
        for i in range(8):
            bob.expect(M('message', id='cnt-%d' % i))
        # <r/>, <a/> and CSI nonzas are not counted
        p.send("<inactive xmlns='%s'/>" % NS_CSI)
        p.send("<active xmlns='%s'/>" % NS_CSI)
        p.ack()
        self.assertEqual(p.request(), 20)
        self.ping(p)
        self.assertEqual(p.request(), 21)

    # -- server requests, client acks -------------------------------------------
    def test_server_requests_ack_every_n_stanzas_and_accepts_acks(self):
        acc_a, acc_b = self.new_user('sra'), self.new_user('srb')
        bob = self.peer(acc_b, 'b', available=True)
        p = self.sm_peer(acc_a, auto_ack=False)
        ids = ['req-%d' % i for i in range(2 * REQUEST_EVERY)]
        for i in ids:
            bob.message(p.jid, 'hello', id_=i)
        self.expect_messages(p, ids)
        p.barrier()   # 1 more stanza (the result): 2n+1
        self.assertEqual(p.h_in, 2 * REQUEST_EVERY + 1)
        self.assertTrue(p.r_received, 'no <r/> from the server after %d stanzas (request_every=%d)\n%s'
                        % (p.h_in, REQUEST_EVERY, p.dump()))
        first_r = p.r_received[0]
        before = sum(1 for el in p.seen[:first_r] if el.tag.startswith('{jabber:client}'))
        self.assertGreaterEqual(before, REQUEST_EVERY, 'first <r/> after only %d stanzas: %s'
                                % (before, [xml(e) for e in p.seen[:first_r + 1]]))
        self.assertLess(before, 2 * REQUEST_EVERY, 'first <r/> only after %d stanzas (request_every=%d)'
                        % (before, REQUEST_EVERY))
        # acking everything is accepted (no error, the stream goes on)
        p.ack()
        self.ping(p)
        p.ack()
        p.quiet(lambda el: el.tag.startswith('{http://etherx.jabber.org/streams}'), 'a stream error')
        self.assertFalse(p.rs.eof)

    def test_ack_higher_than_sent_is_undefined_condition(self):
        p = self.sm_peer(self.new_user('sh'), auto_ack=False)
        self.ping(p, 3)     # the server sent 3 results
        self.assertEqual(p.h_in, 3)
        p.ack(3)
        p.ack(5)
        text = p.rs.read_until_closed()
        cond, err = stream_error_of(text)
        self.assertEqual(cond, 'undefined-condition', 'ack of 5 with 3 sent; received:\n%s' % text[-2000:])
        hc = handled_count_too_high(err)
        self.assertIsNotNone(hc, 'no <handled-count-too-high xmlns=urn:xmpp:sm:3/> in the stream error: %s' % err)
        self.assertIn("xmlns='%s'" % NS_SM, err.replace('"', "'"), err)
        self.assertEqual(hc, (5, 3), 'handled-count-too-high h / send-count: %s' % err)

    def test_ack_of_2_32_minus_1_at_start_is_too_high(self):
        # h wraps at 2^32: 4294967295 is "-1" stanzas after 0, never valid
        p = self.sm_peer(self.new_user('sw'), auto_ack=False)
        p.ack(4294967295)
        text = p.rs.read_until_closed()
        cond, err = stream_error_of(text)
        self.assertEqual(cond, 'undefined-condition', 'ack h=4294967295 with 0 sent; received:\n%s' % text[-2000:])
        self.assertIsNotNone(handled_count_too_high(err), err)

    def test_r_a_before_enable_not_honoured(self):
        # before <enable/> there is no SM: no <a/> may come back
        user, pw = self.new_user('sr')
        p = SMPeer(self, user, pw, enable=False)
        p.rs.send("<r xmlns='%s'/>" % NS_SM)
        try:
            p.quiet(SM('a'), 'an <a/> although SM was never enabled')
        except AssertionError as e:
            if p.rs.eof:      # a stream error (unsupported-stanza-type) is fine as well
                cond, _ = stream_error_of(p.rs.text)
                self.assertIsNotNone(cond, str(e))
            else:
                raise


if __name__ == '__main__':
    unittest.main()
