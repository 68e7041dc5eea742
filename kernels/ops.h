/*
 * ops.h - the CPU versions of the built-in ML ops. Internal: not API.
 *
 * Plain functions over row-major f32 arrays: the model runner (model.c)
 * calls them for each node of a graph, and other backends' versions are
 * checked against them. GEMM goes to OpenBLAS; the rest are loops that
 * keep their sums in double, so they are the accurate reference.
 */
#ifndef GFN_KERNELS_OPS_H
#define GFN_KERNELS_OPS_H

#include <stddef.h>
#include <stdint.h>

/* c[m,n] = a[m,k] * b (b is [k,n], or [n,k] when trans_b). */
void gfn__op_matmul(const float *a, const float *b, float *c, size_t m,
                    size_t n, size_t k, int trans_b);

/* out[outer, c, inner] = x + bias[c]: channel c of every row. inner = 1
   for a bias over the last axis, H*W for NCHW channels. In place is
   allowed (out == x). */
void gfn__op_bias_add(const float *x, const float *bias, float *out,
                      size_t outer, size_t c, size_t inner);

/* out = max(x + bias[c], 0): bias_add and relu in one pass (in place is
   allowed). */
void gfn__op_bias_relu(const float *x, const float *bias, float *out,
                       size_t outer, size_t c, size_t inner);

/* Element-wise activations; in place is allowed (out == x). */
void gfn__op_relu(const float *x, float *out, size_t n);
void gfn__op_gelu(const float *x, float *out, size_t n);
void gfn__op_tanh(const float *x, float *out, size_t n);
void gfn__op_sigmoid(const float *x, float *out, size_t n);

/* Softmax over each row of [rows, cols] (max subtracted first). */
void gfn__op_softmax(const float *x, float *out, size_t rows, size_t cols);

/* Layer norm of each row: (x - mean) / sqrt(var + eps) * gamma + beta. */
void gfn__op_layernorm(const float *x, const float *gamma, const float *beta,
                       float eps, float *out, size_t rows, size_t cols);

/* Shape of a 2-D window op (conv or pool) over one image. */
typedef struct gfn_conv_geom {
	size_t c, h, w;     /* input channels, height, width */
	size_t kh, kw;      /* window */
	size_t stride, pad; /* same in both directions */
	size_t oh, ow;      /* output height and width (from the above) */
} gfn_conv_geom;

/* Fill oh and ow; 0 when the window does not fit. */
int gfn__conv_geom_finish(gfn_conv_geom *g);

/* Floats of scratch conv2d needs per image of the batch: its columns of
   the im2col matrix and of the GEMM's result, and its pixels. */
size_t gfn__op_conv2d_scratch(const gfn_conv_geom *g, size_t oc);

/* out[n, oc, oh, ow] = conv of x[n, c, h, w] with w[oc, c, kh, kw] (+ b[oc]
   when b is not NULL): the whole batch im2col'ed into one [c*kh*kw,
   n*oh*ow] matrix in scratch (n * gfn__op_conv2d_scratch floats), one
   GEMM, and the result reordered to [n, oc, oh*ow] with the bias. */
void gfn__op_conv2d(const float *x, const float *w, const float *b, float *out,
                    size_t n, size_t oc, const gfn_conv_geom *g,
                    float *scratch);

/* Max or average pooling of x[n, c, h, w] (kh x kw window, padding counts
   as absent for max and as zeros in the average's divisor). */
void gfn__op_maxpool2d(const float *x, float *out, size_t n,
                       const gfn_conv_geom *g);
void gfn__op_avgpool2d(const float *x, float *out, size_t n,
                       const gfn_conv_geom *g);

/* out[i, :] = table[ids[i], :] for n ids; -1 (nothing written past the
   bad row) when an id is outside 0 .. rows-1, else 0. */
int gfn__op_embedding(const int32_t *ids, const float *table, float *out,
                      size_t n, size_t rows, size_t dim);

/* out[r] = index of the largest element of row r (the first on ties). */
void gfn__op_argmax(const float *x, int32_t *out, size_t rows, size_t cols);

#endif /* GFN_KERNELS_OPS_H */
