/*
 * model_ops.h - the per-op conformance check of model graphs (model_ops.c):
 * each op as a one-node model, on 1, 5 and 37 rows, on every device of
 * devices against the reference device ref_dev (the CPU), within 1e-5
 * absolute + 1e-5 relative (i32 outputs exactly). The models are written
 * to a temporary directory, removed after. Fails the test on the first
 * difference.
 */
#ifndef GFN_TESTS_MODEL_OPS_H
#define GFN_TESTS_MODEL_OPS_H

#include <stddef.h>

#include <gfn/gfn.h>

/* Run fn pinned to device dev on input in; its one output's bytes into
   out (at most cap), the output deleted; returns the bytes. */
size_t model_ops_run_on(gfn_engine *e, gfn_function fn, size_t dev,
                        gfn_object in, void *out, size_t cap);

void model_ops_check_all(gfn_engine *e, size_t ref_dev, const size_t *devices,
                         size_t n);

#endif /* GFN_TESTS_MODEL_OPS_H */
