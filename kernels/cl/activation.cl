/*
 * Elementwise activations over f32 vectors of n elements:
 * gfn.relu, gfn.gelu (tanh approximation), gfn.tanh, gfn.sigmoid.
 * Arguments: input x, output out, size n (gfn.h's convention).
 */

/* sqrt(2 / pi), for the tanh approximation of GELU. */
#define GFN_GELU_K 0.7978845608028654f
#define GFN_GELU_C 0.044715f

__kernel void gfn_relu(__global const float *x, __global float *out, ulong n)
{
	size_t i = get_global_id(0);

	if (i < n)
		out[i] = fmax(x[i], 0.0f);
}

/* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as in GPT-2 and BERT. */
__kernel void gfn_gelu(__global const float *x, __global float *out, ulong n)
{
	size_t i = get_global_id(0);

	if (i < n) {
		float v = x[i];
		float inner = GFN_GELU_K * (v + GFN_GELU_C * v * v * v);

		out[i] = 0.5f * v * (1.0f + tanh(inner));
	}
}

__kernel void gfn_tanh(__global const float *x, __global float *out, ulong n)
{
	size_t i = get_global_id(0);

	if (i < n)
		out[i] = tanh(x[i]);
}

/* exp(-x) overflows to inf for x < -88, and 1 / inf is the right 0. */
__kernel void gfn_sigmoid(__global const float *x, __global float *out,
                          ulong n)
{
	size_t i = get_global_id(0);

	if (i < n)
		out[i] = 1.0f / (1.0f + exp(-x[i]));
}
