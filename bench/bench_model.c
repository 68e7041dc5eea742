/*
 * bench_model.c - model functions (gfn/gfn_model.h) on the CPU backend:
 * the digits MLP and the small CNN of tests/models, against onnxruntime
 * running the same models (bench/ort_peer.py; exported to ONNX from the
 * same weights by scripts/export_onnx.py and checked against the same
 * reference outputs), measured in turns in the same run.
 *
 * Cases, per model and batch size B in 1, 8, 64:
 *   MODEL_bB   one client, one invocation of B rows at a time
 *              (invoke, wait, release), like onnxruntime's run() in a
 *              loop: samples/s and invocations/s (median of the
 *              repeats), p50/p99 time per invocation (median of the
 *              repeats' percentiles), each with the median over the
 *              repeats of its ratio to onnxruntime in that repeat
 * and per model:
 *   MODEL_c64  64 client threads, each invoking one row and waiting:
 *              invocations/s of the model function (dynamic batching,
 *              batch_max 32, batch_delay_us default) against the same
 *              graph registered as a function that never batches
 *
 * Threads: gfn gets one CPU device with one worker, and OpenBLAS gets
 * --threads threads; onnxruntime gets intra_op_num_threads = --threads.
 * The inputs are the fixtures' rows (repeated to fill a batch), and the
 * first output of each batch size is checked against the references.
 */
#include "bench.h"
#include "bench_peer.h"

#include <gfn/gfn.h>
#include <gfn/gfn_model.h>

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kernels/model.h"

#ifndef GFN_SOURCE_DIR
#define GFN_SOURCE_DIR "."
#endif
#ifndef GFN_BENCH_VENV_PYTHON
#define GFN_BENCH_VENV_PYTHON ""
#endif

#define N_BATCHES 3
#define CLIENTS 64          /* concurrent single-row clients */
#define MAX_SAMPLES 2000000 /* call times kept per repeat */
#define MAX_ERR 1e-4        /* |gfn - reference| allowed per probability */
#define GOAL_RATIO 1.0      /* gfn / onnxruntime samples/s at batch 64 */
#define GOAL_BATCHING 5.0   /* batched / unbatched, 64 clients */
#define QUICK_SECONDS 0.05

static const int batches[N_BATCHES] = {1, 8, 64};

/* openblas_set_num_threads is not in cblas.h: OpenBLAS's own call. */
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);

/* One model: its fixtures, its two functions and its input objects. */
typedef struct mb_model {
	const char *name;           /* directory under tests/models */
	const char *x_file;         /* input rows, f32 */
	const char *ref_file;       /* first output's reference rows, f32 */
	int ndim;                   /* per-row input dims */
	int64_t row[3];             /* per-row input shape */
	size_t row_elems;           /* floats per input row */
	size_t classes;             /* floats per output row */
	float *x;                   /* fixture inputs, n rows */
	float *ref;                 /* fixture outputs, n rows */
	size_t n;                   /* fixture rows */
	gfn_function fn;            /* the model function (batches) */
	gfn_function plain;         /* the same graph, never batched */
	gfn_object in[N_BATCHES];   /* one [B, row] input per batch size */
	gfn_object single[CLIENTS]; /* one [1, row] input per client */
	int generated;              /* bench_model_wide.c's: no fixtures,
	                               no peer, only the 64-client case */
	char dir[4096];             /* generated: its directory */
} mb_model;

static mb_model models[] = {
        {.name = "digits",
         .x_file = "test_x.f32",
         .ref_file = "ref_proba.f32",
         .ndim = 1,
         .row = {64},
         .row_elems = 64,
         .classes = 10},
        {.name = "cnn",
         .x_file = "input.bin",
         .ref_file = "ref_probs.bin",
         .ndim = 3,
         .row = {1, 8, 8},
         .row_elems = 64,
         .classes = 10},
        {.name = "wide",
         .ndim = 1,
         .row = {1024},
         .row_elems = 1024,
         .classes = 10,
         .generated = 1},
};

#define N_MODELS (sizeof(models) / sizeof(models[0]))

