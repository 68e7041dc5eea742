/*
 * gfnd_ops.c - one request in, one reply out.
 *
 * A reply is {"v", "op", "status", "detail", ...fields}. Each handler packs
 * its fields (key, value pairs, no map header) into a scratch message and
 * says how many; gfnd_handle then writes the header, the four fixed keys
 * and appends the fields. Whatever a request holds, the daemon answers it:
 * a malformed message, an unknown op or another protocol version is an
 * error reply, never a crash and never silence (a REQ peer would wait).
 */
#include "gfnd.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct req {
	gfnd *d;                 /* the daemon */
	uint32_t pipe;           /* connection the request came on */
	const msgpack_object *m; /* the request map */
	wire_out *out;           /* reply fields go here */
	unsigned nfields;        /* how many were packed */
	char *detail;            /* error detail (GFN_WIRE_DETAIL_MAX) */
} req;

typedef gfn_status (*op_fn)(req *r);

/* Set the detail from the engine's thread-local message, return st. */
static gfn_status engine_err(req *r, gfn_status st)
{
	snprintf(r->detail, GFN_WIRE_DETAIL_MAX, "%s", gfn_error_detail());
	return st;
}

static gfn_status missing(req *r, const char *key, gfn_status st)
{
	if (st == GFN_ENOENT)
		snprintf(r->detail, GFN_WIRE_DETAIL_MAX,
		         "field \"%s\" is missing", key);
	return GFN_EINVAL;
}

static gfn_status op_hello(req *r)
{
	gfnd *d = r->d;

	wire_kstr(r->out, "server", "gfnd");
	wire_kstr(r->out, "version", gfn_version_string());
	wire_ku64(r->out, "protocol", GFN_WIRE_VERSION);
	wire_kstr(r->out, "store_socket", d->cfg.store_socket);
	wire_ku64(r->out, "inline_max", d->cfg.inline_max);
	wire_ku64(r->out, "max_message", d->cfg.max_message);
	r->nfields = 6;
	return GFN_OK;
}

static const char *backend_name(unsigned b)
{
	return b == GFN_BACKEND_CPU      ? "cpu"
	       : b == GFN_BACKEND_OPENCL ? "opencl"
	       : b == GFN_BACKEND_CUDA   ? "cuda"
	                                 : "unknown";
}

static void pack_device(wire_out *w, const gfn_device_info *di)
{
	msgpack_pack_map(&w->pk, 7);
	wire_kstr(w, "name", di->name);
	wire_kstr(w, "backend", backend_name(di->backend));
	wire_ki64(w, "index", di->backend_index);
	wire_ku64(w, "memory_bytes", di->memory_bytes);
	wire_ku64(w, "compute_units", di->compute_units);
	wire_kstr(w, "pci_bus_id", di->pci_bus_id);
	wire_ki64(w, "numa_node", di->numa_node);
}

static gfn_status op_devices(req *r)
{
	gfn_device_info di;
	size_t n;
	gfn_status st = gfn_device_count(r->d->e, &n);

	if (st != GFN_OK)
		return engine_err(r, st);
	wire_key(r->out, "devices");
	msgpack_pack_array(&r->out->pk, n);
	for (size_t i = 0; i < n; i++) {
		if (gfn_device_get_info(r->d->e, i, &di) != GFN_OK)
			memset(&di, 0, sizeof di);
		pack_device(r->out, &di);
	}
	r->nfields = 1;
	return GFN_OK;
}

static void pack_fn(wire_out *w, const gfnd_fn *f)
{
	msgpack_pack_map(&w->pk, 7);
	wire_kstr(w, "name", f->name);
	wire_ku64(w, "id", f->id.id);
	wire_kstr(w, "kind", f->kind);
	wire_ku64(w, "n_inputs", f->n_inputs);
	wire_ku64(w, "n_outputs", f->n_outputs);
	wire_ku64(w, "n_params", f->n_params);
	wire_key(w, "param_types");
	msgpack_pack_array(&w->pk, f->n_params);
	for (unsigned i = 0; i < f->n_params; i++)
		msgpack_pack_int(&w->pk, f->param_types[i]);
}

