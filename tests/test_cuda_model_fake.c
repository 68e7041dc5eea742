/*
 * test_cuda_model_fake.c - model graphs on the CUDA backend through the
 * fake driver (cuda_fake.h): gfn's own CUDA model path, not the driver.
 *
 * The fake runs each graph-op launch with the same kernel source compiled
 * as C (portable/graph_ops.gk in the dialect's C mode), and the fake
 * cuBLAS's sgemm is itself a fake-kernel launch on the bound stream, so
 * a captured graph records the GEMMs too and a replay recomputes
 * everything. The committed models must match their references through
 * the embedded fatbin's kernel names, the engine's staging, the warm
 * weights in device memory, and CUDA graphs recorded on the second
 * sighting of a shape and replayed after, or run directly when the
 * capture fails; nothing may leak.
 */
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gfn/gfn_model.h>

#include "model_ops.h"
#include "runtime/backends/cuda/cuda_backend.h"
#include "tests/cuda_fake.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kernels/portable/gfn_dialect.h"
#include "kernels/portable/graph_ops.gk"
#pragma GCC diagnostic pop

#ifndef GFN_MODELS_DIR
#error "GFN_MODELS_DIR must name tests/models"
#endif

/* ---- the graph ops as fake kernels ----------------------------------------------- */

#define PF(i) (*(float **)p[i])
#define PI(i) (*(int **)p[i])
#define PU(i) (*(uint64_t *)p[i])
#define PX(i) (*(float *)p[i])
#define EACH(call)                                                             \
	do {                                                                   \
		uint64_t items_ = (uint64_t)grid[0] * block[0];                \
		for (uint64_t i = 0; i < items_; i++)                          \
			call;                                                  \
		return CUDA_SUCCESS;                                           \
	} while (0)
#define GEOM(i)                                                                \
	PU(i), PU(i + 1), PU(i + 2), PU(i + 3), PU(i + 4), PU(i + 5),          \
	        PU(i + 6), PU(i + 7), PU(i + 8)

static CUresult k_bias(void **p, const unsigned grid[3],
                       const unsigned block[3])
{
	EACH(gfn_g_bias(PF(0), PF(1), PF(2), PU(3), PU(4), PU(5), PU(6), PU(7),
	                PU(8), i, 0));
}

static CUresult k_unary(void **p, const unsigned grid[3],
                        const unsigned block[3])
{
	EACH(gfn_g_unary(PF(0), PF(1), PU(2), PU(3), PU(4), PU(5), i, 0));
}

static CUresult k_softmax(void **p, const unsigned grid[3],
                          const unsigned block[3])
{
	EACH(gfn_g_softmax(PF(0), PF(1), PU(2), PU(3), PU(4), PU(5), i, 0));
}

static CUresult k_layernorm(void **p, const unsigned grid[3],
                            const unsigned block[3])
{
	EACH(gfn_g_layernorm(PF(0), PF(1), PF(2), PF(3), PU(4), PU(5), PU(6),
	                     PU(7), PU(8), PU(9), PX(10), i, 0));
}

static CUresult k_argmax(void **p, const unsigned grid[3],
                         const unsigned block[3])
{
	EACH(gfn_g_argmax(PF(0), PI(1), PU(2), PU(3), PU(4), PU(5), i, 0));
}

static CUresult k_im2col(void **p, const unsigned grid[3],
                         const unsigned block[3])
{
	EACH(gfn_g_im2col(PF(0), PF(1), PU(2), PU(3), GEOM(4), PU(13), i, 0));
}

static CUresult k_conv_out(void **p, const unsigned grid[3],
                           const unsigned block[3])
{
	EACH(gfn_g_conv_out(PF(0), PF(1), PF(2), PU(3), PU(4), PU(5), PU(6),
	                    PU(7), PU(8), PU(9), i, 0));
}

static CUresult k_pool(void **p, const unsigned grid[3],
                       const unsigned block[3])
{
	EACH(gfn_g_pool(PF(0), PF(1), PU(2), PU(3), GEOM(4), PU(13), PU(14), i,
	                0));
}

static CUresult k_embed(void **p, const unsigned grid[3],
                        const unsigned block[3])
{
	EACH(gfn_g_embed(PI(0), PF(1), PF(2), PU(3), PU(4), PU(5), PU(6), PU(7),
	                 PU(8), i, 0));
}

