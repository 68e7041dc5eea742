/*
 * test_cuda_fake.c - the CUDA backend's own logic, on every machine,
 * through a fake driver installed in gfn's driver entry-point table
 * (cuda_fake.h). These tests check what gfn does with the driver's
 * answers: lazy shared contexts, per-worker streams, pooled device memory
 * with no allocation on the hot path, registration in 64 GiB chunks,
 * staging, the launch argument convention and grid, out-of-memory at
 * every step with nothing leaked, launch failures, sticky errors and
 * resets, graphs, NVRTC and cuBLAS glue. They test gfn's logic, not the
 * driver: tests/test_cuda_gpu.c runs on a real GPU.
 */
#include "test.h"

#include "cuda_launch.h"

#include <gfn/gfn_builtins.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cuda_fake.h"
#include "runtime/backends/cuda/cuda_backend.h"

static const gfn_backend_ops *const ops = &gfn_cuda_backend;

/* A PTX "image" the fake accepts; the kernel comes from its name. */
static const char fake_ptx[] = "// fake PTX for the fake driver\n";

/* ---- fake kernels (C versions of what the device would run) ---------------- */

static void *dp(void *param)
{
	return (void *)(uintptr_t) * (CUdeviceptr *)param;
}

static unsigned long long ull(void *param)
{
	return *(unsigned long long *)param;
}

/* The grid must cover n threads along x: a gfn bug otherwise. */
static int covers(const unsigned g[3], const unsigned b[3],
                  unsigned long long n)
{
	return (unsigned long long)g[0] * b[0] >= n;
}

static CUresult k_vadd(void **p, const unsigned g[3], const unsigned b[3])
{
	const float *x = dp(p[0]), *y = dp(p[1]);
	float *c = dp(p[2]);
	unsigned long long n = ull(p[3]);

	if (!covers(g, b, n))
		return CUDA_ERROR_INVALID_VALUE;
	for (unsigned long long i = 0; i < n; i++)
		c[i] = x[i] + y[i];
	return CUDA_SUCCESS;
}

static CUresult k_saxpy(void **p, const unsigned g[3], const unsigned b[3])
{
	const float *x = dp(p[0]), *y = dp(p[1]);
	float *out = dp(p[2]), a = *(float *)p[3];
	unsigned long long n = ull(p[4]);

	if (!covers(g, b, n))
		return CUDA_ERROR_INVALID_VALUE;
	for (unsigned long long i = 0; i < n; i++)
		out[i] = a * x[i] + y[i];
	return CUDA_SUCCESS;
}

static CUresult map(void **p, const unsigned g[3], const unsigned b[3],
                    double (*f)(double))
{
	const float *x = dp(p[0]);
	float *out = dp(p[1]);
	unsigned long long n = ull(p[2]);

	if (!covers(g, b, n))
		return CUDA_ERROR_INVALID_VALUE;
	for (unsigned long long i = 0; i < n; i++)
		out[i] = (float)f(x[i]);
	return CUDA_SUCCESS;
}

