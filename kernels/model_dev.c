/*
 * model_dev.c - model graphs on devices with their own memory (OpenCL,
 * CUDA): the device program (runtime/devfn.h) the engine runs for a model
 * function there.
 *
 * Per invocation (or dynamic batch) the engine has already staged the
 * inputs into device memory; run() then enqueues, on the worker's queue,
 * one launch per node of the graph (a convolution is im2col, one GEMM for
 * the whole batch, and a reorder with the bias), GEMMs through the
 * backend's vendor BLAS (CLBlast, cuBLAS). Weights are the model's warm
 * copy on the device (model_warm.c); intermediate tensors live in one
 * scratch block of the device pool, freed by the engine after its sync.
 * Nothing here waits for the device, and after warm-up nothing allocates:
 * kernels are loaded at registration (through the kernel cache), weights
 * on first use.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels/model.h"
#include "runtime/util.h"

#ifdef GFN_HAVE_OPENCL
/* portable/graph_ops.gk joined to the dialect header (built, embedded). */
extern const char gfn_cl_graph_ops[];
extern const size_t gfn_cl_graph_ops_len;
#endif
#ifdef GFN_HAVE_CUDA
/* portable/graph_ops.gk as a fatbin (nvcc at build time), embedded. */
extern const char gfn_cu_graph_ops[];
extern const size_t gfn_cu_graph_ops_len;
#endif

enum {
	GK_BIAS,
	GK_UNARY,
	GK_SOFTMAX,
	GK_LAYERNORM,
	GK_ARGMAX,
	GK_IM2COL,
	GK_CONV_OUT,
	GK_POOL,
	GK_EMBED,
	GK_N
};

static const char *const gk_entry[GK_N] = {
        [GK_BIAS] = "gfn_g_bias",         [GK_UNARY] = "gfn_g_unary",
        [GK_SOFTMAX] = "gfn_g_softmax",   [GK_LAYERNORM] = "gfn_g_layernorm",
        [GK_ARGMAX] = "gfn_g_argmax",     [GK_IM2COL] = "gfn_g_im2col",
        [GK_CONV_OUT] = "gfn_g_conv_out", [GK_POOL] = "gfn_g_pool",
        [GK_EMBED] = "gfn_g_embed",
};

/* gfn_g_unary's kinds. */
enum { UN_RELU, UN_GELU, UN_TANH, UN_SIGMOID, UN_COPY };

/* A model on one device: its kernels, and what the after hook needs. */
typedef struct gfn_model_dk {
	gfn_model *m;               /* owner */
	int dev;                    /* the engine's device index */
	gfn_bkernel *k[GK_N];       /* loaded at prepare */
	const gfn_backend_ops *ops; /* what loaded them */
	gfn_bdev *bdev;
#ifdef GFN_HAVE_CUDA
	gfn_mgraphs *graphs; /* CUDA: the graphs recorded of m */
#endif
} gfn_model_dk;

/* ---- planning --------------------------------------------------------- */

/* An embedding whose ids are not a function input cannot be checked on
   the host before it runs: such a model runs on the CPU only. */
static int runs_on_devices(const gfn_model *m)
{
	for (size_t i = 0; i < m->n_nodes; i++)
		if (m->nodes[i].op == GFN_OP_EMBEDDING &&
		    m->tensors[m->nodes[i].in[0]].kind != GFN_MT_INPUT)
			return 0;
	return 1;
}

/* ---- kernels ---------------------------------------------------------- */

static int kernel_source(const gfn_devctx *c, int k, gfn_ksrc *src)
{
	memset(src, 0, sizeof *src);
	src->entry = gk_entry[k];
	src->kcache = c->kcache;
#ifdef GFN_HAVE_OPENCL
	if (c->ops->kind == GFN_BACKEND_OPENCL) {
		src->kind = GFN_KSRC_OPENCL_C;
		src->text = gfn_cl_graph_ops;
		src->len = gfn_cl_graph_ops_len;
		return 1;
	}
#endif
#ifdef GFN_HAVE_CUDA
	if (c->ops->kind == GFN_BACKEND_CUDA) {
		src->kind = GFN_KSRC_CUDA_PTX;
		src->text = gfn_cu_graph_ops;
		src->len = gfn_cu_graph_ops_len;
		return 1;
	}
#endif
	return 0;
}

static void unload(gfn_model_dk *dk)
{
#ifdef GFN_HAVE_CUDA
	gfn__mgraphs_free(dk->graphs); /* before the kernels they launch */
#endif
	for (int k = 0; k < GK_N; k++)
		if (dk->k[k])
			dk->ops->kernel_unload(dk->bdev, dk->k[k]);
	free(dk);
}

