#!/bin/sh
# gpu-check.sh - every check that needs a GPU, as one prepared run that
# finishes in a few minutes on one H200 (never more than the budget, 450 s
# by default): show the GPU, build in build-gpu/ with CUDA on, run the
# tests labelled cuda (the real-GPU suite must not skip), test_cuda_fake,
# test_cuda_model_fake and test_conformance, then the GPU benchmarks
# (gfn-bench cuda: vadd overhead, H2D bandwidth, cold start, digits model)
# and the CPU overhead benchmark, and write
#
#   $B/gpu-report.json   steps, tests, and each benchmark's JSON report
#   $B/gpu-report.md     the same for people (also printed at the end)
#
# Every step runs even when an earlier one failed (one run gives the whole
# picture); logs are in $B/gpu-check/. Exit 0 when every step passed, 1
# otherwise. Goals the benchmarks miss are reported, not failures.
#
# Usage, from the repository root:  bench/gpu-check.sh [build-dir]
# Environment: GPU_CHECK_BUDGET (seconds, default 450), GPU_CHECK_JOBS
# (build jobs, default nproc). Needs cmake (>= 3.20), a C compiler, nvcc
# and the libraries scripts/install-deps installs.
set -u
B=${1:-build-gpu}
BUDGET=${GPU_CHECK_BUDGET:-450}
JOBS=${GPU_CHECK_JOBS:-$(nproc 2>/dev/null || echo 4)}
LOG=$B/gpu-check
START=$(date +%s)
FAILED=0

mkdir -p "$LOG" || exit 1
: >"$LOG/steps"
rm -f "$B/bench-cuda.json" "$B/bench-cuda.md" "$B/bench-overhead.json" \
	"$B/bench-overhead.md"

left() { echo $((BUDGET - ($(date +%s) - START))); }

# A JSON string of $1 (quotes and backslashes escaped, controls dropped).
jstr() {
	printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' |
		sed 's/\\/\\\\/g; s/"/\\"/g')"
}

# step NAME MAX CMD...: run CMD (output in $LOG/NAME.log) for at most MAX
# seconds, fewer when the budget is running out; record how it ended.
# With NO_SKIP=1 a test that skipped counts as a failure.
step() {
	name=$1 max=$2
	shift 2
	l=$(left)
	if [ "$l" -lt 20 ]; then
		st="not run (time budget spent)" rc=1 dt=0
	else
		[ "$max" -gt "$l" ] && max=$l
		echo "== $name"
		t0=$(date +%s)
		rc=0
		timeout -k 10 "$max" "$@" >"$LOG/$name.log" 2>&1 || rc=$?
		dt=$(($(date +%s) - t0))
		case $rc in
		0) st=passed ;;
		124 | 137) st="timed out after ${max} s" ;;
		77) st="failed (exit 77: it found no CUDA device)" ;;
		*) st="failed (exit $rc)" ;;
		esac
		if [ "$rc" -eq 0 ] && [ "${NO_SKIP:-0}" = 1 ] &&
			grep -q 'Skipped' "$LOG/$name.log"; then
			st="failed (a test skipped: no GPU seen)" rc=1
		fi
	fi
	printf '%s\t%s\t%s\n' "$name" "$st" "$dt" >>"$LOG/steps"
	echo "   $st (${dt} s)"
	if [ "$rc" -ne 0 ]; then
		FAILED=$((FAILED + 1))
		[ -f "$LOG/$name.log" ] && tail -30 "$LOG/$name.log"
	fi
	return "$rc"
}

echo "== GPU"
GPU=$(nvidia-smi --query-gpu=name,driver_version,memory.total,persistence_mode \
	--format=csv,noheader 2>/dev/null | tr '\n' ';' | sed 's/;$//')
[ -n "$GPU" ] || GPU="nvidia-smi not found or no GPU"
echo "   $GPU"
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

BUILT=1
step configure 90 cmake -S . -B "$B" -DGFN_WITH_CUDA=ON \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo || BUILT=0
[ "$BUILT" = 1 ] && { step build 300 cmake --build "$B" -j"$JOBS" \
	--target test_cuda_gpu test_cuda_fake test_cuda_model_fake \
	test_conformance gfn-bench || BUILT=0; }