static gfn_status op_functions(req *r)
{
	gfnd *d = r->d;

	wire_key(r->out, "functions");
	pthread_mutex_lock(&d->lock);
	msgpack_pack_array(&r->out->pk, d->n_fns);
	for (unsigned i = 0; i < d->n_fns; i++)
		pack_fn(r->out, &d->fns[i]);
	pthread_mutex_unlock(&d->lock);
	r->nfields = 1;
	return GFN_OK;
}

static gfn_status op_register(req *r)
{
	gfnd_fn fn;
	gfn_status st = gfnd_register(r->d, r->m, &fn, r->detail);

	if (st != GFN_OK)
		return st;
	wire_ku64(r->out, "fn", fn.id.id);
	r->nfields = 1;
	gfnd_log(GFND_LOG_INFO, "registered %s function %s", fn.kind, fn.name);
	return GFN_OK;
}

/* {"dtype", "shape": [...]} of a request into dtype, ndim, shape. */
static gfn_status read_shape(req *r, gfn_dtype *dt, int *ndim, int64_t *shape)
{
	const msgpack_object_array *a;
	uint64_t t;
	gfn_status st = wire_get_u64(r->m, "dtype", &t, r->detail);

	if (st != GFN_OK)
		return missing(r, "dtype", st);
	st = wire_get_array(r->m, "shape", &a, r->detail);
	if (st != GFN_OK)
		return missing(r, "shape", st);
	if (a->size > GFN_MAX_DIMS || t > 255) {
		snprintf(r->detail, GFN_WIRE_DETAIL_MAX,
		         "shape has %u dimensions (most %d) or bad dtype",
		         a->size, GFN_MAX_DIMS);
		return GFN_EINVAL;
	}
	for (uint32_t i = 0; i < a->size; i++)
		if (wire_as_i64(&a->ptr[i], &shape[i]) != GFN_OK)
			return missing(r, "shape", GFN_EINVAL);
	*dt = (gfn_dtype)t;
	*ndim = (int)a->size;
	return GFN_OK;
}

/* Bytes of a tensor; SIZE_MAX for a bad dtype, extent or overflow. */
static size_t nbytes(gfn_dtype dt, int ndim, const int64_t *shape)
{
	size_t n = gfn_dtype_size(dt);

	if (n == 0)
		return SIZE_MAX;
	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 0 ||
		    (shape[i] > 0 && n > SIZE_MAX / (uint64_t)shape[i]))
			return SIZE_MAX;
		n *= (size_t)shape[i];
	}
	return n;
}

static gfn_status op_put(req *r)
{
	gfn_engine *e = r->d->e;
	int64_t shape[GFN_MAX_DIMS];
	gfn_dtype dt;
	int ndim;
	const void *data;
	size_t len, want;
	gfn_object o;
	gfn_status st = read_shape(r, &dt, &ndim, shape);

	if (st != GFN_OK)
		return st;
	st = wire_get_bin(r->m, "data", &data, &len, r->detail);
	if (st != GFN_OK)
		return missing(r, "data", st);
	if (len > r->d->cfg.inline_max) {
		snprintf(r->detail, GFN_WIRE_DETAIL_MAX,
		         "inline payload of %zu bytes exceeds inline_max %zu: "
		         "put it through the store socket",
		         len, r->d->cfg.inline_max);
		return GFN_ERANGE;
	}
	want = nbytes(dt, ndim, shape);
	/* A bad dtype or extent is left to gfn_object_create to name. */
	if (want != SIZE_MAX && len != want) {
		snprintf(r->detail, GFN_WIRE_DETAIL_MAX,
		         "data is %zu bytes but dtype and shape make %zu", len,
		         want);
		return GFN_ERANGE;
	}
	/* The client's tenant owns it: its other connections (same uid)
	   may use it too, and nobody else. */
	st = gfn_object_create_for(e, gfnd_session_tenant(r->d, r->pipe), dt,
	                           ndim, shape, &o);
	if (st != GFN_OK)
		return engine_err(r, st);
	st = gfn_object_write(e, o, 0, data, len);
	if (st == GFN_OK)
		st = gfn_object_seal(e, o);
	if (st == GFN_OK)
		st = gfnd_session_add_object(r->d, r->pipe, o);
	if (st != GFN_OK) {
		engine_err(r, st);
		gfn_object_release(e, o);
		return st;
	}
	wire_kobj(r->out, "obj", o);
	r->nfields = 1;
	return GFN_OK;
}

