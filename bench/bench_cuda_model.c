/*
 * bench_cuda_model.c - the digits MLP (tests/models/digits: scikit-learn's
 * MLPClassifier, 64 -> 10 classes) as a model function on the CUDA
 * device, part of `gfn-bench cuda` (bench_cuda.c).
 *
 * Cases (medians over the repeats):
 *   digits_b1_x64  invocations of one row each, 64 in flight (each slot is
 *                  waited for and resubmitted in turn), so the engine
 *                  batches them dynamically (up to the model's
 *                  batch_max): inferences/s, and p50/p99 from submit to
 *                  the wait returning
 *   digits_b64     one invocation of 64 rows at a time: inferences/s
 *                  (rows), p50/p99 per invocation
 * Both are compared with digits_b1_sync, one row, one invocation at a
 * time (nothing to batch). digits_graphs: replays of the CUDA graphs the
 * model records on the device (kernels/model_graphs.c) during the timed
 * phase.
 *
 * Every fixture row is run (single rows 64 in flight, and in batches of
 * 64) and compared with ref_proba.f32 within 1e-5 before timing and again
 * after it, when the graphs are replaying; a mismatch fails the scenario.
 */
#include "bench_cuda.h"

#include <gfn/gfn_model.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef GFN_SOURCE_DIR
#define GFN_SOURCE_DIR "."
#endif

#define FEATURES 64 /* inputs per row */
#define CLASSES 10  /* probabilities per row */
#define INFLIGHT 64 /* single-row invocations in flight */
#define BATCH 64    /* rows per batched invocation */
#define MAX_ERR 1e-5
#define MAX_SAMPLES ((size_t)1 << 20) /* latencies kept per repeat */
#define MIN_CALLS 20                  /* fewest per timed repeat */
#define WARM_SECONDS 0.2              /* untimed run of each case */

typedef struct dg {
	bcuda *b;                    /* the run */
	gfn_engine *e;               /* its warm engine */
	gfn_function fn;             /* the model function */
	float *x;                    /* fixture inputs, n rows */
	float *ref;                  /* reference probabilities, n rows */
	size_t n;                    /* fixture rows */
	gfn_object single[INFLIGHT]; /* [1, 64]: rows 0..63 */
	gfn_object batch;            /* [64, 64]: rows 0..63 */
	int nobj;                    /* objects made (single, then batch) */
	double *us;                  /* latency samples of one repeat */
	double err;                  /* largest |gfn - ref| seen */
} dg;

/* ---- fixtures and objects ------------------------------------------------------- */

/* Read a whole file of floats; *n is how many. NULL with a message. */
static float *read_f32(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	float *v = NULL;
	long len;

	if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 &&
	    len % 4 == 0 && fseek(f, 0, SEEK_SET) == 0) {
		*n = (size_t)len / 4;
		v = malloc((size_t)len);
		if (v && fread(v, 4, *n, f) != *n) {
			free(v);
			v = NULL;
		}
	}
	if (f)
		fclose(f);
	if (!v)
		fprintf(stderr, "digits: cannot read %s\n", path);
	return v;
}

static int load_fixtures(dg *d, const char *dir)
{
	char path[4096];
	size_t nx = 0, nr = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/test_x.f32", dir) <
	    sizeof(path))
		d->x = read_f32(path, &nx);
	if ((size_t)snprintf(path, sizeof(path), "%s/ref_proba.f32", dir) <
	    sizeof(path))
		d->ref = read_f32(path, &nr);
	if (!d->x || !d->ref) {
		fprintf(stderr, "digits: no fixtures under %s\n", dir);
		return -1;
	}
	d->n = nx / FEATURES;
	if (nx % FEATURES || d->n < BATCH || nr != d->n * CLASSES) {
		fprintf(stderr,
		        "digits: %zu inputs and %zu references do not "
		        "make rows of %d and %d\n",
		        nx, nr, FEATURES, CLASSES);
		return -1;
	}
	return 0;
}

