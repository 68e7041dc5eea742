/*
 * test_cuda_gpu.c - the CUDA backend on a real GPU: built-in kernels from
 * the embedded fatbin, a user PTX kernel, a CUDA C kernel through NVRTC
 * and the kernel cache, a CUDA graph, cuBLAS GEMM against a CPU
 * reference, and a real fault: a kernel that stores to an illegal
 * address fails its invocation with GFN_EDEVICE, the device is reset (or
 * retired) and the engine's other devices keep working. And the digits
 * model on each GPU against scikit-learn, replayed as a CUDA graph. Exits 77 (ctest
 * SKIP) where the backend reports no CUDA device.
 */
#include "test.h"

#include "cuda_launch.h"

#include <gfn/gfn_builtins.h>
#include <gfn/gfn_model.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kernels/builtins.h"
#include "model_ops.h"
#include "runtime/backends/cuda/cuda_api.h"
#include "runtime/backends/cuda/cuda_backend.h"

static const gfn_backend_ops *const ops = &gfn_cuda_backend;

/*
 * user_vadd (c = a + b) and gfn_bad (one thread stores to an address
 * past the 49-bit virtual address space: CUDA_ERROR_ILLEGAL_ADDRESS).
 * nvcc -ptx -arch=compute_80 output, with .version lowered to 7.0 (CUDA
 * 11.0) so drivers older than the toolkit JIT it too; checked with
 * ptxas -arch=sm_90.
 */
static const char ptx[] = ".version 7.0\n"
                          ".target sm_80\n"
                          ".address_size 64\n"
                          "\t// .globl\tuser_vadd\n"
                          ".visible .entry user_vadd(\n"
                          "\t.param .u64 user_vadd_param_0,\n"
                          "\t.param .u64 user_vadd_param_1,\n"
                          "\t.param .u64 user_vadd_param_2,\n"
                          "\t.param .u64 user_vadd_param_3\n"
                          ")\n"
                          "{\n"
                          "\t.reg .pred \t%p<2>;\n"
                          "\t.reg .f32 \t%f<4>;\n"
                          "\t.reg .b32 \t%r<4>;\n"
                          "\t.reg .b64 \t%rd<15>;\n"
                          "\tld.param.u64 \t%rd2, [user_vadd_param_0];\n"
                          "\tld.param.u64 \t%rd3, [user_vadd_param_1];\n"
                          "\tld.param.u64 \t%rd4, [user_vadd_param_2];\n"
                          "\tld.param.u64 \t%rd5, [user_vadd_param_3];\n"
                          "\tmov.u32 \t%r1, %ctaid.x;\n"
                          "\tmov.u32 \t%r2, %ntid.x;\n"
                          "\tmul.wide.u32 \t%rd6, %r1, %r2;\n"
                          "\tmov.u32 \t%r3, %tid.x;\n"
                          "\tcvt.u64.u32 \t%rd7, %r3;\n"
                          "\tadd.s64 \t%rd1, %rd6, %rd7;\n"
                          "\tsetp.ge.u64 \t%p1, %rd1, %rd5;\n"
                          "\t@%p1 bra \t$L__BB0_2;\n"
                          "\tcvta.to.global.u64 \t%rd8, %rd2;\n"
                          "\tshl.b64 \t%rd9, %rd1, 2;\n"
                          "\tadd.s64 \t%rd10, %rd8, %rd9;\n"
                          "\tcvta.to.global.u64 \t%rd11, %rd3;\n"
                          "\tadd.s64 \t%rd12, %rd11, %rd9;\n"
                          "\tld.global.f32 \t%f1, [%rd12];\n"
                          "\tld.global.f32 \t%f2, [%rd10];\n"
                          "\tadd.f32 \t%f3, %f2, %f1;\n"
                          "\tcvta.to.global.u64 \t%rd13, %rd4;\n"
                          "\tadd.s64 \t%rd14, %rd13, %rd9;\n"
                          "\tst.global.f32 \t[%rd14], %f3;\n"
                          "$L__BB0_2:\n"
                          "\tret;\n"
                          "}\n"
                          "\t// .globl\tgfn_bad\n"
                          ".visible .entry gfn_bad(\n"
                          "\t.param .u64 gfn_bad_param_0,\n"
                          "\t.param .u64 gfn_bad_param_1,\n"
                          "\t.param .u64 gfn_bad_param_2\n"
                          ")\n"
                          "{\n"
                          "\t.reg .pred \t%p<2>;\n"
                          "\t.reg .f32 \t%f<2>;\n"
                          "\t.reg .b32 \t%r<4>;\n"
                          "\t.reg .b64 \t%rd<6>;\n"
                          "\tld.param.u64 \t%rd1, [gfn_bad_param_0];\n"
                          "\tld.param.u64 \t%rd2, [gfn_bad_param_2];\n"
                          "\tmov.u32 \t%r1, %ctaid.x;\n"
                          "\tmov.u32 \t%r2, %tid.x;\n"
                          "\tor.b32  \t%r3, %r1, %r2;\n"
                          "\tsetp.ne.s32 \t%p1, %r3, 0;\n"
                          "\t@%p1 bra \t$L__BB1_2;\n"
                          "\tcvta.to.global.u64 \t%rd3, %rd1;\n"
                          "\tshl.b64 \t%rd4, %rd2, 44;\n"
                          "\tor.b64  \t%rd5, %rd4, 16;\n"
                          "\tld.global.f32 \t%f1, [%rd3];\n"
                          "\tst.volatile.f32 \t[%rd5], %f1;\n"
                          "$L__BB1_2:\n"
                          "\tret;\n"
                          "}\n";