/*
 * An object another connection holds, or of another tenant: a client
 * reaches only what it put, was given, or owns in the store, even when it
 * knows another's id.
 */
static gfn_status not_yours(req *r, const char *what)
{
	snprintf(r->detail, GFN_WIRE_DETAIL_MAX,
	         "%s is not an object of this client", what);
	return GFN_EACCES;
}

/* The request asked for a store reference ("map": true). */
static bool wants_map(req *r)
{
	const msgpack_object *v = wire_find(r->m, "map");

	return v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
}

/*
 * A large object, asked for by an ipc client: no bytes, only what it
 * needs to map the object through the store (gfn_store_client_get). An
 * output of its invocations belongs to its tenant, so it may; another
 * tenant's object is GFN_EACCES there, and the client asks again inline.
 */
static bool by_reference(req *r, const gfn_object_view *v)
{
	return v->size > r->d->cfg.inline_max && r->d->cfg.store_socket[0] &&
	       wants_map(r) && gfnd_session_tenant(r->d, r->pipe) != 0 &&
	       gfnd_session_trusted(r->d, r->pipe);
}

static void pack_view_head(req *r, const gfn_object_view *v)
{
	wire_ku64(r->out, "dtype", (uint64_t)v->dtype);
	wire_key(r->out, "shape");
	msgpack_pack_array(&r->out->pk, (size_t)v->ndim);
	for (int i = 0; i < v->ndim; i++)
		msgpack_pack_int64(&r->out->pk, v->shape[i]);
}

static gfn_status op_get(req *r)
{
	gfn_engine *e = r->d->e;
	gfn_object_view v;
	gfn_object o;
	gfn_status st = wire_get_obj(r->m, "obj", &o, r->detail);

	if (st != GFN_OK)
		return missing(r, "obj", st);
	if ((st = gfnd_session_may_use(r->d, r->pipe, o)) != GFN_OK)
		return st == GFN_EACCES ? not_yours(r, "obj")
		                        : engine_err(r, st);
	st = gfn_object_get(e, o, &v);
	if (st != GFN_OK)
		return engine_err(r, st);
	if (by_reference(r, &v)) {
		pack_view_head(r, &v);
		wire_ku64(r->out, "size", v.size);
		wire_key(r->out, "ref");
		msgpack_pack_true(&r->out->pk);
		gfn_object_release(e, o);
		r->nfields = 4;
		return GFN_OK;
	}
	if (v.size > r->d->cfg.max_message - 4096) {
		gfn_object_release(e, o);
		snprintf(r->detail, GFN_WIRE_DETAIL_MAX,
		         "object of %zu bytes exceeds max_message %zu", v.size,
		         r->d->cfg.max_message);
		return GFN_ERANGE;
	}
	pack_view_head(r, &v);
	wire_kbin(r->out, "data", v.data, v.size);
	gfn_object_release(e, o);
	r->nfields = 3;
	return GFN_OK;
}

static gfn_status op_release(req *r)
{
	gfn_object o;
	gfn_status st = wire_get_obj(r->m, "obj", &o, r->detail);

	if (st != GFN_OK)
		return missing(r, "obj", st);
	if (gfnd_session_take_object(r->d, r->pipe, o) != GFN_OK) {
		snprintf(r->detail, GFN_WIRE_DETAIL_MAX,
		         "this connection holds no reference to that object");
		return GFN_ESTATE;
	}
	st = gfn_object_release(r->d->e, o);
	return st == GFN_OK ? st : engine_err(r, st);
}