/* Samples of one model and batch size, one per repeat. */
typedef struct mb_runs {
	double gfn_sps[64], gfn_ips[64], gfn_p50[64], gfn_p99[64];
	double ort_sps[64], ort_ips[64], ort_p50[64], ort_p99[64];
	int n, n_ort; /* repeats of gfn / of the peer */
} mb_runs;

typedef struct mb {
	const bench_opts *opts;
	FILE *h;         /* notes for people */
	gfn_engine *e;   /* one CPU device, one worker */
	bench_peer peer; /* onnxruntime, or absent */
	double *us;      /* call times of one repeat */
	mb_runs runs[N_MODELS][N_BATCHES];
	double batched[N_MODELS][64]; /* 64-client inv/s, batching */
	double plain[N_MODELS][64];   /* 64-client inv/s, no batching */
	int repeats;                  /* repeats to do (at most 64) */
	double seconds;               /* length of one timed case */
} mb;

static void api_error(const char *what, gfn_status st)
{
	fprintf(stderr, "model: %s: %s (%s) %s\n", what, gfn_status_name(st),
	        gfn_status_str(st), gfn_error_detail());
}

static void *slurp(const char *dir, const char *name, size_t *bytes)
{
	char path[4096];
	FILE *f;
	long len;
	void *p = NULL;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)len + 1)) &&
	    fread(p, 1, (size_t)len, f) == (size_t)len) {
		*bytes = (size_t)len;
		((char *)p)[len] = '\0'; /* text files end in a NUL */
	} else {
		free(p);
		p = NULL;
	}
	fclose(f);
	return p;
}

/* ---- the never-batching twin of a model ---------------------------------- */

/*
 * The baseline of the batching case needs the same graph as a function
 * with batch_max 0. gfn_function_register_model always batches, so the
 * graph is built here with the internal builder and run with the same
 * runner (kernels/model.h); only the batching differs.
 */
static int plain_run(const gfn_kernel_args *args, void *user)
{
	const gfn_model *m = user;
	const void *in[GFN_MAX_INPUTS];
	void *out[GFN_MAX_OUTPUTS];

	for (size_t i = 0; i < args->n_inputs; i++)
		in[i] = args->inputs[i].data;
	for (size_t i = 0; i < args->n_outputs; i++)
		out[i] = args->outputs[i].data;
	return gfn__model_run(m, m->weights, (size_t)args->inputs[0].shape[0],
	                      in, out);
}

static void plain_free(void *user)
{
	gfn__model_free(user);
	free(user);
}

static void spec_of(const gfn_mtensor *t, gfn_tensor_spec *s)
{
	memset(s, 0, sizeof *s);
	s->name = t->name;
	s->dtype = t->dtype;
	s->ndim = t->ndim + 1;
	s->dims[0] = GFN_DIM_VAR(0);
	for (int i = 0; i < t->ndim; i++)
		s->dims[i + 1] = t->shape[i];
}

static gfn_status register_plain(gfn_engine *e, gfn_model *g, const char *name,
                                 gfn_function *out)
{
	gfn_tensor_spec ins[GFN_MAX_INPUTS], outs[GFN_MAX_OUTPUTS];
	gfn_function_desc d = {.name = name,
	                       .n_inputs = g->n_inputs,
	                       .inputs = ins,
	                       .n_outputs = g->n_outputs,
	                       .outputs = outs,
	                       .cpu_fn = plain_run,
	                       .user = g,
	                       .user_free = plain_free};

	for (size_t i = 0; i < g->n_inputs; i++)
		spec_of(&g->tensors[g->inputs[i]], &ins[i]);
	for (size_t i = 0; i < g->n_outputs; i++)
		spec_of(&g->tensors[g->outputs[i]], &outs[i]);
	return gfn_function_register(e, &d, out);
}

static int add_plain(mb *b, mb_model *m, const char *dir)
{
	char name[64];
	size_t len = 0;
	char *json = slurp(dir, "model.json", &len);
	gfn_model *g = calloc(1, sizeof *g);
	gfn_status st = GFN_ENOMEM;

	if (json && g)
		st = gfn__model_build(g, json, dir);
	free(json);
	snprintf(name, sizeof name, "%s.unbatched", m->name);
	if (st == GFN_OK)
		st = register_plain(b->e, g, name, &m->plain);
	if (st != GFN_OK) {
		api_error("the unbatched twin", st);
		if (g)
			plain_free(g);
		return -1;
	}
	return 0;
}

