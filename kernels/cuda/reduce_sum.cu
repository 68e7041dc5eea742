/*
 * gfn.sum: out[0] = the sum of the n elements of x (f32); the CUDA form
 * of kernels/cl/reduce_sum.cl.
 *
 * Launched as ONE block of GFN_SUM_WG threads (GFN_WORK_FIXED, global =
 * local = GFN_SUM_WG), so it is right for any n, 0 included, with no
 * second pass and no atomics. Each thread walks x with stride GFN_SUM_WG
 * (neighbouring threads read neighbouring elements: coalesced) and keeps
 * a Kahan-compensated sum, so the per-lane error does not grow with
 * n / GFN_SUM_WG; then a tree reduction in shared memory adds the lanes.
 * Arguments: input x, output out, size n.
 */
#define GFN_SUM_WG 256

extern "C" __global__ void __launch_bounds__(GFN_SUM_WG)
        gfn_sum(const float *x, float *out, unsigned long long n)
{
	__shared__ float part[GFN_SUM_WG];
	unsigned lid = threadIdx.x;
	float sum = 0.0f, comp = 0.0f;

	for (unsigned long long i = lid; i < n; i += GFN_SUM_WG) {
		float y = x[i] - comp;
		float t = sum + y;

		/* nvcc does not reassociate float adds (no fast math),
		   so the compensation survives compilation */
		comp = (t - sum) - y;
		sum = t;
	}
	part[lid] = sum;
	__syncthreads();
	for (unsigned s = GFN_SUM_WG / 2; s > 0; s >>= 1) {
		if (lid < s)
			part[lid] += part[lid + s];
		__syncthreads();
	}
	if (lid == 0)
		out[0] = part[0];
}