/* cuBLAS's contract, column-major; run as a fake launch (see b_sgemm). */
static CUresult k_sgemm(void **p, const unsigned grid[3],
                        const unsigned block[3])
{
	int ta = *(int *)p[0], tb = *(int *)p[1], m = *(int *)p[2],
	    n = *(int *)p[3], k = *(int *)p[4], lda = *(int *)p[7],
	    ldb = *(int *)p[9], ldc = *(int *)p[12];
	float alpha = PX(5), beta = PX(10);
	const float *a = PF(6), *b = PF(8);
	float *c = PF(11);

	(void)grid, (void)block;
	for (int i = 0; i < m; i++)
		for (int j = 0; j < n; j++) {
			double s = 0;

			for (int q = 0; q < k; q++)
				s += (double)(ta ? a[q + i * lda]
				                 : a[i + q * lda]) *
				     (tb ? b[j + q * ldb] : b[q + j * ldb]);
			c[i + j * ldc] =
			        (float)(alpha * s + beta * c[i + j * ldc]);
		}
	return CUDA_SUCCESS;
}

static void add_kernels(void)
{
	static const size_t s8[16] = {8, 8, 8, 8, 8, 8, 8, 8,
	                              8, 8, 8, 8, 8, 8, 8, 8};
	static const size_t ln[11] = {8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 4};
	static const size_t gemm[13] = {4, 4, 4, 4, 4, 4, 8, 4, 8, 4, 4, 8, 4};

	fake_kernel_add("gfn_g_bias", k_bias, 9, s8);
	fake_kernel_add("gfn_g_unary", k_unary, 6, s8);
	fake_kernel_add("gfn_g_softmax", k_softmax, 6, s8);
	fake_kernel_add("gfn_g_layernorm", k_layernorm, 11, ln);
	fake_kernel_add("gfn_g_argmax", k_argmax, 6, s8);
	fake_kernel_add("gfn_g_im2col", k_im2col, 14, s8);
	fake_kernel_add("gfn_g_conv_out", k_conv_out, 10, s8);
	fake_kernel_add("gfn_g_pool", k_pool, 15, s8);
	fake_kernel_add("gfn_g_embed", k_embed, 9, s8);
	fake_kernel_add("fake_sgemm", k_sgemm, 13, gemm);
}

/* ---- a fake cuBLAS whose GEMM is stream work ------------------------------------- */

static struct CUstream_st *bound; /* by cublasSetStream */
static int handles;               /* live */

static cublasStatus_t b_create(cublasHandle_t *h)
{
	handles++;
	*h = (cublasHandle_t)(uintptr_t)0x1234;
	return 0;
}

static cublasStatus_t b_destroy(cublasHandle_t h)
{
	(void)h;
	handles--;
	return 0;
}

static cublasStatus_t b_set_stream(cublasHandle_t h, struct CUstream_st *s)
{
	(void)h;
	bound = s;
	return 0;
}

static cublasStatus_t b_sgemm(cublasHandle_t h, cublasOperation_t ta,
                              cublasOperation_t tb, int m, int n, int k,
                              const float *alpha, const float *a, int lda,
                              const float *b, int ldb, const float *beta,
                              float *c, int ldc)
{
	void *p[13] = {&ta,  &tb, &m,   &n,           &k, (void *)alpha, &a,
	               &lda, &b,  &ldb, (void *)beta, &c, &ldc};

	(void)h;
	return fake_launch_named("fake_sgemm", 1, bound, p) == CUDA_SUCCESS
	               ? 0
	               : 13;
}

/* ---- the models --------------------------------------------------------------- */

static gfn_engine *eng;

/* fn on one input; its outputs' bytes into out[i] (sizes checked). */
static void invoke(gfn_function fn, gfn_dtype dt, int ndim,
                   const int64_t *shape, const void *x, size_t nout, void **out,
                   const size_t *size)
{
	gfn_invocation inv = {.fn = fn, .n_inputs = 1};
	gfn_object in = test_make(eng, dt, ndim, shape, x), res[2];
	gfn_object_view v;
	gfn_future f;
	size_t n;

	inv.inputs = &in;
	ASSERT_OK(gfn_invoke(eng, &inv, &f));
	ASSERT_OK(gfn_future_wait(eng, f, -1));
	ASSERT_OK(gfn_future_outputs(eng, f, res, 2, &n));
	ASSERT_EQ(n, nout);
	for (size_t i = 0; i < n; i++) {
		ASSERT_OK(gfn_object_get(eng, res[i], &v));
		ASSERT_EQ(v.size, size[i]);
		memcpy(out[i], v.data, v.size);
		ASSERT_OK(gfn_object_release(eng, res[i]));
		test_drop(eng, res[i]);
	}
	ASSERT_OK(gfn_future_release(eng, f));
	test_drop(eng, in);
}

