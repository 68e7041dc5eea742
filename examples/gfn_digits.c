/*
 * gfn_digits.c - gfn-digits: the digits classifier served by gfn.
 *
 * Registers the MLP that scikit-learn trained (tests/models/digits/, made
 * by scripts/export_digits.py) as a model function, then classifies the
 * held-out split on every device of the engine that can run it, one
 * invocation per image as separate clients would send them, with a window
 * of invocations in flight. Per device it prints the accuracy (checked
 * against scikit-learn's), the throughput and the latency percentiles.
 *
 *   gfn-digits [--model DIR] [--passes N] [--inflight N] [--quiet]
 *
 * Exit status: 0 when every device matched scikit-learn, 1 otherwise, 2
 * bad usage.
 */
#include <gfn/gfn.h>
#include <gfn/gfn_model.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef GFN_DIGITS_DIR
#define GFN_DIGITS_DIR "tests/models/digits"
#endif

#define NFEAT 64     /* 8 x 8 pixels */
#define NCLASS 10    /* digits */
#define MAX_ERR 1e-5 /* allowed |gfn - scikit-learn| per probability */
#define MAX_INFLIGHT 1024

typedef struct opts {
	const char *dir;   /* model directory */
	unsigned passes;   /* times the split is classified per device */
	unsigned inflight; /* invocations in flight at once */
	int quiet;         /* no progress bar */
} opts;

/* The held-out split and scikit-learn's answers for it. */
typedef struct split {
	size_t n;        /* images */
	float *x;        /* n x NFEAT */
	int32_t *y;      /* n labels */
	float *ref;      /* n x NCLASS: predict_proba */
	gfn_object *obj; /* one sealed input object per image */
} split;

/* What one device's run measured. */
typedef struct result {
	size_t correct;   /* right answers in the first pass */
	double max_err;   /* worst |gfn - scikit-learn| */
	double secs;      /* wall time of all passes */
	uint64_t *lat_ns; /* per invocation */
	size_t n_lat;     /* invocations */
} result;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- fixtures ------------------------------------------------------------ */

static void *slurp(const char *dir, const char *name, size_t *bytes)
{
	char path[1024];
	FILE *fp;
	long len;
	void *p = NULL;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	fp = fopen(path, "rb");
	if (!fp) {
		fprintf(stderr, "gfn-digits: cannot open %s\n", path);
		return NULL;
	}
	if (fseek(fp, 0, SEEK_END) == 0 && (len = ftell(fp)) > 0 &&
	    fseek(fp, 0, SEEK_SET) == 0 && (p = malloc((size_t)len)) &&
	    fread(p, 1, (size_t)len, fp) == (size_t)len)
		*bytes = (size_t)len;
	else {
		fprintf(stderr, "gfn-digits: cannot read %s\n", path);
		free(p);
		p = NULL;
	}
	fclose(fp);
	return p;
}

static int load_split(const char *dir, split *s)
{
	size_t bx = 0, by = 0, br = 0;

	s->x = slurp(dir, "test_x.f32", &bx);
	s->y = slurp(dir, "test_y.i32", &by);
	s->ref = slurp(dir, "ref_proba.f32", &br);
	s->n = by / sizeof(int32_t);
	if (!s->x || !s->y || !s->ref || s->n == 0 ||
	    bx != s->n * NFEAT * sizeof(float) ||
	    br != s->n * NCLASS * sizeof(float)) {
		fprintf(stderr, "gfn-digits: the fixtures in %s do not match\n",
		        dir);
		return -1;
	}
	return 0;
}

/* One sealed [1, 64] object per image, made once and shared by all runs. */
static gfn_status store_split(gfn_engine *e, split *s)
{
	int64_t shape[2] = {1, NFEAT};
	gfn_status st = GFN_OK;

	s->obj = calloc(s->n, sizeof *s->obj);
	if (!s->obj)
		return GFN_ENOMEM;
	for (size_t i = 0; i < s->n && st == GFN_OK; i++) {
		st = gfn_object_create(e, GFN_F32, 2, shape, &s->obj[i]);
		if (st == GFN_OK)
			st = gfn_object_write(e, s->obj[i], 0, s->x + i * NFEAT,
			                      NFEAT * sizeof(float));
		if (st == GFN_OK)
			st = gfn_object_seal(e, s->obj[i]);
	}
	return st;
}

