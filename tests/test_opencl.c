/*
 * test_opencl.c - the OpenCL backend on a real OpenCL platform (PoCL in
 * CI, with POCL_DEVICES="pthread pthread" for two devices). Exits 77 where
 * no OpenCL device exists.
 */
#include "test.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *vadd_src =
        "__kernel void vadd(__global const float *a, __global const float *b,\n"
        "                   __global float *c, ulong n)\n"
        "{\n"
        "	size_t i = get_global_id(0);\n"
        "	if (i < n)\n"
        "		c[i] = a[i] + b[i];\n"
        "}\n";

static const char *scalars_src =
        "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"
        "__kernel void scal(__global const float *x, __global float *y,\n"
        "                   float f, int i, long l, double d, ulong n)\n"
        "{\n"
        "	size_t k = get_global_id(0);\n"
        "	if (k < n)\n"
        "		y[k] = x[k] * f + (float)i + (float)l + (float)d;\n"
        "}\n";

/* y[r][c] = x[r][c] * 10 + r: needs the 2-D (cols, rows) rule. */
static const char *rows_src =
        "__kernel void rows(__global const float *x, __global float *y,\n"
        "                   ulong cols, ulong rows)\n"
        "{\n"
        "	size_t c = get_global_id(0), r = get_global_id(1);\n"
        "	if (c < cols && r < rows)\n"
        "		y[r * cols + c] = x[r * cols + c] * 10.0f + (float)r;\n"
        "}\n";

static const char *kcache_dir;

static gfn_engine *cl_engine(unsigned backends, const char *kdir)
{
	gfn_config cfg;

	gfn_config_init(&cfg);
	cfg.backends = backends;
	cfg.kcache_dir = kdir;
	return test_engine_with(&cfg);
}

static gfn_function reg_ocl(gfn_engine *e, const char *name, const char *src,
                            const char *kname, gfn_work_kind kind, size_t n_in,
                            const gfn_tensor_spec *in,
                            const gfn_tensor_spec *out, size_t n_par,
                            const gfn_param_spec *par, gfn_cpu_kernel_fn cpu)
{
	gfn_opencl_kernel k = {
	        .source = src,
	        .name = kname,
	        .work = {.kind = kind,
	                 .tensor = 0,
	                 .local = {kind == GFN_WORK_MATRIX ? 8 : 64,
	                           kind == GFN_WORK_MATRIX ? 4 : 0},
	                 .pass_sizes = 1}};
	gfn_function_desc d = {.name = name,
	                       .n_inputs = n_in,
	                       .inputs = in,
	                       .n_outputs = 1,
	                       .outputs = out,
	                       .n_params = n_par,
	                       .params = par,
	                       .cpu_fn = cpu,
	                       .opencl = &k};
	gfn_function fn;

	ASSERT_OK(gfn_function_register(e, &d, &fn));
	return fn;
}

static gfn_function reg_vadd_cl(gfn_engine *e, const char *name,
                                gfn_cpu_kernel_fn cpu)
{
	gfn_tensor_spec in[2], out[1];

	test_vadd_signature(in, out);
	return reg_ocl(e, name, vadd_src, "vadd", GFN_WORK_ELEMENTS, 2, in, out,
	               0, NULL, cpu);
}

static size_t count_devices(gfn_engine *e)
{
	size_t n = 0;

	ASSERT_OK(gfn_device_count(e, &n));
	return n;
}

static void opencl_devices(void)
{
	gfn_engine *e = cl_engine(GFN_BACKEND_OPENCL, kcache_dir);
	size_t n = count_devices(e);
	gfn_device_info info;

	ASSERT_GE(n, 1);
	for (size_t i = 0; i < n; i++) {
		ASSERT_OK(gfn_device_get_info(e, i, &info));
		ASSERT_EQ(info.backend, GFN_BACKEND_OPENCL);
		ASSERT(strncmp(info.name, "opencl", 6) == 0);
		ASSERT_GT(info.memory_bytes, 0);
		ASSERT_GT(info.compute_units, 0);
	}
	ASSERT_EQ(test_stats(e).context_creates, n);
	gfn_engine_destroy(e);
}

