#!/usr/bin/python3
"""Run Tern's black-box integration tests.

    /usr/bin/python3 tests/integration/run.py [-k SUBSTRING]... [-v] [--timeout S]

Discovers tests/integration/test_*.py, runs every test with a per-test
timeout and prints one line per test (PASS/FAIL/SKIP name), details and the
tail of the ternd log for failures, and finally
    integration: N passed, N failed
Exit status 1 if anything failed (or nothing ran), 0 otherwise.

Environment: TERN_BUILD (directory with ternd and ternctl, default
<repo>/build), TERN_TEST_TIMEOUT (single wait, default 10 s),
TERN_KEEP_TMP=1 keeps the servers' temp dirs.
"""

import argparse
import faulthandler
import os
import signal
import sys
import threading
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# slixmpp comes from Debian's python3-slixmpp: re-run under /usr/bin/python3
# if this interpreter (e.g. a pyenv one) cannot see it
try:
    import slixmpp  # noqa: F401
except ImportError:
    if os.path.exists('/usr/bin/python3') and \
            os.path.realpath(sys.executable) != os.path.realpath('/usr/bin/python3'):
        os.execv('/usr/bin/python3', ['/usr/bin/python3', os.path.abspath(__file__)] + sys.argv[1:])
    raise

import harness  # noqa: E402


class TestTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise TestTimeout('test exceeded its time limit')


def _interrupt(signum, frame):
    raise KeyboardInterrupt('signal %d' % signum)


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