/* ---- progress ------------------------------------------------------------ */

static void progress(const char *dev, size_t done, size_t total, int tty)
{
	unsigned pct = (unsigned)(100 * done / (total ? total : 1));
	char bar[41];

	if (!tty) {
		if (done == total)
			fprintf(stderr, "%s: %zu/%zu done\n", dev, done, total);
		return;
	}
	for (unsigned i = 0; i < 40; i++)
		bar[i] = i < pct * 40 / 100 ? '#' : '.';
	bar[40] = '\0';
	fprintf(stderr, "\r%-12s [%s] %3u%% %zu/%zu", dev, bar, pct, done,
	        total);
	if (done == total)
		fputc('\n', stderr);
}

/* ---- one device ---------------------------------------------------------- */

/* The answer to image i: its accuracy and error against scikit-learn. */
static gfn_status check(gfn_engine *e, gfn_future f, const split *s, size_t i,
                        result *r)
{
	gfn_object out;
	gfn_object_view v;
	size_t n, best = 0;
	gfn_status st = gfn_future_outputs(e, f, &out, 1, &n);
	const float *p;

	if (st != GFN_OK || (st = gfn_object_get(e, out, &v)) != GFN_OK)
		return st;
	p = v.data;
	for (size_t j = 0; j < NCLASS; j++) {
		double d = fabs((double)p[j] - s->ref[i * NCLASS + j]);

		r->max_err = d > r->max_err ? d : r->max_err;
		best = p[j] > p[best] ? j : best;
	}
	r->correct += (int32_t)best == s->y[i];
	gfn_object_release(e, out);
	return gfn_object_release(e, out);
}

/* Wait for the invocation in slot k, record it, give it back. */
static gfn_status finish(gfn_engine *e, gfn_future f, uint64_t t0,
                         const split *s, size_t i, int first, result *r)
{
	gfn_status st = gfn_future_wait(e, f, -1);

	r->lat_ns[r->n_lat++] = now_ns() - t0;
	if (st == GFN_OK && first)
		st = check(e, f, s, i, r);
	gfn_future_release(e, f);
	return st;
}

static gfn_status run_device(gfn_engine *e, gfn_function fn, size_t dev,
                             const char *name, const split *s, const opts *o,
                             result *r)
{
	size_t total = s->n * o->passes, done = 0, k;
	gfn_future win[MAX_INFLIGHT];
	uint64_t t0[MAX_INFLIGHT], start = now_ns();
	size_t img[MAX_INFLIGHT];
	gfn_invocation inv = {.fn = fn, .n_inputs = 1, .devices = 1ull << dev};
	gfn_status st = GFN_OK;
	int tty = !o->quiet && isatty(2);

	for (size_t q = 0; q < total + o->inflight && st == GFN_OK; q++) {
		k = q % o->inflight;
		if (q >= o->inflight) { /* the oldest of the window ends */
			st = finish(e, win[k], t0[k], s, img[k],
			            q - o->inflight < s->n, r);
			if (!o->quiet && (++done % 256 == 0 || done == total))
				progress(name, done, total, tty);
		}
		if (q >= total || st != GFN_OK)
			continue;
		img[k] = q % s->n;
		inv.inputs = &s->obj[img[k]];
		t0[k] = now_ns();
		st = gfn_invoke(e, &inv, &win[k]);
		if (st != GFN_OK) /* nothing was queued in slot k */
			total = q;
	}
	r->secs = (double)(now_ns() - start) / 1e9;
	return st;
}

/* ---- report -------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static double pct_us(const result *r, double p)
{
	size_t i = (size_t)(p / 100.0 * (double)(r->n_lat - 1) + 0.5);

	return (double)r->lat_ns[i] / 1e3;
}

static int report(const char *name, const split *s, size_t ref_correct,
                  result *r)
{
	int ok = r->correct == ref_correct && r->max_err <= MAX_ERR;

	qsort(r->lat_ns, r->n_lat, sizeof *r->lat_ns, cmp_u64);
	printf("%-12s accuracy %.4f (scikit-learn %.4f), max |p - p_ref| "
	       "%.2g  %s\n",
	       name, (double)r->correct / (double)s->n,
	       (double)ref_correct / (double)s->n, r->max_err,
	       ok ? "ok" : "MISMATCH");
	printf("%-12s %zu invocations in %.3f s: %.0f inferences/s; latency "
	       "p50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us\n",
	       "", r->n_lat, r->secs, (double)r->n_lat / r->secs, pct_us(r, 50),
	       pct_us(r, 90), pct_us(r, 99), pct_us(r, 100));
	return ok;
}

static size_t ref_accuracy(const split *s)
{
	size_t correct = 0;

	for (size_t i = 0; i < s->n; i++) {
		const float *p = s->ref + i * NCLASS;
		size_t best = 0;

		for (size_t j = 1; j < NCLASS; j++)
			best = p[j] > p[best] ? j : best;
		correct += (int32_t)best == s->y[i];
	}
	return correct;
}

/* ---- main ---------------------------------------------------------------- */

