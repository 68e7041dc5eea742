/*
 * gfn.saxpy: out = a * x + y over f32 vectors of n elements, a an f32
 * parameter (kernels/cl/saxpy.cl for CUDA). Arguments: inputs x, y;
 * output out; param a; size n. nvcc contracts a * x + y into one fma by
 * default (-fmad=true), within the tolerance gfn_builtins.h allows.
 */
extern "C" __global__ void gfn_saxpy(const float *x, const float *y,
                                     float *out, float a,
                                     unsigned long long n)
{
	unsigned long long i =
	        (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
		out[i] = a * x[i] + y[i];
}
