"""Roster management (RFC 6121 section 2): get, set, pushes to interested
resources, update, remove, versioning, error cases."""

import unittest

from harness import q
from test_chat_common import (NS_ROSTER, NS_ROSTERVER, ChatTestCase, M, groups_of, is_push,
                              roster_items, xml)


class RosterTests(ChatTestCase):

    def assertRosterReply(self, r, peer):
        self.assertResult(r)
        self.assertIn(r.get('from'), (None, peer.bare), 'roster result from %r: %s' % (r.get('from'), xml(r)))

    # -- get ------------------------------------------------------------------
    def test_get_empty_roster(self):
        p = self.peer(self.new_user('re'))
        r = p.roster_get()
        self.assertRosterReply(r, p)
        query = r.find(q(NS_ROSTER, 'query'))
        self.assertIsNotNone(query, 'roster result without <query/>: %s' % xml(r))
        self.assertEqual(list(query), [], 'new account has roster items: %s' % xml(r))

    def test_get_addressed_to_own_bare_jid(self):
        # RFC 6121 2.1.3/2.1.5: to the user's bare JID is the same as no 'to'
        p = self.peer(self.new_user('rb'))
        r = p.roster_set("<item jid='own-bare@example.com' name='OB'/>", to=p.bare)
        self.assertRosterReply(r, p)
        r = p.roster_get(to=p.bare)
        self.assertRosterReply(r, p)
        self.assertIn('own-bare@example.com', roster_items(r), xml(r))

    # -- set ------------------------------------------------------------------
    def test_add_item_result_then_push_to_every_interested_resource(self):
        acc = self.new_user('ra')
        r1 = self.peer(acc, 'one', roster=True)
        r2 = self.peer(acc, 'two', roster=True, available=True)
        r3 = self.peer(acc, 'three', available=True)       # never asked for the roster
        r = r1.roster_set("<item jid='nurse@example.com' name='Nurse'>"
                          "<group>Servants</group><group>Friends</group></item>")
        self.assertRosterReply(r, r1)
        self.assertIsNone(r.find(q(NS_ROSTER, 'query')), 'roster set result carries a query: %s' % xml(r))
        for p in (r1, r2):
            with self.subTest(resource=p.jid):
                it = p.expect_push('nurse@example.com')
                self.assertEqual(it.get('name'), 'Nurse', xml(it))
                self.assertEqual(groups_of(it), ['Friends', 'Servants'], xml(it))
                self.assertIn(it.get('subscription'), (None, 'none'), xml(it))
                self.assertIsNone(it.get('ask'), xml(it))
        # not interested: no push
        r3.quiet(is_push(), 'a roster push (it never requested the roster)')
        items = r3.roster()
        self.assertIn('nurse@example.com', items)
        self.assertEqual(items['nurse@example.com'].get('name'), 'Nurse')
        self.assertEqual(groups_of(items['nurse@example.com']), ['Friends', 'Servants'])
        self.assertIn(items['nurse@example.com'].get('subscription'), (None, 'none'))
        # exactly one push per interested resource
        for p in (r1, r2):
            p.quiet(is_push('nurse@example.com'), 'a second push for the same roster set')

    def test_update_item(self):
        acc = self.new_user('ru')
        a = self.peer(acc, 'a', roster=True)
        b = self.peer(acc, 'b', roster=True)
        self.assertResult(a.roster_set("<item jid='upd@example.com' name='Old'><group>G1</group></item>"))
        a.expect_push('upd@example.com')
        b.expect_push('upd@example.com')
        r = a.roster_set("<item jid='upd@example.com' name='New'><group>G2</group><group>G3</group></item>")
        self.assertResult(r)
        for p in (a, b):
            it = p.expect_push('upd@example.com')
            self.assertEqual(it.get('name'), 'New', xml(it))
            self.assertEqual(groups_of(it), ['G2', 'G3'], xml(it))
        # update removing name and groups
        self.assertResult(a.roster_set("<item jid='upd@example.com'/>"))
        it = b.expect_push('upd@example.com')
        self.assertIn(it.get('name'), (None, ''), xml(it))
        self.assertEqual(groups_of(it), [], xml(it))
        items = b.roster()
        self.assertEqual(len(items), 1, items)
        self.assertEqual(groups_of(items['upd@example.com']), [])

    def test_remove_item(self):
        acc = self.new_user('rr')
        a = self.peer(acc, 'a', roster=True)
        b = self.peer(acc, 'b', roster=True)
        self.assertResult(a.roster_set("<item jid='gone@example.com' name='Gone'/>"))
        self.assertResult(a.roster_set("<item jid='stays@example.com'/>"))
        for p in (a, b):
            p.expect_push('gone@example.com')
            p.expect_push('stays@example.com')
        r = a.roster_set("<item jid='gone@example.com' subscription='remove'/>")
        self.assertResult(r)
        for p in (a, b):
            with self.subTest(resource=p.jid):
                it = p.expect_push('gone@example.com', 'remove')
                self.assertEqual(it.get('subscription'), 'remove', xml(it))
        items = b.roster()
        self.assertEqual(sorted(items), ['stays@example.com'])
        # removing an item that is not there: item-not-found (2.5.3)
        r = a.roster_set("<item jid='gone@example.com' subscription='remove'/>")
        self.assertStanzaError(r, 'item-not-found')
        b.quiet(is_push('gone@example.com'), 'a push for a failed removal')

    # -- versioning (2.6) ------------------------------------------------------
    def test_versioning(self):
        acc = self.new_user('rv')
        p = self.peer(acc, 'v')
        r = p.roster_get(ver='')
        self.assertResult(r)
        query = r.find(q(NS_ROSTER, 'query'))
        self.assertIsNotNone(query, 'roster get with ver=\'\' must return the roster: %s' % xml(r))
        v1 = query.get('ver')
        self.assertTrue(v1, 'roster result without ver: %s' % xml(r))
        # unchanged: empty result
        r = p.roster_get(ver=v1)
        self.assertResult(r)
        self.assertIsNone(r.find(q(NS_ROSTER, 'query')),
                          'get with the current ver must return an empty result: %s' % xml(r))
        # a change: the push carries a new ver
        self.assertResult(p.roster_set("<item jid='ver@example.com' name='V'/>"))
        push = p.expect(is_push('ver@example.com'))
        v2 = push.find(q(NS_ROSTER, 'query')).get('ver')
        self.assertTrue(v2, 'roster push without ver: %s' % xml(push))
        self.assertNotEqual(v1, v2, 'ver unchanged after a roster change')
        r = p.roster_get(ver=v2)
        self.assertResult(r)
        self.assertIsNone(r.find(q(NS_ROSTER, 'query')), 'get with the push ver: %s' % xml(r))
        # a stale ver: the whole roster with the new ver, or an empty result
        # and the changes as pushes (2.6.3)
        r = p.roster_get(ver=v1)
        self.assertResult(r)
        query = r.find(q(NS_ROSTER, 'query'))
        if query is not None:
            self.assertIn('ver@example.com', roster_items(r), xml(r))
            self.assertEqual(query.get('ver'), v2, xml(r))
        else:
            p.expect_push('ver@example.com')
        # every result of a plain get carries the current ver
        r = p.roster_get(ver='')
        self.assertEqual(r.find(q(NS_ROSTER, 'query')).get('ver'), v2, xml(r))
        # 2.6.1: a server supporting versioning MUST advertise the stream feature
        self.assertIsNotNone(p.post_auth_features.find(q(NS_ROSTERVER, 'ver')),
                             'roster versioning works but is not advertised (RFC 6121 2.6.1: '
                             "<ver xmlns='urn:xmpp:features:rosterver'/>): %s" % xml(p.post_auth_features))

    # -- errors (2.1.5, 2.3.3) ----------------------------------------------
    def test_invalid_roster_sets(self):
        acc = self.new_user('ri')
        p = self.peer(acc, 'err', roster=True)
        cases = [
            ('item without jid', "<item name='NoJid'/>", ('bad-request',)),
            ('two items', "<item jid='two1@example.com'/><item jid='two2@example.com'/>", ('bad-request',)),
            ('duplicate groups', "<item jid='dup@example.com'><group>G</group><group>G</group></item>",
             ('bad-request',)),
            ('empty group', "<item jid='emptygroup@example.com'><group></group></item>", ('not-acceptable',)),
            ('invalid jid', "<item jid='a@b@c'/>", ('jid-malformed', 'bad-request')),
            ('empty jid', "<item jid=''/>", ('jid-malformed', 'bad-request')),
            ('no item', '', ('bad-request',)),
        ]
        for label, item, conds in cases:
            with self.subTest(case=label):
                r = p.roster_set(item)
                self.assertStanzaError(r, conds, msg='%s: ' % label)
        p.quiet(is_push(), 'a roster push after an invalid roster set')
        self.assertEqual(p.roster(), {}, 'invalid sets changed the roster')

    def test_roster_iq_to_another_users_bare_jid_refused(self):
        owner = self.new_user('ro')
        other = self.new_user('rx')
        victim = self.peer(owner, 'victim', roster=True, available=True)
        p = self.peer(other, 'attacker', roster=True)
        r = p.roster_set("<item jid='evil@example.com' name='Evil'/>", to=victim.bare)
        self.assertStanzaError(r, ('forbidden', 'service-unavailable'))
        r = p.roster_get(to=victim.bare)
        self.assertStanzaError(r, ('forbidden', 'service-unavailable'))
        self.assertEqual(roster_items(r), {}, 'roster leaked in an error: %s' % xml(r))
        victim.quiet(M('iq'), 'an iq (the roster request was not for this session)')
        self.assertEqual(victim.roster(), {}, 'another user changed the roster')
        self.assertEqual(p.roster(), {}, 'the item went into the sender\'s own roster')

    # -- slixmpp --------------------------------------------------------------
    def test_slixmpp_roster_update_and_push(self):
        acc = self.new_user('rs')

        async def go():
            a = await self.slix(acc, 'slix-a')
            b = await self.slix(acc, 'slix-b')
            pushes = []
            b.xmpp.add_event_handler('roster_update', lambda iq: pushes.append(iq))
            await a.xmpp.update_roster('friend@example.com', name='Friend', groups=['Work', 'Pals'],
                                       timeout=10)
            roster = b.xmpp.client_roster
            item = await self.until(lambda: roster.has_jid('friend@example.com')
                                    and roster['friend@example.com']['name'] == 'Friend'
                                    and roster['friend@example.com'],
                                    'the roster push on the other slixmpp resource', clients=(a, b))
            self.assertEqual(sorted(item['groups']), ['Pals', 'Work'])
            self.assertEqual(item['subscription'], 'none')
            self.assertTrue(pushes, 'no roster_update event on the other resource')
            await a.xmpp.del_roster_item('friend@example.com')
            await self.until(lambda: not roster.has_jid('friend@example.com'),
                             'the removal push on the other slixmpp resource', clients=(a, b))
        self.run_slix(go)


if __name__ == '__main__':
    unittest.main()
