/*
 * gfn.sum: out[0] = the sum of the n elements of x (f32).
 *
 * Launched as ONE work-group: global = local = GFN_SUM_WG (GFN_WORK_FIXED),
 * so it is right for any n, 0 included, with no second pass and no atomics.
 * Each work-item walks x with stride GFN_SUM_WG (neighbouring work-items
 * read neighbouring elements) and keeps a Kahan-compensated sum, so the
 * per-lane error does not grow with n / GFN_SUM_WG; then a tree reduction
 * in local memory adds the lanes. Arguments: input x, output out, size n.
 */
#define GFN_SUM_WG 256

__kernel __attribute__((reqd_work_group_size(GFN_SUM_WG, 1, 1))) void
gfn_sum(__global const float *x, __global float *out, ulong n)
{
	__local float part[GFN_SUM_WG];
	size_t lid = get_local_id(0);
	float sum = 0.0f, comp = 0.0f;

	for (ulong i = lid; i < n; i += GFN_SUM_WG) {
		float y = x[i] - comp;
		float t = sum + y;

		comp = (t - sum) - y;
		sum = t;
	}
	part[lid] = sum;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (size_t s = GFN_SUM_WG / 2; s > 0; s >>= 1) {
		if (lid < s)
			part[lid] += part[lid + s];
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	if (lid == 0)
		out[0] = part[0];
}
