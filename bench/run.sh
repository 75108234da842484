#!/bin/sh
# Side-by-side benchmarks of Tern, Prosody and ejabberd (see bench/README.md).
#   bench/run.sh                 every server, every workload (under 20 minutes)
#   BENCH_QUICK=1 bench/run.sh   small sizes (under 3 minutes)
#   bench/run.sh --smoke         Tern only, tiny sizes, checks that counts add up
#   bench/run.sh --help          more options
exec /usr/bin/python3 "$(dirname "$0")/harness/main.py" "$@"
