/*
 * cuda_launch.h - one vadd launch through the CUDA backend's ops, for the
 * ops-level tests (test_cuda_fake on the fake driver, test_cuda_gpu on a
 * GPU): out = a + b over n elements.
 */
#ifndef GFN_TESTS_CUDA_LAUNCH_H
#define GFN_TESTS_CUDA_LAUNCH_H

#include "runtime/backend.h"

static inline gfn_status launch_vadd(gfn_bqueue *q, gfn_bkernel *k, gfn_bmem *a,
                                     gfn_bmem *b, gfn_bmem *out, size_t n)
{
	static const gfn_param_type none[1];
	gfn_tensor in[2] = {{.data = a}, {.data = b}}, o[1] = {{.data = out}};
	gfn_kernel_args args = {
	        .n_inputs = 2, .inputs = in, .n_outputs = 1, .outputs = o};
	gfn_launch l = {.args = &args,
	                .param_types = none,
	                .global = {n},
	                .sizes = {n},
	                .nsizes = 1};

	return gfn_cuda_backend.launch(q, k, &l);
}

#endif /* GFN_TESTS_CUDA_LAUNCH_H */
