/*
 * Elementwise activations over f32 vectors of n elements:
 * gfn.relu, gfn.gelu (tanh approximation), gfn.tanh, gfn.sigmoid
 * (kernels/cl/activation.cl for CUDA). Arguments: input x, output out,
 * size n. Built without --use_fast_math: tanhf and expf are within 2 ulp.
 */

/* sqrt(2 / pi), for the tanh approximation of GELU. */
#define GFN_GELU_K 0.7978845608028654f
#define GFN_GELU_C 0.044715f

__device__ static unsigned long long gfn_index(void)
{
	return (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
}

/* fmaxf returns the other operand for a NaN: relu(NaN) = 0, as the CPU
   reference and OpenCL's fmax give. */
extern "C" __global__ void gfn_relu(const float *x, float *out,
                                    unsigned long long n)
{
	unsigned long long i = gfn_index();

	if (i < n)
		out[i] = fmaxf(x[i], 0.0f);
}

/* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as in GPT-2 and BERT. */
extern "C" __global__ void gfn_gelu(const float *x, float *out,
                                    unsigned long long n)
{
	unsigned long long i = gfn_index();

	if (i < n) {
		float v = x[i];
		float inner = GFN_GELU_K * (v + GFN_GELU_C * v * v * v);

		out[i] = 0.5f * v * (1.0f + tanhf(inner));
	}
}

extern "C" __global__ void gfn_tanh(const float *x, float *out,
                                    unsigned long long n)
{
	unsigned long long i = gfn_index();

	if (i < n)
		out[i] = tanhf(x[i]);
}

/* expf(-x) overflows to inf for x < -88, and 1 / inf is the right 0. */
extern "C" __global__ void gfn_sigmoid(const float *x, float *out,
                                       unsigned long long n)
{
	unsigned long long i = gfn_index();

	if (i < n)
		out[i] = 1.0f / (1.0f + expf(-x[i]));
}
