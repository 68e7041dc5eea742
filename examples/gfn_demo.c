/*
 * gfn_demo.c - gfn-demo: a small inference function served by gfn.
 *
 * Registers y = softmax(relu(x . W + b)) as a CPU function, stores W and b
 * once as sealed objects that every invocation shares, then calls it from
 * several client threads, each with its own input batches. Every result is
 * checked against a plain C reference; the run prints throughput and
 * latency percentiles.
 *
 *   gfn-demo [--threads N] [--count N] [--quiet]
 *
 * Exit status: 0 when every result was right, 1 otherwise, 2 bad usage.
 */
#include "dense_layer.h"

#include <gfn/gfn.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEMO_B 8                        /* rows per input batch */
#define DEMO_K 64                       /* input features */
#define DEMO_N 10                       /* output classes */
#define DEMO_SEED 0x67666e2d64656d6full /* "gfn-demo" */
#define MAX_ABS_ERR 1e-5                /* allowed |kernel - reference| */
#define BUSY_GIVE_UP_NS 10000000000ull  /* 10 s of queue-full in a row */
#define MAX_THREADS 256
#define MAX_COUNT 10000000ul

_Static_assert(DEMO_N <= DENSE_REF_MAX_N, "the reference cannot check N");

typedef struct demo_opts {
	unsigned threads;    /* client threads */
	unsigned long count; /* invocations per thread */
	int quiet;           /* no banner, no progress */
} demo_opts;

/* What every client thread shares: the engine, function and weights. */
typedef struct model {
	gfn_engine *e;            /* the engine */
	gfn_function fn;          /* the registered dense layer */
	gfn_object w_obj;         /* W, sealed once, used by every call */
	gfn_object b_obj;         /* b, likewise */
	float w[DEMO_K * DEMO_N]; /* host copy of W for the reference */
	float b[DEMO_N];          /* host copy of b for the reference */
} model;

/* Progress shared between the client threads and main. */
typedef struct progress {
	_Atomic uint64_t done; /* invocations finished and checked */
	_Atomic int running;   /* client threads not yet finished */
	_Atomic int stop;      /* a thread failed: the others stop too */
} progress;

typedef struct worker {
	pthread_t tid;            /* the thread */
	unsigned index;           /* 0 .. threads-1 */
	const model *m;           /* shared model */
	progress *pr;             /* shared progress */
	unsigned long count;      /* invocations to make */
	uint64_t rng;             /* this thread's input PRNG state */
	double *lat_us;           /* round trip of each finished call */
	unsigned long n_done;     /* calls finished (right or wrong) */
	unsigned long n_wrong;    /* failed or over the error limit */
	unsigned long n_busy;     /* GFN_EBUSY answers retried */
	double max_err;           /* worst |kernel - reference| seen */
	int failed;               /* stopped early by an engine error */
	uint64_t end_ns;          /* when this thread finished */
	char msg[320];            /* first failure, for the report */
	float x[DEMO_B * DEMO_K]; /* the current input batch */
	float y[DEMO_B * DEMO_N]; /* its reference output */
} worker;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Keep the first failure message of a thread; later ones add nothing. */
static void note(worker *w, const char *what, gfn_status st)
{
	if (w->msg[0])
		return;
	snprintf(w->msg, sizeof(w->msg), "thread %u: %s: %s (%s) %s", w->index,
	         what, gfn_status_name(st), gfn_status_str(st),
	         gfn_error_detail());
}

/* An engine error this thread cannot go on after. */
static int fatal(worker *w, const char *what, gfn_status st)
{
	note(w, what, st);
	w->failed = 1;
	atomic_store(&w->pr->stop, 1);
	return -1;
}

/*
 * Give back our reference and remove the object: inputs and outputs are
 * used once, so keeping them cached would only make the store evict later.
 * Deleting after the release is safe either way; an object the store
 * already evicted answers ENOENT/ESTALE, which is fine here.
 */
static gfn_status drop_object(gfn_engine *e, gfn_object obj)
{
	gfn_status st = gfn_object_release(e, obj);

	if (st != GFN_OK)
		return st;
	st = gfn_object_delete(e, obj);
	if (st == GFN_ENOENT || st == GFN_ESTALE)
		st = GFN_OK;
	return st;
}

/* ---- set-up -------------------------------------------------------------- */

