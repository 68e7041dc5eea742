/*
 * gfn_dialect.h - the portable kernel dialect: a few macros that let one
 * kernel source compile as OpenCL C, as CUDA C and as plain C.
 *
 * A kernel is written once, for one work-item of a 2-D grid (x: columns,
 * y: rows), and checks its indices against the real sizes, which follow
 * its other arguments (gfn.h's pass_sizes convention):
 *
 *   GFN_KERNEL(gfn_thing)(GFN_IN(float) x, GFN_OUT(float) out,
 *                         GFN_SIZE cols, GFN_SIZE rows GFN_ITEM_ARGS)
 *   {
 *           GFN_SIZE c = GFN_COL(), r = GFN_ROW();
 *           if (c >= cols || r >= rows)
 *                   return;
 *           ...
 *   }
 *
 * OpenCL and CUDA run it as a kernel over the grid; the C build makes it
 * a static function with two trailing index arguments, and
 * GFN_C_FOR_GRID(cols, rows, call) loops it over the grid on the CPU.
 * Math: GFN_EXP, GFN_SQRT, GFN_TANH, GFN_FMAX on float.
 */
#ifndef GFN_DIALECT_H
#define GFN_DIALECT_H

#if defined(__OPENCL_VERSION__)
#define GFN_KERNEL(name) __kernel void name
#define GFN_IN(t) __global const t *
#define GFN_OUT(t) __global t *
#define GFN_SIZE ulong
#define GFN_ITEM_ARGS
#define GFN_COL() ((GFN_SIZE)get_global_id(0))
#define GFN_ROW() ((GFN_SIZE)get_global_id(1))
#define GFN_EXP(x) exp(x)
#define GFN_SQRT(x) sqrt(x)
#define GFN_TANH(x) tanh(x)
#define GFN_FMAX(a, b) fmax(a, b)
#elif defined(__CUDACC__)
#define GFN_KERNEL(name) extern "C" __global__ void name
#define GFN_IN(t) const t *__restrict__
#define GFN_OUT(t) t *
#define GFN_SIZE unsigned long long
#define GFN_ITEM_ARGS
#define GFN_COL() ((GFN_SIZE)blockIdx.x * blockDim.x + threadIdx.x)
#define GFN_ROW() ((GFN_SIZE)blockIdx.y * blockDim.y + threadIdx.y)
#define GFN_EXP(x) expf(x)
#define GFN_SQRT(x) sqrtf(x)
#define GFN_TANH(x) tanhf(x)
#define GFN_FMAX(a, b) fmaxf(a, b)
#else /* C: the CPU backend */
#include <math.h>
#include <stdint.h>
#define GFN_KERNEL(name) static void name
#define GFN_IN(t) const t *
#define GFN_OUT(t) t *
#define GFN_SIZE uint64_t
#define GFN_ITEM_ARGS , uint64_t gfn_col_, uint64_t gfn_row_
#define GFN_COL() (gfn_col_)
#define GFN_ROW() (gfn_row_)
#define GFN_EXP(x) expf(x)
#define GFN_SQRT(x) sqrtf(x)
#define GFN_TANH(x) tanhf(x)
#define GFN_FMAX(a, b) fmaxf(a, b)
/* Run call (a kernel call ending in the two index arguments) over the
   grid. Rows outside, so that a row's items run in order. */
#define GFN_C_FOR_GRID(cols, rows, call)                                       \
	do {                                                                   \
		for (uint64_t gfn_row_ = 0; gfn_row_ < (rows); gfn_row_++)     \
			for (uint64_t gfn_col_ = 0; gfn_col_ < (cols);         \
			     gfn_col_++)                                       \
				call;                                          \
	} while (0)
#endif

#endif /* GFN_DIALECT_H */
