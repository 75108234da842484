"""Side-by-side benchmarks of Tern, Prosody and ejabberd; see bench/README.md.

    bench/run.sh                 full run (under 20 minutes)
    BENCH_QUICK=1 bench/run.sh   small sizes (under 3 minutes)
    bench/run.sh --smoke         Tern only, tiny sizes, checks counts only (under 30 s)
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import procstat  # noqa: E402
import report  # noqa: E402
import servers  # noqa: E402
import workloads  # noqa: E402

BENCH = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCH)

# Sizes. users must cover every workload plus the 10 warm-up accounts of W1.
SIZES = {
    "full": dict(idle=10000, pairs=500, step_s=5, drain_s=3, login_users=2000,
                 login_conc=50, login_s=10, concurrency=100,
                 rates=[1000, 2000, 5000, 10000, 20000, 30000, 50000, 75000, 100000, 150000,
                        200000], push_pairs=500,
                 push_rates=[200, 500, 1000, 2000, 5000, 10000, 20000, 50000],
                 push_rates_hib=[200, 500, 1000, 2000, 5000, 10000, 20000],
                 push_step_s=5, push_drain_s=5, budget_s=19 * 60),
    "quick": dict(idle=500, pairs=50, step_s=2, drain_s=2, login_users=200, login_conc=20,
                  login_s=2, concurrency=50,
                  rates=[1000, 5000, 20000, 40000], push_pairs=50,
                  push_rates=[500, 2000], push_rates_hib=[500, 2000],
                  push_step_s=2, push_drain_s=2,
                  budget_s=165),
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Env:
    """What every workload needs: the generator, the cores, the time left."""

    def __init__(self, loadgen, server_cpu, client_cpu, concurrency, budget_s):
        self.loadgen, self.server_cpu, self.client_cpu = loadgen, server_cpu, client_cpu
        self.concurrency = concurrency
        self.deadline = time.monotonic() + budget_s

    def timeout(self, want):
        left = self.deadline - time.monotonic()
        if left < 10:
            raise workloads.LoadgenError("time budget of the run exhausted")
        return max(10, min(want, left))


def find_loadgen():
    """The meson-built generator if there is one, else build it with bench/Makefile."""
    for p in (os.environ.get("TERN_LOADGEN"),
              os.path.join(os.environ.get("TERN_BUILD", os.path.join(ROOT, "build")), "bench",
                           "tern-loadgen")):
        if p and os.access(p, os.X_OK):
            return p
    r = subprocess.run(["make", "-s", "-C", BENCH], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit(f"bench: building the load generator failed:\n{r.stdout}")
    return os.path.join(BENCH, ".build", "tern-loadgen")


def make_cert(workdir):
    """One self-signed P-256 certificate for localhost, shared by every server."""
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days",
                    "30", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(key, 0o644)  # copied for servers running as their own users
    return cert, key


def cpus():
    """Server core and generator core: different ones when there are two or more."""
    avail = sorted(os.sched_getaffinity(0))
    if len(avail) >= 2:
        return avail[0], avail[1]
    return None, None


def machine():
    lines = []
    try:
        out = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout
        for l in out.splitlines():
            if l.split(":")[0].strip() in ("Model name", "CPU(s)", "Thread(s) per core",
                                           "Hypervisor vendor", "L3 cache"):
                lines.append(" ".join(l.split()))
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    lines.append(f"Memory: {mem} MiB; kernel {platform.release()}; nproc {os.cpu_count()}")
    return lines


def versions():
    out = {}
    for name, cmd in (("prosody", ["dpkg-query", "-W", "-f=${Version}", "prosody"]),
                      ("ejabberd", ["dpkg-query", "-W", "-f=${Version}", "ejabberd"]),
                      ("openssl", ["openssl", "version"])):
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        out[name] = r.stdout.strip() or "not installed"
    r = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out["tern"] = r.stdout.strip() or "?"
    return out


def base_users(size):
    """Accounts W1, W2 and W4 share: W1 holds 0..idle-1 and logs 10 more in first."""
    return max(size["idle"] + 10, 2 * size["pairs"], size["login_users"])


def workload_list(size, only):
    # W3 and W3b use accounts of their own after the shared ones: their recipients
    # end up with stored offline messages and hibernated sessions.
    u0, pp = base_users(size), size["push_pairs"]
    # W3b's list stops lower: every step adds to the same hibernated sessions, whose
    # queues keep the servers' defaults (500 in Tern and Prosody): at most ~390 each.
    push = dict(pairs=pp, step_s=size["push_step_s"], drain_s=size["push_drain_s"])
    wl = [workloads.IdleSessions(size["idle"], sm=True),
          workloads.IdleSessions(size["idle"], sm=False),
          workloads.Routing(size["pairs"], size["rates"], size["step_s"], size["drain_s"]),
          workloads.OfflinePush(hibernated=False, user_base=u0, rates=size["push_rates"],
                                **push),
          workloads.OfflinePush(hibernated=True, user_base=u0 + 2 * pp,
                                rates=size["push_rates_hib"], **push),
          workloads.Logins(size["login_users"], size["login_conc"], size["login_s"])]
    if only:
        wl = [w for w in wl if w.key in only or w.key.split("_")[0] in only]
    return wl


def run_server(cls, workdir, cert, key, env, size, wls, results, objs):
    name = cls.name
    srv = cls(workdir, cert, key, env.server_cpu, log)
    objs[name] = srv
    res = results.setdefault(name, {})
    why = srv.unavailable()
    if not why:
        why = srv.install()
    if not why:
        why = srv.unavailable()
    if why:
        log(f"[{name}] cannot run: {why}")
        for w in wls:
            res[w.key] = {"skipped": f"{name} unavailable: {why}"}
        return
    users = base_users(size)
    if any(isinstance(w, workloads.OfflinePush) and not w.supported(srv) for w in wls):
        users += 4 * size["push_pairs"]
    try:
        t = time.monotonic()
        log(f"[{name}] preparing config and {users} accounts")
        srv.prepare(users, workloads.PASSWORD)
        srv.start()
        log(f"[{name}] started (pid {srv.pid}) in {time.monotonic() - t:.1f} s")
        used = False
        for w in wls:
            why = w.supported(srv)
            if why:
                res[w.key] = {"skipped": why}
                log(f"[{name}] {w.title}: {why}")
                continue
            if not srv.proc or srv.proc.poll() is not None or not procstat.alive(srv.pid):
                res[w.key] = {"error": "server is not running"}
                continue
            if w.fresh and used:
                srv.restart()
            used = True
            t = time.monotonic()
            log(f"[{name}] {w.title} ...")
            try:
                res[w.key] = w.run(srv, env)
            except (workloads.LoadgenError, StopIteration, KeyError, ZeroDivisionError) as e:
                res[w.key] = {"error": f"{type(e).__name__}: {e}"}
            log(f"[{name}] {w.title}: {summary(res[w.key])} ({time.monotonic() - t:.0f} s)")
            time.sleep(1)  # let closed connections settle between workloads
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        log(f"[{name}] failed: {e}")
        res["server_error"] = str(e)
        for w in wls:
            res.setdefault(w.key, {"error": str(e)[:200]})
    finally:
        srv.stop()
        log(f"[{name}] stopped")


def summary(r):
    keys = ("pss_per_session_kib", "best_received_per_s", "best_sent_per_s", "best_p99_ms",
            "best_cpu_us_per_msg",
            "limited_by", "logins_per_s", "logins_per_cpu_s", "error", "pending", "skipped")
    return ", ".join(f"{k}={r[k]:.1f}" if isinstance(r[k], float) else f"{k}={r[k]}"
                     for k in keys if k in r and r[k] is not None)


def smoke(args):
    """Tern only, tiny sizes: counts must add up, nothing else is judged."""
    t0 = time.monotonic()
    loadgen = find_loadgen()
    work = tempfile.mkdtemp(prefix="tern-bench-smoke-")
    failures = []
    srv = None
    try:
        cert, key = make_cert(work)
        srv = servers.Tern(work, cert, key, None, log)
        why = srv.unavailable()
        if why:
            sys.exit(f"bench smoke: {why}")
        srv.prepare(40, workloads.PASSWORD)
        srv.start()

        def check(name, res, **want):
            bad = {k: (res.get(k), v) for k, v in want.items() if res.get(k) != v}
            if res.get("exit_code") != 0:
                bad["exit_code"] = (res.get("exit_code"), 0)
            print(f"{'PASS' if not bad else 'FAIL'} bench-smoke/{name}"
                  + (f" {bad}" if bad else ""), flush=True)
            if bad:
                failures.append(name)

        res, _ = workloads.run_loadgen(loadgen, srv, ["--mode", "idle", "--conns", 20],
                                       timeout=20, log=log)
        check("idle", res, ready=20, dropped=0, errors=0)
        res, _ = workloads.run_loadgen(loadgen, srv, ["--mode", "route", "--pairs", 10, "--count",
                                                      200, "--rate", 2000, "--drain", 5],
                                       timeout=20, log=log)
        check("route", res, ready=20, sent=200, received=200, lost=0, late=0, errors=0)
        res, _ = workloads.run_loadgen(loadgen, srv, ["--mode", "login", "--users", 20,
                                                      "--count", 20, "--concurrency", 5],
                                       timeout=20, log=log)
        check("login", res, logins=20, failed=0, errors=0)
        if srv.features.get("push") and srv.features.get("offline"):
            # Offline storage and push, when this build has them: 5 recipients away,
            # 50 messages stored, one push each, all 50 back at re-login.
            res, _ = workloads.run_loadgen(
                loadgen, srv, ["--mode", "push", "--push", "push.localhost",
                               "--component-port", srv.component_port, "--pairs", 5,
                               "--user-base", 20, "--rate", 100, "--count", 50, "--drain", 3],
                timeout=25, log=log)
            check("push", res, sent=50, offline_delivered=50, pushes=50, errors=0)
    except (workloads.LoadgenError, RuntimeError, OSError) as e:
        print(f"FAIL bench-smoke/run {e}", flush=True)
        failures.append("run")
    finally:
        if srv:
            srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"bench smoke: {'ok' if not failures else 'FAILED: ' + ', '.join(failures)}"
          f" ({time.monotonic() - t0:.1f} s)", flush=True)
    return 1 if failures else 0


def profile_run(args):
    import vgprofile
    if not shutil.which("valgrind"):
        err = servers.apt_install(["valgrind"], log)
        if err:
            sys.exit(f"bench: {err}")
    loadgen = find_loadgen()
    work = tempfile.mkdtemp(prefix="tern-bench-profile-")
    host = platform.node() or "host"
    out = args.out or os.path.join(BENCH, "results", datetime.datetime.now().strftime(
        "%Y-%m-%d") + f"-{host}-profile.md")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    try:
        cert, key = make_cert(work)
        only = set(args.workloads.split(",")) if args.workloads else None
        vgprofile.run(work, cert, key, loadgen, out, log, only)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"written to {os.path.relpath(out, ROOT)}")
    return 0


def main():
    ap = argparse.ArgumentParser(description="Side-by-side benchmarks (bench/README.md).")
    ap.add_argument("--smoke", action="store_true", help="Tern only, tiny sizes, check counts")
    ap.add_argument("--quick", action="store_true", help="small sizes (also BENCH_QUICK=1)")
    ap.add_argument("--servers", default="tern,prosody,ejabberd")
    ap.add_argument("--workloads", default="", help="e.g. w1,w2,w4 (default all)")
    ap.add_argument("--out", help="markdown file (default bench/results/<date>-<host>.md)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--profile", action="store_true",
                    help="Tern only: callgrind (W2, W4) and massif (W1) summaries")
    args = ap.parse_args()
    if args.smoke:
        return smoke(args)
    if args.profile:
        return profile_run(args)

    quick = args.quick or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    size = SIZES["quick" if quick else "full"]
    # The generator and the servers hold many sockets: raise our soft limit to the hard one.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < size["idle"] + 1000:
        log(f"bench: descriptor limit {hard} is low for {size['idle']} sessions")

    names = [s for s in args.servers.split(",") if s]
    for n in names:
        if n not in servers.ALL:
            sys.exit(f"bench: unknown server {n} (known: {', '.join(servers.ALL)})")
    only = set(w for w in args.workloads.split(",") if w)
    wls = workload_list(size, only)

    t0 = time.monotonic()
    started = datetime.datetime.now()
    loadgen = find_loadgen()
    server_cpu, client_cpu = cpus()
    env = Env(loadgen, server_cpu, client_cpu, size["concurrency"], size["budget_s"])
    work = tempfile.mkdtemp(prefix="tern-bench-")
    results, objs = {}, {}
    load_before = procstat.loadavg()

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    try:
        cert, key = make_cert(work)
        for n in names:
            run_server(servers.ALL[n], work, cert, key, env, size, wls, results, objs)
    except KeyboardInterrupt:
        log("bench: interrupted; servers stopped")
        for o in objs.values():
            o.stop()
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"bench: kept {work}")

    host = platform.node() or "host"
    stamp = started.strftime("%Y-%m-%d")
    suffix = "-quick" if quick else ""
    out = args.out or os.path.join(BENCH, "results", f"{stamp}-{host}{suffix}.md")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    order = [n for n in ["tern", "prosody", "ejabberd"] if n in names]
    ver = versions()
    text = [f"# Benchmark {started.strftime('%Y-%m-%d %H:%M')} on {host}"
            f" ({'BENCH_QUICK' if quick else 'full'})", "",
            "Machine: " + "; ".join(machine()),
            f"Load average before: {' '.join(load_before)}; after: "
            f"{' '.join(procstat.loadavg())}",
            f"Versions: tern {ver['tern']}, prosody {ver['prosody']}, ejabberd {ver['ejabberd']},"
            f" {ver['openssl']}",
            f"Cores: server on CPU {server_cpu}, generator on CPU {client_cpu} (taskset)",
            f"Sizes: W1 {size['idle']} sessions; W2 {size['pairs']} pairs, {size['step_s']} s "
            f"per rate step, rates {size['rates']}; W3/W3b {size['push_pairs']} recipients, "
            f"{size['push_step_s']} s per step, rates {size['push_rates']} (W3b up to "
            f"{size['push_rates_hib'][-1]}); "
            f"W4 {size['login_users']} users, concurrency {size['login_conc']}, "
            f"{size['login_s']} s",
            "", report.table(results, order), "", report.notes(results, order, objs), "",
            "Disturbances (this machine may be shared):", "",
            report.disturbances(results, order), "",
            "## W2 rate steps", "", report.w2_steps(results, order), "",
            "## W3 and W3b rate steps", "", report.push_steps(results, order), "",
            f"Total time: {time.monotonic() - t0:.0f} s"]
    with open(out, "w") as f:
        f.write("\n".join(text) + "\n")
    with open(out[:-3] + ".json", "w") as f:
        json.dump({"size": size, "results": results, "versions": ver}, f, indent=1,
                  default=str)
    print("\n".join(text[7:]))
    print(f"\nwritten to {os.path.relpath(out, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