static gfn_status load(const gfn_devctx *c, gfn_model_dk *dk, int *loads,
                       int *hits)
{
	gfn_status s = GFN_OK;
	gfn_ksrc src;

	for (int k = 0; k < GK_N && s == GFN_OK; k++) {
		int cached = 0;

		if (!kernel_source(c, k, &src))
			return gfn__fail(GFN_ENOTSUP, "no graph ops for %s",
			                 c->ops->name);
		s = c->ops->kernel_load(c->bdev, &src, &dk->k[k], &cached);
		*hits += s == GFN_OK && cached;
		*loads += s == GFN_OK && !cached;
	}
	return s;
}

static gfn_status dev_prepare(void *user, const gfn_devctx *c, int *loads,
                              int *hits)
{
	gfn_model *m = user;
	gfn_model_dk *dk;
	gfn_status s;

	if (c->device < 0 || c->device >= GFN_MODEL_MAX_DEVICES)
		return gfn__fail(GFN_ENOTSUP, "device %d", c->device);
	if (!c->ops->gemm || !runs_on_devices(m))
		return gfn__fail(GFN_ENOTSUP, "%s: not on %s devices", m->name,
		                 c->ops->name);
	if (m->dk[c->device])
		return GFN_OK;
	dk = calloc(1, sizeof *dk);
	if (!dk)
		return gfn__fail(GFN_ENOMEM, "no memory for %s", m->name);
	dk->m = m;
	dk->dev = c->device;
	dk->ops = c->ops;
	dk->bdev = c->bdev;
	s = load(c, dk, loads, hits);
#ifdef GFN_HAVE_CUDA
	if (s == GFN_OK && c->ops->kind == GFN_BACKEND_CUDA &&
	    !(dk->graphs = gfn__mgraphs_new()))
		s = gfn__fail(GFN_ENOMEM, "no memory for %s", m->name);
#endif
	if (s != GFN_OK) {
		unload(dk);
		return s;
	}
	gfn__warm_set_dk(m, c->device, dk);
	return GFN_OK;
}

static void dev_release(void *user, const gfn_devctx *c)
{
	gfn_model *m = user;
	gfn_model_dk *dk;

	if (c->device < 0 || c->device >= GFN_MODEL_MAX_DEVICES)
		return;
	gfn__warm_drop_dev(m, c->device);
	dk = gfn__warm_set_dk(m, c->device, NULL);
	if (dk)
		unload(dk);
}

void gfn__model_dk_counts(gfn_model_dk *dk, uint64_t *graphs, uint64_t *replays)
{
	*graphs = *replays = 0;
#ifdef GFN_HAVE_CUDA
	if (dk && dk->graphs)
		gfn__mgraphs_counts(dk->graphs, graphs, replays);
#else
	(void)dk;
#endif
}

/* ---- one launch --------------------------------------------------------- */

#define CALL_BUFS 4

/* A launch being put together: buffers first, then scalars. */
typedef struct call {
	gfn_tensor buf[CALL_BUFS];
	int nbuf;
	gfn_scalar par[GFN_MAX_PARAMS];
	gfn_param_type type[GFN_MAX_PARAMS];
	int npar;
} call;

/* Where a tensor is in this run: a device buffer and an offset in it. */
typedef struct loc {
	const gfn_bmem *mem;
	size_t off; /* elements */
} loc;

/* What every node of one run needs. */
typedef struct run_ctx {
	const gfn_model *m;
	gfn_devrun *r;
	gfn_model_dk *dk;
	size_t rows;             /* batch rows */
	const gfn_bmem *weights; /* the warm copy */
	const gfn_bmem *arena;   /* scratch: values, then conv space */
} run_ctx;

static void arg_buf(call *c, const gfn_bmem *m)
{
	memset(&c->buf[c->nbuf], 0, sizeof c->buf[0]);
	c->buf[c->nbuf++].data = (void *)m; /* the launch reads it only */
}

static void arg_size(call *c, size_t v)
{
	c->type[c->npar] = GFN_PARAM_I64;
	c->par[c->npar++].i64 = (int64_t)v;
}

static void arg_f32(call *c, float v)
{
	c->type[c->npar] = GFN_PARAM_F32;
	c->par[c->npar++].f32 = v;
}

