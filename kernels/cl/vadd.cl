/*
 * gfn.vadd: c = a + b over f32 vectors of n elements.
 * Arguments follow gfn.h's convention: inputs, outputs, params, sizes.
 * The global size is n rounded up to the work-group size: check i < n.
 */
__kernel void gfn_vadd(__global const float *a, __global const float *b,
                       __global float *c, ulong n)
{
	size_t i = get_global_id(0);

	if (i < n)
		c[i] = a[i] + b[i];
}
