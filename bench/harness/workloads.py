"""The workloads: what each one asks of the load generator and what it measures.

A workload runs tern-loadgen with --sync: at each event the generator prints
(ready, step_start, step_end, end) it waits until the harness has sampled the
server (CPU time, PSS, kernel TCP memory) and answered with a line. Figures
are differences between samples, so login work is kept out of W2, and the
warm-up out of W4.
"""
import json
import os
import select
import subprocess
import time

import procstat

PASSWORD = "bench-password"


class LoadgenError(RuntimeError):
    pass


def run_loadgen(loadgen, server, args, on_event=None, timeout=600, cpu=None, log=print):
    """Run the generator against server; returns (result, events). on_event(ev) runs at each
    sync point while the generator waits; if it returns "stop" the generator ends there."""
    cmd = ([] if cpu is None else ["taskset", "-c", str(cpu)]) + [
        loadgen, "--port", str(server.port), "--password", PASSWORD, "--sync",
        "--max-time", str(int(timeout))] + [str(a) for a in args]
    errpath = os.path.join(server.dir, "loadgen.err")
    with open(errpath, "ab") as err:
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                             text=True, bufsize=1)
    events, result = [], None
    deadline = time.monotonic() + timeout + 30
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LoadgenError(f"generator did not finish in {timeout + 30:.0f} s")
            ready, _, _ = select.select([p.stdout], [], [], min(left, 5))
            if not ready:
                continue
            line = p.stdout.readline()
            if not line:
                break
            try:
                ev = json.loads(line)
            except ValueError:
                log(f"  generator said: {line.strip()}")
                continue
            ev["gen_cpu_s"] = procstat.cpu_seconds(p.pid) if procstat.alive(p.pid) else None
            events.append(ev)
            if ev.get("event") == "result":
                result = ev
                continue
            reply = on_event(ev) if on_event else None
            p.stdin.write((reply or "go") + "\n")
            p.stdin.flush()
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    if result is None:
        with open(errpath, errors="replace") as f:
            raise LoadgenError(f"generator gave no result (exit {p.returncode}): {f.read()[-500:]}")
    result["exit_code"] = p.returncode
    return result, events


class Sampler:
    """Samples of the server (and the generator's CPU) keyed by event name."""

    def __init__(self, server, settle=0.0):
        self.server, self.settle, self.samples = server, settle, []

    def __call__(self, ev):
        if self.settle and ev.get("event") == "ready":
            time.sleep(self.settle)
        s = procstat.sample(self.server.pid)
        s["event"], s["ev"] = ev.get("event"), ev
        self.samples.append(s)
        return None

    def step(self, end, env):
        """Figures of the step that ended with sample end (server CPU, cores)."""
        a = next((x for x in reversed(self.samples) if x["event"] == "step_start" and
                  x["ev"]["step"] == end["ev"]["step"]), None)
        if a is None:
            return None
        wall = end["t"] - a["t"]
        cpu = end["cpu_s"] - a["cpu_s"]
        gen = None
        if end["ev"].get("gen_cpu_s") is not None and a["ev"].get("gen_cpu_s") is not None:
            gen = (end["ev"]["gen_cpu_s"] - a["ev"]["gen_cpu_s"]) / wall if wall > 0 else None
        out = dict(end["ev"])
        out.update({"server_cpu_s": cpu, "wall_s": wall,
                    "server_cpu_share": cpu / wall if wall > 0 else None,
                    "gen_cpu_share": gen,
                    "server_core_busy": procstat.core_share(a["cores"], end["cores"],
                                                            env.server_cpu),
                    "client_core_busy": procstat.core_share(a["cores"], end["cores"],
                                                            env.client_cpu)})
        return out


def disturbed(step, margin=0.15):
    """True when other processes used more than margin of the server's core."""
    busy, own = step.get("server_core_busy"), step.get("server_cpu_share")
    return busy is not None and own is not None and busy - own > margin