static void opencl_vadd(void)
{
	gfn_engine *e = cl_engine(GFN_BACKEND_OPENCL, kcache_dir);
	gfn_function fn = reg_vadd_cl(e, "vadd.cl", NULL);

	/* Sizes that are not a multiple of the work-group size, and 1. */
	test_vadd_roundtrip(e, fn, 1000);
	test_vadd_roundtrip(e, fn, 1);
	test_vadd_roundtrip(e, fn, 4099);
	gfn_engine_destroy(e);
}

static void opencl_empty_tensor(void)
{
	gfn_engine *e = cl_engine(GFN_BACKEND_OPENCL, kcache_dir);
	gfn_function fn = reg_vadd_cl(e, "vadd.cl", NULL);
	gfn_object in[2], out;
	gfn_object_view v;
	gfn_future f;
	gfn_invocation inv;

	in[0] = test_make_f32_1d(e, NULL, 0);
	in[1] = test_make_f32_1d(e, NULL, 0);
	inv = test_inv(fn, 2, in, 0, NULL);
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	out = test_take_output(e, f);
	ASSERT_OK(gfn_object_get(e, out, &v));
	ASSERT_EQ(v.size, 0);
	ASSERT_OK(gfn_object_release(e, out));
	test_drop(e, out);
	test_drop(e, in[0]);
	test_drop(e, in[1]);
	ASSERT_OK(gfn_future_release(e, f));
	gfn_engine_destroy(e);
}

static void opencl_scalars(void)
{
	gfn_engine *e = cl_engine(GFN_BACKEND_OPENCL, kcache_dir);
	gfn_tensor_spec in = {"x", GFN_F32, 1, {GFN_DIM_VAR(0)}};
	gfn_tensor_spec out = {"y", GFN_F32, 1, {GFN_DIM_VAR(0)}};
	gfn_param_spec par[4] = {{"f", GFN_PARAM_F32},
	                         {"i", GFN_PARAM_I32},
	                         {"l", GFN_PARAM_I64},
	                         {"d", GFN_PARAM_F64}};
	gfn_function fn =
	        reg_ocl(e, "scal", scalars_src, "scal", GFN_WORK_ELEMENTS, 1,
	                &in, &out, 4, par, NULL);
	gfn_scalar p[4];
	float x[300], y[300];
	gfn_object xo, yo;
	gfn_invocation inv;
	gfn_future f;

	for (int k = 0; k < 300; k++)
		x[k] = (float)k * 0.5f;
	p[0].f32 = 3.0f;
	p[1].i32 = -7;
	p[2].i64 = 1000;
	p[3].f64 = 0.25;
	xo = test_make_f32_1d(e, x, 300);
	inv = test_inv(fn, 1, &xo, 4, p);
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	yo = test_take_output(e, f);
	test_read_f32(e, yo, y, 300);
	for (int k = 0; k < 300; k++)
		ASSERT_DBL_EQ(y[k], x[k] * 3.0f - 7.0f + 1000.0f + 0.25f);
	test_drop(e, yo);
	test_drop(e, xo);
	ASSERT_OK(gfn_future_release(e, f));
	gfn_engine_destroy(e);
}

static void opencl_matrix_rule(void)
{
	gfn_engine *e = cl_engine(GFN_BACKEND_OPENCL, kcache_dir);
	gfn_tensor_spec in = {
	        "x", GFN_F32, 2, {GFN_DIM_VAR(0), GFN_DIM_VAR(1)}};
	gfn_function fn = reg_ocl(e, "rows", rows_src, "rows", GFN_WORK_MATRIX,
	                          1, &in, &in, 0, NULL, NULL);
	enum { R = 37, C = 13 };
	int64_t shape[2] = {R, C};
	float x[R * C], y[R * C];
	gfn_object xo, yo;
	gfn_invocation inv;
	gfn_future f;

	for (int k = 0; k < R * C; k++)
		x[k] = (float)(k % 17);
	xo = test_make_f32(e, x, 2, shape);
	inv = test_inv(fn, 1, &xo, 0, NULL);
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	yo = test_take_output(e, f);
	test_read_f32(e, yo, y, R * C);
	for (int r = 0; r < R; r++)
		for (int c = 0; c < C; c++)
			ASSERT_DBL_EQ(y[r * C + c], x[r * C + c] * 10.0f + r);
	test_drop(e, yo);
	test_drop(e, xo);
	ASSERT_OK(gfn_future_release(e, f));
	gfn_engine_destroy(e);
}

