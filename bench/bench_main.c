/*
 * bench_main.c - gfn-bench: the scenario table and the command line.
 *
 *   gfn-bench                      list the scenarios
 *   gfn-bench NAME [--json] [--repeats N] [--seconds S]
 *
 * Exit status: 0 when the scenario ran and everything it measured behaved
 * (goals are reported, not enforced), 1 when it failed, 2 for bad usage.
 */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const bench_scenario scenarios[] = {
        {"overhead",
         "engine cost of a null CPU kernel vs calling it directly "
         "(batched throughput, sync round trip)",
         bench_overhead_run},
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
	           "  --seconds S  length of one repeat (default 1)\n\n"
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

int main(int argc, char **argv)
{
	bench_opts opts = {.json = 0, .repeats = 5, .seconds = 1.0};
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
	sc = find_scenario(argv[1]);
	if (!sc) {
		fprintf(stderr, "gfn-bench: no scenario '%s'\n\n", argv[1]);
		usage(stderr);
		return 2;
	}
	if (parse_opts(argc, argv, &opts) < 0)
		return 2;

	memset(&report, 0, sizeof(report));
	report.bench = sc->name;
	rc = sc->run(&opts, &report);
	bench_print_table(bench_human(&opts), &report);
	if (opts.json)
		bench_print_json(stdout, &report);
	if (rc != 0)
		fprintf(stderr, "gfn-bench: %s FAILED (see messages above)\n",
		        sc->name);
	return rc != 0 ? 1 : 0;
}