if [ "$BUILT" = 1 ]; then
	NO_SKIP=1
	step tests_cuda 240 ctest --test-dir "$B" -L cuda --output-on-failure
	NO_SKIP=0
	step tests_fake_conformance 240 ctest --test-dir "$B" \
		--output-on-failure \
		-R '^(test_cuda_fake|test_cuda_model_fake|test_conformance)$'
	step bench_cuda 240 sh -c '"$0/bench/gfn-bench" cuda --json \
		--markdown "$0/bench-cuda.md" --seconds 0.5 --repeats 5 \
		>"$0/bench-cuda.json"' "$B"
	step bench_overhead 60 sh -c '"$0/bench/gfn-bench" overhead --json \
		--markdown "$0/bench-overhead.md" --seconds 0.5 --repeats 3 \
		>"$0/bench-overhead.json"' "$B"
fi

# ---- the reports ------------------------------------------------------------

# "name status seconds" for every test ctest ran, from the step logs.
tests_list() {
	cat "$LOG/tests_cuda.log" "$LOG/tests_fake_conformance.log" \
		2>/dev/null | awk '/Test +#[0-9]+: / {
		sub(/.*Test +#[0-9]+: /, ""); name = $1; st = "failed"
		if ($0 ~ /Passed/) st = "passed"
		else if ($0 ~ /Skipped/) st = "skipped"
		sec = "0"; if (match($0, /[0-9.]+ sec/))
			sec = substr($0, RSTART, RLENGTH - 4)
		print name, st, sec }'
}

# A benchmark's JSON report if it is one complete JSON value, else null.
bench_json() {
	f=$1
	if [ -s "$f" ] && { if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import json,sys; json.load(open(sys.argv[1]))' \
			"$f" 2>/dev/null
	else head -c1 "$f" | grep -q '{'; fi; }; then
		cat "$f"
	else
		echo null
	fi
}

write_json() {
	printf '{"commit": %s, "gpu": %s, "budget_s": %s, "elapsed_s": %s, ' \
		"$(jstr "$COMMIT")" "$(jstr "$GPU")" "$BUDGET" \
		$(($(date +%s) - START))
	printf '"passed": %s,\n "steps": [' \
		"$([ "$FAILED" -eq 0 ] && echo true || echo false)"
	sep=
	while IFS="$(printf '\t')" read -r n s d; do
		printf '%s{"name": %s, "status": %s, "seconds": %s}' "$sep" \
			"$(jstr "$n")" "$(jstr "$s")" "$d"
		sep=', '
	done <"$LOG/steps"
	printf '],\n "tests": ['
	sep=
	tests_list | while read -r n s d; do
		printf '%s{"name": %s, "status": %s, "seconds": %s}' "$sep" \
			"$(jstr "$n")" "$(jstr "$s")" "$d"
		sep=', '
	done
	printf '],\n "benchmarks": {"cuda": '
	bench_json "$B/bench-cuda.json" | tr -d '\n'
	printf ',\n  "overhead": '
	bench_json "$B/bench-overhead.json" | tr -d '\n'
	printf '}}\n'
}

write_md() {
	echo "# gfn GPU check"
	echo
	echo "- commit: $COMMIT; $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- GPU (name, driver, memory, persistence mode): $GPU"
	if [ "$FAILED" -eq 0 ]; then
		echo "- result: **PASSED** in $(($(date +%s) - START)) s"
	else
		echo "- result: **FAILED** ($FAILED steps) in" \
			"$(($(date +%s) - START)) s; logs in $LOG/"
	fi
	printf '\n## Steps\n\n| step | status | seconds |\n|---|---|---|\n'
	while IFS="$(printf '\t')" read -r n s d; do
		echo "| $n | $s | $d |"
	done <"$LOG/steps"
	printf '\n## Tests\n\n| test | status | seconds |\n|---|---|---|\n'
	tests_list | while read -r n s d; do echo "| $n | $s | $d |"; done
	printf '\n## Benchmarks\n\n'
	echo "Goals: vadd4096 engine <= 1.2x raw cuLaunchKernel + sync per" \
		"call; h2d_registered >= 0.9x cuMemHostAlloc; digits graphs" \
		"replayed. Ratios are value / baseline, measured in the same run."
	echo
	for f in "$B/bench-cuda.md" "$B/bench-overhead.md"; do
		if [ -s "$f" ]; then cat "$f"; else
			echo "($(basename "$f" .md): no report)"
			echo
		fi
	done
}

write_json >"$B/gpu-report.json"
write_md >"$B/gpu-report.md"
echo
cat "$B/gpu-report.md"
echo "== JSON report ($B/gpu-report.json)"
cat "$B/gpu-report.json"
if [ "$FAILED" -ne 0 ]; then
	echo "== gpu-check: $FAILED steps FAILED"
	exit 1
fi
echo "== gpu-check: all passed"