static gfn_status op_delete(req *r)
{
	gfn_object o;
	gfn_status st = wire_get_obj(r->m, "obj", &o, r->detail);

	if (st != GFN_OK)
		return missing(r, "obj", st);
	st = gfn_object_delete(r->d->e, o);
	return st == GFN_OK ? st : engine_err(r, st);
}

/* Parameters as msgpack numbers, typed by the function's record. */
static gfn_status read_params(req *r, const gfnd_fn *fn, gfn_scalar *par,
                              size_t *n)
{
	const msgpack_object_array *a;
	gfn_status st = wire_get_array(r->m, "params", &a, r->detail);

	*n = 0;
	if (st == GFN_ENOENT)
		return GFN_OK;
	if (st != GFN_OK || a->size > GFN_MAX_PARAMS)
		return GFN_EINVAL;
	for (uint32_t i = 0; i < a->size; i++) {
		gfn_param_type t =
		        i < fn->n_params ? fn->param_types[i] : GFN_PARAM_F64;
		double x;
		int64_t k;

		/* The C client sends the gfn_scalar's 8 bytes as they are. */
		if (a->ptr[i].type == MSGPACK_OBJECT_BIN &&
		    a->ptr[i].via.bin.size == sizeof par[i]) {
			memcpy(&par[i], a->ptr[i].via.bin.ptr, sizeof par[i]);
			continue;
		}
		if (t == GFN_PARAM_I64 || t == GFN_PARAM_I32) {
			if (wire_as_i64(&a->ptr[i], &k) != GFN_OK)
				return missing(r, "params", GFN_EINVAL);
			if (t == GFN_PARAM_I64)
				par[i].i64 = k;
			else
				par[i].i32 = (int32_t)k;
		} else {
			if (wire_as_f64(&a->ptr[i], &x) != GFN_OK)
				return missing(r, "params", GFN_EINVAL);
			if (t == GFN_PARAM_F64)
				par[i].f64 = x;
			else
				par[i].f32 = (float)x;
		}
	}
	*n = a->size;
	return GFN_OK;
}

static gfn_status read_inputs(req *r, gfn_object *in, size_t *n)
{
	const msgpack_object_array *a;
	gfn_status st = wire_get_array(r->m, "inputs", &a, r->detail);

	if (st != GFN_OK)
		return missing(r, "inputs", st);
	if (a->size > GFN_MAX_INPUTS)
		return missing(r, "inputs", GFN_EINVAL);
	for (uint32_t i = 0; i < a->size; i++) {
		if (wire_as_obj(&a->ptr[i], &in[i]) != GFN_OK) {
			snprintf(r->detail, GFN_WIRE_DETAIL_MAX,
			         "inputs[%u] is not an object id [hi, lo]", i);
			return GFN_EINVAL;
		}
		st = gfnd_session_may_use(r->d, r->pipe, in[i]);
		if (st == GFN_EACCES)
			return not_yours(r, "inputs[]");
		if (st != GFN_OK)
			return engine_err(r, st);
	}
	*n = a->size;
	return GFN_OK;
}

/* Submit with gfnd's completion callback, counted for the drain. */
static gfn_status submit(req *r, gfn_invocation *inv, unsigned fn_index,
                         gfn_future *f)
{
	gfnd *d = r->d;
	gfnd_call *call = malloc(sizeof *call);
	gfn_status st;

	if (!call)
		return GFN_ENOMEM;
	*call = (gfnd_call){d, fn_index, gfnd_now_ns()};
	inv->callback = gfnd_invocation_ended;
	inv->callback_arg = call;
	pthread_mutex_lock(&d->lock);
	d->inflight++;
	pthread_mutex_unlock(&d->lock);
	st = gfn_invoke(d->e, inv, f);
	if (st != GFN_OK) {
		engine_err(r, st);
		f->id = 0; /* no future was made */
		/* Refused: no callback will come. */
		gfnd_invocation_ended(d->e, *f, st, call);
	}
	return st;
}

