/*
 * model_nodes.c - the nodes of a model manifest: each op's inputs,
 * attributes and output shape, checked once at registration (model.h).
 *
 * Shapes here are per batch row: a batch tensor of per-row shape [C,H,W]
 * is [rows,C,H,W] in a call. Weights have their whole shape.
 */
#include <cjson/cJSON.h>
#include <float.h>
#include <string.h>

#include "kernels/model.h"
#include "runtime/util.h"

/* What one op's checker fills in besides the node. */
typedef struct out_desc {
	gfn_dtype dtype;             /* of the output */
	int ndim;                    /* per row */
	int64_t shape[GFN_MAX_DIMS]; /* per row */
} out_desc;

typedef gfn_status (*infer_fn)(gfn_model *m, const cJSON *j, gfn_mnode *n,
                               out_desc *o);

static const gfn_mtensor *T(const gfn_model *m, int i)
{
	return &m->tensors[i];
}

/* ---- checks -------------------------------------------------------------- */

static gfn_status need_rows(const gfn_model *m, int i, gfn_dtype dt,
                            int min_dims)
{
	const gfn_mtensor *t = T(m, i);

	if (t->kind == GFN_MT_WEIGHT)
		return gfn__fail(GFN_EINVAL,
		                 "'%s' is a weight where batch rows "
		                 "are needed",
		                 t->name);
	if (t->dtype != dt)
		return gfn__fail(GFN_EINVAL, "'%s' is %s, %s needed", t->name,
		                 gfn_dtype_name(t->dtype), gfn_dtype_name(dt));
	if (t->ndim < min_dims)
		return gfn__fail(GFN_EINVAL,
		                 "'%s' has %d dims per row, %d "
		                 "needed",
		                 t->name, t->ndim, min_dims);
	return GFN_OK;
}

static gfn_status need_weight(const gfn_model *m, int i, int ndim)
{
	const gfn_mtensor *t = T(m, i);

	if (t->kind != GFN_MT_WEIGHT)
		return gfn__fail(GFN_EINVAL, "'%s' is not a weight", t->name);
	if (ndim >= 0 && t->ndim != ndim)
		return gfn__fail(GFN_EINVAL,
		                 "weight '%s' has %d dims, %d "
		                 "needed",
		                 t->name, t->ndim, ndim);
	return GFN_OK;
}

static gfn_status need_len(const gfn_model *m, int i, int64_t len)
{
	if ((int64_t)T(m, i)->numel != len)
		return gfn__fail(GFN_EINVAL,
		                 "weight '%s' has %zu elements, "
		                 "%lld needed",
		                 T(m, i)->name, T(m, i)->numel, (long long)len);
	return GFN_OK;
}

/* An integer attribute in lo..hi, def when absent. */
static gfn_status attr_int(const cJSON *j, const char *key, int64_t def,
                           int64_t lo, int64_t hi, int64_t *out)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, key);
	double v;

	*out = def;
	if (!a)
		return GFN_OK;
	v = cJSON_IsNumber(a) ? a->valuedouble : (double)lo - 1.0;
	if (!(v >= (double)lo && v <= (double)hi) || v != (double)(int64_t)v)
		return gfn__fail(GFN_EINVAL,
		                 "attribute %s is not an integer "
		                 "in %lld..%lld",
		                 key, (long long)lo, (long long)hi);
	*out = (int64_t)v;
	return GFN_OK;
}

static void same_shape(const gfn_mtensor *t, out_desc *o)
{
	o->dtype = t->dtype;
	o->ndim = t->ndim;
	memcpy(o->shape, t->shape, sizeof o->shape);
}

/* ---- ops ----------------------------------------------------------------- */

static gfn_status infer_matmul(gfn_model *m, const cJSON *j, gfn_mnode *n,
                               out_desc *o)
{
	const cJSON *tb = cJSON_GetObjectItemCaseSensitive(j, "transpose_b");
	const gfn_mtensor *a = T(m, n->in[0]), *w = T(m, n->in[1]);
	gfn_status s = need_rows(m, n->in[0], GFN_F32, 1);
	int64_t k;

	if (s == GFN_OK)
		s = need_weight(m, n->in[1], 2);
	if (s != GFN_OK)
		return s;
	n->trans_b = cJSON_IsTrue(tb);
	k = a->shape[a->ndim - 1];
	if (w->shape[n->trans_b ? 1 : 0] != k)
		return gfn__fail(GFN_EINVAL,
		                 "matmul: '%s' has K = %lld but "
		                 "'%s' is [%lld, %lld]",
		                 a->name, (long long)k, w->name,
		                 (long long)w->shape[0],
		                 (long long)w->shape[1]);
	same_shape(a, o);
	o->shape[o->ndim - 1] = w->shape[n->trans_b ? 0 : 1];
	return GFN_OK;
}

