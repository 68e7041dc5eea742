/*
 * bench_cuda.c - the engine on a CUDA device against the driver called
 * directly, through gfn's own driver table (cuda_api.h), in the same run.
 *
 * Cases (every timed one: medians over --repeats, baselines interleaved
 * with the engine so machine noise hits both):
 *   vadd4096         one invoke + wait + release of a 4096-float vadd
 *                    (inputs in sealed store objects) on the CUDA device,
 *                    per call, against cuLaunchKernel of the same
 *                    embedded kernel on preallocated device buffers +
 *                    cuStreamSynchronize. Goal: <= 1.2x.
 *   vadd4096_copies  the same engine calls against what the engine does
 *                    done by hand: two 16 KiB cuMemcpyHtoDAsync from
 *                    pinned memory, the launch, one cuMemcpyDtoHAsync,
 *                    cuStreamSynchronize (for reference; no goal).
 *   h2d_registered   64 MiB host-to-device copies, backend copy_h2d + sync,
 *                    from a memfd mapping registered as the object store
 *                    registers its segments, against cuMemcpyHtoDAsync
 *                    from cuMemHostAlloc memory (goal >= 0.9x) ...
 *   h2d_vs_pageable  ... and from pageable malloc memory.
 *   cold_first_call  a fresh process (this program, hidden subcommand):
 *                    engine, cuInit, context, module load, one vadd, from
 *                    spawn to the result; against, in the warm engine, a
 *                    newly registered function whose kernel the kernel
 *                    cache holds: register + first invocation.
 *   digits_*         the digits MLP (bench_cuda_model.c).
 *
 * Without a CUDA device (or without CUDA in this build) the scenario says
 * so on one line and gfn-bench exits 77.
 */
#include "bench_cuda.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void bcuda_api_error(const char *what, gfn_status st)
{
	fprintf(stderr, "cuda: %s: %s (%s) %s\n", what, gfn_status_name(st),
	        gfn_status_str(st), gfn_error_detail());
}

int bcuda_rep_alloc(bcuda_rep *r, int n)
{
	r->p50 = calloc((size_t)n, sizeof(double));
	r->p99 = calloc((size_t)n, sizeof(double));
	r->val = calloc((size_t)n, sizeof(double));
	if (r->p50 && r->p99 && r->val)
		return 0;
	fprintf(stderr, "cuda: out of memory\n");
	return -1;
}

void bcuda_rep_free(bcuda_rep *r)
{
	free(r->p50);
	free(r->p99);
	free(r->val);
	memset(r, 0, sizeof(*r));
}

void bcuda_rep_store(bcuda_rep *r, int i, double *us, size_t n)
{
	bench_sort(us, n);
	r->p50[i] = bench_percentile_sorted(us, n, 50);
	r->p99[i] = bench_percentile_sorted(us, n, 99);
}

bench_result *bcuda_add_latency(bcuda *b, const char *case_name,
                                const char *metric, bcuda_rep *r, int n)
{
	bench_result *res = bench_report_add(b->rep, case_name, metric, "us");

	if (!res)
		return NULL;
	res->value = bench_median(r->p50, (size_t)n);
	res->p50 = res->value;
	res->lo = r->p50[0];
	res->hi = r->p50[n - 1];
	res->p99 = bench_median(r->p99, (size_t)n);
	return res;
}

#ifdef GFN_HAVE_CUDA

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/shm_segment.h"
#include "kernels/builtins.h"
#include "runtime/backend.h"
#include "runtime/backends/cuda/cuda_api.h"

#define VADD_N 4096                  /* floats per vadd operand */
#define VADD_BLOCK 256               /* threads per block, as the backend's */
#define H2D_BYTES ((size_t)64 << 20) /* one H2D copy */
#define H2D_COPIES 8                 /* copies per timed repeat */
#define MAX_CALLS ((size_t)1 << 20)  /* call times kept per repeat */
#define MIN_CALLS 50                 /* fewest calls per timed repeat */
#define WARM_CALLS 200               /* untimed calls before timing a case */
#define COLD_MAX 5                   /* cold child processes at most */
#define QUICK_SECONDS 0.05           /* --quick: length of one repeat */
#define GOAL_OVERHEAD 1.2            /* engine / raw launch, per call */
#define GOAL_H2D 0.9                 /* registered / cuMemHostAlloc, GB/s */
#define CHILD_TAG "gfn-cold-child"

extern char **environ;

/* ---- the driver, called directly ------------------------------------------------ */

/* A device as a program without gfn uses it: primary context, a stream,
   the embedded vadd module and preallocated buffers. */
typedef struct raw_dev {
	gfn_cuda_api *cu;     /* gfn's driver table */
	CUdevice dev;         /* the device */
	CUcontext ctx;        /* its primary context, retained; NULL: not */
	CUstream s;           /* a non-blocking stream, or NULL */
	CUmodule mod;         /* the vadd module, or NULL */
	CUfunction fn;        /* its kernel */
	CUdeviceptr d[3];     /* a, b, c on the device; 0: none */
	float *hp[3];         /* a, b, c in pinned host memory; NULL: none */
	unsigned long long n; /* elements (the kernel's size argument) */
} raw_dev;

/* 1 when r is CUDA_SUCCESS; else print the call and the error, 0. */
static int cu_ok(CUresult r, const char *call)
{
	gfn_cuda_api *cu = gfn_cuda_api_get();
	const char *name = NULL, *text = NULL;

	if (r == CUDA_SUCCESS)
		return 1;
	if (cu->cuGetErrorName)
		cu->cuGetErrorName(r, &name);
	if (cu->cuGetErrorString)
		cu->cuGetErrorString(r, &text);
	fprintf(stderr, "cuda: %s: %s (%d): %s\n", call, name ? name : "?",
	        (int)r, text ? text : "");
	return 0;
}

