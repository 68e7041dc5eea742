/*
 * dense_layer.c - the demo model's kernel and its reference.
 */
#include "dense_layer.h"

#include <math.h>

uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

void fill_uniform(float *v, size_t n, float scale, uint64_t *state)
{
	size_t i;

	for (i = 0; i < n; i++) {
		/* Top 24 bits: exactly representable in a float's mantissa. */
		float u = (float)(splitmix64(state) >> 40) / 16777216.0f;

		v[i] = (2.0f * u - 1.0f) * scale;
	}
}

static int is_f32_2d(const gfn_tensor *t, int64_t rows, int64_t cols)
{
	return t->dtype == GFN_F32 && t->ndim == 2 && t->shape[0] == rows &&
	       t->shape[1] == cols;
}

/* The engine checked the signature already; this guards the pointers we
 * are about to index, in case it ever did not. */
static int args_ok(const gfn_kernel_args *a)
{
	const gfn_tensor *x, *w, *b;

	if (a->n_inputs != 3 || a->n_outputs != 1)
		return 0;
	x = &a->inputs[0];
	w = &a->inputs[1];
	b = &a->inputs[2];
	return x->ndim == 2 && is_f32_2d(w, x->shape[1], w->shape[1]) &&
	       b->dtype == GFN_F32 && b->ndim == 1 &&
	       b->shape[0] == w->shape[1] &&
	       is_f32_2d(x, x->shape[0], x->shape[1]) &&
	       is_f32_2d(&a->outputs[0], x->shape[0], w->shape[1]);
}

/* ReLU then softmax of one row of n logits, in place. */
static void relu_softmax_f32(float *z, int64_t n)
{
	float max = 0.0f; /* ReLU output is >= 0, so 0 is a safe start */
	float sum = 0.0f;
	int64_t j;

	for (j = 0; j < n; j++) {
		if (z[j] < 0.0f)
			z[j] = 0.0f;
		if (z[j] > max)
			max = z[j];
	}
	/* Subtracting the max keeps expf from overflowing. */
	for (j = 0; j < n; j++) {
		z[j] = expf(z[j] - max);
		sum += z[j];
	}
	for (j = 0; j < n; j++)
		z[j] /= sum;
}

int dense_layer_kernel(const gfn_kernel_args *args, void *user)
{
	const float *x, *w, *b;
	float *y;
	int64_t rows, k, n, r, i, j;

	(void)user;
	if (!args_ok(args))
		return 1;
	x = args->inputs[0].data;
	w = args->inputs[1].data;
	b = args->inputs[2].data;
	y = args->outputs[0].data;
	rows = args->inputs[0].shape[0];
	k = args->inputs[0].shape[1];
	n = args->inputs[1].shape[1];
	for (r = 0; r < rows; r++) {
		float *yr = y + r * n;

		for (j = 0; j < n; j++)
			yr[j] = b[j];
		/* i outer, j inner: W is read row by row, in memory order. */
		for (i = 0; i < k; i++)
			for (j = 0; j < n; j++)
				yr[j] += x[r * k + i] * w[i * n + j];
		relu_softmax_f32(yr, n);
	}
	return 0;
}

/* y = exp(z - max) / sum, in double, rounded to float at the end. */
static void softmax_f64(const double *z, float *y, int64_t n, double max)
{
	double sum = 0.0;
	int64_t j;

	for (j = 0; j < n; j++)
		sum += exp(z[j] - max);
	for (j = 0; j < n; j++)
		y[j] = (float)(exp(z[j] - max) / sum);
}

int dense_layer_reference(const float *x, const float *w, const float *b,
                          float *y, int64_t rows, int64_t k, int64_t n)
{
	double z[DENSE_REF_MAX_N];
	int64_t r, i, j;

	if (n > DENSE_REF_MAX_N)
		return -1;
	for (r = 0; r < rows; r++) {
		double max = 0.0; /* ReLU output is >= 0 */

		for (j = 0; j < n; j++) {
			double acc = b[j];

			/* j outer, i inner: the textbook dot product. */
			for (i = 0; i < k; i++)
				acc += (double)x[r * k + i] * w[i * n + j];
			z[j] = acc > 0.0 ? acc : 0.0;
			if (z[j] > max)
				max = z[j];
		}
		softmax_f64(z, y + r * n, n, max);
	}
	return 0;
}

double max_abs_diff(const float *a, const float *b, size_t n)
{
	double worst = 0.0;
	size_t i;

	for (i = 0; i < n; i++) {
		double d = fabs((double)a[i] - (double)b[i]);

		/* NaN compares false: count it as the worst possible. */
		if (!(d <= worst))
			worst = isnan(d) ? INFINITY : d;
	}
	return worst;
}
