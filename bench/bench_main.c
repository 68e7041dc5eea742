/*
 * bench_main.c - gfn-bench: the scenario table and the command line.
 *
 *   gfn-bench                      list the scenarios
 *   gfn-bench NAME [--json] [--repeats N] [--seconds S] [--quick]
 *                  [--threads N] [--peer PYTHON|none] [--models DIR]
 *
 * Exit status: 0 when the scenario ran and everything it measured behaved
 * (goals are reported, not enforced), 1 when it failed, 2 for bad usage.
 */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const bench_scenario scenarios[] = {
        {"overhead",
         "engine cost of a null CPU kernel vs calling it directly "
         "(batched throughput, sync round trip)",
         bench_overhead_run},
        {"model",
         "digits MLP and small CNN at batch 1/8/64 vs onnxruntime, and "
         "64 clients with and without dynamic batching",
         bench_model_run},
        {"cuda",
         "engine on a CUDA device vs the driver called directly: vadd "
         "overhead, H2D bandwidth, cold start, digits model",
         bench_cuda_run},
};

#define N_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: gfn-bench NAME [--json] [--repeats N] "
	           "[--seconds S]\n\n"
	           "  --json       print one JSON object on stdout "
	           "(the table goes to stderr)\n"
	           "  --repeats N  repeats of each timed case (default 5)\n"
	           "  --seconds S  length of one repeat (default 1)\n"
	           "  --quick      a short smoke run\n"
	           "  --threads N  compute threads (model; default 1)\n"
	           "  --peer PY    python for the onnxruntime peer, or "
	           "'none' (model)\n"
	           "  --models DIR model directories (model; default "
	           "tests/models)\n"
	           "  --markdown F also write the report as markdown to F\n\n"
	           "scenarios:\n");
	for (i = 0; i < N_SCENARIOS; i++)
		fprintf(f, "  %-12s %s\n", scenarios[i].name,
		        scenarios[i].description);
}

static const bench_scenario *find_scenario(const char *name)
{
	size_t i;

	for (i = 0; i < N_SCENARIOS; i++)
		if (strcmp(scenarios[i].name, name) == 0)
			return &scenarios[i];
	return NULL;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	/* Written as !(a && b) so that NaN is refused too. */
	if (errno || end == s || *end || !(v > 0.0 && v <= 3600.0))
		return -1;
	*out = v;
	return 0;
}

/* Options after the scenario name; -1 with a message on a bad one. */
static int parse_opts(int argc, char **argv, bench_opts *o)
{
	int i;

	for (i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--json") == 0) {
			o->json = 1;
		} else if (strcmp(a, "--quick") == 0) {
			o->quick = 1;
		} else if (strcmp(a, "--peer") == 0 && v) {
			o->peer = v;
			i++;
		} else if (strcmp(a, "--models") == 0 && v) {
			o->models = v;
			i++;
		} else if (strcmp(a, "--markdown") == 0 && v) {
			o->markdown = v;
			i++;
		} else if (strcmp(a, "--threads") == 0 && v) {
			if (parse_int(v, 1, 256, &o->threads) < 0) {
				fprintf(stderr,
				        "gfn-bench: --threads wants "
				        "1..256, not '%s'\n",
				        v);
				return -1;
			}
			i++;
		} else if (strcmp(a, "--repeats") == 0 && v) {
			if (parse_int(v, 1, 1000, &o->repeats) < 0) {
				fprintf(stderr,
				        "gfn-bench: --repeats wants "
				        "1..1000, not '%s'\n",
				        v);
				return -1;
			}
			i++;
		} else if (strcmp(a, "--seconds") == 0 && v) {
			if (parse_seconds(v, &o->seconds) < 0) {
				fprintf(stderr,
				        "gfn-bench: --seconds wants a "
				        "number in (0, 3600], not '%s'\n",
				        v);
				return -1;
			}
			i++;
		} else {
			fprintf(stderr,
			        "gfn-bench: unknown or incomplete "
			        "option '%s'\n",
			        a);
			return -1;
		}
	}
	return 0;
}

/* OpenBLAS's own calls (not in cblas.h). */
char *openblas_get_corename(void);

/*
 * Debian 12's OpenBLAS (0.3.21) picks its kernels from the CPU model, and
 * takes a CPU newer than it knows (this machine's family 6 model 207)
 * for a Prescott: SSE3 kernels, 2-3x slower GEMM than the AVX2/AVX-512
 * the CPU has. The choice is made when the library loads, so the only
 * fix is OPENBLAS_CORETYPE in the environment before start: run again
 * with it. An OPENBLAS_CORETYPE already set is respected.
 */
static void fix_openblas_core(char **argv)
{
	const char *want = NULL;

	if (getenv("OPENBLAS_CORETYPE") ||
	    strcmp(openblas_get_corename(), "Prescott") != 0)
		return;
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f"))
		want = "SkylakeX";
	else if (__builtin_cpu_supports("avx2"))
		want = "Haswell";
	if (!want || setenv("OPENBLAS_CORETYPE", want, 1) != 0)
		return;
	fprintf(stderr,
	        "gfn-bench: OpenBLAS took this CPU for a Prescott; "
	        "running again with OPENBLAS_CORETYPE=%s\n",
	        want);
	execv("/proc/self/exe", argv);
	unsetenv("OPENBLAS_CORETYPE"); /* exec failed: go on as we are */
}

/* --markdown FILE: the report as markdown too; 0, or -1 with a message. */
static int write_markdown(const char *path, const bench_report *r)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		fprintf(stderr, "gfn-bench: cannot write %s: %s\n", path,
		        strerror(errno));
		return -1;
	}
	bench_print_markdown(f, r);
	if (fclose(f) != 0) {
		fprintf(stderr, "gfn-bench: writing %s: %s\n", path,
		        strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	bench_opts opts = {
	        .json = 0, .repeats = 5, .seconds = 1.0, .threads = 1};
	bench_report report;
	const bench_scenario *sc;
	int rc;

	if (argc < 2) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	/* The cuda scenario's cold-start child: not a scenario. */
	if (strcmp(argv[1], BENCH_CUDA_CHILD) == 0)
		return bench_cuda_child(argc, argv);
	sc = find_scenario(argv[1]);
	if (!sc) {
		fprintf(stderr, "gfn-bench: no scenario '%s'\n\n", argv[1]);
		usage(stderr);
		return 2;
	}
	if (parse_opts(argc, argv, &opts) < 0)
		return 2;
	fix_openblas_core(argv);

	memset(&report, 0, sizeof(report));
	report.bench = sc->name;
	rc = sc->run(&opts, &report);
	if (rc == BENCH_SKIP)
		return BENCH_SKIP; /* the scenario said why, on one line */
	if (opts.markdown && write_markdown(opts.markdown, &report) < 0)
		rc = 1;
	bench_print_table(bench_human(&opts), &report);
	if (opts.json)
		bench_print_json(stdout, &report);
	if (rc != 0)
		fprintf(stderr, "gfn-bench: %s FAILED (see messages above)\n",
		        sc->name);
	return rc != 0 ? 1 : 0;
}
