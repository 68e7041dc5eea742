/*
 * model_graph.c - a model's manifest to a checked graph (model.h).
 *
 * Everything a manifest says is checked here, once, at registration: names
 * resolve, each op gets the dtypes and shapes it needs, and every output
 * shape is known. The runner (model.c) then trusts the graph and only
 * looks at the batch size of each call.
 */
#include "kernels/model.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/safetensors.h"
#include "runtime/util.h"

/* Extents above this are refused: products of a few stay far from
   overflow in size_t. */
#define MAX_EXTENT ((int64_t)1 << 24)
#define MAX_ROW_ELEMS ((size_t)1 << 28)

gfn_status gfn__model_prefix(gfn_status s, const char *what, const char *name)
{
	char inner[256];

	/* The detail is formatted into the buffer it is read from: copy. */
	snprintf(inner, sizeof inner, "%s", gfn_error_detail());
	return gfn__fail(s, "%s '%s': %s", what, name, inner);
}

/* ---- tensors ------------------------------------------------------------- */

int gfn__model_find(const gfn_model *m, const char *name)
{
	for (size_t i = 0; i < m->n_tensors; i++)
		if (!strcmp(m->tensors[i].name, name))
			return (int)i;
	return -1;
}

static gfn_status numel_of(int ndim, const int64_t *shape, size_t *n)
{
	size_t p = 1;

	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 1 || shape[i] > MAX_EXTENT)
			return gfn__fail(
			        GFN_EINVAL, "extent %lld outside 1..%lld",
			        (long long)shape[i], (long long)MAX_EXTENT);
		p *= (size_t)shape[i];
		if (p > MAX_ROW_ELEMS)
			return gfn__fail(GFN_EINVAL, "tensor too large");
	}
	*n = p;
	return GFN_OK;
}

gfn_status gfn__model_add(gfn_model *m, const char *name, gfn_mtensor_kind kind,
                          gfn_dtype dt, int ndim, const int64_t *shape,
                          int *idx)
{
	gfn_mtensor *t;
	gfn_status s;

	if (gfn__model_find(m, name) >= 0)
		return gfn__fail(GFN_EINVAL, "tensor '%s' is defined twice",
		                 name);
	if (m->n_tensors == GFN_MODEL_MAX_TENSORS)
		return gfn__fail(GFN_EINVAL, "more than %d tensors",
		                 GFN_MODEL_MAX_TENSORS);
	t = &m->tensors[m->n_tensors];
	memset(t, 0, sizeof *t);
	t->kind = kind;
	t->dtype = dt;
	t->ndim = ndim;
	t->input = t->output = -1;
	memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
	s = kind == GFN_MT_WEIGHT ? GFN_OK : numel_of(ndim, shape, &t->numel);
	if (s != GFN_OK)
		return gfn__model_prefix(s, "tensor", name);
	t->name = strdup(name);
	if (!t->name)
		return gfn__fail(GFN_ENOMEM, "no memory for a name");
	*idx = (int)m->n_tensors++;
	return GFN_OK;
}

/* ---- weights ------------------------------------------------------------- */

static gfn_status add_weights(gfn_model *m, const gfn_st_file *f)
{
	size_t total = 0, at = 0;
	gfn_status s;
	int idx;

	for (size_t i = 0; i < f->n; i++)
		total += f->tensors[i].count; /* each fits: checked by parse */
	m->weights = malloc((total ? total : 1) * sizeof(float));
	if (!m->weights)
		return gfn__fail(GFN_ENOMEM, "no memory for %zu weights",
		                 total);
	for (size_t i = 0; i < f->n; i++) {
		const gfn_st_tensor *w = &f->tensors[i];

		s = gfn__model_add(m, w->name, GFN_MT_WEIGHT, GFN_F32, w->ndim,
		                   w->shape, &idx);
		if (s != GFN_OK)
			return s;
		gfn__st_read_f32(f, w, m->weights + at);
		m->tensors[idx].weight_off = at;
		m->tensors[idx].numel = w->count;
		at += w->count;
	}
	m->n_weights = total;
	return GFN_OK;
}