static void drop(gfn_engine *e, gfn_object o)
{
	(void)gfn_object_release(e, o);
	(void)gfn_object_delete(e, o);
}

/* A sealed [rows, 64] object of fixture rows row0, row0+1, ... (mod n). */
static gfn_status make_rows(dg *d, size_t row0, size_t rows, gfn_object *out)
{
	int64_t shape[2] = {(int64_t)rows, FEATURES};
	size_t rb = FEATURES * sizeof(float);
	gfn_status s = gfn_object_create(d->e, GFN_F32, 2, shape, out);

	for (size_t i = 0; s == GFN_OK && i < rows; i++)
		s = gfn_object_write(d->e, *out, i * rb,
		                     d->x + ((row0 + i) % d->n) * FEATURES, rb);
	if (s == GFN_OK)
		s = gfn_object_seal(d->e, *out);
	if (s != GFN_OK)
		bcuda_api_error("digits: an input object", s);
	return s;
}

static gfn_status invoke(dg *d, const gfn_object *in, gfn_future *f)
{
	gfn_invocation inv = {.fn = d->fn,
	                      .n_inputs = 1,
	                      .inputs = in,
	                      .devices = d->b->mask};
	gfn_status s = gfn_invoke(d->e, &inv, f);

	if (s != GFN_OK)
		bcuda_api_error("digits: gfn_invoke", s);
	return s;
}

/* ---- checking against the reference --------------------------------------------- */

/* Compare rows [row0, row0+rows) of a view's probabilities with ref. */
static int compare(dg *d, const float *p, size_t row0, size_t rows)
{
	for (size_t i = 0; i < rows * CLASSES; i++) {
		size_t row = (row0 + i / CLASSES) % d->n;
		float want = d->ref[row * CLASSES + i % CLASSES];
		double err = fabs((double)p[i] - want);

		if (!(err <= MAX_ERR)) { /* NaN fails too */
			fprintf(stderr,
			        "digits: MISMATCH on CUDA: row %zu class %zu: "
			        "gfn %.9g, reference %.9g (|diff| %.3g > "
			        "%.0e)\n",
			        row, i % CLASSES, p[i], want, err, MAX_ERR);
			return -1;
		}
		if (err > d->err)
			d->err = err;
	}
	return 0;
}

/* Wait for f (rows row0.., as its input), check its output, release it. */
static int finish_checked(dg *d, gfn_future f, size_t row0, size_t rows)
{
	gfn_status s = gfn_future_wait(d->e, f, -1);
	gfn_object out;
	gfn_object_view v;
	size_t nout = 0;
	int rc = -1;

	if (s == GFN_OK)
		s = gfn_future_outputs(d->e, f, &out, 1, &nout);
	(void)gfn_future_release(d->e, f);
	if (s != GFN_OK) {
		bcuda_api_error("digits: invocation", s);
		return -1;
	}
	s = gfn_object_get(d->e, out, &v);
	if (s == GFN_OK) {
		if (v.dtype == GFN_F32 &&
		    v.size == rows * CLASSES * sizeof(float))
			rc = compare(d, v.data, row0, rows);
		else
			fprintf(stderr,
			        "digits: output of %zu bytes, "
			        "expected %zu\n",
			        v.size, rows * CLASSES * sizeof(float));
		(void)gfn_object_release(d->e, out);
	} else {
		bcuda_api_error("digits: gfn_object_get", s);
	}
	drop(d->e, out);
	return rc;
}

/* Rows [r0, r0+k) as k single-row invocations in flight at once. */
static int check_singles(dg *d, size_t r0, size_t k)
{
	gfn_object in[INFLIGHT];
	gfn_future f[INFLIGHT];
	size_t made = 0, sent = 0;
	int rc = 0;

	while (made < k && make_rows(d, r0 + made, 1, &in[made]) == GFN_OK)
		made++;
	while (sent < made && invoke(d, &in[sent], &f[sent]) == GFN_OK)
		sent++;
	if (sent < k)
		rc = -1;
	for (size_t i = 0; i < sent; i++)
		if (finish_checked(d, f[i], r0 + i, 1) < 0)
			rc = -1;
	for (size_t i = 0; i < made; i++)
		drop(d->e, in[i]);
	return rc;
}