static int usage(void)
{
	fprintf(stderr,
	        "usage: gfn-digits [--model DIR] [--passes N] [--inflight N] "
	        "[--quiet]\n"
	        "  --model DIR   model directory (default %s)\n"
	        "  --passes N    times the held-out split is classified per "
	        "device (default 20)\n"
	        "  --inflight N  invocations in flight (default 16, 1..%d)\n"
	        "  --quiet       no progress bar\n",
	        GFN_DIGITS_DIR, MAX_INFLIGHT);
	return 2;
}

static int parse_args(int argc, char **argv, opts *o)
{
	*o = (opts){GFN_DIGITS_DIR, 20, 16, 0};
	for (int i = 1; i < argc; i++) {
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;
		char *end = NULL;
		unsigned long v = next ? strtoul(next, &end, 10) : 0;
		int num = next && end && *end == '\0' && v > 0;

		if (!strcmp(argv[i], "--quiet"))
			o->quiet = 1;
		else if (!strcmp(argv[i], "--model") && next)
			o->dir = argv[++i];
		else if (!strcmp(argv[i], "--passes") && num && v <= 100000) {
			o->passes = (unsigned)v;
			i++;
		} else if (!strcmp(argv[i], "--inflight") && num &&
		           v <= MAX_INFLIGHT) {
			o->inflight = (unsigned)v;
			i++;
		} else
			return -1;
	}
	return 0;
}

#define BATCH_TRIES 5 /* timed batched invocations; the best is shown */

/* One invocation, timed from submission to its end; *f on GFN_OK. */
static gfn_status timed_call(gfn_engine *e, const gfn_invocation *inv,
                             gfn_future *f, uint64_t *ns)
{
	uint64_t t0 = now_ns();
	gfn_status st = gfn_invoke(e, inv, f);

	if (st != GFN_OK)
		return st;
	st = gfn_future_wait(e, *f, -1);
	*ns = now_ns() - t0;
	if (st != GFN_OK)
		gfn_future_release(e, *f);
	return st;
}

/* Worst |p - p_ref| of a batched answer; INFINITY when unreadable. */
static double batch_error(gfn_engine *e, gfn_future f, const split *s)
{
	gfn_object out;
	gfn_object_view v;
	double worst = 0.0;
	size_t n;

	if (gfn_future_outputs(e, f, &out, 1, &n) != GFN_OK)
		return INFINITY;
	if (gfn_object_get(e, out, &v) != GFN_OK) {
		gfn_object_release(e, out);
		return INFINITY;
	}
	for (size_t i = 0; i < s->n * NCLASS; i++)
		worst = fmax(worst, fabs((double)((const float *)v.data)[i] -
		                         s->ref[i]));
	gfn_object_release(e, out); /* the get */
	gfn_object_release(e, out); /* the output */
	return worst;
}

/*
 * The whole split as one invocation of n rows on device d: what dynamic
 * batching would turn the separate calls into. Prints the best of a few
 * tries; 1 when every row matched scikit-learn each time, 0 otherwise.
 */