class Workload:
    key = "?"
    title = "?"
    fresh = False  # needs a server that has run nothing before

    def run(self, server, env):
        out = self.run_once(server, env)
        if out.get("fail_disturbed"):
            # Another process took the server's core when the sweep failed: once more.
            out = dict(self.run_once(server, env), retried_after_disturbance=True)
        return out
    needs = ()  # server features without which the workload cannot run

    def supported(self, server):
        missing = [f for f in self.needs if not server.features.get(f)]
        if missing:
            return f"not supported by {server.name} yet ({', '.join(missing)})"
        return None


class IdleSessions(Workload):
    """W1: N authenticated TLS sessions held idle; process and kernel memory per session."""
    key = "w1"
    title = "W1 idle sessions"
    # Garbage-collected heaps (Lua, Erlang) keep what an earlier workload freed and
    # would hide the growth: W1 runs on a freshly started server.
    fresh = True

    def __init__(self, conns, sm=True):
        self.conns, self.sm = conns, sm
        if not sm:
            self.key, self.title = "w1_nosm", "W1 idle sessions, SM off everywhere"

    def run(self, server, env):
        sm = self.sm and server.features.get("sm")
        args = ["--mode", "idle", "--conns", self.conns, "--concurrency", env.concurrency,
                "--login-timeout", 60]
        if sm:
            args.append("--sm")
        # Lazy initialisation (modules loaded on first login, TLS context, pools) is not
        # per-session cost: log a few sessions in and out before the baseline.
        run_loadgen(env.loadgen, server, ["--mode", "idle", "--conns", 10, "--user-base",
                                          self.conns], cpu=env.client_cpu, timeout=60)
        time.sleep(1.0)
        base = procstat.sample(server.pid)
        sampler = Sampler(server, settle=2.0)
        res, _ = run_loadgen(env.loadgen, server, args, on_event=sampler, cpu=env.client_cpu,
                             timeout=env.timeout(self.conns / 100 + 60))
        held = sampler.samples[0]
        n = res.get("ready", 0)
        out = {"sessions": n, "sm": sm, "errors": res.get("errors", 0),
               "baseline_pss_kib": base.get("pss"),
               "login_s": held["ev"].get("login_s"),
               "login_p99_ms": res.get("login_p99_ms")}
        if n:
            out["pss_per_session_kib"] = (held["pss"] - base["pss"]) / n
            out["rss_per_session_kib"] = (held["rss"] - base["rss"]) / n
            out["tcp_mem_per_conn_kib"] = ((held["tcp_mem_pages"] - base["tcp_mem_pages"]) *
                                           procstat.PAGE / 1024 / n)
            out["slab_per_conn_kib"] = (held["slab_kib"] - base["slab_kib"]) / n
            out["held_pss_kib"] = held["pss"]
        out["ok"] = n == self.conns and not res.get("errors")
        return out


