/*
 * gfnd_fns.c - the functions gfnd serves, and how clients register more.
 *
 * The public API has no way to list an engine's functions, and invoking
 * needs each parameter's type to fill a gfn_scalar from a msgpack number,
 * so gfnd keeps its own record of every function it registered.
 */
#include "gfnd.h"

#include <gfn/gfn_builtins.h>
#include <gfn/gfn_model.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The built-ins, as gfn_builtins.h lists them. */
static const struct {
	const char *name; /* registered name */
	unsigned n_in;    /* inputs */
	unsigned n_par;   /* params (all f32) */
} builtins[] = {
        {"gfn.vadd", 2, 0}, {"gfn.saxpy", 2, 1}, {"gfn.relu", 1, 0},
        {"gfn.gelu", 1, 0}, {"gfn.tanh", 1, 0},  {"gfn.sigmoid", 1, 0},
        {"gfn.sum", 1, 0},
};

/* Record fn under d->lock; GFN_ENOMEM when the table is full. */
static gfn_status fns_add(gfnd *d, const gfnd_fn *fn)
{
	gfn_status st = GFN_ENOMEM;

	pthread_mutex_lock(&d->lock);
	if (d->n_fns < GFND_MAX_FUNCTIONS) {
		d->fns[d->n_fns++] = *fn;
		st = GFN_OK;
	}
	pthread_mutex_unlock(&d->lock);
	return st;
}

gfn_status gfnd_fns_add_builtins(gfnd *d)
{
	gfn_status st = gfn_builtins_register(d->e);

	if (st != GFN_OK)
		return st;
	for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++) {
		gfnd_fn fn = {.n_inputs = builtins[i].n_in,
		              .n_outputs = 1,
		              .n_params = builtins[i].n_par};

		snprintf(fn.name, sizeof fn.name, "%s", builtins[i].name);
		snprintf(fn.kind, sizeof fn.kind, "builtin");
		for (unsigned p = 0; p < fn.n_params; p++)
			fn.param_types[p] = GFN_PARAM_F32;
		st = gfn_function_find(d->e, fn.name, &fn.id);
		if (st == GFN_OK)
			st = fns_add(d, &fn);
		if (st != GFN_OK)
			return st;
	}
	return GFN_OK;
}

const gfnd_fn *gfnd_fn_lookup(gfnd *d, uint32_t id, gfnd_fn *copy,
                              unsigned *index)
{
	const gfnd_fn *r = NULL;

	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->n_fns; i++)
		if (d->fns[i].id.id == id) {
			*copy = d->fns[i];
			*index = i;
			r = copy;
			break;
		}
	pthread_mutex_unlock(&d->lock);
	return r;
}

static gfn_status find_name(gfnd *d, const char *name, gfnd_fn *out)
{
	gfn_status st = GFN_ENOENT;

	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->n_fns; i++)
		if (strcmp(d->fns[i].name, name) == 0) {
			*out = d->fns[i];
			st = GFN_OK;
			break;
		}
	pthread_mutex_unlock(&d->lock);
	return st;
}

/* "kind builtin": the built-ins are registered all at once. */
static gfn_status reg_builtin(gfnd *d, const char *name, gfnd_fn *out,
                              char *detail)
{
	gfn_status st;

	if (find_name(d, name, out) == GFN_OK)
		return strcmp(out->kind, "builtin") == 0 ? GFN_OK : GFN_EEXIST;
	st = gfnd_fns_add_builtins(d);
	if (st != GFN_OK && st != GFN_EEXIST) {
		snprintf(detail, GFN_WIRE_DETAIL_MAX, "%s", gfn_error_detail());
		return st;
	}
	if (find_name(d, name, out) == GFN_OK)
		return GFN_OK;
	snprintf(detail, GFN_WIRE_DETAIL_MAX, "no built-in function \"%s\"",
	         name);
	return GFN_ENOENT;
}

/* One tensor spec: {"dtype": n, "dims": [extent | -1 | -2-k, ...]}. */
static gfn_status tensor_spec(const msgpack_object *v, gfn_tensor_spec *t)
{
	const msgpack_object_array *dims;
	char err[GFN_WIRE_DETAIL_MAX];
	uint64_t dt;

	if (wire_get_u64(v, "dtype", &dt, err) != GFN_OK ||
	    wire_get_array(v, "dims", &dims, err) != GFN_OK ||
	    dims->size > GFN_MAX_DIMS || dt > 255)
		return GFN_EINVAL;
	t->dtype = (gfn_dtype)dt;
	t->ndim = (int)dims->size;
	for (uint32_t i = 0; i < dims->size; i++)
		if (wire_as_i64(&dims->ptr[i], &t->dims[i]) != GFN_OK)
			return GFN_EINVAL;
	return GFN_OK;
}