static gfn_status infer_bias(gfn_model *m, const cJSON *j, gfn_mnode *n,
                             out_desc *o)
{
	const gfn_mtensor *x = T(m, n->in[0]);
	gfn_status s = need_rows(m, n->in[0], GFN_F32, 1);
	int64_t axis;

	if (s == GFN_OK)
		s = need_weight(m, n->in[1], -1);
	if (s == GFN_OK)
		s = attr_int(j, "axis", -1, -x->ndim, x->ndim - 1, &axis);
	if (s != GFN_OK)
		return s;
	axis = axis < 0 ? axis + x->ndim : axis;
	n->outer = n->inner = 1;
	for (int i = 0; i < x->ndim; i++)
		if (i < axis)
			n->outer *= (size_t)x->shape[i];
		else if (i > axis)
			n->inner *= (size_t)x->shape[i];
	n->c = (size_t)x->shape[axis];
	same_shape(x, o);
	return need_len(m, n->in[1], x->shape[axis]);
}

static gfn_status infer_map(gfn_model *m, const cJSON *j, gfn_mnode *n,
                            out_desc *o)
{
	(void)j;
	same_shape(T(m, n->in[0]), o);
	return need_rows(m, n->in[0], GFN_F32, 0);
}

static gfn_status infer_softmax(gfn_model *m, const cJSON *j, gfn_mnode *n,
                                out_desc *o)
{
	(void)j;
	same_shape(T(m, n->in[0]), o);
	return need_rows(m, n->in[0], GFN_F32, 1);
}

static gfn_status infer_layernorm(gfn_model *m, const cJSON *j, gfn_mnode *n,
                                  out_desc *o)
{
	const gfn_mtensor *x = T(m, n->in[0]);
	const cJSON *eps = cJSON_GetObjectItemCaseSensitive(j, "eps");
	gfn_status s = need_rows(m, n->in[0], GFN_F32, 1);
	int64_t c = x->ndim ? x->shape[x->ndim - 1] : 0;

	for (int i = 1; i < 3 && s == GFN_OK; i++)
		s = need_weight(m, n->in[i], -1);
	for (int i = 1; i < 3 && s == GFN_OK; i++)
		s = need_len(m, n->in[i], c);
	if (s != GFN_OK)
		return s;
	if (n->n_in != 3)
		return gfn__fail(GFN_EINVAL, "layernorm needs x, gamma, beta");
	n->eps = 1e-5f;
	if (eps && (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0.0) ||
	            eps->valuedouble > 1.0))
		return gfn__fail(GFN_EINVAL, "layernorm: eps not in (0, 1]");
	if (eps)
		n->eps = (float)eps->valuedouble;
	same_shape(x, o);
	return GFN_OK;
}

/* x[C,H,W] rows: fill the geometry's input part from x. */
static gfn_status image_geom(gfn_model *m, int i, gfn_conv_geom *g)
{
	const gfn_mtensor *x = T(m, i);
	gfn_status s = need_rows(m, i, GFN_F32, 3);

	if (s == GFN_OK && x->ndim != 3)
		s = gfn__fail(GFN_EINVAL, "'%s' is not [C,H,W] per row",
		              x->name);
	if (s != GFN_OK)
		return s;
	memset(g, 0, sizeof *g);
	g->c = (size_t)x->shape[0];
	g->h = (size_t)x->shape[1];
	g->w = (size_t)x->shape[2];
	return GFN_OK;
}

static gfn_status window(const cJSON *j, int64_t kdef, gfn_conv_geom *g,
                         const char *op)
{
	int64_t v;
	gfn_status s = attr_int(j, "stride", kdef, 1, 1 << 16, &v);

	g->stride = (size_t)v;
	if (s == GFN_OK)
		s = attr_int(j, "pad", 0, 0, 1 << 16, &v);
	g->pad = (size_t)v;
	if (s == GFN_OK && !gfn__conv_geom_finish(g))
		s = gfn__fail(GFN_EINVAL, "%s: the window does not fit", op);
	return s;
}