/* ---- set-up -------------------------------------------------------------- */

/* A sealed [rows, row...] input holding fixture rows 0, 1, ... (cycled). */
static gfn_status make_input(gfn_engine *e, const mb_model *m, int rows,
                             gfn_object *out)
{
	int64_t shape[4] = {rows};
	size_t bytes = m->row_elems * sizeof(float);
	gfn_status st;

	memcpy(&shape[1], m->row, (size_t)m->ndim * sizeof(int64_t));
	st = gfn_object_create(e, GFN_F32, m->ndim + 1, shape, out);
	for (int r = 0; r < rows && st == GFN_OK; r++)
		st = gfn_object_write(e, *out, (size_t)r * bytes,
		                      m->x + (size_t)r % m->n * m->row_elems,
		                      bytes);
	if (st == GFN_OK)
		st = gfn_object_seal(e, *out);
	return st;
}

/* The generated model: its directory, CLIENTS random rows as inputs. */
static int make_wide(mb_model *m, char *dir, size_t cap)
{
	if (bench_wide_make(m->dir, sizeof m->dir) < 0) {
		fprintf(stderr, "model: cannot write the wide model\n");
		m->dir[0] = '\0';
		return -1;
	}
	snprintf(dir, cap, "%s", m->dir);
	m->n = CLIENTS;
	m->x = malloc(m->n * m->row_elems * sizeof(float));
	if (!m->x)
		return -1;
	bench_wide_rows(m->x, m->n);
	return 0;
}

/* Fixtures of a committed model (rows and reference outputs). */
static int load_fixtures(mb *b, mb_model *m, char *dir, size_t cap)
{
	const char *root = b->opts->models ? b->opts->models
	                                   : GFN_SOURCE_DIR "/tests/models";
	size_t bx = 0, br = 0;

	snprintf(dir, cap, "%s/%s", root, m->name);
	m->x = slurp(dir, m->x_file, &bx);
	m->ref = slurp(dir, m->ref_file, &br);
	m->n = bx / (m->row_elems * sizeof(float));
	if (!m->x || !m->ref || m->n == 0 ||
	    br != m->n * m->classes * sizeof(float)) {
		fprintf(stderr,
		        "model: the fixtures in %s are missing or "
		        "do not match\n",
		        dir);
		return -1;
	}
	return 0;
}

static int load_model(mb *b, mb_model *m)
{
	char dir[4096];
	gfn_status st;

	if ((m->generated ? make_wide(m, dir, sizeof dir)
	                  : load_fixtures(b, m, dir, sizeof dir)) < 0)
		return -1;
	st = gfn_function_register_model(b->e, dir, m->name, &m->fn);
	if (st != GFN_OK) {
		api_error("gfn_function_register_model", st);
		return -1;
	}
	for (int i = 0; i < N_BATCHES && st == GFN_OK && !m->generated; i++)
		st = make_input(b->e, m, batches[i], &m->in[i]);
	for (int c = 0; c < CLIENTS && st == GFN_OK; c++)
		st = make_input(b->e, m, 1, &m->single[c]);
	if (st != GFN_OK) {
		api_error("making the inputs", st);
		return -1;
	}
	return add_plain(b, m, dir);
}

static int engine_up(mb *b)
{
	gfn_config cfg;
	gfn_status st;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	cfg.cpu_devices = 1;
	cfg.workers_per_device = 1;
	st = gfn_engine_create(&cfg, &b->e);
	if (st != GFN_OK) {
		api_error("gfn_engine_create", st);
		return -1;
	}
	for (size_t i = 0; i < N_MODELS; i++)
		if (load_model(b, &models[i]) < 0)
			return -1;
	return 0;
}