static int raw_open(raw_dev *r, int ordinal)
{
	gfn_cuda_api *cu = gfn_cuda_api_get();

	memset(r, 0, sizeof(*r));
	r->cu = cu;
	r->n = VADD_N;
	if (!gfn_cuda_api_usable(cu)) {
		fprintf(stderr, "cuda: libcuda.so.1 lacks entry points\n");
		return -1;
	}
	if (!cu_ok(cu->cuInit(0), "cuInit") ||
	    !cu_ok(cu->cuDeviceGet(&r->dev, ordinal), "cuDeviceGet"))
		return -1;
	if (!cu_ok(cu->cuDevicePrimaryCtxRetain(&r->ctx, r->dev),
	           "cuDevicePrimaryCtxRetain")) {
		r->ctx = NULL;
		return -1;
	}
	if (!cu_ok(cu->cuCtxSetCurrent(r->ctx), "cuCtxSetCurrent"))
		return -1;
	if (!cu_ok(cu->cuStreamCreate(&r->s, CU_STREAM_NON_BLOCKING),
	           "cuStreamCreate")) {
		r->s = NULL;
		return -1;
	}
	return 0;
}

/* Make r's context current on this thread (engine calls on this thread
   may have set it too: it is the same primary context). */
static int raw_current(raw_dev *r)
{
	return cu_ok(r->cu->cuCtxSetCurrent(r->ctx), "cuCtxSetCurrent") ? 0
	                                                                : -1;
}

static void raw_close(raw_dev *r)
{
	gfn_cuda_api *cu = r->cu;

	if (!r->ctx)
		return;
	(void)cu->cuCtxSetCurrent(r->ctx);
	if (r->s)
		(void)cu->cuStreamSynchronize(r->s);
	for (int i = 0; i < 3; i++) {
		if (r->hp[i] && cu->cuMemFreeHost)
			(void)cu->cuMemFreeHost(r->hp[i]);
		if (r->d[i])
			(void)cu->cuMemFree(r->d[i]);
	}
	if (r->mod)
		(void)cu->cuModuleUnload(r->mod);
	if (r->s)
		(void)cu->cuStreamDestroy(r->s);
	(void)cu->cuDevicePrimaryCtxRelease(r->dev);
	memset(r, 0, sizeof(*r));
}

/* gfn.vadd's descriptor in the built-in table (its CUDA kernel is the
   embedded fatbin); NULL with a message when it has none. */
static const gfn_function_desc *vadd_desc(void)
{
	size_t n = 0;
	const gfn_builtin *t = gfn__builtins(&n);

	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].desc.name, "gfn.vadd") == 0 && t[i].desc.cuda &&
		    t[i].desc.cuda->image)
			return &t[i].desc;
	fprintf(stderr, "cuda: gfn.vadd has no embedded CUDA image\n");
	return NULL;
}

/* Load the embedded vadd module. The driver wants a fatbin aligned, and
   an embedded array need not be: load from a malloc'd copy. */
static int raw_load_vadd(raw_dev *r)
{
	const gfn_function_desc *d = vadd_desc();
	const gfn_cuda_kernel *k = d ? d->cuda : NULL;
	size_t len;
	char *copy;
	int ok;

	if (!k)
		return -1;
	len = k->image_len ? k->image_len : strlen(k->image) + 1;
	copy = malloc(len + 1);
	if (!copy) {
		fprintf(stderr, "cuda: out of memory\n");
		return -1;
	}
	memcpy(copy, k->image, len);
	copy[len] = '\0';
	ok = cu_ok(r->cu->cuModuleLoadData(&r->mod, copy), "cuModuleLoadData");
	free(copy);
	if (!ok) {
		r->mod = NULL;
		return -1;
	}
	return cu_ok(r->cu->cuModuleGetFunction(&r->fn, r->mod, k->name),
	             "cuModuleGetFunction")
	               ? 0
	               : -1;
}

/* Device and pinned host buffers for the raw vadd; a and b filled. */
static int raw_buffers(raw_dev *r)
{
	size_t bytes = (size_t)r->n * sizeof(float);

	if (!r->cu->cuMemHostAlloc || !r->cu->cuMemFreeHost) {
		fprintf(stderr, "cuda: the driver lacks cuMemHostAlloc\n");
		return -1;
	}
	for (int i = 0; i < 3; i++) {
		void *p = NULL;

		if (!cu_ok(r->cu->cuMemAlloc(&r->d[i], bytes), "cuMemAlloc")) {
			r->d[i] = 0;
			return -1;
		}
		if (!cu_ok(r->cu->cuMemHostAlloc(&p, bytes,
		                                 CU_MEMHOSTALLOC_PORTABLE),
		           "cuMemHostAlloc"))
			return -1;
		r->hp[i] = p;
	}
	for (size_t i = 0; i < r->n; i++) {
		r->hp[0][i] = (float)i * 0.5f;
		r->hp[1][i] = 1.0f / (float)(i + 1);
	}
	return 0;
}

static CUresult raw_launch(raw_dev *r)
{
	void *params[4] = {&r->d[0], &r->d[1], &r->d[2], &r->n};
	unsigned grid = (unsigned)((r->n + VADD_BLOCK - 1) / VADD_BLOCK);

	return r->cu->cuLaunchKernel(r->fn, grid, 1, 1, VADD_BLOCK, 1, 1, 0,
	                             r->s, params, NULL);
}

