"""`ternctl deluser` while ternd runs: the account's roster and offline
messages go, and its contacts are told (roster push and/or presence)."""

import unittest

from test_chat_common import ChatTestCase, M, is_push, roster_items, xml


def told_about(bare):
    """A roster push removing bare, or unsubscribe(d)/unavailable presence from it."""
    def pred(el):
        if is_push(bare, 'remove')(el):
            return True
        return (M('presence', type=('unsubscribe', 'unsubscribed', 'unavailable'))(el)
                and (el.get('from') or '').split('/')[0] == bare)
    pred.desc = 'a roster push removing %s or unsubscribe(d)/unavailable presence from it' % bare
    return pred


class DeluserTests(ChatTestCase):

    def test_deluser_while_running(self):
        acc_a, acc_b, acc_c = self.new_user('dela'), self.new_user('delb'), self.new_user('delc')
        alice_bare = acc_a[0] + '@localhost'
        # alice and bob: 'both'; carol has alice in her roster without subscription
        self.befriend_accounts(acc_a, acc_b)
        carol = self.peer(acc_c, 'c', roster=True, available=True)
        self.assertEqual(carol.roster_set("<item jid='%s' name='Alice'/>" % alice_bare).get('type'), 'result')
        carol.expect_push(alice_bare)
        # alice has a roster entry of her own for a stranger, and offline messages
        tmp = self.peer(acc_a, 'tmp', roster=True)
        self.assertEqual(tmp.roster_set("<item jid='stranger@example.com'/>").get('type'), 'result')
        tmp.logout()
        bob = self.peer(acc_b, 'b', roster=True, available=True)
        self.assertIn(alice_bare, bob.roster())
        bob.message(alice_bare, 'stored for alice 1', id_='del-off-1')
        bob.message(alice_bare, 'stored for alice 2', id_='del-off-2')
        bob.quiet(M('message', type='error'), 'an error for an offline message')

        r = self.server.ternctl('deluser', acc_a[0])
        self.assertEqual(r.returncode, 0, 'ternctl deluser: %s%s' % (r.stdout, r.stderr))

        # bob (online, interested, 'both') is told: a roster push removing
        # alice, and/or unsubscribed/unavailable presence from her
        told = told_about(alice_bare)
        first = bob.expect(told, what='a roster push removing %s or presence telling of the deletion' % alice_bare)
        bob.quiet(lambda e: False)      # collect whatever else comes
        notes = [first] + [e for e in bob.inbox if told(e)]
        self.notes = ('bob was told by: ' + '; '.join(xml(e) for e in notes))
        # his next roster get: alice is gone
        self.assertNotIn(alice_bare, roster_items(bob.roster_get()),
                         'bob still has the deleted account in his roster (same session)\n' + self.notes)
        bob2 = self.peer(acc_b, 'b2')
        self.assertNotIn(alice_bare, bob2.roster(), 'bob still has the deleted account (new session)')
        # carol's plain roster item pointing at alice: gone too, or at least no subscription
        items = carol.roster()
        if alice_bare in items:
            self.assertIn(items[alice_bare].get('subscription'), (None, 'none'), xml(items[alice_bare]))

        # alice's data is gone: a new account of the same name starts empty
        self.server.adduser(acc_a[0], 'reborn-pw-1')
        reborn = self.peer((acc_a[0], 'reborn-pw-1'), 'new', roster=True)
        self.assertEqual(reborn.roster(), {}, 'the new account inherited the old roster')
        reborn.available()
        reborn.quiet(M('message'), "an offline message of the deleted account")
        # and her old contacts do not see the new account's presence
        bob.quiet(M('presence', type='available', frm=reborn.jid), 'presence of the re-created account')

    def test_deluser_of_online_user(self):
        acc_a, acc_b = self.new_user('dol'), self.new_user('dom')
        alice_bare = acc_a[0] + '@localhost'
        self.befriend_accounts(acc_a, acc_b)
        bob = self.peer(acc_b, 'b', roster=True, available=True)
        alice = self.peer(acc_a, 'a', roster=True, available=True)
        bob.expect(M('presence', type='available', frm=alice.jid))
        r = self.server.ternctl('deluser', acc_a[0])
        self.assertEqual(r.returncode, 0, r.stderr)
        # bob is told (roster push removing alice and/or presence from her)
        bob.expect(told_about(alice_bare), what='news of the deletion of an online account')
        # the deleted account's own session does not live on (any stream error)
        info = alice.rs.expect_stream_error()
        self.assertTrue(info.stream_closed_tag, alice.rs.text[-1000:])
        self.assertNotIn(alice_bare, roster_items(bob.roster_get()))


if __name__ == '__main__':
    unittest.main()