static void models_down(mb *b)
{
	for (size_t i = 0; i < N_MODELS; i++) {
		mb_model *m = &models[i];

		if (b->e && m->fn.id)
			gfn_model_unregister(b->e, m->fn);
		if (b->e && m->plain.id)
			gfn_function_unregister(b->e, m->plain);
		free(m->x);
		free(m->ref);
		m->x = m->ref = NULL;
		if (m->generated && m->dir[0])
			bench_wide_remove(m->dir);
		m->dir[0] = '\0';
		m->fn.id = m->plain.id = 0;
	}
}

/* ---- one client, one invocation at a time -------------------------------- */

/* invoke + wait; EBUSY (nothing of ours is queued) is retried. */
static gfn_status call(gfn_engine *e, const gfn_invocation *inv, gfn_future *f)
{
	gfn_status st;

	while ((st = gfn_invoke(e, inv, f)) == GFN_EBUSY)
		sched_yield();
	if (st != GFN_OK)
		return st;
	return gfn_future_wait(e, *f, -1);
}

/* The first output of one call against the references, cycled rows. */
static int check_output(mb *b, const mb_model *m, gfn_future f, int rows)
{
	gfn_object outs[GFN_MAX_OUTPUTS];
	gfn_object_view v;
	size_t n = 0;
	double worst = 0.0;
	gfn_status st = gfn_future_outputs(b->e, f, outs, GFN_MAX_OUTPUTS, &n);

	if (st != GFN_OK ||
	    (st = gfn_object_get(b->e, outs[0], &v)) != GFN_OK) {
		api_error("reading an output", st);
		return -1;
	}
	for (size_t i = 0; i < (size_t)rows * m->classes; i++) {
		size_t r = i / m->classes % m->n, c = i % m->classes;
		double d = fabs(((const float *)v.data)[i] -
		                m->ref[r * m->classes + c]);
		worst = d > worst ? d : worst;
	}
	gfn_object_release(b->e, outs[0]);
	for (size_t i = 0; i < n; i++)
		gfn_object_release(b->e, outs[i]);
	if (worst > MAX_ERR) {
		fprintf(stderr,
		        "model: %s batch %d differs from the "
		        "references by %.3g\n",
		        m->name, rows, worst);
		return -1;
	}
	return 0;
}

/* Calls for about b->seconds; per-call times into b->us. */
static int sync_case(mb *b, const mb_model *m, int bi, mb_runs *r)
{
	gfn_invocation inv = {.fn = m->fn, .n_inputs = 1, .inputs = &m->in[bi]};
	uint64_t t0 = bench_now_ns(), end = t0 + (uint64_t)(b->seconds * 1e9);
	uint64_t t = t0, calls = 0;
	size_t kept = 0;
	gfn_future f;
	gfn_status st;

	while (t < end) {
		uint64_t c0 = bench_now_ns();

		st = call(b->e, &inv, &f);
		if (st == GFN_OK)
			st = gfn_future_release(b->e, f);
		if (st != GFN_OK) {
			api_error("an invocation", st);
			return -1;
		}
		t = bench_now_ns();
		if (kept < MAX_SAMPLES)
			b->us[kept++] = (double)(t - c0) / 1e3;
		calls++;
	}
	bench_sort(b->us, kept);
	r->gfn_ips[r->n] = (double)calls / ((double)(t - t0) / 1e9);
	r->gfn_sps[r->n] = r->gfn_ips[r->n] * batches[bi];
	r->gfn_p50[r->n] = bench_percentile_sorted(b->us, kept, 50);
	r->gfn_p99[r->n] = bench_percentile_sorted(b->us, kept, 99);
	r->n++;
	return 0;
}

/* A checked call, then a short untimed warm-up. */
static int warm_case(mb *b, const mb_model *m, int bi)
{
	gfn_invocation inv = {.fn = m->fn, .n_inputs = 1, .inputs = &m->in[bi]};
	gfn_future f;
	gfn_status st = call(b->e, &inv, &f);
	int rc;

	if (st != GFN_OK) {
		api_error("the first invocation", st);
		return -1;
	}
	rc = check_output(b, m, f, batches[bi]);
	gfn_future_release(b->e, f);
	for (int i = 0; i < 50 && rc == 0; i++) {
		if (call(b->e, &inv, &f) != GFN_OK)
			rc = -1;
		gfn_future_release(b->e, f);
	}
	return rc;
}