static void near(const float *got, const float *want, size_t n, double tol,
                 const char *what)
{
	double worst = 0.0;

	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - want[i]);

		worst = fmax(worst, d);
		if (!(d <= tol + tol * fabs(want[i])))
			test_fail(__FILE__, __LINE__,
			          "%s: element %zu is %.9g, want %.9g", what, i,
			          got[i], want[i]);
	}
	printf("# %s: %zu values, max error %.3g\n", what, n, worst);
}

/* The CNN (numpy references) five times with the same shape: run, then
   recorded as a graph, then replayed; every run right. */
static void test_cnn_graphs(void)
{
	size_t bin, bf, bi;
	float *in = test_slurp(GFN_MODELS_DIR "/cnn/input.bin", &bin);
	float *ref = test_slurp(GFN_MODELS_DIR "/cnn/ref_probs.bin", &bf);
	int32_t *lab = test_slurp(GFN_MODELS_DIR "/cnn/ref_label.bin", &bi);
	int64_t shape[4] = {(int64_t)(bi / 4), 1, 8, 8};
	float *got = malloc(bf);
	int32_t *got_lab = malloc(bi);
	void *outs[2] = {got, got_lab};
	size_t sizes[2] = {bf, bi};
	gfn_model_device_info info;
	gfn_function fn;

	ASSERT_EQ(bin, (size_t)shape[0] * 64 * 4);
	ASSERT_OK(gfn_function_register_model(eng, GFN_MODELS_DIR "/cnn", "cnn",
	                                      &fn));
	for (int round = 0; round < 5; round++) {
		memset(got, 0, bf);
		invoke(fn, GFN_F32, 4, shape, in, 2, outs, sizes);
		near(got, ref, bf / 4, 1e-5, "cnn on fake CUDA");
		ASSERT_EQ(memcmp(got_lab, lab, bi), 0);
	}
	ASSERT_OK(gfn_model_get_device_info(eng, fn, 0, &info));
	printf("# cnn: %llu graphs recorded, %llu replays, %llu uploads\n",
	       (unsigned long long)info.graphs,
	       (unsigned long long)info.replays,
	       (unsigned long long)info.uploads);
	ASSERT_U64_EQ(info.uploads, 1);
	ASSERT_U64_EQ(info.graphs, 1);  /* at the second run */
	ASSERT_U64_EQ(info.replays, 3); /* the third to the fifth */
	ASSERT_OK(gfn_model_unregister(eng, fn));
	free(in);
	free(ref);
	free(lab);
	free(got);
	free(got_lab);
}

/* The digits MLP (scikit-learn's predict_proba) and the embedding model
   (numpy), batched whole: right through the direct path too. */
static void test_digits_embed(void)
{
	size_t bx, bp, bi, bs, bb;
	float *x = test_slurp(GFN_MODELS_DIR "/digits/test_x.f32", &bx);
	float *ref = test_slurp(GFN_MODELS_DIR "/digits/ref_proba.f32", &bp);
	int32_t *ids = test_slurp(GFN_MODELS_DIR "/embed/input.bin", &bi);
	float *score = test_slurp(GFN_MODELS_DIR "/embed/ref_score.bin", &bs);
	int32_t *best = test_slurp(GFN_MODELS_DIR "/embed/ref_best.bin", &bb);
	int64_t dshape[2] = {(int64_t)(bx / 256), 64}, eshape[2] = {0, 4};
	float *got = malloc(bp + bs);
	int32_t *got_best = malloc(bb);
	void *outs[2] = {got, got_best};
	size_t sizes[2] = {bp, bb};
	gfn_function fn;

	ASSERT_OK(gfn_function_register_model(eng, GFN_MODELS_DIR "/digits",
	                                      "digits", &fn));
	invoke(fn, GFN_F32, 2, dshape, x, 1, outs, sizes);
	near(got, ref, bp / 4, 1e-5, "digits on fake CUDA vs scikit-learn");
	ASSERT_OK(gfn_model_unregister(eng, fn));

	eshape[0] = (int64_t)(bb / 4);
	sizes[0] = bs;
	ASSERT_OK(gfn_function_register_model(eng, GFN_MODELS_DIR "/embed",
	                                      "embed", &fn));
	invoke(fn, GFN_I32, 2, eshape, ids, 2, outs, sizes);
	near(got, score, bs / 4, 1e-5, "embed on fake CUDA");
	ASSERT_EQ(memcmp(got_best, best, bb), 0);
	ASSERT_OK(gfn_model_unregister(eng, fn));
	free(x);
	free(ref);
	free(ids);
	free(score);
	free(best);
	free(got);
	free(got_best);
}

