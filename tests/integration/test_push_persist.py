"""Push notifications (XEP-0357), server side: registrations are stored
(they survive a restart of ternd, the component reconnects) and can be
listed and removed with `ternctl push list|remove`."""

from push_common import (PUBLISH_OPTIONS, PUSH2_JID, PUSH2_SECRET, PUSH_JID, PUSH_SECRET, PushTestCase)
from test_chat_common import M

SETTLE = 1.2


class PushPersistTests(PushTestCase):
    component_domains = {PUSH_JID: PUSH_SECRET, PUSH2_JID: PUSH2_SECRET}

    def ctl(self, *args):
        r = self.server.ternctl('push', *args)
        self.assertEqual(r.returncode, 0, 'ternctl push %s failed (%d):\n%s%s'
                         % (' '.join(args), r.returncode, r.stdout, r.stderr))
        return r.stdout

    def regs(self, user):
        """`ternctl push list USER` as a set of (jid, node), checking the
        format: one registration a line, JID TAB node TAB resource TAB created."""
        out = self.ctl('list', user)
        pairs = set()
        for line in out.splitlines():
            if not line.strip():
                continue
            f = line.split('\t')
            self.assertGreaterEqual(len(f), 4, 'ternctl push list line is not JID<TAB>node<TAB>resource'
                                    '<TAB>created: %r' % line)
            pairs.add((f[0], f[1]))
        return pairs

    def test_registrations_survive_restart(self):
        acc = self.new_user('rs')
        node = self.new_node('rs')
        p = self.peer(acc, 'r')
        self.enable_ok(p, node, secret='kept-secret')
        p.logout()
        seen = {d: c.handshakes for d, c in self.components.items()}
        rc = self.server.restart()
        self.assertEqual(rc, 0, 'ternd exit status at the restart')
        for d, c in self.components.items():
            c.wait_connected(after=seen[d])
        bob = self.peer(self.new_user('rss'), 's')
        bob.message(self.bare(acc), 'after restart', id_='rs-1')
        pub = self.comp.wait_publishes(node, 1, what='publish to a registration made before the restart')[0]
        self.assertNotification(pub, node)
        self.assertEqual(pub['options'], {'FORM_TYPE': [PUBLISH_OPTIONS], 'secret': ['kept-secret']},
                         'publish-options lost in the restart: %s' % pub['raw'])
        self.comp.expect_no_more(node, 1, SETTLE, 'more than one publish after the restart')

    def test_ternctl_push_list_and_remove(self):
        acc = self.new_user('tc')
        user = acc[0]
        a, b, c = self.new_node('tc-a'), self.new_node('tc-b'), self.new_node('tc-c')
        p = self.peer(acc, 'r')
        self.enable_ok(p, a)
        self.enable_ok(p, b)
        self.enable_ok(p, c, jid=PUSH2_JID)
        p.logout()
        self.assertEqual(self.regs(user), {(PUSH_JID, a), (PUSH_JID, b), (PUSH2_JID, c)})
        out = self.ctl('list', user)
        self.assertIn('\tr\t', out, 'the resource of the enabling session is not listed:\n%s' % out)
        # the bare JID form of the user works as well
        self.assertEqual(self.regs(self.bare(acc)), {(PUSH_JID, a), (PUSH_JID, b), (PUSH2_JID, c)})
        # remove one (jid + node)
        self.ctl('remove', user, PUSH_JID, a)
        self.assertEqual(self.regs(user), {(PUSH_JID, b), (PUSH2_JID, c)})
        bob = self.peer(self.new_user('tcs'), 's')
        bob.message(self.bare(acc), 'one', id_='tc-1')
        self.comp.wait_publishes(b, 1)
        self.components[PUSH2_JID].wait_publishes(c, 1)
        self.comp.expect_no_more(a, 0, SETTLE, 'publish to a registration removed with ternctl')
        # remove everything of one jid
        self.ctl('remove', user, PUSH_JID)
        self.assertEqual(self.regs(user), {(PUSH2_JID, c)})
        bob.message(self.bare(acc), 'two', id_='tc-2')
        self.components[PUSH2_JID].wait_publishes(c, 2)
        self.comp.expect_no_more(b, 1, SETTLE, 'publish to a jid removed with ternctl')
        # removing what is not there is fine
        self.ctl('remove', user, PUSH_JID, 'no-such-node')
        # remove all
        self.ctl('remove', user)
        self.assertEqual(self.regs(user), set())
        bob.message(self.bare(acc), 'three', id_='tc-3')
        bob.barrier()
        self.components[PUSH2_JID].expect_no_more(c, 2, SETTLE, 'publish after ternctl push remove USER')
        # the messages are kept offline all the same
        back = self.peer(acc, 'back')
        back.available()
        for i in ('tc-1', 'tc-2', 'tc-3'):
            back.expect(M('message', id=i), what='offline message %s' % i)

    def test_ternctl_push_unknown_user(self):
        # exit status 1 (not done: unknown user), not 2 (bad arguments/unknown command)
        for args in (('list', 'nosuchuser'), ('remove', 'nosuchuser')):
            r = self.server.ternctl('push', *args)
            self.assertEqual(r.returncode, 1, 'ternctl push %s: exit status %d:\n%s%s'
                             % (' '.join(args), r.returncode, r.stdout, r.stderr))
            self.assertIn('nosuchuser', r.stderr, r.stderr)

    def test_deleted_account_loses_its_registrations(self):
        acc = self.new_user('da')
        node = self.new_node('da')
        p = self.peer(acc, 'r')
        self.enable_ok(p, node)
        p.logout()
        self.assertEqual(self.regs(acc[0]), {(PUSH_JID, node)})
        r = self.server.ternctl('deluser', acc[0])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.server.adduser(acc[0], acc[1])
        self.assertEqual(self.regs(acc[0]), set(), 'a new account of the same name inherited registrations')
        bob = self.peer(self.new_user('das'), 's')
        bob.message(self.bare(acc), 'hello again', id_='da-1')
        bob.barrier()
        self.comp.expect_no_more(node, 0, SETTLE, 'publish to a registration of a deleted account')