static void peer_case(mb *b, const mb_model *m, int bi, mb_runs *r)
{
	bench_peer_result pr;

	if (bench_peer_run(&b->peer, m->name, batches[bi], b->seconds, &pr) < 0)
		return;
	r->ort_sps[r->n_ort] = pr.samples_per_s;
	r->ort_ips[r->n_ort] = pr.inv_per_s;
	r->ort_p50[r->n_ort] = pr.p50_us;
	r->ort_p99[r->n_ort] = pr.p99_us;
	r->n_ort++;
}

/* ---- 64 clients ---------------------------------------------------------- */

typedef struct client {
	gfn_engine *e;      /* the engine */
	gfn_invocation inv; /* one row, the client's own input */
	atomic_int *stop;   /* set when the case ends */
	atomic_int *go;     /* set when every client may start */
	uint64_t done;      /* invocations it completed */
	int failed;         /* one did not end OK */
} client;

static void *client_main(void *arg)
{
	client *c = arg;
	gfn_future f;

	while (!atomic_load(c->go))
		sched_yield();
	while (!atomic_load_explicit(c->stop, memory_order_relaxed)) {
		gfn_status st = call(c->e, &c->inv, &f);

		if (st == GFN_OK)
			st = gfn_future_release(c->e, f);
		if (st != GFN_OK) {
			c->failed = 1;
			break;
		}
		c->done++;
	}
	return NULL;
}