/* A sealed f32 object holding data; on success the caller owns one ref. */
static gfn_status put_f32(gfn_engine *e, int ndim, const int64_t *shape,
                          const float *data, size_t len, gfn_object *out)
{
	gfn_status st = gfn_object_create(e, GFN_F32, ndim, shape, out);

	if (st != GFN_OK)
		return st;
	st = gfn_object_write(e, *out, 0, data, len);
	if (st == GFN_OK)
		st = gfn_object_seal(e, *out);
	if (st != GFN_OK)
		gfn_object_release(e, *out);
	return st;
}

static gfn_status register_dense(model *m)
{
	static const gfn_tensor_spec in[3] = {
	        {"x", GFN_F32, 2, {GFN_DIM_VAR(0), GFN_DIM_VAR(1)}},
	        {"W", GFN_F32, 2, {GFN_DIM_VAR(1), GFN_DIM_VAR(2)}},
	        {"b", GFN_F32, 1, {GFN_DIM_VAR(2)}},
	};
	static const gfn_tensor_spec out[1] = {
	        {"y", GFN_F32, 2, {GFN_DIM_VAR(0), GFN_DIM_VAR(2)}},
	};
	gfn_function_desc d;

	memset(&d, 0, sizeof(d));
	d.name = "demo.dense_relu_softmax";
	d.n_inputs = 3;
	d.inputs = in;
	d.n_outputs = 1;
	d.outputs = out;
	d.cpu_fn = dense_layer_kernel;
	return gfn_function_register(m->e, &d, &m->fn);
}

/* Weights from a fixed seed, so every run computes the same model. */
static gfn_status store_weights(model *m)
{
	static const int64_t w_shape[2] = {DEMO_K, DEMO_N};
	static const int64_t b_shape[1] = {DEMO_N};
	uint64_t rng = DEMO_SEED;
	gfn_status st;

	/* Scale 1/sqrt(K) keeps the logits near 1: a softmax worth checking. */
	fill_uniform(m->w, DEMO_K * DEMO_N, 0.125f, &rng);
	fill_uniform(m->b, DEMO_N, 0.1f, &rng);
	st = put_f32(m->e, 2, w_shape, m->w, sizeof(m->w), &m->w_obj);
	if (st != GFN_OK)
		return st;
	st = put_f32(m->e, 1, b_shape, m->b, sizeof(m->b), &m->b_obj);
	if (st != GFN_OK) {
		drop_object(m->e, m->w_obj);
		m->w_obj = GFN_OBJECT_NONE;
	}
	return st;
}

static int model_up(model *m)
{
	gfn_config cfg;
	gfn_status st;
	const char *what = "gfn_engine_create";

	gfn_config_init(&cfg);
	/* The function has only a CPU implementation; other backends would
	   only cost start-up time. */
	cfg.backends = GFN_BACKEND_CPU;
	st = gfn_engine_create(&cfg, &m->e);
	if (st == GFN_OK) {
		what = "gfn_function_register";
		st = register_dense(m);
	}
	if (st == GFN_OK) {
		what = "storing the weights";
		st = store_weights(m);
	}
	if (st != GFN_OK) {
		fprintf(stderr, "gfn-demo: %s: %s (%s) %s\n", what,
		        gfn_status_name(st), gfn_status_str(st),
		        gfn_error_detail());
		return -1;
	}
	return 0;
}

/* ---- one invocation ------------------------------------------------------ */

/* A fresh sealed input batch, its values also kept in w->x. */
static int make_input(worker *w, gfn_object *x)
{
	static const int64_t shape[2] = {DEMO_B, DEMO_K};
	gfn_engine *e = w->m->e;
	gfn_status st;
	void *p;
	size_t size;

	st = gfn_object_create(e, GFN_F32, 2, shape, x);
	if (st != GFN_OK)
		return fatal(w, "gfn_object_create", st);
	fill_uniform(w->x, DEMO_B * DEMO_K, 1.0f, &w->rng);
	/* Map and fill in place: no copy inside gfn. */
	st = gfn_object_map(e, *x, &p, &size);
	if (st == GFN_OK && size != sizeof(w->x))
		st = GFN_ESHAPE;
	if (st == GFN_OK) {
		memcpy(p, w->x, sizeof(w->x));
		st = gfn_object_seal(e, *x);
	}
	if (st != GFN_OK) {
		drop_object(e, *x);
		return fatal(w, "filling the input object", st);
	}
	return 0;
}

/* Submit, retrying while the queue is full (back-pressure, not failure). */
static gfn_status submit(worker *w, gfn_object x, gfn_future *f)
{
	const model *m = w->m;
	gfn_object in[3] = {x, m->w_obj, m->b_obj};
	gfn_invocation inv;
	gfn_status st;
	uint64_t t0 = 0;

	memset(&inv, 0, sizeof(inv));
	inv.fn = m->fn;
	inv.n_inputs = 3;
	inv.inputs = in;
	while ((st = gfn_invoke(m->e, &inv, f)) == GFN_EBUSY) {
		w->n_busy++;
		if (t0 == 0)
			t0 = now_ns();
		else if (now_ns() - t0 > BUSY_GIVE_UP_NS)
			break;
		sched_yield();
	}
	return st;
}

