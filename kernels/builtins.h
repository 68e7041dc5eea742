/*
 * builtins.h - the table of built-in functions behind gfn_builtins.h.
 * Internal: not API.
 *
 * Each entry is a complete gfn_function_desc: the signature, the CPU
 * reference (cpu_fn), the OpenCL kernel (opencl: source embedded from
 * kernels/cl/ at build time by cmake/GfnEmbed.cmake, kernel name and work
 * rule, following gfn.h's argument convention) and, where the CUDA
 * backend is built, the CUDA kernel (cuda: a fatbin nvcc made from
 * kernels/cuda/ at build time, embedded the same way; same names and
 * rules). Tests walk the table to
 * build every kernel with a real OpenCL compiler and to check argument
 * lists against the convention.
 */
#ifndef GFN_KERNELS_BUILTINS_H
#define GFN_KERNELS_BUILTINS_H

#include <stddef.h>

#include "gfn/gfn.h"

typedef struct gfn_builtin {
	gfn_function_desc desc; /* what gfn_builtins_register registers */
	const char *cl_file;    /* the kernels/cl/ file of desc.opencl */
} gfn_builtin;

/* The table (static storage) and its length in *n. */
const gfn_builtin *gfn__builtins(size_t *n);

#endif /* GFN_KERNELS_BUILTINS_H */
