/*
 * ml_ops.c - the row-wise ML built-ins (gfn_ml_ops_register in
 * gfn/gfn_model.h), whose kernels are written once in the portable
 * dialect (portable/ml_ops.gk) and compiled three ways: as C here (the CPU
 * implementation), as OpenCL C (the dialect header and the source joined
 * at build time and embedded) and, where nvcc exists, as a CUDA fatbin.
 */
#include <pthread.h>
#include <stdint.h>

#include "gfn/gfn_model.h"
#include "kernels/portable/gfn_dialect.h"

/* The C build of the kernels: static functions of this file. */
#include "kernels/portable/ml_ops.gk"

/* portable/gfn_dialect.h + portable/ml_ops.gk, embedded by GfnEmbed. */
extern const char gfn_cl_ml_ops[];

/* ---- CPU: the same kernels looped over the grid -------------------------- */

static uint64_t cols_of(const gfn_tensor *t)
{
	return (uint64_t)t->shape[1];
}

static uint64_t rows_of(const gfn_tensor *t)
{
	return (uint64_t)t->shape[0];
}

static int cpu_bias_add(const gfn_kernel_args *a, void *user)
{
	uint64_t cols = cols_of(&a->inputs[0]), rows = rows_of(&a->inputs[0]);

	(void)user;
	GFN_C_FOR_GRID(cols, rows,
	               gfn_bias_add(a->inputs[0].data, a->inputs[1].data,
	                            a->outputs[0].data, cols, rows, gfn_col_,
	                            gfn_row_));
	return 0;
}

static int cpu_softmax(const gfn_kernel_args *a, void *user)
{
	uint64_t cols = cols_of(&a->inputs[0]), rows = rows_of(&a->inputs[0]);

	(void)user;
	GFN_C_FOR_GRID(cols, rows,
	               gfn_softmax(a->inputs[0].data, a->outputs[0].data, cols,
	                           rows, gfn_col_, gfn_row_));
	return 0;
}

static int cpu_layernorm(const gfn_kernel_args *a, void *user)
{
	uint64_t cols = cols_of(&a->inputs[0]), rows = rows_of(&a->inputs[0]);

	(void)user;
	GFN_C_FOR_GRID(cols, rows,
	               gfn_layernorm(a->inputs[0].data, a->inputs[1].data,
	                             a->inputs[2].data, a->outputs[0].data,
	                             a->params[0].f32, cols, rows, gfn_col_,
	                             gfn_row_));
	return 0;
}

static int cpu_argmax(const gfn_kernel_args *a, void *user)
{
	uint64_t cols = cols_of(&a->inputs[0]), rows = rows_of(&a->inputs[0]);

	(void)user;
	/* Only column 0 does work: loop just that column. */
	GFN_C_FOR_GRID(cols ? 1 : 0, rows,
	               gfn_argmax(a->inputs[0].data, a->outputs[0].data, cols,
	                          rows, gfn_col_, gfn_row_));
	return 0;
}

/* ---- signatures ---------------------------------------------------------- */

/* Size variables: 0 the rows, 1 the columns. */
#define ROWS GFN_DIM_VAR(0)
#define COLS GFN_DIM_VAR(1)

static const gfn_tensor_spec in_xb[] = {{"x", GFN_F32, 2, {ROWS, COLS}},
                                        {"b", GFN_F32, 1, {COLS}}};
static const gfn_tensor_spec in_x[] = {{"x", GFN_F32, 2, {ROWS, COLS}}};
static const gfn_tensor_spec in_xgb[] = {{"x", GFN_F32, 2, {ROWS, COLS}},
                                         {"gamma", GFN_F32, 1, {COLS}},
                                         {"beta", GFN_F32, 1, {COLS}}};
static const gfn_tensor_spec out_m[] = {{"out", GFN_F32, 2, {ROWS, COLS}}};
static const gfn_tensor_spec out_i[] = {{"out", GFN_I32, 1, {ROWS}}};
static const gfn_param_spec par_eps[] = {{"eps", GFN_PARAM_F32}};

