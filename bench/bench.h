/*
 * bench.h - the gfn-bench harness: what a scenario gets and gives back.
 *
 * A scenario is one row in the table in bench_main.c: a name, a one-line
 * description and a run function. The run function measures, fills a
 * bench_report with results, and may print notes to bench_human(). The
 * harness prints the report as a table (always) and as one JSON object on
 * stdout (with --json), so every scenario reports the same way.
 *
 * To add a scenario: write bench_<name>.c with a run function of type
 * bench_run_fn, declare it at the end of this header, add a row to the
 * table in bench_main.c and the file to bench/CMakeLists.txt.
 */
#ifndef GFN_BENCH_H
#define GFN_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_MAX_RESULTS 32 /* results one scenario may report */
/* A run function's answer when its hardware is absent: gfn-bench exits
   with it (ctest's SKIP_RETURN_CODE) and prints no report. */
#define BENCH_SKIP 77

/* Options from the command line, shared by every scenario. */
typedef struct bench_opts {
	int json;             /* print one JSON object on stdout */
	int repeats;          /* how many times to repeat each timed case */
	double seconds;       /* target length of one repeat */
	int quick;            /* a smoke run: each scenario shortens itself */
	int threads;          /* compute threads a scenario may use (model) */
	const char *peer;     /* python that runs a baseline peer; "none": no
	                       peer; NULL: the scenario's default (model) */
	const char *models;   /* model directories; NULL: tests/models */
	const char *markdown; /* also write the report as markdown here */
} bench_opts;

/*
 * One measured number. Doubles that do not apply are NAN and strings that
 * do not apply are NULL; both are then left out of the output.
 */
typedef struct bench_result {
	const char *case_name; /* e.g. "batched_wait" */
	const char *metric;    /* e.g. "throughput", "round_trip" */
	const char *unit;      /* e.g. "inv/s", "us" */
	double value;          /* the headline number */
	double p50;            /* median sample, NAN if not a distribution */
	double p99;            /* 99th percentile sample, or NAN */
	double lo;             /* smallest repeat (table only), or NAN */
	double hi;             /* largest repeat (table only), or NAN */
	const char *baseline_name; /* what value is compared against, or NULL */
	double baseline_value;     /* the baseline, same unit, or NAN */
	double ratio;              /* value / baseline_value, or NAN */
	const char *goal; /* e.g. ">= 1e6 inv/s" (table only), or NULL */
	int goal_met;     /* 1 met, 0 missed; ignored without goal */
} bench_result;

/* Everything one scenario reports. */
typedef struct bench_report {
	const char *bench; /* scenario name */
	const char *meta;  /* one JSON object printed as "meta", or NULL */
	size_t n;          /* results used */
	bench_result results[BENCH_MAX_RESULTS]; /* in the order added */
} bench_report;

/*
 * A scenario's run function. Returns 0 when every measured operation did
 * what it should (the numbers may still miss their goals), non-zero when
 * something failed; the report is printed either way.
 */
typedef int (*bench_run_fn)(const bench_opts *opts, bench_report *report);

typedef struct bench_scenario {
	const char *name;        /* command-line name */
	const char *description; /* one line for the listing */
	bench_run_fn run;        /* measures and fills the report */
} bench_scenario;

/* Monotonic clock in nanoseconds. */
uint64_t bench_now_ns(void);

/* Sort v[0..n-1] ascending in place. */
void bench_sort(double *v, size_t n);

/*
 * The p-th percentile (0..100) of sorted v[0..n-1], nearest-rank, so the
 * answer is always one of the samples. NAN when n is 0.
 */
double bench_percentile_sorted(const double *v, size_t n, double p);

/* Median of v[0..n-1]; sorts v in place. NAN when n is 0. */
double bench_median(double *v, size_t n);

/*
 * Append a result with every optional field cleared. NULL when the report
 * is full (BENCH_MAX_RESULTS), which is a bug in the scenario.
 */
bench_result *bench_report_add(bench_report *r, const char *case_name,
                               const char *metric, const char *unit);

/*
 * Where a scenario prints notes for people: stdout normally, stderr with
 * --json so that stdout holds only the JSON object.
 */
FILE *bench_human(const bench_opts *opts);

/* Print the report as a table to f. */
void bench_print_table(FILE *f, const bench_report *r);

/* Print the report as one JSON object (and a newline) to f. */
void bench_print_json(FILE *f, const bench_report *r);

/* Print the report as a markdown section (a table) to f. */
void bench_print_markdown(FILE *f, const bench_report *r);

/* ---- scenarios ----------------------------------------------------------- */

/* bench_overhead.c: engine cost of a null CPU kernel vs a direct call. */
int bench_overhead_run(const bench_opts *opts, bench_report *report);

/* bench_model.c: model functions against onnxruntime, and batching. */
int bench_model_run(const bench_opts *opts, bench_report *report);

/* bench_model_wide.c: the generated weight-bound model of the 64-client
   case. Make its directory (a new temporary one, named into dir) / take
   it away; fill rows of 1024 inputs. */
int bench_wide_make(char *dir, size_t cap);
void bench_wide_remove(const char *dir);
void bench_wide_rows(float *x, size_t rows);

/* bench_cuda.c: the engine on a CUDA device vs the driver called
   directly; BENCH_SKIP without a CUDA device. */
int bench_cuda_run(const bench_opts *opts, bench_report *report);

/* The hidden subcommand the cuda scenario runs as a fresh process to
   time a cold first call: gfn-bench BENCH_CUDA_CHILD DEVICE. */
#define BENCH_CUDA_CHILD "__cuda-cold-child"
int bench_cuda_child(int argc, char **argv);

#endif /* GFN_BENCH_H */
