/*
 * testutil.c - the helpers declared in test.h, written once and compiled
 * into every suite.
 */
#include "test.h"

#include <stdarg.h>
#include <time.h>

/* ----------------------------------------------------------------- asserts */

void test_copy_detail(char *buf, size_t cap)
{
	const char *d = gfn_error_detail();

	if (cap == 0)
		return;
	if (d == NULL) {
		snprintf(buf, cap, "(gfn_error_detail() returned NULL)");
		return;
	}
	snprintf(buf, cap, "%s", d);
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	test_copy_detail(detail, sizeof detail);
	fflush(stdout);
	fprintf(stderr, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n  gfn_error_detail(): \"%s\"\n", detail);
	fflush(stderr);
	exit(1);
}

void test_status_fail(const char *file, int line, const char *expr,
                      const char *want, gfn_status got, const char *detail)
{
	fflush(stdout);
	fprintf(stderr,
	        "%s:%d: %s\n  expected %s\n  got      %s (%d): %s\n"
	        "  gfn_error_detail(): \"%s\"\n",
	        file, line, expr, want, gfn_status_name(got), (int)got,
	        gfn_status_str(got), detail);
	fflush(stderr);
	exit(1);
}

/* ------------------------------------------------------------------- scale */

#if defined(__SANITIZE_THREAD__)
#define TEST_DEFAULT_SCALE 0.25
#elif defined(__SANITIZE_ADDRESS__)
#define TEST_DEFAULT_SCALE 0.5
#else
#define TEST_DEFAULT_SCALE 1.0
#endif

double test_scale(void)
{
	const char *s = getenv("GFN_TEST_SCALE");
	double v;

	if (s == NULL || *s == '\0')
		return TEST_DEFAULT_SCALE;
	v = strtod(s, NULL);
	return v > 0 ? v : TEST_DEFAULT_SCALE;
}

size_t test_scaled(size_t n, size_t min)
{
	double v = (double)n * test_scale();

	return v < (double)min ? min : (size_t)v;
}

/* -------------------------------------------------------------------- time */