static gfn_status infer_conv(gfn_model *m, const cJSON *j, gfn_mnode *n,
                             out_desc *o)
{
	const gfn_mtensor *w = T(m, n->in[1]);
	gfn_conv_geom *g = &n->geom;
	gfn_status s = image_geom(m, n->in[0], g);

	if (s == GFN_OK)
		s = need_weight(m, n->in[1], 4);
	if (s == GFN_OK && (size_t)w->shape[1] != g->c)
		s = gfn__fail(GFN_EINVAL,
		              "conv2d: '%s' has %lld input "
		              "channels, the image %zu",
		              w->name, (long long)w->shape[1], g->c);
	if (s == GFN_OK && n->n_in == 3)
		s = need_len(m, n->in[2], w->shape[0]);
	if (s != GFN_OK)
		return s;
	g->kh = (size_t)w->shape[2];
	g->kw = (size_t)w->shape[3];
	s = window(j, 1, g, "conv2d");
	if (s != GFN_OK)
		return s;
	if (gfn__op_conv2d_scratch(g, (size_t)w->shape[0]) > m->scratch)
		m->scratch = gfn__op_conv2d_scratch(g, (size_t)w->shape[0]);
	*o = (out_desc){
	        GFN_F32, 3, {w->shape[0], (int64_t)g->oh, (int64_t)g->ow}};
	return GFN_OK;
}

static gfn_status infer_pool(gfn_model *m, const cJSON *j, gfn_mnode *n,
                             out_desc *o)
{
	gfn_conv_geom *g = &n->geom;
	gfn_status s = image_geom(m, n->in[0], g);
	int64_t k;

	if (s == GFN_OK)
		s = attr_int(j, "kernel", 0, 1, 1 << 16, &k);
	if (s == GFN_OK && k == 0)
		s = gfn__fail(GFN_EINVAL, "pooling needs \"kernel\"");
	if (s != GFN_OK)
		return s;
	g->kh = g->kw = (size_t)k;
	s = window(j, k, g, "pooling");
	if (s == GFN_OK && g->pad >= g->kh)
		s = gfn__fail(GFN_EINVAL, "pooling: pad must be below kernel");
	*o = (out_desc){
	        GFN_F32, 3, {(int64_t)g->c, (int64_t)g->oh, (int64_t)g->ow}};
	return s;
}

static gfn_status infer_flatten(gfn_model *m, const cJSON *j, gfn_mnode *n,
                                out_desc *o)
{
	(void)j;
	*o = (out_desc){GFN_F32, 1, {(int64_t)T(m, n->in[0])->numel}};
	return need_rows(m, n->in[0], GFN_F32, 0);
}

static gfn_status infer_embedding(gfn_model *m, const cJSON *j, gfn_mnode *n,
                                  out_desc *o)
{
	const gfn_mtensor *ids = T(m, n->in[0]), *tab = T(m, n->in[1]);
	gfn_status s = need_rows(m, n->in[0], GFN_I32, 0);

	(void)j;
	if (s == GFN_OK)
		s = need_weight(m, n->in[1], 2);
	if (s != GFN_OK)
		return s;
	same_shape(ids, o);
	o->dtype = GFN_F32;
	o->shape[o->ndim++] = tab->shape[1];
	return GFN_OK;
}

static gfn_status infer_argmax(gfn_model *m, const cJSON *j, gfn_mnode *n,
                               out_desc *o)
{
	(void)j;
	same_shape(T(m, n->in[0]), o);
	o->dtype = GFN_I32;
	o->ndim--;
	return need_rows(m, n->in[0], GFN_F32, 1);
}

/* ---- the table ----------------------------------------------------------- */

typedef struct op_info {
	const char *name; /* in the manifest */
	gfn_op op;        /* in the graph */
	int min_in;       /* inputs it needs */
	int max_in;       /* inputs it takes */
	infer_fn infer;   /* its checks and output shape */
} op_info;