/* Enqueue kernel k over n work-items with c's arguments. */
static gfn_status go(const run_ctx *x, int k, const call *c, size_t n)
{
	gfn_kernel_args a = {.n_inputs = (size_t)c->nbuf,
	                     .inputs = c->buf,
	                     .n_params = (size_t)c->npar,
	                     .params = c->par,
	                     .device = x->r->dev.device};
	gfn_launch l = {.args = &a, .param_types = c->type, .global = {n}};

	if (!n)
		return GFN_OK;
	return x->r->dev.ops->launch(x->r->q, x->dk->k[k], &l);
}

static loc where(const run_ctx *x, int t)
{
	const gfn_mtensor *mt = &x->m->tensors[t];
	const gfn_kernel_args *a = x->r->args;

	if (mt->kind == GFN_MT_INPUT)
		return (loc){a->inputs[mt->input].data, 0};
	if (mt->kind == GFN_MT_WEIGHT)
		return (loc){x->weights, mt->weight_off};
	if (mt->output >= 0)
		return (loc){a->outputs[mt->output].data, 0};
	return (loc){x->arena, mt->arena_off * x->rows};
}

/* Start a call with the buffers of tensors t[0..n) and their offsets. */
static void with_tensors(const run_ctx *x, call *c, const int *t, int n)
{
	loc l[CALL_BUFS];

	c->nbuf = c->npar = 0;
	for (int i = 0; i < n; i++) {
		l[i] = where(x, t[i]);
		arg_buf(c, l[i].mem);
	}
	for (int i = 0; i < n; i++)
		arg_size(c, l[i].off);
}

/* ---- nodes -------------------------------------------------------------- */

static gfn_status matmul(const run_ctx *x, const gfn_mnode *n)
{
	const gfn_mtensor *a = &x->m->tensors[n->in[0]];
	const gfn_mtensor *y = &x->m->tensors[n->out];
	loc la = where(x, n->in[0]), lb = where(x, n->in[1]),
	    lc = where(x, n->out);

	return gfn_backend_gemm(x->r->dev.ops, x->r->q, n->trans_b,
	                        gfn__mt_lines(a, x->rows), gfn__mt_last_dim(y),
	                        gfn__mt_last_dim(a), la.mem, la.off, lb.mem,
	                        lb.off, lc.mem, lc.off);
}

static gfn_status unary(const run_ctx *x, const gfn_mnode *n, int kind)
{
	int t[2] = {n->in[0], n->out};
	size_t all = x->rows * x->m->tensors[n->in[0]].numel;
	call c;

	with_tensors(x, &c, t, 2);
	arg_size(&c, (size_t)kind);
	arg_size(&c, all);
	return go(x, GK_UNARY, &c, all);
}

static gfn_status bias(const run_ctx *x, const gfn_mnode *n)
{
	int t[3] = {n->in[0], n->in[1], n->out};
	size_t all = x->rows * x->m->tensors[n->in[0]].numel;
	call c;

	with_tensors(x, &c, t, 3);
	arg_size(&c, n->c);
	arg_size(&c, n->inner);
	arg_size(&c, all);
	return go(x, GK_BIAS, &c, all);
}

/* Softmax and argmax: one work-item per row of the last axis. */
static gfn_status per_row(const run_ctx *x, const gfn_mnode *n, int k)
{
	const gfn_mtensor *a = &x->m->tensors[n->in[0]];
	int t[2] = {n->in[0], n->out};
	size_t rows = gfn__mt_lines(a, x->rows);
	call c;

	with_tensors(x, &c, t, 2);
	arg_size(&c, gfn__mt_last_dim(a));
	arg_size(&c, rows);
	return go(x, k, &c, rows);
}

static gfn_status layernorm(const run_ctx *x, const gfn_mnode *n)
{
	const gfn_mtensor *a = &x->m->tensors[n->in[0]];
	int t[4] = {n->in[0], n->in[1], n->in[2], n->out};
	size_t rows = gfn__mt_lines(a, x->rows);
	call c;

	with_tensors(x, &c, t, 4);
	arg_size(&c, gfn__mt_last_dim(a));
	arg_size(&c, rows);
	arg_f32(&c, n->eps);
	return go(x, GK_LAYERNORM, &c, rows);
}

static void arg_geom(call *c, const gfn_conv_geom *g)
{
	arg_size(c, g->c);
	arg_size(c, g->h);
	arg_size(c, g->w);
	arg_size(c, g->kh);
	arg_size(c, g->kw);
	arg_size(c, g->stride);
	arg_size(c, g->pad);
	arg_size(c, g->oh);
	arg_size(c, g->ow);
}

/* im2col of the whole batch into the conv space, one GEMM with the
   weights [oc, c*kh*kw], then [oc, n*p] reordered to [n, oc, p] + bias. */