/* One launch + sync; its time in microseconds, -1 on error. */
static double raw_launch_us(void *ctx)
{
	raw_dev *r = ctx;
	uint64_t t0 = bench_now_ns();

	if (!cu_ok(raw_launch(r), "cuLaunchKernel") ||
	    !cu_ok(r->cu->cuStreamSynchronize(r->s), "cuStreamSynchronize"))
		return -1.0;
	return (double)(bench_now_ns() - t0) / 1e3;
}

/* What the engine does per call, by hand: copy a and b in, launch, copy
   c out, sync. Microseconds, -1 on error. */
static double raw_copies_us(void *ctx)
{
	raw_dev *r = ctx;
	gfn_cuda_api *cu = r->cu;
	size_t bytes = (size_t)r->n * sizeof(float);
	uint64_t t0 = bench_now_ns();

	if (!cu_ok(cu->cuMemcpyHtoDAsync(r->d[0], r->hp[0], bytes, r->s),
	           "cuMemcpyHtoDAsync") ||
	    !cu_ok(cu->cuMemcpyHtoDAsync(r->d[1], r->hp[1], bytes, r->s),
	           "cuMemcpyHtoDAsync") ||
	    !cu_ok(raw_launch(r), "cuLaunchKernel") ||
	    !cu_ok(cu->cuMemcpyDtoHAsync(r->hp[2], r->d[2], bytes, r->s),
	           "cuMemcpyDtoHAsync") ||
	    !cu_ok(cu->cuStreamSynchronize(r->s), "cuStreamSynchronize"))
		return -1.0;
	return (double)(bench_now_ns() - t0) / 1e3;
}

/* ---- timing loops ----------------------------------------------------------------- */

typedef double (*call_fn)(void *ctx); /* one timed call: us, or -1 */

/* Call fn for about `seconds` (at least MIN_CALLS, at most cap times),
   keeping each call's time in us[]; the count in *n. */
static int sample(call_fn fn, void *ctx, double seconds, double *us, size_t cap,
                  size_t *n)
{
	uint64_t t0 = bench_now_ns();

	*n = 0;
	while (*n < cap && (*n < MIN_CALLS ||
	                    (double)(bench_now_ns() - t0) / 1e9 < seconds)) {
		double t = fn(ctx);

		if (t < 0)
			return -1;
		us[(*n)++] = t;
	}
	return 0;
}

static int warm(call_fn fn, void *ctx)
{
	for (int i = 0; i < WARM_CALLS; i++)
		if (fn(ctx) < 0)
			return -1;
	return 0;
}

/* ---- engine helpers --------------------------------------------------------------- */

/* Register vadd as `name` with only its CUDA kernel (the embedded
   fatbin), so it can run nowhere but on a CUDA device. */
static gfn_status register_vadd(gfn_engine *e, const char *name,
                                gfn_function *fn)
{
	const gfn_function_desc *v = vadd_desc();
	gfn_function_desc d;

	if (!v)
		return GFN_ENOTSUP;
	d = *v;
	d.name = name;
	d.cpu_fn = NULL;
	d.user = NULL;
	d.opencl = NULL;
	return gfn_function_register(e, &d, fn);
}

/* A sealed [n] f32 object holding v[0..n-1]. */
static gfn_status make_f32(gfn_engine *e, const float *v, size_t n,
                           gfn_object *out)
{
	int64_t shape[1] = {(int64_t)n};
	gfn_status s = gfn_object_create(e, GFN_F32, 1, shape, out);

	if (s != GFN_OK)
		return s;
	s = gfn_object_write(e, *out, 0, v, n * sizeof(float));
	if (s == GFN_OK)
		s = gfn_object_seal(e, *out);
	if (s != GFN_OK) {
		(void)gfn_object_release(e, *out);
		(void)gfn_object_delete(e, *out);
	}
	return s;
}

static void drop(gfn_engine *e, gfn_object o)
{
	(void)gfn_object_release(e, o);
	(void)gfn_object_delete(e, o);
}

/* The operands every vadd here adds. */
static void vadd_operands(float *a, float *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		a[i] = (float)i * 0.5f;
		b[i] = 1.0f / (float)(i + 1);
	}
}

/* Check the ended invocation f's output is a + b; 0 or -1 (message). */
static int check_vadd_output(gfn_engine *e, gfn_future f, const float *a,
                             const float *b, size_t n)
{
	gfn_object out;
	gfn_object_view v;
	size_t nout = 0, bad = n;
	gfn_status s = gfn_future_outputs(e, f, &out, 1, &nout);

	if (s != GFN_OK || nout != 1) {
		bcuda_api_error("gfn_future_outputs", s);
		return -1;
	}
	s = gfn_object_get(e, out, &v);
	if (s == GFN_OK) {
		const float *c = v.data;

		if (v.size == n * sizeof(float))
			for (bad = 0; bad < n && c[bad] == a[bad] + b[bad];)
				bad++;
		(void)gfn_object_release(e, out);
	}
	drop(e, out);
	if (s != GFN_OK || bad < n) {
		fprintf(stderr, "cuda: vadd output wrong at element %zu\n",
		        bad);
		return -1;
	}
	return 0;
}

/* ---- (a) engine overhead ------------------------------------------------------------ */

typedef struct eng_vadd {
	gfn_engine *e;      /* the warm engine */
	gfn_invocation inv; /* fn, the two inputs, the device */
	gfn_object in[2];   /* a, b */
} eng_vadd;