static const char saxpy_cu[] =
        "extern \"C\" __global__ void user_saxpy(const float *x,\n"
        "    const float *y, float *out, float a, unsigned long long n)\n"
        "{\n"
        "	unsigned long long i = blockIdx.x * (unsigned long long)"
        "blockDim.x + threadIdx.x;\n"
        "	if (i < n)\n"
        "		out[i] = a * x[i] + y[i];\n"
        "}\n";

static int cuda_dev[64]; /* engine indices of CUDA devices */
static int ncuda;        /* how many */
static int cpu_dev = -1; /* the CPU device's index */

static gfn_engine *engine(const char *kdir)
{
	gfn_config cfg;
	gfn_engine *e = NULL;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU | GFN_BACKEND_CUDA;
	cfg.kcache_dir = kdir;
	ASSERT_OK(gfn_engine_create(&cfg, &e));
	return e;
}

static void find_devices(gfn_engine *e)
{
	gfn_device_info info;
	size_t n = 0;

	ASSERT_OK(gfn_device_count(e, &n));
	for (size_t i = 0; i < n; i++) {
		ASSERT_OK(gfn_device_get_info(e, i, &info));
		if (info.backend == GFN_BACKEND_CPU && cpu_dev < 0)
			cpu_dev = (int)i;
		if (info.backend != GFN_BACKEND_CUDA)
			continue;
		printf("# %s: %.1f GiB, %u SMs, PCI %s\n", info.name,
		       (double)info.memory_bytes / (1 << 30),
		       info.compute_units, info.pci_bus_id);
		ASSERT_GT(info.memory_bytes, 0);
		ASSERT_GT(info.compute_units, 0);
		cuda_dev[ncuda++] = (int)i;
	}
}

/* Run fn on the two vectors (or one, with y NULL) on device dev. */
static gfn_status run2(gfn_engine *e, gfn_function fn, const float *x,
                       const float *y, size_t n, const gfn_scalar *par,
                       size_t npar, int dev, float *out, size_t nout)
{
	gfn_object obj[2];
	size_t nin = y ? 2 : 1;
	gfn_invocation inv;
	gfn_future f;
	gfn_status s;

	obj[0] = test_make_f32_1d(e, x, n);
	if (y)
		obj[1] = test_make_f32_1d(e, y, n);
	inv = test_inv(fn, nin, obj, npar, par);
	inv.devices = 1ull << dev;
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	s = gfn_future_wait(e, f, -1);
	if (s == GFN_OK) {
		gfn_object o = test_take_output(e, f);
		test_read_f32(e, o, out, nout);
		test_drop(e, o);
	}
	ASSERT_OK(gfn_future_release(e, f));
	for (size_t k = 0; k < nin; k++)
		test_drop(e, obj[k]);
	return s;
}