/* Compare the output object with the reference in w->y. -1: engine error. */
static int check_output(worker *w, gfn_future f)
{
	gfn_engine *e = w->m->e;
	gfn_object y;
	gfn_object_view v;
	size_t n = 0;
	gfn_status st;
	double err = INFINITY;

	st = gfn_future_outputs(e, f, &y, 1, &n);
	if (st != GFN_OK || n != 1)
		return fatal(w, "gfn_future_outputs", st);
	st = gfn_object_get(e, y, &v);
	if (st != GFN_OK) {
		drop_object(e, y);
		return fatal(w, "gfn_object_get", st);
	}
	if (v.dtype == GFN_F32 && v.ndim == 2 && v.shape[0] == DEMO_B &&
	    v.shape[1] == DEMO_N && v.size == sizeof(w->y))
		err = max_abs_diff(v.data, w->y, DEMO_B * DEMO_N);
	/* Two references: the one from get and the one from outputs. */
	st = gfn_object_release(e, y);
	if (st == GFN_OK)
		st = drop_object(e, y);
	if (st != GFN_OK)
		return fatal(w, "releasing the output", st);
	if (err > w->max_err)
		w->max_err = err;
	if (!(err <= MAX_ABS_ERR))
		w->n_wrong++;
	return 0;
}

/* Run one batch through the engine and check it. -1: stop this thread. */
static int one_call(worker *w)
{
	gfn_engine *e = w->m->e;
	gfn_object x;
	gfn_future f;
	gfn_status st;
	uint64_t t0;
	int rc = 0;

	if (make_input(w, &x) < 0)
		return -1;
	dense_layer_reference(w->x, w->m->w, w->m->b, w->y, DEMO_B, DEMO_K,
	                      DEMO_N);
	t0 = now_ns();
	st = submit(w, x, &f);
	if (st != GFN_OK) {
		drop_object(e, x);
		return fatal(w, "gfn_invoke", st);
	}
	st = gfn_future_wait(e, f, -1);
	w->lat_us[w->n_done] = (double)(now_ns() - t0) / 1e3;
	if (st == GFN_OK) {
		rc = check_output(w, f);
	} else {
		/* A failed invocation fails alone: count it, go on. */
		note(w, "invocation", st);
		w->n_wrong++;
	}
	if ((st = gfn_future_release(e, f)) != GFN_OK && rc == 0)
		rc = fatal(w, "gfn_future_release", st);
	if ((st = drop_object(e, x)) != GFN_OK && rc == 0)
		rc = fatal(w, "releasing the input", st);
	w->n_done++;
	atomic_fetch_add(&w->pr->done, 1);
	return rc;
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	unsigned long i;

	for (i = 0; i < w->count && !atomic_load(&w->pr->stop); i++)
		if (one_call(w) < 0)
			break;
	w->end_ns = now_ns();
	atomic_fetch_sub(&w->pr->running, 1);
	return NULL;
}

/* ---- progress ------------------------------------------------------------ */

/* A bar redrawn in place on a terminal; a line per 10% for logs. */
static void show_progress(uint64_t done, uint64_t total, int tty,
                          unsigned *next_pct)
{
	unsigned pct = total ? (unsigned)(done * 100 / total) : 100;
	char bar[41];
	unsigned i;

	if (tty) {
		for (i = 0; i < 40; i++)
			bar[i] = i < pct * 40 / 100 ? '#' : '.';
		bar[40] = '\0';
		fprintf(stderr, "\r  [%s] %3u%%  %llu/%llu", bar, pct,
		        (unsigned long long)done, (unsigned long long)total);
		fflush(stderr);
		return;
	}
	if (pct < *next_pct)
		return;
	*next_pct = (pct / 10 + 1) * 10;
	fprintf(stderr, "progress: %llu/%llu (%u%%)\n",
	        (unsigned long long)done, (unsigned long long)total, pct);
}

/* Runs on main until every client thread has finished. */
static void watch_progress(progress *pr, uint64_t total, int quiet)
{
	const struct timespec tick = {0, 100 * 1000 * 1000};
	int tty = isatty(STDERR_FILENO);
	unsigned next_pct = 10;

	while (atomic_load(&pr->running) > 0) {
		nanosleep(&tick, NULL);
		if (!quiet)
			show_progress(atomic_load(&pr->done), total, tty,
			              &next_pct);
	}
	if (quiet)
		return;
	if (next_pct <= 100 || tty)
		show_progress(atomic_load(&pr->done), total, tty, &next_pct);
	if (tty)
		fputc('\n', stderr);
}