static gfn_status conv2d(const run_ctx *x, const gfn_mnode *n)
{
	const gfn_conv_geom *g = &n->geom;
	size_t oc = (size_t)x->m->tensors[n->out].shape[0];
	size_t k = g->c * g->kh * g->kw, p = g->oh * g->ow, np = x->rows * p;
	size_t col = x->m->arena_row * x->rows, tmp = col + k * np;
	loc in = where(x, n->in[0]), w = where(x, n->in[1]);
	loc b = n->n_in > 2 ? where(x, n->in[2]) : (loc){x->arena, 0};
	loc out = where(x, n->out);
	gfn_status s;
	call c = {.nbuf = 0};

	arg_buf(&c, in.mem);
	arg_buf(&c, x->arena);
	arg_size(&c, in.off);
	arg_size(&c, col);
	arg_geom(&c, g);
	arg_size(&c, x->rows);
	s = go(x, GK_IM2COL, &c, k * np);
	if (s == GFN_OK)
		s = gfn_backend_gemm(x->r->dev.ops, x->r->q, 0, oc, np, k,
		                     w.mem, w.off, x->arena, col, x->arena,
		                     tmp);
	if (s != GFN_OK)
		return s;
	c.nbuf = c.npar = 0;
	arg_buf(&c, x->arena);
	arg_buf(&c, b.mem);
	arg_buf(&c, out.mem);
	arg_size(&c, tmp);
	arg_size(&c, b.off);
	arg_size(&c, out.off);
	arg_size(&c, oc);
	arg_size(&c, p);
	arg_size(&c, x->rows);
	arg_size(&c, n->n_in > 2);
	return go(x, GK_CONV_OUT, &c, oc * np);
}

static gfn_status pool(const run_ctx *x, const gfn_mnode *n, int is_max)
{
	const gfn_conv_geom *g = &n->geom;
	int t[2] = {n->in[0], n->out};
	size_t all = x->rows * g->c * g->oh * g->ow;
	call c;

	with_tensors(x, &c, t, 2);
	arg_geom(&c, g);
	arg_size(&c, x->rows);
	arg_size(&c, (size_t)is_max);
	return go(x, GK_POOL, &c, all);
}

static gfn_status embed(const run_ctx *x, const gfn_mnode *n)
{
	const gfn_mtensor *tab = &x->m->tensors[n->in[1]];
	int t[3] = {n->in[0], n->in[1], n->out};
	size_t ids = x->rows * x->m->tensors[n->in[0]].numel;
	size_t dim = (size_t)tab->shape[1];
	call c;

	with_tensors(x, &c, t, 3);
	arg_size(&c, (size_t)tab->shape[0]);
	arg_size(&c, dim);
	arg_size(&c, ids);
	return go(x, GK_EMBED, &c, ids * dim);
}

static gfn_status run_node(const run_ctx *x, const gfn_mnode *n)
{
	switch (n->op) {
	case GFN_OP_MATMUL:
		return matmul(x, n);
	case GFN_OP_BIAS_ADD:
		return bias(x, n);
	case GFN_OP_RELU:
		return unary(x, n, UN_RELU);
	case GFN_OP_GELU:
		return unary(x, n, UN_GELU);
	case GFN_OP_TANH:
		return unary(x, n, UN_TANH);
	case GFN_OP_SIGMOID:
		return unary(x, n, UN_SIGMOID);
	case GFN_OP_FLATTEN:
		return unary(x, n, UN_COPY);
	case GFN_OP_SOFTMAX:
		return per_row(x, n, GK_SOFTMAX);
	case GFN_OP_ARGMAX:
		return per_row(x, n, GK_ARGMAX);
	case GFN_OP_LAYERNORM:
		return layernorm(x, n);
	case GFN_OP_CONV2D:
		return conv2d(x, n);
	case GFN_OP_MAXPOOL2D:
		return pool(x, n, 1);
	case GFN_OP_AVGPOOL2D:
		return pool(x, n, 0);
	case GFN_OP_EMBEDDING:
		return embed(x, n);
	}
	return gfn__fail(GFN_EINVAL, "unknown op %d", (int)n->op);
}

/* ---- one run ------------------------------------------------------------ */

/* Enqueue every node of the graph; arg is the run_ctx. */
static gfn_status run_nodes(void *arg)
{
	const run_ctx *x = arg;
	gfn_status s = GFN_OK;

	for (size_t i = 0; i < x->m->n_nodes && s == GFN_OK; i++)
		s = run_node(x, &x->m->nodes[i]);
	return s;
}