static int check_batch(dg *d, size_t r0)
{
	gfn_object in;
	gfn_future f;
	int rc = -1;

	if (make_rows(d, r0, BATCH, &in) != GFN_OK)
		return -1;
	if (invoke(d, &in, &f) == GFN_OK)
		rc = finish_checked(d, f, r0, BATCH);
	drop(d->e, in);
	return rc;
}

/* Every fixture row, both ways; fails loudly on the first mismatch. */
static int verify(dg *d, const char *when)
{
	size_t r0;

	d->err = 0;
	for (r0 = 0; r0 < d->n; r0 += INFLIGHT)
		if (check_singles(d, r0,
		                  d->n - r0 < INFLIGHT ? d->n - r0 : INFLIGHT) <
		    0)
			goto fail;
	for (r0 = 0; r0 < d->n; r0 += BATCH)
		if (check_batch(d, r0) < 0)
			goto fail;
	fprintf(d->b->h,
	        "  digits %s: %zu rows (single rows 64 in flight, and "
	        "batches of 64) match ref_proba.f32, max |diff| %.2g\n",
	        when, d->n, d->err);
	return 0;
fail:
	fprintf(stderr,
	        "digits: results on CUDA do NOT match the "
	        "reference (%s)\n",
	        when);
	return -1;
}

/* ---- timed cases ------------------------------------------------------------------ */

static int seconds_left(uint64_t t0, double seconds)
{
	return (double)(bench_now_ns() - t0) / 1e9 < seconds;
}

/* invoke + wait + release of `in` (rows each) for about `seconds`:
   rows/s in *rate, latencies in d->us[0..*n-1]. */
static int run_sync(dg *d, const gfn_object *in, size_t rows, double seconds,
                    double *rate, size_t *n)
{
	uint64_t t0 = bench_now_ns(), calls = 0;

	*n = 0;
	while (calls < MIN_CALLS || seconds_left(t0, seconds)) {
		uint64_t t1 = bench_now_ns();
		gfn_future f;
		gfn_status s;

		if (invoke(d, in, &f) != GFN_OK)
			return -1;
		s = gfn_future_wait(d->e, f, -1);
		(void)gfn_future_release(d->e, f);
		if (s != GFN_OK) {
			bcuda_api_error("digits: invocation", s);
			return -1;
		}
		if (*n < MAX_SAMPLES)
			d->us[(*n)++] = (double)(bench_now_ns() - t1) / 1e3;
		calls++;
	}
	*rate = (double)(calls * rows) / ((double)(bench_now_ns() - t0) / 1e9);
	return 0;
}

/* Wait for slot i's invocation and release it; latency into d->us. */
static int reap_slot(dg *d, gfn_future f, uint64_t t_sub, size_t *n)
{
	gfn_status s = gfn_future_wait(d->e, f, -1);

	(void)gfn_future_release(d->e, f);
	if (s != GFN_OK) {
		bcuda_api_error("digits: invocation", s);
		return -1;
	}
	if (*n < MAX_SAMPLES)
		d->us[(*n)++] = (double)(bench_now_ns() - t_sub) / 1e3;
	return 0;
}

/* Submit slot i's single-row invocation; 0 or -1. */
static int submit_slot(dg *d, size_t i, gfn_future *f, uint64_t *t_sub,
                       int *busy)
{
	t_sub[i] = bench_now_ns();
	if (invoke(d, &d->single[i], &f[i]) != GFN_OK)
		return -1;
	busy[i] = 1;
	return 0;
}

/* Single-row invocations, INFLIGHT at a time, for about `seconds`: each
   slot in turn is waited for and submitted again. */
