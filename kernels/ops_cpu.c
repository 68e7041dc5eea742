/*
 * ops_cpu.c - the CPU versions of the built-in ML ops (ops.h).
 *
 * GEMM is OpenBLAS's cblas_sgemm: a tuned BLAS, not a loop of ours. The
 * other ops are memory-bound loops; where they sum, they sum in double so
 * that their result is the accurate one other backends are held to.
 */
#include "kernels/ops.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

/* sqrt(2 / pi) and the cubic coefficient of the tanh form of GELU. */
#define GELU_K 0.7978845608028654
#define GELU_C 0.044715

void gfn__op_matmul(const float *a, const float *b, float *c, size_t m,
                    size_t n, size_t k, int trans_b)
{
	if (m == 0 || n == 0)
		return;
	if (k == 0) { /* BLAS would leave c alone: the empty sum is 0 */
		memset(c, 0, m * n * sizeof *c);
		return;
	}
	cblas_sgemm(CblasRowMajor, CblasNoTrans,
	            trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
	            1.0f, a, (int)k, b, trans_b ? (int)k : (int)n, 0.0f, c,
	            (int)n);
}

void gfn__op_bias_add(float *x, const float *bias, size_t outer, size_t c,
                      size_t inner)
{
	if (inner == 1) { /* a bias per column: one contiguous loop a row */
		for (size_t o = 0; o < outer; o++)
			for (size_t j = 0; j < c; j++)
				x[o * c + j] += bias[j];
		return;
	}
	for (size_t o = 0; o < outer; o++)
		for (size_t j = 0; j < c; j++) {
			float *p = x + (o * c + j) * inner;

			for (size_t i = 0; i < inner; i++)
				p[i] += bias[j];
		}
}

void gfn__op_relu(const float *x, float *out, size_t n)
{
	/* A select, not a branch: on real activations a branch is taken
	   at random and mispredicted half the time. */
	for (size_t i = 0; i < n; i++) {
		float v = x[i];

		out[i] = v > 0.0f ? v : 0.0f;
	}
}

void gfn__op_gelu(const float *x, float *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		double v = x[i];
		double u = GELU_K * (v + GELU_C * v * v * v);
		/* 1 + tanh(u) = 2 - 2 / (1 + e^2u), with expf: a few times
		   cheaper than tanh in double, and the error it adds (about
		   1e-7 of 1 + tanh) is scaled by v / 2. Large |u| saturates:
		   e^2u is inf or 0 and the sum 2 or 0. */
		double e = expf((float)(2.0 * u));

		out[i] = (float)(0.5 * v * (2.0 - 2.0 / (1.0 + e)));
	}
}

void gfn__op_tanh(const float *x, float *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (float)tanh((double)x[i]);
}

void gfn__op_sigmoid(const float *x, float *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
}

void gfn__op_softmax(const float *x, float *out, size_t rows, size_t cols)
{
	for (size_t r = 0; r < rows; r++) {
		const float *p = x + r * cols;
		float *q = out + r * cols;
		double mx = -INFINITY, sum = 0.0;

		for (size_t j = 0; j < cols; j++)
			mx = p[j] > mx ? p[j] : mx;
		/* One exp per element (kept in q), in float: expf is within
		   an ulp, and the sum and the division stay in double. */
		for (size_t j = 0; j < cols; j++) {
			q[j] = expf((float)((double)p[j] - mx));
			sum += q[j];
		}
		for (size_t j = 0; j < cols; j++)
			q[j] = (float)(q[j] / sum);
	}
}

void gfn__op_layernorm(const float *x, const float *gamma, const float *beta,
                       float eps, float *out, size_t rows, size_t cols)
{
	for (size_t r = 0; r < rows; r++) {
		const float *p = x + r * cols;
		float *q = out + r * cols;
		double mean = 0.0, var = 0.0, inv;

		for (size_t j = 0; j < cols; j++)
			mean += p[j];
		mean /= (double)(cols ? cols : 1);
		for (size_t j = 0; j < cols; j++)
			var += (p[j] - mean) * (p[j] - mean);
		var /= (double)(cols ? cols : 1);
		inv = 1.0 / sqrt(var + eps);
		for (size_t j = 0; j < cols; j++)
			q[j] = (float)((p[j] - mean) * inv * gamma[j] +
			               beta[j]);
	}
}

/* ---- window ops ---------------------------------------------------------- */

int gfn__conv_geom_finish(gfn_conv_geom *g)
{
	size_t ph = g->h + 2 * g->pad, pw = g->w + 2 * g->pad;

	if (g->stride == 0 || g->kh == 0 || g->kw == 0 || g->kh > ph ||
	    g->kw > pw)
		return 0;
	g->oh = (ph - g->kh) / g->stride + 1;
	g->ow = (pw - g->kw) / g->stride + 1;
	return 1;
}

size_t gfn__op_conv2d_scratch(const gfn_conv_geom *g)
{
	return g->c * g->kh * g->kw * g->oh * g->ow;
}

/* The first ox whose input column ox * stride + kx - pad is >= lo. */
static size_t first_ox(const gfn_conv_geom *g, size_t kx, size_t lo)
{
	size_t need = lo + g->pad; /* ox * stride + kx >= need */

	if (kx >= need)
		return 0;
	return (need - kx + g->stride - 1) / g->stride;
}

/*
 * One row of col: input row iy of plane p sampled at columns
 * ox * stride + kx - pad, 0 in the padding. The columns inside the image
 * are worked out once per row, so the loop over them has no bounds
 * checks (and is a memcpy at stride 1).
 */
