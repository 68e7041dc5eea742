# gfn - a thin wrapper around CMake, so that on a fresh Debian 12 machine
# `make run` and `make test` do all the set-up themselves.
#
#   make run          install deps, build, run build/examples/gfn-digits
#   make test         install deps, build, ctest; then the ASan+UBSan suite
#                     too when SANITIZE=1, and (CI=true, time allowing) TSan too
#   make test-asan    ASan+UBSan build in build-asan/ and its ctest
#   make test-tsan    TSan build in build-tsan/ and its ctest
#   make bench        build, run build/bench/gfn-bench overhead
#   make bench-model  build, make build/ort-venv (onnxruntime from PyPI,
#                     bench/ort-requirements.txt), run gfn-bench model
#   make install      build, cmake --install build --prefix $(PREFIX)
#   make format       clang-format -i every .c/.h of the project
#   make format-check fail if clang-format would change a file
#   make clean        remove build/, build-asan/, build-tsan/
#
# Variables: BUILD_TYPE (RelWithDebInfo), CMAKE_FLAGS (extra -D options for
# every configure), JOBS (parallel build and ctest jobs), CTEST_FLAGS (e.g.
# "-L install" or "-R store"), PREFIX (/usr/local), SANITIZE (1: also run
# the sanitizer suite in `make test`; 0: never), ASAN_TIME_BUDGET (seconds).

SHELL := /bin/bash
.DEFAULT_GOAL := build
# deps must finish before anything is configured; cmake parallelises the
# build itself, so the top level never needs to.
.NOTPARALLEL:

BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=
CTEST_FLAGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local
SANITIZE ?=
CI ?=
# With CI=true, the ASan+UBSan suite runs after the plain one only when no
# more than this many seconds have gone by since make started, so that a
# slow machine still finishes within CI's limit (90 min) with a clear
# message instead of being killed.
ASAN_TIME_BUDGET ?= 2400

CMAKE ?= cmake
CTEST ?= ctest
CLANG_FORMAT ?= clang-format

BUILD_DIR := build
ASAN_DIR := build-asan
TSAN_DIR := build-tsan
FORMAT_DIRS := include runtime engine kernels service tests bench examples

# Sanitizer run-time settings: fail on the first report, show where.
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

MAKE_START := $(shell date +%s)
# A literal comma, for $(call ...) arguments.
, := ,
CI_ON := $(filter true 1 yes TRUE True,$(CI))

# configure + build one tree: $(call cmake_build,dir,extra cmake args)
define cmake_build
	$(CMAKE) -S . -B $(1) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(2) $(CMAKE_FLAGS)
	$(CMAKE) --build $(1) -j $(JOBS)
endef

.PHONY: all deps build run test test-asan test-tsan bench bench-model install \
	format format-check clean help

all: build

deps:
	@bash scripts/install-deps

build:
	$(call cmake_build,$(BUILD_DIR),)

run: deps build
	@test -x $(BUILD_DIR)/examples/gfn-digits || \
		{ echo "make run: $(BUILD_DIR)/examples/gfn-digits was not built" >&2; exit 1; }
	./$(BUILD_DIR)/examples/gfn-digits

test: deps build
	$(CTEST) --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) $(CTEST_FLAGS)
	@if [ "$(SANITIZE)" = 1 ]; then \
		$(MAKE) --no-print-directory test-asan; \
	elif [ "$(SANITIZE)" != 0 ] && [ -n "$(CI_ON)" ]; then \
		elapsed=$$(( $$(date +%s) - $(MAKE_START) )); \
		if [ $$elapsed -le $(ASAN_TIME_BUDGET) ]; then \
			$(MAKE) --no-print-directory test-asan && \
			$(MAKE) --no-print-directory test-tsan; \
		else \
			echo "make test: skipping the ASan+UBSan suite:" \
				"$${elapsed}s gone, budget $(ASAN_TIME_BUDGET)s" >&2; \
		fi; \
	fi

test-asan: deps
	$(call cmake_build,$(ASAN_DIR),-DGFN_SANITIZE=address$(,)undefined)
	$(SAN_ENV) $(CTEST) --test-dir $(ASAN_DIR) --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

# TSan needs a narrower address-space layout than some kernels give
# (vm.mmap_rnd_bits > 28 makes it abort with "unexpected memory mapping"):
# run ctest with address randomisation off when setarch allows it.
test-tsan: deps
	$(call cmake_build,$(TSAN_DIR),-DGFN_SANITIZE=thread)
	$(SAN_ENV) $$(setarch $$(uname -m) -R true 2>/dev/null && echo setarch $$(uname -m) -R) \
		$(CTEST) --test-dir $(TSAN_DIR) --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

bench: build
	@test -x $(BUILD_DIR)/bench/gfn-bench || \
		{ echo "make bench: $(BUILD_DIR)/bench/gfn-bench was not built" >&2; exit 1; }
	./$(BUILD_DIR)/bench/gfn-bench overhead

# gfn against onnxruntime on the same models (docs/models.md, Benchmarks).
# BENCH_FLAGS: extra gfn-bench options, e.g. "--threads 2 --json".
ORT_VENV := $(BUILD_DIR)/ort-venv
BENCH_FLAGS ?=
bench-model: deps build
	@test -x $(ORT_VENV)/bin/python3 || python3 -m venv $(ORT_VENV)
	$(ORT_VENV)/bin/python3 -m pip install -q -r bench/ort-requirements.txt
	$(ORT_VENV)/bin/python3 scripts/export_onnx.py --out $(BUILD_DIR)/onnx
	./$(BUILD_DIR)/bench/gfn-bench model --peer $(ORT_VENV)/bin/python3 $(BENCH_FLAGS)

install: build
	$(CMAKE) --install $(BUILD_DIR) --prefix $(PREFIX)

# Every .c/.h of the project; absent folders are skipped.
FORMAT_FILES = $(shell find $(wildcard $(FORMAT_DIRS)) -type f \
	\( -name '*.c' -o -name '*.h' \) -not -path '*/third_party/*' | sort)

format:
	@$(if $(FORMAT_FILES),$(CLANG_FORMAT) -i $(FORMAT_FILES),true)

format-check:
	@$(if $(FORMAT_FILES),$(CLANG_FORMAT) --dry-run --Werror $(FORMAT_FILES),true)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(TSAN_DIR)

help:
	@sed -n '/^#   make/s/^#   //p' Makefile