/* ---- client threads ------------------------------------------------------ */

static void worker_init(worker *w, unsigned i, const model *m, progress *pr,
                        unsigned long count)
{
	w->index = i;
	w->m = m;
	w->pr = pr;
	w->count = count;
	/* Distinct, reproducible inputs per thread. */
	w->rng = DEMO_SEED ^ (0x9e3779b97f4a7c15ull * (i + 1));
}

/*
 * Start o->threads clients. Returns the array (every entry is set up, the
 * ones that could not start are marked failed), or NULL when out of memory.
 */
static worker *start_workers(const model *m, progress *pr, const demo_opts *o,
                             int *started)
{
	worker *ws = calloc(o->threads, sizeof(*ws));
	unsigned i;
	int err;

	if (!ws)
		return NULL;
	atomic_store(&pr->running, (int)o->threads);
	for (i = 0; i < o->threads; i++) {
		worker *w = &ws[i];

		worker_init(w, i, m, pr, o->count);
		w->lat_us = calloc(o->count, sizeof(double));
		err = w->lat_us ? pthread_create(&w->tid, NULL, worker_main, w)
		                : ENOMEM;
		started[i] = err == 0;
		if (err == 0)
			continue;
		snprintf(w->msg, sizeof(w->msg), "thread %u: not started: %s",
		         i, strerror(err));
		w->failed = 1;
		atomic_store(&pr->stop, 1);
		atomic_fetch_sub(&pr->running, 1);
	}
	return ws;
}

static void free_workers(worker *ws, unsigned n)
{
	unsigned i;

	for (i = 0; ws && i < n; i++)
		free(ws[i].lat_us);
	free(ws);
}

/* ---- report -------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least p% at or below it. */
static double percentile(const double *sorted, size_t n, double p)
{
	size_t rank = (size_t)ceil(p / 100.0 * (double)n);

	if (n == 0)
		return 0.0;
	if (rank < 1)
		rank = 1;
	return sorted[rank > n ? n - 1 : rank - 1];
}

static void print_latency(const worker *ws, unsigned n, size_t total)
{
	double *all = malloc((total ? total : 1) * sizeof(double));
	size_t k = 0;
	unsigned i;

	if (!all) {
		printf("  latency: (out of memory for the percentiles)\n");
		return;
	}
	for (i = 0; i < n; i++) {
		memcpy(all + k, ws[i].lat_us, ws[i].n_done * sizeof(double));
		k += ws[i].n_done;
	}
	qsort(all, k, sizeof(double), cmp_double);
	printf("  latency (us, invoke to result): p50 %.1f  p90 %.1f  "
	       "p99 %.1f  max %.1f\n",
	       percentile(all, k, 50), percentile(all, k, 90),
	       percentile(all, k, 99), k ? all[k - 1] : 0.0);
	free(all);
}

static void print_engine(const model *m)
{
	gfn_stats s;

	if (gfn_engine_stats(m->e, &s) != GFN_OK)
		return;
	printf("  engine: %llu submitted, %llu completed, %llu failed, "
	       "%llu refused busy; %llu objects live in the store "
	       "(2 expected: W and b)\n",
	       (unsigned long long)s.submitted, (unsigned long long)s.completed,
	       (unsigned long long)s.failed,
	       (unsigned long long)s.rejected_busy,
	       (unsigned long long)s.store_objects);
}

/* Print the summary; 0 when every invocation ran and was right. */
static int report(const model *m, const worker *ws, const demo_opts *o,
                  double secs)
{
	uint64_t want = (uint64_t)o->threads * o->count;
	uint64_t done = 0, wrong = 0, busy = 0;
	double max_err = 0.0;
	unsigned i;

	for (i = 0; i < o->threads; i++) {
		done += ws[i].n_done;
		wrong += ws[i].n_wrong;
		busy += ws[i].n_busy;
		if (ws[i].max_err > max_err)
			max_err = ws[i].max_err;
		if (ws[i].msg[0])
			fprintf(stderr, "gfn-demo: %s\n", ws[i].msg);
	}
	printf("  results: %llu/%llu right, %llu wrong; max abs error %.3g "
	       "(limit %.0e)\n",
	       (unsigned long long)(done - wrong), (unsigned long long)want,
	       (unsigned long long)wrong, max_err, MAX_ABS_ERR);
	printf("  throughput: %.0f invocations/s (%llu in %.3f s, %llu "
	       "busy retries)\n",
	       secs > 0 ? (double)done / secs : 0.0, (unsigned long long)done,
	       secs, (unsigned long long)busy);
	print_latency(ws, o->threads, (size_t)done);
	print_engine(m);
	return done == want && wrong == 0 ? 0 : -1;
}

