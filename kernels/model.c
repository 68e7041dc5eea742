/*
 * model.c - models as functions (gfn/gfn_model.h): the runner of a checked
 * graph (model_graph.c, model_nodes.c build it) and its registration
 * through the public function API.
 *
 * A model's weights are read and converted to f32 once, when it is
 * registered, and every invocation reads them in place. Values between
 * nodes live in one scratch block per invocation, laid out at
 * registration; the nodes that make the function's outputs write straight
 * into the output objects.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gfn/gfn_model.h"
#include "kernels/model.h"
#include "runtime/util.h"

/* ---- running ------------------------------------------------------------- */

static int run_node(const gfn_model *m, const gfn_mnode *n, size_t rows,
                    void *const *p, float *scratch)
{
	const gfn_mtensor *x = &m->tensors[n->in[0]];
	const gfn_mtensor *y = &m->tensors[n->out];
	const float *a = p[n->in[0]], *b = n->n_in > 1 ? p[n->in[1]] : NULL;
	float *o = p[n->out];
	size_t all = rows * x->numel;

	switch (n->op) {
	case GFN_OP_MATMUL:
		gfn__op_matmul(a, b, o, gfn__mt_lines(x, rows),
		               gfn__mt_last_dim(y), gfn__mt_last_dim(x),
		               n->trans_b);
		break;
	case GFN_OP_BIAS_ADD:
		gfn__op_bias_add(a, b, o, rows * n->outer, n->c, n->inner);
		break;
	case GFN_OP_RELU:
		gfn__op_relu(a, o, all);
		break;
	case GFN_OP_GELU:
		gfn__op_gelu(a, o, all);
		break;
	case GFN_OP_TANH:
		gfn__op_tanh(a, o, all);
		break;
	case GFN_OP_SIGMOID:
		gfn__op_sigmoid(a, o, all);
		break;
	case GFN_OP_SOFTMAX:
		gfn__op_softmax(a, o, gfn__mt_lines(x, rows),
		                gfn__mt_last_dim(x));
		break;
	case GFN_OP_LAYERNORM:
		gfn__op_layernorm(a, b, p[n->in[2]], n->eps, o,
		                  gfn__mt_lines(x, rows), gfn__mt_last_dim(x));
		break;
	case GFN_OP_CONV2D:
		gfn__op_conv2d(a, b, n->n_in > 2 ? p[n->in[2]] : NULL, o, rows,
		               (size_t)y->shape[0], &n->geom, scratch);
		break;
	case GFN_OP_MAXPOOL2D:
		gfn__op_maxpool2d(a, o, rows, &n->geom);
		break;
	case GFN_OP_AVGPOOL2D:
		gfn__op_avgpool2d(a, o, rows, &n->geom);
		break;
	case GFN_OP_FLATTEN:
		memcpy(o, a, all * sizeof *o);
		break;
	case GFN_OP_EMBEDDING:
		return gfn__op_embedding(p[n->in[0]], b, o, all,
		                         (size_t)m->tensors[n->in[1]].shape[0],
		                         (size_t)m->tensors[n->in[1]].shape[1])
		               ? 2
		               : 0;
	case GFN_OP_ARGMAX:
		gfn__op_argmax(a, p[n->out], gfn__mt_lines(x, rows),
		               gfn__mt_last_dim(x));
		break;
	}
	return 0;
}

/* Where each tensor's memory is in this call. */
static void bind(const gfn_model *m, const float *w, size_t rows,
                 const void *const *in, void *const *out, float *arena,
                 void **p)
{
	for (size_t i = 0; i < m->n_tensors; i++) {
		const gfn_mtensor *t = &m->tensors[i];

		if (t->kind == GFN_MT_INPUT)
			p[i] = (void *)in[t->input]; /* read-only by the ops */
		else if (t->kind == GFN_MT_WEIGHT)
			p[i] = (void *)(w + t->weight_off);
		else if (t->output >= 0)
			p[i] = out[t->output];
		else
			p[i] = arena + t->arena_off * rows;
	}
}

/* Scratch memory of the calling thread, kept between invocations so that
   a warm model allocates nothing per call; freed when the thread ends. */
