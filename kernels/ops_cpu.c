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
#include <stdint.h>
#include <string.h>

/* sqrt(2 / pi) and the cubic coefficient of the tanh form of GELU. */
#define GELU_K 0.7978845608028654
#define GELU_C 0.044715

/*
 * x[i] = e^x[i] in float, in loops that vectorise (libm's expf is a call
 * per element): x = k ln2 + r with |r| <= ln2 / 2, e^r by its Taylor
 * polynomial to r^7 (relative error below 2e-7 there), 2^k built in the
 * exponent bits. x is first clamped to [-87, 88.3], where the result is a
 * normal float, and results below e^-69 are 0: never a denormal.
 *
 * The clamp is its own loop on purpose: fused, the compiler threads the
 * clamped constant through the rest of the arithmetic, evaluates that arm
 * for every lane of a vector, and the dead arm's denormals (each a
 * microcode assist) made GELU eight times slower.
 */
static void exp_inplace(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		float v = x[i] < -87.0f ? -87.0f : x[i];

		x[i] = v > 88.3f ? 88.3f : v;
	}
	for (size_t i = 0; i < n; i++) {
		union {
			float f;
			int32_t i;
		} scale;
		/* Round to nearest by adding and taking away 1.5 * 2^23:
		   no conversion, no branch. */
		float k = (x[i] * 1.44269504f + 12582912.0f) - 12582912.0f;
		float r = x[i] - k * 0.693145751953125f; /* ln2 in two */
		float p = 1.0f / 5040.0f;                /* parts */

		r = r - k * 1.428606765330187e-06f;
		p = p * r + 1.0f / 720.0f;
		p = p * r + 1.0f / 120.0f;
		p = p * r + 1.0f / 24.0f;
		p = p * r + 1.0f / 6.0f;
		p = p * r + 0.5f;
		p = p * r + 1.0f;
		p = p * r + 1.0f;
		scale.i = ((int32_t)k + 127) << 23;
		/* Below e^-69 (1e-30): 0, so that whatever scales the result
		   next (softmax divides by a sum up to its row length)
		   cannot make a denormal of it. */
		x[i] = x[i] < -69.0f ? 0.0f : p * scale.f;
	}
}

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

void gfn__op_bias_add(const float *x, const float *bias, float *out,
                      size_t outer, size_t c, size_t inner)
{
	if (inner == 1) { /* a bias per column: one contiguous loop a row */
		for (size_t o = 0; o < outer; o++)
			for (size_t j = 0; j < c; j++)
				out[o * c + j] = x[o * c + j] + bias[j];
		return;
	}
	for (size_t o = 0; o < outer; o++)
		for (size_t j = 0; j < c; j++) {
			size_t at = (o * c + j) * inner;

			for (size_t i = 0; i < inner; i++)
				out[at + i] = x[at + i] + bias[j];
		}
}