class Routing(Workload):
    """W2: pairs of online clients send to each other at a rate sweep; latency and CPU."""
    key = "w2"
    title = "W2 routing between online pairs"

    def __init__(self, pairs, rates, step_s, drain_s, p99_limit_ms=10.0, ref_rate=1000):
        self.pairs, self.rates, self.step_s, self.drain_s = pairs, rates, step_s, drain_s
        self.p99_limit_ms, self.ref_rate = p99_limit_ms, ref_rate

    def run_once(self, server, env):
        args = ["--mode", "route", "--pairs", self.pairs, "--concurrency", env.concurrency,
                "--rate", ",".join(str(r) for r in self.rates), "--duration", self.step_s,
                "--drain", self.drain_s, "--p99-limit", self.p99_limit_ms,
                "--login-timeout", 60]
        sampler = Sampler(server)
        budget = len(self.rates) * (self.step_s + self.drain_s + 2) + self.pairs / 50 + 60
        res, events = run_loadgen(env.loadgen, server, args, on_event=sampler,
                                  cpu=env.client_cpu, timeout=env.timeout(budget))
        steps = []
        starts = {s["ev"]["step"]: s for s in sampler.samples if s["event"] == "step_start"}
        for s in sampler.samples:
            if s["event"] != "step_end":
                continue
            ev, a = s["ev"], starts.get(s["ev"]["step"])
            if not a:
                continue
            wall = s["t"] - a["t"]
            cpu = s["cpu_s"] - a["cpu_s"]
            gen = None
            if ev.get("gen_cpu_s") is not None and a["ev"].get("gen_cpu_s") is not None:
                gen = (ev["gen_cpu_s"] - a["ev"]["gen_cpu_s"]) / wall if wall > 0 else None
            step = dict(ev)
            step.update({"server_core_busy": procstat.core_share(a["cores"], s["cores"],
                                                                 env.server_cpu),
                         "client_core_busy": procstat.core_share(a["cores"], s["cores"],
                                                                 env.client_cpu),
                         "server_cpu_s": cpu, "wall_s": wall,
                         "server_cpu_share": cpu / wall if wall > 0 else None,
                         "gen_cpu_share": gen,
                         "cpu_us_per_msg": cpu / ev["received"] * 1e6 if ev["received"] else None,
                         "passed": ev["lost"] == 0 and ev["misrouted"] == 0 and
                         ev["lat_p99_ms"] <= self.p99_limit_ms and
                         ev["sent"] >= 0.95 * ev["rate"] * self.step_s})
            steps.append(step)
        passed = [s for s in steps if s["passed"]]
        best = max(passed, key=lambda s: s["received_per_s"]) if passed else None
        first_fail = next((s for s in steps if not s["passed"]), None)
        # CPU efficiency whatever the latency: the busiest loss-free step.
        busiest = max((s for s in steps if s["lost"] == 0 and s["cpu_us_per_msg"]),
                      key=lambda s: s["received_per_s"], default=None)
        if busiest:
            out_busy = {"max_received_per_s": busiest["received_per_s"],
                        "max_p99_ms": busiest["lat_p99_ms"],
                        "max_msgs_per_cpu_s": 1e6 / busiest["cpu_us_per_msg"]}
        else:
            out_busy = {}
        ref = next((s for s in steps if s["rate"] == self.ref_rate), None)
        out = {"steps": steps, "errors": res.get("errors", 0), "lost": res.get("lost", 0),
               "ok": res.get("ready") == 2 * self.pairs and res.get("lost", 1) == 0}
        out.update(out_busy)
        if best:
            out.update({"best_rate": best["rate"], "best_received_per_s": best["received_per_s"],
                        "best_p50_ms": best["lat_p50_ms"], "best_p99_ms": best["lat_p99_ms"],
                        "best_p999_ms": best["lat_p999_ms"],
                        "best_cpu_us_per_msg": best["cpu_us_per_msg"],
                        "best_msgs_per_cpu_s": 1e6 / best["cpu_us_per_msg"]
                        if best["cpu_us_per_msg"] else None,
                        "best_server_cpu_share": best["server_cpu_share"]})
        if ref:
            out.update({"ref_rate": ref["rate"], "ref_p99_ms": ref["lat_p99_ms"],
                        "ref_p50_ms": ref["lat_p50_ms"],
                        "ref_cpu_us_per_msg": ref["cpu_us_per_msg"]})
        if first_fail:
            # Who ran out first: a core near 100 % is the bottleneck.
            sc, gc = first_fail["server_cpu_share"] or 0, first_fail["gen_cpu_share"] or 0
            out["limited_by"] = ("generator" if gc >= 0.9 and sc < 0.9 else
                                 "server" if sc >= 0.9 else "latency")
            out["fail_rate"] = first_fail["rate"]
            out["fail_disturbed"] = disturbed(first_fail)
        else:
            out["limited_by"] = "sweep end"
        out["disturbed_steps"] = [s["rate"] for s in steps if disturbed(s)]
        return out


