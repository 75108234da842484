#!/usr/bin/python3
"""Run every Tern test and end with one line: `N passed, N failed`.

Steps: static checks (format, banned functions); for a plain and an
ASan+UBSan build: the cmocka unit tests and the integration tests against the
real ternd; the libFuzzer targets for a bounded time. Each cmocka case,
integration test, fuzz target and check counts as one test.

Environment: FUZZ_SECONDS (default 60), TERN_VARIANTS (default "build build-asan"),
TERN_SKIP (space separated: static unit integration bench fuzz).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(ROOT)

VARIANTS = {
    "build": [],
    "build-asan": ["-Db_sanitize=address,undefined", "-Db_lundef=false"],
}
SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:strict_string_checks=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}

passed = 0
failed = 0
failures = []


def record(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS {name}", flush=True)
    else:
        failed += 1
        failures.append(name)
        print(f"FAIL {name}", flush=True)
        if detail:
            print("  " + detail.strip().replace("\n", "\n  ")[-6000:], flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", **kw)


def step(title):
    print(f"\n=== {title}", flush=True)


def static_checks():
    step("static checks")
    files = run(["git", "ls-files", "src/*.c", "src/*.h", "tests/*.c", "tests/*.h",
                 "bench/*.c", "bench/*.h"]).stdout.split()
    files = [f for f in files if os.path.exists(f)]
    r = run(["clang-format", "--dry-run", "--Werror"] + files)
    record("static/format", r.returncode == 0, r.stdout[-3000:])
    r = run(["sh", "scripts/check-banned.sh"])
    record("static/banned-functions", r.returncode == 0, r.stdout)


def build(variant):
    opts = VARIANTS[variant]
    if not os.path.exists(os.path.join(variant, "build.ninja")):
        r = run(["meson", "setup", variant] + opts)
        if r.returncode != 0:
            record(f"{variant}/configure", False, r.stdout)
            return False
    r = run(["ninja", "-C", variant])
    record(f"{variant}/compile", r.returncode == 0, r.stdout[-6000:])
    return r.returncode == 0


CMOCKA_OK = re.compile(r"^\[\s+OK\s+\]\s+(\S+)", re.M)
CMOCKA_FAIL = re.compile(r"^\[\s+(?:FAILED|ERROR)\s+\]\s+(\S+)", re.M)


def unit_tests(variant):
    step(f"unit tests ({variant})")
    r = run(["meson", "introspect", "--tests", variant])
    tests = [t for t in json.loads(r.stdout)
             if any(s.split(":")[-1] == "unit" for s in t.get("suite", []))]
    env = dict(os.environ, **SAN_ENV)
    for t in tests:
        try:
            r = run(t["cmd"], env=env, timeout=600)
            out, code = r.stdout, r.returncode
        except subprocess.TimeoutExpired as e:
            out, code = (e.stdout or "") if isinstance(e.stdout, str) else "", -1
            out += "\n(timed out)"
        oks = CMOCKA_OK.findall(out)
        fails = set(CMOCKA_FAIL.findall(out)) - {"test(s)"}
        for name in oks:
            record(f"{variant}/unit/{t['name']}/{name}", True)
        for name in sorted(fails):
            record(f"{variant}/unit/{t['name']}/{name}", False, out[-4000:])
        if code != 0 and not fails:
            # A crash, a sanitizer report at exit or a timeout outside any case.
            record(f"{variant}/unit/{t['name']}", False, out[-4000:])
        elif not oks and not fails:
            record(f"{variant}/unit/{t['name']}", False, "no test case ran:\n" + out[-2000:])


def integration_tests(variant):
    step(f"integration tests ({variant})")
    env = dict(os.environ, TERN_BUILD=os.path.join(ROOT, variant), **SAN_ENV)
    p = subprocess.Popen(["/usr/bin/python3", "tests/integration/run.py"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         errors="replace")
    summary = None
    for line in p.stdout:
        m = re.match(r"^integration: (\d+) passed, (\d+) failed", line)
        if m:
            summary = (int(m.group(1)), int(m.group(2)))
            continue
        m = re.match(r"^(PASS|FAIL) (.*)$", line.rstrip("\n"))
        if m:
            global passed, failed
            if m.group(1) == "PASS":
                passed += 1
            else:
                failed += 1
                failures.append(f"{variant}/integration/{m.group(2)}")
            print(f"{m.group(1)} {variant}/integration/{m.group(2)}", flush=True)
        else:
            print(line, end="", flush=True)
    code = p.wait()
    if summary is None or (code != 0 and summary[1] == 0):
        record(f"{variant}/integration/runner", False, f"runner exited {code} without a summary")


def bench_tests():
    """The load generator's own unit tests, and a tiny smoke run against ternd
    (counts only, no timing): bench/README.md."""
    step("bench: load generator tests and smoke run")
    r = run(["make", "-C", "bench", "test"], timeout=900)
    oks = CMOCKA_OK.findall(r.stdout)
    fails = set(CMOCKA_FAIL.findall(r.stdout)) - {"test(s)"}
    for name in oks:
        record(f"bench/unit/{name}", True)
    for name in sorted(fails):
        record(f"bench/unit/{name}", False, r.stdout[-4000:])
    if r.returncode != 0 and not fails:
        record("bench/unit", False, r.stdout[-4000:])
    r = run(["bench/run.sh", "--smoke"], timeout=600)
    lines = re.findall(r"^(PASS|FAIL) (\S+)", r.stdout, re.M)
    for verdict, name in lines:
        record(name, verdict == "PASS", r.stdout[-4000:] if verdict == "FAIL" else "")
    if r.returncode != 0 and not any(v == "FAIL" for v, _ in lines):
        record("bench-smoke", False, r.stdout[-4000:])


def fuzz_tests():
    step("fuzzing")
    seconds = int(os.environ.get("FUZZ_SECONDS", "60"))
    d = "build-fuzz"
    if not os.path.exists(os.path.join(d, "build.ninja")):
        env = dict(os.environ, CC="clang")
        r = run(["meson", "setup", d, "-Dfuzz=true", "-Dtests=disabled",
                 "-Db_sanitize=address,undefined", "-Db_lundef=false"], env=env)
        if r.returncode != 0:
            record("fuzz/configure", False, r.stdout)
            return
    r = run(["ninja", "-C", d])
    if r.returncode != 0:
        record("fuzz/compile", False, r.stdout[-6000:])
        return
    fuzz_dir = os.path.join(d, "tests", "fuzz")
    targets = sorted(f for f in os.listdir(fuzz_dir)
                     if f.startswith("fuzz-") and os.path.isfile(os.path.join(fuzz_dir, f))
                     and os.access(os.path.join(fuzz_dir, f), os.X_OK))
    for t in targets:
        name = t[len("fuzz-"):]
        seeds = os.path.join("tests", "fuzz", "corpus", name)
        with tempfile.TemporaryDirectory() as work:
            corpus = os.path.join(work, "corpus")
            shutil.copytree(seeds, corpus)
            r = run([os.path.join(fuzz_dir, t), f"-max_total_time={seconds}", "-max_len=65536",
                     f"-artifact_prefix={work}/", "-print_final_stats=1", corpus],
                    env=dict(os.environ, **SAN_ENV), timeout=seconds + 120)
            record(f"fuzz/{name}", r.returncode == 0, r.stdout[-5000:])


def main():
    skip = os.environ.get("TERN_SKIP", "").split()
    variants = os.environ.get("TERN_VARIANTS", "build build-asan").split()
    start = time.time()
    if "static" not in skip:
        static_checks()
    for v in variants:
        step(f"build {v}")
        if not build(v):
            continue
        if "unit" not in skip:
            unit_tests(v)
        if "integration" not in skip:
            integration_tests(v)
    if "bench" not in skip and os.path.exists(os.path.join("build", "ternd")):
        bench_tests()
    if "fuzz" not in skip:
        fuzz_tests()
    print(f"\n({time.time() - start:.0f} s)")
    if failures:
        print("failed:\n  " + "\n  ".join(failures))
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
