"""Push notifications (XEP-0357): the per-user content options (form
urn:xmpp:push:options inside <enable/>).  They are kept per account, within
the server's push.include_* settings; once set, a later enable can only
narrow them until every registration of the account is gone; disco#info of
the account's own bare JID, asked by the account, shows the options in
force."""

from push_common import (NS_DATA, NS_PUSH, PUBLISH_OPTIONS, PushTestCase, esc, form_fields, one,
                         push_form)
from harness import q
from test_chat_common import NS_DISCO_INFO, xml

NS_OPTIONS = 'urn:xmpp:push:options'
DISCO_INFO = "<query xmlns='%s'/>" % NS_DISCO_INFO
FIELDS = ('include-senders', 'include-message-count', 'include-message-bodies')


def options_form(**values):
    """An urn:xmpp:push:options submit form; keyword names use _ for -."""
    return push_form(None, form_type=NS_OPTIONS,
                     extra_fields=[(k.replace('_', '-'), v) for k, v in values.items()])


class PushOptionsCase(PushTestCase):
    def enable_with(self, peer, node, options_xml, publish_options=True):
        inner = (push_form('s') if publish_options else '') + options_xml
        payload = "<enable xmlns='%s' jid='%s' node='%s'>%s</enable>" % (
            NS_PUSH, esc(self.comp.domain), esc(node), inner)
        return self.enable(peer, None, raw_payload=payload)

    def shown(self, peer, to=None):
        """The urn:xmpp:push:options form in disco#info of `to` (default the
        peer's own bare JID) as {field: value}, or None if there is none."""
        r = peer.iq('get', DISCO_INFO, to=to or peer.bare)
        self.assertResult(r, 'disco#info: ')
        query = r.find(q(NS_DISCO_INFO, 'query'))
        self.assertIsNotNone(query, xml(r))
        features = {f.get('var') for f in query.findall(q(NS_DISCO_INFO, 'feature'))}
        self.assertIn(NS_PUSH, features, 'the account lost %s from disco#info: %s' % (NS_PUSH, xml(r)))
        for x in query.findall(q(NS_DATA, 'x')):
            fields = form_fields(x)
            if fields.get('FORM_TYPE') == [NS_OPTIONS]:
                self.assertEqual(x.get('type'), 'result', 'the options form type: %s' % xml(r))
                return {k: one(fields, k) for k in FIELDS}
        return None

    def assertShown(self, peer, expected, msg=''):
        got = self.shown(peer)
        self.assertIsNotNone(got, '%sno %s form in the own disco#info' % (msg, NS_OPTIONS))
        self.assertEqual(got, {k: expected[i] for i, k in enumerate(FIELDS)}, msg)


