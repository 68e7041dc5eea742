/*
 * bench_util.c - helpers every gfn-bench scenario shares: the clock,
 * percentiles, the result record and the two ways of printing a report.
 */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC: immune to wall-clock steps, cheap (vDSO). */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;

	return (x > y) - (x < y);
}

void bench_sort(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
}

double bench_percentile_sorted(const double *v, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return NAN;
	/* Nearest rank: the smallest sample with at least p% at or below. */
	rank = (size_t)ceil(p / 100.0 * (double)n);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

double bench_median(double *v, size_t n)
{
	if (n == 0)
		return NAN;
	bench_sort(v, n);
	if (n % 2 == 1)
		return v[n / 2];
	return (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

bench_result *bench_report_add(bench_report *r, const char *case_name,
                               const char *metric, const char *unit)
{
	bench_result *res;

	if (r->n >= BENCH_MAX_RESULTS)
		return NULL;
	res = &r->results[r->n++];
	memset(res, 0, sizeof(*res));
	res->case_name = case_name;
	res->metric = metric;
	res->unit = unit;
	res->value = NAN;
	res->p50 = NAN;
	res->p99 = NAN;
	res->lo = NAN;
	res->hi = NAN;
	res->baseline_value = NAN;
	res->ratio = NAN;
	return res;
}

FILE *bench_human(const bench_opts *opts)
{
	return opts->json ? stderr : stdout;
}

/* ---- table --------------------------------------------------------------- */

/* A number for people: integers for big values, 3 significant digits else. */
static const char *fmt_num(char *buf, size_t len, double v)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else if (fabs(v) >= 1e4)
		snprintf(buf, len, "%.0f", v);
	else
		snprintf(buf, len, "%.3g", v);
	return buf;
}

static void print_row(FILE *f, const bench_result *res)
{
	char v[32], p50[32], p99[32], lo[32], hi[32], bl[32], ratio[32];
	char spread[72] = "-";
	char base[96] = "-";

	if (!isnan(res->lo))
		snprintf(spread, sizeof(spread), "%s..%s",
		         fmt_num(lo, sizeof(lo), res->lo),
		         fmt_num(hi, sizeof(hi), res->hi));
	if (res->baseline_name)
		snprintf(base, sizeof(base), "%s=%s", res->baseline_name,
		         fmt_num(bl, sizeof(bl), res->baseline_value));
	fprintf(f, "  %-18s %-11s %12s %-6s %9s %9s %-21s %-22s %10s",
	        res->case_name, res->metric, fmt_num(v, sizeof(v), res->value),
	        res->unit, fmt_num(p50, sizeof(p50), res->p50),
	        fmt_num(p99, sizeof(p99), res->p99), spread, base,
	        fmt_num(ratio, sizeof(ratio), res->ratio));
	if (res->goal)
		fprintf(f, "  goal %s: %s", res->goal,
		        res->goal_met ? "met" : "MISSED");
	fputc('\n', f);
}

void bench_print_table(FILE *f, const bench_report *r)
{
	size_t i;

	fprintf(f, "\n%s results\n", r->bench);
	fprintf(f, "  %-18s %-11s %12s %-6s %9s %9s %-21s %-22s %10s\n", "case",
	        "metric", "value", "unit", "p50", "p99", "min..max", "baseline",
	        "ratio");
	for (i = 0; i < r->n; i++)
		print_row(f, &r->results[i]);
}

/* ---- JSON ---------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* ", "key": number" unless the number does not apply (JSON has no NaN). */
static void json_num_field(FILE *f, const char *key, double v)
{
	if (!isfinite(v))
		return;
	fprintf(f, ", ");
	json_str(f, key);
	fprintf(f, ": %.9g", v);
}

static void json_result(FILE *f, const bench_result *res)
{
	fprintf(f, "{\"case\": ");
	json_str(f, res->case_name);
	fprintf(f, ", \"metric\": ");
	json_str(f, res->metric);
	fprintf(f, ", \"unit\": ");
	json_str(f, res->unit);
	json_num_field(f, "value", res->value);
	json_num_field(f, "p50", res->p50);
	json_num_field(f, "p99", res->p99);
	if (res->baseline_name && isfinite(res->baseline_value)) {
		fprintf(f, ", \"baseline\": {\"name\": ");
		json_str(f, res->baseline_name);
		json_num_field(f, "value", res->baseline_value);
		fprintf(f, "}");
	}
	json_num_field(f, "ratio", res->ratio);
	fprintf(f, "}");
}

void bench_print_json(FILE *f, const bench_report *r)
{
	size_t i;

	fprintf(f, "{\"bench\": ");
	json_str(f, r->bench);
	fprintf(f, ", \"results\": [");
	for (i = 0; i < r->n; i++) {
		if (i > 0)
			fprintf(f, ", ");
		json_result(f, &r->results[i]);
	}
	fprintf(f, "]");
	/* meta is already JSON: what the scenario ran against (versions,
	   which baselines were present). */
	if (r->meta)
		fprintf(f, ", \"meta\": %s", r->meta);
	fprintf(f, "}\n");
}

/* ---- markdown ------------------------------------------------------------ */

static void md_row(FILE *f, const bench_result *res)
{
	char v[32], p50[32], p99[32], bl[32], ratio[32];

	fprintf(f, "| %s | %s | %s %s | %s | %s | ", res->case_name,
	        res->metric, fmt_num(v, sizeof(v), res->value), res->unit,
	        fmt_num(p50, sizeof(p50), res->p50),
	        fmt_num(p99, sizeof(p99), res->p99));
	if (res->baseline_name)
		fprintf(f, "%s = %s", res->baseline_name,
		        fmt_num(bl, sizeof(bl), res->baseline_value));
	else
		fprintf(f, "-");
	fprintf(f, " | %s | ", fmt_num(ratio, sizeof(ratio), res->ratio));
	if (res->goal)
		fprintf(f, "%s: **%s**", res->goal,
		        res->goal_met ? "met" : "MISSED");
	else
		fprintf(f, "-");
	fprintf(f, " |\n");
}

void bench_print_markdown(FILE *f, const bench_report *r)
{
	size_t i;

	fprintf(f, "### gfn-bench %s\n\n", r->bench);
	fprintf(f, "| case | metric | value | p50 | p99 | baseline | ratio "
	           "| goal |\n|---|---|---|---|---|---|---|---|\n");
	for (i = 0; i < r->n; i++)
		md_row(f, &r->results[i]);
	if (r->meta)
		fprintf(f, "\nmeta: `%s`\n", r->meta);
	fputc('\n', f);
}