typedef struct scratch {
	size_t cap;         /* bytes of data */
	max_align_t data[]; /* the memory */
} scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_ok;

static void scratch_init(void)
{
	scratch_ok = pthread_key_create(&scratch_key, free) == 0;
}

static void *thread_scratch(size_t bytes)
{
	scratch *s;

	pthread_once(&scratch_once, scratch_init);
	if (!scratch_ok)
		return NULL;
	s = pthread_getspecific(scratch_key);
	if (s && s->cap >= bytes)
		return s->data;
	free(s);
	pthread_setspecific(scratch_key, NULL);
	bytes += bytes / 2; /* grow geometrically: fewer reallocations */
	s = malloc(sizeof *s + bytes);
	if (!s || pthread_setspecific(scratch_key, s) != 0) {
		free(s);
		return NULL;
	}
	s->cap = bytes;
	return s->data;
}

int gfn__model_run(const gfn_model *m, const float *w, size_t rows,
                   const void *const *in, void *const *out)
{
	size_t ptrs = m->n_tensors * sizeof(void *), floats;
	void **p;
	float *arena;
	int rc = 0;

	if (rows && m->arena_row + m->scratch > SIZE_MAX / 8 / rows)
		return 1;
	floats = (m->arena_row + m->scratch) * rows;
	p = thread_scratch(ptrs + floats * sizeof(float) + 1);
	if (!p)
		return 1;
	arena = (float *)((char *)p + ptrs); /* ptrs keeps float alignment */
	bind(m, w, rows, in, out, arena, p);
	for (size_t i = 0; i < m->n_nodes && rc == 0; i++) {
		const gfn_mnode *n = &m->nodes[i];

		if (n->relu_next) { /* this bias_add and the relu after it */
			gfn__op_bias_relu(p[n->in[0]], p[n->in[1]],
			                  p[m->nodes[++i].out], rows * n->outer,
			                  n->c, n->inner);
			continue;
		}
		rc = run_node(m, n, rows, p, arena + m->arena_row * rows);
	}
	return rc;
}

static int model_cpu(const gfn_kernel_args *args, void *user)
{
	gfn_model *m = user;
	const void *in[GFN_MAX_INPUTS];
	void *out[GFN_MAX_OUTPUTS];
	const float *w;
	int rc = 0;

	for (size_t i = 0; i < args->n_inputs; i++)
		in[i] = args->inputs[i].data;
	for (size_t i = 0; i < args->n_outputs; i++)
		out[i] = args->outputs[i].data;
	w = gfn__warm_acquire(m, args->device, &rc);
	if (!w)
		return rc;
	/* The signature makes every input's first extent the batch. */
	rc = gfn__model_run(m, w, (size_t)args->inputs[0].shape[0], in, out);
	gfn__warm_release(m, args->device);
	return rc;
}

/* ---- registration -------------------------------------------------------- */

static void spec_of(const gfn_mtensor *t, gfn_tensor_spec *s)
{
	memset(s, 0, sizeof *s);
	s->name = t->name;
	s->dtype = t->dtype;
	s->ndim = t->ndim + 1;
	s->dims[0] = GFN_DIM_VAR(0); /* the batch, shared by all */
	for (int i = 0; i < t->ndim; i++)
		s->dims[i + 1] = t->shape[i];
}

#define GFN_MODEL_BATCH_MAX 32 /* invocations in one batched launch */

/* The engine's user_free: the function is gone, and so is every
   invocation of it. */
static void model_free(void *user)
{
	gfn_model *m = user;

	gfn__models_remove(m); /* still listed if never unregistered */
	gfn__warm_drop(m);
	gfn__model_free(m);
	free(m);
}