static int run_inflight(dg *d, double seconds, double *rate, size_t *n)
{
	gfn_future f[INFLIGHT];
	uint64_t t_sub[INFLIGHT], t0 = bench_now_ns(), done = 0;
	int busy[INFLIGHT] = {0};
	size_t i;
	int rc = 0;

	*n = 0;
	for (i = 0; i < INFLIGHT && rc == 0; i++)
		rc = submit_slot(d, i, f, t_sub, busy);
	for (i = 0; rc == 0 && seconds_left(t0, seconds);
	     i = (i + 1) % INFLIGHT) {
		busy[i] = 0;
		if (reap_slot(d, f[i], t_sub[i], n) < 0) {
			rc = -1;
			break;
		}
		done++;
		rc = submit_slot(d, i, f, t_sub, busy);
	}
	/* Drain, the oldest (slot i) first. */
	for (size_t k = 0; k < INFLIGHT; k++) {
		size_t s = (i + k) % INFLIGHT;

		if (!busy[s])
			continue;
		busy[s] = 0;
		if (reap_slot(d, f[s], t_sub[s], n) < 0)
			rc = -1;
		else
			done++;
	}
	*rate = (double)done / ((double)(bench_now_ns() - t0) / 1e9);
	return rc;
}

typedef struct dg_runs {
	bcuda_rep sync1, x64, b64; /* per-repeat rates and percentiles */
} dg_runs;

static int dg_repeats(dg *d, dg_runs *r)
{
	bcuda *b = d->b;
	size_t n;

	for (int i = 0; i < b->repeats; i++) {
		if (run_sync(d, &d->single[0], 1, b->seconds, &r->sync1.val[i],
		             &n) < 0)
			return -1;
		bcuda_rep_store(&r->sync1, i, d->us, n);
		if (run_inflight(d, b->seconds, &r->x64.val[i], &n) < 0)
			return -1;
		bcuda_rep_store(&r->x64, i, d->us, n);
		if (run_sync(d, &d->batch, BATCH, b->seconds, &r->b64.val[i],
		             &n) < 0)
			return -1;
		bcuda_rep_store(&r->b64, i, d->us, n);
		fprintf(b->h,
		        "  repeat %d/%d: b1 one at a time %.0f inf/s, b1 x64 "
		        "in flight %.0f inf/s (p50 %.1f us), b64 %.0f inf/s "
		        "(p50 %.1f us)\n",
		        i + 1, b->repeats, r->sync1.val[i], r->x64.val[i],
		        r->x64.p50[i], r->b64.val[i], r->b64.p50[i]);
	}
	return 0;
}

/* The untimed run of every case: the engine batches, pools and records
   its graphs (on a shape's second sighting) before the first check. */
static int dg_warm(dg *d)
{
	double rate;
	size_t n;

	if (run_sync(d, &d->single[0], 1, WARM_SECONDS, &rate, &n) < 0 ||
	    run_inflight(d, WARM_SECONDS, &rate, &n) < 0 ||
	    run_sync(d, &d->batch, BATCH, WARM_SECONDS, &rate, &n) < 0)
		return -1;
	return 0;
}

/* ---- results ------------------------------------------------------------------------ */

static void add_rate(bcuda *b, const char *case_name, bcuda_rep *r, double base)
{
	bench_result *res =
	        bench_report_add(b->rep, case_name, "throughput", "inf/s");

	if (!res)
		return;
	res->value = bench_median(r->val, (size_t)b->repeats);
	res->lo = r->val[0];
	res->hi = r->val[b->repeats - 1];
	res->baseline_name = "b1_sync";
	res->baseline_value = base;
	res->ratio = res->value / base;
}

static void dg_results(dg *d, dg_runs *r)
{
	bcuda *b = d->b;
	double base = bench_median(r->sync1.val, (size_t)b->repeats);
	bench_result *res;

	add_rate(b, "digits_b1_x64", &r->x64, base);
	bcuda_add_latency(b, "digits_b1_x64", "latency", &r->x64, b->repeats);
	add_rate(b, "digits_b64", &r->b64, base);
	bcuda_add_latency(b, "digits_b64", "latency", &r->b64, b->repeats);
	res = bench_report_add(b->rep, "digits_graphs", "replays", "count");
	if (res) {
		res->value = (double)b->replays;
		res->goal = "> 0 (graphs replayed)";
		res->goal_met = b->replays > 0;
	}
}

