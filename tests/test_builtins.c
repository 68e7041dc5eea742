/*
 * test_builtins.c - every built-in function (gfn/gfn_builtins.h) through
 * the engine, with random inputs, against a straightforward computation in
 * double written here, within the tolerances the header states. Then the
 * checks the engine does on a built-in's arguments (shapes, dtypes, counts)
 * and registering twice.
 *
 * It runs on a CPU-only engine, and again on an OpenCL-only engine where
 * one can be made (an OpenCL device is present and the backend is built):
 * the same oracle and tolerances hold on every backend.
 */
#include "test.h"

#include <math.h>

#include <gfn/gfn_builtins.h>

#define MAXIN 2 /* most inputs of a built-in */

/* Lengths that cover empty, tiny, around a work-group, and large. */
static const size_t sizes[] = {0, 1, 3, 255, 256, 257, 1000, 65537};
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* Values that random draws rarely give: zeros, tiny, saturating. */
static const float specials[] = {0.0f,  -0.0f,  1e-30f, -1e-30f, 1e-3f, -1e-3f,
                                 50.0f, -50.0f, 100.0f, -100.0f, 8.5f,  -8.5f};
#define NSPECIALS (sizeof specials / sizeof specials[0])

static uint64_t rng = 0x6a09e667f3bcc909ull;

/* Uniform in [-lim, lim]. */
static float uniform(float lim)
{
	double u = (double)(test_rand(&rng) >> 11) / 9007199254740992.0;

	return (float)((2.0 * u - 1.0) * lim);
}

/* n values in [-8, 8], with the specials at random places. */
static float *random_vec(size_t n)
{
	float *v = malloc((n ? n : 1) * sizeof *v);

	ASSERT_NOT_NULL(v);
	for (size_t i = 0; i < n; i++)
		v[i] = uniform(8.0f);
	for (size_t k = 0; n && k < NSPECIALS; k++)
		v[test_rand(&rng) % n] = specials[k];
	return v;
}

/*
 * Invoke name on the f32 vectors in[0 .. nin-1] (length n each) with the
 * given params, wait, and copy its single output (nout elements) to out.
 */
static void run(gfn_engine *e, const char *name, float *const *in, size_t nin,
                size_t n, const gfn_scalar *params, size_t npar, float *out,
                size_t nout)
{
	gfn_object obj[MAXIN], res;
	gfn_function fn;
	gfn_future fut;
	size_t got = 0;

	ASSERT_OK(gfn_function_find(e, name, &fn));
	for (size_t k = 0; k < nin; k++)
		obj[k] = test_make_f32_1d(e, in[k], n);
	gfn_invocation inv = {.fn = fn,
	                      .n_inputs = nin,
	                      .inputs = obj,
	                      .n_params = npar,
	                      .params = params};
	ASSERT_OK(gfn_invoke(e, &inv, &fut));
	ASSERT_OK(gfn_future_wait(e, fut, -1));
	ASSERT_OK(gfn_future_outputs(e, fut, &res, 1, &got));
	ASSERT_EQ(got, 1);
	test_read_f32(e, res, out, nout);
	test_drop(e, res);
	ASSERT_OK(gfn_future_release(e, fut));
	for (size_t k = 0; k < nin; k++)
		test_drop(e, obj[k]);
}

/* |got - want| <= tol, or fail naming the function, element and inputs. */
static void check(const char *name, size_t n, size_t i, double got, double want,
                  double tol, double x)
{
	if (fabs(got - want) <= tol)
		return;
	test_fail(__FILE__, __LINE__,
	          "%s n=%zu [%zu]: x=%.9g got %.9g want %.9g (error %.3g > "
	          "tolerance %.3g)",
	          name, n, i, x, got, want, fabs(got - want), tol);
}

/* ---------------------------------------------------------------- cases */

static void case_vadd(gfn_engine *e, size_t n)
{
	float *in[2] = {random_vec(n), random_vec(n)};
	float *c = malloc((n ? n : 1) * sizeof *c);

	run(e, "gfn.vadd", in, 2, n, NULL, 0, c, n);
	for (size_t i = 0; i < n; i++) {
		double a = in[0][i], b = in[1][i];

		check("gfn.vadd", n, i, c[i], a + b,
		      1.2e-7 * (fabs(a) + fabs(b)) + 1e-37, a);
	}
	free(in[0]);
	free(in[1]);
	free(c);
}