static gfn_status load_weights(gfn_model *m, const cJSON *root, const char *dir)
{
	const char *file = cJSON_GetStringValue(
	        cJSON_GetObjectItemCaseSensitive(root, "weights"));
	char path[4096];
	gfn_st_file f;
	gfn_status s;

	if (!file || !*file || strchr(file, '/'))
		return gfn__fail(GFN_EINVAL, "\"weights\" must name a file in "
		                             "the model directory");
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >=
	    sizeof path)
		return gfn__fail(GFN_EINVAL, "model path too long");
	s = gfn__st_open(path, &f);
	if (s != GFN_OK)
		return s;
	s = add_weights(m, &f);
	gfn__st_close(&f);
	return s;
}

/* ---- inputs -------------------------------------------------------------- */

static gfn_status parse_dtype(const cJSON *j, gfn_dtype *dt)
{
	const char *s = cJSON_GetStringValue(j);

	if (!s || !strcmp(s, "f32"))
		*dt = GFN_F32; /* f32 unless said otherwise */
	else if (!strcmp(s, "i32"))
		*dt = GFN_I32;
	else
		return gfn__fail(GFN_EINVAL, "input dtype must be f32 or i32");
	return GFN_OK;
}

static int exact_int(const cJSON *j, int64_t lo, int64_t hi, int64_t *out)
{
	double v;

	if (!cJSON_IsNumber(j))
		return 0;
	v = j->valuedouble;
	if (!(v >= (double)lo && v <= (double)hi) || v != (double)(int64_t)v)
		return 0;
	*out = (int64_t)v;
	return 1;
}

/* "shape": ["batch", d1, d2, ...]: the per-row shape is d1... */
static gfn_status parse_row_shape(const cJSON *j, int *ndim, int64_t *shape)
{
	int n = cJSON_GetArraySize(j), i = 0;
	const cJSON *d;

	if (!cJSON_IsArray(j) || n < 1 || n > GFN_MAX_DIMS)
		return gfn__fail(GFN_EINVAL,
		                 "input shape must be an array of "
		                 "1..%d extents",
		                 GFN_MAX_DIMS);
	d = cJSON_GetArrayItem(j, 0);
	if (!cJSON_IsString(d) || strcmp(d->valuestring, "batch"))
		return gfn__fail(GFN_EINVAL, "an input's first extent must be "
		                             "\"batch\"");
	cJSON_ArrayForEach(d, j)
	{
		if (i > 0 && !exact_int(d, 1, MAX_EXTENT, &shape[i - 1]))
			return gfn__fail(GFN_EINVAL,
			                 "input extent %d is not "
			                 "an integer in 1..%lld",
			                 i, (long long)MAX_EXTENT);
		i++;
	}
	*ndim = n - 1;
	return GFN_OK;
}

static gfn_status parse_input(gfn_model *m, const cJSON *j)
{
	const char *name = cJSON_GetStringValue(
	        cJSON_GetObjectItemCaseSensitive(j, "name"));
	int64_t shape[GFN_MAX_DIMS];
	gfn_dtype dt = GFN_F32;
	gfn_status s;
	int ndim = 0, idx;

	if (!name || !*name)
		return gfn__fail(GFN_EINVAL, "an input has no name");
	s = parse_dtype(cJSON_GetObjectItemCaseSensitive(j, "dtype"), &dt);
	if (s == GFN_OK)
		s = parse_row_shape(
		        cJSON_GetObjectItemCaseSensitive(j, "shape"), &ndim,
		        shape);
	if (s == GFN_OK)
		s = gfn__model_add(m, name, GFN_MT_INPUT, dt, ndim, shape,
		                   &idx);
	if (s != GFN_OK)
		return gfn__model_prefix(s, "input", name);
	m->tensors[idx].input = (int)m->n_inputs;
	m->inputs[m->n_inputs++] = idx;
	return GFN_OK;
}

static gfn_status parse_inputs(gfn_model *m, const cJSON *root)
{
	const cJSON *ins = cJSON_GetObjectItemCaseSensitive(root, "inputs"), *j;
	gfn_status s;

	if (!cJSON_IsArray(ins) || cJSON_GetArraySize(ins) < 1 ||
	    cJSON_GetArraySize(ins) > GFN_MAX_INPUTS)
		return gfn__fail(GFN_EINVAL,
		                 "\"inputs\" must list 1..%d inputs",
		                 GFN_MAX_INPUTS);
	cJSON_ArrayForEach(j, ins)
	{
		s = parse_input(m, j);
		if (s != GFN_OK)
			return s;
	}
	return GFN_OK;
}

/* ---- outputs and scratch ------------------------------------------------- */