static void opencl_build_error(void)
{
	gfn_engine *e = cl_engine(GFN_BACKEND_OPENCL, kcache_dir);
	gfn_tensor_spec in[2], out[1];
	gfn_opencl_kernel k = {.source = "__kernel void bad(__global float *a)"
	                                 "{ a[0] = undeclared_thing; }",
	                       .name = "bad",
	                       .work = {.kind = GFN_WORK_ELEMENTS}};
	gfn_function_desc d = {.name = "bad",
	                       .n_inputs = 2,
	                       .inputs = in,
	                       .n_outputs = 1,
	                       .outputs = out,
	                       .opencl = &k};
	gfn_function fn;
	char detail[512];

	test_vadd_signature(in, out);
	ASSERT_FAILS(gfn_function_register(e, &d, &fn), GFN_EKERNEL);
	test_copy_detail(detail, sizeof(detail));
	ASSERT(strstr(detail, "build log") != NULL);
	ASSERT(strstr(detail, "undeclared_thing") != NULL);
	/* A missing kernel name is an error too, and the engine goes on. */
	k.source = vadd_src;
	k.name = "no_such_kernel";
	ASSERT_FAILS(gfn_function_register(e, &d, &fn), GFN_EKERNEL);
	fn = reg_vadd_cl(e, "vadd.cl", NULL);
	test_vadd_roundtrip(e, fn, 100);
	gfn_engine_destroy(e);
}

/* Many invocations over every OpenCL device; all must work and be right. */
static void opencl_two_devices(void)
{
	gfn_engine *e = cl_engine(GFN_BACKEND_OPENCL, kcache_dir);
	size_t ndev = count_devices(e), n = test_scaled(2000, 200);
	gfn_function fn = reg_vadd_cl(e, "vadd.cl", NULL);
	gfn_future *f = calloc(n, sizeof(*f));
	gfn_object *in = calloc(n, sizeof(*in));
	gfn_object b;
	float a[64], bv[64], c[64];

	if (ndev < 2) {
		printf("# only %zu OpenCL device: set POCL_DEVICES\n", ndev);
		exit(1);
	}
	for (int k = 0; k < 64; k++)
		bv[k] = (float)(1000 * k);
	b = test_make_f32_1d(e, bv, 64);
	for (size_t i = 0; i < n; i++) {
		gfn_object args[2];
		gfn_invocation inv;
		for (int k = 0; k < 64; k++)
			a[k] = (float)(i + (size_t)k);
		in[i] = test_make_f32_1d(e, a, 64);
		args[0] = in[i];
		args[1] = b;
		inv = test_inv(fn, 2, args, 0, NULL);
		ASSERT_OK(gfn_invoke(e, &inv, &f[i]));
	}
	for (size_t i = 0; i < n; i++) {
		gfn_object o = test_take_output(e, f[i]);
		test_read_f32(e, o, c, 64);
		for (int k = 0; k < 64; k++)
			ASSERT_DBL_EQ(c[k], (float)(i + (size_t)k) + bv[k]);
		test_drop(e, o);
		test_drop(e, in[i]);
		ASSERT_OK(gfn_future_release(e, f[i]));
	}
	for (size_t d = 0; d < ndev; d++) {
		gfn_device_stats ds;
		ASSERT_OK(gfn_device_get_stats(e, d, &ds));
		printf("#   device %zu ran %llu\n", d,
		       (unsigned long long)ds.completed);
		ASSERT_GT(ds.completed, 0);
	}
	ASSERT_EQ(test_stats(e).completed, n);
	test_drop(e, b);
	free(f);
	free(in);
	gfn_engine_destroy(e);
}

/* A function with a CPU and an OpenCL version runs on both backends. */
static void opencl_mixed_backends(void)
{
	gfn_engine *e = cl_engine(GFN_BACKEND_ALL, kcache_dir);
	gfn_function fn = reg_vadd_cl(e, "vadd.both", test_vadd_kernel);
	size_t ndev = count_devices(e);

	/* Placement sends a lone invocation to the fastest device; pin
	   some to each device to run both versions. */
	for (size_t d = 0; d < ndev; d++)
		for (int i = 0; i < 8; i++)
			test_vadd_roundtrip_on(e, fn, 333, 1ull << d);
	for (int i = 0; i < 64; i++)
		test_vadd_roundtrip(e, fn, 333);
	for (size_t d = 0; d < ndev; d++) {
		gfn_device_stats ds;
		ASSERT_OK(gfn_device_get_stats(e, d, &ds));
		ASSERT_GT(ds.completed, 0);
	}
	gfn_engine_destroy(e);
}

