/*
 * dense_layer.h - the demo's model: one dense layer, ReLU, then a row-wise
 * softmax, as a gfn CPU kernel and as a plain C reference to check it by.
 *
 *   y[B,N] = softmax(relu(x[B,K] . W[K,N] + b[N]))
 */
#ifndef GFN_EXAMPLE_DENSE_LAYER_H
#define GFN_EXAMPLE_DENSE_LAYER_H

#include <gfn/gfn.h>

#include <stddef.h>
#include <stdint.h>

/* One step of splitmix64: a tiny, well-mixed PRNG, enough for test data. */
uint64_t splitmix64(uint64_t *state);

/* n floats uniform in [-scale, scale) drawn from *state. */
void fill_uniform(float *v, size_t n, float scale, uint64_t *state);

/*
 * The kernel gfn runs (gfn_cpu_kernel_fn). Inputs x, W, b and output y as
 * above, all f32. Works in float, the way a real kernel would. Returns 0,
 * or 1 when the arguments are not the shapes it was registered with.
 */
int dense_layer_kernel(const gfn_kernel_args *args, void *user);

/* Widest output row the reference handles (it keeps one row on the stack). */
#define DENSE_REF_MAX_N 256

/*
 * The reference: the same maths written the plain way, in double, with
 * the other loop order, so it shares no code and few roundings with the
 * kernel. Writes y[rows*n]. Returns 0, or -1 when n > DENSE_REF_MAX_N.
 */
int dense_layer_reference(const float *x, const float *w, const float *b,
                          float *y, int64_t rows, int64_t k, int64_t n);

/* Largest |a[i] - b[i]| over n elements. */
double max_abs_diff(const float *a, const float *b, size_t n);

#endif /* GFN_EXAMPLE_DENSE_LAYER_H */