/* c = a + b on dev with fn (a vadd signature), checked exactly: an f32
   add is correctly rounded on the GPU as on the CPU reference. */
static void vadd_on(gfn_engine *e, gfn_function fn, int dev, size_t n)
{
	float *a = malloc(n * 4), *b = malloc(n * 4), *c = malloc(n * 4);

	for (size_t i = 0; i < n; i++)
		a[i] = (float)i * 0.25f, b[i] = 1.0f / (float)(i + 1);
	ASSERT_OK(run2(e, fn, a, b, n, NULL, 0, dev, c, n));
	for (size_t i = 0; i < n; i++)
		ASSERT_DBL_EQ(c[i], a[i] + b[i]);
	free(a), free(b), free(c);
}

static gfn_function find(gfn_engine *e, const char *name)
{
	gfn_function fn;

	ASSERT_OK(gfn_function_find(e, name, &fn));
	return fn;
}

static void test_builtins(void)
{
	gfn_engine *e = engine("");
	enum { N = 100003 };
	float *x = malloc(N * 4), out;
	double s = 0, abs_s = 0;

	ASSERT_OK(gfn_builtins_register(e));
	for (int i = 0; i < N; i++) {
		x[i] = (float)((i % 1000) - 500) / 64.0f;
		s += x[i], abs_s += fabs(x[i]);
	}
	for (int k = 0; k < ncuda; k++) {
		vadd_on(e, find(e, "gfn.vadd"), cuda_dev[k], (1 << 20) + 3);
		ASSERT_OK(run2(e, find(e, "gfn.sum"), x, NULL, N, NULL, 0,
		               cuda_dev[k], &out, 1));
		ASSERT(fabs(out - s) <= 1e-5 * abs_s + 1e-37);
	}
	free(x);
	gfn_engine_destroy(e);
}

static gfn_function reg_vadd_like(gfn_engine *e, const char *name,
                                  const gfn_cuda_kernel *k)
{
	gfn_tensor_spec in[2], out[1];
	gfn_function_desc d = {.name = name,
	                       .n_inputs = 2,
	                       .inputs = in,
	                       .n_outputs = 1,
	                       .outputs = out,
	                       .cuda = k};
	gfn_function fn;

	test_vadd_signature(in, out);
	ASSERT_OK(gfn_function_register(e, &d, &fn));
	return fn;
}

static void test_user_ptx(void)
{
	gfn_cuda_kernel k = {.image = ptx,
	                     .name = "user_vadd",
	                     .work = {.kind = GFN_WORK_ELEMENTS,
	                              .local = {128},
	                              .pass_sizes = 1}};
	gfn_engine *e = engine("");
	gfn_function fn = reg_vadd_like(e, "user_vadd", &k);

	for (int i = 0; i < ncuda; i++) {
		vadd_on(e, fn, cuda_dev[i], 1000);
		vadd_on(e, fn, cuda_dev[i], 1);
	}
	gfn_engine_destroy(e);
}

static gfn_status reg_saxpy(gfn_engine *e, gfn_function *fn)
{
	static const gfn_param_spec par[] = {{"a", GFN_PARAM_F32}};
	gfn_tensor_spec in[2], out[1];
	gfn_cuda_kernel k = {
	        .source = saxpy_cu,
	        .options = "-DUNUSED=1",
	        .name = "user_saxpy",
	        .work = {.kind = GFN_WORK_ELEMENTS, .pass_sizes = 1}};
	gfn_function_desc d = {.name = "user_saxpy",
	                       .n_inputs = 2,
	                       .inputs = in,
	                       .n_outputs = 1,
	                       .outputs = out,
	                       .n_params = 1,
	                       .params = par,
	                       .cuda = &k};

	test_vadd_signature(in, out);
	return gfn_function_register(e, &d, fn);
}

