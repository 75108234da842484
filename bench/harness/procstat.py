"""What the harness reads from /proc: CPU time, memory, kernel socket memory, process trees."""
import os
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid):
    """utime + stime of every thread of pid, living or exited (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def smaps_rollup(pid):
    """Pss and Rss of pid in KiB (from /proc/PID/smaps_rollup)."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0] in ("Pss:", "Rss:", "Pss_Anon:"):
                out[parts[0][:-1].lower()] = int(parts[1])
    return out


def sockstat_tcp():
    """TCP line of /proc/net/sockstat: inuse, orphan, tw, alloc and mem (pages)."""
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                parts = line.split()[1:]
                return {parts[i]: int(parts[i + 1]) for i in range(0, len(parts) - 1, 2)}
    return {}


def slab_kib():
    """Kernel slab memory (reclaimable and not) from /proc/meminfo, KiB: where socket
    structures live, which sockstat's "mem" (buffer pages) does not count."""
    total = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(("SReclaimable:", "SUnreclaim:")):
                total += int(line.split()[1])
    return total


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except OSError:
        return False


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def descendants(pid):
    kids = children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def pids_by_comm(name):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and comm(int(d)) == name and alive(int(d)):
            out.append(int(d))
    return out


def find_descendant(pid, name, timeout=30.0):
    """The first descendant of pid whose comm is name, waiting up to timeout seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for p in descendants(pid):
            if comm(p) == name:
                return p
        time.sleep(0.1)
    return None


def cpu_busy():
    """Per-core busy and total jiffies from /proc/stat: {cpu: (busy, total)}."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                parts = line.split()
                vals = [int(v) for v in parts[1:]]
                idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
                out[int(parts[0][3:])] = (sum(vals) - idle, sum(vals))
    return out


def core_share(a, b, cpu):
    """Busy share of core cpu between two cpu_busy() readings."""
    if cpu is None or cpu not in a or cpu not in b:
        return None
    busy, total = b[cpu][0] - a[cpu][0], b[cpu][1] - a[cpu][1]
    return busy / total if total > 0 else None


def sample(pid):
    """One measurement of a server process and the kernel's TCP memory."""
    s = {"t": time.monotonic(), "cpu_s": cpu_seconds(pid)}
    s.update(smaps_rollup(pid))
    s["tcp_mem_pages"] = sockstat_tcp().get("mem", 0)
    s["slab_kib"] = slab_kib()
    s["cores"] = cpu_busy()
    return s


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]
