/*
 * test_conformance.c - every built-in function on every device of every
 * present backend, against the CPU backend (the oracle) and against an
 * exact value computed here in double, within the tolerances stated in
 * include/gfn/gfn_builtins.h. Invocations are pinned to one device with
 * gfn_invocation.devices, so no device goes untested. On a machine with
 * only the CPU backend it still checks the CPU against the exact values.
 */
#include "test.h"

#include <gfn/gfn_builtins.h>
#include <math.h>

typedef double (*exact_fn)(const float *x, const float *y, float a, size_t n,
                           size_t i);
typedef double (*bound_fn)(const float *x, const float *y, float a, size_t n,
                           size_t i, double w);

static double ex_vadd(const float *x, const float *y, float a, size_t n,
                      size_t i)
{
	(void)a, (void)n;
	return (double)x[i] + y[i];
}
static double bd_vadd(const float *x, const float *y, float a, size_t n,
                      size_t i, double w)
{
	(void)a, (void)n, (void)w;
	return 1.2e-7 * (fabs(x[i]) + fabs(y[i])) + 1e-37;
}
static double ex_saxpy(const float *x, const float *y, float a, size_t n,
                       size_t i)
{
	(void)n;
	return (double)a * x[i] + y[i];
}
static double bd_saxpy(const float *x, const float *y, float a, size_t n,
                       size_t i, double w)
{
	(void)n, (void)w;
	return 2.4e-7 * (fabs((double)a * x[i]) + fabs(y[i])) + 1e-37;
}
static double ex_relu(const float *x, const float *y, float a, size_t n,
                      size_t i)
{
	(void)y, (void)a, (void)n;
	return x[i] > 0 ? x[i] : 0.0;
}
static double bd_exact(const float *x, const float *y, float a, size_t n,
                       size_t i, double w)
{
	(void)x, (void)y, (void)a, (void)n, (void)i, (void)w;
	return 0;
}
static double ex_gelu(const float *x, const float *y, float a, size_t n,
                      size_t i)
{
	double v = x[i];

	(void)y, (void)a, (void)n;
	return 0.5 * v *
	       (1 + tanh(sqrt(2 / 3.14159265358979323846) *
	                 (v + 0.044715 * v * v * v)));
}
static double bd_gelu(const float *x, const float *y, float a, size_t n,
                      size_t i, double w)
{
	(void)y, (void)a, (void)n, (void)w;
	return 1e-6 * fabs(x[i]) + 1e-37;
}
static double ex_tanh(const float *x, const float *y, float a, size_t n,
                      size_t i)
{
	(void)y, (void)a, (void)n;
	return tanh(x[i]);
}
static double ex_sigmoid(const float *x, const float *y, float a, size_t n,
                         size_t i)
{
	(void)y, (void)a, (void)n;
	return 1 / (1 + exp(-(double)x[i]));
}
static double bd_rel(const float *x, const float *y, float a, size_t n,
                     size_t i, double w)
{
	(void)x, (void)y, (void)a, (void)n, (void)i;
	return 1e-6 * fabs(w) + 1e-37;
}
static double ex_sum(const float *x, const float *y, float a, size_t n,
                     size_t i)
{
	double s = 0;

	(void)y, (void)a, (void)i;
	for (size_t k = 0; k < n; k++)
		s += x[k];
	return s;
}
static double bd_sum(const float *x, const float *y, float a, size_t n,
                     size_t i, double w)
{
	double s = 0;

	(void)y, (void)a, (void)i, (void)w;
	for (size_t k = 0; k < n; k++)
		s += fabs(x[k]);
	return 1e-5 * s + 1e-37;
}

typedef struct builtin {
	const char *name; /* registered name */
	int n_in;         /* f32 vector inputs */
	int has_a;        /* one f32 parameter */
	int scalar_out;   /* output has one element */
	exact_fn exact;   /* value in double */
	bound_fn bound;   /* allowed absolute error */
} builtin;

static const builtin builtins[] = {
        {"gfn.vadd", 2, 0, 0, ex_vadd, bd_vadd},
        {"gfn.saxpy", 2, 1, 0, ex_saxpy, bd_saxpy},
        {"gfn.relu", 1, 0, 0, ex_relu, bd_exact},
        {"gfn.gelu", 1, 0, 0, ex_gelu, bd_gelu},
        {"gfn.tanh", 1, 0, 0, ex_tanh, bd_rel},
        {"gfn.sigmoid", 1, 0, 0, ex_sigmoid, bd_rel},
        {"gfn.sum", 1, 0, 1, ex_sum, bd_sum},
};

