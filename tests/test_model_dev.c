/*
 * test_model_dev.c - model graphs on OpenCL devices (kernels/model_dev.c:
 * graph ops from portable/graph_ops.gk, GEMM through CLBlast), on PoCL
 * with POCL_DEVICES="pthread pthread".
 *
 * Every op of the graph format, each as a one-node model made here with
 * random weights, on every OpenCL device against the CPU backend; the
 * committed models (digits vs scikit-learn, the CNN and the embedding
 * model vs numpy) on every OpenCL device against their references; warm
 * weights uploaded once per device and a hot path that allocates and
 * compiles nothing; dynamic batching on a device; a bad embedding id; a
 * model unregistered while its invocations are still queued. Exits 77
 * where there is no OpenCL device.
 */
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gfn/gfn_model.h>

#include "model_ops.h"

#ifndef GFN_MODELS_DIR
#error "GFN_MODELS_DIR must name tests/models"
#endif

static gfn_engine *eng;
static size_t cpu_dev;       /* the CPU device's index */
static size_t cl_devs[8];    /* the OpenCL devices' indices */
static size_t n_cl;          /* how many */
static uint64_t rng = 12345; /* inputs */

static void open_engine(void)
{
	gfn_config cfg;
	gfn_device_info info;
	size_t n;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU | GFN_BACKEND_OPENCL;
	cfg.cpu_devices = 1;
	cfg.workers_per_device = 2;
	cfg.kcache_dir = "";
	eng = test_engine_with(&cfg);
	ASSERT_OK(gfn_device_count(eng, &n));
	for (size_t i = 0; i < n; i++) {
		ASSERT_OK(gfn_device_get_info(eng, i, &info));
		if (info.backend == GFN_BACKEND_CPU)
			cpu_dev = i;
		else if (info.backend == GFN_BACKEND_OPENCL && n_cl < 8)
			cl_devs[n_cl++] = i;
	}
}

static float frand(float lo, float hi)
{
	return lo + (hi - lo) * (float)(test_rand(&rng) % 100001) / 100000.0f;
}

/* ---- every op on every OpenCL device vs the CPU (model_ops.c) -------------- */

static void test_ops(void)
{
	model_ops_check_all(eng, cpu_dev, cl_devs, n_cl);
}

/* ---- the committed models -------------------------------------------------- */

/* Outputs of fn for one input (dtype, shape) on device dev. */
static void invoke2(gfn_function fn, size_t dev, gfn_dtype dt, int ndim,
                    const int64_t *shape, const void *x, void *out0,
                    size_t cap0, void *out1, size_t cap1, size_t nout)
{
	gfn_invocation inv = {.fn = fn, .n_inputs = 1};
	gfn_object in = test_make(eng, dt, ndim, shape, x), res[2];
	void *outs[2] = {out0, out1};
	size_t caps[2] = {cap0, cap1}, n;
	gfn_object_view v;
	gfn_future f;

	inv.inputs = &in;
	inv.devices = 1ull << dev;
	ASSERT_OK(gfn_invoke(eng, &inv, &f));
	ASSERT_OK(gfn_future_wait(eng, f, -1));
	ASSERT_OK(gfn_future_outputs(eng, f, res, 2, &n));
	ASSERT_EQ(n, nout);
	for (size_t i = 0; i < n; i++) {
		ASSERT_OK(gfn_object_get(eng, res[i], &v));
		ASSERT_EQ(v.size, caps[i]);
		memcpy(outs[i], v.data, v.size);
		ASSERT_OK(gfn_object_release(eng, res[i]));
		test_drop(eng, res[i]);
	}
	ASSERT_OK(gfn_future_release(eng, f));
	test_drop(eng, in);
}

/* The digits MLP on each OpenCL device: within 1e-5 of scikit-learn's
   predict_proba on the whole held-out split, the same accuracy. */
