# Tern: `make run` builds and starts a local server, `make test` runs every test.
BUILD      ?= build
CONFIG     ?= etc/ternd.yaml
MESON_OPTS ?=

.PHONY: all deps build run test unit bench format clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	@scripts/run.sh $(BUILD) $(CONFIG)

test:
	@scripts/install-deps.sh --test
	@/usr/bin/python3 tests/run_all.py

unit: build
	meson test -C $(BUILD) --suite unit --print-errorlogs

format:
	clang-format -i $$(git ls-files 'src/*.[ch]' 'tests/*.[ch]' 'bench/*.[ch]')

clean:
	rm -rf build build-asan build-fuzz

# Side-by-side benchmarks against Prosody and ejabberd (bench/README.md).
# BENCH_QUICK=1 make bench for the short run; bench/run.sh --smoke is the check for make test.
bench: build
	@bench/run.sh