/* ---- main ---------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: gfn-demo [--threads N] [--count N] [--quiet]\n"
	        "  --threads N  client threads (default 4, 1..%d)\n"
	        "  --count N    invocations per thread (default 2000, "
	        "1..%lu)\n"
	        "  --quiet      no banner and no progress, only the "
	        "summary\n",
	        MAX_THREADS, MAX_COUNT);
}

static int parse_count(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || *s == '-')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* 0: run; 1: help was printed; -1: bad usage (message printed). */
static int parse_args(int argc, char **argv, demo_opts *o)
{
	unsigned long v;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--quiet") == 0) {
			o->quiet = 1;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 1;
		} else if (strcmp(a, "--threads") == 0 &&
		           parse_count(next, MAX_THREADS, &v) == 0) {
			o->threads = (unsigned)v;
			i++;
		} else if (strcmp(a, "--count") == 0 &&
		           parse_count(next, MAX_COUNT, &v) == 0) {
			o->count = v;
			i++;
		} else {
			fprintf(stderr, "gfn-demo: bad option '%s'%s%s\n", a,
			        next ? " " : "", next ? next : "");
			usage(stderr);
			return -1;
		}
	}
	return 0;
}

static void model_down(model *m)
{
	if (!gfn_object_equal(m->w_obj, GFN_OBJECT_NONE))
		drop_object(m->e, m->w_obj);
	if (!gfn_object_equal(m->b_obj, GFN_OBJECT_NONE))
		drop_object(m->e, m->b_obj);
	gfn_engine_destroy(m->e);
}

static void print_devices(const model *m)
{
	gfn_device_info info;
	size_t i, n = 0;

	if (gfn_device_count(m->e, &n) != GFN_OK)
		return;
	for (i = 0; i < n; i++)
		if (gfn_device_get_info(m->e, i, &info) == GFN_OK)
			printf("  device %zu: %s, %u compute units\n", i,
			       info.name, info.compute_units);
}

/*
 * Start the clients, show progress, wait for them. *secs is from the start
 * to the last client's end, as the clients saw it: the progress watcher
 * wakes only every 100 ms and must not count.
 */
static worker *run_clients(const model *m, progress *pr, const demo_opts *o,
                           double *secs)
{
	int *started = calloc(o->threads, sizeof(int));
	uint64_t t0 = now_ns(), t1 = t0;
	worker *ws;
	unsigned i;

	if (!started)
		return NULL;
	ws = start_workers(m, pr, o, started);
	if (ws) {
		watch_progress(pr, (uint64_t)o->threads * o->count, o->quiet);
		for (i = 0; i < o->threads; i++) {
			if (!started[i])
				continue;
			pthread_join(ws[i].tid, NULL);
			if (ws[i].end_ns > t1)
				t1 = ws[i].end_ns;
		}
	}
	*secs = (double)(t1 - t0) / 1e9;
	free(started);
	return ws;
}

int main(int argc, char **argv)
{
	demo_opts o = {.threads = 4, .count = 2000, .quiet = 0};
	static model m; /* static: zeroed, and too big to want on the stack */
	progress pr;
	worker *ws;
	double secs = 0.0;
	int rc;

	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (!o.quiet)
		printf("gfn-demo: dense %dx%d + ReLU + softmax, batch %d, "
		       "%u threads x %lu invocations (gfn %s)\n",
		       DEMO_K, DEMO_N, DEMO_B, o.threads, o.count,
		       gfn_version_string());
	if (model_up(&m) < 0) {
		model_down(&m);
		return 1;
	}
	if (!o.quiet)
		print_devices(&m);
	fflush(stdout);
	atomic_init(&pr.done, 0);
	atomic_init(&pr.running, 0);
	atomic_init(&pr.stop, 0);
	ws = run_clients(&m, &pr, &o, &secs);
	rc = ws ? report(&m, ws, &o, secs) : -1;
	if (!ws)
		fprintf(stderr, "gfn-demo: out of memory\n");
	free_workers(ws, o.threads);
	model_down(&m);
	if (rc != 0)
		fprintf(stderr, "gfn-demo: FAILED\n");
	return rc == 0 ? 0 : 1;
}