/* A capture the driver breaks (a launch refused while recording): the
   invocation still runs right, directly, and that model stops recording
   on that device. */
static void test_record_fails(void)
{
	size_t bin, bf, bi;
	int32_t *ids = test_slurp(GFN_MODELS_DIR "/embed/input.bin", &bin);
	float *score = test_slurp(GFN_MODELS_DIR "/embed/ref_score.bin", &bf);
	int32_t *best = test_slurp(GFN_MODELS_DIR "/embed/ref_best.bin", &bi);
	int64_t shape[2] = {(int64_t)(bi / 4), 4};
	float *got = malloc(bf);
	int32_t *got_best = malloc(bi);
	void *outs[2] = {got, got_best};
	size_t sizes[2] = {bf, bi};
	gfn_model_device_info info;
	gfn_function fn;

	ASSERT_OK(gfn_function_register_model(eng, GFN_MODELS_DIR "/embed",
	                                      "embed", &fn));
	for (int round = 0; round < 4; round++) {
		if (round == 1) { /* the round that records */
			pthread_mutex_lock(&fake.lock);
			fake.launch_result = CUDA_ERROR_INVALID_VALUE;
			pthread_mutex_unlock(&fake.lock);
		}
		memset(got, 0, bf);
		invoke(fn, GFN_I32, 2, shape, ids, 2, outs, sizes);
		near(got, score, bf / 4, 1e-5, "embed, recording refused");
		ASSERT_EQ(memcmp(got_best, best, bi), 0);
	}
	ASSERT_OK(gfn_model_get_device_info(eng, fn, 0, &info));
	ASSERT_U64_EQ(info.graphs, 0);
	ASSERT_U64_EQ(info.replays, 0);
	ASSERT_OK(gfn_model_unregister(eng, fn));
	free(ids);
	free(score);
	free(best);
	free(got);
	free(got_best);
}

/* Every op of the graph format on the fake CUDA device against the CPU
   (model_ops.c): each op's launch arguments, offsets and grid. */
static void test_ops(void)
{
	gfn_device_info info;
	gfn_config cfg;
	gfn_engine *e;
	size_t n, cpu = 0, cuda = 0;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU | GFN_BACKEND_CUDA;
	cfg.kcache_dir = "";
	cfg.device_pool_chunk = (size_t)1 << 22;
	e = test_engine_with(&cfg);
	ASSERT_OK(gfn_device_count(e, &n));
	for (size_t i = 0; i < n; i++) {
		ASSERT_OK(gfn_device_get_info(e, i, &info));
		if (info.backend == GFN_BACKEND_CPU)
			cpu = i;
		else
			cuda = i;
	}
	ASSERT_NE(cpu, cuda);
	model_ops_check_all(e, cpu, &cuda, 1);
	gfn_engine_destroy(e);
}

int main(void)
{
	gfn_cublas_api t = {b_create, b_destroy, b_set_stream, b_sgemm};
	gfn_config cfg;

	add_kernels();
	fake_install(1);
	gfn_cublas_api_install(&t);
	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CUDA;
	cfg.workers_per_device = 1;
	cfg.kcache_dir = "";
	cfg.device_pool_chunk = (size_t)1 << 22;
	eng = test_engine_with(&cfg);
	test_cnn_graphs();
	test_digits_embed();
	test_record_fails();
	gfn_engine_destroy(eng);
	test_ops();
	ASSERT_EQ(handles, 0);
	ASSERT(!fake_leaks());
	gfn_cublas_api_reset();
	fake_uninstall();
	printf("ok\n");
	return 0;
}