/* One invoke + wait + release; microseconds, -1 on error. */
static double engine_us(void *ctx)
{
	eng_vadd *v = ctx;
	uint64_t t0 = bench_now_ns();
	gfn_future f;
	gfn_status s = gfn_invoke(v->e, &v->inv, &f), r;

	if (s != GFN_OK) {
		bcuda_api_error("gfn_invoke", s);
		return -1.0;
	}
	s = gfn_future_wait(v->e, f, -1);
	r = gfn_future_release(v->e, f);
	if (s != GFN_OK || r != GFN_OK) {
		bcuda_api_error(s != GFN_OK ? "vadd invocation"
		                            : "gfn_future_release",
		                s != GFN_OK ? s : r);
		return -1.0;
	}
	return (double)(bench_now_ns() - t0) / 1e3;
}

/* Register vadd, make its inputs and check one call's result. */
static int eng_vadd_up(bcuda *b, eng_vadd *v, float *a, float *bb)
{
	gfn_future f;
	gfn_status s;
	int rc;

	memset(v, 0, sizeof(*v));
	v->e = b->e;
	vadd_operands(a, bb, VADD_N);
	s = register_vadd(b->e, "bench.cuda.vadd", &v->inv.fn);
	if (s == GFN_OK)
		s = make_f32(b->e, a, VADD_N, &v->in[0]);
	if (s == GFN_OK &&
	    (s = make_f32(b->e, bb, VADD_N, &v->in[1])) != GFN_OK)
		drop(b->e, v->in[0]);
	if (s != GFN_OK) {
		bcuda_api_error("vadd set-up", s);
		return -1;
	}
	v->inv.n_inputs = 2;
	v->inv.inputs = v->in;
	v->inv.devices = b->mask;
	s = gfn_invoke(b->e, &v->inv, &f);
	if (s != GFN_OK) {
		bcuda_api_error("gfn_invoke", s);
		return -1;
	}
	s = gfn_future_wait(b->e, f, -1);
	rc = s == GFN_OK ? check_vadd_output(b->e, f, a, bb, VADD_N) : -1;
	if (s != GFN_OK)
		bcuda_api_error("vadd invocation", s);
	(void)gfn_future_release(b->e, f);
	return rc;
}

/* Warm the raw path up and check its result once. */
static int raw_vadd_up(raw_dev *r)
{
	if (raw_load_vadd(r) < 0 || raw_buffers(r) < 0 ||
	    warm(raw_copies_us, r) < 0 || warm(raw_launch_us, r) < 0)
		return -1;
	for (size_t i = 0; i < r->n; i++)
		if (r->hp[2][i] != r->hp[0][i] + r->hp[1][i]) {
			fprintf(stderr, "cuda: raw vadd wrong at %zu\n", i);
			return -1;
		}
	return 0;
}

typedef struct ovh_runs {
	bcuda_rep eng, launch, copies; /* per-repeat percentiles */
} ovh_runs;

static int ovh_repeats(bcuda *b, eng_vadd *v, raw_dev *r, ovh_runs *o,
                       double *us)
{
	size_t n;

	for (int i = 0; i < b->repeats; i++) {
		if (raw_current(r) < 0 ||
		    sample(raw_launch_us, r, b->seconds, us, MAX_CALLS, &n) < 0)
			return -1;
		bcuda_rep_store(&o->launch, i, us, n);
		if (sample(engine_us, v, b->seconds, us, MAX_CALLS, &n) < 0)
			return -1;
		bcuda_rep_store(&o->eng, i, us, n);
		if (raw_current(r) < 0 ||
		    sample(raw_copies_us, r, b->seconds, us, MAX_CALLS, &n) < 0)
			return -1;
		bcuda_rep_store(&o->copies, i, us, n);
		fprintf(b->h,
		        "  repeat %d/%d: engine p50 %.2f us, raw launch+sync "
		        "%.2f us, raw copies+launch+sync %.2f us\n",
		        i + 1, b->repeats, o->eng.p50[i], o->launch.p50[i],
		        o->copies.p50[i]);
	}
	return 0;
}

static void ovh_results(bcuda *b, ovh_runs *o)
{
	double launch = bench_median(o->launch.p50, (size_t)b->repeats);
	double copies = bench_median(o->copies.p50, (size_t)b->repeats);
	bench_result *res = bcuda_add_latency(b, "vadd4096", "per_call",
	                                      &o->eng, b->repeats);

	if (res) {
		res->baseline_name = "raw_launch_sync";
		res->baseline_value = launch;
		res->ratio = res->value / launch;
		res->goal = "<= 1.2x raw";
		res->goal_met = res->ratio <= GOAL_OVERHEAD;
	}
	res = bcuda_add_latency(b, "vadd4096_copies", "per_call", &o->eng,
	                        b->repeats);
	if (res) {
		res->baseline_name = "raw_copies_launch";
		res->baseline_value = copies;
		res->ratio = res->value / copies;
	}
}

static int bench_overhead_cuda(bcuda *b, raw_dev *r)
{
	static float a[VADD_N], bb[VADD_N];
	ovh_runs o = {0};
	eng_vadd v;
	double *us = malloc(MAX_CALLS * sizeof(double));
	int rc = -1;

	fprintf(b->h,
	        "vadd of %d floats: engine invoke+wait vs raw "
	        "cuLaunchKernel+cuStreamSynchronize\n",
	        VADD_N);
	if (!us || bcuda_rep_alloc(&o.eng, b->repeats) < 0 ||
	    bcuda_rep_alloc(&o.launch, b->repeats) < 0 ||
	    bcuda_rep_alloc(&o.copies, b->repeats) < 0)
		goto out;
	if (eng_vadd_up(b, &v, a, bb) < 0)
		goto out;
	if (raw_current(r) == 0 && raw_vadd_up(r) == 0 &&
	    warm(engine_us, &v) == 0 && ovh_repeats(b, &v, r, &o, us) == 0) {
		ovh_results(b, &o);
		rc = 0;
	}
	drop(b->e, v.in[0]);
	drop(b->e, v.in[1]);
out:
	bcuda_rep_free(&o.eng);
	bcuda_rep_free(&o.launch);
	bcuda_rep_free(&o.copies);
	free(us);
	return rc;
}

