"""Push notifications (XEP-0357), server side: the component connection
(XEP-0114) the app server uses, service discovery, and enabling / disabling
registrations (what is accepted, what is refused, what a disable removes)."""

import re

from harness import find_stream_error, q, wait_until
from push_common import (NS_PUSH, PUBLISH_OPTIONS, PUSH2_JID, PUSH2_SECRET, PUSH3_JID, PUSH3_SECRET,
                         PUSH_JID, PUSH_SECRET, Component, PushTestCase, esc, one, push_form,
                         raw_component_handshake)
from test_chat_common import NS_DISCO_INFO, M, body_of, xml

DISCO_INFO = "<query xmlns='%s'/>" % NS_DISCO_INFO
HANDSHAKE_OK = re.compile(r'<handshake\s*/>|<handshake>\s*</handshake>')


def features(r):
    query = r.find(q(NS_DISCO_INFO, 'query'))
    if query is None:
        return set()
    return {f.get('var') for f in query.findall(q(NS_DISCO_INFO, 'feature'))}


class PushComponentTests(PushTestCase):
    """The XEP-0114 side: handshake accepted / refused, routing both ways,
    a second stream replacing the first, a configured component that is not
    connected.  push3.localhost is configured but only connected by tests."""

    component_domains = {PUSH_JID: PUSH_SECRET, PUSH2_JID: PUSH2_SECRET}
    extra_config = {'components': {PUSH3_JID: PUSH3_SECRET}}

    def test_component_handshake_accepted(self):
        # the class fixture connected with the right secret
        self.assertGreaterEqual(self.comp.handshakes, 1, self.comp.transcript())
        text = self.comp.transcript()
        self.assertRegex(text, r"<stream:stream[^>]*\bid=", 'no stream id from the server\n' + text)

    def test_wrong_secret_refused_existing_component_unharmed(self):
        text = raw_component_handshake(self.component_port, PUSH_JID, 'not-the-secret')
        self.assertNotRegex(text, HANDSHAKE_OK, 'handshake with a wrong secret accepted:\n%s' % text)
        info = find_stream_error(text)
        self.assertIsNotNone(info, 'no stream error for a wrong secret:\n%s' % text)
        self.assertEqual(info.condition, 'not-authorized', 'wrong condition for a wrong secret:\n%s' % text)
        # the component that is connected still gets its publishes
        acc, (node,), bob = self.registered_offline('cw')
        bob.message(self.bare(acc), 'hello', id_='cw-1')
        self.comp.wait_publishes(node, 1, what='publish after a failed handshake of an impostor')

    def test_unknown_component_domain_refused(self):
        text = raw_component_handshake(self.component_port, 'nosuch.localhost', 'whatever')
        self.assertNotRegex(text, HANDSHAKE_OK, 'handshake of an unconfigured domain accepted:\n%s' % text)
        info = find_stream_error(text)
        self.assertIsNotNone(info, 'no stream error for an unconfigured domain:\n%s' % text)
        self.assertIn(info.condition, ('host-unknown', 'not-authorized', 'improper-addressing'),
                      'condition for an unconfigured component domain:\n%s' % text)


    def test_routing_user_to_component_and_back(self):
        comp2 = self.components[PUSH2_JID]
        p = self.peer(self.new_user('cr'), 'phone')
        p.message('bot@%s/x' % PUSH2_JID, 'to the component', id_='cr-1')
        got = wait_until(lambda: [el for _, el in list(comp2.received) if el.get('id') == 'cr-1'], what='the message at the component\n' + comp2.transcript())[0]
        self.assertEqual(got.get('from'), p.jid, xml(got))
        self.assertEqual(got.get('to'), 'bot@%s/x' % PUSH2_JID, xml(got))
        self.assertEqual(got.findtext('{jabber:component:accept}body'), 'to the component', xml(got))
        # a disco#info IQ is answered by the component
        r = p.iq('get', DISCO_INFO, to=PUSH2_JID)
        self.assertResult(r, 'disco#info to the component: ')
        self.assertEqual(r.get('from'), PUSH2_JID, xml(r))
        # and the component can write to the user
        comp2.send_raw("<message from='bot@%s/x' to='%s' id='cr-2' type='chat'><body>back</body></message>"
                       % (PUSH2_JID, p.jid))
        el = p.expect(M('message', id='cr-2'), what='the component\'s message')
        self.assertEqual(el.get('from'), 'bot@%s/x' % PUSH2_JID, xml(el))
        self.assertEqual(body_of(el), 'back', xml(el))

    def test_configured_component_not_connected_bounces(self):
        p = self.peer(self.new_user('cb'), 'r')
        p.message(PUSH3_JID, 'anyone there?', id_='cb-1')
        el = p.expect(M('message', id='cb-1', type='error'), what='a bounce for a component that is not connected')
        self.assertStanzaError(el, 'service-unavailable')
        r = p.iq('get', DISCO_INFO, to=PUSH3_JID)
        self.assertStanzaError(r, 'service-unavailable')

    def test_new_stream_replaces_old_one(self):
        first = Component(self.component_port, PUSH3_JID, PUSH3_SECRET, reconnect=False)
        second = Component(self.component_port, PUSH3_JID, PUSH3_SECRET, reconnect=False)
        self.addCleanup(first.stop)
        self.addCleanup(second.stop)
        first.start()
        second.start()
        wait_until(lambda: not first.connected, what='the first stream to end\n' + first.transcript())
        self.assertIn('conflict', first.transcript(), 'the replaced stream did not get <conflict/>\n'
                      + first.transcript())
        p = self.peer(self.new_user('cn'), 'r')
        r = p.iq('get', DISCO_INFO, to=PUSH3_JID)
        self.assertResult(r, 'disco#info to the replacing component: ')
        self.assertTrue(any(el.get('id') == r.get('id') for _, el in second.received), second.transcript())

