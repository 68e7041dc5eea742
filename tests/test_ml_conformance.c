/*
 * test_ml_conformance.c - every ML built-in (gfn_ml_ops_register, written
 * once in the portable dialect) on every device of every present backend,
 * against an exact value computed here in double and against the CPU
 * backend, within the tolerances gfn/gfn_model.h states. Invocations are
 * pinned to one device each, so no device goes untested.
 */
#include "test.h"

#include <gfn/gfn_model.h>
#include <math.h>
#include <string.h>

/* Shapes: empty, one element, a few classes, features, wider rows. */
static const int64_t shapes[][2] = {{0, 3},   {1, 1},   {3, 10},
                                    {17, 64}, {5, 300}, {2, 1024}};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

typedef enum { OP_BIAS, OP_SOFTMAX, OP_LAYERNORM, OP_ARGMAX, OP_COUNT } op;
static const char *const names[OP_COUNT] = {"gfn.bias_add", "gfn.softmax",
                                            "gfn.layernorm", "gfn.argmax"};

/* One case's data: x [rows, cols], v1 and v2 [cols] (b, gamma, beta). */
typedef struct data {
	size_t rows, cols;  /* extents */
	float *x, *v1, *v2; /* inputs */
	float eps;          /* layernorm */
} data;

static void fill(float *v, size_t n, uint64_t *rng, float lo, float hi)
{
	for (size_t i = 0; i < n; i++)
		v[i] = lo +
		       (hi - lo) * (float)(test_rand(rng) % 100001) / 100000.0f;
}

/* The exact value of output element i (a row index for argmax). */
static double exact(op o, const data *d, size_t i)
{
	size_t r = i / (d->cols ? d->cols : 1), c = i % (d->cols ? d->cols : 1);
	const float *x = d->x + r * d->cols;
	double a = 0, b = 0, mx = -INFINITY;

	switch (o) {
	case OP_BIAS:
		return (double)x[c] + d->v1[c];
	case OP_SOFTMAX:
		for (size_t j = 0; j < d->cols; j++)
			mx = fmax(mx, x[j]);
		for (size_t j = 0; j < d->cols; j++)
			a += exp(x[j] - mx);
		return exp(x[c] - mx) / a;
	case OP_LAYERNORM:
		for (size_t j = 0; j < d->cols; j++)
			a += x[j];
		a /= (double)d->cols;
		for (size_t j = 0; j < d->cols; j++)
			b += (x[j] - a) * (x[j] - a);
		b /= (double)d->cols;
		return (x[c] - a) / sqrt(b + d->eps) * d->v1[c] + d->v2[c];
	default: /* argmax: i is the row */
		x = d->x + i * d->cols;
		for (size_t j = 1; j < d->cols; j++)
			if (x[j] > x[(size_t)a])
				a = (double)j;
		return a;
	}
}

static double bound(op o, const data *d, size_t i, double w)
{
	size_t c = i % (d->cols ? d->cols : 1);

	switch (o) {
	case OP_BIAS:
		return 1.2e-7 * (fabs(d->x[i]) + fabs(d->v1[c])) + 1e-37;
	case OP_SOFTMAX:
		return 1e-6 + 1e-5 * fabs(w);
	case OP_LAYERNORM:
		return 1e-5 * (1 + fabs(w));
	default:
		return 0;
	}
}

/* Run o on device dev; out gets rows*cols floats (argmax: rows ints). */
static void run_on(gfn_engine *e, op o, size_t dev, const gfn_object *in,
                   const data *d, void *out)
{
	gfn_scalar eps = {.f32 = d->eps};
	size_t nin = o == OP_BIAS ? 2 : o == OP_LAYERNORM ? 3 : 1;
	gfn_object res;
	gfn_object_view v;
	gfn_invocation inv;
	gfn_function fn;
	gfn_future f;

	ASSERT_OK(gfn_function_find(e, names[o], &fn));
	inv = test_inv(fn, nin, in, o == OP_LAYERNORM ? 1 : 0, &eps);
	inv.devices = 1ull << dev;
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	res = test_take_output(e, f);
	ASSERT_OK(gfn_object_get(e, res, &v));
	ASSERT_EQ(v.dtype, o == OP_ARGMAX ? GFN_I32 : GFN_F32);
	ASSERT_EQ(v.size, (o == OP_ARGMAX ? d->rows : d->rows * d->cols) * 4);
	memcpy(out, v.data, v.size);
	ASSERT_OK(gfn_object_release(e, res));
	test_drop(e, res);
	ASSERT_OK(gfn_future_release(e, f));
}