static void test_digits(void)
{
	size_t bx, by, bp;
	float *x = test_slurp(GFN_MODELS_DIR "/digits/test_x.f32", &bx);
	int32_t *y = test_slurp(GFN_MODELS_DIR "/digits/test_y.i32", &by);
	float *ref = test_slurp(GFN_MODELS_DIR "/digits/ref_proba.f32", &bp);
	size_t rows = by / 4;
	float *got = malloc(bp);
	gfn_function fn;

	ASSERT_EQ(bx, rows * 64 * 4);
	ASSERT_EQ(bp, rows * 10 * 4);
	ASSERT_OK(gfn_function_register_model(eng, GFN_MODELS_DIR "/digits",
	                                      "digits", &fn));
	for (size_t d = 0; d < n_cl; d++) {
		int64_t shape[2] = {(int64_t)rows, 64};
		size_t right = 0, ref_right = 0;
		double worst = 0.0;

		invoke2(fn, cl_devs[d], GFN_F32, 2, shape, x, got, bp, NULL, 0,
		        1);
		for (size_t r = 0; r < rows; r++) {
			int best = 0, ref_best = 0;

			for (int c = 0; c < 10; c++) {
				size_t i = r * 10 + (size_t)c;

				worst = fmax(worst, fabs(got[i] - ref[i]));
				best = got[i] > got[r * 10 + best] ? c : best;
				ref_best = ref[i] > ref[r * 10 + ref_best]
				                   ? c
				                   : ref_best;
			}
			right += best == y[r];
			ref_right += ref_best == y[r];
		}
		printf("# digits on device %zu: %zu rows, accuracy %zu/%zu "
		       "(scikit-learn %zu), max |gfn - sklearn| %.3g\n",
		       cl_devs[d], rows, right, rows, ref_right, worst);
		ASSERT_LE(worst, 1e-5);
		ASSERT_EQ(right, ref_right);
	}
	ASSERT_OK(gfn_model_unregister(eng, fn));
	free(x);
	free(y);
	free(ref);
	free(got);
}

/* A fixture model of tests/models: outputs f (cols per row) and i32. */
static void check_fixture(const char *dir, gfn_dtype dt, int ndim,
                          int64_t *shape, const char *fname, const char *iname,
                          size_t cols)
{
	char path[512];
	size_t bin, bf, bi;
	void *in, *ref_f, *ref_i, *got_f, *got_i;
	gfn_function fn;

	snprintf(path, sizeof path, GFN_MODELS_DIR "/%s/input.bin", dir);
	in = test_slurp(path, &bin);
	snprintf(path, sizeof path, GFN_MODELS_DIR "/%s/ref_%s.bin", dir,
	         fname);
	ref_f = test_slurp(path, &bf);
	snprintf(path, sizeof path, GFN_MODELS_DIR "/%s/ref_%s.bin", dir,
	         iname);
	ref_i = test_slurp(path, &bi);
	shape[0] = (int64_t)(bi / 4);
	ASSERT_EQ(bf, bi * cols);
	got_f = malloc(bf);
	got_i = malloc(bi);
	snprintf(path, sizeof path, GFN_MODELS_DIR "/%s", dir);
	ASSERT_OK(gfn_function_register_model(eng, path, dir, &fn));
	for (size_t d = 0; d < n_cl; d++) {
		double worst = 0.0;

		invoke2(fn, cl_devs[d], dt, ndim, shape, in, got_f, bf, got_i,
		        bi, 2);
		for (size_t i = 0; i < bf / 4; i++) {
			double w = ((float *)ref_f)[i], g = ((float *)got_f)[i];

			worst = fmax(worst, fabs(w - g));
			ASSERT_LE(fabs(w - g), 1e-5 + 1e-5 * fabs(w));
		}
		ASSERT_EQ(memcmp(got_i, ref_i, bi), 0);
		printf("# %s on device %zu: %zu rows, max |gfn - numpy| %.3g\n",
		       dir, cl_devs[d], bi / 4, worst);
	}
	ASSERT_OK(gfn_model_unregister(eng, fn));
	free(in);
	free(ref_f);
	free(ref_i);
	free(got_f);
	free(got_i);
}

