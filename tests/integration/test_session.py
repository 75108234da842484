"""After login: resource binding, session, ping, unknown iq, resource conflict."""

import asyncio
import unittest

from harness import (NS_BIND, NS_CLIENT, NS_PING, NS_SESSION, NS_STANZAS, NS_TLS, RawStream, SlixClient,
                     TernTestCase, q, run_async)

PW = 'alice-Secret-1'


class SessionTests(TernTestCase):

    def login(self, resource=None, user='alice', password=PW, **kw):
        rs = self.raw(**kw)
        jid = rs.login(user, password, resource=resource)
        return rs, jid

    # -- features and binding --------------------------------------------
    def test_post_auth_features(self):
        rs = self.raw()
        f = rs.login('alice', PW, bind=False)
        self.assertIsNotNone(f.find(q(NS_BIND, 'bind')), 'no <bind/> after auth: %s' % rs.describe(f))
        sess = f.find(q(NS_SESSION, 'session'))
        self.assertIsNotNone(sess, 'no <session/> after auth: %s' % rs.describe(f))
        self.assertIsNotNone(sess.find(q(NS_SESSION, 'optional')), '<session/> lacks <optional/>')
        self.assertEqual(RawStream.mechanisms(f), [], 'SASL offered again after auth')
        self.assertIsNone(f.find(q(NS_TLS, 'starttls')), 'starttls offered after auth')

    def test_bind_client_chosen_resource(self):
        rs, jid = self.login('balcony')
        self.assertEqual(jid, 'alice@localhost/balcony')

    def test_bind_server_generated_resource(self):
        rs1, jid1 = self.login(None)
        rs2, jid2 = self.login(None)
        for j in (jid1, jid2):
            bare, _, res = j.partition('/')
            self.assertEqual(bare, 'alice@localhost')
            self.assertTrue(res, 'empty server-generated resource in %r' % j)
        self.assertNotEqual(jid1, jid2, 'two sessions got the same generated resource')
        # both sessions are alive
        for rs in (rs1, rs2):
            res = rs.iq('get', "<ping xmlns='%s'/>" % NS_PING, to='localhost')
            self.assertEqual(res.get('type'), 'result', rs.describe(res))

    def test_bind_result_shape(self):
        rs = self.raw()
        rs.login('alice', PW, bind=False)
        res = rs.iq('set', "<bind xmlns='%s'><resource>shape</resource></bind>" % NS_BIND, id_='bind-42')
        self.assertEqual(res.tag, q(NS_CLIENT, 'iq'))
        self.assertEqual(res.get('type'), 'result')
        self.assertEqual(res.get('id'), 'bind-42')
        jid = res.find('%s/%s' % (q(NS_BIND, 'bind'), q(NS_BIND, 'jid')))
        self.assertIsNotNone(jid, rs.describe(res))
        self.assertEqual(jid.text, 'alice@localhost/shape')

    def test_session_establishment_accepted(self):
        rs, _ = self.login('sess')
        res = rs.iq('set', "<session xmlns='%s'/>" % NS_SESSION)
        self.assertEqual(res.get('type'), 'result', rs.describe(res))
        self.assertIsNone(res.find(q(NS_CLIENT, 'error')), rs.describe(res))

    # -- iq to the server ----------------------------------------------
    def test_ping_server(self):
        rs, jid = self.login('pinger')
        for to in ('localhost', None):
            with self.subTest(to=to):
                res = rs.iq('get', "<ping xmlns='%s'/>" % NS_PING, to=to, id_='ping-%s' % to)
                self.assertEqual(res.get('type'), 'result', rs.describe(res))
                self.assertEqual(res.get('id'), 'ping-%s' % to)
                self.assertIn(res.get('from'), (None, 'localhost', 'alice@localhost'), rs.describe(res))
                if res.get('to') is not None:
                    self.assertEqual(res.get('to'), jid)
                self.assertIsNone(res.find(q(NS_CLIENT, 'error')))

    def test_unknown_namespace_iq_service_unavailable(self):
        rs, _ = self.login('unknown-ns')
        for type_ in ('get', 'set'):
            with self.subTest(type=type_):
                res = rs.iq(type_, "<query xmlns='urn:example:tern:does-not-exist'/>", to='localhost')
                self.assertEqual(res.get('type'), 'error', rs.describe(res))
                err = res.find(q(NS_CLIENT, 'error'))
                self.assertIsNotNone(err, rs.describe(res))
                self.assertEqual(err.get('type'), 'cancel', rs.describe(res))
                self.assertIsNotNone(err.find(q(NS_STANZAS, 'service-unavailable')), rs.describe(res))

    def test_slixmpp_ping(self):
        async def go():
            c = SlixClient(self.server, 'bob', 'bob-Secret-2', resource='slixping', plugins=('xep_0199',))
            try:
                outcome = await c.start()
                self.assertEqual(outcome, 'session_start', c.summary())
                # send_ping, not ping(): ping() of the own server counts an
                # error reply as success
                iq = await asyncio.wait_for(c.xmpp['xep_0199'].send_ping('localhost', timeout=5), 8)
                self.assertEqual(iq['type'], 'result', str(iq))
            finally:
                await c.stop()
        run_async(go())

    # -- resource conflict ----------------------------------------------
    def test_resource_conflict_raw(self):
        old, jid = self.login('desk')
        self.assertEqual(jid, 'alice@localhost/desk')
        new, jid2 = self.login('desk')
        self.assertEqual(jid2, 'alice@localhost/desk', 'new session did not get the resource')
        self.assertStreamError(old, 'conflict')
        # the new session is fully usable
        res = new.iq('get', "<ping xmlns='%s'/>" % NS_PING, to='localhost')
        self.assertEqual(res.get('type'), 'result', new.describe(res))

    def test_resource_conflict_other_resource_unaffected(self):
        a, _ = self.login('laptop')
        b, _ = self.login('tablet')
        c, _ = self.login('laptop')
        self.assertStreamError(a, 'conflict')
        for rs in (b, c):
            res = rs.iq('get', "<ping xmlns='%s'/>" % NS_PING, to='localhost')
            self.assertEqual(res.get('type'), 'result', rs.describe(res))

    def test_resource_conflict_slixmpp(self):
        async def go():
            first = SlixClient(self.server, 'bob', 'bob-Secret-2', resource='phone')
            second = SlixClient(self.server, 'bob', 'bob-Secret-2', resource='phone')
            try:
                self.assertEqual(await first.start(), 'session_start', first.summary())
                self.assertEqual(first.bound_jid, 'bob@localhost/phone')
                self.assertEqual(await second.start(), 'session_start', second.summary())
                self.assertEqual(second.bound_jid, 'bob@localhost/phone', second.summary())
                await first.wait_for('stream_error', timeout=10)
                self.assertEqual(first.stream_error_condition, 'conflict', first.summary())
                await first.wait_for('disconnected', timeout=10)
                self.assertFalse(second.happened('stream_error'), second.summary())
                self.assertFalse(second.happened('disconnected'), second.summary())
            finally:
                await first.stop()
                await second.stop()
        run_async(go())


if __name__ == '__main__':
    unittest.main()