static void saxpy_on(gfn_engine *e, gfn_function fn, int dev)
{
	enum { N = 5000 };
	static float x[N], y[N], out[N];
	gfn_scalar a = {.f32 = 3};

	for (int i = 0; i < N; i++)
		x[i] = (float)i, y[i] = 0.5f;
	ASSERT_OK(run2(e, fn, x, y, N, &a, 1, dev, out, N));
	for (int i = 0; i < N; i++)
		ASSERT_DBL_EQ(out[i], 3.0f * x[i] + 0.5f);
}

static void test_cuda_c(void)
{
	char dir[] = "/tmp/gfn-cuda-gpu-kcache-XXXXXX", cmd[96];
	gfn_function fn;
	gfn_engine *e;

	if (!gfn_nvrtc_api_usable(gfn_nvrtc_api_get())) {
		printf("# no libnvrtc: CUDA C kernels skipped\n");
		return;
	}
	ASSERT_NOT_NULL(mkdtemp(dir));
	e = engine(dir);
	ASSERT_OK(reg_saxpy(e, &fn));
	ASSERT_GE(test_stats(e).kernel_compiles, 1);
	for (int i = 0; i < ncuda; i++)
		saxpy_on(e, fn, cuda_dev[i]);
	gfn_engine_destroy(e);
	e = engine(dir); /* a new engine: the binary comes from the cache */
	ASSERT_OK(reg_saxpy(e, &fn));
	ASSERT_GE(test_stats(e).kernel_cache_hits, 1);
	saxpy_on(e, fn, cuda_dev[0]);
	gfn_engine_destroy(e);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ASSERT_EQ(system(cmd), 0);
}

/* ---- ops-level: graphs and cuBLAS on device 0 ----------------------------------- */

static void test_graph(gfn_bdev *d, gfn_bqueue *q)
{
	enum { N = 4096 };
	size_t nb;
	const gfn_cuda_kernel *ck = gfn__builtins(&nb)[0].desc.cuda;
	gfn_ksrc src = {.kind = GFN_KSRC_CUDA_PTX,
	                .text = ck->image,
	                .len = ck->image_len,
	                .entry = ck->name};
	static float h[N];
	gfn_cuda_graph *g;
	gfn_bkernel *k;
	gfn_bmem m[4];
	int cached;

	ASSERT_STR_EQ(gfn__builtins(&nb)[0].desc.name, "gfn.vadd");
	ASSERT_OK(ops->kernel_load(d, &src, &k, &cached));
	for (int i = 0; i < 4; i++)
		ASSERT_OK(ops->mem_alloc(d, N * 4, &m[i]));
	for (int i = 0; i < N; i++)
		h[i] = (float)i;
	ASSERT_OK(ops->copy_h2d(q, &m[0], 0, h, sizeof(h)));
	ASSERT_OK(ops->copy_h2d(q, &m[1], 0, h, sizeof(h)));
	ASSERT_OK(ops->sync(q));
	ASSERT_OK(gfn_cuda_graph_begin(q)); /* m3 = ((m0 + m1) + m1) + m1 */
	ASSERT_OK(launch_vadd(q, k, &m[0], &m[1], &m[2], N));
	ASSERT_OK(launch_vadd(q, k, &m[2], &m[1], &m[3], N));
	ASSERT_OK(launch_vadd(q, k, &m[3], &m[1], &m[2], N));
	ASSERT_OK(gfn_cuda_graph_end(q, &g));
	for (int rep = 0; rep < 3; rep++)
		ASSERT_OK(gfn_cuda_graph_launch(q, g));
	ASSERT_OK(ops->copy_d2h(q, h, &m[2], 0, sizeof(h)));
	ASSERT_OK(ops->sync(q));
	for (int i = 0; i < N; i++)
		ASSERT_DBL_EQ(h[i], 4.0f * (float)i);
	gfn_cuda_graph_destroy(g);
	for (int i = 0; i < 4; i++)
		ops->mem_free(d, &m[i]);
	ops->kernel_unload(d, k);
}