static void test_fixtures(void)
{
	int64_t cnn[4] = {0, 1, 8, 8}, emb[2] = {0, 4};

	check_fixture("cnn", GFN_F32, 4, cnn, "probs", "label", 10);
	check_fixture("embed", GFN_I32, 2, emb, "score", "best", 3);
}

/* ---- warm weights, hot path, batching, bad ids, unregister ----------------- */

#define DIGITS_ROWS 8

static gfn_object digits_input(size_t rows)
{
	int64_t shape[2] = {(int64_t)rows, 64};
	float x[64 * DIGITS_ROWS];

	for (size_t i = 0; i < rows * 64; i++)
		x[i] = frand(0.0f, 16.0f);
	return test_make_f32(eng, x, 2, shape);
}

/* Weights go up once per device; after warm-up invocations take no
   device memory from the driver, compile nothing, upload nothing. */
static void test_warm_hot(void)
{
	gfn_object in = digits_input(DIGITS_ROWS);
	gfn_model_device_info info;
	gfn_function fn;
	gfn_stats before, after;
	float out[DIGITS_ROWS * 10];

	ASSERT_OK(gfn_function_register_model(eng, GFN_MODELS_DIR "/digits",
	                                      "digits", &fn));
	for (size_t d = 0; d < n_cl; d++) {
		ASSERT_OK(
		        gfn_model_get_device_info(eng, fn, cl_devs[d], &info));
		ASSERT_EQ(info.warm, 0);
		model_ops_run_on(eng, fn, cl_devs[d], in, out, sizeof out);
		ASSERT_OK(
		        gfn_model_get_device_info(eng, fn, cl_devs[d], &info));
		ASSERT_EQ(info.warm, 1);
		ASSERT_U64_EQ(info.uploads, 1);
	}
	before = test_stats_idle(eng);
	for (int i = 0; i < 200; i++)
		model_ops_run_on(eng, fn, cl_devs[i % n_cl], in, out,
		                 sizeof out);
	after = test_stats_idle(eng);
	ASSERT_U64_EQ(after.device_allocs, before.device_allocs);
	ASSERT_U64_EQ(after.kernel_compiles, before.kernel_compiles);
	ASSERT_U64_EQ(after.host_allocs, before.host_allocs);
	for (size_t d = 0; d < n_cl; d++) {
		ASSERT_OK(
		        gfn_model_get_device_info(eng, fn, cl_devs[d], &info));
		ASSERT_U64_EQ(info.uploads, 1);
	}
	test_drop(eng, in);
	ASSERT_OK(gfn_model_unregister(eng, fn));
}

/* Many single rows at once on one device run batched; each result
   equals its own unbatched run on the CPU. */
