/*
 * builtins.c - the built-in functions: signatures, CPU references, OpenCL
 * and CUDA kernels (see gfn_builtins.h for what each computes and how
 * accurately).
 *
 * The CPU versions are the oracle every other backend is compared with, so
 * they are plain loops that compute in double and round once; speed is the
 * devices' job.
 */
#include "kernels/builtins.h"

#include <math.h>
#include <pthread.h>

#include "gfn/gfn_builtins.h"

/* The kernels/cl/ files, embedded by cmake/GfnEmbed.cmake (cl_sources.c). */
extern const char gfn_cl_vadd[];
extern const char gfn_cl_saxpy[];
extern const char gfn_cl_activation[];
extern const char gfn_cl_reduce_sum[];

/* Work-items of gfn.sum's single work-group; GFN_SUM_WG in reduce_sum.cl. */
#define SUM_WG 256

/* sqrt(2 / pi) and the cubic coefficient of the tanh form of GELU. */
#define GELU_K 0.7978845608028654
#define GELU_C 0.044715

/* ---- CPU references ------------------------------------------------------ */

static size_t numel_f32(const gfn_tensor *t)
{
	return t->nbytes / sizeof(float);
}

static int cpu_vadd(const gfn_kernel_args *args, void *user)
{
	const float *a = args->inputs[0].data, *b = args->inputs[1].data;
	float *c = args->outputs[0].data;
	size_t n = numel_f32(&args->outputs[0]);

	(void)user;
	for (size_t i = 0; i < n; i++)
		c[i] = (float)((double)a[i] + (double)b[i]);
	return 0;
}

static int cpu_saxpy(const gfn_kernel_args *args, void *user)
{
	const float *x = args->inputs[0].data, *y = args->inputs[1].data;
	float *out = args->outputs[0].data;
	double a = args->params[0].f32;
	size_t n = numel_f32(&args->outputs[0]);

	(void)user;
	for (size_t i = 0; i < n; i++)
		out[i] = (float)(a * x[i] + y[i]);
	return 0;
}

static float relu1(float x)
{
	return x > 0.0f ? x : 0.0f; /* NaN gives 0, as OpenCL's fmax does */
}

static float gelu1(float x)
{
	double v = x;

	return (float)(0.5 * v *
	               (1.0 + tanh(GELU_K * (v + GELU_C * v * v * v))));
}

static float tanh1(float x)
{
	return (float)tanh((double)x);
}

static float sigmoid1(float x)
{
	return (float)(1.0 / (1.0 + exp(-(double)x)));
}

/* out[i] = f(x[i]) for the one input and output of an activation. */
static int cpu_map(const gfn_kernel_args *args, float (*f)(float))
{
	const float *x = args->inputs[0].data;
	float *out = args->outputs[0].data;
	size_t n = numel_f32(&args->outputs[0]);

	for (size_t i = 0; i < n; i++)
		out[i] = f(x[i]);
	return 0;
}

static int cpu_relu(const gfn_kernel_args *args, void *user)
{
	(void)user;
	return cpu_map(args, relu1);
}

static int cpu_gelu(const gfn_kernel_args *args, void *user)
{
	(void)user;
	return cpu_map(args, gelu1);
}

static int cpu_tanh(const gfn_kernel_args *args, void *user)
{
	(void)user;
	return cpu_map(args, tanh1);
}

static int cpu_sigmoid(const gfn_kernel_args *args, void *user)
{
	(void)user;
	return cpu_map(args, sigmoid1);
}

static int cpu_sum(const gfn_kernel_args *args, void *user)
{
	const float *x = args->inputs[0].data;
	size_t n = numel_f32(&args->inputs[0]);
	double s = 0.0;

	(void)user;
	for (size_t i = 0; i < n; i++)
		s += x[i];
	((float *)args->outputs[0].data)[0] = (float)s;
	return 0;
}

/* ---- signatures ---------------------------------------------------------- */