/* ---- (b) host-to-device bandwidth ------------------------------------------------ */

typedef struct h2d {
	const gfn_backend_ops *ops; /* the CUDA backend */
	gfn_bdev *d;                /* its device, opened here */
	gfn_bqueue *q;              /* a queue of it */
	gfn_bmem dm;                /* H2D_BYTES of device memory */
	gfn_shm_map map;            /* a store-like memfd segment */
	void *reg;                  /* its registration, or NULL */
	void *pinned;               /* cuMemHostAlloc memory, or NULL */
	void *pageable;             /* malloc memory, or NULL */
	raw_dev *r;                 /* the raw stream and context */
} h2d;

static int h2d_gfn(h2d *h)
{
	gfn_status s =
	        h->ops->copy_h2d(h->q, &h->dm, 0, h->map.base, H2D_BYTES);

	if (s == GFN_OK)
		s = h->ops->sync(h->q);
	if (s != GFN_OK)
		bcuda_api_error("copy_h2d from the registered segment", s);
	return s == GFN_OK ? 0 : -1;
}

static int h2d_raw(h2d *h, const void *src)
{
	CUdeviceptr dst = (CUdeviceptr)(uintptr_t)h->dm.ptr;

	return cu_ok(h->r->cu->cuMemcpyHtoDAsync(dst, src, H2D_BYTES, h->r->s),
	             "cuMemcpyHtoDAsync") &&
	                       cu_ok(h->r->cu->cuStreamSynchronize(h->r->s),
	                             "cuStreamSynchronize")
	               ? 0
	               : -1;
}

/* GB/s of `copies` copies from src (NULL: the gfn path); -1 on error. */
static double h2d_rate(h2d *h, const void *src, int copies)
{
	uint64_t t0;

	if (src && raw_current(h->r) < 0)
		return -1.0;
	t0 = bench_now_ns();
	for (int i = 0; i < copies; i++)
		if ((src ? h2d_raw(h, src) : h2d_gfn(h)) < 0)
			return -1.0;
	return (double)H2D_BYTES * copies / (double)(bench_now_ns() - t0);
}

/* Open the device at the backend level, map and register a segment as
   the store does, allocate the other two sources. */
static int h2d_up(h2d *h, int ordinal)
{
	gfn_status s = h->ops->device_open(ordinal, &h->d);

	if (s == GFN_OK)
		s = h->ops->queue_create(h->d, &h->q);
	if (s == GFN_OK)
		s = h->ops->mem_alloc(h->d, H2D_BYTES, &h->dm);
	if (s == GFN_OK)
		s = gfn__shm_create(H2D_BYTES, "gfn-bench-h2d", &h->map);
	if (s == GFN_OK)
		s = h->ops->host_register(h->d, h->map.base, H2D_BYTES,
		                          &h->reg);
	if (s != GFN_OK) {
		bcuda_api_error("H2D set-up (backend level)", s);
		return -1;
	}
	if (!h->r->cu->cuMemHostAlloc || !h->r->cu->cuMemFreeHost) {
		fprintf(stderr, "cuda: the driver lacks cuMemHostAlloc\n");
		return -1;
	}
	if (raw_current(h->r) < 0 ||
	    !cu_ok(h->r->cu->cuMemHostAlloc(&h->pinned, H2D_BYTES,
	                                    CU_MEMHOSTALLOC_PORTABLE),
	           "cuMemHostAlloc")) {
		h->pinned = NULL;
		return -1;
	}
	h->pageable = malloc(H2D_BYTES);
	if (!h->pageable) {
		fprintf(stderr, "cuda: out of memory\n");
		return -1;
	}
	/* Touch every page, so no copy pays for first faults. */
	memset(h->map.base, 0x11, H2D_BYTES);
	memset(h->pinned, 0x22, H2D_BYTES);
	memset(h->pageable, 0x33, H2D_BYTES);
	return 0;
}

static void h2d_down(h2d *h)
{
	if (h->r->ctx && raw_current(h->r) == 0 && h->pinned)
		(void)h->r->cu->cuMemFreeHost(h->pinned);
	free(h->pageable);
	if (h->reg)
		h->ops->host_unregister(h->d, h->reg);
	if (h->map.base)
		gfn__shm_close(&h->map, 0);
	if (h->dm.ptr)
		h->ops->mem_free(h->d, &h->dm);
	h->ops->queue_destroy(h->q);
	h->ops->device_close(h->d);
}

/* The registered copy really went straight from the segment (nothing
   staged) and landed: read the first KiB back. */
static int h2d_check(h2d *h, uint64_t staged0)
{
	static unsigned char back[1024];
	gfn_status s;

	if (h2d_gfn(h) < 0)
		return -1;
	s = h->ops->copy_d2h(h->q, back, &h->dm, 0, sizeof(back));
	if (s == GFN_OK)
		s = h->ops->sync(h->q);
	if (s != GFN_OK) {
		bcuda_api_error("copy_d2h", s);
		return -1;
	}
	if (memcmp(back, h->map.base, sizeof(back)) != 0) {
		fprintf(stderr, "cuda: H2D copy from the segment is wrong\n");
		return -1;
	}
	if (h->ops->staged_bytes && h->ops->staged_bytes(h->d) != staged0) {
		fprintf(stderr, "cuda: the copy from the registered segment "
		                "was staged: registration did not take\n");
		return -1;
	}
	return 0;
}

