/*
 * model.h - a model graph: its tensors, nodes and weights, as model.c
 * builds it from a manifest and runs it. Internal: not API.
 */
#ifndef GFN_KERNELS_MODEL_H
#define GFN_KERNELS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "gfn/gfn.h"
#include "kernels/ops.h"
#include "runtime/devfn.h"

#define GFN_MODEL_MAX_TENSORS 1024        /* tensors one graph may name */
#define GFN_MODEL_MAX_NODES 512           /* nodes one graph may have */
#define GFN_MODEL_MAX_MANIFEST (1u << 20) /* bytes of model.json */
#define GFN_MODEL_MAX_DEVICES 64          /* devices an invocation can name */

/* A model's weights on one device: its warm instance there. */
typedef struct gfn_model_warm {
	float *weights;             /* a CPU device's copy; NULL while cold */
	gfn_bmem mem;               /* a device's copy in its own memory */
	const gfn_backend_ops *ops; /* the backend mem is from; NULL while
	                               there is none */
	gfn_bdev *bdev;             /* the device mem is on */
	int users;                  /* invocations reading it now */
	uint64_t last_use;          /* tick of its last use: LRU order */
	uint64_t uploads;           /* times the copy was made */
	uint64_t evictions;         /* times it was dropped to make room */
} gfn_model_warm;

typedef enum gfn_mtensor_kind {
	GFN_MT_INPUT = 1,  /* a function input: batch rows, given per call */
	GFN_MT_WEIGHT = 2, /* from the weights file: whole, shared */
	GFN_MT_VALUE = 3,  /* made by a node: batch rows, in scratch */
} gfn_mtensor_kind;

typedef struct gfn_mtensor {
	char *name;                  /* owned */
	gfn_mtensor_kind kind;       /* where its memory is */
	gfn_dtype dtype;             /* GFN_F32 or GFN_I32 */
	int ndim;                    /* per row (weights: whole) */
	int64_t shape[GFN_MAX_DIMS]; /* per row (weights: whole) */
	size_t numel;                /* elements per row (weights: all) */
	size_t weight_off;           /* GFN_MT_WEIGHT: its first float in the
	                      model's weights */
	size_t arena_off;            /* GFN_MT_VALUE: elements per row
	                                 before it in the scratch arena */
	int output;                  /* index among the outputs, or -1 */
	int input;                   /* index among the inputs, or -1 */
} gfn_mtensor;

/* The extent of t's last axis (1 for a scalar row). */
static inline size_t gfn__mt_last_dim(const gfn_mtensor *t)
{
	return t->ndim ? (size_t)t->shape[t->ndim - 1] : 1;
}

/* Rows of t's last axis over a batch of rows. */
static inline size_t gfn__mt_lines(const gfn_mtensor *t, size_t rows)
{
	return rows * (t->numel / gfn__mt_last_dim(t));
}

typedef enum gfn_op {
	GFN_OP_MATMUL = 1,
	GFN_OP_BIAS_ADD,
	GFN_OP_RELU,
	GFN_OP_GELU,
	GFN_OP_TANH,
	GFN_OP_SIGMOID,
	GFN_OP_SOFTMAX,
	GFN_OP_LAYERNORM,
	GFN_OP_CONV2D,
	GFN_OP_MAXPOOL2D,
	GFN_OP_AVGPOOL2D,
	GFN_OP_FLATTEN,
	GFN_OP_EMBEDDING,
	GFN_OP_ARGMAX,
} gfn_op;

typedef struct gfn_mnode {
	gfn_op op;              /* what it computes */
	int n_in;               /* inputs used: 1..3 */
	int in[3];              /* tensor indices */
	int out;                /* tensor index */
	int trans_b;            /* matmul: w is [N, K] */
	size_t outer, c, inner; /* bias_add: the split of a row around C */
	float eps;              /* layernorm */
	gfn_conv_geom geom;     /* conv2d and pooling */
	int relu_next;          /* bias_add whose only reader is the relu
	                           node after it: the CPU runner does both
	                           in one pass and skips that relu */
} gfn_mnode;

typedef struct gfn_model {
	char name[64];                /* the function's name */
	gfn_engine *engine;           /* it is registered with */
	gfn_function fn;              /* its id there */
	size_t n_tensors;             /* used entries of tensors */
	gfn_mtensor *tensors;         /* every named tensor */
	size_t n_nodes;               /* used entries of nodes */
	gfn_mnode *nodes;             /* in execution order */
	size_t n_inputs;              /* function inputs */
	int inputs[GFN_MAX_INPUTS];   /* their tensor indices */
	size_t n_outputs;             /* function outputs */
	int outputs[GFN_MAX_OUTPUTS]; /* their tensor indices */
	float *weights;               /* all weights as f32, one block: the host
	                     copy devices are warmed from */
	size_t n_weights;             /* floats in weights */
	size_t dev_memory[GFN_MODEL_MAX_DEVICES];   /* each device's memory,
	                                             read at registration */
	gfn_model_warm warm[GFN_MODEL_MAX_DEVICES]; /* guarded by the lock
	                                               of model_warm.c */
	size_t arena_row; /* scratch floats per batch row */
	size_t scratch;   /* extra scratch floats per batch row: a
	                     convolution's im2col and GEMM result */
	struct gfn_model_dk *dk[GFN_MODEL_MAX_DEVICES]; /* each device's
	                                  graph-op kernels (model_dev.c) */
	struct gfn_model *next; /* the list of registered models */
} gfn_model;