static gfn_status op_invoke(req *r)
{
	gfn_object in[GFN_MAX_INPUTS];
	gfn_scalar par[GFN_MAX_PARAMS];
	gfn_invocation inv = {0};
	gfnd_fn fn;
	uint64_t id = 0;
	unsigned index;
	gfn_future f;
	gfn_status st = wire_get_u64(r->m, "fn", &id, r->detail);

	if (st != GFN_OK)
		return missing(r, "fn", st);
	if (id > UINT32_MAX ||
	    !gfnd_fn_lookup(r->d, (uint32_t)id, &fn, &index)) {
		snprintf(r->detail, GFN_WIRE_DETAIL_MAX,
		         "no function with id %llu", (unsigned long long)id);
		return GFN_ENOENT;
	}
	if ((st = read_inputs(r, in, &inv.n_inputs)) != GFN_OK ||
	    (st = read_params(r, &fn, par, &inv.n_params)) != GFN_OK)
		return st;
	if (wire_get_u64(r->m, "devices", &inv.devices, r->detail) ==
	    GFN_EINVAL)
		return GFN_EINVAL;
	inv.fn = fn.id;
	/* Run as the client's tenant: its outputs are the client's own. */
	inv.tenant = gfnd_session_tenant(r->d, r->pipe);
	inv.inputs = in;
	inv.params = par;
	if ((st = submit(r, &inv, index, &f)) != GFN_OK)
		return st;
	if (gfnd_session_add_future(r->d, r->pipe, f) != GFN_OK) {
		gfn_future_release(r->d->e, f); /* the client is gone */
		return GFN_ENOMEM;
	}
	wire_ku64(r->out, "future", f.id);
	r->nfields = 1;
	return GFN_OK;
}

/* The request's "future", which this connection must own. */
static gfn_status own_future(req *r, gfn_future *f)
{
	gfn_status st = wire_get_u64(r->m, "future", &f->id, r->detail);

	if (st != GFN_OK)
		return missing(r, "future", st);
	if (gfnd_session_has_future(r->d, r->pipe, *f) != GFN_OK) {
		snprintf(r->detail, GFN_WIRE_DETAIL_MAX,
		         "future %llu is not one of this connection's",
		         (unsigned long long)f->id);
		return GFN_ENOENT;
	}
	return GFN_OK;
}

/*
 * One wait request blocks at most wait_slice_ms, so that a few slow
 * invocations cannot hold every worker; clients wait longer by asking
 * again (the C client does).
 */
static gfn_status op_wait(req *r)
{
	int64_t ms = -1, slice = atomic_load(&r->d->wait_slice_ms);
	gfn_future f;
	gfn_status st = own_future(r, &f);

	if (st != GFN_OK)
		return st;
	if (wire_get_i64(r->m, "timeout_ms", &ms, r->detail) == GFN_EINVAL)
		return GFN_EINVAL;
	if (ms < 0 || ms > slice)
		ms = slice;
	st = gfn_future_wait(r->d->e, f, ms * 1000000);
	return st == GFN_OK ? st : engine_err(r, st);
}

static gfn_status op_outputs(req *r)
{
	gfn_object outs[GFN_MAX_OUTPUTS];
	size_t n = 0;
	gfn_future f;
	gfn_status st = own_future(r, &f);

	if (st != GFN_OK)
		return st;
	st = gfn_future_outputs(r->d->e, f, outs, GFN_MAX_OUTPUTS, &n);
	if (st != GFN_OK)
		return engine_err(r, st);
	wire_key(r->out, "outputs");
	msgpack_pack_array(&r->out->pk, n);
	for (size_t i = 0; i < n; i++) {
		wire_obj(r->out, outs[i]);
		/* A dead session cannot own it: give it back at once. */
		if (gfnd_session_add_object(r->d, r->pipe, outs[i]) != GFN_OK)
			gfn_object_release(r->d->e, outs[i]);
	}
	r->nfields = 1;
	return GFN_OK;
}