/* Graph counts of the model on the device; 0 or -1. */
static int graph_counts(dg *d, uint64_t *graphs, uint64_t *replays)
{
	gfn_model_device_info info;
	gfn_status s = gfn_model_get_device_info(d->e, d->fn, d->b->dev, &info);

	if (s != GFN_OK) {
		bcuda_api_error("gfn_model_get_device_info", s);
		return -1;
	}
	*graphs = info.graphs;
	*replays = info.replays;
	return 0;
}

static int dg_timed(dg *d, dg_runs *r)
{
	uint64_t g0, r0, g1, r1;

	if (graph_counts(d, &g0, &r0) < 0 || dg_repeats(d, r) < 0 ||
	    graph_counts(d, &g1, &r1) < 0)
		return -1;
	d->b->graphs = g1;
	d->b->replays = r1 - r0;
	fprintf(d->b->h,
	        "  digits CUDA graphs: %llu recorded in all (+%llu while "
	        "timed), %llu replays while timed%s\n",
	        (unsigned long long)g1, (unsigned long long)(g1 - g0),
	        (unsigned long long)(r1 - r0),
	        r1 > r0 ? "" : " (NONE: every launch went one by one)");
	return 0;
}

/* ---- set-up and the case ------------------------------------------------------------ */

static int dg_up(dg *d)
{
	const char *root = d->b->opts->models ? d->b->opts->models
	                                      : GFN_SOURCE_DIR "/tests/models";
	char dir[4096];
	gfn_status s;

	snprintf(dir, sizeof(dir), "%s/digits", root);
	if (load_fixtures(d, dir) < 0)
		return -1;
	s = gfn_function_register_model(d->e, dir, "bench.cuda.digits", &d->fn);
	if (s != GFN_OK) {
		bcuda_api_error("gfn_function_register_model", s);
		return -1;
	}
	for (; d->nobj < INFLIGHT; d->nobj++)
		if (make_rows(d, (size_t)d->nobj, 1, &d->single[d->nobj]) !=
		    GFN_OK)
			return -1;
	if (make_rows(d, 0, BATCH, &d->batch) != GFN_OK)
		return -1;
	d->nobj++;
	d->us = malloc(MAX_SAMPLES * sizeof(double));
	if (!d->us) {
		fprintf(stderr, "digits: out of memory\n");
		return -1;
	}
	return 0;
}

static void dg_down(dg *d)
{
	for (int i = 0; i < d->nobj && i < INFLIGHT; i++)
		drop(d->e, d->single[i]);
	if (d->nobj > INFLIGHT)
		drop(d->e, d->batch);
	if (d->fn.id)
		(void)gfn_model_unregister(d->e, d->fn);
	free(d->us);
	free(d->x);
	free(d->ref);
}

int bcuda_model(bcuda *b)
{
	dg d = {.b = b, .e = b->e};
	dg_runs r = {0};
	int rc = -1;

	fprintf(b->h,
	        "digits MLP on CUDA: batch 1 with %d in flight, batch "
	        "%d, vs batch 1 one at a time\n",
	        INFLIGHT, BATCH);
	if (bcuda_rep_alloc(&r.sync1, b->repeats) == 0 &&
	    bcuda_rep_alloc(&r.x64, b->repeats) == 0 &&
	    bcuda_rep_alloc(&r.b64, b->repeats) == 0 && dg_up(&d) == 0 &&
	    dg_warm(&d) == 0 && verify(&d, "before timing") == 0 &&
	    dg_timed(&d, &r) == 0 && verify(&d, "after timing") == 0) {
		dg_results(&d, &r);
		rc = 0;
	}
	dg_down(&d);
	bcuda_rep_free(&r.sync1);
	bcuda_rep_free(&r.x64);
	bcuda_rep_free(&r.b64);
	return rc;
}