class Result(unittest.TestResult):
    """Exactly one status line per test (PASS/FAIL/SKIP name), printed when
    the test ends, with the details of every failure (subtests included)
    and the ternd log tails below a FAIL line."""

    def __init__(self, args, stream):
        super().__init__()
        self.args = args
        self.out = stream
        self.passed = 0
        self.failed_names = []
        self.skipped_n = 0
        self.started = set()
        self._t0 = None
        self._hist = 0
        self._current = None
        self._problems = []
        self._skip = None

    def p(self, s=''):
        self.out.write(s + '\n')
        self.out.flush()

    def startTest(self, test):
        super().startTest(test)
        self.started.add(test.id())
        self._t0 = time.monotonic()
        self._hist = len(harness.SERVER_HISTORY)
        self._current = test
        self._problems = []
        self._skip = None
        self._outcome = False
        if self.args.verbose:
            self.p('RUN  %s' % test.id())
        signal.setitimer(signal.ITIMER_REAL, self.args.timeout)

    def stopTest(self, test):
        signal.setitimer(signal.ITIMER_REAL, 0)
        dt = time.monotonic() - self._t0
        name = test.id()
        if not self._outcome and not self._problems:
            # stopTest without any outcome: the run was interrupted mid-test
            self.p('FAIL %s (%.1fs, interrupted)' % (name, dt))
            self._details([])
            self.failed_names.append(name)
        elif self._problems:
            self.p('FAIL %s (%.1fs)' % (name, dt))
            self._details(self._problems)
            self.failed_names.append(name)
        elif self._skip is not None:
            self.skipped_n += 1
            self.p('SKIP %s: %s' % (name, self._skip))
        else:
            self.passed += 1
            self.p('PASS %s (%.1fs)' % (name, dt))
        self._current = None
        self._hist = len(harness.SERVER_HISTORY)
        super().stopTest(test)

    def _servers_for_failure(self):
        # servers started during this test, plus those still running (class fixtures)
        return [srv for i, srv in enumerate(harness.SERVER_HISTORY) if i >= self._hist or srv.running()]

    def _details(self, problems):
        for label, kind, err in problems:
            head = '%s%s' % (kind, (' in ' + label) if label else '')
            if err is not None:
                tb = ''.join(traceback.format_exception(*err)).rstrip()
                self.p(_indent('%s: %s' % (head, tb)))
            else:
                self.p(_indent(head))
        for srv in self._servers_for_failure():
            self.p(_indent('--- ternd log tail (%s, %s) ---' % (srv.name, getattr(srv, 'log_path', '?'))))
            self.p(_indent(srv.log_tail(self.args.log_lines) or '(empty)'))

    def _problem(self, test, label, kind, err):
        if self._current is not None and test is self._current:
            self._problems.append((label, kind, err))
            self._outcome = True
            return
        # class/module fixture (no startTest): setUpClass failures are
        # counted through the tests that could not run; others count here
        desc = str(getattr(test, 'description', test))
        setup = desc.startswith(('setUpClass', 'setUpModule'))
        self.p('%s %s' % ('ERROR' if setup else 'FAIL', desc))
        self._details([(None, kind, err)])
        self._hist = len(harness.SERVER_HISTORY)
        if not setup:
            self.failed_names.append(desc)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._outcome = True

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._problem(test, None, 'failure', err)

    def addError(self, test, err):
        super().addError(test, err)
        self._problem(test, None, 'error', err)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = 'failure' if issubclass(err[0], test.failureException) else 'error'
            self._problem(test, subtest._subDescription(), kind, err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if self._current is not None and test is self._current:
            self._skip = reason
            self._outcome = True
        else:
            self.skipped_n += 1
            self.p('SKIP %s: %s' % (getattr(test, 'description', test), reason))

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._outcome = True

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._problem(test, None, 'unexpected success', None)


def _indent(s, pad='    '):
    return '\n'.join(pad + line for line in s.splitlines())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('-k', action='append', default=[], metavar='SUBSTRING',
                    help='run only tests whose id contains SUBSTRING (repeatable: any)')
    ap.add_argument('-v', '--verbose', action='store_true', help='print RUN lines and the slixmpp log on failure')
    ap.add_argument('--timeout', type=float, default=float(os.environ.get('TERN_TEST_CASE_TIMEOUT', '90')),
                    help='per-test time limit in seconds (default 90)')
    ap.add_argument('--total-timeout', type=float, default=1500.0,
                    help='hard limit for the whole run in seconds (default 1500)')
    ap.add_argument('--log-lines', type=int, default=40, help='ternd log lines shown per failure')
    args = ap.parse_args()

    os.environ.setdefault('CI', 'true')
    signal.signal(signal.SIGALRM, _alarm)
    # SIGTERM/SIGINT or the total time limit: stop, clean up, summarize
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    watchdog = threading.Timer(args.total_timeout, os.kill, (os.getpid(), signal.SIGTERM))
    watchdog.daemon = True
    watchdog.start()
    # last resort if even that hangs (ternd children die with us: PDEATHSIG)
    faulthandler.dump_traceback_later(args.total_timeout + 60, exit=True)

    loader = unittest.TestLoader()
    suite = loader.discover(HERE, pattern='test_*.py', top_level_dir=HERE)
    all_tests = list(iter_tests(suite))
    load_errors = [t for t in all_tests if t.__class__.__name__ == '_FailedTest']
    if args.k:
        selected = [t for t in all_tests if any(k in t.id() for k in args.k) or t in load_errors]
    else:
        selected = all_tests
    run_suite = unittest.TestSuite(selected)

    result = Result(args, sys.stdout)
    t0 = time.monotonic()
    interrupted = False
    try:
        run_suite.run(result)
    except KeyboardInterrupt:
        interrupted = True
        result.p('FAIL interrupted (SIGTERM/SIGINT or --total-timeout %.0fs)' % args.total_timeout)
        result.failed_names.append('interrupted')
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        for srv in list(harness.SERVER_HISTORY):
            try:
                srv.cleanup()
            except Exception:
                pass
        harness._kill_leftovers()

    # class/module fixtures that failed: report their tests as not run
    for t in selected:
        if interrupted:
            break
        if t.id() not in result.started and not isinstance(t, unittest.case._SubTest):
            name = t.id()
            if name not in result.failed_names:
                result.p('FAIL %s (not run: class or module setup failed)' % name)
                result.failed_names.append(name)

    if args.verbose and result.failed_names:
        result.p('--- slixmpp log tail ---')
        result.p(_indent('\n'.join(list(harness.SLIX_LOG.records)[-200:])))

    n_failed = len(result.failed_names)
    dt = time.monotonic() - t0
    if result.skipped_n:
        result.p('(%d skipped, %.0fs)' % (result.skipped_n, dt))
    else:
        result.p('(%.0fs)' % dt)
    result.p('integration: %d passed, %d failed' % (result.passed, n_failed))
    if result.passed + n_failed == 0:
        return 1
    return 1 if n_failed else 0


if __name__ == '__main__':
    sys.exit(main())