void gfn__op_bias_relu(const float *x, const float *bias, float *out,
                       size_t outer, size_t c, size_t inner)
{
	if (inner == 1) { /* a bias per column: one contiguous loop a row */
		for (size_t o = 0; o < outer; o++)
			for (size_t j = 0; j < c; j++) {
				float v = x[o * c + j] + bias[j];

				out[o * c + j] = v > 0.0f ? v : 0.0f;
			}
		return;
	}
	for (size_t o = 0; o < outer; o++)
		for (size_t j = 0; j < c; j++) {
			size_t at = (o * c + j) * inner;

			for (size_t i = 0; i < inner; i++) {
				float v = x[at + i] + bias[j];

				out[at + i] = v > 0.0f ? v : 0.0f;
			}
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
	float t[256]; /* by chunks: in place (out == x) stays allowed */

	/* 0.5 * (1 + tanh(u)) = 1 / (1 + e^-2u): t holds -2u, then e^-2u
	   (within a few ulp of the double form). u = k v (1 + c v^2), not
	   k (v + c v^3): v^3 of a small v is a denormal. Large |u|
	   saturates: the quotient is v or ~0. */
	for (size_t at = 0; at < n; at += 256) {
		size_t m = n - at < 256 ? n - at : 256;
		const float *v = x + at;

		for (size_t i = 0; i < m; i++)
			t[i] = -2.0f * (float)GELU_K * v[i] *
			       (1.0f + (float)GELU_C * v[i] * v[i]);
		exp_inplace(t, m);
		for (size_t i = 0; i < m; i++)
			out[at + i] = v[i] / (1.0f + t[i]);
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
	/* Each row's max subtracted first, then one exp pass over the whole
	   batch (it vectorises), then each row scaled by its sum. */
	for (size_t r = 0; r < rows; r++) {
		const float *p = x + r * cols;
		float *q = out + r * cols, mx = -INFINITY;

		for (size_t j = 0; j < cols; j++)
			mx = p[j] > mx ? p[j] : mx;
		for (size_t j = 0; j < cols; j++)
			q[j] = p[j] - mx;
	}
	exp_inplace(out, rows * cols);
	for (size_t r = 0; r < rows; r++) {
		float *q = out + r * cols;
		double sum = 0.0;
		float inv;

		for (size_t j = 0; j < cols; j++)
			sum += q[j];
		inv = (float)(1.0 / sum);
		for (size_t j = 0; j < cols; j++)
			q[j] *= inv;
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

size_t gfn__op_conv2d_scratch(const gfn_conv_geom *g, size_t oc)
{
	/* im2col columns, GEMM result, the image transposed (batch
	   innermost; see im2col_inner) */
	return (g->c * g->kh * g->kw + oc) * g->oh * g->ow + g->c * g->h * g->w;
}

/* The first ox whose input column ox * stride + kx - pad is >= lo. */
static size_t first_ox(const gfn_conv_geom *g, size_t kx, size_t lo)
{
	size_t need = lo + g->pad; /* ox * stride + kx >= need */

	if (kx >= need)
		return 0;
	return (need - kx + g->stride - 1) / g->stride;
}

/* The output columns [*lo, *hi) whose input column ox * stride + kx -
   pad falls inside the image; the rest read the padding. */
static void span(const gfn_conv_geom *g, size_t kx, size_t *lo, size_t *hi)
{
	*lo = first_ox(g, kx, 0);
	*hi = first_ox(g, kx, g->w); /* first ox past the right edge */
	*lo = *lo < g->ow ? *lo : g->ow;
	*hi = *hi < g->ow ? *hi : g->ow;
	*hi = *hi > *lo ? *hi : *lo;
}

/*
 * One row of col for one image: input row iy of plane p sampled at
 * columns ox * stride + kx - pad for ox in [lo, hi), 0 elsewhere. Loops,
 * not memset: the spans are a few floats, shorter than a call costs.
 */
static void im2col_row(const float *p, const gfn_conv_geom *g, long iy,
                       size_t kx, size_t lo, size_t hi, float *dst)
{
	const float *src;

	if (iy < 0 || iy >= (long)g->h || hi == lo) {
		for (size_t ox = 0; ox < g->ow; ox++)
			dst[ox] = 0.0f;
		return;
	}
	for (size_t ox = 0; ox < lo; ox++)
		dst[ox] = 0.0f;
	for (size_t ox = hi; ox < g->ow; ox++)
		dst[ox] = 0.0f;
	/* Column lo * stride + kx - pad: inside the row, as lo < hi. */
	src = p + (size_t)iy * g->w + lo * g->stride + kx - g->pad;
	if (g->stride == 1) /* contiguous: vectorised */
		for (size_t ox = lo; ox < hi; ox++)
			dst[ox] = src[ox - lo];
	else
		for (size_t ox = lo; ox < hi; ox++)
			dst[ox] = src[(ox - lo) * g->stride];
}

/*
 * col[(c, ky, kx), (i, oy, ox)] for the n images of x: row r of col holds
 * every image's samples for one (c, ky, kx), image i at column i * oh*ow.
 * The in-image column span depends on kx only: worked out once per row
 * of col, not per image or output row (it costs two divisions).
 */
static void im2col(const float *x, const gfn_conv_geom *g, size_t n, float *col)
{
	size_t p = g->oh * g->ow, plane = g->h * g->w, lo, hi;

	for (size_t c = 0; c < g->c; c++)
		for (size_t ky = 0; ky < g->kh; ky++)
			for (size_t kx = 0; kx < g->kw; kx++) {
				float *row =
				        col +
				        ((c * g->kh + ky) * g->kw + kx) * n * p;

				span(g, kx, &lo, &hi);
				for (size_t i = 0; i < n; i++)
					for (size_t oy = 0; oy < g->oh; oy++)
						im2col_row(
						        x + (i * g->c + c) *
						                        plane,
						        g,
						        (long)(oy * g->stride +
						               ky) -
						                (long)g->pad,
						        kx, lo, hi,
						        row + i * p +
						                oy * g->ow);
			}
}

/* Batches from this size on are im2col'ed with the batch innermost. */
#define CONV_BATCH_INNER 8

/*
 * col[(c, ky, kx), (oy, ox, i)] with the image index innermost, from xt =
 * x transposed to [c, h, w, n]: every element of the im2col matrix is
 * then one contiguous run of n floats (a copy, or zeros in the padding),
 * however small the images. Row-wise im2col of small images spends its
 * time on loop overhead per output row of a few floats.
 */
static void im2col_inner(const float *x, const gfn_conv_geom *g, size_t n,
                         float *xt, float *col)
{
	size_t plane = g->h * g->w, p = g->oh * g->ow;

	for (size_t i = 0; i < n; i++) /* [n, c*h*w] -> [c*h*w, n] */
		for (size_t e = 0; e < g->c * plane; e++)
			xt[e * n + i] = x[i * g->c * plane + e];
	for (size_t r = 0; r < g->c * g->kh * g->kw; r++) {
		size_t c = r / (g->kh * g->kw), ky = r / g->kw % g->kh,
		       kx = r % g->kw;

		for (size_t q = 0; q < p; q++) {
			size_t y = q / g->ow * g->stride + ky,
			       xx = q % g->ow * g->stride + kx;
			float *dst = col + (r * p + q) * n;
			const float *src;

			if (y < g->pad || y - g->pad >= g->h || xx < g->pad ||
			    xx - g->pad >= g->w) {
				memset(dst, 0, n * sizeof *dst);
				continue;
			}
			src = xt +
			      ((c * g->h + y - g->pad) * g->w + xx - g->pad) *
			              n;
			memcpy(dst, src, n * sizeof *dst);
		}
	}
}

void gfn__op_conv2d(const float *x, const float *w, const float *b, float *out,
                    size_t n, size_t oc, const gfn_conv_geom *g, float *scratch)
{
	size_t k = g->c * g->kh * g->kw, p = g->oh * g->ow, np = n * p;
	float *col = scratch, *t = scratch + k * np, *xt = t + oc * np;
	int inner = n >= CONV_BATCH_INNER;

	/* One GEMM for the batch, not one per image: small GEMMs cost
	   their call and packing more than their arithmetic. */
	if (inner)
		im2col_inner(x, g, n, xt, col);
	else
		im2col(x, g, n, col);
	gfn__op_matmul(w, col, t, oc, np, k, 0); /* t[oc, n*p] */
	for (size_t i = 0; i < n; i++)
		for (size_t o = 0; o < oc; o++) {
			float *dst = out + (i * oc + o) * p,
			      bias = b ? b[o] : 0;

			if (inner) /* t[o, (q, i)] */
				for (size_t q = 0; q < p; q++)
					dst[q] = t[(o * p + q) * n + i] + bias;
			else /* t[o, (i, q)] */
				for (size_t q = 0; q < p; q++)
					dst[q] = t[o * np + i * p + q] + bias;
		}
}

/* The window rows [*y0, *y1) (or columns) of output position o that are
   inside an extent of len: the window clipped to the image. */
static void clip(size_t o, size_t k, const gfn_conv_geom *g, size_t len,
                 size_t *a, size_t *b)
{
	size_t start = o * g->stride, end = start + k; /* padded coords */

	*a = start > g->pad ? start - g->pad : 0;
	*b = end > g->pad ? end - g->pad : 0;
	*b = *b < len ? *b : len;
	*a = *a < *b ? *a : *b;
}

/* One output of max (is_max) or average pooling over plane p: padding is
   absent for max, zeros for the average (its divisor is kh * kw). The
   window is clipped once, so the loops over it have no checks; float is
   exact for max and loses nothing measurable over a few values. */
static float pool_at(const float *p, const gfn_conv_geom *g, size_t oy,
                     size_t ox, int is_max)
{
	size_t y0, y1, x0, x1;
	float acc = is_max ? -INFINITY : 0.0f;

	clip(oy, g->kh, g, g->h, &y0, &y1);
	clip(ox, g->kw, g, g->w, &x0, &x1);
	for (size_t y = y0; y < y1; y++)
		for (size_t x = x0; x < x1; x++) {
			float v = p[y * g->w + x];

			acc = is_max ? (v > acc ? v : acc) : acc + v;
		}
	return is_max ? acc : acc / (float)(g->kh * g->kw);
}

/* Without padding every window is inside the plane: no clipping. Each
   output row is built one window offset (ky, kx) at a time across all
   its columns, max and average in loops of their own: they vectorise. */
static void pool_plane_inside(const float *p, float *o, const gfn_conv_geom *g,
                              int is_max)
{
	float inv = 1.0f / (float)(g->kh * g->kw);
	size_t s = g->stride;

	for (size_t oy = 0; oy < g->oh; oy++) {
		float *dst = o + oy * g->ow;

		for (size_t ox = 0; ox < g->ow; ox++)
			dst[ox] = is_max ? -INFINITY : 0.0f;
		for (size_t ky = 0; ky < g->kh; ky++)
			for (size_t kx = 0; kx < g->kw; kx++) {
				const float *src =
				        p + (oy * s + ky) * g->w + kx;

				if (is_max)
					for (size_t ox = 0; ox < g->ow; ox++)
						dst[ox] = src[ox * s] > dst[ox]
						                  ? src[ox * s]
						                  : dst[ox];
				else
					for (size_t ox = 0; ox < g->ow; ox++)
						dst[ox] += src[ox * s];
			}
		if (!is_max)
			for (size_t ox = 0; ox < g->ow; ox++)
				dst[ox] *= inv;
	}
}

/* The common 2x2 window without padding, straight-line per output: the
   general loops are a few floats long and cost more than the work. */
static void pool_plane_2x2(const float *p, float *o, const gfn_conv_geom *g,
                           int is_max)
{
	for (size_t oy = 0; oy < g->oh; oy++)
		for (size_t ox = 0; ox < g->ow; ox++) {
			const float *q =
			        p + oy * g->stride * g->w + ox * g->stride;
			float a = q[0], b = q[1], c = q[g->w], d = q[g->w + 1];

			if (is_max) {
				a = a > b ? a : b;
				c = c > d ? c : d;
				o[oy * g->ow + ox] = a > c ? a : c;
			} else {
				o[oy * g->ow + ox] = (a + b + c + d) * 0.25f;
			}
		}
}

static void pool(const float *x, float *out, size_t n, const gfn_conv_geom *g,
                 int is_max)
{
	for (size_t plane = 0; plane < n * g->c; plane++) {
		const float *p = x + plane * g->h * g->w;
		float *o = out + plane * g->oh * g->ow;

		if (!g->pad && g->kh == 2 && g->kw == 2) {
			pool_plane_2x2(p, o, g, is_max);
			continue;
		}
		if (!g->pad) {
			pool_plane_inside(p, o, g, is_max);
			continue;
		}
		for (size_t oy = 0; oy < g->oh; oy++)
			for (size_t ox = 0; ox < g->ow; ox++)
				o[oy * g->ow + ox] =
				        pool_at(p, g, oy, ox, is_max);
	}
}

void gfn__op_maxpool2d(const float *x, float *out, size_t n,
                       const gfn_conv_geom *g)
{
	pool(x, out, n, g, 1);
}

void gfn__op_avgpool2d(const float *x, float *out, size_t n,
                       const gfn_conv_geom *g)
{
	pool(x, out, n, g, 0);
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