class PushContentOptionsTests(PushOptionsCase):
    """The server allows senders and bodies (push.include_sender and
    push.include_body on), so what a user asks for decides."""

    push_config = {'include_body': True, 'include_sender': True}

    def test_disco_shows_defaults_to_the_owner_only(self):
        alice = self.peer(self.new_user('od'), 'r')
        self.assertShown(alice, ('1', '1', '1'), 'no options set: everything the server allows')
        bob = self.peer(self.new_user('ods'), 'r')
        self.assertIsNone(self.shown(bob, to=alice.bare), 'another account saw the options of %s' % alice.bare)

    def test_options_restrict_what_is_published(self):
        acc = self.new_user('or')
        dev = self.peer(acc, 'dev')
        node = self.new_node('or')
        self.assertResult(self.enable_with(dev, node, options_form(include_message_bodies='false')),
                          'enable with content options: ')
        self.assertShown(dev, ('1', '1', '0'))
        dev.logout()
        bob = self.peer(self.new_user('ors'), 's')
        bob.message(self.bare(acc), 'secret body 77c1', id_='or-1')
        p = self.comp.wait_publishes(node, 1, what='publish under content options')[0]
        self.assertNotification(p, node)
        self.assertNotIn('77c1', p['raw'], 'include-message-bodies false, but the body was published')
        self.assertEqual(one(p['summary'], 'last-message-sender'), bob.bare, p['raw'])
        self.assertEqual(p['options'], {'FORM_TYPE': [PUBLISH_OPTIONS], 'secret': ['s']},
                         'only the publish-options form is echoed: %s' % p['raw'])

    def test_message_count_off(self):
        acc = self.new_user('oc')
        dev = self.peer(acc, 'dev')
        node = self.new_node('oc')
        self.assertResult(self.enable_with(dev, node, options_form(include_message_count='0')))
        dev.logout()
        bob = self.peer(self.new_user('ocs'), 's')
        bob.message(self.bare(acc), 'count me not', id_='oc-1')
        p = self.comp.wait_publishes(node, 1)[0]
        self.assertIsNotNone(p['summary'], p['raw'])
        self.assertNotIn('message-count', p['summary'], 'include-message-count 0: %s' % p['raw'])
        self.assertEqual(one(p['summary'], 'last-message-body'), 'count me not', p['raw'])

    def test_later_enable_only_narrows_until_all_disabled(self):
        acc = self.new_user('on')
        dev = self.peer(acc, 'dev')
        n1, n2, n3 = self.new_node('on-1'), self.new_node('on-2'), self.new_node('on-3')
        self.assertResult(self.enable_with(dev, n1, options_form(include_senders='false')))
        # asks for senders back and takes bodies away: senders stay off
        self.assertResult(self.enable_with(dev, n2, options_form(include_senders='true',
                                                                 include_message_bodies='false')),
                          'a widening enable is accepted, narrowed: ')
        self.assertShown(dev, ('0', '1', '0'), 'after the second enable')
        # an enable without the options form keeps them
        self.enable_ok(dev, n3)
        self.assertShown(dev, ('0', '1', '0'), 'after an enable without options')
        self.assertIn('can only narrow', self.server.log_text())
        # they outlive a restart
        dev.logout()
        seen = self.comp.handshakes
        self.assertEqual(self.server.restart(), 0, 'ternd exit status at the restart')
        self.comp.wait_connected(after=seen)
        dev = self.peer(acc, 'dev')
        self.assertShown(dev, ('0', '1', '0'), 'after a restart')
        dev.logout()
        bob = self.peer(self.new_user('ons'), 's')
        bob.message(self.bare(acc), 'narrowed 41d0', id_='on-1')
        for n in (n1, n2, n3):
            p = self.comp.wait_publishes(n, 1)[0]
            self.assertNotIn('41d0', p['raw'], 'body published to %s' % n)
            self.assertNotIn(bob.bare, p['raw'], 'sender published to %s' % n)
        # disabling one registration keeps them; disabling all resets them
        dev = self.peer(acc, 'dev')
        self.assertResult(self.disable(dev, node=n1))
        self.assertShown(dev, ('0', '1', '0'), 'with registrations left')
        self.assertResult(self.disable(dev))
        self.assertShown(dev, ('1', '1', '1'), 'every registration disabled: options forgotten')
        self.assertResult(self.enable_with(dev, n1, options_form(include_senders='1')))
        self.assertShown(dev, ('1', '1', '1'), 'set afresh')

    def test_bad_options_forms_are_refused_and_store_nothing(self):
        acc = self.new_user('ob')
        dev = self.peer(acc, 'dev')
        node = self.new_node('ob')
        cases = [
            ('unknown field', options_form(include_body='false')),
            ('not a boolean', options_form(include_message_bodies='maybe')),
            ('two options forms', options_form(include_senders='0') + options_form(include_senders='0')),
            ('options form of type form', options_form(include_senders='0').replace("type='submit'", "type='form'")),
        ]
        for label, form in cases:
            with self.subTest(case=label):
                r = self.enable_with(dev, node, form)
                self.assertStanzaError(r, ('bad-request',), type_='modify', msg='%s: ' % label)
        self.assertShown(dev, ('1', '1', '1'), 'a refused enable changed the options')
        dev.logout()
        bob = self.peer(self.new_user('obs'), 's')
        bob.message(self.bare(acc), 'nobody registered', id_='ob-1')
        bob.barrier()
        self.comp.expect_no_more(node, 0, 1.0, 'a refused enable was registered')


class PushOptionsServerLimitTests(PushOptionsCase):
    """The server sends neither senders nor bodies (the defaults): a user
    cannot ask for them, and disco#info shows what notifications carry."""

    def test_options_within_the_server_limits(self):
        acc = self.new_user('ol')
        dev = self.peer(acc, 'dev')
        node = self.new_node('ol')
        self.assertResult(self.enable_with(dev, node, options_form(include_senders='1',
                                                                   include_message_bodies='1')))
        self.assertShown(dev, ('0', '1', '0'))
        dev.logout()
        bob = self.peer(self.new_user('ols'), 's')
        bob.message(self.bare(acc), 'server says no 0e9a', id_='ol-1')
        p = self.comp.wait_publishes(node, 1)[0]
        self.assertNotIn('0e9a', p['raw'], 'a user turned on bodies the server leaves off')
        self.assertNotIn(bob.bare, p['raw'], 'a user turned on senders the server leaves off')