class Logins(Workload):
    """W4: full TLS 1.3 + SCRAM-SHA-1 + bind logins and logouts, concurrency C."""
    key = "w4"
    title = "W4 logins per second"

    def __init__(self, users, concurrency, duration_s):
        self.users, self.concurrency, self.duration_s = users, concurrency, duration_s

    def run(self, server, env):
        args = ["--mode", "login", "--users", self.users, "--concurrency", self.concurrency,
                "--duration", self.duration_s, "--login-timeout", 30]
        sampler = Sampler(server)
        res, _ = run_loadgen(env.loadgen, server, args, on_event=sampler, cpu=env.client_cpu,
                             timeout=env.timeout(self.users / 100 + self.duration_s + 90))
        a = next(s for s in sampler.samples if s["event"] == "ready")
        b = next(s for s in sampler.samples if s["event"] == "end")
        cpu, wall = b["cpu_s"] - a["cpu_s"], b["t"] - a["t"]
        gen = None
        if a["ev"].get("gen_cpu_s") is not None and b["ev"].get("gen_cpu_s") is not None:
            gen = (b["ev"]["gen_cpu_s"] - a["ev"]["gen_cpu_s"]) / wall
        logins = res.get("logins", 0)
        sc, gc = (cpu / wall if wall > 0 else 0), (gen or 0)
        limited = ("generator" if gc >= 0.9 and sc < 0.9 else "server" if sc >= 0.9 else
                   "concurrency")
        return {"limited_by": limited, "logins": logins, "failed": res.get("failed"),
                "server_core_busy": procstat.core_share(a["cores"], b["cores"], env.server_cpu),
                "client_core_busy": procstat.core_share(a["cores"], b["cores"], env.client_cpu),
                "errors": res.get("errors", 0),
                "error_reasons": res.get("error_reasons"),
                "logins_per_s": res.get("logins_per_s"),
                "logins_per_cpu_s": logins / cpu if cpu > 0 else None,
                "cpu_ms_per_login": cpu / logins * 1e3 if logins else None,
                "server_cpu_share": cpu / wall if wall > 0 else None, "gen_cpu_share": gen,
                "p50_ms": res.get("login_p50_ms"), "p99_ms": res.get("login_p99_ms"),
                "ok": logins > 0 and not res.get("errors")}