static const op_info ops[] = {
        {"matmul", GFN_OP_MATMUL, 2, 2, infer_matmul},
        {"bias_add", GFN_OP_BIAS_ADD, 2, 2, infer_bias},
        {"relu", GFN_OP_RELU, 1, 1, infer_map},
        {"gelu", GFN_OP_GELU, 1, 1, infer_map},
        {"tanh", GFN_OP_TANH, 1, 1, infer_map},
        {"sigmoid", GFN_OP_SIGMOID, 1, 1, infer_map},
        {"softmax", GFN_OP_SOFTMAX, 1, 1, infer_softmax},
        {"layernorm", GFN_OP_LAYERNORM, 3, 3, infer_layernorm},
        {"conv2d", GFN_OP_CONV2D, 2, 3, infer_conv},
        {"maxpool2d", GFN_OP_MAXPOOL2D, 1, 1, infer_pool},
        {"avgpool2d", GFN_OP_AVGPOOL2D, 1, 1, infer_pool},
        {"flatten", GFN_OP_FLATTEN, 1, 1, infer_flatten},
        {"embedding", GFN_OP_EMBEDDING, 2, 2, infer_embedding},
        {"argmax", GFN_OP_ARGMAX, 1, 1, infer_argmax},
};

static const op_info *op_named(const char *name)
{
	for (size_t i = 0; name && i < sizeof ops / sizeof ops[0]; i++)
		if (!strcmp(ops[i].name, name))
			return &ops[i];
	return NULL;
}

static gfn_status node_inputs(const gfn_model *m, const cJSON *ins,
                              const op_info *op, gfn_mnode *n)
{
	const cJSON *x;

	n->n_in = cJSON_GetArraySize(ins);
	if (!cJSON_IsArray(ins) || n->n_in < op->min_in || n->n_in > op->max_in)
		return gfn__fail(GFN_EINVAL, "%s takes %d..%d inputs", op->name,
		                 op->min_in, op->max_in);
	n->n_in = 0;
	cJSON_ArrayForEach(x, ins)
	{
		const char *name = cJSON_GetStringValue(x);
		int i = name ? gfn__model_find(m, name) : -1;

		if (i < 0)
			return gfn__fail(GFN_EINVAL, "%s: no tensor '%s'",
			                 op->name, name ? name : "?");
		n->in[n->n_in++] = i;
	}
	return GFN_OK;
}

static gfn_status parse_node(gfn_model *m, const cJSON *j, gfn_mnode *n)
{
	const op_info *op = op_named(cJSON_GetStringValue(
	        cJSON_GetObjectItemCaseSensitive(j, "op")));
	const char *name = cJSON_GetStringValue(
	        cJSON_GetObjectItemCaseSensitive(j, "output"));
	out_desc o;
	gfn_status s;

	if (!op)
		return gfn__fail(GFN_EINVAL, "unknown or missing \"op\"");
	if (!name || !*name)
		return gfn__fail(GFN_EINVAL, "%s has no \"output\"", op->name);
	n->op = op->op;
	s = node_inputs(m, cJSON_GetObjectItemCaseSensitive(j, "inputs"), op,
	                n);
	if (s == GFN_OK)
		s = op->infer(m, j, n, &o);
	if (s == GFN_OK && o.ndim > GFN_MAX_DIMS - 1)
		s = gfn__fail(GFN_EINVAL, "%s: too many dims", op->name);
	if (s == GFN_OK)
		s = gfn__model_add(m, name, GFN_MT_VALUE, o.dtype, o.ndim,
		                   o.shape, &n->out);
	if (s != GFN_OK)
		return gfn__model_prefix(s, "node", name);
	return GFN_OK;
}

gfn_status gfn__model_parse_nodes(gfn_model *m, const cJSON *root)
{
	const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(root, "nodes");
	const cJSON *j;
	gfn_status s;

	if (!cJSON_IsArray(nodes) || cJSON_GetArraySize(nodes) < 1 ||
	    cJSON_GetArraySize(nodes) > GFN_MODEL_MAX_NODES)
		return gfn__fail(GFN_EINVAL, "\"nodes\" must list 1..%d nodes",
		                 GFN_MODEL_MAX_NODES);
	cJSON_ArrayForEach(j, nodes)
	{
		s = parse_node(m, j, &m->nodes[m->n_nodes]);
		if (s != GFN_OK)
			return s;
		m->n_nodes++;
	}
	return GFN_OK;
}
