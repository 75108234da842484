"""IQ routing (RFC 6120 8.2.3, 10.3, RFC 6121 8.5), service discovery
(XEP-0030), ping (XEP-0199) and software version (XEP-0092)."""

import asyncio
import unittest

from harness import NS_PING, NS_STANZAS, TIMEOUT, q
from test_chat_common import (NS_DISCO_INFO, NS_DISCO_ITEMS, NS_ROSTER, NS_VERSION, ChatTestCase, M, xml)

DISCO_INFO = "<query xmlns='%s'/>" % NS_DISCO_INFO
DISCO_ITEMS = "<query xmlns='%s'/>" % NS_DISCO_ITEMS
PING = "<ping xmlns='%s'/>" % NS_PING


def identities(el):
    query = el.find(q(NS_DISCO_INFO, 'query'))
    if query is None:
        return set()
    return {(i.get('category'), i.get('type')) for i in query.findall(q(NS_DISCO_INFO, 'identity'))}


def features(el):
    query = el.find(q(NS_DISCO_INFO, 'query'))
    if query is None:
        return set()
    return {f.get('var') for f in query.findall(q(NS_DISCO_INFO, 'feature'))}


class IqRoutingTests(ChatTestCase):

    def test_iq_to_another_users_bare_jid_answered_by_server(self):
        alice = self.peer(self.new_user('ia'), 'a', available=True)
        bob = self.peer(self.new_user('ib'), 'b', roster=True, available=True)
        r = alice.iq('get', DISCO_INFO, to=bob.bare)
        self.assertResult(r, 'disco#info to an account: ')
        self.assertEqual(r.get('from'), bob.bare, xml(r))
        self.assertIn(('account', 'registered'), identities(r), xml(r))
        self.assertIn(NS_DISCO_INFO, features(r), xml(r))
        r = alice.iq('get', PING, to=bob.bare)
        self.assertEqual(r.get('from'), bob.bare, xml(r))
        if r.get('type') == 'error':
            self.assertStanzaError(r, 'service-unavailable', 'cancel', 'ping to a bare JID: ')
        r = alice.iq('get', "<query xmlns='urn:example:tern:unknown'/>", to=bob.bare)
        self.assertStanzaError(r, 'service-unavailable', 'cancel', 'unknown namespace to a bare JID: ')
        self.assertEqual(r.get('from'), bob.bare, xml(r))
        r = alice.iq('set', "<query xmlns='urn:example:tern:unknown'/>", to=bob.bare)
        self.assertStanzaError(r, 'service-unavailable', 'cancel', 'unknown namespace (set) to a bare JID: ')
        # bob's sessions never see any of these
        bob.quiet(M('iq', frm=alice.jid), 'an IQ addressed to the bare JID (the server answers those)')

    def test_iq_to_unknown_users_bare_jid(self):
        alice = self.peer(self.new_user('iu'), 'a')
        for payload in (DISCO_INFO, PING, "<query xmlns='urn:example:tern:unknown'/>"):
            with self.subTest(payload=payload):
                r = alice.iq('get', payload, to='nobody-by-that-name@localhost')
                self.assertStanzaError(r, 'service-unavailable', 'cancel')
                self.assertEqual(r.get('from'), 'nobody-by-that-name@localhost', xml(r))

    def test_iq_to_full_jid_routed_and_reply_routed_back(self):
        alice = self.peer(self.new_user('fa'), 'a')
        bob = self.peer(self.new_user('fb'), 'b')
        alice.send("<iq type='get' id='ver-1' to='%s'><query xmlns='%s'/></iq>" % (bob.jid, NS_VERSION))
        req = bob.expect(M('iq', type='get', id='ver-1'), what='the IQ addressed to the full JID')
        self.assertEqual(req.get('from'), alice.jid, xml(req))
        self.assertIsNotNone(req.find(q(NS_VERSION, 'query')), xml(req))
        bob.send("<iq type='result' id='ver-1' to='%s'><query xmlns='%s'><name>BobClient</name>"
                 "<version>1.0</version></query></iq>" % (alice.jid, NS_VERSION))
        res = alice.expect(M('iq', id='ver-1'), what='the routed reply')
        self.assertResult(res)
        self.assertEqual(res.get('from'), bob.jid, xml(res))
        self.assertEqual(res.findtext('{%s}query/{%s}name' % (NS_VERSION, NS_VERSION)), 'BobClient', xml(res))
        # an error reply is routed back the same way
        alice.send("<iq type='set' id='set-1' to='%s'><query xmlns='urn:example:x'/></iq>" % bob.jid)
        bob.expect(M('iq', type='set', id='set-1', frm=alice.jid))
        bob.send("<iq type='error' id='set-1' to='%s'><error type='cancel'><feature-not-implemented xmlns='%s'/>"
                 "</error></iq>" % (alice.jid, NS_STANZAS))
        res = alice.expect(M('iq', id='set-1'))
        self.assertStanzaError(res, 'feature-not-implemented', 'cancel')
        self.assertEqual(res.get('from'), bob.jid, xml(res))

    def test_iq_to_full_jid_of_offline_resource(self):
        alice = self.peer(self.new_user('oa'), 'a')
        bob = self.peer(self.new_user('ob'), 'b')
        gone = bob.bare + '/not-connected'
        for type_ in ('get', 'set'):
            with self.subTest(type=type_):
                r = alice.iq(type_, PING, to=gone)
                self.assertStanzaError(r, 'service-unavailable', 'cancel')
                self.assertEqual(r.get('from'), gone, xml(r))
        bob.quiet(M('iq', frm=alice.jid), 'an IQ addressed to another resource')

    def test_unmatched_result_and_error_dropped(self):
        alice = self.peer(self.new_user('ua'), 'a')
        bob = self.peer(self.new_user('ub'), 'b')
        err = "<error type='cancel'><item-not-found xmlns='%s'/></error>" % NS_STANZAS
        targets = [None, 'localhost', alice.bare, bob.bare, 'nobody-here@localhost', bob.bare + '/gone',
                   'someone@elsewhere.example']
        n = 0
        for to in targets:
            for type_, payload in (('result', ''), ('error', err)):
                n += 1
                alice.send("<iq type='%s' id='stray-%d'%s>%s</iq>" % (type_, n, " to='%s'" % to if to else '', payload))
        alice.quiet(M('iq', fn=lambda e: (e.get('id') or '').startswith('stray-')),
                    'an answer to an IQ result/error')
        bob.quiet(M('iq', fn=lambda e: (e.get('id') or '').startswith('stray-')),
                  'an IQ result/error addressed to the bare JID')

    def test_iq_get_without_child_or_with_two_children(self):
        alice = self.peer(self.new_user('bc'), 'a')
        cases = [('get', '', None), ('set', '', None), ('get', PING + DISCO_INFO, None),
                 ('get', '', 'localhost'), ('get', PING + PING, 'localhost'), ('set', DISCO_INFO + DISCO_ITEMS, 'localhost')]
        for type_, payload, to in cases:
            with self.subTest(type=type_, payload=payload, to=to):
                r = alice.iq(type_, payload, to=to)
                self.assertStanzaError(r, 'bad-request', msg='%s with %r: ' % (type_, payload))
        alice.barrier()     # the stream is fine afterwards


