/*
 * gfn.vadd: c = a + b over f32 vectors of n elements (kernels/cl/vadd.cl
 * for CUDA). Arguments follow gfn.h's convention: inputs, outputs,
 * params, sizes (unsigned long long). The grid is n rounded up to whole
 * blocks: check i < n.
 */
extern "C" __global__ void gfn_vadd(const float *a, const float *b, float *c,
                                    unsigned long long n)
{
	unsigned long long i =
	        (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
		c[i] = a[i] + b[i];
}