static int h2d_repeats(bcuda *b, h2d *h, bcuda_rep *reg, bcuda_rep *pin,
                       bcuda_rep *pag)
{
	int copies = b->opts->quick ? 2 : H2D_COPIES;

	for (int i = 0; i < b->repeats; i++) {
		pin->val[i] = h2d_rate(h, h->pinned, copies);
		reg->val[i] = h2d_rate(h, NULL, copies);
		pag->val[i] = h2d_rate(h, h->pageable, copies);
		if (pin->val[i] < 0 || reg->val[i] < 0 || pag->val[i] < 0)
			return -1;
		fprintf(b->h,
		        "  repeat %d/%d: registered segment %.1f GB/s, "
		        "cuMemHostAlloc %.1f GB/s, malloc %.1f GB/s\n",
		        i + 1, b->repeats, reg->val[i], pin->val[i],
		        pag->val[i]);
	}
	return 0;
}

static void add_rate(bcuda *b, const char *case_name, double *v,
                     const char *base_name, double base, const char *goal,
                     double goal_ratio)
{
	bench_result *res =
	        bench_report_add(b->rep, case_name, "bandwidth", "GB/s");

	if (!res)
		return;
	res->value = bench_median(v, (size_t)b->repeats);
	res->lo = v[0];
	res->hi = v[b->repeats - 1];
	res->baseline_name = base_name;
	res->baseline_value = base;
	res->ratio = res->value / base;
	res->goal = goal;
	res->goal_met = res->ratio >= goal_ratio;
}

static int bench_h2d(bcuda *b, raw_dev *r)
{
	bcuda_rep reg = {0}, pin = {0}, pag = {0};
	h2d h = {.ops = &gfn_cuda_backend, .r = r, .map = {.fd = -1}};
	int rc = -1;

	fprintf(b->h,
	        "H2D of %zu MiB: registered store-like segment "
	        "(backend copy_h2d) vs cuMemHostAlloc vs malloc\n",
	        H2D_BYTES >> 20);
	if (bcuda_rep_alloc(&reg, b->repeats) == 0 &&
	    bcuda_rep_alloc(&pin, b->repeats) == 0 &&
	    bcuda_rep_alloc(&pag, b->repeats) == 0 &&
	    h2d_up(&h, b->ordinal) == 0 &&
	    h2d_check(&h, h.ops->staged_bytes ? h.ops->staged_bytes(h.d) : 0) ==
	            0 &&
	    h2d_rate(&h, h.pinned, 1) > 0 && h2d_rate(&h, h.pageable, 1) > 0 &&
	    h2d_repeats(b, &h, &reg, &pin, &pag) == 0) {
		double pinned = bench_median(pin.val, (size_t)b->repeats);
		double pageable = bench_median(pag.val, (size_t)b->repeats);

		add_rate(b, "h2d_registered", reg.val, "cuMemHostAlloc", pinned,
		         ">= 0.9x pinned", GOAL_H2D);
		add_rate(b, "h2d_vs_pageable", reg.val, "malloc", pageable,
		         NULL, 0);
		rc = 0;
	}
	h2d_down(&h);
	bcuda_rep_free(&reg);
	bcuda_rep_free(&pin);
	bcuda_rep_free(&pag);
	return rc;
}

/* ---- (c) cold vs warm first call ------------------------------------------------ */

/*
 * Register vadd as name on e, make its inputs, run one invocation on
 * device mask and check it: what a first call costs. *t_reg: clock after
 * registering; *t_done: when the result is there. The function stays
 * registered (in *fn).
 */
static int first_call(gfn_engine *e, uint64_t mask, const char *name,
                      gfn_function *fn, uint64_t *t_reg, uint64_t *t_done)
{
	static float a[VADD_N], b[VADD_N];
	gfn_invocation inv = {.n_inputs = 2, .devices = mask};
	gfn_object in[2];
	gfn_future f;
	gfn_status s;
	int rc = -1;

	vadd_operands(a, b, VADD_N);
	s = register_vadd(e, name, fn);
	*t_reg = bench_now_ns();
	if (s != GFN_OK) {
		bcuda_api_error("registering vadd", s);
		return -1;
	}
	if ((s = make_f32(e, a, VADD_N, &in[0])) != GFN_OK) {
		bcuda_api_error("an input object", s);
		return -1;
	}
	if ((s = make_f32(e, b, VADD_N, &in[1])) != GFN_OK) {
		bcuda_api_error("an input object", s);
		drop(e, in[0]);
		return -1;
	}
	inv.fn = *fn;
	inv.inputs = in;
	s = gfn_invoke(e, &inv, &f);
	if (s == GFN_OK) {
		s = gfn_future_wait(e, f, -1);
		*t_done = bench_now_ns();
		if (s == GFN_OK)
			rc = check_vadd_output(e, f, a, b, VADD_N);
		(void)gfn_future_release(e, f);
	}
	if (s != GFN_OK)
		bcuda_api_error("the first vadd invocation", s);
	drop(e, in[0]);
	drop(e, in[1]);
	return rc;
}

static void child_config(gfn_config *cfg)
{
	gfn_config_init(cfg);
	/* CUDA only: no time spent probing backends the call never uses;
	   no disk kernel cache, so runs do not depend on earlier ones. */
	cfg->backends = GFN_BACKEND_CUDA;
	cfg->kcache_dir = "";
}