static gfn_status specs(const msgpack_object *m, const char *key,
                        gfn_tensor_spec *out, size_t cap, size_t *n)
{
	const msgpack_object_array *a;
	char err[GFN_WIRE_DETAIL_MAX];

	*n = 0;
	if (wire_get_array(m, key, &a, err) != GFN_OK || a->size > cap)
		return GFN_EINVAL;
	for (uint32_t i = 0; i < a->size; i++)
		if (tensor_spec(&a->ptr[i], &out[i]) != GFN_OK)
			return GFN_EINVAL;
	*n = a->size;
	return GFN_OK;
}

static gfn_status param_specs(const msgpack_object *m, gfn_param_spec *out,
                              size_t *n)
{
	const msgpack_object_array *a;
	char err[GFN_WIRE_DETAIL_MAX];
	gfn_status st = wire_get_array(m, "params", &a, err);

	*n = 0;
	if (st == GFN_ENOENT)
		return GFN_OK;
	if (st != GFN_OK || a->size > GFN_MAX_PARAMS)
		return GFN_EINVAL;
	for (uint32_t i = 0; i < a->size; i++) {
		int64_t t;

		if (wire_as_i64(&a->ptr[i], &t) != GFN_OK || t < 1 || t > 4)
			return GFN_EINVAL;
		out[i].type = (gfn_param_type)t;
	}
	*n = a->size;
	return GFN_OK;
}

/* "work": {"kind", "tensor", "global": [..], "local": [..], "pass_sizes"} */
static gfn_status work_rule(const msgpack_object *m, gfn_work_rule *w)
{
	const msgpack_object *v = wire_find(m, "work");
	const msgpack_object_array *a;
	char err[GFN_WIRE_DETAIL_MAX];
	int64_t x;

	w->kind = GFN_WORK_ELEMENTS;
	if (!v)
		return GFN_OK;
	if (v->type != MSGPACK_OBJECT_MAP)
		return GFN_EINVAL;
	if (wire_get_i64(v, "kind", &x, err) == GFN_OK)
		w->kind = (gfn_work_kind)x;
	if (wire_get_i64(v, "tensor", &x, err) == GFN_OK)
		w->tensor = (int)x;
	if (wire_get_i64(v, "pass_sizes", &x, err) == GFN_OK)
		w->pass_sizes = (int)x;
	for (int k = 0; k < 2; k++) {
		size_t *dst = k ? w->local : w->global;

		if (wire_get_array(v, k ? "local" : "global", &a, err) !=
		    GFN_OK)
			continue;
		for (uint32_t i = 0; i < a->size && i < 3; i++)
			if (wire_as_i64(&a->ptr[i], &x) == GFN_OK && x >= 0)
				dst[i] = (size_t)x;
	}
	return GFN_OK;
}

/* "kind opencl": a signature plus OpenCL C source. */
static gfn_status reg_opencl(gfnd *d, const msgpack_object *m, gfnd_fn *fn,
                             char *detail)
{
	gfn_tensor_spec ins[GFN_MAX_INPUTS] = {0}, outs[GFN_MAX_OUTPUTS] = {0};
	gfn_param_spec pars[GFN_MAX_PARAMS] = {0};
	char src_err[GFN_WIRE_DETAIL_MAX], kname[128], opts[256] = "";
	const char *src;
	size_t src_len, n_in, n_out, n_par;
	gfn_opencl_kernel k = {0};
	gfn_function_desc desc = {0};
	gfn_status st;

	if (specs(m, "inputs", ins, GFN_MAX_INPUTS, &n_in) != GFN_OK ||
	    specs(m, "outputs", outs, GFN_MAX_OUTPUTS, &n_out) != GFN_OK ||
	    param_specs(m, pars, &n_par) != GFN_OK ||
	    work_rule(m, &k.work) != GFN_OK ||
	    wire_get_str(m, "source", &src, &src_len, src_err) != GFN_OK ||
	    !wire_str_copy(wire_find(m, "kernel"), kname, sizeof kname)) {
		snprintf(detail, GFN_WIRE_DETAIL_MAX,
		         "an opencl registration needs inputs, outputs, "
		         "source and kernel (docs/protocol.md)");
		return GFN_EINVAL;
	}
	if (wire_find(m, "options"))
		wire_str_copy(wire_find(m, "options"), opts, sizeof opts);
	/* The source is not NUL-terminated inside the message. */
	char *source = strndup(src, src_len);
	if (!source)
		return GFN_ENOMEM;
	k.source = source;
	k.name = kname;
	k.options = opts[0] ? opts : NULL;
	desc = (gfn_function_desc){.name = fn->name,
	                           .n_inputs = n_in,
	                           .inputs = ins,
	                           .n_outputs = n_out,
	                           .outputs = outs,
	                           .n_params = n_par,
	                           .params = pars,
	                           .opencl = &k};
	st = gfn_function_register(d->e, &desc, &fn->id);
	free(source);
	if (st != GFN_OK) {
		snprintf(detail, GFN_WIRE_DETAIL_MAX, "%s", gfn_error_detail());
		return st;
	}
	snprintf(fn->kind, sizeof fn->kind, "opencl");
	fn->n_inputs = (unsigned)n_in;
	fn->n_outputs = (unsigned)n_out;
	fn->n_params = (unsigned)n_par;
	for (size_t i = 0; i < n_par; i++)
		fn->param_types[i] = pars[i].type;
	st = fns_add(d, fn);
	if (st != GFN_OK)
		gfn_function_unregister(d->e, fn->id);
	return st;
}