static void test_batching(void)
{
	enum { N = 48 };
	gfn_object in[N];
	gfn_future f[N];
	gfn_function fn;
	gfn_stats before = test_stats_idle(eng), after;
	float want[10], got[10];

	ASSERT_OK(gfn_function_register_model(eng, GFN_MODELS_DIR "/digits",
	                                      "digits", &fn));
	gfn_invocation inv[N];
	size_t accepted;

	/* All made first and submitted in one call: they wait together
	   (one at a time, a fast device could take each alone). */
	for (int i = 0; i < N; i++) {
		in[i] = digits_input(1);
		inv[i] = (gfn_invocation){.fn = fn,
		                          .n_inputs = 1,
		                          .inputs = &in[i],
		                          .devices = 1ull << cl_devs[0]};
	}
	ASSERT_OK(gfn_invoke_many(eng, inv, N, f, &accepted));
	ASSERT_EQ(accepted, N);
	for (int i = 0; i < N; i++) {
		gfn_object res;
		gfn_object_view v;
		size_t n;

		ASSERT_OK(gfn_future_wait(eng, f[i], -1));
		ASSERT_OK(gfn_future_outputs(eng, f[i], &res, 1, &n));
		ASSERT_OK(gfn_object_get(eng, res, &v));
		memcpy(got, v.data, sizeof got);
		ASSERT_OK(gfn_object_release(eng, res));
		test_drop(eng, res);
		ASSERT_OK(gfn_future_release(eng, f[i]));
		model_ops_run_on(eng, fn, cpu_dev, in[i], want, sizeof want);
		for (int c = 0; c < 10; c++)
			ASSERT_LE(fabs(got[c] - want[c]), 1e-5);
		test_drop(eng, in[i]);
	}
	after = test_stats_idle(eng);
	printf("# batching on device %zu: %llu launches ran %llu of %d\n",
	       cl_devs[0], (unsigned long long)(after.batches - before.batches),
	       (unsigned long long)(after.batched - before.batched), N);
	ASSERT_GT(after.batches, before.batches);
	ASSERT_OK(gfn_model_unregister(eng, fn));
}

/* An id outside the table fails its invocation with a detail naming the
   table; the model and device go on working. */
static void test_bad_id(void)
{
	int32_t ids[4] = {0, 1, 16, 2}, good[4] = {3, 2, 1, 0};
	int64_t shape[2] = {1, 4};
	gfn_invocation inv = {.n_inputs = 1};
	gfn_object obj;
	gfn_future f;
	float score[3];
	int32_t best;

	ASSERT_OK(gfn_function_register_model(eng, GFN_MODELS_DIR "/embed",
	                                      "embed", &inv.fn));
	obj = test_make(eng, GFN_I32, 2, shape, ids);
	inv.inputs = &obj;
	inv.devices = 1ull << cl_devs[0];
	ASSERT_OK(gfn_invoke(eng, &inv, &f));
	ASSERT_FAILS(gfn_future_wait(eng, f, -1), GFN_EINVAL);
	ASSERT_OK(gfn_future_release(eng, f));
	test_drop(eng, obj);
	invoke2(inv.fn, cl_devs[0], GFN_I32, 2, shape, good, score,
	        sizeof score, &best, sizeof best, 2);
	ASSERT(best >= 0 && best < 3);
	ASSERT_OK(gfn_model_unregister(eng, inv.fn));
}

/* Unregistered with invocations still queued: they all run and finish
   right, and the model is freed after the last (ASan checks the rest). */
static void test_unregister_in_flight(void)
{
	enum { N = 64 };
	gfn_object in = digits_input(DIGITS_ROWS);
	gfn_future f[N];
	gfn_function fn;

	ASSERT_OK(gfn_function_register_model(eng, GFN_MODELS_DIR "/digits",
	                                      "digits", &fn));
	for (int i = 0; i < N; i++) {
		gfn_invocation inv = {.fn = fn, .n_inputs = 1, .inputs = &in};

		inv.devices = 1ull << cl_devs[i % n_cl];
		ASSERT_OK(gfn_invoke(eng, &inv, &f[i]));
	}
	ASSERT_OK(gfn_model_unregister(eng, fn));
	for (int i = 0; i < N; i++) {
		ASSERT_OK(gfn_future_wait(eng, f[i], -1));
		ASSERT_OK(gfn_future_release(eng, f[i]));
	}
	test_drop(eng, in);
}

int main(void)
{
	open_engine();
	if (!n_cl) {
		printf("# no OpenCL device: skipped\n");
		gfn_engine_destroy(eng);
		return 77;
	}
	test_ops();
	test_fixtures();
	test_digits();
	test_warm_hot();
	test_batching();
	test_bad_id();
	test_unregister_in_flight();
	gfn_engine_destroy(eng);
	printf("ok\n");
	return 0;
}