static gfn_status parse_outputs(gfn_model *m, const cJSON *root)
{
	const cJSON *outs = cJSON_GetObjectItemCaseSensitive(root, "outputs");
	const cJSON *j;
	int idx;

	if (!cJSON_IsArray(outs) || cJSON_GetArraySize(outs) < 1 ||
	    cJSON_GetArraySize(outs) > GFN_MAX_OUTPUTS)
		return gfn__fail(GFN_EINVAL,
		                 "\"outputs\" must list 1..%d names",
		                 GFN_MAX_OUTPUTS);
	cJSON_ArrayForEach(j, outs)
	{
		const char *name = cJSON_GetStringValue(j);

		idx = name ? gfn__model_find(m, name) : -1;
		if (idx < 0 || m->tensors[idx].kind != GFN_MT_VALUE)
			return gfn__fail(GFN_EINVAL,
			                 "output '%s' is not made "
			                 "by a node",
			                 name ? name : "?");
		if (m->tensors[idx].output >= 0)
			return gfn__fail(GFN_EINVAL, "output '%s' listed twice",
			                 name);
		m->tensors[idx].output = (int)m->n_outputs;
		m->outputs[m->n_outputs++] = idx;
	}
	return GFN_OK;
}

/* Nodes reading tensor t. */
static int readers(const gfn_model *m, int t)
{
	int n = 0;

	for (size_t i = 0; i < m->n_nodes; i++)
		for (int k = 0; k < m->nodes[i].n_in; k++)
			n += m->nodes[i].in[k] == t;
	return n;
}

/* A bias_add followed by the relu that alone reads its result (a value
   no one else sees): one pass instead of two over the batch. */
static void mark_fusions(gfn_model *m)
{
	for (size_t i = 0; i + 1 < m->n_nodes; i++) {
		gfn_mnode *n = &m->nodes[i];
		const gfn_mnode *r = &m->nodes[i + 1];

		n->relu_next = n->op == GFN_OP_BIAS_ADD &&
		               r->op == GFN_OP_RELU && r->in[0] == n->out &&
		               m->tensors[n->out].output < 0 &&
		               readers(m, n->out) == 1;
	}
}

/* Values that are not outputs live in one scratch arena per call. */
static void layout_arena(gfn_model *m)
{
	m->arena_row = 0;
	for (size_t i = 0; i < m->n_tensors; i++) {
		gfn_mtensor *t = &m->tensors[i];

		if (t->kind != GFN_MT_VALUE || t->output >= 0)
			continue;
		t->arena_off = m->arena_row;
		m->arena_row += t->numel;
	}
}

/* ---- build --------------------------------------------------------------- */

static gfn_status build_root(gfn_model *m, const cJSON *root, const char *dir)
{
	const char *fmt = cJSON_GetStringValue(
	        cJSON_GetObjectItemCaseSensitive(root, "format"));
	gfn_status s;

	if (!fmt || strcmp(fmt, "gfn-model/1"))
		return gfn__fail(GFN_EINVAL, "\"format\" is not "
		                             "\"gfn-model/1\"");
	s = load_weights(m, root, dir);
	if (s == GFN_OK)
		s = parse_inputs(m, root);
	if (s == GFN_OK)
		s = gfn__model_parse_nodes(m, root);
	if (s == GFN_OK)
		s = parse_outputs(m, root);
	if (s == GFN_OK)
		layout_arena(m);
	if (s == GFN_OK)
		mark_fusions(m);
	return s;
}

gfn_status gfn__model_build(gfn_model *m, const char *json, const char *dir)
{
	cJSON *root;
	gfn_status s;

	m->tensors = calloc(GFN_MODEL_MAX_TENSORS, sizeof *m->tensors);
	m->nodes = calloc(GFN_MODEL_MAX_NODES, sizeof *m->nodes);
	if (!m->tensors || !m->nodes)
		return gfn__fail(GFN_ENOMEM, "no memory for a model graph");
	root = cJSON_ParseWithLength(json, strlen(json));
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return gfn__fail(GFN_EINVAL, "model.json is not a JSON object");
	}
	s = build_root(m, root, dir);
	cJSON_Delete(root);
	return s;
}

void gfn__model_free(gfn_model *m)
{
	for (size_t i = 0; m->tensors && i < m->n_tensors; i++)
		free(m->tensors[i].name);
	free(m->tensors);
	free(m->nodes);
	free(m->weights);
	m->tensors = NULL;
	m->nodes = NULL;
	m->weights = NULL;
	m->n_tensors = m->n_nodes = 0;
}