class OfflinePush(Workload):
    """W3 / W3b: messages to users who are away, stored and pushed (XEP-0357) to an
    XEP-0114 sink component. W3: the recipient is offline (no session), so the server
    stores the message and pushes; W3b: its session is hibernated by XEP-0198 (socket
    reset with resumption on), so the server queues the message and pushes."""
    needs = ("offline", "push", "component")

    def __init__(self, hibernated, pairs, rates, step_s, drain_s, user_base=0):
        self.hibernated, self.pairs, self.rates = hibernated, pairs, rates
        self.step_s, self.drain_s, self.user_base = step_s, drain_s, user_base
        self.key = "w3b" if hibernated else "w3"
        self.title = ("W3b messages to SM-hibernated sessions, pushed" if hibernated else
                      "W3 offline messages stored and pushed")
        if hibernated:
            self.needs = self.needs + ("sm",)

    def passed(self, st):
        """A step the server kept up with: the rate reached, the server core not
        saturated, pushes arriving (in W3 one for every message), and the latest
        pushed message within a push p99 of 2 s. In W3b servers may send one push
        for several messages and delay it on purpose (Tern and Prosody do), so there
        the push count is not judged (the latency is from the newest message a push
        summarises); a server falling behind shows as growing latency. Once at the
        end of W3 the recipients log in again and count what they get: every message
        must have been stored."""
        if st["sent"] < 0.95 * st["rate"] * self.step_s:
            return False
        if (st.get("server_cpu_share") or 0) >= 0.9:
            return False
        if st["pushes"] == 0:
            return False
        # W3: every server sends one notification per offline message, so a step is
        # only kept up with if every message was pushed (a server that drops
        # notifications under load, as Tern's bounded publish queue does, falls
        # behind here even while its latency looks fine).
        if not self.hibernated and st["pushes"] < st["sent"]:
            return False
        # Tern holds notifications of hibernated sessions for about 1 s to batch them:
        # 2 s leaves room for that and for processing.
        return st["lat_p99_ms"] <= 2000 or st["push_latency_samples"] == 0

    def run_once(self, server, env):
        args = ["--mode", "push", "--push", "push.localhost", "--component-port",
                server.component_port, "--pairs", self.pairs, "--user-base", self.user_base,
                "--concurrency", env.concurrency, "--rate",
                ",".join(str(r) for r in self.rates), "--duration", self.step_s,
                "--drain", self.drain_s, "--login-timeout", 60]
        if self.hibernated:
            args += ["--sm", "--hibernate"]
        sampler = Sampler(server)
        steps = []

        def on_event(ev):
            sampler(ev)
            if ev.get("event") != "step_end":
                return None
            st = sampler.step(sampler.samples[-1], env)
            if st is None:
                return None
            st["passed"] = self.passed(st)
            st["cpu_us_per_msg"] = st["server_cpu_s"] / st["sent"] * 1e6 if st["sent"] else None
            steps.append(st)
            return None if st["passed"] else "stop"

        # + 60: the wait for a server that fell behind to catch up before the
        # recipients log in again (the generator's settle phase, at most --login-timeout).
        budget = len(self.rates) * (self.step_s + self.drain_s + 2) + self.pairs / 25 + 120
        res, _ = run_loadgen(env.loadgen, server, args, on_event=on_event, cpu=env.client_cpu,
                             timeout=env.timeout(budget))
        out = {"steps": steps, "errors": res.get("errors", 0),
               "error_reasons": res.get("error_reasons"), "sent": res.get("sent"),
               "pushes": res.get("pushes")}
        if not self.hibernated and res.get("sent"):
            stored, pushes = res.get("offline_delivered", 0), res.get("pushes", 0)
            out["offline_delivered"] = stored
            out["offline_delivered_share"] = stored / res["sent"]
            # Stored: all of them, overload steps included (nothing may be lost).
            # Pushed: one per message in every step the server kept up with; in an
            # overload step a server may shed notifications (reported in the totals).
            kept = [s for s in steps if s["passed"]]
            short = [s["rate"] for s in kept if s["pushes"] != s["sent"]]
            out["stored_eq_pushed"] = (
                ("yes" if stored == res["sent"] and kept and not short else "no") +
                f": {res['sent']} sent, {stored} stored" +
                (f"; pushes = messages in every step kept up with" if kept and not short
                 else f"; pushes differ in steps {short}" if short else "; no step kept up"))
            out["sweep_totals"] = f"{res['sent']} sent, {stored} stored, {pushes} pushed"
        passed = [s for s in steps if s["passed"]]
        best = max(passed, key=lambda s: s["sent_per_s"]) if passed else None
        if best:
            out.update({"best_rate": best["rate"], "best_sent_per_s": best["sent_per_s"],
                        "best_pushes_per_s": best["pushes_per_s"],
                        "best_pushes_per_msg": best["pushes"] / best["sent"],
                        "best_cpu_us_per_msg": best["cpu_us_per_msg"],
                        "best_msgs_per_cpu_s": 1e6 / best["cpu_us_per_msg"]
                        if best["cpu_us_per_msg"] else None,
                        "best_p50_ms": best["lat_p50_ms"] if best["push_latency_samples"]
                        else None,
                        "best_p99_ms": best["lat_p99_ms"] if best["push_latency_samples"]
                        else None,
                        "best_server_cpu_share": best["server_cpu_share"]})
        fail = next((s for s in steps if not s["passed"]), None)
        if fail:
            sc, gc = fail.get("server_cpu_share") or 0, fail.get("gen_cpu_share") or 0
            out["limited_by"] = ("server CPU" if sc >= 0.9 else "generator" if gc >= 0.9 else
                                 "server, not CPU (storage or pacing)")
            out["fail_disturbed"] = disturbed(fail)
        else:
            out["limited_by"] = "sweep end"
        out["ok"] = bool(best) and not res.get("errors")
        out["disturbed_steps"] = [s["rate"] for s in steps if disturbed(s)]
        return out