class PushEnableTests(PushTestCase):
    component_domains = {PUSH_JID: PUSH_SECRET, PUSH2_JID: PUSH2_SECRET}

    def test_disco_server_and_account_list_push(self):
        p = self.peer(self.new_user('pd'), 'r')
        r = p.iq('get', DISCO_INFO, to=self.server.domain)
        self.assertResult(r)
        self.assertIn(NS_PUSH, features(r), 'server disco#info without %s: %s' % (NS_PUSH, xml(r)))
        r = p.iq('get', DISCO_INFO, to=p.bare)
        self.assertResult(r)
        self.assertIn(NS_PUSH, features(r), 'account disco#info without %s: %s' % (NS_PUSH, xml(r)))

    def test_enable_with_and_without_form_is_result(self):
        acc = self.new_user('pe')
        p = self.peer(acc, 'r')
        n_form, n_plain = self.new_node('pe-form'), self.new_node('pe-plain')
        r = self.enable(p, n_form, form=True)
        self.assertResult(r, 'enable with a publish-options form: ')
        self.assertIsNone(r.find('*'), 'enable result with a payload: %s' % xml(r))
        self.assertResult(self.enable(p, n_plain, form=False), 'enable without a form: ')
        p.logout()
        bob = self.peer(self.new_user('pes'), 's')
        bob.message(self.bare(acc), 'hi', id_='pe-1')
        with_form = self.comp.wait_publishes(n_form, 1)[0]
        plain = self.comp.wait_publishes(n_plain, 1)[0]
        self.assertEqual(with_form['options'], {'FORM_TYPE': [PUBLISH_OPTIONS], 'secret': ['s']},
                         'publish-options must echo the enable form: %s' % with_form['raw'])
        self.assertIn(plain['options'], (None, {}), 'publish-options without an enable form: %s' % plain['raw'])

    def test_enable_refusals(self):
        acc = self.new_user('pr')
        p = self.peer(acc, 'r')
        good = self.new_node('pr-good')
        bad_form = self.new_node('pr-badform')
        cases = [
            ('no jid', "<enable xmlns='%s' node='x1'/>" % NS_PUSH, ('bad-request',)),
            ('own bare jid', "<enable xmlns='%s' jid='%s' node='x2'/>" % (NS_PUSH, p.bare), None),
            ('own full jid', "<enable xmlns='%s' jid='%s' node='x3'/>" % (NS_PUSH, esc(p.jid)), None),
            ('other FORM_TYPE', "<enable xmlns='%s' jid='%s' node='%s'>%s</enable>"
             % (NS_PUSH, PUSH_JID, bad_form, push_form('s', form_type='urn:example:not-publish-options')),
             ('bad-request',)),
        ]
        for label, payload, conds in cases:
            with self.subTest(case=label):
                r = self.enable(p, None, raw_payload=payload)
                self.assertEqual(r.get('type'), 'error', '%s: enable accepted: %s' % (label, xml(r)))
                if conds:
                    self.assertStanzaError(r, conds, msg='%s: ' % label)
        self.enable_ok(p, good)
        p.logout()
        bob = self.peer(self.new_user('prs'), 's')
        bob.message(self.bare(acc), 'hi', id_='pr-1')
        self.comp.wait_publishes(good, 1)
        self.comp.expect_no_more(bad_form, 0, 1.0, 'a refused enable (wrong FORM_TYPE) was registered')
        self.assertEqual({pub['node'] for pub in self.comp.publishes() if pub['node'] in (good, bad_form, 'x1')},
                         {good}, self.comp.transcript())

    def test_enable_addressed_to_own_bare_jid(self):
        acc = self.new_user('pb')
        p = self.peer(acc, 'r')
        node = self.new_node('pb')
        r = p.iq('set', "<enable xmlns='%s' jid='%s' node='%s'/>" % (NS_PUSH, PUSH_JID, node), to=p.bare)
        self.assertResult(r, 'enable addressed to the own bare JID: ')
        p.logout()
        bob = self.peer(self.new_user('pbs'), 's')
        bob.message(self.bare(acc), 'hi', id_='pb-1')
        self.comp.wait_publishes(node, 1)

    def test_no_enable_or_disable_for_another_account(self):
        victim = self.new_user('pv')
        v_node = self.new_node('pv')
        v = self.peer(victim, 'r')
        self.enable_ok(v, v_node)
        v.logout()
        mallory = self.peer(self.new_user('pm'), 'r')
        m_node = self.new_node('pm')
        r = mallory.iq('set', "<enable xmlns='%s' jid='%s' node='%s'/>" % (NS_PUSH, PUSH_JID, m_node),
                       to=self.bare(victim))
        self.assertEqual(r.get('type'), 'error', 'enable for another account accepted: %s' % xml(r))
        r = mallory.iq('set', "<disable xmlns='%s' jid='%s'/>" % (NS_PUSH, PUSH_JID), to=self.bare(victim))
        self.assertEqual(r.get('type'), 'error', 'disable for another account accepted: %s' % xml(r))
        # and a disable of the victim's node in mallory's own account touches nothing of the victim's
        self.assertResult(self.disable(mallory, PUSH_JID, v_node))
        mallory.message(self.bare(victim), 'hi', id_='pv-1')
        self.comp.wait_publishes(v_node, 1, what='publish to the victim\'s own registration')
        self.comp.expect_no_more(m_node, 0, 1.0, 'publish to a node enabled by another account')

    def test_node_and_options_with_xml_special_characters(self):
        acc = self.new_user('pq')
        p = self.peer(acc, 'r')
        node = self.new_node('pq') + "-'&\"<x>"
        secret = "s&<'\">]]>"
        self.enable_ok(p, node, secret=secret)
        p.logout()
        bob = self.peer(self.new_user('pqs'), 's')
        bob.message(self.bare(acc), 'hi', id_='pq-1')
        pub = self.comp.wait_publishes(node, 1)[0]
        self.assertEqual(one(pub['options'], 'secret'), secret, pub['raw'])

    def test_enable_same_node_twice_is_one_registration_latest_options(self):
        acc = self.new_user('pt')
        p = self.peer(acc, 'r')
        node = self.new_node('pt')
        self.enable_ok(p, node, secret='first')
        self.enable_ok(p, node, secret='second')
        p.logout()
        bob = self.peer(self.new_user('pts'), 's')
        bob.message(self.bare(acc), 'hi', id_='pt-1')
        pubs = self.comp.wait_publishes(node, 1)
        pubs = self.comp.expect_no_more(node, 1, 1.2, 'two publishes for one (re-enabled) registration')
        self.assertEqual(one(pubs[0]['options'], 'secret'), 'second', pubs[0]['raw'])

    def test_disable_one_node_all_nodes_and_no_match(self):
        acc = self.new_user('px')
        p = self.peer(acc, 'r')
        n1, n2, n3 = self.new_node('px-a'), self.new_node('px-b'), self.new_node('px-c')
        self.enable_ok(p, n1)
        self.enable_ok(p, n2)
        self.enable_ok(p, n3, jid=PUSH2_JID)
        for label, jid, node in (('one node', PUSH_JID, n1), ('no such node', PUSH_JID, 'nope'),
                                 ('no such jid', 'nobody.localhost', None),
                                 ('no such jid + node', 'nobody.localhost', n2)):
            with self.subTest(disable=label):
                self.assertResult(self.disable(p, jid, node), 'disable (%s): ' % label)
        p.logout()
        bob = self.peer(self.new_user('pxs'), 's')
        bob.message(self.bare(acc), 'first', id_='px-1')
        self.comp.wait_publishes(n2, 1, what='publish to the node left enabled')
        self.components[PUSH2_JID].wait_publishes(n3, 1, what='publish to the other service')
        self.comp.expect_no_more(n1, 0, 1.0, 'publish to a disabled node')
        # disable without node: everything of that jid goes, the other jid stays
        p = self.peer(acc, 'r2')
        self.assertResult(self.disable(p, PUSH_JID), 'disable of a whole jid: ')
        p.logout()
        bob.message(self.bare(acc), 'second', id_='px-2')
        self.components[PUSH2_JID].wait_publishes(n3, 2, what='publish to the other service after disable')
        self.comp.expect_no_more(n2, 1, 1.0, 'publish to a node of a disabled jid')
        self.comp.expect_no_more(n1, 0, 0, 'publish to a disabled node')

    def test_disable_then_no_publish(self):
        acc = self.new_user('pn')
        p = self.peer(acc, 'r')
        node = self.new_node('pn')
        self.enable_ok(p, node)
        self.assertResult(self.disable(p, PUSH_JID, node))
        p.logout()
        bob = self.peer(self.new_user('pns'), 's')
        bob.message(self.bare(acc), 'hi', id_='pn-1')
        bob.quiet(M('message', type='error'), 'an error for a message stored offline')
        self.comp.expect_no_more(node, 0, 1.5, 'publish after disable')
        # the offline message is still there
        back = self.peer(acc, 'back')
        back.available()
        back.expect(M('message', id='pn-1'), what='the offline message')