class PushStorageFailureTests(PushTestCase):
    """The database refuses the write (another process holds its write lock
    for longer than ternd's 5 s busy timeout): the enable answers
    wait/internal-server-error, nothing of it is stored (neither the
    registration nor the content options), and the next enable works."""

    def test_enable_while_the_database_is_locked(self):
        import sqlite3
        acc = self.new_user('sf')
        dev = self.peer(acc, 'dev')
        node = self.new_node('sf')
        options = ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>"
                   "urn:xmpp:push:options</value></field><field var='include-message-count'>"
                   "<value>0</value></field></x>")
        db = sqlite3.connect(str(self.server.data_dir / 'tern.db'), timeout=1, isolation_level=None)
        try:
            db.execute('BEGIN IMMEDIATE')            # the write lock, held
            r = self.enable(dev, None, raw_payload="<enable xmlns='urn:xmpp:push:0' jid='%s' node='%s'>%s</enable>"
                            % (PUSH_JID, node, options))
        finally:
            db.execute('ROLLBACK')
            db.close()
        self.assertStanzaError(r, ('internal-server-error',), type_='wait', msg='enable with the database locked: ')
        self.assertIn('storing a push registration of', self.server.log_text())
        self.assertEqual(self.server.ternctl('push', 'list', acc[0]).stdout.strip(), '',
                         'a failed enable left a registration')
        dev.logout()
        bob = self.peer(self.new_user('sfs'), 's')
        bob.message(self.bare(acc), 'not registered', id_='sf-1')
        bob.barrier()
        self.comp.expect_no_more(node, 0, SETTLE, 'a publish for a registration whose enable failed')
        # the database is free again: the same enable works, and the content
        # options of the failed one were not kept (message-count is there)
        dev = self.peer(acc, 'dev')
        self.enable_ok(dev, node)
        dev.logout()
        bob.message(self.bare(acc), 'registered now', id_='sf-2')
        self.assertNotification(self.comp.wait_publishes(node, 1)[0], node)