/* "kind model": a model directory (gfn_model.h) as a function. */
static gfn_status reg_model(gfnd *d, const char *name, const char *dir,
                            gfnd_fn *out, char *detail)
{
	gfn_function_info info;
	char nm[sizeof out->name];
	gfn_status st;

	snprintf(nm, sizeof nm, "%s", name); /* name may be out->name */
	memset(out, 0, sizeof *out);
	memcpy(out->name, nm, sizeof nm);
	name = out->name;
	strcpy(out->kind, "model");
	st = gfn_function_register_model(d->e, dir, name, &out->id);
	if (st == GFN_OK &&
	    (st = gfn_function_get_info(d->e, out->id, &info)) == GFN_OK) {
		out->n_inputs = (unsigned)info.n_inputs;
		out->n_outputs = (unsigned)info.n_outputs;
		out->n_params = (unsigned)info.n_params;
		memcpy(out->param_types, info.param_types,
		       sizeof out->param_types);
		st = fns_add(d, out);
		if (st != GFN_OK)
			gfn_model_unregister(d->e, out->id);
	}
	if (st != GFN_OK)
		snprintf(detail, GFN_WIRE_DETAIL_MAX, "model %s from %s: %s",
		         name, dir, gfn_error_detail());
	return st;
}

gfn_status gfnd_models_sync(gfnd *d, const gfnd_config *c)
{
	char detail[GFN_WIRE_DETAIL_MAX];
	gfn_status first = GFN_OK;
	gfnd_fn fn;

	for (unsigned i = 0; i < c->n_models; i++) {
		const gfnd_model_cfg *m = &c->models[i];
		gfn_status st;

		if (find_name(d, m->name, &fn) == GFN_OK)
			continue; /* registered already */
		st = reg_model(d, m->name, m->dir, &fn, detail);
		if (st == GFN_OK)
			gfnd_log(GFND_LOG_INFO, "registered model %s from %s",
			         m->name, m->dir);
		else
			gfnd_log(GFND_LOG_ERROR, "%s", detail);
		if (first == GFN_OK)
			first = st;
	}
	return first;
}

void gfnd_models_drop(gfnd *d)
{
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->n_fns; i++)
		if (!strcmp(d->fns[i].kind, "model"))
			gfn_model_unregister(d->e, d->fns[i].id);
	pthread_mutex_unlock(&d->lock);
}

gfn_status gfnd_register(gfnd *d, const msgpack_object *m, gfnd_fn *out,
                         char *detail)
{
	char kind[16];

	memset(out, 0, sizeof *out);
	if (!wire_str_copy(wire_find(m, "name"), out->name, sizeof out->name) ||
	    !out->name[0] ||
	    !wire_str_copy(wire_find(m, "kind"), kind, sizeof kind)) {
		snprintf(detail, GFN_WIRE_DETAIL_MAX,
		         "register needs \"name\" (1..63 bytes) and \"kind\"");
		return GFN_EINVAL;
	}
	if (strcmp(kind, "builtin") == 0)
		return reg_builtin(d, out->name, out, detail);
	if (strcmp(kind, "opencl") == 0)
		return reg_opencl(d, m, out, detail);
	if (strcmp(kind, "model") == 0) {
		char dir[GFND_PATH_MAX];
		if (!wire_str_copy(wire_find(m, "dir"), dir, sizeof dir) ||
		    !dir[0]) {
			snprintf(detail, GFN_WIRE_DETAIL_MAX,
			         "kind \"model\" needs \"dir\"");
			return GFN_EINVAL;
		}
		return reg_model(d, out->name, dir, out, detail);
	}
	snprintf(detail, GFN_WIRE_DETAIL_MAX,
	         "unknown function kind \"%s\" (builtin, opencl, model)", kind);
	return GFN_EINVAL;
}

/*
 * Completion callback of every invocation gfnd submits: metrics, and the
 * count the drain waits on. arg is the gfnd_call made at submission.
 */
void gfnd_invocation_ended(gfn_engine *e, gfn_future f, gfn_status s, void *arg)
{
	gfnd_call *call = arg;
	gfnd *d = call->d;
	size_t dev;

	/* A refused submission has no future (f.id 0): no device. */
	if (!f.id || gfn_future_device(e, f, &dev) != GFN_OK)
		dev = SIZE_MAX;
	gfnd_metrics_record(d, call->fn_index, dev, call->t0_ns, s);
	free(call);
	pthread_mutex_lock(&d->lock);
	if (--d->inflight == 0)
		pthread_cond_broadcast(&d->idle);
	pthread_mutex_unlock(&d->lock);
}