static void opencl_hot_path(void)
{
	gfn_engine *e = cl_engine(GFN_BACKEND_OPENCL, kcache_dir);
	gfn_function fn = reg_vadd_cl(e, "vadd.cl", NULL);
	size_t n = test_scaled(2000, 100);
	gfn_stats s0, s1;

	for (int i = 0; i < 50; i++) /* warm-up: pools grow here */
		test_vadd_roundtrip(e, fn, 1000);
	s0 = test_stats_idle(e);
	for (size_t i = 0; i < n; i++)
		test_vadd_roundtrip(e, fn, 1000);
	s1 = test_stats_idle(e);
	ASSERT_U64_EQ(s1.host_allocs, s0.host_allocs);
	ASSERT_U64_EQ(s1.device_allocs, s0.device_allocs);
	ASSERT_U64_EQ(s1.context_creates, s0.context_creates);
	ASSERT_U64_EQ(s1.kernel_compiles, s0.kernel_compiles);
	ASSERT_U64_EQ(s1.kernel_cache_hits, s0.kernel_cache_hits);
	ASSERT_U64_EQ(s1.input_copies, s0.input_copies);
	ASSERT_U64_EQ(s1.completed - s0.completed, n);
	ASSERT_GT(s0.device_allocs, 0);
	gfn_engine_destroy(e);
}

/*
 * Store memory is registered with every OpenCL device (pinnings), so
 * inputs reach the device with no host-side copy (input_copies stays 0).
 * With registration off, the same invocations are staged through the
 * pinned pool: still right, and the copies are counted.
 */
static void opencl_zero_copy(void)
{
	gfn_engine *e = cl_engine(GFN_BACKEND_OPENCL, kcache_dir);
	gfn_function fn = reg_vadd_cl(e, "vadd.cl", NULL);
	gfn_stats s;

	for (int i = 0; i < 20; i++)
		test_vadd_roundtrip(e, fn, 5000);
	s = test_stats_idle(e);
	ASSERT_GT(s.pinnings, 0);
	ASSERT_U64_EQ(s.input_copies, 0);
	gfn_engine_destroy(e);

	ASSERT_EQ(setenv("GFN_OPENCL_NO_REGISTER", "1", 1), 0);
	e = cl_engine(GFN_BACKEND_OPENCL, kcache_dir);
	fn = reg_vadd_cl(e, "vadd.cl", NULL);
	for (int i = 0; i < 20; i++)
		test_vadd_roundtrip(e, fn, 5000);
	s = test_stats_idle(e);
	ASSERT_U64_EQ(s.pinnings, 0);
	ASSERT_U64_EQ(s.input_copies, 20 * 2 * 5000 * sizeof(float));
	ASSERT_GT(s.pinned_bytes, 0); /* the staging pool is in use */
	gfn_engine_destroy(e);
	ASSERT_EQ(unsetenv("GFN_OPENCL_NO_REGISTER"), 0);
}

/* Device memory is bounded: a tensor that cannot fit fails alone. */
static void opencl_device_oom(void)
{
	gfn_config cfg;
	gfn_engine *e;
	gfn_function fn;
	size_t n = (size_t)4 << 20; /* 16 MiB per tensor */
	float *big = calloc(n, sizeof(float));
	gfn_object in[2];
	gfn_invocation inv;
	gfn_future f;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_OPENCL;
	cfg.kcache_dir = kcache_dir;
	cfg.device_pool_limit = (size_t)8 << 20;
	e = test_engine_with(&cfg);
	fn = reg_vadd_cl(e, "vadd.cl", NULL);
	in[0] = test_make_f32_1d(e, big, n);
	in[1] = test_make_f32_1d(e, big, n);
	inv = test_inv(fn, 2, in, 0, NULL);
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	ASSERT_FAILS(gfn_future_wait(e, f, -1), GFN_ENOMEM);
	ASSERT_OK(gfn_future_release(e, f));
	test_drop(e, in[0]);
	test_drop(e, in[1]);
	test_vadd_roundtrip(e, fn, 1000); /* small ones still run */
	free(big);
	gfn_engine_destroy(e);
}

