/*
 * gfn.saxpy: out = a * x + y over f32 vectors of n elements, a an f32
 * parameter. Arguments: inputs x, y; output out; param a; size n.
 * The compiler may contract a * x + y into one fma (OpenCL's default
 * FP_CONTRACT), so results may differ from the CPU's by one rounding.
 */
__kernel void gfn_saxpy(__global const float *x, __global const float *y,
                        __global float *out, float a, ulong n)
{
	size_t i = get_global_id(0);

	if (i < n)
		out[i] = a * x[i] + y[i];
}