/* One work-item per element of input 0; cols and rows passed. */
/* clang-format off */
#define GRID {.kind = GFN_WORK_MATRIX, .tensor = 0, .pass_sizes = 1}
/* clang-format on */

enum { K_BIAS, K_SOFTMAX, K_LAYERNORM, K_ARGMAX, K_COUNT };

static const gfn_opencl_kernel cl[K_COUNT] = {
        [K_BIAS] = {gfn_cl_ml_ops, NULL, "gfn_bias_add", GRID},
        [K_SOFTMAX] = {gfn_cl_ml_ops, NULL, "gfn_softmax", GRID},
        [K_LAYERNORM] = {gfn_cl_ml_ops, NULL, "gfn_layernorm", GRID},
        [K_ARGMAX] = {gfn_cl_ml_ops, NULL, "gfn_argmax", GRID},
};

#ifdef GFN_HAVE_CUDA
/* portable/ml_ops.gk as a fatbin (nvcc at build time), embedded. */
extern const char gfn_cu_ml_ops[];
extern const size_t gfn_cu_ml_ops_len;

static gfn_cuda_kernel cu[K_COUNT] = {
        [K_BIAS] = {gfn_cu_ml_ops, 0, NULL, NULL, "gfn_bias_add", GRID},
        [K_SOFTMAX] = {gfn_cu_ml_ops, 0, NULL, NULL, "gfn_softmax", GRID},
        [K_LAYERNORM] = {gfn_cu_ml_ops, 0, NULL, NULL, "gfn_layernorm", GRID},
        [K_ARGMAX] = {gfn_cu_ml_ops, 0, NULL, NULL, "gfn_argmax", GRID},
};
static pthread_once_t cu_once = PTHREAD_ONCE_INIT;

/* An extern length is not a constant expression: set it once. */
static void cuda_lengths(void)
{
	for (int k = 0; k < K_COUNT; k++)
		cu[k].image_len = gfn_cu_ml_ops_len;
}
#define CUDA_OF(k) (&cu[k])
#define CUDA_INIT() pthread_once(&cu_once, cuda_lengths)
#else
#define CUDA_OF(k) NULL
#define CUDA_INIT() ((void)0)
#endif

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define FN(nm, ins, outs, pars, npars, fn, k)                                  \
	{                                                                      \
		.name = nm, .n_inputs = N_OF(ins), .inputs = ins,              \
		.n_outputs = 1, .outputs = outs, .n_params = npars,            \
		.params = pars, .cpu_fn = fn, .opencl = &cl[k],                \
		.cuda = CUDA_OF(k)                                             \
	}

static const gfn_function_desc table[] = {
        FN("gfn.bias_add", in_xb, out_m, NULL, 0, cpu_bias_add, K_BIAS),
        FN("gfn.softmax", in_x, out_m, NULL, 0, cpu_softmax, K_SOFTMAX),
        FN("gfn.layernorm", in_xgb, out_m, par_eps, 1, cpu_layernorm,
           K_LAYERNORM),
        FN("gfn.argmax", in_x, out_i, NULL, 0, cpu_argmax, K_ARGMAX),
};

gfn_status gfn_ml_ops_register(gfn_engine *e)
{
	gfn_function fns[N_OF(table)];
	gfn_status s = GFN_OK;
	size_t i;

	CUDA_INIT();
	for (i = 0; i < N_OF(table) && s == GFN_OK; i++)
		s = gfn_function_register(e, &table[i], &fns[i]);
	if (s == GFN_OK)
		return GFN_OK;
	/* i - 1 failed; undo 0 .. i - 2 (all or nothing). */
	for (size_t k = 0; k + 1 < i; k++)
		gfn_function_unregister(e, fns[k]);
	return s;
}