static const size_t sizes[] = {0, 1, 7, 256, 1000, 4097};

/* Run b on device dev with inputs x (and y), read the output into out. */
static void run_on(gfn_engine *e, const builtin *b, size_t dev,
                   const gfn_object *in, float a, float *out, size_t nout)
{
	gfn_function fn;
	gfn_scalar p = {.f32 = a};
	gfn_invocation inv;
	gfn_object o;
	gfn_future f;

	ASSERT_OK(gfn_function_find(e, b->name, &fn));
	inv = test_inv(fn, (size_t)b->n_in, in, b->has_a ? 1 : 0, &p);
	inv.devices = 1ull << dev;
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	o = test_take_output(e, f);
	test_read_f32(e, o, out, nout);
	test_drop(e, o);
	ASSERT_OK(gfn_future_release(e, f));
}

static void check(const builtin *b, const char *dev, size_t n, const float *x,
                  const float *y, float a, const float *got, const float *cpu)
{
	size_t nout = b->scalar_out ? 1 : n;

	for (size_t i = 0; i < nout; i++) {
		double w = b->exact(x, y, a, n, i);
		double tol = b->bound(x, y, a, n, i, w);
		if (fabs(got[i] - w) > tol || fabs(got[i] - cpu[i]) > 2 * tol)
			test_fail(__FILE__, __LINE__,
			          "%s on %s, n=%zu, i=%zu: got %.9g, cpu %.9g, "
			          "exact %.9g, tolerance %.3g",
			          b->name, dev, n, i, got[i], cpu[i], w, tol);
	}
}

static void fill(float *v, size_t n, uint64_t *rng, float scale)
{
	for (size_t i = 0; i < n; i++)
		v[i] = scale * ((float)(test_rand(rng) % 20001) / 10000.0f - 1);
}

/* One built-in, one size, on every device; device 0 (the CPU) first. */
static void conform_one(gfn_engine *e, const builtin *b, size_t n,
                        uint64_t *rng)
{
	size_t ndev, nout = b->scalar_out ? 1 : n;
	float *x = malloc((n + 1) * sizeof(float));
	float *y = malloc((n + 1) * sizeof(float));
	float *cpu = malloc((nout + 1) * sizeof(float));
	float *got = malloc((nout + 1) * sizeof(float));
	float a = 1.5f;
	gfn_object in[2];
	gfn_device_info info;

	fill(x, n, rng, 4.0f);
	fill(y, n, rng, 4.0f);
	in[0] = test_make_f32_1d(e, x, n);
	in[1] = test_make_f32_1d(e, y, n);
	ASSERT_OK(gfn_device_count(e, &ndev));
	run_on(e, b, 0, in, a, cpu, nout); /* device 0 is the CPU */
	for (size_t d = 0; d < ndev; d++) {
		ASSERT_OK(gfn_device_get_info(e, d, &info));
		run_on(e, b, d, in, a, got, nout);
		check(b, info.name, n, x, y, a, got, cpu);
	}
	test_drop(e, in[0]);
	test_drop(e, in[1]);
	free(x);
	free(y);
	free(cpu);
	free(got);
}

int main(void)
{
	gfn_engine *e;
	gfn_config cfg;
	gfn_device_info info;
	uint64_t rng = 12345;
	size_t ndev;

	gfn_config_init(&cfg); /* every backend present */
	e = test_engine_with(&cfg);
	ASSERT_OK(gfn_builtins_register(e));
	ASSERT_OK(gfn_device_count(e, &ndev));
	ASSERT_OK(gfn_device_get_info(e, 0, &info));
	ASSERT_EQ(info.backend, GFN_BACKEND_CPU);
	for (size_t d = 0; d < ndev; d++) {
		ASSERT_OK(gfn_device_get_info(e, d, &info));
		printf("# device %zu: %s\n", d, info.name);
	}
	for (size_t k = 0; k < sizeof(builtins) / sizeof(builtins[0]); k++) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
			conform_one(e, &builtins[k], sizes[s], &rng);
		printf("ok - %s on %zu devices\n", builtins[k].name, ndev);
	}
	for (size_t d = 0; d < ndev; d++) {
		gfn_device_stats ds;
		ASSERT_OK(gfn_device_get_stats(e, d, &ds));
		ASSERT_GT(ds.completed, 0);
	}
	gfn_engine_destroy(e);
	return 0;
}