static gfn_status register_fn(gfn_engine *e, gfn_model *m)
{
	gfn_tensor_spec ins[GFN_MAX_INPUTS], outs[GFN_MAX_OUTPUTS];
	gfn_function_desc d = {.name = m->name,
	                       .n_inputs = m->n_inputs,
	                       .inputs = ins,
	                       .n_outputs = m->n_outputs,
	                       .outputs = outs,
	                       .cpu_fn = model_cpu,
	                       .user = m,
	                       .load_cost_ns = gfn__warm_cost_ns,
	                       /* Invocations waiting together run as one
	                          batched launch (dimension 0). */
	                       .batch_max = GFN_MODEL_BATCH_MAX,
	                       .user_free = model_free};

	for (size_t i = 0; i < m->n_inputs; i++)
		spec_of(&m->tensors[m->inputs[i]], &ins[i]);
	for (size_t i = 0; i < m->n_outputs; i++)
		spec_of(&m->tensors[m->outputs[i]], &outs[i]);
	/* The CPU runs it as cpu_fn; OpenCL and CUDA devices as a device
	   program (model_dev.c). */
	return gfn__function_register_dev(e, &d, &gfn__model_devfn, &m->fn);
}

static gfn_status read_manifest(const char *dir, char **text)
{
	char path[4096];
	size_t len;
	FILE *fp;

	if ((size_t)snprintf(path, sizeof path, "%s/model.json", dir) >=
	    sizeof path)
		return gfn__fail(GFN_EINVAL, "model path too long");
	fp = fopen(path, "rb");
	if (!fp)
		return gfn__fail(GFN_ENOENT, "%s cannot be opened", path);
	*text = malloc(GFN_MODEL_MAX_MANIFEST + 1);
	if (!*text) {
		fclose(fp);
		return gfn__fail(GFN_ENOMEM, "no memory for %s", path);
	}
	len = fread(*text, 1, GFN_MODEL_MAX_MANIFEST + 1, fp);
	fclose(fp);
	(*text)[len > GFN_MODEL_MAX_MANIFEST ? 0 : len] = '\0';
	if (len > GFN_MODEL_MAX_MANIFEST)
		return gfn__fail(GFN_EINVAL, "%s is over %u bytes", path,
		                 GFN_MODEL_MAX_MANIFEST);
	return GFN_OK;
}

/* Each device's memory, for the default limit of warm weights. */
static gfn_status device_memory(gfn_engine *e, gfn_model *m)
{
	gfn_device_info info;
	size_t n = 0;
	gfn_status s = gfn_device_count(e, &n);

	for (size_t d = 0; d < n && d < GFN_MODEL_MAX_DEVICES && s == GFN_OK;
	     d++) {
		s = gfn_device_get_info(e, d, &info);
		m->dev_memory[d] = (size_t)info.memory_bytes;
	}
	return s;
}

static gfn_status build(gfn_model *m, const char *dir)
{
	char *text = NULL;
	gfn_status s = read_manifest(dir, &text);

	if (s == GFN_OK)
		s = gfn__model_build(m, text, dir);
	free(text);
	return s;
}

gfn_status gfn_function_register_model(gfn_engine *e, const char *dir,
                                       const char *name, gfn_function *out)
{
	gfn_model *m;
	gfn_status s;

	if (!e || !dir || !name || !out)
		return gfn__fail(GFN_EINVAL, "NULL argument");
	if (!*name || strlen(name) >= sizeof m->name)
		return gfn__fail(GFN_EINVAL, "model name must be 1..63 chars");
	m = calloc(1, sizeof *m);
	if (!m)
		return gfn__fail(GFN_ENOMEM, "no memory for a model");
	strcpy(m->name, name);
	m->engine = e;
	s = build(m, dir);
	if (s == GFN_OK)
		s = device_memory(e, m);
	if (s == GFN_OK) {
		gfn__models_add(m); /* before its first invocation can run */
		s = register_fn(e, m);
		if (s != GFN_OK)
			gfn__models_remove(m);
	}
	if (s != GFN_OK) {
		gfn__model_free(m);
		free(m);
		return s;
	}
	*out = m->fn;
	return GFN_OK;
}

gfn_status gfn_model_unregister(gfn_engine *e, gfn_function fn)
{
	gfn_model *m = gfn__models_unlink(e, fn);

	if (!m)
		return gfn__fail(GFN_ENOENT,
		                 "function %u is not a model of "
		                 "this engine",
		                 fn.id);
	/* The engine frees m (model_free) after its last invocation. */
	return gfn_function_unregister(e, fn);
}
