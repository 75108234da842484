"""Where Tern's time and memory go: short runs of ternd under valgrind.

    bench/run.sh --profile

- callgrind during W2 (routing), W3 (offline storage and push) and W4
  (logins): instructions per function, inclusive, so the share of TLS, XML,
  JID preparation, routing, SQLite is visible (all of ternd's threads);
- massif during W1 (idle sessions): heap by allocation site while the
  sessions are held.

valgrind is the profiler because hardware counters are not available here
(`perf stat -e instructions true` says <not supported> in this VM). It counts
user-space instructions only: kernel time (syscalls, TCP) is not in it.
"""
import os
import re
import signal
import subprocess
import time

import servers
import workloads

W2_ARGS = ["--mode", "route", "--pairs", 50, "--rate", 500, "--count", 10000,
           "--concurrency", 20, "--login-timeout", 120]
W4_ARGS = ["--mode", "login", "--users", 100, "--count", 300, "--concurrency", 4,
           "--login-timeout", 120]
W1_CONNS = 500
W3_USERS = 50


def w3_args(srv):
    return ["--mode", "push", "--push", "push.localhost", "--component-port",
            srv.component_port, "--pairs", W3_USERS, "--user-base", 0, "--rate", 500,
            "--count", 5000, "--drain", 5, "--concurrency", 20, "--login-timeout", 120]


def start_under(srv, tool_args, log):
    out = open(os.path.join(srv.dir, "valgrind.log"), "ab")
    srv.proc = subprocess.Popen(["valgrind"] + tool_args + [srv.ternd, "-c", srv.config],
                                stdout=out, stderr=subprocess.STDOUT, cwd=srv.dir)
    out.close()
    if not servers.wait_port(srv.port, srv.proc, 120):
        raise RuntimeError("ternd under valgrind did not start")
    srv.pid = srv.proc.pid
    t0 = time.monotonic()
    return t0


def stop_under(srv):
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(timeout=120)
    srv.proc = None


def annotate(path, inclusive, n):
    r = subprocess.run(["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}",
                        path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = [l for l in r.stdout.splitlines() if re.match(r"^\s*[\d,]+ \(", l)]
    return lines[:n]


def callgrind(srv, loadgen, args, name, log):
    path = os.path.join(srv.dir, f"callgrind.{name}")
    start_under(srv, ["--tool=callgrind", f"--callgrind-out-file={path}"], log)
    try:
        res, _ = workloads.run_loadgen(loadgen, srv, args, timeout=400, log=log)
    finally:
        stop_under(srv)
    return res, annotate(path, True, 45), annotate(path, False, 25)


def massif_idle(srv, loadgen, log):
    """Heap tree of the last detailed snapshot taken while W1_CONNS sessions were held."""
    path = os.path.join(srv.dir, "massif.out")
    t0 = start_under(srv, ["--tool=massif", "--time-unit=ms", "--detailed-freq=1",
                           "--max-snapshots=400", f"--massif-out-file={path}"], log)
    held = {}

    def on_ready(ev):
        time.sleep(2)
        held["t_ms"] = (time.monotonic() - t0) * 1000

    try:
        args = ["--mode", "idle", "--conns", W1_CONNS, "--concurrency", 20, "--login-timeout",
                120] + (["--sm"] if srv.features.get("sm") else [])
        res, _ = workloads.run_loadgen(loadgen, srv, args, on_event=on_ready, timeout=300,
                                       log=log)
    finally:
        stop_under(srv)
    # massif.out: "snapshot=N", "time=T", "mem_heap_B=..", "heap_tree=detailed|peak|empty".
    snaps, cur = [], None
    with open(path) as f:
        for line in f:
            if line.startswith("snapshot="):
                cur = {"n": int(line.split("=")[1])}
                snaps.append(cur)
            elif cur is not None and "=" in line and not line.startswith(" "):
                k, v = line.rstrip("\n").split("=", 1)
                cur[k] = v
    # The last detailed snapshot before the logout began (taken while held); massif's
    # clock starts a little after ours, so this is conservative.
    limit = held.get("t_ms", 1e18)
    cands = [s for s in snaps if s.get("heap_tree") in ("detailed", "peak") and
             float(s.get("time", 0)) <= limit]
    if not cands:
        return res, None, []
    snap = max(cands, key=lambda s: int(s["mem_heap_B"]))
    r = subprocess.run(["ms_print", "--threshold=2", path], stdout=subprocess.PIPE,
                       text=True)
    tree, inside = [], False
    for line in r.stdout.splitlines():
        m = re.match(r"^\s*(\d+)\s+[\d,]+\s+[\d,]+\s+[\d,]+\s", line)
        if m:
            inside = int(m.group(1)) == snap["n"]
            continue
        if inside and re.match(r"^(->|\| ->|\| \| ->|\d)", line):
            tree.append(line[:160])
    return res, snap, tree


def run(work, cert, key, loadgen, out_path, log, only=None):
    srv = servers.Tern(work, cert, key, None, log)
    why = srv.unavailable()
    if why:
        raise RuntimeError(why)
    srv.prepare(max(W1_CONNS, 100, 2 * W3_USERS) + 10, workloads.PASSWORD)
    text = ["# Where Tern's CPU and memory go (valgrind)", "",
            __doc__.strip(), ""]
    want = lambda w: not only or w in only
    snap = None
    if want("w1"):
        log("[profile] W1 under massif ...")
        res, snap, tree = massif_idle(srv, loadgen, log)
    if snap:
        per = int(snap["mem_heap_B"]) / max(res.get("ready", 1), 1)
        sm = " (stream management on)" if srv.features.get("sm") else ""
        text += [f"## W1: heap while {res.get('ready')} idle sessions are held{sm}", "",
                 f"massif snapshot {snap['n']}: {int(snap['mem_heap_B']):,} B of heap "
                 f"(+{int(snap.get('mem_heap_extra_B', 0)):,} B malloc overhead), "
                 f"{per / 1024:.1f} KiB per session including the server's fixed heap.", "",
                 "```", *tree, "```", ""]
    for name, args in (("w2", W2_ARGS), ("w3", w3_args(srv)), ("w4", W4_ARGS)):
        if not want(name):
            continue
        log(f"[profile] {name} under callgrind ...")
        res, incl, excl = callgrind(srv, loadgen, args, name, log)
        what = {"w2": f"{res.get('sent')} messages at 500/s between 50 pairs (logins "
                      "included)",
                "w3": f"{res.get('sent')} messages at 500/s to {W3_USERS} offline users "
                      f"with push, {res.get('pushes')} pushes to the sink (logins "
                      "included)",
                "w4": f"{res.get('logins')} measured logins (+100 warm-up), "
                      "concurrency 4"}[name]
        text += [f"## {name.upper()}: {what}", "", "Inclusive (a function and what it calls):",
                 "", "```", *incl, "```", "", "Exclusive (the function's own instructions):",
                 "", "```", *excl, "```", ""]
    with open(out_path, "w") as f:
        f.write("\n".join(text) + "\n")
    return out_path