static void im2col_row(const float *p, const gfn_conv_geom *g, long iy,
                       size_t kx, float *dst)
{
	size_t lo, hi;
	const float *src;

	/* Loops, not memset: the spans are a few floats, shorter than a
	   call to memset costs. */
	if (iy < 0 || iy >= (long)g->h) {
		for (size_t ox = 0; ox < g->ow; ox++)
			dst[ox] = 0.0f;
		return;
	}
	lo = first_ox(g, kx, 0);
	hi = first_ox(g, kx, g->w); /* first ox past the right edge */
	lo = lo < g->ow ? lo : g->ow;
	hi = hi < g->ow ? hi : g->ow;
	hi = hi > lo ? hi : lo;
	for (size_t ox = 0; ox < lo; ox++)
		dst[ox] = 0.0f;
	for (size_t ox = hi; ox < g->ow; ox++)
		dst[ox] = 0.0f;
	if (hi == lo)
		return;
	/* Column lo * stride + kx - pad: inside the row, as lo < hi. */
	src = p + (size_t)iy * g->w + lo * g->stride + kx - g->pad;
	for (size_t ox = lo; ox < hi; ox++)
		dst[ox] = src[(ox - lo) * g->stride];
}

/* col[(c, ky, kx), (oy, ox)] for one image. */
static void im2col(const float *img, const gfn_conv_geom *g, float *col)
{
	size_t cols = g->oh * g->ow;

	for (size_t c = 0; c < g->c; c++)
		for (size_t ky = 0; ky < g->kh; ky++)
			for (size_t kx = 0; kx < g->kw; kx++) {
				const float *p = img + c * g->h * g->w;
				float *row = col + ((c * g->kh + ky) * g->kw +
				                    kx) * cols;

				for (size_t oy = 0; oy < g->oh; oy++)
					im2col_row(p, g,
					           (long)(oy * g->stride + ky) -
					                   (long)g->pad,
					           kx, row + oy * g->ow);
			}
}

void gfn__op_conv2d(const float *x, const float *w, const float *b, float *out,
                    size_t n, size_t oc, const gfn_conv_geom *g, float *scratch)
{
	size_t k = g->c * g->kh * g->kw, cols = g->oh * g->ow;

	for (size_t i = 0; i < n; i++) {
		float *o = out + i * oc * cols;

		im2col(x + i * g->c * g->h * g->w, g, scratch);
		/* o[oc, cols] = w[oc, k] * col[k, cols] */
		gfn__op_matmul(w, scratch, o, oc, cols, k, 0);
		if (b)
			gfn__op_bias_add(o, b, 1, oc, cols);
	}
}

typedef double (*pool_fn)(const float *p, const gfn_conv_geom *g, long y0,
                          long x0);

static double pool_max(const float *p, const gfn_conv_geom *g, long y0, long x0)
{
	double m = -INFINITY;

	for (long y = y0; y < y0 + (long)g->kh; y++)
		for (long x = x0; x < x0 + (long)g->kw; x++)
			if (y >= 0 && x >= 0 && y < (long)g->h &&
			    x < (long)g->w && p[y * (long)g->w + x] > m)
				m = p[y * (long)g->w + x];
	return m;
}

/* Input pixel (y, x) of channel plane p, 0 in the padding. */
static float pixel(const float *p, const gfn_conv_geom *g, long y, long x)
{
	if (y < 0 || x < 0 || y >= (long)g->h || x >= (long)g->w)
		return 0.0f;
	return p[(size_t)y * g->w + (size_t)x];
}

static double pool_avg(const float *p, const gfn_conv_geom *g, long y0, long x0)
{
	double s = 0.0;

	for (long y = y0; y < y0 + (long)g->kh; y++)
		for (long x = x0; x < x0 + (long)g->kw; x++)
			s += pixel(p, g, y, x);
	return s / (double)(g->kh * g->kw);
}

static void pool(const float *x, float *out, size_t n, const gfn_conv_geom *g,
                 pool_fn f)
{
	for (size_t plane = 0; plane < n * g->c; plane++) {
		const float *p = x + plane * g->h * g->w;
		float *o = out + plane * g->oh * g->ow;

		for (size_t oy = 0; oy < g->oh; oy++)
			for (size_t ox = 0; ox < g->ow; ox++)
				o[oy * g->ow + ox] = (float)f(
				        p, g,
				        (long)(oy * g->stride) - (long)g->pad,
				        (long)(ox * g->stride) - (long)g->pad);
	}
}

void gfn__op_maxpool2d(const float *x, float *out, size_t n,
                       const gfn_conv_geom *g)
{
	pool(x, out, n, g, pool_max);
}

void gfn__op_avgpool2d(const float *x, float *out, size_t n,
                       const gfn_conv_geom *g)
{
	pool(x, out, n, g, pool_avg);
}

int gfn__op_embedding(const int32_t *ids, const float *table, float *out,
                      size_t n, size_t rows, size_t dim)
{
	for (size_t i = 0; i < n; i++) {
		if (ids[i] < 0 || (size_t)ids[i] >= rows)
			return -1;
		memcpy(out + i * dim, table + (size_t)ids[i] * dim,
		       dim * sizeof *out);
	}
	return 0;
}

void gfn__op_argmax(const float *x, int32_t *out, size_t rows, size_t cols)
{
	for (size_t r = 0; r < rows; r++) {
		const float *p = x + r * cols;
		size_t best = 0;

		for (size_t j = 1; j < cols; j++)
			if (p[j] > p[best])
				best = j;
		out[r] = (int32_t)best;
	}
}