int bench_cuda_child(int argc, char **argv)
{
	uint64_t t_main = bench_now_ns(), t_eng, t_reg = 0, t_done = 0;
	gfn_engine *e = NULL;
	gfn_device_info info;
	gfn_function fn;
	gfn_config cfg;
	gfn_status s;
	long dev;
	int rc;

	if (argc != 3 || (dev = strtol(argv[2], NULL, 10)) < 0 || dev > 63) {
		fprintf(stderr, "gfn-bench: the cold-start child wants one "
		                "device index\n");
		return 2;
	}
	child_config(&cfg);
	s = gfn_engine_create(&cfg, &e);
	t_eng = bench_now_ns();
	if (s == GFN_OK)
		s = gfn_device_get_info(e, (size_t)dev, &info);
	if (s != GFN_OK || info.backend != GFN_BACKEND_CUDA) {
		bcuda_api_error("cold child: engine or device", s);
		gfn_engine_destroy(e);
		return 1;
	}
	rc = first_call(e, 1ull << dev, "bench.cuda.cold", &fn, &t_reg,
	                &t_done);
	if (rc == 0) {
		printf("%s %llu %llu %llu %llu\n", CHILD_TAG,
		       (unsigned long long)t_main, (unsigned long long)t_eng,
		       (unsigned long long)t_reg, (unsigned long long)t_done);
		fflush(stdout);
	}
	gfn_engine_destroy(e);
	return rc == 0 ? 0 : 1;
}

/* Read what the child prints until it closes the pipe. */
static void read_all(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		ssize_t k = read(fd, buf + n, cap - 1 - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	buf[n] = '\0';
}

/* Wait for pid; 0 when it exited 0, else -1 with a message. */
static int reap(pid_t pid)
{
	int st = 0;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			perror("cuda: waitpid");
			return -1;
		}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFEXITED(st))
		fprintf(stderr, "cuda: the cold-start child exited %d\n",
		        WEXITSTATUS(st));
	else
		fprintf(stderr, "cuda: the cold-start child died (signal %d)\n",
		        WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return -1;
}