static gfn_status op_cancel(req *r)
{
	gfn_future f;
	gfn_status st = own_future(r, &f);

	if (st != GFN_OK)
		return st;
	st = gfn_future_cancel(r->d->e, f);
	return st == GFN_OK ? st : engine_err(r, st);
}

static gfn_status op_frelease(req *r)
{
	gfn_future f;
	gfn_status st = wire_get_u64(r->m, "future", &f.id, r->detail);

	if (st != GFN_OK)
		return missing(r, "future", st);
	if (gfnd_session_take_future(r->d, r->pipe, f) != GFN_OK) {
		snprintf(r->detail, GFN_WIRE_DETAIL_MAX,
		         "future %llu is not one of this connection's",
		         (unsigned long long)f.id);
		return GFN_ENOENT;
	}
	st = gfn_future_release(r->d->e, f);
	return st == GFN_OK ? st : engine_err(r, st);
}

static gfn_status op_stats(req *r)
{
	gfnd *d = r->d;
	gfn_stats s;
	gfn_status st = gfn_engine_stats(d->e, &s);
	long inflight;

	if (st != GFN_OK)
		return engine_err(r, st);
	pthread_mutex_lock(&d->lock);
	inflight = d->inflight;
	pthread_mutex_unlock(&d->lock);
#define F(name) wire_ku64(r->out, #name, s.name)
	F(submitted), F(completed), F(failed), F(canceled), F(rejected_busy);
	F(queued), F(running), F(host_allocs), F(context_creates);
	F(kernel_compiles), F(pinnings), F(input_copies), F(store_objects);
	F(store_bytes), F(store_evictions), F(kernel_cache_hits);
	F(device_allocs), F(device_resets), F(devices_retired);
#undef F
	wire_ku64(r->out, "requests", atomic_load(&d->requests));
	wire_ku64(r->out, "bad_requests", atomic_load(&d->bad_requests));
	wire_ku64(r->out, "connections", atomic_load(&d->connections));
	wire_ku64(r->out, "sessions", gfnd_session_count(d));
	wire_ki64(r->out, "inflight", inflight);
	wire_ku64(r->out, "draining", atomic_load(&d->draining));
	wire_ku64(r->out, "held_objects", gfnd_session_objects(d));
	wire_ku64(r->out, "held_futures", gfnd_session_futures(d));
	r->nfields = 19 + 8;
	return GFN_OK;
}

static const struct {
	const char *name; /* "op" */
	op_fn fn;         /* handler */
	bool new_work;    /* refused while draining */
} ops[] = {
        {"hello", op_hello, false},
        {"devices", op_devices, false},
        {"functions", op_functions, false},
        {"register", op_register, true},
        {"put", op_put, true},
        {"get", op_get, false},
        {"release", op_release, false},
        {"delete", op_delete, false},
        {"invoke", op_invoke, true},
        {"wait", op_wait, false},
        {"outputs", op_outputs, false},
        {"result", op_outputs, false},
        {"cancel", op_cancel, false},
        {"future_release", op_frelease, false},
        {"stats", op_stats, false},
};

/*
 * The request's "token" against the configured one, in time that does
 * not depend on where they differ. No token configured: nobody passes.
 */
static bool token_ok(req *r)
{
	const char *t, *want = r->d->cfg.token;
	size_t n, wn = strlen(want);
	unsigned char diff = 0;

	if (!wn || wire_get_str(r->m, "token", &t, &n, r->detail) != GFN_OK)
		return false;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(t[i] ^ want[i % wn]);
	return diff == 0 && n == wn;
}