#ifdef GFN_HAVE_CUDA
/* What a recorded graph depends on: the batch and every address. */
static size_t graph_key(const run_ctx *x, uint64_t *key)
{
	const gfn_kernel_args *a = x->r->args;
	size_t n = 0;

	key[n++] = x->rows;
	key[n++] = (uint64_t)(uintptr_t)x->weights->ptr;
	key[n++] = (uint64_t)(uintptr_t)x->arena->ptr;
	for (size_t i = 0; i < a->n_inputs; i++)
		key[n++] = (uint64_t)(uintptr_t)((const gfn_bmem *)a->inputs[i]
		                                         .data)
		                   ->ptr;
	for (size_t i = 0; i < a->n_outputs; i++)
		key[n++] = (uint64_t)(uintptr_t)((const gfn_bmem *)a->outputs[i]
		                                         .data)
		                   ->ptr;
	return n;
}
#endif

/* Ids of every embedding, read from the inputs in host memory: a bad id
   is a clear error before anything runs (the kernel cannot report one). */
static gfn_status check_ids(const gfn_model *m, const gfn_devrun *r,
                            size_t rows)
{
	for (size_t i = 0; i < m->n_nodes; i++) {
		const gfn_mnode *n = &m->nodes[i];
		const gfn_mtensor *t = &m->tensors[n->in[0]];
		const gfn_mtensor *tab = &m->tensors[n->in[1]];
		const int32_t *ids;

		if (n->op != GFN_OP_EMBEDDING)
			continue;
		ids = r->host_in[t->input].data;
		for (size_t k = 0; k < rows * t->numel; k++)
			if (ids[k] < 0 || ids[k] >= tab->shape[0])
				return gfn__fail(GFN_EINVAL,
				                 "embedding '%s': id %d at %zu "
				                 "outside 0..%lld",
				                 tab->name, (int)ids[k], k,
				                 (long long)tab->shape[0] - 1);
	}
	return GFN_OK;
}

/* After the engine's sync: the launches reading the weights are done. */
static void run_done(void *arg, gfn_status s)
{
	gfn_model_dk *dk = arg;

	(void)s;
	gfn__warm_release(dk->m, dk->dev);
}

/* The scratch block of this run, held by the engine until its sync. */
static gfn_status scratch(const gfn_model *m, gfn_devrun *r, size_t rows,
                          const gfn_bmem **out)
{
	size_t floats = (m->arena_row + m->scratch) * rows;
	gfn_dblock *b;
	gfn_status s;

	if (rows && m->arena_row + m->scratch > SIZE_MAX / 8 / rows)
		return gfn__fail(GFN_ENOMEM, "batch of %zu too large", rows);
	s = gfn_devmem_alloc(r->pool, floats ? floats * sizeof(float) : 4, &b);
	if (s != GFN_OK)
		return s;
	r->hold[r->nhold++] = b;
	*out = &b->mem;
	return GFN_OK;
}

static gfn_status dev_run(void *user, gfn_devrun *r)
{
	gfn_model *m = user;
	run_ctx x = {.m = m, .r = r, .dk = m->dk[r->dev.device]};
	gfn_status s;
	int rc = 0;

	x.rows = r->args->n_inputs ? (size_t)r->args->inputs[0].shape[0] : 0;
	if (!x.dk)
		return gfn__fail(GFN_ESTATE, "%s: not prepared on device %d",
		                 m->name, r->dev.device);
	if (!x.rows)
		return GFN_OK; /* an empty batch: empty outputs */
	if ((s = check_ids(m, r, x.rows)) != GFN_OK ||
	    (s = scratch(m, r, x.rows, &x.arena)) != GFN_OK)
		return s;
	x.weights = gfn__warm_acquire_dev(m, &r->dev, r->q, &rc);
	if (!x.weights)
		return gfn__fail(GFN_ENOMEM,
		                 "%s: its weights do not fit on device %d%s",
		                 m->name, r->dev.device,
		                 rc == 3 ? " under the warm limit" : "");
	r->after = run_done;
	r->after_arg = x.dk;
#ifdef GFN_HAVE_CUDA
	if (x.dk->graphs) {
		uint64_t key[GFN_MGRAPH_KEY];
		size_t n = graph_key(&x, key);

		return gfn__mgraphs_run(x.dk->graphs, r->q, key, n, run_nodes,
		                        &x);
	}
#endif
	return run_nodes(&x);
}

const gfn_devfn gfn__model_devfn = {
        .backends = GFN_BACKEND_OPENCL | GFN_BACKEND_CUDA,
        .prepare = dev_prepare,
        .run = dev_run,
        .release = dev_release,
};