/* ---- kernel cache across processes ----------------------------------------- */

static int child_warm_cache(const char *dir)
{
	gfn_engine *e = cl_engine(GFN_BACKEND_OPENCL, dir);
	gfn_function fn = reg_vadd_cl(e, "vadd.cl", NULL);
	gfn_stats s = test_stats(e);

	printf("# child: %llu compiles, %llu cache hits\n",
	       (unsigned long long)s.kernel_compiles,
	       (unsigned long long)s.kernel_cache_hits);
	ASSERT_EQ(s.kernel_compiles, 0);
	ASSERT_EQ(s.kernel_cache_hits, count_devices(e));
	test_vadd_roundtrip(e, fn, 777);
	gfn_engine_destroy(e);
	return 0;
}

static void run_child(const char *self, const char *dir)
{
	pid_t pid = fork();
	int st = 0;

	ASSERT(pid >= 0);
	if (pid == 0) {
		execl(self, self, "--child-warm-cache", dir, (char *)NULL);
		_exit(127);
	}
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
}

/* Overwrite the middle of every cache file with garbage. */
static int corrupt_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	ASSERT_NOT_NULL(d);
	while ((de = readdir(d))) {
		char path[4096];
		struct stat st;
		int fd;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		fd = open(path, O_WRONLY);
		ASSERT(fd >= 0);
		ASSERT_EQ(pwrite(fd, "garbage!", 8, st.st_size / 2), 8);
		close(fd);
		n++;
	}
	closedir(d);
	return n;
}

static const char *self_path;

static void opencl_kcache(void)
{
	char dir[] = "/tmp/gfn-kcache-XXXXXX";
	gfn_engine *e;
	gfn_function fn;
	gfn_stats s;
	size_t ndev;

	ASSERT_NOT_NULL(mkdtemp(dir));
	e = cl_engine(GFN_BACKEND_OPENCL, dir); /* cold: compiles */
	ndev = count_devices(e);
	fn = reg_vadd_cl(e, "vadd.cl", NULL);
	s = test_stats(e);
	ASSERT_EQ(s.kernel_compiles + s.kernel_cache_hits, ndev);
	ASSERT_GE(s.kernel_compiles, 1);
	test_vadd_roundtrip(e, fn, 100);
	gfn_engine_destroy(e);
	run_child(self_path, dir); /* a new process: no compile */
	ASSERT_GT(corrupt_dir(dir), 0);
	e = cl_engine(GFN_BACKEND_OPENCL, dir); /* corrupt: rebuilds */
	fn = reg_vadd_cl(e, "vadd.cl", NULL);
	s = test_stats(e);
	/* The first device finds the entry damaged and compiles; identical
	   devices after it may hit the entry it rebuilt. */
	ASSERT_GE(s.kernel_compiles, 1);
	ASSERT_EQ(s.kernel_compiles + s.kernel_cache_hits, ndev);
	test_vadd_roundtrip(e, fn, 100);
	gfn_engine_destroy(e);
	run_child(self_path, dir); /* and the rebuilt entries are good */
}

static int have_opencl(void)
{
	gfn_config cfg;
	gfn_engine *e = NULL;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_OPENCL;
	cfg.kcache_dir = "";
	if (gfn_engine_create(&cfg, &e) != GFN_OK)
		return 0;
	gfn_engine_destroy(e);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--child-warm-cache"))
		return child_warm_cache(argv[2]);
	self_path = argv[0];
	kcache_dir = ""; /* memory only unless a case says otherwise */
	if (!have_opencl()) {
		printf("# no OpenCL device: skipped\n");
		return 77;
	}
	TEST_RUN(opencl_devices);
	TEST_RUN(opencl_vadd);
	TEST_RUN(opencl_empty_tensor);
	TEST_RUN(opencl_scalars);
	TEST_RUN(opencl_matrix_rule);
	TEST_RUN(opencl_build_error);
	TEST_RUN(opencl_two_devices);
	TEST_RUN(opencl_mixed_backends);
	TEST_RUN(opencl_hot_path);
	TEST_RUN(opencl_zero_copy);
	TEST_RUN(opencl_device_oom);
	TEST_RUN(opencl_kcache);
	return 0;
}
