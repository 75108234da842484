"""The results table: one row per figure, one column per server, Tern's ratio to each peer."""

# (label, workload key, field, better, format). better: "lower", "higher" or None (no ratio).
ROWS = [
    ("Server PSS with no sessions, MiB", "w1", "baseline_pss_kib", "lower", "mib"),
    ("W1 stream management on the sessions", "w1", "sm", None, "sm"),
    ("W1 idle TLS sessions held", "w1", "sessions", None, "int"),
    ("W1 process memory per idle session (PSS), KiB", "w1", "pss_per_session_kib", "lower",
     "f1"),
    ("W1 same, SM off everywhere, KiB", "w1_nosm", "pss_per_session_kib", "lower", "f1"),
    ("W1 kernel TCP buffer memory per connection (sockstat, both ends), KiB", "w1",
     "tcp_mem_per_conn_kib", "lower", "f1"),
    ("W1 kernel slab growth per connection (both ends, loopback), KiB", "w1",
     "slab_per_conn_kib", "lower", "f1"),
    ("W2 highest rate with p99 <= 10 ms and no loss, msg/s", "w2", "best_received_per_s",
     "higher", "int"),
    ("W2 latency p50 at that rate, ms", "w2", "best_p50_ms", "lower", "f2"),
    ("W2 latency p99 at that rate, ms", "w2", "best_p99_ms", "lower", "f2"),
    ("W2 latency p99.9 at that rate, ms", "w2", "best_p999_ms", "lower", "f2"),
    ("W2 latency p99 at 1,000 msg/s, ms", "w2", "ref_p99_ms", "lower", "f2"),
    ("W2 server CPU per routed message at that rate, µs", "w2", "best_cpu_us_per_msg",
     "lower", "f1"),
    ("W2 routed messages per server CPU-second", "w2", "best_msgs_per_cpu_s", "higher",
     "int"),
    ("W2 what stopped the sweep", "w2", "limited_by", None, "str"),
    ("W2 busiest loss-free step, whatever the latency, msg/s", "w2", "max_received_per_s",
     "higher", "int"),
    ("W2 p99 in that step, ms", "w2", "max_p99_ms", "lower", "f1"),
    ("W2 routed messages per server CPU-second in that step", "w2", "max_msgs_per_cpu_s",
     "higher", "int"),
    ("W3 highest rate to offline users the server kept up with (push p99 <= 2 s), msg/s",
     "w3", "best_sent_per_s", "higher", "int"),
    ("W3 stored-and-pushed messages per server CPU-second", "w3", "best_msgs_per_cpu_s",
     "higher", "int"),
    ("W3 pushes per message at that rate", "w3", "best_pushes_per_msg", None, "f2"),
    ("W3 send -> push latency p50 at that rate, ms", "w3", "best_p50_ms", "lower", "f1"),
    ("W3 send -> push latency p99 at that rate, ms", "w3", "best_p99_ms", "lower", "f1"),
    ("W3 what stopped the sweep", "w3", "limited_by", None, "str"),
    ("W3 messages delivered from offline storage at re-login / sent", "w3",
     "offline_delivered_share", None, "pct"),
    ("W3 check: every message stored, and pushed once in each step kept up with", "w3",
     "stored_eq_pushed", None, "str"),
    ("W3 whole sweep, overload steps included: sent, stored, pushed", "w3",
     "sweep_totals", None, "str"),
    ("W3b highest rate to hibernated sessions the server kept up with (push p99 <= 2 s), "
     "msg/s", "w3b",
     "best_sent_per_s", "higher", "int"),
    ("W3b queued messages per server CPU-second", "w3b", "best_msgs_per_cpu_s", "higher",
     "int"),
    ("W3b pushes per message", "w3b", "best_pushes_per_msg", None, "f2"),
    ("W3b send -> push latency p50, ms", "w3b", "best_p50_ms", "lower", "f1"),
    ("W3b what stopped the sweep", "w3b", "limited_by", None, "str"),
    ("W4 logins/s (TLS 1.3 + SCRAM-SHA-1 + bind + logout)", "w4", "logins_per_s", "higher",
     "int"),
    ("W4 logins per server CPU-second", "w4", "logins_per_cpu_s", "higher", "int"),
    ("W4 server CPU share during the phase", "w4", "server_cpu_share", None, "pct"),
    ("W4 what limited the login rate", "w4", "limited_by", None, "str"),
    ("W4 login latency p50, ms", "w4", "p50_ms", "lower", "f1"),
    ("W4 login latency p99, ms", "w4", "p99_ms", "lower", "f1"),
]


def fmt(v, kind):
    if v is None:
        return "–"
    if kind == "mib":
        return f"{v / 1024:.1f}"
    if kind == "int":
        return f"{v:,.0f}"
    if kind == "f1":
        return f"{v:.1f}"
    if kind == "f2":
        return f"{v:.2f}"
    if kind == "pct":
        return f"{v * 100:.0f} %"
    if kind == "sm":
        return "on" if v else "off"
    return str(v)