static double relu_d(double x)
{
	return x > 0 ? x : 0;
}
static double gelu_d(double v)
{
	return 0.5 * v *
	       (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
}
static double sigmoid_d(double x)
{
	return 1.0 / (1.0 + exp(-x));
}
static CUresult k_relu(void **p, const unsigned g[3], const unsigned b[3])
{
	return map(p, g, b, relu_d);
}
static CUresult k_gelu(void **p, const unsigned g[3], const unsigned b[3])
{
	return map(p, g, b, gelu_d);
}
static CUresult k_tanh(void **p, const unsigned g[3], const unsigned b[3])
{
	return map(p, g, b, tanh);
}
static CUresult k_sigmoid(void **p, const unsigned g[3], const unsigned b[3])
{
	return map(p, g, b, sigmoid_d);
}

/* gfn.sum runs as exactly one block of 256 threads. */
static CUresult k_sum(void **p, const unsigned g[3], const unsigned b[3])
{
	const float *x = dp(p[0]);
	float *out = dp(p[1]);
	unsigned long long n = ull(p[2]);
	double s = 0;

	if (g[0] != 1 || b[0] != 256)
		return CUDA_ERROR_INVALID_VALUE;
	for (unsigned long long i = 0; i < n; i++)
		s += x[i];
	out[0] = (float)s;
	return CUDA_SUCCESS;
}

/* A kernel that writes to an illegal address: the context is poisoned
   and the error shows at the next synchronisation, as on a GPU. */
static CUresult k_bad(void **p, const unsigned g[3], const unsigned b[3])
{
	(void)p, (void)g, (void)b;
	fake_poison_current();
	return CUDA_SUCCESS;
}

/* y = x * f + i + l + d: every scalar type at its declared width. */
static CUresult k_scal(void **p, const unsigned g[3], const unsigned b[3])
{
	const float *x = dp(p[0]);
	float *y = dp(p[1]), f = *(float *)p[2];
	int32_t i = *(int32_t *)p[3];
	int64_t l = *(int64_t *)p[4];
	double d = *(double *)p[5];
	unsigned long long n = ull(p[6]);

	if (!covers(g, b, n))
		return CUDA_ERROR_INVALID_VALUE;
	for (unsigned long long k = 0; k < n; k++)
		y[k] = x[k] * f + (float)i + (float)l + (float)d;
	return CUDA_SUCCESS;
}

/* y[r][c] = x[r][c] * 10 + r over a 2-D grid (cols, rows). */
static CUresult k_rows(void **p, const unsigned g[3], const unsigned b[3])
{
	const float *x = dp(p[0]);
	float *y = dp(p[1]);
	unsigned long long cols = ull(p[2]), rows = ull(p[3]);

	if ((unsigned long long)g[0] * b[0] < cols ||
	    (unsigned long long)g[1] * b[1] < rows)
		return CUDA_ERROR_INVALID_VALUE;
	for (unsigned long long r = 0; r < rows; r++)
		for (unsigned long long c = 0; c < cols; c++)
			y[r * cols + c] = x[r * cols + c] * 10.0f + (float)r;
	return CUDA_SUCCESS;
}

static void add_kernels(void)
{
	static const size_t p3[] = {8, 8, 8}, p4[] = {8, 8, 8, 8},
	                    p5[] = {8, 8, 8, 4, 8},
	                    p7[] = {8, 8, 4, 4, 8, 8, 8};

	fake_kernel_add("gfn_vadd", k_vadd, 4, p4);
	fake_kernel_add("gfn_saxpy", k_saxpy, 5, p5);
	fake_kernel_add("gfn_relu", k_relu, 3, p3);
	fake_kernel_add("gfn_gelu", k_gelu, 3, p3);
	fake_kernel_add("gfn_tanh", k_tanh, 3, p3);
	fake_kernel_add("gfn_sigmoid", k_sigmoid, 3, p3);
	fake_kernel_add("gfn_sum", k_sum, 3, p3);
	fake_kernel_add("bad", k_bad, 3, p3);
	fake_kernel_add("scal", k_scal, 7, p7);
	fake_kernel_add("rows", k_rows, 4, p4);
	fake_kernel_add("gfn_scale", k_saxpy, 5, p5); /* NVRTC tests */
}

/* ---- helpers ------------------------------------------------------------------ */

static gfn_engine *cuda_engine(unsigned workers)
{
	gfn_config cfg;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CUDA;
	cfg.workers_per_device = workers;
	cfg.kcache_dir = "";
	cfg.device_pool_chunk = (size_t)1 << 20;
	return test_engine_with(&cfg);
}

static void end_engine(gfn_engine *e)
{
	gfn_engine_destroy(e);
	ASSERT(!fake_leaks());
}

/* Invoke fn on inputs (n each, all f32 [n]) pinned to devmask; the
   status, and the output in out when it succeeded. */
static gfn_status run(gfn_engine *e, gfn_function fn, const float *const *in,
                      size_t nin, size_t n, const gfn_scalar *par, size_t npar,
                      uint64_t devmask, float *out, size_t nout)
{
	gfn_object obj[4];
	gfn_invocation inv;
	gfn_future f;
	gfn_status s;

	for (size_t k = 0; k < nin; k++)
		obj[k] = test_make_f32_1d(e, in[k], n);
	inv = test_inv(fn, nin, obj, npar, par);
	inv.devices = devmask;
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

static gfn_function find(gfn_engine *e, const char *name)
{
	gfn_function fn;

	ASSERT_OK(gfn_function_find(e, name, &fn));
	return fn;
}

/* vadd of n elements on devmask; asserts the sum. */
static void vadd_ok(gfn_engine *e, uint64_t devmask, size_t n)
{
	float *a = malloc(n * 4), *b = malloc(n * 4), *c = malloc(n * 4);
	const float *in[2] = {a, b};

	for (size_t i = 0; i < n; i++) {
		a[i] = (float)i;
		b[i] = 0.5f * (float)i + 1;
	}
	ASSERT_OK(
	        run(e, find(e, "gfn.vadd"), in, 2, n, NULL, 0, devmask, c, n));
	for (size_t i = 0; i < n; i++)
		ASSERT_DBL_EQ(c[i], a[i] + b[i]);
	free(a), free(b), free(c);
}

static gfn_function reg_cuda(gfn_engine *e, const char *name,
                             const gfn_cuda_kernel *k, size_t npar,
                             const gfn_param_spec *par, int ndim)
{
	gfn_tensor_spec in[1] = {
	        {"x", GFN_F32, ndim, {GFN_DIM_VAR(0), GFN_DIM_VAR(1)}}};
	gfn_tensor_spec out[1] = {
	        {"y", GFN_F32, ndim, {GFN_DIM_VAR(0), GFN_DIM_VAR(1)}}};
	gfn_function_desc d = {.name = name,
	                       .n_inputs = 1,
	                       .inputs = in,
	                       .n_outputs = 1,
	                       .outputs = out,
	                       .n_params = npar,
	                       .params = par,
	                       .cuda = k};
	gfn_function fn;

	ASSERT_OK(gfn_function_register(e, &d, &fn));
	return fn;
}

/* ---- enumeration and a missing driver ------------------------------------------ */

static void test_no_driver(void)
{
	gfn_cuda_api none;
	gfn_engine *e;
	gfn_config cfg;
	int n = -1;

	memset(&none, 0, sizeof(none)); /* no libcuda.so.1 */
	gfn_cuda_api_install(&none);
	ASSERT_OK(ops->probe(0, &n));
	ASSERT_EQ(n, 0);

	fake_install(2); /* the library, but cuInit fails: no GPU */
	fake.init_result = CUDA_ERROR_NO_DEVICE;
	ASSERT_OK(ops->probe(0, &n));
	ASSERT_EQ(n, 0);
	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CUDA;
	ASSERT_FAILS(gfn_engine_create(&cfg, &e), GFN_ENODEV);
	cfg.backends = GFN_BACKEND_CPU | GFN_BACKEND_CUDA;
	e = test_engine_with(&cfg); /* the CPU still works */
	gfn_engine_destroy(e);

	fake_install(2); /* a library without a required entry point */
	gfn_cuda_api_get()->cuLaunchKernel = NULL;
	ASSERT_OK(ops->probe(0, &n));
	ASSERT_EQ(n, 0);
}

static void test_enumerate(void)
{
	gfn_device_info info;
	gfn_engine *e;
	size_t n = 0;

	fake_install(2);
	e = cuda_engine(1);
	ASSERT_OK(gfn_device_count(e, &n));
	ASSERT_EQ(n, 2);
	for (size_t i = 0; i < n; i++) {
		char want[64];

		ASSERT_OK(gfn_device_get_info(e, i, &info));
		snprintf(want, sizeof(want), "cuda%zu:Fake H200 #%zu", i, i);
		ASSERT_STR_EQ(info.name, want);
		ASSERT_EQ(info.backend, GFN_BACKEND_CUDA);
		ASSERT_EQ(info.backend_index, (int)i);
		ASSERT_U64_EQ(info.memory_bytes, (uint64_t)141 << 30);
		ASSERT_EQ(info.compute_units, 132);
		snprintf(want, sizeof(want), "0000:%02x:00.0",
		         (unsigned)(0x3b + i));
		ASSERT_STR_EQ(info.pci_bus_id, want);
		ASSERT_EQ(info.numa_node, -1);
	}
	/* Opening a device costs nothing: no context until it is used. */
	ASSERT_EQ(fake_snapshot().dev[0].retain_calls, 0);
	ASSERT_EQ(fake_snapshot().dev[1].retain_calls, 0);
	end_engine(e);
}

/* ---- built-ins, lazy shared contexts, the hot path ------------------------------- */

static void check_builtin(gfn_engine *e, const char *name, uint64_t devmask)
{
	enum { N = 1000 };
	float x[N], y[N], out[N];
	const float *in[2] = {x, y};
	gfn_scalar a = {.f32 = 1.5f};
	int two = !strcmp(name, "gfn.vadd") || !strcmp(name, "gfn.saxpy");
	int sum = !strcmp(name, "gfn.sum");

	for (int i = 0; i < N; i++) {
		x[i] = (float)(i - N / 2) / 100.0f;
		y[i] = (float)i / 7.0f;
	}
	ASSERT_OK(run(e, find(e, name), in, two ? 2 : 1, N, &a,
	              !strcmp(name, "gfn.saxpy"), devmask, out, sum ? 1 : N));
	if (sum) {
		double s = 0;
		for (int i = 0; i < N; i++)
			s += x[i];
		ASSERT(fabs(out[0] - s) < 1e-3);
		return;
	}
	for (int i = 0; i < N; i++) {
		double w = !strcmp(name, "gfn.vadd")    ? (double)x[i] + y[i]
		           : !strcmp(name, "gfn.saxpy") ? 1.5 * x[i] + y[i]
		           : !strcmp(name, "gfn.relu")  ? relu_d(x[i])
		           : !strcmp(name, "gfn.gelu")  ? gelu_d(x[i])
		           : !strcmp(name, "gfn.tanh")  ? tanh(x[i])
		                                        : sigmoid_d(x[i]);
		ASSERT(fabs(out[i] - w) <= 1e-6 * (fabs(w) + 1));
	}
}

static void test_builtins(void)
{
	static const char *const names[] = {
	        "gfn.vadd", "gfn.saxpy",   "gfn.relu", "gfn.gelu",
	        "gfn.tanh", "gfn.sigmoid", "gfn.sum"};
	static const unsigned char fatbin_magic[4] = {0x50, 0xed, 0x55, 0xba};
	gfn_engine *e;
	fake_state s;

	fake_install(2);
	e = cuda_engine(2);
	ASSERT_OK(gfn_builtins_register(e));
	s = fake_snapshot();
	/* The embedded images are whole fatbins, one module per .cu file
	   per device: activation.cu's is shared by four functions. */
	ASSERT(!memcmp(s.last_image, fatbin_magic, 4));
	ASSERT_EQ(s.module_loads, 2 * 4);
	ASSERT_EQ(test_stats(e).kernel_compiles, 2 * 4);
	ASSERT_EQ(test_stats(e).kernel_cache_hits, 2 * 3);
	for (int d = 0; d < 2; d++)
		for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			check_builtin(e, names[k], 1u << d);
	/* One primary context per device, retained once, shared by every
	   function and both workers (each with its own stream). */
	s = fake_snapshot();
	ASSERT_EQ(s.dev[0].retain_calls, 1);
	ASSERT_EQ(s.dev[1].retain_calls, 1);
	ASSERT_LE(s.streams_made, 4);
	/* Workers wait on a blocking-sync event per stream, not by spinning
	   in cuStreamSynchronize: one event per stream, every sync by it. */
	ASSERT_EQ(s.events_live, s.streams_live);
	ASSERT_GT(s.event_syncs, 0);
	ASSERT_EQ(s.event_syncs, s.syncs);
	/* Store memory is registered with both devices (CUDA pins a range
	   once per process): no input is staged on either. */
	ASSERT_U64_EQ(test_stats(e).input_copies, 0);
	end_engine(e);
}

static void test_hot_path(void)
{
	gfn_engine *e;
	gfn_stats a, b;
	fake_state fa, fb;

	fake_install(1);
	e = cuda_engine(1);
	ASSERT_OK(gfn_builtins_register(e));
	for (int i = 0; i < 20; i++)
		vadd_ok(e, 0, 4096);
	a = test_stats_idle(e);
	fa = fake_snapshot();
	for (size_t i = 0; i < test_scaled(300, 20); i++)
		vadd_ok(e, 0, 4096);
	b = test_stats_idle(e);
	fb = fake_snapshot();
	/* After warm-up: no device or pinned allocation, no module, no
	   context, no stream, no registration on the invoke path. */
	ASSERT_EQ(fb.mem_allocs, fa.mem_allocs);
	ASSERT_EQ(fb.host_allocs, fa.host_allocs);
	ASSERT_EQ(fb.module_loads, fa.module_loads);
	ASSERT_EQ(fb.streams_made, fa.streams_made);
	ASSERT_EQ(fb.dev[0].retain_calls, 1);
	ASSERT_EQ(fb.nreg, fa.nreg);
	ASSERT_U64_EQ(b.device_allocs, a.device_allocs);
	ASSERT_U64_EQ(b.pinnings, a.pinnings);
	ASSERT_GT(a.pinnings, 0);         /* store memory is registered ... */
	ASSERT_U64_EQ(b.input_copies, 0); /* ... so nothing is staged */
	end_engine(e);
}

/* ---- launch convention and grid --------------------------------------------------- */

static void test_params_and_grid(void)
{
	static const gfn_param_spec par[] = {{"f", GFN_PARAM_F32},
	                                     {"i", GFN_PARAM_I32},
	                                     {"l", GFN_PARAM_I64},
	                                     {"d", GFN_PARAM_F64}};
	gfn_cuda_kernel scal = {.image = fake_ptx,
	                        .name = "scal",
	                        .work = {.kind = GFN_WORK_ELEMENTS,
	                                 .local = {64, 4}, /* y: unused */
	                                 .pass_sizes = 1}};
	gfn_cuda_kernel rows = {.image = fake_ptx,
	                        .name = "rows",
	                        .work = {.kind = GFN_WORK_MATRIX,
	                                 .local = {8, 4},
	                                 .pass_sizes = 1}};
	gfn_scalar pv[4] = {
	        {.f32 = 2.0f}, {.i32 = -3}, {.i64 = 1000}, {.f64 = 0.25}};
	float x[185], y[185];
	const float *in[1] = {x};
	gfn_engine *e;
	fake_state s;

	fake_install(1);
	e = cuda_engine(1);
	for (int i = 0; i < 185; i++)
		x[i] = (float)i;
	ASSERT_OK(run(e, reg_cuda(e, "scal", &scal, 4, par, 1), in, 1, 100, pv,
	              4, 0, y, 100));
	for (int i = 0; i < 100; i++)
		ASSERT_DBL_EQ(y[i], x[i] * 2.0f - 3 + 1000 + 0.25f);
	s = fake_snapshot();
	ASSERT_EQ(s.last_block[0], 64);
	ASSERT_EQ(s.last_block[1], 1);
	ASSERT_EQ(s.last_grid[0], 2); /* ceil(100 / 64) */
	ASSERT_EQ(s.last_grid[1], 1);

	{ /* 2-D: 5 rows of 37 columns, blocks of 8 x 4 */
		gfn_function fn = reg_cuda(e, "rows", &rows, 0, NULL, 2);
		int64_t shape[2] = {5, 37};
		gfn_object o = test_make_f32(e, x, 2, shape), r;
		gfn_invocation inv = test_inv(fn, 1, &o, 0, NULL);
		gfn_future f;

		ASSERT_OK(gfn_invoke(e, &inv, &f));
		r = test_take_output(e, f);
		test_read_f32(e, r, y, 185);
		for (int i = 0; i < 185; i++)
			ASSERT_DBL_EQ(y[i], x[i] * 10.0f + (float)(i / 37));
		s = fake_snapshot();
		ASSERT_EQ(s.last_block[0], 8);
		ASSERT_EQ(s.last_block[1], 4);
		ASSERT_EQ(s.last_grid[0], 5); /* ceil(37 / 8) */
		ASSERT_EQ(s.last_grid[1], 2); /* ceil(5 / 4) */
		ASSERT_EQ(s.last_grid[2], 1);
		ASSERT_OK(gfn_future_release(e, f));
		test_drop(e, r);
		test_drop(e, o);
	}

	/* No local size: blocks of 256, fewer for a small vector. */
	ASSERT_OK(gfn_builtins_register(e));
	vadd_ok(e, 0, 1000);
	s = fake_snapshot();
	ASSERT_EQ(s.last_block[0], 256);
	ASSERT_EQ(s.last_grid[0], 4);
	vadd_ok(e, 0, 10);
	s = fake_snapshot();
	ASSERT_EQ(s.last_block[0], 10);
	ASSERT_EQ(s.last_grid[0], 1);
	end_engine(e);
}

static void test_registry_checks(void)
{
	gfn_tensor_spec in[2], out[1];
	gfn_cuda_kernel k = {
	        .image = fake_ptx,
	        .name = "gfn_vadd",
	        .work = {.kind = GFN_WORK_ELEMENTS, .pass_sizes = 1}};
	gfn_opencl_kernel cl = {.source = "x",
	                        .name = "gfn_vadd",
	                        .work = {.kind = GFN_WORK_ELEMENTS,
	                                 .local = {64},
	                                 .pass_sizes = 1}};
	gfn_function_desc d = {.name = "v",
	                       .n_inputs = 2,
	                       .inputs = in,
	                       .n_outputs = 1,
	                       .outputs = out,
	                       .cuda = &k};
	static const char garbage[] = "not an image";
	gfn_function fn;
	gfn_engine *e;

	fake_install(1);
	e = cuda_engine(1);
	test_vadd_signature(in, out);
	k.source = "extern \"C\" __global__ void gfn_vadd() {}";
	ASSERT_FAILS(gfn_function_register(e, &d, &fn), GFN_EINVAL);
	k.image = NULL, k.source = NULL;
	ASSERT_FAILS(gfn_function_register(e, &d, &fn), GFN_EINVAL);
	k.image = fake_ptx;
	d.opencl = &cl; /* work rules must agree: the engine keeps one */
	ASSERT_FAILS(gfn_function_register(e, &d, &fn), GFN_EINVAL);
	d.opencl = NULL;
	k.name = "no_such_kernel";
	ASSERT_FAILS(gfn_function_register(e, &d, &fn), GFN_EKERNEL);
	ASSERT(strstr(gfn_error_detail(), "NOT_FOUND"));
	k.name = "gfn_vadd";
	k.image = garbage;
	ASSERT_FAILS(gfn_function_register(e, &d, &fn), GFN_EKERNEL);
	k.image = fake_ptx;
	ASSERT_OK(gfn_function_register(e, &d, &fn));
	end_engine(e);
}

/* ---- host memory: chunked registration, staging ------------------------------------ */

static void test_register_chunks(void)
{
	const size_t G64 = GFN_CUDA_REGISTER_CHUNK;
	char *base = (char *)(uintptr_t)0x7f0000000000ull; /* never touched */
	size_t size = 3 * G64 + ((size_t)8 << 30) + 5;
	gfn_bdev *d;
	void *h;
	fake_state s;
	int n;

	fake_install(1);
	ASSERT_OK(ops->probe(0, &n));
	ASSERT_OK(ops->device_open(0, &d));
	ASSERT_OK(ops->host_register(d, base, size, &h));
	s = fake_snapshot();
	ASSERT_EQ(s.nreg, 4);
	for (int i = 0; i < 4; i++) {
		ASSERT(s.reg[i].p == base + (size_t)i * G64);
		ASSERT_U64_EQ(s.reg[i].len, i < 3 ? G64 : size - 3 * G64);
		ASSERT_EQ(s.reg[i].flags, CU_MEMHOSTREGISTER_PORTABLE);
	}
	ops->host_unregister(d, h);
	s = fake_snapshot();
	ASSERT_EQ(s.nunreg, 4);
	for (int i = 0; i < 4; i++)
		ASSERT(s.unreg[i].p == base + (size_t)i * G64);
	ASSERT_EQ(s.regs_live, 0);

	/* The third piece fails: the first two are undone, none is left. */
	pthread_mutex_lock(&fake.lock);
	fake.fail_at = fake.takes + 3;
	pthread_mutex_unlock(&fake.lock);
	ASSERT_FAILS(ops->host_register(d, base, size, &h), GFN_ENOMEM);
	ASSERT_NULL(h);
	s = fake_snapshot();
	ASSERT_EQ(s.regs_live, 0);
	ASSERT_EQ(s.nunreg, 6);
	ops->device_close(d);
	ASSERT(!fake_leaks());
}

static void test_staging(void)
{
	enum { N = 10000 };
	float *src = malloc(N * 4), *back = malloc(N * 4);
	gfn_bqueue *q;
	gfn_bdev *d;
	gfn_bmem m;
	void *h;
	int n;

	fake_install(1);
	for (int i = 0; i < N; i++)
		src[i] = (float)i * 3;
	ASSERT_OK(ops->probe(0, &n));
	ASSERT_OK(ops->device_open(0, &d));
	ASSERT_OK(ops->queue_create(d, &q));
	ASSERT_OK(ops->mem_alloc(d, N * 4, &m));
	/* Unregistered: through the pinned pool, counted. */
	ASSERT_OK(ops->copy_h2d(q, &m, 0, src, N * 4));
	ASSERT_U64_EQ(ops->staged_bytes(d), N * 4);
	ASSERT_OK(ops->sync(q));
	ASSERT_EQ(fake_snapshot().host_live, 1); /* one pinned slab */
	/* Registered: straight from the caller's memory. */
	ASSERT_OK(ops->host_register(d, src, N * 4, &h));
	ASSERT_OK(ops->copy_h2d(q, &m, 4, src + 1, N * 4 - 4));
	ASSERT_U64_EQ(ops->staged_bytes(d), N * 4);
	ASSERT_OK(ops->copy_d2h(q, back, &m, 0, N * 4));
	ASSERT_OK(ops->sync(q));
	ASSERT(!memcmp(src, back, N * 4));
	ASSERT_FAILS(ops->copy_h2d(q, &m, 8, src, N * 4), GFN_ERANGE);
	ops->host_unregister(d, h);
	ops->mem_free(d, &m);
	ops->queue_destroy(q);
	ops->device_close(d);
	ASSERT(!fake_leaks());
	free(src), free(back);
}

/* ---- out of memory at every step ----------------------------------------------------- */

/* One engine life with take number n failing; 1 when n was reached. */
static int oom_round(long n)
{
	enum { N = 3000 };
	float x[N], y[N], out[N];
	const float *in[2] = {x, y};
	gfn_scalar a = {.f32 = 2};
	gfn_engine *e;
	gfn_status s;

	fake_install(2);
	fake.fail_at = n;
	for (int i = 0; i < N; i++)
		x[i] = (float)i, y[i] = 1;
	e = cuda_engine(1);
	s = gfn_builtins_register(e);
	ASSERT(s == GFN_OK || s == GFN_ENOMEM);
	for (int k = 0; k < 4 && s == GFN_OK; k++) { /* both devices */
		gfn_status r = run(e, find(e, "gfn.saxpy"), in, 2, N, &a, 1,
		                   1u << (k & 1), out, N);
		ASSERT(r == GFN_OK || r == GFN_ENOMEM);
		if (r == GFN_OK)
			ASSERT_DBL_EQ(out[N - 1], 2.0f * (N - 1) + 1);
	}
	end_engine(e); /* every driver resource given back */
	return fake_snapshot().failed > 0;
}

static void test_oom_loop(void)
{
	long n;

	for (n = 1; n < 500 && oom_round(n); n++)
		;
	printf("# each of %ld resource-taking driver calls failed in turn\n",
	       n - 1);
	ASSERT_LT(n, 500);
	ASSERT_GT(n, 10); /* retains, modules, streams, blocks, pins ... */
}

/* ---- failures: launch, sticky errors, reset, retire ------------------------------------ */

static gfn_function reg_bad(gfn_engine *e)
{
	static const gfn_cuda_kernel bad = {
	        .image = fake_ptx,
	        .name = "bad",
	        .work = {.kind = GFN_WORK_ELEMENTS, .pass_sizes = 1}};
	return reg_cuda(e, "bad", &bad, 0, NULL, 1);
}

static void test_launch_failure(void)
{
	float x[16] = {0}, y[16];
	const float *in[2] = {x, x};
	gfn_engine *e;

	fake_install(1);
	e = cuda_engine(1);
	ASSERT_OK(gfn_builtins_register(e));
	fake.launch_result = CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
	ASSERT_FAILS(run(e, find(e, "gfn.vadd"), in, 2, 16, NULL, 0, 0, y, 16),
	             GFN_EDEVICE);
	ASSERT(strstr(gfn_error_detail(), "LAUNCH_OUT_OF_RESOURCES"));
	vadd_ok(e, 0, 16); /* that invocation failed alone */
	ASSERT_U64_EQ(test_stats(e).device_resets, 0);
	end_engine(e);
}

/* vadd on devmask: the status of the submission, else of the run. */
static gfn_status try_vadd(gfn_engine *e, uint64_t devmask)
{
	float a[8] = {1, 2}, c[8];
	gfn_object o[2] = {test_make_f32_1d(e, a, 8),
	                   test_make_f32_1d(e, a, 8)};
	gfn_invocation inv = test_inv(find(e, "gfn.vadd"), 2, o, 0, NULL);
	gfn_future f;
	gfn_status s;

	inv.devices = devmask;
	s = gfn_invoke(e, &inv, &f);
	if (s == GFN_OK) {
		s = gfn_future_wait(e, f, -1);
		if (s == GFN_OK) {
			gfn_object r = test_take_output(e, f);
			test_read_f32(e, r, c, 8);
			ASSERT_DBL_EQ(c[1], 4);
			test_drop(e, r);
		}
		ASSERT_OK(gfn_future_release(e, f));
	}
	test_drop(e, o[0]);
	test_drop(e, o[1]);
	return s;
}

/*
 * Wait until device 0 was reset `resets` times by the fake's count, then
 * (back = 1) until it takes work again. The engine's stats are not polled
 * meanwhile: the recovery rebuilds what they read.
 */
static void wait_recovery(gfn_engine *e, int resets, int back)
{
	int i;

	for (i = 0; i < 10000 && fake_snapshot().dev[0].reset_calls < resets;
	     i++)
		test_sleep_us(1000);
	ASSERT_LT(i, 10000);
	for (i = 0; back && i < 10000 && try_vadd(e, 1) != GFN_OK; i++)
		test_sleep_us(1000);
	ASSERT_LT(i, 10000);
}

static void test_poisoned_engine(void)
{
	float x[64] = {0}, y[64];
	const float *in[1] = {x};
	gfn_function bad;
	gfn_engine *e;

	fake_install(2);
	e = cuda_engine(1);
	ASSERT_OK(gfn_builtins_register(e));
	bad = reg_bad(e);
	ASSERT_FAILS(run(e, bad, in, 1, 64, NULL, 0, 1, y, 64), GFN_EDEVICE);
	ASSERT(strstr(gfn_error_detail(), "ILLEGAL_ADDRESS"));
	wait_recovery(e, 1, 1); /* quarantined, reset, back */
	ASSERT_U64_EQ(test_stats(e).device_resets, 1);
	ASSERT_EQ(fake_snapshot().dev[0].reset_calls, 1);
	ASSERT_EQ(fake_snapshot().dev[1].reset_calls, 0);
	vadd_ok(e, 1, 100); /* device 0 works again */
	vadd_ok(e, 2, 100); /* device 1 never stopped */

	/* A reset that fails retires the device; the other goes on. */
	fake.reset_result = CUDA_ERROR_UNKNOWN;
	ASSERT_FAILS(run(e, bad, in, 1, 64, NULL, 0, 1, y, 64), GFN_EDEVICE);
	wait_recovery(e, 2, 0);
	vadd_ok(e, 0, 100);
	vadd_ok(e, 2, 100);
	end_engine(e);
}

/* One device: its store registrations are dropped on the poisoned
   context (which fails) and made again after the reset. */
static void test_poisoned_single(void)
{
	float x[64] = {0}, y[64];
	const float *in[1] = {x};
	gfn_engine *e;

	fake_install(1);
	e = cuda_engine(1);
	ASSERT_OK(gfn_builtins_register(e));
	ASSERT_FAILS(run(e, reg_bad(e), in, 1, 64, NULL, 0, 0, y, 64),
	             GFN_EDEVICE);
	wait_recovery(e, 1, 1);
	ASSERT_U64_EQ(test_stats(e).device_resets, 1);
	ASSERT_U64_EQ(test_stats(e).devices_retired, 0);
	vadd_ok(e, 0, 1000);
	ASSERT_U64_EQ(test_stats(e).input_copies, 0); /* pinned again */
	end_engine(e);
}

static void test_poisoned_ops(void)
{
	float x[64] = {1};
	gfn_bqueue *q;
	gfn_bdev *d;
	gfn_bmem m;
	long takes;
	int n;

	fake_install(1);
	ASSERT_OK(ops->probe(0, &n));
	ASSERT_OK(ops->device_open(0, &d));
	ASSERT_OK(ops->queue_create(d, &q));
	ASSERT_OK(ops->mem_alloc(d, sizeof(x), &m));
	ASSERT_OK(ops->copy_h2d(q, &m, 0, x, sizeof(x)));
	ASSERT_EQ(ops->poisoned(d), 0);
	fake.sync_result = CUDA_ERROR_ILLEGAL_ADDRESS;
	ASSERT_FAILS(ops->sync(q), GFN_EDEVICE);
	ASSERT(strstr(gfn_error_detail(), "CUDA_ERROR_ILLEGAL_ADDRESS (700)"));
	ASSERT_EQ(ops->poisoned(d), 1);
	/* Every later call fails at once, without asking the driver. */
	takes = fake_snapshot().takes;
	ASSERT_FAILS(ops->mem_alloc(d, 64, &m), GFN_EDEVICE);
	ASSERT_EQ(fake_snapshot().takes, takes);
	/* The engine drops what it made from the context, then resets. */
	ops->mem_free(d, &m);
	ops->queue_destroy(q);
	ASSERT_OK(ops->device_reset(d));
	ASSERT_EQ(ops->poisoned(d), 0);
	ASSERT_EQ(fake_snapshot().dev[0].reset_calls, 1);
	ASSERT_EQ(fake_snapshot().dev[0].refs, 0); /* released first */
	ASSERT_EQ(fake_snapshot().dev[0].retain_calls, 1);
	/* Retained again lazily, on the next use. */
	ASSERT_OK(ops->queue_create(d, &q));
	ASSERT_OK(ops->mem_alloc(d, sizeof(x), &m));
	ASSERT_EQ(fake_snapshot().dev[0].retain_calls, 2);
	ASSERT_OK(ops->copy_h2d(q, &m, 0, x, sizeof(x)));
	ASSERT_OK(ops->sync(q));
	ops->mem_free(d, &m);
	ops->queue_destroy(q);
	ops->device_close(d);
	ASSERT(!fake_leaks());
}

/* ---- CUDA graphs ----------------------------------------------------------------------- */

static void test_graph(void)
{
	enum { N = 500 };
	gfn_ksrc src = {.kind = GFN_KSRC_CUDA_PTX,
	                .text = fake_ptx,
	                .entry = "gfn_vadd"};
	gfn_bmem m[5];
	gfn_cuda_graph *g;
	gfn_bqueue *q;
	gfn_bkernel *k;
	gfn_bdev *d;
	float *f[5];
	long launches;
	int n, cached;

	fake_install(1);
	ASSERT_OK(ops->probe(0, &n));
	ASSERT_OK(ops->device_open(0, &d));
	ASSERT_OK(ops->queue_create(d, &q));
	ASSERT_OK(ops->kernel_load(d, &src, &k, &cached));
	for (int i = 0; i < 5; i++) {
		ASSERT_OK(ops->mem_alloc(d, N * 4, &m[i]));
		f[i] = m[i].ptr; /* the fake's device memory is host memory */
	}
	for (int i = 0; i < N; i++)
		f[0][i] = (float)i, f[1][i] = 1;
	/* Three dependent launches recorded, none run. */
	ASSERT_OK(gfn_cuda_graph_begin(q));
	launches = fake_snapshot().launches;
	ASSERT_OK(launch_vadd(q, k, &m[0], &m[1], &m[2], N));
	ASSERT_OK(launch_vadd(q, k, &m[2], &m[1], &m[3], N));
	ASSERT_OK(launch_vadd(q, k, &m[3], &m[1], &m[4], N));
	ASSERT_FAILS(ops->sync(q), GFN_EINVAL);
	ASSERT_OK(gfn_cuda_graph_end(q, &g));
	ASSERT_EQ(fake_snapshot().launches, launches);
	ASSERT_DBL_EQ(f[4][N - 1], 0);
	/* One replay runs all three; replays see new inputs. */
	for (int rep = 0; rep < 2; rep++) {
		f[0][N - 1] = (float)(100 * rep);
		ASSERT_OK(gfn_cuda_graph_launch(q, g));
		ASSERT_OK(ops->sync(q));
		ASSERT_DBL_EQ(f[4][N - 1], 100 * rep + 3);
		ASSERT_DBL_EQ(f[4][7], 10);
	}
	ASSERT_EQ(fake_snapshot().launches, launches + 6);
	gfn_cuda_graph_destroy(g);

	/* A launch that fails while recording: no graph is made. */
	ASSERT_OK(gfn_cuda_graph_begin(q));
	fake.launch_result = CUDA_ERROR_INVALID_VALUE;
	ASSERT_FAILS(launch_vadd(q, k, &m[0], &m[1], &m[2], N), GFN_EINVAL);
	ASSERT_FAILS(gfn_cuda_graph_end(q, &g), GFN_EDEVICE);
	ASSERT_NULL(g);
	ASSERT_OK(ops->sync(q)); /* not recording any more */

	for (int i = 0; i < 5; i++)
		ops->mem_free(d, &m[i]);
	ops->kernel_unload(d, k);
	ops->queue_destroy(q);
	ops->device_close(d);
	ASSERT(!fake_leaks());
}

/* ---- NVRTC -------------------------------------------------------------------------------- */

struct _nvrtcProgram {
	int dummy; /* the fake keeps nothing per program */
};

static struct {
	int compiles;        /* nvrtcCompileProgram calls */
	int nopts;           /* options of the last compile */
	char opts[8][64];    /* their text */
	int archs[4], narch; /* what it claims to support */
	int fail;            /* next compile fails with a log */
} fnv;

static nvrtcResult n_version(int *a, int *b)
{
	*a = 13, *b = 0;
	return NVRTC_SUCCESS;
}
static const char *n_error_string(nvrtcResult r)
{
	return r == NVRTC_SUCCESS ? "NVRTC_SUCCESS" : "NVRTC_ERROR (fake)";
}
static nvrtcResult n_narchs(int *n)
{
	*n = fnv.narch;
	return NVRTC_SUCCESS;
}
static nvrtcResult n_archs(int *a)
{
	memcpy(a, fnv.archs, (size_t)fnv.narch * sizeof(int));
	return NVRTC_SUCCESS;
}
static nvrtcResult n_create(nvrtcProgram *p, const char *src, const char *name,
                            int nh, const char *const *h, const char *const *hn)
{
	static struct _nvrtcProgram prog;

	(void)src, (void)name, (void)nh, (void)h, (void)hn;
	*p = &prog;
	return NVRTC_SUCCESS;
}
static nvrtcResult n_destroy(nvrtcProgram *p)
{
	*p = NULL;
	return NVRTC_SUCCESS;
}
static nvrtcResult n_compile(nvrtcProgram p, int n, const char *const *o)
{
	(void)p;
	fnv.compiles++;
	fnv.nopts = n;
	for (int i = 0; i < n && i < 8; i++)
		snprintf(fnv.opts[i], sizeof(fnv.opts[i]), "%s", o[i]);
	if (fnv.fail) {
		fnv.fail = 0;
		return NVRTC_ERROR_COMPILATION;
	}
	return NVRTC_SUCCESS;
}
static const char fake_log[] = "kernel.cu(3): error: expected a \";\"";
static nvrtcResult n_log_size(nvrtcProgram p, size_t *n)
{
	(void)p;
	*n = sizeof(fake_log);
	return NVRTC_SUCCESS;
}
static nvrtcResult n_log(nvrtcProgram p, char *log)
{
	(void)p;
	memcpy(log, fake_log, sizeof(fake_log));
	return NVRTC_SUCCESS;
}
static const char fake_cubin[] = "\177ELF fake cubin";
static nvrtcResult n_cubin_size(nvrtcProgram p, size_t *n)
{
	(void)p;
	*n = sizeof(fake_cubin);
	return NVRTC_SUCCESS;
}
static nvrtcResult n_cubin(nvrtcProgram p, char *out)
{
	(void)p;
	memcpy(out, fake_cubin, sizeof(fake_cubin));
	return NVRTC_SUCCESS;
}
static nvrtcResult n_ptx_size(nvrtcProgram p, size_t *n)
{
	(void)p;
	*n = sizeof(fake_ptx);
	return NVRTC_SUCCESS;
}
static nvrtcResult n_ptx(nvrtcProgram p, char *out)
{
	(void)p;
	memcpy(out, fake_ptx, sizeof(fake_ptx));
	return NVRTC_SUCCESS;
}

static void install_fake_nvrtc(void)
{
	gfn_nvrtc_api t = {
	        .nvrtcVersion = n_version,
	        .nvrtcGetErrorString = n_error_string,
	        .nvrtcGetNumSupportedArchs = n_narchs,
	        .nvrtcGetSupportedArchs = n_archs,
	        .nvrtcCreateProgram = n_create,
	        .nvrtcDestroyProgram = n_destroy,
	        .nvrtcCompileProgram = n_compile,
	        .nvrtcGetProgramLogSize = n_log_size,
	        .nvrtcGetProgramLog = n_log,
	        .nvrtcGetPTXSize = n_ptx_size,
	        .nvrtcGetPTX = n_ptx,
	        .nvrtcGetCUBINSize = n_cubin_size,
	        .nvrtcGetCUBIN = n_cubin,
	};

	memset(&fnv, 0, sizeof(fnv));
	gfn_nvrtc_api_install(&t);
}

static const char scale_src[] =
        "extern \"C\" __global__ void gfn_scale(const float *x,\n"
        "    const float *y, float *out, float a, unsigned long long n)\n"
        "{\n"
        "	unsigned long long i = blockIdx.x * (unsigned long long)"
        "blockDim.x + threadIdx.x;\n"
        "	if (i < n)\n"
        "		out[i] = a * x[i] + y[i];\n"
        "}\n";

static gfn_status reg_scale(gfn_engine *e, const char *src, const char *opts,
                            gfn_function *fn)
{
	static const gfn_param_spec par[] = {{"a", GFN_PARAM_F32}};
	gfn_tensor_spec in[2], out[1];
	gfn_cuda_kernel k = {
	        .source = src,
	        .options = opts,
	        .name = "gfn_scale",
	        .work = {.kind = GFN_WORK_ELEMENTS, .pass_sizes = 1}};
	gfn_function_desc d = {.name = "scale",
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

static gfn_engine *kcache_engine(const char *dir)
{
	gfn_config cfg;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CUDA;
	cfg.kcache_dir = dir;
	return test_engine_with(&cfg);
}

/* scale(x, y) with a = 2 on the engine's first device. */
static void scale_ok(gfn_engine *e, gfn_function fn)
{
	float x[300], y[300], out[300];
	const float *in[2] = {x, y};
	gfn_scalar a = {.f32 = 2};

	for (int i = 0; i < 300; i++)
		x[i] = (float)i, y[i] = 5;
	ASSERT_OK(run(e, fn, in, 2, 300, &a, 1, 0, out, 300));
	for (int i = 0; i < 300; i++)
		ASSERT_DBL_EQ(out[i], 2.0f * i + 5);
}

static void test_nvrtc_fake(void)
{
	char dir[] = "/tmp/gfn-cuda-kcache-XXXXXX";
	gfn_function fn;
	gfn_engine *e;

	ASSERT_NOT_NULL(mkdtemp(dir));
	fake_install(1);
	install_fake_nvrtc();
	fnv.archs[0] = 75, fnv.archs[1] = 80, fnv.archs[2] = 90;
	fnv.narch = 3;
	e = kcache_engine(dir);
	ASSERT_OK(reg_scale(e, scale_src, "-DA=1  --std=c++17", &fn));
	ASSERT_EQ(fnv.compiles, 1); /* a cubin for the device's own sm_90 */
	ASSERT_EQ(fnv.nopts, 3);
	ASSERT_STR_EQ(fnv.opts[0], "--gpu-architecture=sm_90");
	ASSERT_STR_EQ(fnv.opts[1], "-DA=1");
	ASSERT_STR_EQ(fnv.opts[2], "--std=c++17");
	ASSERT(!memcmp(fake_snapshot().last_image, "\177ELF", 4));
	scale_ok(e, fn);
	end_engine(e);

	/* A new engine finds the build in the kernel cache: no compile. */
	fake_install(1);
	e = kcache_engine(dir);
	ASSERT_OK(reg_scale(e, scale_src, "-DA=1  --std=c++17", &fn));
	ASSERT_EQ(fnv.compiles, 1);
	ASSERT_U64_EQ(test_stats(e).kernel_cache_hits, 1);
	ASSERT_U64_EQ(test_stats(e).kernel_compiles, 0);
	scale_ok(e, fn);
	end_engine(e);

	/* A device newer than NVRTC knows: PTX for the newest below it. */
	fake_install(1);
	fnv.narch = 2; /* 75 and 80 */
	e = kcache_engine("");
	ASSERT_OK(reg_scale(e, scale_src, NULL, &fn));
	ASSERT_EQ(fnv.nopts, 1);
	ASSERT_STR_EQ(fnv.opts[0], "--gpu-architecture=compute_80");
	ASSERT(!memcmp(fake_snapshot().last_image, "//", 2));
	/* A compile error: GFN_EKERNEL with the log. */
	fnv.fail = 1;
	ASSERT_FAILS(reg_scale(e, "broken", "-DB=2", &fn), GFN_EKERNEL);
	ASSERT(strstr(gfn_error_detail(), "expected a"));
	end_engine(e);

	/* No NVRTC: CUDA C cannot be registered, and says why. */
	{
		gfn_nvrtc_api none;

		memset(&none, 0, sizeof(none));
		gfn_nvrtc_api_install(&none);
		fake_install(1);
		e = kcache_engine("");
		ASSERT_FAILS(reg_scale(e, scale_src, NULL, &fn), GFN_ENOTSUP);
		ASSERT(strstr(gfn_error_detail(), "NVRTC"));
		end_engine(e);
	}
	gfn_nvrtc_api_reset();
	{ /* the cache directory */
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		ASSERT_EQ(system(cmd), 0);
	}
}

/* The real NVRTC (where the toolkit is installed) with the fake driver:
   a real CUDA C compile into a real cubin, run by the C emulation.
   GFN_TEST_NO_NVRTC=1 skips it (it maps a ~100 MiB library). */
static void test_nvrtc_real(void)
{
	gfn_function fn;
	gfn_engine *e;

	if (getenv("GFN_TEST_NO_NVRTC") ||
	    !gfn_nvrtc_api_usable(gfn_nvrtc_api_get())) {
		printf("# no libnvrtc: real NVRTC compile skipped\n");
		return;
	}
	fake_install(1);
	e = kcache_engine("");
	ASSERT_OK(reg_scale(e, scale_src, "-DUNUSED=1", &fn));
	ASSERT(!memcmp(fake_snapshot().last_image, "\177ELF", 4));
	scale_ok(e, fn);
	ASSERT_FAILS(reg_scale(e,
	                       "extern \"C\" __global__ void gfn_scale("
	                       "{ not C++ }",
	                       NULL, &fn),
	             GFN_EKERNEL);
	ASSERT(strstr(gfn_error_detail(), "error"));
	end_engine(e);
}

/* ---- cuBLAS ---------------------------------------------------------------------------------- */

static struct {
	int creates, destroys; /* handles */
	void *stream;          /* bound by cublasSetStream */
} fbl;

static cublasStatus_t b_create(cublasHandle_t *h)
{
	fbl.creates++;
	*h = (cublasHandle_t)(uintptr_t)0x1234;
	return 0;
}
static cublasStatus_t b_destroy(cublasHandle_t h)
{
	(void)h;
	fbl.destroys++;
	return 0;
}
static cublasStatus_t b_set_stream(cublasHandle_t h, struct CUstream_st *s)
{
	(void)h;
	fbl.stream = s;
	return 0;
}

/* cuBLAS's contract: column-major, element (i, j) of X at X[i + j*ld]. */
static cublasStatus_t b_sgemm(cublasHandle_t h, cublasOperation_t ta,
                              cublasOperation_t tb, int m, int n, int k,
                              const float *alpha, const float *a, int lda,
                              const float *b, int ldb, const float *beta,
                              float *c, int ldc)
{
	(void)h;
	if (!fbl.stream)
		return 7;
	for (int i = 0; i < m; i++)
		for (int j = 0; j < n; j++) {
			double s = 0;
			for (int p = 0; p < k; p++) {
				float av = ta ? a[p + i * lda] : a[i + p * lda];
				float bv = tb ? b[j + p * ldb] : b[p + j * ldb];
				s += (double)av * bv;
			}
			c[i + j * ldc] =
			        (float)(*alpha * s + *beta * c[i + j * ldc]);
		}
	return 0;
}

static void test_sgemm_fake(void)
{
	enum { M = 5, N = 7, K = 3, LD = 9 };
	gfn_cublas_api t = {b_create, b_destroy, b_set_stream, b_sgemm};
	gfn_bqueue *q;
	gfn_bdev *d;
	gfn_bmem a, b, c;
	int n;

	fake_install(1);
	memset(&fbl, 0, sizeof(fbl));
	gfn_cublas_api_install(&t);
	ASSERT_OK(ops->probe(0, &n));
	ASSERT_OK(ops->device_open(0, &d));
	ASSERT_OK(ops->queue_create(d, &q));
	ASSERT_OK(ops->mem_alloc(d, LD * LD * 4, &a));
	ASSERT_OK(ops->mem_alloc(d, LD * LD * 4, &b));
	ASSERT_OK(ops->mem_alloc(d, LD * LD * 4, &c));
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++) {
			float *A = a.ptr, *B = b.ptr, *C = c.ptr;

			/* Row-major with row stride LD: op(A) is M x K. */
			for (int i = 0; i < LD * LD; i++)
				A[i] = (float)(i % 11) - 5,
				B[i] = (float)(i % 7), C[i] = 1;
			ASSERT_OK(gfn_cuda_sgemm(q, ta, tb, M, N, K, 2.0f, &a,
			                         LD, &b, LD, 0.5f, &c, LD));
			for (int i = 0; i < M; i++)
				for (int j = 0; j < N; j++) {
					double s = 0;
					for (int p = 0; p < K; p++)
						s += (double)(ta ? A[p * LD + i]
						                 : A[i * LD +
						                     p]) *
						     (tb ? B[j * LD + p]
						         : B[p * LD + j]);
					ASSERT(fabs(C[i * LD + j] -
					            (2 * s + 0.5)) < 1e-4);
				}
		}
	ASSERT_EQ(fbl.creates, 1); /* one handle per queue, bound once */
	ASSERT_FAILS(
	        gfn_cuda_sgemm(q, 0, 0, M, N, K, 1, &a, 2, &b, LD, 0, &c, LD),
	        GFN_EINVAL);
	ops->mem_free(d, &a), ops->mem_free(d, &b), ops->mem_free(d, &c);
	ops->queue_destroy(q);
	ASSERT_EQ(fbl.destroys, 1);
	{ /* no cuBLAS: ENOTSUP, not a crash */
		gfn_cublas_api none;

		memset(&none, 0, sizeof(none));
		gfn_cublas_api_install(&none);
		ASSERT_OK(ops->queue_create(d, &q));
		ASSERT_FAILS(gfn_cuda_sgemm(q, 0, 0, 1, 1, 1, 1, &a, 1, &b, 1,
		                            0, &c, 1),
		             GFN_ENOTSUP);
		ops->queue_destroy(q);
	}
	gfn_cublas_api_reset();
	ops->device_close(d);
	ASSERT(!fake_leaks());
}

int main(void)
{
	add_kernels();
	TEST_RUN(test_no_driver);
	TEST_RUN(test_enumerate);
	TEST_RUN(test_builtins);
	TEST_RUN(test_hot_path);
	TEST_RUN(test_params_and_grid);
	TEST_RUN(test_registry_checks);
	TEST_RUN(test_register_chunks);
	TEST_RUN(test_staging);
	TEST_RUN(test_oom_loop);
	TEST_RUN(test_launch_failure);
	TEST_RUN(test_poisoned_engine);
	TEST_RUN(test_poisoned_single);
	TEST_RUN(test_poisoned_ops);
	TEST_RUN(test_graph);
	TEST_RUN(test_sgemm_fake);
	TEST_RUN(test_nvrtc_fake);
	TEST_RUN(test_nvrtc_real);
	fake_uninstall();
	return 0;
}
