/*
 * gfn_model.h - models as functions: a directory with a graph manifest and
 * a safetensors weights file, registered as one gfn function.
 *
 * A model directory holds model.json:
 *
 *   {"format": "gfn-model/1",
 *    "weights": "model.safetensors",
 *    "inputs":  [{"name": "x", "dtype": "f32", "shape": ["batch", 64]}],
 *    "outputs": ["probs"],
 *    "nodes": [{"op": "matmul", "inputs": ["x", "w0"], "output": "h"},
 *              {"op": "softmax", "inputs": ["h"], "output": "probs"}]}
 *
 * Every input's first extent is "batch": one invocation runs any number of
 * rows, and every output has the same leading extent (size variable 0 of
 * the function's signature). Names in "inputs" of a node refer to model
 * inputs, weights (tensors of the safetensors file, F32, F16 or BF16, read
 * as f32) or outputs of earlier nodes. The ops, with per-row shapes:
 *
 *   op          inputs                    attributes          output
 *   matmul      a[..,K], w[K,N]           transpose_b: w[N,K] [..,N]
 *   bias_add    x[..], b[C]               axis (-1): C's axis same as x
 *   relu gelu tanh sigmoid   x            -                   same as x
 *   softmax     x[..,C]                   -  (over the last axis)
 *   layernorm   x[..,C], gamma[C], beta[C]  eps (1e-5)        same as x
 *   conv2d      x[C,H,W], w[O,C,KH,KW], b[O] (optional)
 *                                         stride (1), pad (0) [O,OH,OW]
 *   maxpool2d avgpool2d  x[C,H,W]         kernel, stride (kernel), pad (0)
 *   flatten     x                         -                   [numel]
 *   embedding   ids[L] i32, table[V,D]    -                   [L,D]
 *   argmax      x[..,C]                   -                   [..] i32
 *
 * The function runs on CPU devices. Its weights are read and converted
 * once, at registration. Each device gets its own copy of them (the
 * model's warm instance there) when the first invocation of the model
 * runs on it, and every later invocation there shares that copy. Under
 * a per-device limit on warm weight bytes (gfn_model_set_warm_limit) the
 * least recently used idle models of the engine on that device are
 * evicted first. An invocation fails with GFN_EKERNEL when it cannot get
 * memory (detail "CPU kernel returned 1"), an embedding id is out of
 * range (2), or its weights do not fit under the limit even after
 * evicting every idle model (3).
 */
#ifndef GFN_GFN_MODEL_H
#define GFN_GFN_MODEL_H

#include "gfn.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Read dir/model.json and the weights file it names, check the graph
 * (names, ops, shapes, dtypes) and register it with e as the function
 * name (1..63 chars). On success *out is the function, and gfn keeps the
 * model (its weights included) until gfn_model_unregister. On failure
 * nothing is registered or kept, and the detail says what is wrong:
 * GFN_ENOENT for a missing file, GFN_EINVAL for a malformed manifest or
 * graph, GFN_ERANGE or GFN_ENOTSUP for a bad weights file (see
 * kernels/safetensors.h), GFN_EEXIST when the name is taken.
 */
GFN_API gfn_status gfn_function_register_model(gfn_engine *e, const char *dir,
                                               const char *name,
                                               gfn_function *out);

/*
 * Unregister a function made by gfn_function_register_model. New
 * invocations get GFN_ESTALE at once; ones already accepted still run,
 * and the model (its weights on every device included) is freed when the
 * last of them ends. gfn_engine_destroy frees models never unregistered.
 * GFN_ENOENT when fn is not a model function of e.
 */
GFN_API gfn_status gfn_model_unregister(gfn_engine *e, gfn_function fn);

/*
 * Most bytes of model weights e keeps warm on each of its devices;
 * default (and 0): half the device's memory. It holds for every model of
 * e, including those registered later, and is forgotten when the last
 * model of e is unregistered. GFN_ENOMEM when limits are set for 32
 * engines already.
 */
GFN_API gfn_status gfn_model_set_warm_limit(gfn_engine *e, size_t bytes);

/* A model function on one device. */
typedef struct gfn_model_device_info {
	int warm;           /* its weights are on the device now */
	size_t bytes;       /* weight bytes of a warm copy */
	unsigned users;     /* invocations running on the copy now */
	uint64_t uploads;   /* times the weights were put on the device */
	uint64_t evictions; /* times they were evicted to make room */
	uint64_t graphs;    /* CUDA graphs recorded of it there */
	uint64_t replays;   /* invocations (or batches) that ran as one
	                       replay of such a graph */
} gfn_model_device_info;

/* How model function fn stands on engine device index device. GFN_ENOENT
   when fn is not a model function of e. */
GFN_API gfn_status gfn_model_get_device_info(gfn_engine *e, gfn_function fn,
                                             size_t device,
                                             gfn_model_device_info *out);

/*
 * The model functions warm on device, most recently used first: up to cap
 * (at most 64) of them in fns, and in *n how many are warm in all.
 */
GFN_API gfn_status gfn_model_warm_list(gfn_engine *e, size_t device,
                                       gfn_function *fns, size_t cap,
                                       size_t *n);

/*
 * The row-wise ML built-ins, on every backend: CPU, OpenCL and (where gfn
 * is built with CUDA) CUDA, from one kernel source in gfn's portable
 * dialect. x is [rows, cols] f32 (rows, cols >= 0; a mismatch of the
 * shared extents fails gfn_invoke with GFN_ESHAPE):
 *
 *   name           inputs                      params     output
 *   gfn.bias_add   x, b[cols]                  -          x + b per row
 *   gfn.softmax    x                           -          softmax per row
 *   gfn.layernorm  x, gamma[cols], beta[cols]  eps: f32   layer norm per row
 *   gfn.argmax     x                           -          [rows] i32, the
 *                                                         first largest
 *
 * Computed in f32 on every backend. Accuracy, for finite inputs with
 * |x| <= 16 and cols <= 1024, against the exact value w: bias_add within
 * 1.2e-7 (|x| + |b|); softmax within 1e-6 + 1e-5 |w|; layernorm within
 * 1e-5 (1 + |w|); argmax exact when the largest element is unique.
 * All or nothing, like gfn_builtins_register (GFN_EEXIST when a name is
 * taken).
 */
GFN_API gfn_status gfn_ml_ops_register(gfn_engine *e);

#ifdef __cplusplus
}
#endif
#endif /* GFN_GFN_MODEL_H */