static int one_batch(gfn_engine *e, gfn_function fn, size_t d, const char *name,
                     const split *s)
{
	int64_t shape[2] = {(int64_t)s->n, NFEAT};
	gfn_invocation inv = {.fn = fn, .n_inputs = 1, .devices = 1ull << d};
	uint64_t ns, best = UINT64_MAX;
	double err = 0.0;
	gfn_object in;
	gfn_future f;

	if (gfn_object_create(e, GFN_F32, 2, shape, &in) != GFN_OK)
		return 0;
	if (gfn_object_write(e, in, 0, s->x, s->n * NFEAT * 4) == GFN_OK &&
	    gfn_object_seal(e, in) == GFN_OK) {
		inv.inputs = &in;
		for (int k = 0; k < BATCH_TRIES; k++) {
			if (timed_call(e, &inv, &f, &ns) != GFN_OK) {
				err = INFINITY;
				break;
			}
			err = fmax(err, batch_error(e, f, s));
			gfn_future_release(e, f);
			best = ns < best ? ns : best;
		}
	}
	gfn_object_release(e, in);
	if (best == UINT64_MAX)
		return 0;
	printf("%-12s one batched invocation of all %zu rows: %.1f us "
	       "(%.0f inferences/s), max |p - p_ref| %.2g\n",
	       name, s->n, (double)best / 1e3,
	       (double)s->n * 1e9 / (double)best, err);
	return err <= MAX_ERR;
}

/* Classify on device d; 1 when it matched, 0 when not, -1 on error. */
static int one_device(gfn_engine *e, gfn_function fn, size_t d, const split *s,
                      const opts *o, size_t ref_correct)
{
	gfn_device_info info;
	gfn_model_device_info mi;
	result r = {0};
	gfn_status st;
	int ok;

	if (gfn_device_get_info(e, d, &info) != GFN_OK)
		return -1;
	r.lat_ns = malloc(s->n * o->passes * sizeof *r.lat_ns);
	if (!r.lat_ns)
		return -1;
	st = run_device(e, fn, d, info.name, s, o, &r);
	if (st == GFN_ENODEV && r.n_lat == 0) {
		printf("%-12s skipped: the model cannot run there (no "
		       "GEMM for this backend)\n",
		       info.name);
		free(r.lat_ns);
		return 1;
	}
	if (st != GFN_OK) {
		fprintf(stderr, "gfn-digits: %s: %s: %s\n", info.name,
		        gfn_status_name(st), gfn_error_detail());
		free(r.lat_ns);
		return -1;
	}
	ok = report(info.name, s, ref_correct, &r) &&
	     one_batch(e, fn, d, info.name, s) == 1;
	if (gfn_model_get_device_info(e, fn, d, &mi) == GFN_OK)
		printf("%-12s weights %s there: %zu bytes, uploaded %llu "
		       "time(s), evicted %llu; CUDA graphs %llu, replays "
		       "%llu\n",
		       "", mi.warm ? "warm" : "cold", mi.bytes,
		       (unsigned long long)mi.uploads,
		       (unsigned long long)mi.evictions,
		       (unsigned long long)mi.graphs,
		       (unsigned long long)mi.replays);
	free(r.lat_ns);
	return ok;
}

static int run(gfn_engine *e, const opts *o, split *s)
{
	size_t ndev = 0, ref_correct = ref_accuracy(s);
	gfn_function fn;
	gfn_status st;
	int all_ok = 1;

	st = gfn_function_register_model(e, o->dir, "digits", &fn);
	if (st == GFN_OK)
		st = store_split(e, s);
	if (st == GFN_OK)
		st = gfn_device_count(e, &ndev);
	if (st != GFN_OK) {
		fprintf(stderr, "gfn-digits: %s: %s\n", gfn_status_name(st),
		        gfn_error_detail());
		return 1;
	}
	printf("gfn-digits: scikit-learn MLP, %zu held-out images, %u "
	       "passes, %u in flight, %zu devices\n",
	       s->n, o->passes, o->inflight, ndev);
	for (size_t d = 0; d < ndev && d < 64; d++)
		all_ok &= one_device(e, fn, d, s, o, ref_correct) == 1;
	gfn_model_unregister(e, fn); /* every invocation has ended */
	return all_ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	split s = {0};
	opts o;
	gfn_config cfg;
	gfn_engine *e = NULL;
	gfn_status st;
	int rc = 1;

	if (parse_args(argc, argv, &o) != 0)
		return usage();
	if (load_split(o.dir, &s) != 0)
		goto out;
	gfn_config_init(&cfg);
	cfg.kcache_dir = "";
	st = gfn_engine_create(&cfg, &e);
	if (st != GFN_OK) {
		fprintf(stderr, "gfn-digits: engine: %s: %s\n",
		        gfn_status_name(st), gfn_error_detail());
		goto out;
	}
	rc = run(e, &o, &s);
	gfn_engine_destroy(e); /* frees the stored images too */
out:
	free(s.x);
	free(s.y);
	free(s.ref);
	free(s.obj);
	return rc;
}