/* Every vector of a call has the same length: size variable 0. */
static const gfn_tensor_spec in_ab[] = {{"a", GFN_F32, 1, {GFN_DIM_VAR(0)}},
                                        {"b", GFN_F32, 1, {GFN_DIM_VAR(0)}}};
static const gfn_tensor_spec in_xy[] = {{"x", GFN_F32, 1, {GFN_DIM_VAR(0)}},
                                        {"y", GFN_F32, 1, {GFN_DIM_VAR(0)}}};
static const gfn_tensor_spec in_x[] = {{"x", GFN_F32, 1, {GFN_DIM_VAR(0)}}};
static const gfn_tensor_spec out_c[] = {{"c", GFN_F32, 1, {GFN_DIM_VAR(0)}}};
static const gfn_tensor_spec out_v[] = {{"out", GFN_F32, 1, {GFN_DIM_VAR(0)}}};
static const gfn_tensor_spec out_1[] = {{"out", GFN_F32, 1, {1}}};
static const gfn_param_spec par_a[] = {{"a", GFN_PARAM_F32}};

/* ---- OpenCL kernels ------------------------------------------------------ */

/* One work-item per element of tensor 0; n passed as a trailing ulong. */
/* clang-format off */
#define ELEMENTWISE {.kind = GFN_WORK_ELEMENTS, .tensor = 0, .pass_sizes = 1}
/* clang-format on */

enum { K_VADD, K_SAXPY, K_RELU, K_GELU, K_TANH, K_SIGMOID, K_SUM, K_COUNT };

static const gfn_opencl_kernel cl[K_COUNT] = {
        [K_VADD] = {gfn_cl_vadd, NULL, "gfn_vadd", ELEMENTWISE},
        [K_SAXPY] = {gfn_cl_saxpy, NULL, "gfn_saxpy", ELEMENTWISE},
        [K_RELU] = {gfn_cl_activation, NULL, "gfn_relu", ELEMENTWISE},
        [K_GELU] = {gfn_cl_activation, NULL, "gfn_gelu", ELEMENTWISE},
        [K_TANH] = {gfn_cl_activation, NULL, "gfn_tanh", ELEMENTWISE},
        [K_SIGMOID] = {gfn_cl_activation, NULL, "gfn_sigmoid", ELEMENTWISE},
        /* One work-group does it all: right for any n, n passed. */
        [K_SUM] = {gfn_cl_reduce_sum,
                   NULL,
                   "gfn_sum",
                   {.kind = GFN_WORK_FIXED,
                    .tensor = 0,
                    .global = {SUM_WG},
                    .local = {SUM_WG},
                    .pass_sizes = 1}},
};

/* ---- CUDA kernels -------------------------------------------------------- */

#ifdef GFN_HAVE_CUDA
/* The kernels/cuda/ files as fatbins (nvcc at build time), embedded by
   cmake/GfnEmbed.cmake (cu_fatbins.c); one image per .cu file. */
extern const char gfn_cu_vadd[], gfn_cu_saxpy[], gfn_cu_activation[],
        gfn_cu_reduce_sum[];
extern const size_t gfn_cu_vadd_len, gfn_cu_saxpy_len, gfn_cu_activation_len,
        gfn_cu_reduce_sum_len;

/* The same names and work rules as the OpenCL kernels. image_len is set
   by cuda_lengths(): an extern length is not a constant expression. */