static void test_sgemm(gfn_bdev *d, gfn_bqueue *q)
{
	enum { M = 64, N = 48, K = 32, LD = 64 };
	static float A[LD * LD], B[LD * LD], C[LD * LD];
	gfn_bmem a, b, c;
	gfn_status s;

	ASSERT_OK(ops->mem_alloc(d, sizeof(A), &a));
	ASSERT_OK(ops->mem_alloc(d, sizeof(B), &b));
	ASSERT_OK(ops->mem_alloc(d, sizeof(C), &c));
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++) {
			for (int i = 0; i < LD * LD; i++)
				A[i] = (float)(i % 13) / 8 - 0.75f,
				B[i] = (float)(i % 5) / 4, C[i] = 1;
			ASSERT_OK(ops->copy_h2d(q, &a, 0, A, sizeof(A)));
			ASSERT_OK(ops->copy_h2d(q, &b, 0, B, sizeof(B)));
			ASSERT_OK(ops->copy_h2d(q, &c, 0, C, sizeof(C)));
			s = gfn_cuda_sgemm(q, ta, tb, M, N, K, 2.0f, &a, LD, &b,
			                   LD, 0.5f, &c, LD);
			if (s == GFN_ENOTSUP) {
				printf("# no cuBLAS: %s\n", gfn_error_detail());
				goto out;
			}
			ASSERT_OK(s);
			ASSERT_OK(ops->copy_d2h(q, C, &c, 0, sizeof(C)));
			ASSERT_OK(ops->sync(q));
			for (int i = 0; i < M; i++)
				for (int j = 0; j < N; j++) {
					double w = 0.5;
					for (int p = 0; p < K; p++)
						w += 2.0 *
						     (ta ? A[p * LD + i]
						         : A[i * LD + p]) *
						     (tb ? B[j * LD + p]
						         : B[p * LD + j]);
					ASSERT(fabs(C[i * LD + j] - w) <=
					       1e-3 * (fabs(w) + 1));
				}
		}
out:
	ops->mem_free(d, &a), ops->mem_free(d, &b), ops->mem_free(d, &c);
}

static void test_ops_level(void)
{
	gfn_bqueue *q;
	gfn_bdev *d;
	int n = 0;

	ASSERT_OK(ops->probe(0, &n));
	ASSERT_GT(n, 0);
	ASSERT_OK(ops->device_open(0, &d));
	ASSERT_OK(ops->queue_create(d, &q));
	test_graph(d, q);
	test_sgemm(d, q);
	ops->queue_destroy(q);
	ops->device_close(d);
}

/* ---- a real fault ------------------------------------------------------------------- */

static void test_fault(void)
{
	gfn_cuda_kernel bad = {
	        .image = ptx,
	        .name = "gfn_bad",
	        .work = {.kind = GFN_WORK_ELEMENTS, .pass_sizes = 1}};
	gfn_tensor_spec in[1] = {{"x", GFN_F32, 1, {GFN_DIM_VAR(0)}}};
	gfn_tensor_spec out[1] = {{"y", GFN_F32, 1, {GFN_DIM_VAR(0)}}};
	gfn_function_desc d = {.name = "bad",
	                       .n_inputs = 1,
	                       .inputs = in,
	                       .n_outputs = 1,
	                       .outputs = out,
	                       .cuda = &bad};
	gfn_engine *e = engine("");
	float x[64] = {1}, y[64];
	gfn_function fn;
	gfn_stats st;
	int dev = cuda_dev[0];

	ASSERT_OK(gfn_builtins_register(e));
	ASSERT_OK(gfn_function_register(e, &d, &fn));
	ASSERT_FAILS(run2(e, fn, x, NULL, 64, NULL, 0, dev, y, 64),
	             GFN_EDEVICE);
	printf("# fault: %s\n", gfn_error_detail());
	for (int i = 0; i < 3000; i++) { /* quarantine, then reset or retire */
		st = test_stats(e);
		if (st.device_resets + st.devices_retired)
			break;
		test_sleep_us(10000);
	}
	ASSERT_EQ(st.device_resets + st.devices_retired, 1);
	printf("# device %s\n", st.device_resets ? "reset" : "retired");
	if (st.device_resets)
		vadd_on(e, find(e, "gfn.vadd"), dev, 10000);
	for (int k = 1; k < ncuda; k++) /* the others never stopped */
		vadd_on(e, find(e, "gfn.vadd"), cuda_dev[k], 10000);
	vadd_on(e, find(e, "gfn.vadd"), cpu_dev, 10000);
	gfn_engine_destroy(e);
}