static void check(op o, const char *dev, const data *d, const void *got,
                  const void *cpu)
{
	size_t n = o == OP_ARGMAX ? d->rows : d->rows * d->cols;

	for (size_t i = 0; i < n; i++) {
		double w = exact(o, d, i), tol = bound(o, d, i, w), g, c;

		if (o == OP_ARGMAX) {
			g = ((const int32_t *)got)[i];
			c = ((const int32_t *)cpu)[i];
		} else {
			g = ((const float *)got)[i];
			c = ((const float *)cpu)[i];
		}
		if (fabs(g - w) > tol || fabs(g - c) > 2 * tol)
			test_fail(
			        __FILE__, __LINE__,
			        "%s on %s, %zux%zu, i=%zu: got %.9g, cpu %.9g, "
			        "exact %.9g, tolerance %.3g",
			        names[o], dev, d->rows, d->cols, i, g, c, w,
			        tol);
	}
}

static void conform_one(gfn_engine *e, op o, const int64_t *shape,
                        uint64_t *rng)
{
	data d = {(size_t)shape[0], (size_t)shape[1], NULL, NULL, NULL, 1e-5f};
	size_t n = d.rows * d.cols, ndev;
	int64_t vshape[1] = {shape[1]};
	float *cpu = malloc((n + 1) * 4), *got = malloc((n + 1) * 4);
	gfn_object in[3];
	gfn_device_info info;

	d.x = malloc((n + 1) * 4);
	d.v1 = malloc((d.cols + 1) * 4);
	d.v2 = malloc((d.cols + 1) * 4);
	ASSERT(cpu && got && d.x && d.v1 && d.v2);
	fill(d.x, n, rng, -16.0f, 16.0f);
	fill(d.v1, d.cols, rng, o == OP_LAYERNORM ? 0.5f : -4.0f, 2.0f);
	fill(d.v2, d.cols, rng, -1.0f, 1.0f);
	in[0] = test_make_f32(e, d.x, 2, shape);
	in[1] = test_make_f32(e, d.v1, 1, vshape);
	in[2] = test_make_f32(e, d.v2, 1, vshape);
	ASSERT_OK(gfn_device_count(e, &ndev));
	run_on(e, o, 0, in, &d, cpu); /* device 0 is the CPU */
	for (size_t dev = 0; dev < ndev; dev++) {
		ASSERT_OK(gfn_device_get_info(e, dev, &info));
		run_on(e, o, dev, in, &d, got);
		check(o, info.name, &d, got, cpu);
	}
	for (int k = 0; k < 3; k++)
		test_drop(e, in[k]);
	free(d.x);
	free(d.v1);
	free(d.v2);
	free(cpu);
	free(got);
}

int main(void)
{
	gfn_engine *e;
	gfn_config cfg;
	gfn_device_info info;
	uint64_t rng = 777;
	size_t ndev;

	gfn_config_init(&cfg); /* every backend present */
	cfg.kcache_dir = "";
	e = test_engine_with(&cfg);
	ASSERT_OK(gfn_ml_ops_register(e));
	ASSERT_FAILS(gfn_ml_ops_register(e), GFN_EEXIST);
	ASSERT_OK(gfn_device_count(e, &ndev));
	ASSERT_OK(gfn_device_get_info(e, 0, &info));
	ASSERT_EQ(info.backend, GFN_BACKEND_CPU);
	for (size_t d = 0; d < ndev; d++) {
		ASSERT_OK(gfn_device_get_info(e, d, &info));
		printf("# device %zu: %s\n", d, info.name);
	}
	for (int o = 0; o < OP_COUNT; o++) {
		for (size_t s = 0; s < NSHAPES; s++)
			conform_one(e, (op)o, shapes[s], &rng);
		printf("ok - %s on %zu devices\n", names[o], ndev);
	}
	gfn_engine_destroy(e);
	return 0;
}