struct cJSON;

/* Fail with s, prefixing the current detail with "what 'name': ". */
gfn_status gfn__model_prefix(gfn_status s, const char *what, const char *name);

/* The index of the tensor called name, or -1. */
int gfn__model_find(const gfn_model *m, const char *name);

/* Add a tensor (name copied, unique); *idx is its index. Weights get
   their numel and data from the caller; others' numel is computed. */
gfn_status gfn__model_add(gfn_model *m, const char *name, gfn_mtensor_kind kind,
                          gfn_dtype dt, int ndim, const int64_t *shape,
                          int *idx);

/* Parse root's "nodes" into m (model_nodes.c): ops, attributes, shapes. */
gfn_status gfn__model_parse_nodes(gfn_model *m, const struct cJSON *root);

/* Build m's graph from the manifest text and the weights file in dir. On
   failure the detail says why; gfn__model_free frees what was built. */
gfn_status gfn__model_build(gfn_model *m, const char *json, const char *dir);

/* Run the graph on rows batch rows with the weights at w (a copy of
   m->weights): in[i] / out[j] are the inputs' and outputs' memory. 0, or
   1 without scratch memory, 2 for a bad id. */
int gfn__model_run(const gfn_model *m, const float *w, size_t rows,
                   const void *const *in, void *const *out);

/* ---- warm instances and the list of models (model_warm.c) ---- */

/* Put m on the list of registered models / take it off (NULL: none). */
void gfn__models_add(gfn_model *m);
gfn_model *gfn__models_unlink(gfn_engine *e, gfn_function fn);
void gfn__models_remove(gfn_model *m);

/* Device dev's copy of m's weights for one invocation: made first when
   cold, evicting the least recently used idle models of the engine on
   dev while the copy would pass its limit. NULL on failure, with *rc 1
   (no memory) or 3 (they do not fit under the limit). */
const float *gfn__warm_acquire(gfn_model *m, int dev, int *rc);
/* Placement's estimate of warming m up on dev (0 when warm). */
uint64_t gfn__warm_cost_ns(void *user, int dev);
/* The invocation that acquired dev's copy has ended. */
void gfn__warm_release(gfn_model *m, int dev);
/* Free every device copy of m (no invocation may be running). */
void gfn__warm_drop(gfn_model *m);

/* As gfn__warm_acquire, for a device with its own memory: the copy is
   made with c's backend (allocated, uploaded on q, q synced). */
const gfn_bmem *gfn__warm_acquire_dev(gfn_model *m, const gfn_devctx *c,
                                      gfn_bqueue *q, int *rc);
/* Free m's copy on device dev, if any (none of its invocations runs). */
void gfn__warm_drop_dev(gfn_model *m, int dev);

/* ---- CUDA graphs of a model on one device (model_graphs.c) ---- */

/* Words of a graph's key: batch rows, weights, scratch, every input and
   output buffer's address. */
#define GFN_MGRAPH_KEY (3 + GFN_MAX_INPUTS + GFN_MAX_OUTPUTS)

typedef struct gfn_mgraphs gfn_mgraphs;

gfn_mgraphs *gfn__mgraphs_new(void);    /* NULL: no memory */
void gfn__mgraphs_free(gfn_mgraphs *t); /* its graphs have finished */
/*
 * Run what enqueue(arg) enqueues on q: as the graph recorded for key on
 * q when there is one; recorded now (then run) when key was seen once
 * before; enqueued directly otherwise.
 */
gfn_status gfn__mgraphs_run(gfn_mgraphs *t, gfn_bqueue *q, const uint64_t *key,
                            size_t nkey, gfn_status (*enqueue)(void *),
                            void *arg);
/* Graphs recorded and replays run so far. */
void gfn__mgraphs_counts(gfn_mgraphs *t, uint64_t *recorded,
                         uint64_t *replayed);

/* ---- on devices with their own memory (model_dev.c) ---- */

/* Set m's kernels on dev under the lock of model_warm.c (reports read
   them); the old ones are returned. */
struct gfn_model_dk *gfn__warm_set_dk(gfn_model *m, int dev,
                                      struct gfn_model_dk *dk);
/* Graphs recorded and replayed of dk (0 without CUDA graphs). */
void gfn__model_dk_counts(struct gfn_model_dk *dk, uint64_t *graphs,
                          uint64_t *replays);

/* The device program that runs m's graph on OpenCL and CUDA devices. */
extern const gfn_devfn gfn__model_devfn;

void gfn__model_free(gfn_model *m);

#endif /* GFN_KERNELS_MODEL_H */