/* ---- models on the GPU -------------------------------------------------------------- */

/* The whole digits split on device dev; probabilities into out. */
static void digits_on(gfn_engine *e, gfn_function fn, int dev, const float *x,
                      size_t rows, float *out)
{
	int64_t shape[2] = {(int64_t)rows, 64};
	gfn_object in = test_make_f32(e, x, 2, shape), res;
	gfn_invocation inv = {.fn = fn, .n_inputs = 1, .inputs = &in};
	gfn_future f;
	size_t n;

	inv.devices = 1ull << dev;
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	ASSERT_OK(gfn_future_wait(e, f, -1));
	ASSERT_OK(gfn_future_outputs(e, f, &res, 1, &n));
	test_read_f32(e, res, out, rows * 10);
	test_drop(e, res);
	ASSERT_OK(gfn_future_release(e, f));
	test_drop(e, in);
}

/* The scikit-learn digits MLP on each GPU: every run of the held-out
   split within 1e-5 of predict_proba (weights uploaded once, kernels from
   the fatbin, GEMM by cuBLAS), run, then recorded as a CUDA graph, then
   replayed. */
static void test_models(void)
{
	gfn_engine *e = engine("");
	size_t bx, bp;
	float *x = test_slurp(GFN_MODELS_DIR "/digits/test_x.f32", &bx);
	float *ref = test_slurp(GFN_MODELS_DIR "/digits/ref_proba.f32", &bp);
	size_t rows = bx / 256;
	float *got = malloc(bp);
	gfn_model_device_info info;
	gfn_function fn;

	ASSERT_OK(gfn_function_register_model(e, GFN_MODELS_DIR "/digits",
	                                      "digits", &fn));
	for (int k = 0; k < ncuda; k++) {
		double worst = 0;

		for (int round = 0; round < 5; round++) {
			memset(got, 0, bp);
			digits_on(e, fn, cuda_dev[k], x, rows, got);
			for (size_t i = 0; i < rows * 10; i++)
				worst = fmax(worst, fabs(got[i] - ref[i]));
			ASSERT_LE(worst, 1e-5);
		}
		ASSERT_OK(gfn_model_get_device_info(e, fn, (size_t)cuda_dev[k],
		                                    &info));
		printf("# digits on device %d: max |gfn - sklearn| %.3g, "
		       "%llu graph(s), %llu replays\n",
		       cuda_dev[k], worst, (unsigned long long)info.graphs,
		       (unsigned long long)info.replays);
		ASSERT_U64_EQ(info.uploads, 1);
		ASSERT_U64_EQ(info.graphs, 1);
		ASSERT_U64_EQ(info.replays, 3);
	}
	ASSERT_OK(gfn_model_unregister(e, fn));
	gfn_engine_destroy(e);
	free(x);
	free(ref);
	free(got);
}

/* Every op of the graph format on each GPU against the CPU. */
static void test_model_ops(void)
{
	gfn_engine *e = engine("");
	size_t devs[64];

	for (int k = 0; k < ncuda; k++)
		devs[k] = (size_t)cuda_dev[k];
	model_ops_check_all(e, (size_t)cpu_dev, devs, (size_t)ncuda);
	gfn_engine_destroy(e);
}

int main(void)
{
	gfn_engine *e = engine("");

	find_devices(e);
	gfn_engine_destroy(e);
	if (!ncuda) {
		printf("# no CUDA device: skipped\n");
		return 77;
	}
	TEST_RUN(test_builtins);
	TEST_RUN(test_user_ptx);
	TEST_RUN(test_cuda_c);
	TEST_RUN(test_ops_level);
	TEST_RUN(test_models);
	TEST_RUN(test_model_ops);
	TEST_RUN(test_fault); /* last: it resets the device */
	return 0;
}