/* Start this program as the cold-start child; its stdout is *out_fd. */
static int spawn_child(bcuda *b, pid_t *pid, int *out_fd)
{
	char arg0[] = "gfn-bench", arg1[] = BENCH_CUDA_CHILD, arg2[24];
	char *argv[] = {arg0, arg1, arg2, NULL};
	posix_spawn_file_actions_t fa;
	int fds[2], err;

	snprintf(arg2, sizeof(arg2), "%zu", b->dev);
	/* CLOEXEC: the child keeps only the copy dup2 puts on stdout. */
	if (pipe2(fds, O_CLOEXEC) < 0) {
		perror("cuda: pipe2");
		return -1;
	}
	err = posix_spawn_file_actions_init(&fa);
	if (!err)
		err = posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	if (!err)
		err = posix_spawn(pid, "/proc/self/exe", &fa, NULL, argv,
		                  environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (err) {
		fprintf(stderr, "cuda: posix_spawn: %s\n", strerror(err));
		close(fds[0]);
		return -1;
	}
	*out_fd = fds[0];
	return 0;
}

/* One cold run: ms from spawn to the child's result; parts[] (ms):
   start-up, engine create, register, first invocation. */
static int cold_once(bcuda *b, double *ms, double parts[4])
{
	unsigned long long t[4];
	char buf[256];
	uint64_t t0;
	pid_t pid;
	int fd, rc;

	t0 = bench_now_ns();
	if (spawn_child(b, &pid, &fd) < 0)
		return -1;
	read_all(fd, buf, sizeof(buf));
	close(fd);
	rc = reap(pid);
	if (rc == 0 && sscanf(buf, CHILD_TAG " %llu %llu %llu %llu", &t[0],
	                      &t[1], &t[2], &t[3]) != 4) {
		fprintf(stderr, "cuda: the cold-start child said '%s'\n", buf);
		rc = -1;
	}
	if (rc < 0)
		return -1;
	*ms = (double)(t[3] - t0) / 1e6;
	parts[0] = (double)(t[0] - t0) / 1e6;
	for (int i = 1; i < 4; i++)
		parts[i] = (double)(t[i] - t[i - 1]) / 1e6;
	return 0;
}

/* In the warm engine: a new function of a cached kernel, first call. */
static int warm_once(bcuda *b, int i, double *ms, uint64_t *hits)
{
	char name[48];
	gfn_stats s0, s1;
	gfn_function fn;
	uint64_t t0, t_reg, t_done = 0;
	int rc;

	snprintf(name, sizeof(name), "bench.cuda.warm%d", i);
	if (gfn_engine_stats(b->e, &s0) != GFN_OK)
		return -1;
	t0 = bench_now_ns();
	rc = first_call(b->e, b->mask, name, &fn, &t_reg, &t_done);
	if (rc == 0) {
		*ms = (double)(t_done - t0) / 1e6;
		(void)gfn_function_unregister(b->e, fn);
	}
	if (gfn_engine_stats(b->e, &s1) == GFN_OK)
		*hits += s1.kernel_cache_hits - s0.kernel_cache_hits;
	return rc;
}

static int cold_runs(bcuda *b, int n, double *cold, double *warm_ms)
{
	double parts[4], sum[4] = {0};
	uint64_t hits = 0;

	for (int i = 0; i < n; i++) {
		if (cold_once(b, &cold[i], parts) < 0 ||
		    warm_once(b, i, &warm_ms[i], &hits) < 0)
			return -1;
		for (int k = 0; k < 4; k++)
			sum[k] += parts[k];
		fprintf(b->h,
		        "  run %d/%d: cold %.1f ms (start-up %.1f, engine "
		        "%.1f, register %.1f, first call %.1f); warm %.3f ms\n",
		        i + 1, n, cold[i], parts[0], parts[1], parts[2],
		        parts[3], warm_ms[i]);
	}
	fprintf(b->h,
	        "  warm runs: %llu kernel-cache hits in %d registrations%s\n",
	        (unsigned long long)hits, n,
	        hits < (uint64_t)n ? " (NOT all from the cache)" : "");
	return 0;
}

static int bench_cold(bcuda *b)
{
	int n = b->repeats < COLD_MAX ? b->repeats : COLD_MAX;
	double cold[COLD_MAX], warm_ms[COLD_MAX];
	bench_result *res;

	fprintf(b->h, "first call: fresh process (cuInit, context, module, "
	              "call) vs new function in the warm engine\n");
	if (cold_runs(b, n, cold, warm_ms) < 0)
		return -1;
	res = bench_report_add(b->rep, "cold_first_call", "first_call", "ms");
	if (!res)
		return 0;
	res->value = bench_median(cold, (size_t)n);
	res->lo = cold[0];
	res->hi = cold[n - 1];
	res->baseline_name = "warm_new_function";
	res->baseline_value = bench_median(warm_ms, (size_t)n);
	res->ratio = res->value / res->baseline_value;
	return 0;
}

/* ---- the scenario ---------------------------------------------------------------- */

/* The first CUDA device of the engine; -1 with a message if none. */
static int find_device(bcuda *b, gfn_device_info *info)
{
	size_t n = 0;

	if (gfn_device_count(b->e, &n) != GFN_OK)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (gfn_device_get_info(b->e, i, info) == GFN_OK &&
		    info->backend == GFN_BACKEND_CUDA) {
			b->dev = i;
			b->mask = 1ull << i;
			b->ordinal = info->backend_index;
			return 0;
		}
	fprintf(stderr, "cuda: the engine found no CUDA device\n");
	return -1;
}

/* Zero CUDA devices: print why, on one line. */
static int no_device(void)
{
	const char *why = gfn_cuda_api_usable(gfn_cuda_api_get())
	                          ? gfn_error_detail()
	                          : "no usable libcuda.so.1";

	fprintf(stderr, "gfn-bench cuda: no CUDA device (%s): skipped\n",
	        why && why[0] ? why : "the driver reports none");
	return BENCH_SKIP;
}

static int driver_version(void)
{
	gfn_cuda_api *cu = gfn_cuda_api_get();
	int drv = 0;

	if (cu->cuDriverGetVersion)
		(void)cu->cuDriverGetVersion(&drv);
	return drv;
}

static void describe(bcuda *b, const gfn_device_info *info)
{
	fprintf(b->h,
	        "cuda: %s (ordinal %d, %.0f GiB, %u SMs), driver %d; "
	        "%d x %.3g s\n",
	        info->name, b->ordinal, (double)info->memory_bytes / (1u << 30),
	        info->compute_units, driver_version(), b->repeats, b->seconds);
}

/* The report's meta object: the device and the model's graph counts. */
static void set_meta(bcuda *b, const gfn_device_info *info)
{
	static char meta[512];
	char name[sizeof(info->name)];
	size_t i;

	/* Device names come from the driver: keep the JSON string plain. */
	for (i = 0; info->name[i] && i + 1 < sizeof(name); i++)
		name[i] = (unsigned char)info->name[i] < 0x20 ||
		                          info->name[i] == '"' ||
		                          info->name[i] == '\\'
		                  ? ' '
		                  : info->name[i];
	name[i] = '\0';
	snprintf(meta, sizeof(meta),
	         "{\"device\": \"%s\", \"driver_version\": %d, "
	         "\"vadd_floats\": %d, \"h2d_bytes\": %zu, "
	         "\"digits_graphs\": %llu, \"digits_replays\": %llu}",
	         name, driver_version(), VADD_N, H2D_BYTES,
	         (unsigned long long)b->graphs, (unsigned long long)b->replays);
	b->rep->meta = meta;
}

static int engine_up(bcuda *b, gfn_device_info *info)
{
	gfn_config cfg;
	gfn_status s;

	child_config(&cfg);
	s = gfn_engine_create(&cfg, &b->e);
	if (s != GFN_OK) {
		bcuda_api_error("gfn_engine_create", s);
		return -1;
	}
	return find_device(b, info);
}

static int run_all(bcuda *b)
{
	gfn_device_info info;
	raw_dev r;
	int rc = -1;

	if (engine_up(b, &info) < 0)
		return -1;
	describe(b, &info);
	if (raw_open(&r, b->ordinal) == 0 && bench_overhead_cuda(b, &r) == 0 &&
	    bench_h2d(b, &r) == 0 && bench_cold(b) == 0 && bcuda_model(b) == 0)
		rc = 0;
	set_meta(b, &info);
	raw_close(&r);
	return rc;
}

int bench_cuda_run(const bench_opts *opts, bench_report *report)
{
	bcuda b = {.opts = opts, .h = bench_human(opts), .rep = report};
	int n = 0;
	int rc;

	if (gfn_cuda_backend.probe(0, &n) != GFN_OK || n <= 0)
		return no_device();
	b.repeats = opts->quick ? 1 : opts->repeats;
	b.seconds = opts->quick && opts->seconds > QUICK_SECONDS
	                    ? QUICK_SECONDS
	                    : opts->seconds;
	rc = run_all(&b);
	gfn_engine_destroy(b.e);
	return rc;
}

#else /* !GFN_HAVE_CUDA */

int bench_cuda_run(const bench_opts *opts, bench_report *report)
{
	(void)opts;
	(void)report;
	fprintf(stderr, "gfn-bench cuda: gfn was built without CUDA "
	                "(-DGFN_WITH_CUDA=ON needs nvcc): skipped\n");
	return BENCH_SKIP;
}

int bench_cuda_child(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "gfn-bench: built without CUDA\n");
	return 1;
}

#endif /* GFN_HAVE_CUDA */