static void case_saxpy(gfn_engine *e, size_t n)
{
	float *in[2] = {random_vec(n), random_vec(n)};
	float *out = malloc((n ? n : 1) * sizeof *out);
	gfn_scalar a = {.f32 = uniform(3.0f)};

	run(e, "gfn.saxpy", in, 2, n, &a, 1, out, n);
	for (size_t i = 0; i < n; i++) {
		double ax = (double)a.f32 * in[0][i], y = in[1][i];

		check("gfn.saxpy", n, i, out[i], ax + y,
		      2.4e-7 * (fabs(ax) + fabs(y)) + 1e-37, in[0][i]);
	}
	free(in[0]);
	free(in[1]);
	free(out);
}

enum act { RELU, GELU, TANH, SIGMOID };

static double act_exact(enum act k, double x)
{
	switch (k) {
	case RELU:
		return x > 0 ? x : 0;
	case GELU:
		return 0.5 * x *
		       (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
	case TANH:
		return tanh(x);
	case SIGMOID:
		break;
	}
	return 1 / (1 + exp(-x));
}

static double act_tol(enum act k, double x, double want)
{
	switch (k) {
	case RELU:
		return 0;
	case GELU:
		return 1e-6 * fabs(x) + 1e-37;
	case TANH:
	case SIGMOID:
		break;
	}
	return 1e-6 * fabs(want) + 1e-37;
}

static void case_act(gfn_engine *e, size_t n, enum act k, const char *name)
{
	float *in[1] = {random_vec(n)};
	float *out = malloc((n ? n : 1) * sizeof *out);

	run(e, name, in, 1, n, NULL, 0, out, n);
	for (size_t i = 0; i < n; i++) {
		double x = in[0][i], want = act_exact(k, x);

		check(name, n, i, out[i], want, act_tol(k, x, want), x);
	}
	free(in[0]);
	free(out);
}

static void case_sum(gfn_engine *e, size_t n)
{
	float *in[1] = {random_vec(n)};
	double want = 0, mag = 0;
	float got;

	run(e, "gfn.sum", in, 1, n, NULL, 0, &got, 1);
	for (size_t i = 0; i < n; i++) {
		want += in[0][i];
		mag += fabs(in[0][i]);
	}
	check("gfn.sum", n, 0, got, want, 1e-5 * mag + 1e-37, mag);
	free(in[0]);
}

/* Every function at every size. */
static void all_functions(gfn_engine *e)
{
	for (size_t s = 0; s < NSIZES; s++) {
		size_t n = sizes[s];

		case_vadd(e, n);
		case_saxpy(e, n);
		case_act(e, n, RELU, "gfn.relu");
		case_act(e, n, GELU, "gfn.gelu");
		case_act(e, n, TANH, "gfn.tanh");
		case_act(e, n, SIGMOID, "gfn.sigmoid");
		case_sum(e, n);
	}
}

/* A sum of many equal values: a naive float loop would be far off. */
static void sum_long(gfn_engine *e)
{
	size_t n = test_scaled(4u << 20, 1u << 20);
	float *in[1] = {malloc(n * sizeof(float))};
	float got;

	ASSERT_NOT_NULL(in[0]);
	for (size_t i = 0; i < n; i++)
		in[0][i] = 0.1f;
	run(e, "gfn.sum", in, 1, n, NULL, 0, &got, 1);
	check("gfn.sum", n, 0, got, (double)n * 0.1f, 1e-5 * (double)n * 0.1f,
	      0.1);
	free(in[0]);
}

static gfn_engine *engine_for(unsigned backends)
{
	gfn_config cfg;
	gfn_engine *e = NULL;
	gfn_status s;

	gfn_config_init(&cfg);
	cfg.backends = backends;
	cfg.kcache_dir = ""; /* keep compiled kernels out of $HOME */
	s = gfn_engine_create(&cfg, &e);
	if (s == GFN_ENODEV)
		return NULL;
	ASSERT_OK(s);
	ASSERT_OK(gfn_builtins_register(e));
	return e;
}

static void test_cpu(void)
{
	gfn_engine *e = engine_for(GFN_BACKEND_CPU);

	ASSERT_NOT_NULL(e);
	all_functions(e);
	sum_long(e);
	gfn_engine_destroy(e);
}

static void test_opencl(void)
{
	gfn_engine *e = engine_for(GFN_BACKEND_OPENCL);
	gfn_device_info info;

	if (!e) {
		printf("# no OpenCL device: the CPU run is the only one\n");
		return;
	}
	ASSERT_OK(gfn_device_get_info(e, 0, &info));
	ASSERT_EQ(info.backend, GFN_BACKEND_OPENCL);
	printf("# OpenCL device: %s\n", info.name);
	all_functions(e);
	sum_long(e);
	gfn_engine_destroy(e);
}

/* ---------------------------------------------------------- bad arguments */

static gfn_status invoke_bad(gfn_engine *e, const char *name,
                             const gfn_object *in, size_t nin,
                             const gfn_scalar *params, size_t npar)
{
	gfn_invocation inv = {.n_inputs = nin,
	                      .inputs = in,
	                      .n_params = npar,
	                      .params = params};
	gfn_future fut = {0};
	gfn_status s;

	ASSERT_OK(gfn_function_find(e, name, &inv.fn));
	s = gfn_invoke(e, &inv, &fut);
	ASSERT_U64_EQ(fut.id, 0); /* no future made */
	return s;
}

static void test_rejects(void)
{
	gfn_engine *e = engine_for(GFN_BACKEND_CPU);
	float v[12] = {0};
	int64_t sq[2] = {3, 4};
	int32_t iv[5] = {0};
	gfn_object a5 = test_make_f32_1d(e, v, 5);
	gfn_object b6 = test_make_f32_1d(e, v, 6);
	gfn_object m34 = test_make_f32(e, v, 2, sq);
	gfn_object i5 = test_make(e, GFN_I32, 1, (int64_t[]){5}, iv);
	gfn_scalar p = {.f32 = 1};

	ASSERT_FAILS(
	        invoke_bad(e, "gfn.vadd", (gfn_object[]){a5, b6}, 2, NULL, 0),
	        GFN_ESHAPE);
	ASSERT_FAILS(
	        invoke_bad(e, "gfn.saxpy", (gfn_object[]){b6, a5}, 2, &p, 1),
	        GFN_ESHAPE);
	ASSERT_FAILS(
	        invoke_bad(e, "gfn.vadd", (gfn_object[]){m34, m34}, 2, NULL, 0),
	        GFN_ESHAPE);
	ASSERT_FAILS(invoke_bad(e, "gfn.sum", &m34, 1, NULL, 0), GFN_ESHAPE);
	ASSERT_FAILS(
	        invoke_bad(e, "gfn.vadd", (gfn_object[]){a5, i5}, 2, NULL, 0),
	        GFN_EDTYPE);
	ASSERT_FAILS(invoke_bad(e, "gfn.relu", &i5, 1, NULL, 0), GFN_EDTYPE);
	ASSERT_FAILS(
	        invoke_bad(e, "gfn.saxpy", (gfn_object[]){a5, a5}, 2, NULL, 0),
	        GFN_EINVAL);
	ASSERT_FAILS(
	        invoke_bad(e, "gfn.relu", (gfn_object[]){a5, a5}, 2, NULL, 0),
	        GFN_EINVAL);
	/* Registering twice: refused, and the first set still works. */
	ASSERT_FAILS(gfn_builtins_register(e), GFN_EEXIST);
	ASSERT_FAILS(gfn_builtins_register(NULL), GFN_EINVAL);
	case_vadd(e, 10);
	case_sum(e, 10);
	test_drop(e, a5);
	test_drop(e, b6);
	test_drop(e, m34);
	test_drop(e, i5);
	gfn_engine_destroy(e);
}

/* A failed registration leaves nothing behind: all or nothing. */
static void test_all_or_nothing(void)
{
	gfn_engine *e = NULL;
	gfn_config cfg;
	gfn_function fn;
	gfn_tensor_spec v = {"v", GFN_F32, 1, {GFN_DIM_VAR(0)}};
	gfn_function_desc squat = {.name = "gfn.sum", /* the last one */
	                           .n_inputs = 1,
	                           .inputs = &v,
	                           .n_outputs = 1,
	                           .outputs = &v,
	                           .cpu_fn = test_vadd_kernel};

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	e = test_engine_with(&cfg);
	ASSERT_OK(gfn_function_register(e, &squat, &fn));
	ASSERT_FAILS(gfn_builtins_register(e), GFN_EEXIST);
	ASSERT_FAILS_ID(gfn_function_find(e, "gfn.vadd", &fn));
	ASSERT_FAILS_ID(gfn_function_find(e, "gfn.sigmoid", &fn));
	ASSERT_OK(gfn_function_find(e, "gfn.sum", &fn));
	gfn_engine_destroy(e);
}

int main(void)
{
	TEST_RUN(test_cpu);
	TEST_RUN(test_rejects);
	TEST_RUN(test_all_or_nothing);
	TEST_RUN(test_opencl);
	return 0;
}