static void sleep_seconds(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Invocations/s of CLIENTS threads calling fn; -1 on failure. */
static double clients_case(mb *b, const mb_model *m, gfn_function fn)
{
	client c[CLIENTS];
	pthread_t th[CLIENTS];
	atomic_int stop = 0, go = 0;
	gfn_stats s0, s1;
	uint64_t t0, t1, done = 0;
	int started = 0, failed = 0;

	for (int i = 0; i < CLIENTS; i++) {
		c[i] = (client){.e = b->e, .stop = &stop, .go = &go};
		c[i].inv = (gfn_invocation){
		        .fn = fn, .n_inputs = 1, .inputs = &m->single[i]};
		if (pthread_create(&th[i], NULL, client_main, &c[i]) != 0)
			break;
		started++;
	}
	if (started < CLIENTS) {
		fprintf(stderr, "model: cannot start %d client threads\n",
		        CLIENTS);
		failed = 1;
		atomic_store(&stop, 1);
	}
	gfn_engine_stats(b->e, &s0);
	atomic_store(&go, 1);
	t0 = bench_now_ns();
	if (!failed)
		sleep_seconds(b->seconds);
	atomic_store(&stop, 1);
	t1 = bench_now_ns();
	for (int i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		done += c[i].done;
		failed |= c[i].failed;
	}
	if (failed) {
		fprintf(stderr, "model: a client's invocation failed\n");
		return -1.0;
	}
	if (gfn_engine_stats(b->e, &s1) == GFN_OK && s1.batches > s0.batches)
		fprintf(b->h,
		        "  %s, 64 clients: %.1f invocations per batched "
		        "launch\n",
		        m->name,
		        (double)(s1.batched - s0.batched) /
		                (double)(s1.batches - s0.batches));
	return (double)done / ((double)(t1 - t0) / 1e9);
}

/* ---- repeats ------------------------------------------------------------- */

/* One repeat of every case; gfn and the peer take turns case by case,
   so that noise on this shared machine hits both alike. */
static int one_repeat(mb *b, int rep)
{
	for (size_t mi = 0; mi < N_MODELS; mi++) {
		mb_model *m = &models[mi];

		for (int bi = 0; bi < N_BATCHES && !m->generated; bi++) {
			if (sync_case(b, m, bi, &b->runs[mi][bi]) < 0)
				return -1;
			peer_case(b, m, bi, &b->runs[mi][bi]);
		}
		b->batched[mi][rep] = clients_case(b, m, m->fn);
		b->plain[mi][rep] = clients_case(b, m, m->plain);
		if (b->batched[mi][rep] < 0 || b->plain[mi][rep] < 0)
			return -1;
	}
	return 0;
}

static void print_repeat(mb *b, int rep)
{
	for (size_t mi = 0; mi < N_MODELS; mi++) {
		fprintf(b->h, "  repeat %d/%d %-6s", rep + 1, b->repeats,
		        models[mi].name);
		for (int bi = 0; bi < N_BATCHES && !models[mi].generated;
		     bi++) {
			const mb_runs *r = &b->runs[mi][bi];

			fprintf(b->h, "  b%d %.0f/s", batches[bi],
			        r->gfn_sps[r->n - 1]);
			if (r->n_ort == r->n)
				fprintf(b->h, " (ort %.0f)",
				        r->ort_sps[r->n_ort - 1]);
		}
		fprintf(b->h, "  64 clients %.0f/s (unbatched %.0f)\n",
		        b->batched[mi][rep], b->plain[mi][rep]);
	}
}

/* The first output of future f into out (n floats); f released. */
static int first_output(mb *b, gfn_future f, float *out, size_t n)
{
	gfn_object res;
	gfn_object_view v;
	size_t k;
	int rc = -1;

	if (gfn_future_wait(b->e, f, -1) == GFN_OK &&
	    gfn_future_outputs(b->e, f, &res, 1, &k) == GFN_OK &&
	    gfn_object_get(b->e, res, &v) == GFN_OK) {
		if (v.size == n * sizeof(float)) {
			memcpy(out, v.data, v.size);
			rc = 0;
		}
		gfn_object_release(b->e, res);
	}
	gfn_future_release(b->e, f);
	return rc;
}

/*
 * A generated model has no reference: its batching function, given every
 * client's row at once (so that they run batched), and its never-batching
 * twin, one row at a time, must agree on every row.
 */
static int twins_agree(mb *b, mb_model *m)
{
	gfn_invocation inv[CLIENTS];
	gfn_future f[CLIENTS], g;
	float a[CLIENTS][16], t[16];
	size_t accepted = 0;
	int rc = 0;

	for (int c = 0; c < CLIENTS; c++)
		inv[c] = (gfn_invocation){
		        .fn = m->fn, .n_inputs = 1, .inputs = &m->single[c]};
	if (gfn_invoke_many(b->e, inv, CLIENTS, f, &accepted) != GFN_OK)
		rc = -1;
	for (size_t c = 0; c < accepted; c++)
		if (first_output(b, f[c], a[c], m->classes) < 0)
			rc = -1;
	for (int c = 0; c < CLIENTS && rc == 0; c++) {
		inv[c].fn = m->plain;
		if (call(b->e, &inv[c], &g) != GFN_OK ||
		    first_output(b, g, t, m->classes) < 0)
			return -1;
		for (size_t j = 0; j < m->classes; j++)
			if (!(fabs((double)a[c][j] - t[j]) <= 1e-5)) {
				fprintf(stderr,
				        "model: %s row %d class %zu: %g "
				        "batched, %g alone\n",
				        m->name, c, j, a[c][j], t[j]);
				return -1;
			}
	}
	if (rc < 0)
		fprintf(stderr, "model: %s: the batched check failed\n",
		        m->name);
	return rc;
}

static int measure(mb *b)
{
	for (size_t mi = 0; mi < N_MODELS; mi++)
		for (int bi = 0; bi < N_BATCHES && !models[mi].generated; bi++)
			if (warm_case(b, &models[mi], bi) < 0)
				return -1;
	for (size_t mi = 0; mi < N_MODELS; mi++)
		if (models[mi].generated && twins_agree(b, &models[mi]) < 0)
			return -1;
	for (int rep = 0; rep < b->repeats; rep++) {
		if (one_repeat(b, rep) < 0)
			return -1;
		print_repeat(b, rep);
	}
	return 0;
}

/* ---- the report ---------------------------------------------------------- */

static const char *case_name(const mb_model *m, int bi)
{
	/* The report keeps the pointers: names live as long as the run. */
	static char names[N_MODELS][N_BATCHES + 1][24];
	char *n = names[m - models][bi + 1];

	if (bi < 0)
		snprintf(n, sizeof names[0][0], "%s_c%d", m->name, CLIENTS);
	else
		snprintf(n, sizeof names[0][0], "%s_b%d", m->name, batches[bi]);
	return n;
}

/* value = median of runs, lo..hi their range, ratio to the peer's. */
static bench_result *add(bench_report *rep, const char *name,
                         const char *metric, const char *unit, double *g, int n,
                         double *o, int n_ort)
{
	bench_result *res = bench_report_add(rep, name, metric, unit);
	double ratio[64];

	if (!res)
		return NULL;
	/* The ratio is the median of each repeat's own ratio: the two in a
	   repeat ran seconds apart, so the noise of this shared machine
	   hits them alike (before the medians sort g and o). */
	for (int i = 0; i < n && n_ort == n; i++)
		ratio[i] = g[i] / o[i];
	if (n_ort == n && n > 0)
		res->ratio = bench_median(ratio, (size_t)n);
	res->value = bench_median(g, (size_t)n);
	res->lo = g[0];
	res->hi = g[n - 1];
	if (n_ort == n && n > 0) { /* only a peer that answered every time */
		res->baseline_name = "onnxruntime";
		res->baseline_value = bench_median(o, (size_t)n_ort);
	}
	return res;
}

static void add_batch(mb *b, bench_report *rep, const mb_model *m, int bi)
{
	mb_runs *r = &b->runs[m - models][bi];
	const char *name = case_name(m, bi);
	bench_result *res;

	res = add(rep, name, "throughput", "rows/s", r->gfn_sps, r->n,
	          r->ort_sps, r->n_ort);
	if (res && batches[bi] == 64 && !isnan(res->ratio)) {
		res->goal = ">= 1.0x onnxruntime";
		res->goal_met = res->ratio >= GOAL_RATIO;
	}
	add(rep, name, "invocations", "inv/s", r->gfn_ips, r->n, r->ort_ips,
	    r->n_ort);
	res = add(rep, name, "latency", "us", r->gfn_p50, r->n, r->ort_p50,
	          r->n_ort);
	if (res) {
		res->p50 = res->value;
		res->p99 = bench_median(r->gfn_p99, (size_t)r->n);
	}
}

static void add_clients(mb *b, bench_report *rep, const mb_model *m)
{
	size_t mi = (size_t)(m - models);
	double ratio[64], base;
	bench_result *res =
	        bench_report_add(rep, case_name(m, -1), "throughput", "inv/s");

	if (!res)
		return;
	/* Paired per repeat, as in add(). */
	for (int i = 0; i < b->repeats; i++)
		ratio[i] = b->batched[mi][i] / b->plain[mi][i];
	res->ratio = bench_median(ratio, (size_t)b->repeats);
	base = bench_median(b->plain[mi], (size_t)b->repeats);
	res->value = bench_median(b->batched[mi], (size_t)b->repeats);
	res->lo = b->batched[mi][0];
	res->hi = b->batched[mi][b->repeats - 1];
	res->baseline_name = "unbatched";
	res->baseline_value = base;
	res->goal = ">= 5x unbatched";
	res->goal_met = res->ratio >= GOAL_BATCHING;
}

static void add_results(mb *b, bench_report *rep)
{
	for (size_t mi = 0; mi < N_MODELS; mi++) {
		for (int bi = 0; bi < N_BATCHES && !models[mi].generated; bi++)
			add_batch(b, rep, &models[mi], bi);
		add_clients(b, rep, &models[mi]);
	}
	/* The peer's own p99s, which the table has no column for. */
	for (size_t mi = 0; mi < N_MODELS; mi++)
		for (int bi = 0; bi < N_BATCHES; bi++) {
			mb_runs *r = &b->runs[mi][bi];

			if (r->n_ort == r->n && r->n > 0 &&
			    !models[mi].generated)
				fprintf(b->h,
				        "  %s_b%d onnxruntime p50 %.1f us, "
				        "p99 %.1f us\n",
				        models[mi].name, batches[bi],
				        bench_median(r->ort_p50,
				                     (size_t)r->n_ort),
				        bench_median(r->ort_p99,
				                     (size_t)r->n_ort));
		}
}

/* ---- the scenario -------------------------------------------------------- */

static const char *peer_python(const bench_opts *o)
{
	const char *env = getenv("GFN_BENCH_PYTHON");

	if (o->peer)
		return strcmp(o->peer, "none") ? o->peer : NULL;
	if (env && *env)
		return env;
	/* What `make bench-model` makes; absent, the peer is too. */
	if (*GFN_BENCH_VENV_PYTHON && access(GFN_BENCH_VENV_PYTHON, X_OK) == 0)
		return GFN_BENCH_VENV_PYTHON;
	return NULL;
}

static void start_peer(mb *b)
{
	const char *py = peer_python(b->opts);
	const char *models_dir = b->opts->models ? b->opts->models
	                                         : GFN_SOURCE_DIR
	                                 "/tests/models";

	memset(&b->peer, 0, sizeof b->peer);
	if (!py) {
		snprintf(b->peer.why, sizeof b->peer.why,
		         "no peer python (--peer, GFN_BENCH_PYTHON or "
		         "make bench-model)");
		return;
	}
	bench_peer_start(&b->peer, py, GFN_SOURCE_DIR "/bench/ort_peer.py",
	                 models_dir, b->opts->threads);
}

/* report->meta: the threads, and the peer's presence and version. It
   outlives b: the harness prints the report after the run. */
static void make_meta(mb *b, bench_report *rep)
{
	static char meta[1024];
	char why[300];
	size_t k = 0;

	/* The reason is free text from the peer: keep it JSON-safe. */
	for (const char *s = b->peer.why; *s && k < sizeof why - 1; s++)
		why[k++] = *s == '"' || *s == '\\' || (unsigned char)*s < 0x20
		                   ? '\''
		                   : *s;
	why[k] = '\0';
	snprintf(meta, sizeof meta,
	         "{\"threads\": %d, \"openblas_threads\": %d, "
	         "\"openblas_core\": \"%s\", "
	         "\"repeats\": %d, \"seconds\": %g, \"clients\": %d, "
	         "\"peer\": {\"name\": \"onnxruntime\", \"present\": %s, "
	         "\"version\": \"%s\", \"why_absent\": \"%s\"}}",
	         b->opts->threads, openblas_get_num_threads(),
	         openblas_get_corename(), b->repeats, b->seconds, CLIENTS,
	         b->peer.up ? "true" : "false", b->peer.version,
	         b->peer.up ? "" : why);
	rep->meta = meta;
}

int bench_model_run(const bench_opts *opts, bench_report *report)
{
	mb *b = calloc(1, sizeof *b);
	int rc = -1;

	if (!b || !(b->us = malloc(MAX_SAMPLES * sizeof(double)))) {
		fprintf(stderr, "model: out of memory\n");
		free(b);
		return -1;
	}
	b->opts = opts;
	b->h = bench_human(opts);
	b->repeats = opts->quick ? 1 : opts->repeats > 64 ? 64 : opts->repeats;
	b->seconds = opts->quick && opts->seconds > QUICK_SECONDS
	                     ? QUICK_SECONDS
	                     : opts->seconds;
	/* The same number of compute threads as onnxruntime gets. */
	openblas_set_num_threads(opts->threads);
	start_peer(b);
	fprintf(b->h,
	        "model: 1 CPU device, 1 worker, OpenBLAS %s %d thread(s); "
	        "onnxruntime %s%s; %d x %.3g s per case\n",
	        openblas_get_corename(), openblas_get_num_threads(),
	        b->peer.up ? b->peer.version : "", b->peer.up ? "" : "absent",
	        b->repeats, b->seconds);
	if (!b->peer.up)
		fprintf(b->h, "  (peer absent: %s)\n", b->peer.why);
	if (engine_up(b) == 0 && measure(b) == 0) {
		add_results(b, report);
		rc = 0;
	}
	make_meta(b, report);
	bench_peer_stop(&b->peer);
	models_down(b);
	gfn_engine_destroy(b->e);
	free(b->us);
	free(b);
	return rc;
}