static gfn_cuda_kernel cu[K_COUNT] = {
        [K_VADD] = {gfn_cu_vadd, 0, NULL, NULL, "gfn_vadd", ELEMENTWISE},
        [K_SAXPY] = {gfn_cu_saxpy, 0, NULL, NULL, "gfn_saxpy", ELEMENTWISE},
        [K_RELU] = {gfn_cu_activation, 0, NULL, NULL, "gfn_relu", ELEMENTWISE},
        [K_GELU] = {gfn_cu_activation, 0, NULL, NULL, "gfn_gelu", ELEMENTWISE},
        [K_TANH] = {gfn_cu_activation, 0, NULL, NULL, "gfn_tanh", ELEMENTWISE},
        [K_SIGMOID] = {gfn_cu_activation, 0, NULL, NULL, "gfn_sigmoid",
                       ELEMENTWISE},
        [K_SUM] = {gfn_cu_reduce_sum,
                   0,
                   NULL,
                   NULL,
                   "gfn_sum",
                   {.kind = GFN_WORK_FIXED,
                    .tensor = 0,
                    .global = {SUM_WG},
                    .local = {SUM_WG},
                    .pass_sizes = 1}},
};

static pthread_once_t cu_once = PTHREAD_ONCE_INIT;

static void cuda_lengths(void)
{
	cu[K_VADD].image_len = gfn_cu_vadd_len;
	cu[K_SAXPY].image_len = gfn_cu_saxpy_len;
	cu[K_RELU].image_len = gfn_cu_activation_len;
	cu[K_GELU].image_len = gfn_cu_activation_len;
	cu[K_TANH].image_len = gfn_cu_activation_len;
	cu[K_SIGMOID].image_len = gfn_cu_activation_len;
	cu[K_SUM].image_len = gfn_cu_reduce_sum_len;
}

#define CUDA_OF(k) (&cu[k])
#define CUDA_INIT() pthread_once(&cu_once, cuda_lengths)
#else
#define CUDA_OF(k) NULL
#define CUDA_INIT() ((void)0)
#endif

/* ---- the table ----------------------------------------------------------- */

#define FN(nm, ins, outs, pars, npars, fn, k, file)                            \
	{                                                                      \
		{.name = nm,                                                   \
		 .n_inputs = sizeof(ins) / sizeof(ins[0]),                     \
		 .inputs = ins,                                                \
		 .n_outputs = 1,                                               \
		 .outputs = outs,                                              \
		 .n_params = npars,                                            \
		 .params = pars,                                               \
		 .cpu_fn = fn,                                                 \
		 .opencl = &cl[k],                                             \
		 .cuda = CUDA_OF(k)},                                          \
		        file                                                   \
	}

static const gfn_builtin table[] = {
        FN("gfn.vadd", in_ab, out_c, NULL, 0, cpu_vadd, K_VADD, "vadd.cl"),
        FN("gfn.saxpy", in_xy, out_v, par_a, 1, cpu_saxpy, K_SAXPY, "saxpy.cl"),
        FN("gfn.relu", in_x, out_v, NULL, 0, cpu_relu, K_RELU, "activation.cl"),
        FN("gfn.gelu", in_x, out_v, NULL, 0, cpu_gelu, K_GELU, "activation.cl"),
        FN("gfn.tanh", in_x, out_v, NULL, 0, cpu_tanh, K_TANH, "activation.cl"),
        FN("gfn.sigmoid", in_x, out_v, NULL, 0, cpu_sigmoid, K_SIGMOID,
           "activation.cl"),
        FN("gfn.sum", in_x, out_1, NULL, 0, cpu_sum, K_SUM, "reduce_sum.cl"),
};

#define NTABLE (sizeof(table) / sizeof(table[0]))

const gfn_builtin *gfn__builtins(size_t *n)
{
	CUDA_INIT();
	*n = NTABLE;
	return table;
}

gfn_status gfn_builtins_register(gfn_engine *e)
{
	gfn_function fns[NTABLE];
	gfn_status s = GFN_OK;
	size_t i;

	CUDA_INIT();
	for (i = 0; i < NTABLE && s == GFN_OK; i++)
		s = gfn_function_register(e, &table[i].desc, &fns[i]);
	if (s == GFN_OK)
		return GFN_OK;
	/* i - 1 failed; undo 0 .. i - 2. Successful calls keep the detail. */
	for (size_t k = 0; k + 1 < i; k++)
		gfn_function_unregister(e, fns[k]);
	return s;
}