def cell(results, server, key, field, kind):
    r = results.get(server, {}).get(key)
    if r is None:
        return None, "not run"
    if "skipped" in r:
        return None, ("not supported yet" if r["skipped"].startswith("not supported")
                      else "skipped")
    if "pending" in r:
        return None, "pending"
    if "error" in r:
        return None, "failed"
    if field is None:
        return None, "–"
    v = r.get(field)
    return v, fmt(v, kind)


def table(results, servers):
    """Markdown table of results[server][workload] for servers (Tern first)."""
    peers = [s for s in servers if s != "tern"]
    head = ["Figure", "better"] + servers + [f"Tern/{p}" for p in peers if "tern" in servers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, key, field, better, kind in ROWS:
        vals, cells = {}, []
        for s in servers:
            v, text = cell(results, s, key, field, kind)
            vals[s] = v
            cells.append(text)
        ratios = []
        if "tern" in servers:
            for p in peers:
                t, v = vals.get("tern"), vals.get(p)
                # Ratios only between positive figures (noise can make a delta negative).
                if better and isinstance(t, (int, float)) and isinstance(v, (int, float)) \
                        and not isinstance(t, bool) and t > 0 and v > 0:
                    ratios.append(f"{t / v:.2f}×")
                else:
                    ratios.append("–")
        lines.append("| " + " | ".join([label, better or ""] + cells + ratios) + " |")
    return "\n".join(lines)


def notes(results, servers, server_objs):
    out = []
    for s in servers:
        obj = server_objs.get(s)
        r = results.get(s, {})
        if obj is not None:
            out.append(f"- **{s}**: storage {obj.storage}; stream management {obj.sm_note}.")
        for key, v in sorted(r.items()):
            if isinstance(v, dict) and v.get("error"):
                out.append(f"  - {key} failed: {v['error']}")
            if isinstance(v, dict) and v.get("skipped"):
                out.append(f"  - {key}: {v['skipped']}")
    return "\n".join(out)


def disturbances(results, servers):
    out = []
    for s in servers:
        for key in ("w2", "w3", "w3b"):
            w = results.get(s, {}).get(key) or {}
            if w.get("disturbed_steps"):
                out.append(f"- {s} {key.upper()}: other processes used more than 15 % of the "
                           f"server core during the steps at {w['disturbed_steps']} msg/s"
                           + (" (the sweep was run a second time)"
                              if w.get("retried_after_disturbance") else ""))
        w4 = results.get(s, {}).get("w4") or {}
        busy, own = w4.get("server_core_busy"), w4.get("server_cpu_share")
        if busy is not None and own is not None and busy - own > 0.15:
            out.append(f"- {s} W4: other processes used {100 * (busy - own):.0f} % of the "
                       "server core")
    return "\n".join(out) or "- none seen (server core busy within 15 % of the server's own CPU)"


def push_steps(results, servers):
    lines = ["| server | workload | target msg/s | sent msg/s | pushes | pushes/s | push p50 ms |"
             " push p99 ms | server CPU | server core busy | CPU µs/msg | kept up |",
             "|" + "---|" * 12]
    for s in servers:
        for key in ("w3", "w3b"):
            w = results.get(s, {}).get(key) or {}
            for st in w.get("steps", []):
                lat = st.get("push_latency_samples")
                lines.append(
                    f"| {s} | {key.upper()} | {st['rate']} | {st['sent_per_s']:,.0f} | "
                    f"{st['pushes']:,} | {st['pushes_per_s']:,.0f} | "
                    f"{fmt(st['lat_p50_ms'] if lat else None, 'f1')} | "
                    f"{fmt(st['lat_p99_ms'] if lat else None, 'f1')} | "
                    f"{fmt(st.get('server_cpu_share'), 'pct')} | "
                    f"{fmt(st.get('server_core_busy'), 'pct')} | "
                    f"{fmt(st.get('cpu_us_per_msg'), 'f1')} | "
                    f"{'yes' if st.get('passed') else 'no'} |")
    return "\n".join(lines)


def w2_steps(results, servers):
    lines = ["| server | target msg/s | delivered msg/s | p50 ms | p99 ms | p99.9 ms | lost |"
             " server CPU | server core busy | generator CPU | CPU µs/msg |", "|" + "---|" * 11]
    for s in servers:
        w2 = results.get(s, {}).get("w2") or {}
        for st in w2.get("steps", []):
            lines.append(
                f"| {s} | {st['rate'] or 'window'} | {st['received_per_s']:,.0f} | "
                f"{st['lat_p50_ms']:.2f} | {st['lat_p99_ms']:.2f} | {st['lat_p999_ms']:.2f} | "
                f"{st['lost']} | {fmt(st.get('server_cpu_share'), 'pct')} | "
                f"{fmt(st.get('server_core_busy'), 'pct')} | "
                f"{fmt(st.get('gen_cpu_share'), 'pct')} | {fmt(st.get('cpu_us_per_msg'), 'f1')} |")
    return "\n".join(lines)