void *test_slurp(const char *path, size_t *bytes)
{
	FILE *fp = fopen(path, "rb");
	long len;
	char *p;

	if (!fp)
		test_fail(__FILE__, __LINE__, "cannot open %s", path);
	ASSERT_EQ(fseek(fp, 0, SEEK_END), 0);
	len = ftell(fp);
	ASSERT(len >= 0);
	rewind(fp);
	p = malloc((size_t)len + 1);
	ASSERT_NOT_NULL(p);
	ASSERT_EQ(fread(p, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	p[len] = '\0';
	*bytes = (size_t)len;
	return p;
}

uint64_t test_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void test_sleep_us(unsigned us)
{
	struct timespec ts = {us / 1000000u, (long)(us % 1000000u) * 1000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

uint64_t test_rand(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* ----------------------------------------------------------------- engines */

gfn_engine *test_engine_with(const gfn_config *cfg)
{
	gfn_engine *e = NULL;
	size_t n = 0;

	ASSERT_OK(gfn_engine_create(cfg, &e));
	ASSERT_NOT_NULL(e);
	ASSERT_OK(gfn_device_count(e, &n));
	ASSERT_GE(n, 1);
	return e;
}

/*
 * The CPU backend only: the suites that test the engine's own logic need
 * no device, and leave OpenCL to the suites written for it.
 */
gfn_engine *test_engine(void)
{
	gfn_config cfg;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	return test_engine_with(&cfg);
}

gfn_engine *test_engine_single(void)
{
	gfn_config cfg;
	size_t n = 0;
	gfn_engine *e;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	cfg.cpu_devices = 1;
	cfg.workers_per_device = 1;
	e = test_engine_with(&cfg);
	ASSERT_OK(gfn_device_count(e, &n));
	ASSERT_EQ(n, 1);
	return e;
}

gfn_stats test_stats(gfn_engine *e)
{
	gfn_stats s;

	memset(&s, 0xa5, sizeof s);
	ASSERT_OK(gfn_engine_stats(e, &s));
	return s;
}

gfn_stats test_stats_idle(gfn_engine *e)
{
	uint64_t t0 = test_now_ns();
	gfn_stats s = test_stats(e);

	while ((s.queued != 0 || s.running != 0) &&
	       test_now_ns() - t0 < 10ull * 1000000000ull) {
		test_sleep_us(500);
		s = test_stats(e);
	}
	ASSERT_EQ(s.queued, 0);
	ASSERT_EQ(s.running, 0);
	return s;
}

/* ----------------------------------------------------------------- objects */

size_t test_numel(int ndim, const int64_t *shape)
{
	size_t n = 1;

	for (int i = 0; i < ndim; i++)
		n *= (size_t)shape[i];
	return n;
}

gfn_object test_make(gfn_engine *e, gfn_dtype dtype, int ndim,
                     const int64_t *shape, const void *data)
{
	size_t nbytes = test_numel(ndim, shape) * gfn_dtype_size(dtype);
	gfn_object o = GFN_OBJECT_NONE;

	ASSERT_OK(gfn_object_create(e, dtype, ndim, shape, &o));
	ASSERT(!gfn_object_equal(o, GFN_OBJECT_NONE));
	if (nbytes > 0)
		ASSERT_OK(gfn_object_write(e, o, 0, data, nbytes));
	ASSERT_OK(gfn_object_seal(e, o));
	return o;
}

gfn_object test_make_f32(gfn_engine *e, const float *data, int ndim,
                         const int64_t *shape)
{
	return test_make(e, GFN_F32, ndim, shape, data);
}

gfn_object test_make_f32_1d(gfn_engine *e, const float *data, size_t n)
{
	int64_t shape[1] = {(int64_t)n};

	return test_make(e, GFN_F32, 1, shape, data);
}

void test_read_f32(gfn_engine *e, gfn_object obj, float *dst, size_t n)
{
	gfn_object_view v;

	memset(&v, 0, sizeof v);
	ASSERT_OK(gfn_object_get(e, obj, &v));
	ASSERT_EQ(v.dtype, GFN_F32);
	ASSERT_EQ(v.size, n * sizeof(float));
	ASSERT_EQ(test_numel(v.ndim, v.shape), n);
	if (n > 0) {
		ASSERT_NOT_NULL(v.data);
		memcpy(dst, v.data, n * sizeof(float));
	}
	ASSERT_OK(gfn_object_release(e, obj));
}

void test_drop(gfn_engine *e, gfn_object obj)
{
	ASSERT_OK(gfn_object_release(e, obj));
	ASSERT_OK(gfn_object_delete(e, obj));
}

/* ------------------------------------------------------------------- gates */

void test_gate_init(struct test_gate *g)
{
	atomic_init(&g->open, 0);
	atomic_init(&g->entered, 0);
	atomic_init(&g->passed, 0);
}

void test_gate_open(struct test_gate *g)
{
	atomic_store(&g->open, 1);
}

void test_gate_wait_entered(struct test_gate *g, int n)
{
	uint64_t t0 = test_now_ns();

	while (atomic_load(&g->entered) < n) {
		if (test_now_ns() - t0 > 30ull * 1000000000ull)
			test_fail(__FILE__, __LINE__,
			          "only %d of %d kernels reached the gate in "
			          "30 s",
			          atomic_load(&g->entered), n);
		test_sleep_us(200);
	}
}

int test_gate_pass(struct test_gate *g)
{
	uint64_t t0 = test_now_ns();

	atomic_fetch_add(&g->entered, 1);
	while (!atomic_load(&g->open)) {
		if (test_now_ns() - t0 > 60ull * 1000000000ull)
			return 1;
		test_sleep_us(100);
	}
	atomic_fetch_add(&g->passed, 1);
	return 0;
}

/* --------------------------------------------------------------- functions */

static int tensor_is_f32_vec(const gfn_tensor *t, int64_t n)
{
	return t->dtype == GFN_F32 && t->ndim == 1 && t->shape[0] == n &&
	       t->nbytes == (size_t)n * sizeof(float) &&
	       (n == 0 || t->data != NULL);
}

int test_vadd_kernel(const gfn_kernel_args *args, void *user)
{
	struct test_gate *gate = user;
	const float *a, *b;
	float *c;
	int64_t n;

	if (gate != NULL && test_gate_pass(gate) != 0)
		return 99;
	if (args->n_inputs != 2 || args->n_outputs != 1 || args->n_params != 0)
		return 98;
	n = args->inputs[0].shape[0];
	if (!tensor_is_f32_vec(&args->inputs[0], n) ||
	    !tensor_is_f32_vec(&args->inputs[1], n))
		return 97;
	if (!tensor_is_f32_vec(&args->outputs[0], n))
		return 96;
	a = args->inputs[0].data;
	b = args->inputs[1].data;
	c = args->outputs[0].data;
	for (int64_t i = 0; i < n; i++)
		c[i] = a[i] + b[i];
	return 0;
}

int test_gate_kernel(const gfn_kernel_args *args, void *user)
{
	if (args->n_inputs != 0 || args->n_outputs != 0 || args->n_params != 0)
		return 98;
	return test_gate_pass(user) != 0 ? 99 : 0;
}

void test_vadd_signature(gfn_tensor_spec in[2], gfn_tensor_spec out[1])
{
	memset(in, 0, 2 * sizeof *in);
	memset(out, 0, sizeof *out);
	in[0].name = "a";
	in[1].name = "b";
	out[0].name = "c";
	for (int i = 0; i < 2; i++) {
		in[i].dtype = GFN_F32;
		in[i].ndim = 1;
		in[i].dims[0] = GFN_DIM_VAR(0);
	}
	out[0].dtype = GFN_F32;
	out[0].ndim = 1;
	out[0].dims[0] = GFN_DIM_VAR(0);
}

gfn_function test_register_vadd_gated(gfn_engine *e, const char *name,
                                      struct test_gate *gate)
{
	gfn_tensor_spec in[2], out[1];
	gfn_function_desc d;
	gfn_function fn = {0};

	test_vadd_signature(in, out);
	memset(&d, 0, sizeof d);
	d.name = name;
	d.n_inputs = 2;
	d.inputs = in;
	d.n_outputs = 1;
	d.outputs = out;
	d.cpu_fn = test_vadd_kernel;
	d.user = gate;
	ASSERT_OK(gfn_function_register(e, &d, &fn));
	ASSERT_NE(fn.id, 0);
	return fn;
}

gfn_function test_register_vadd(gfn_engine *e, const char *name)
{
	return test_register_vadd_gated(e, name, NULL);
}

gfn_function test_register_gate(gfn_engine *e, const char *name,
                                struct test_gate *gate)
{
	gfn_function_desc d;
	gfn_function fn = {0};

	memset(&d, 0, sizeof d);
	d.name = name;
	d.cpu_fn = test_gate_kernel;
	d.user = gate;
	ASSERT_OK(gfn_function_register(e, &d, &fn));
	ASSERT_NE(fn.id, 0);
	return fn;
}

gfn_invocation test_inv(gfn_function fn, size_t n_inputs,
                        const gfn_object *inputs, size_t n_params,
                        const gfn_scalar *params)
{
	gfn_invocation inv;

	memset(&inv, 0, sizeof inv);
	inv.fn = fn;
	inv.n_inputs = n_inputs;
	inv.inputs = inputs;
	inv.n_params = n_params;
	inv.params = params;
	return inv;
}

gfn_object test_take_output(gfn_engine *e, gfn_future f)
{
	gfn_object outs[GFN_MAX_OUTPUTS];
	size_t n = 0;

	ASSERT_OK(gfn_future_wait(e, f, -1));
	ASSERT_OK(gfn_future_outputs(e, f, outs, GFN_MAX_OUTPUTS, &n));
	ASSERT_EQ(n, 1);
	ASSERT(!gfn_object_equal(outs[0], GFN_OBJECT_NONE));
	return outs[0];
}

void test_vadd_roundtrip(gfn_engine *e, gfn_function fn, size_t n)
{
	test_vadd_roundtrip_on(e, fn, n, 0);
}

void test_vadd_roundtrip_on(gfn_engine *e, gfn_function fn, size_t n,
                            uint64_t devices)
{
	static atomic_uint salt;
	unsigned s = atomic_fetch_add(&salt, 1);
	float *a = malloc(n * sizeof *a + 1);
	float *b = malloc(n * sizeof *b + 1);
	float *c = malloc(n * sizeof *c + 1);
	gfn_object in[2], out;
	gfn_invocation inv;
	gfn_future f = {0};

	ASSERT(a && b && c);
	for (size_t i = 0; i < n; i++) {
		a[i] = (float)(i % 1000) + (float)(s % 97);
		b[i] = (float)(s % 13) * 1000.0f - (float)(i % 77);
	}
	in[0] = test_make_f32_1d(e, a, n);
	in[1] = test_make_f32_1d(e, b, n);
	inv = test_inv(fn, 2, in, 0, NULL);
	inv.devices = devices;
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	ASSERT_NE(f.id, 0);
	out = test_take_output(e, f);
	test_read_f32(e, out, c, n);
	for (size_t i = 0; i < n; i++)
		ASSERT_DBL_EQ(c[i], a[i] + b[i]);
	test_drop(e, out);
	ASSERT_OK(gfn_future_release(e, f));
	test_drop(e, in[0]);
	test_drop(e, in[1]);
	free(a);
	free(b);
	free(c);
}

/* --------------------------------------------------------------- callbacks */

void test_cb_count_init(struct test_cb_count *c)
{
	atomic_init(&c->calls, 0);
	atomic_init(&c->ok, 0);
	atomic_init(&c->canceled, 0);
	atomic_init(&c->other, 0);
}

void test_count_cb(gfn_engine *e, gfn_future f, gfn_status status, void *arg)
{
	struct test_cb_count *c = arg;

	(void)e;
	(void)f;
	if (status == GFN_OK)
		atomic_fetch_add(&c->ok, 1);
	else if (status == GFN_ECANCELED)
		atomic_fetch_add(&c->canceled, 1);
	else
		atomic_fetch_add(&c->other, 1);
	/* Last, so a waiter that sees calls also sees the status counts. */
	atomic_fetch_add(&c->calls, 1);
}

void test_cb_wait(struct test_cb_count *c, size_t n)
{
	uint64_t t0 = test_now_ns();

	while (atomic_load(&c->calls) < n) {
		if (test_now_ns() - t0 > 30ull * 1000000000ull)
			test_fail(__FILE__, __LINE__,
			          "only %zu of %zu callbacks fired in 30 s",
			          (size_t)atomic_load(&c->calls), n);
		test_sleep_us(200);
	}
}