class DiscoTests(ChatTestCase):

    def test_server_disco_info(self):
        p = self.peer(self.new_user('di'), 'd')
        r = p.iq('get', DISCO_INFO, to='localhost')
        self.assertResult(r)
        self.assertEqual(r.get('from'), 'localhost', xml(r))
        self.assertIn(('server', 'im'), identities(r), xml(r))
        want = {NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING, NS_VERSION, 'msgoffline'}
        self.assertEqual(want - features(r), set(), 'missing server features; got: %s' % xml(r))
        # the roster is a feature of the account (or of the server)
        acc = p.iq('get', DISCO_INFO, to=p.bare)
        self.assertIn(NS_ROSTER, features(r) | features(acc),
                      'jabber:iq:roster advertised neither by the server nor the account:\n%s\n%s'
                      % (xml(r), xml(acc)))
        # no 'to': handled by the server for the account (RFC 6120 10.3.3), answered
        self.assertResult(p.iq('get', DISCO_INFO))

    def test_server_disco_items(self):
        p = self.peer(self.new_user('dt'), 'd')
        r = p.iq('get', DISCO_ITEMS, to='localhost')
        self.assertResult(r)
        self.assertIsNotNone(r.find(q(NS_DISCO_ITEMS, 'query')), xml(r))
        for it in r.find(q(NS_DISCO_ITEMS, 'query')):
            self.assertTrue(it.get('jid'), 'disco item without jid: %s' % xml(r))

    def test_account_disco_info(self):
        p = self.peer(self.new_user('da'), 'd')
        other = self.new_user('do')
        for to in (p.bare, other[0] + '@localhost'):
            with self.subTest(to=to):
                r = p.iq('get', DISCO_INFO, to=to)
                self.assertResult(r)
                self.assertEqual(r.get('from'), to, xml(r))
                self.assertIn(('account', 'registered'), identities(r), xml(r))
                self.assertIn(NS_DISCO_INFO, features(r), xml(r))
        r = p.iq('get', DISCO_ITEMS, to=p.bare)
        self.assertIn(r.get('type'), ('result', 'error'), xml(r))
        if r.get('type') == 'error':
            self.assertStanzaError(r, ('service-unavailable', 'item-not-found', 'feature-not-implemented'))

    def test_unknown_node_item_not_found(self):
        p = self.peer(self.new_user('dn'), 'd')
        for ns in (NS_DISCO_INFO, NS_DISCO_ITEMS):
            for to in ('localhost', p.bare):
                with self.subTest(ns=ns, to=to):
                    r = p.iq('get', "<query xmlns='%s' node='no-such-node-here'/>" % ns, to=to)
                    self.assertStanzaError(r, 'item-not-found', 'cancel')

    def test_ping_server_and_own_account(self):
        p = self.peer(self.new_user('dp'), 'd')
        r = p.iq('get', PING, to='localhost', id_='ping-srv')
        self.assertResult(r)
        self.assertIsNone(r.find('*'), 'ping result has a child: %s' % xml(r))
        r = p.iq('get', PING, to=p.bare)
        if r.get('type') != 'result':
            self.assertStanzaError(r, 'service-unavailable')

    def test_software_version(self):
        p = self.peer(self.new_user('dv'), 'd')
        r = p.iq('get', "<query xmlns='%s'/>" % NS_VERSION, to='localhost')
        self.assertResult(r)
        query = r.find(q(NS_VERSION, 'query'))
        self.assertIsNotNone(query, xml(r))
        self.assertEqual(query.findtext(q(NS_VERSION, 'name')), 'Tern', xml(r))
        self.assertTrue((query.findtext(q(NS_VERSION, 'version')) or '').strip(), 'no version: %s' % xml(r))
        r = p.iq('set', "<query xmlns='%s'/>" % NS_VERSION, to='localhost')
        self.assertEqual(r.get('type'), 'error', 'version set accepted: %s' % xml(r))

    def test_slixmpp_disco_ping_version(self):
        acc = self.new_user('dx')

        async def go():
            c = await self.slix(acc, 'slix', plugins=('xep_0030', 'xep_0092', 'xep_0199'),
                                roster=False, presence=False)
            info = await c.xmpp['xep_0030'].get_info(jid='localhost', timeout=TIMEOUT)
            ids = {(i[0], i[1]) for i in info['disco_info']['identities']}
            self.assertIn(('server', 'im'), ids, str(info))
            self.assertIn('urn:xmpp:ping', info['disco_info']['features'])
            items = await c.xmpp['xep_0030'].get_items(jid='localhost', timeout=TIMEOUT)
            self.assertEqual(items['type'], 'result')
            ver = await c.xmpp['xep_0092'].get_version('localhost', timeout=TIMEOUT)
            self.assertEqual(ver['software_version']['name'], 'Tern', str(ver))
            pong = await asyncio.wait_for(c.xmpp['xep_0199'].send_ping('localhost', timeout=TIMEOUT), TIMEOUT + 2)
            self.assertEqual(pong['type'], 'result')
        self.run_slix(go)


if __name__ == '__main__':
    unittest.main()