/* Check version and op; run the handler. *opname is set for the reply. */
static gfn_status dispatch(req *r, char *opname, size_t cap)
{
	uint64_t v;
	gfn_status st = wire_get_u64(r->m, "v", &v, r->detail);

	if (!wire_str_copy(wire_find(r->m, "op"), opname, cap)) {
		snprintf(r->detail, GFN_WIRE_DETAIL_MAX,
		         "\"op\" is missing, not a string or too long");
		return GFN_EINVAL;
	}
	if (st != GFN_OK || v != GFN_WIRE_VERSION) {
		snprintf(r->detail, GFN_WIRE_DETAIL_MAX,
		         "protocol version %s; this gfnd speaks version %d",
		         st == GFN_OK ? "not supported" : "missing",
		         GFN_WIRE_VERSION);
		return GFN_ENOTSUP;
	}
	if (!gfnd_session_trusted(r->d, r->pipe) && !token_ok(r)) {
		snprintf(r->detail, GFN_WIRE_DETAIL_MAX,
		         "this connection is not trusted: send the daemon's "
		         "token in \"token\"");
		return GFN_EACCES;
	}
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
		if (strcmp(ops[i].name, opname) != 0)
			continue;
		if (ops[i].new_work && atomic_load(&r->d->draining)) {
			snprintf(r->detail, GFN_WIRE_DETAIL_MAX,
			         "gfnd is shutting down: no new work");
			return GFN_ESHUTDOWN;
		}
		return ops[i].fn(r);
	}
	snprintf(r->detail, GFN_WIRE_DETAIL_MAX, "unknown op \"%s\"", opname);
	return GFN_ENOTSUP;
}

/* {"v", "op", "status", "detail"} and the handler's fields. */
static nng_msg *reply(const char *op, gfn_status st, const char *detail,
                      wire_out *fields, unsigned n)
{
	wire_out w;

	if (wire_out_init(&w) != 0)
		return NULL;
	msgpack_pack_map(&w.pk, 4 + n);
	wire_ku64(&w, "v", GFN_WIRE_VERSION);
	wire_kstr(&w, "op", op);
	wire_ki64(&w, "status", st);
	wire_kstr(&w, "detail", detail);
	if (n && !w.err)
		w.err = nng_msg_append(w.msg, nng_msg_body(fields->msg),
		                       nng_msg_len(fields->msg));
	if (w.err) {
		wire_out_fini(&w);
		return NULL;
	}
	return w.msg;
}

nng_msg *gfnd_handle(gfnd *d, nng_msg *msg)
{
	char detail[GFN_WIRE_DETAIL_MAX] = "", op[32] = "";
	wire_in in;
	wire_out fields;
	req r = {.d = d, .detail = detail, .out = &fields};
	gfn_status st;
	nng_msg *rep;

	r.pipe = nng_pipe_id(nng_msg_get_pipe(msg));
	if (wire_out_init(&fields) != 0) {
		nng_msg_free(msg);
		return NULL;
	}
	st = wire_in_decode(&in, nng_msg_body(msg), nng_msg_len(msg), detail);
	if (st == GFN_OK) {
		r.m = in.root;
		st = dispatch(&r, op, sizeof op);
	}
	if (st == GFN_OK && fields.err) {
		st = GFN_ENOMEM;
		snprintf(detail, sizeof detail, "reply too large for memory");
	}
	gfnd_log(GFND_LOG_DEBUG, "connection %u: op %s: %s", r.pipe,
	         op[0] ? op : "?", gfn_status_name(st));
	if (st != GFN_OK) {
		r.nfields = 0;
		if (st == GFN_EINVAL || st == GFN_ENOTSUP)
			atomic_fetch_add(&d->bad_requests, 1);
		gfnd_log(GFND_LOG_DEBUG, "op %s: %s: %s", op[0] ? op : "?",
		         gfn_status_name(st), detail);
	}
	rep = reply(op[0] ? op : "error", st, detail, &fields, r.nfields);
	wire_in_fini(&in);
	wire_out_fini(&fields);
	nng_msg_free(msg);
	atomic_fetch_add(&d->requests, 1);
	return rep;
}
