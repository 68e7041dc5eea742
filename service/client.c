/*
 * client.c - libgfn_client: the gfn_client.h calls over NNG REQ.
 *
 * Every call is one request on its own NNG context, so threads sharing a
 * handle have many requests in flight on one connection. The pipe events
 * keep count of the live connection: a call made while there is none
 * waits briefly for the dialer and then fails clearly, and a call waiting
 * for a reply when the connection drops is canceled at once (REQ would
 * otherwise resend it to the next daemon, which never saw its ids).
 */
#include "wire.h"

#include <gfn/gfn_client.h>
#include <gfn/gfn_store_client.h>

#include <nng/protocol/reqrep0/req.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PENDING 1024 /* requests in flight per handle */

struct gfn_client {
	nng_socket sock;               /* REQ socket */
	char url[512];                 /* for messages */
	int64_t timeout_ms;            /* per request */
	pthread_mutex_t lock;          /* below */
	pthread_cond_t change;         /* a pipe came or went */
	int pipes;                     /* live connections (0 or 1) */
	uint64_t gen;                  /* bumped each time a connection goes */
	nng_aio *pending[MAX_PENDING]; /* requests waiting for replies */
	gfn_client_info info;          /* from the first hello */
	int have_info;                 /* info is filled in */
	gfn_store_client *store;       /* attached on the first large put */
	char token[128];               /* $GFN_TOKEN, sent over tcp:// */
};

static _Thread_local char detail_buf[GFN_WIRE_DETAIL_MAX];

const char *gfn_client_error_detail(void)
{
	return detail_buf;
}

__attribute__((format(printf, 2, 3))) static gfn_status
fail(gfn_status st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail_buf, sizeof detail_buf, fmt, ap);
	va_end(ap);
	return st;
}

static void pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	gfn_client *c = arg;

	(void)p;
	pthread_mutex_lock(&c->lock);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		c->pipes++;
	} else {
		c->pipes--;
		c->gen++;
		c->have_info = 0;
		/* Replies on this pipe can no longer come. */
		for (int i = 0; i < MAX_PENDING; i++)
			if (c->pending[i])
				nng_aio_cancel(c->pending[i]);
	}
	pthread_cond_broadcast(&c->change);
	pthread_mutex_unlock(&c->lock);
}

gfn_status gfn_client_connect(const char *url, gfn_client **out)
{
	gfn_client *c;
	const char *t = getenv("GFN_CLIENT_TIMEOUT_MS");
	int rv;

	*out = NULL;
	if (!url || strlen(url) >= sizeof c->url)
		return fail(GFN_EINVAL, "bad or too long url");
	if (!(c = calloc(1, sizeof *c)))
		return fail(GFN_ENOMEM, "out of memory");
	snprintf(c->url, sizeof c->url, "%s", url);
	if (strncmp(url, "tcp://", 6) == 0 && getenv("GFN_TOKEN"))
		snprintf(c->token, sizeof c->token, "%s", getenv("GFN_TOKEN"));
	c->timeout_ms = t ? atoll(t) : 30000;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->change, NULL);
	if ((rv = nng_req0_open(&c->sock)) != 0) {
		free(c);
		return fail(GFN_ESYS, "nng_req0_open: %s", nng_strerror(rv));
	}
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 20);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 500);
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, 0); /* any size */
	nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, pipe_event, c);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, pipe_event, c);
	/* Non-blocking: a daemon that starts later is dialed again. */
	rv = nng_dial(c->sock, url, NULL, NNG_FLAG_NONBLOCK);
	if (rv != 0) {
		nng_close(c->sock);
		free(c);
		return fail(GFN_EINVAL, "dial %s: %s", url, nng_strerror(rv));
	}
	*out = c;
	return GFN_OK;
}

void gfn_client_close(gfn_client *c)
{
	if (!c)
		return;
	nng_close(c->sock);
	gfn_store_client_detach(c->store);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->change);
	free(c);
}

/* Wait up to 2 s for a connection; GFN_ESHUTDOWN when none comes. */
static gfn_status connected(gfn_client *c)
{
	struct timespec dl;
	int ok;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 2;
	pthread_mutex_lock(&c->lock);
	while (c->pipes == 0)
		if (pthread_cond_timedwait(&c->change, &c->lock, &dl) != 0)
			break;
	ok = c->pipes > 0;
	pthread_mutex_unlock(&c->lock);
	if (!ok)
		return fail(GFN_ESHUTDOWN,
		            "gfnd at %s is not reachable (not running?)",
		            c->url);
	return GFN_OK;
}

static int pending_add(gfn_client *c, nng_aio *aio, uint64_t *gen)
{
	int slot = -1;

	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < MAX_PENDING && slot < 0; i++)
		if (!c->pending[i]) {
			c->pending[i] = aio;
			slot = i;
		}
	*gen = c->gen;
	pthread_mutex_unlock(&c->lock);
	return slot;
}

static void pending_del(gfn_client *c, int slot)
{
	pthread_mutex_lock(&c->lock);
	c->pending[slot] = NULL;
	pthread_mutex_unlock(&c->lock);
}

/*
 * Start a send or receive unless the connection went since gen. Under
 * the lock, so that pipe_event either runs before (we see the new gen)
 * or after (the operation is started, and its cancel takes effect).
 */
static int start_op(gfn_client *c, nng_ctx ctx, nng_aio *aio, uint64_t gen,
                    int send)
{
	int ok;

	pthread_mutex_lock(&c->lock);
	ok = c->gen == gen && c->pipes > 0;
	if (ok && send)
		nng_ctx_send(ctx, aio);
	else if (ok)
		nng_ctx_recv(ctx, aio);
	pthread_mutex_unlock(&c->lock);
	return ok ? 0 : NNG_ECANCELED;
}

static gfn_status nng_err(gfn_client *c, int rv, const char *what)
{
	if (rv == NNG_ETIMEDOUT)
		return fail(GFN_ETIMEDOUT,
		            "gfnd at %s did not answer %s in "
		            "%lld ms",
		            c->url, what, (long long)c->timeout_ms);
	if (rv == NNG_ECANCELED || rv == NNG_ECLOSED)
		return fail(GFN_ESHUTDOWN,
		            "connection to gfnd at %s lost during %s", c->url,
		            what);
	return fail(GFN_ESYS, "%s: %s", what, nng_strerror(rv));
}

/* Send *msg (consumed) on a fresh context, receive the reply. */
static gfn_status exchange(gfn_client *c, nng_msg *msg, nng_msg **rep,
                           const char *what)
{
	nng_ctx ctx;
	nng_aio *aio;
	uint64_t gen;
	int rv, slot;

	if (nng_ctx_open(&ctx, c->sock) != 0 ||
	    nng_aio_alloc(&aio, NULL, NULL) != 0) {
		nng_msg_free(msg);
		return fail(GFN_ENOMEM, "no memory for a request");
	}
	nng_aio_set_timeout(aio, (nng_duration)c->timeout_ms);
	slot = pending_add(c, aio, &gen);
	nng_aio_set_msg(aio, msg);
	rv = start_op(c, ctx, aio, gen, 1);
	if (rv == 0) {
		nng_aio_wait(aio);
		rv = nng_aio_result(aio);
	}
	if (rv != 0) {
		nng_msg_free(msg);
	} else if ((rv = start_op(c, ctx, aio, gen, 0)) == 0) {
		nng_aio_wait(aio);
		rv = nng_aio_result(aio);
		if (rv == 0)
			*rep = nng_aio_get_msg(aio);
	}
	if (slot >= 0)
		pending_del(c, slot);
	nng_ctx_close(ctx);
	nng_aio_free(aio);
	return rv ? nng_err(c, rv, what) : GFN_OK;
}

/* A request under construction: {"v", "op", ...nfields}. */
/*
 * Over tcp:// every request carries the token ($GFN_TOKEN): the daemon
 * cannot ask the kernel who a tcp peer is, and a reconnect after a
 * daemon restart must not need a second handshake.
 */
static void begin(gfn_client *c, wire_out *w, const char *op, unsigned nfields)
{
	msgpack_pack_map(&w->pk, 2 + nfields + (c->token[0] != '\0'));
	wire_ku64(w, "v", GFN_WIRE_VERSION);
	wire_kstr(w, "op", op);
	if (c->token[0])
		wire_kstr(w, "token", c->token);
}

typedef struct reply {
	nng_msg *msg; /* owns the bytes in.root points into */
	wire_in in;   /* decoded */
} reply;

static void reply_fini(reply *r)
{
	wire_in_fini(&r->in);
	if (r->msg)
		nng_msg_free(r->msg);
}

/*
 * Send w's message, decode the reply, return its status (with its
 * detail). On GFN_OK the caller reads r->in.root and calls reply_fini;
 * on error r is already cleaned up.
 */
static gfn_status call(gfn_client *c, wire_out *w, reply *r, const char *op)
{
	char err[GFN_WIRE_DETAIL_MAX];
	int64_t st;
	gfn_status s;

	memset(r, 0, sizeof *r);
	msgpack_unpacked_init(&r->in.und);
	if (w->err) {
		wire_out_fini(w);
		return fail(GFN_ENOMEM, "request too large for memory");
	}
	if ((s = connected(c)) != GFN_OK) {
		wire_out_fini(w);
		return s;
	}
	s = exchange(c, w->msg, &r->msg, op);
	w->msg = NULL;
	if (s != GFN_OK)
		return s;
	wire_in_fini(&r->in);
	s = wire_in_decode(&r->in, nng_msg_body(r->msg), nng_msg_len(r->msg),
	                   err);
	if (s == GFN_OK && wire_get_i64(r->in.root, "status", &st, err) != 0)
		s = fail(GFN_EINTERNAL, "reply to %s without a status", op);
	else if (s != GFN_OK)
		s = fail(GFN_EINTERNAL, "bad reply to %s: %s", op, err);
	else if (st != GFN_OK) {
		const msgpack_object *d = wire_find(r->in.root, "detail");

		if (!wire_str_copy(d, detail_buf, sizeof detail_buf))
			detail_buf[0] = '\0';
		s = (gfn_status)st;
	}
	if (s != GFN_OK)
		reply_fini(r);
	return s;
}

/* A request with no fields but the op; reply in r. */
static gfn_status simple(gfn_client *c, const char *op, reply *r)
{
	wire_out w;

	if (wire_out_init(&w) != 0)
		return fail(GFN_ENOMEM, "out of memory");
	begin(c, &w, op, 0);
	return call(c, &w, r, op);
}

static void str_field(const msgpack_object *m, const char *key, char *dst,
                      size_t cap)
{
	if (!wire_str_copy(wire_find(m, key), dst, cap))
		dst[0] = '\0';
}

static uint64_t u64_field(const msgpack_object *m, const char *key)
{
	char err[GFN_WIRE_DETAIL_MAX];
	uint64_t v = 0;

	wire_get_u64(m, key, &v, err);
	return v;
}

static int64_t i64_field(const msgpack_object *m, const char *key)
{
	char err[GFN_WIRE_DETAIL_MAX];
	int64_t v = 0;

	wire_get_i64(m, key, &v, err);
	return v;
}

gfn_status gfn_client_hello(gfn_client *c, gfn_client_info *out)
{
	reply r;
	gfn_status s = simple(c, "hello", &r);

	if (s != GFN_OK)
		return s;
	memset(out, 0, sizeof *out);
	str_field(r.in.root, "server", out->server, sizeof out->server);
	str_field(r.in.root, "version", out->version, sizeof out->version);
	str_field(r.in.root, "store_socket", out->store_socket,
	          sizeof out->store_socket);
	out->protocol = (unsigned)u64_field(r.in.root, "protocol");
	out->inline_max = u64_field(r.in.root, "inline_max");
	out->max_message = u64_field(r.in.root, "max_message");
	reply_fini(&r);
	pthread_mutex_lock(&c->lock);
	c->info = *out;
	c->have_info = 1;
	pthread_mutex_unlock(&c->lock);
	return GFN_OK;
}

/* The array under key in a reply, or GFN_EINTERNAL. */
static gfn_status reply_array(reply *r, const char *key,
                              const msgpack_object_array **a)
{
	char err[GFN_WIRE_DETAIL_MAX];

	if (wire_get_array(r->in.root, key, a, err) != GFN_OK) {
		reply_fini(r);
		return fail(GFN_EINTERNAL, "reply without \"%s\"", key);
	}
	return GFN_OK;
}

static unsigned backend_bit(const char *name)
{
	return !strcmp(name, "cpu")      ? GFN_BACKEND_CPU
	       : !strcmp(name, "opencl") ? GFN_BACKEND_OPENCL
	       : !strcmp(name, "cuda")   ? GFN_BACKEND_CUDA
	                                 : 0;
}

gfn_status gfn_client_devices(gfn_client *c, gfn_device_info *out, size_t cap,
                              size_t *n)
{
	const msgpack_object_array *a;
	reply r;
	gfn_status s = simple(c, "devices", &r);

	if (s != GFN_OK || (s = reply_array(&r, "devices", &a)) != GFN_OK)
		return s;
	*n = a->size;
	for (uint32_t i = 0; i < a->size && i < cap; i++) {
		const msgpack_object *d = &a->ptr[i];
		char be[16];

		memset(&out[i], 0, sizeof out[i]);
		str_field(d, "name", out[i].name, sizeof out[i].name);
		str_field(d, "backend", be, sizeof be);
		out[i].backend = backend_bit(be);
		out[i].backend_index = (int)i64_field(d, "index");
		out[i].memory_bytes = u64_field(d, "memory_bytes");
		out[i].compute_units = (unsigned)u64_field(d, "compute_units");
		str_field(d, "pci_bus_id", out[i].pci_bus_id,
		          sizeof out[i].pci_bus_id);
		out[i].numa_node = (int)i64_field(d, "numa_node");
	}
	reply_fini(&r);
	return GFN_OK;
}

static void read_param_types(const msgpack_object *f,
                             gfn_client_function_info *fi)
{
	const msgpack_object_array *a;
	char err[GFN_WIRE_DETAIL_MAX];
	int64_t t;

	if (wire_get_array(f, "param_types", &a, err) != GFN_OK)
		return;
	for (uint32_t i = 0; i < a->size && i < GFN_MAX_PARAMS; i++)
		if (wire_as_i64(&a->ptr[i], &t) == GFN_OK)
			fi->param_types[i] = (gfn_param_type)t;
}

gfn_status gfn_client_functions(gfn_client *c, gfn_client_function_info *out,
                                size_t cap, size_t *n)
{
	const msgpack_object_array *a;
	reply r;
	gfn_status s = simple(c, "functions", &r);

	if (s != GFN_OK || (s = reply_array(&r, "functions", &a)) != GFN_OK)
		return s;
	*n = a->size;
	for (uint32_t i = 0; i < a->size && i < cap; i++) {
		const msgpack_object *f = &a->ptr[i];

		memset(&out[i], 0, sizeof out[i]);
		str_field(f, "name", out[i].name, sizeof out[i].name);
		str_field(f, "kind", out[i].kind, sizeof out[i].kind);
		out[i].fn.id = (uint32_t)u64_field(f, "id");
		out[i].n_inputs = (unsigned)u64_field(f, "n_inputs");
		out[i].n_outputs = (unsigned)u64_field(f, "n_outputs");
		out[i].n_params = (unsigned)u64_field(f, "n_params");
		read_param_types(f, &out[i]);
	}
	reply_fini(&r);
	return GFN_OK;
}

gfn_status gfn_client_function_find(gfn_client *c, const char *name,
                                    gfn_function *out)
{
	gfn_client_function_info fi[256];
	size_t n;
	gfn_status s = gfn_client_functions(c, fi, 256, &n);

	if (s != GFN_OK)
		return s;
	for (size_t i = 0; i < n && i < 256; i++)
		if (strcmp(fi[i].name, name) == 0) {
			*out = fi[i].fn;
			return GFN_OK;
		}
	return fail(GFN_ENOENT, "no function named \"%s\"", name);
}

/* Send a registration request (fields already packed), read "fn". */
static gfn_status reg_call(gfn_client *c, wire_out *w, gfn_function *out)
{
	reply r;
	gfn_status s = call(c, w, &r, "register");

	if (s != GFN_OK)
		return s;
	out->id = (uint32_t)u64_field(r.in.root, "fn");
	reply_fini(&r);
	return GFN_OK;
}

gfn_status gfn_client_register_builtin(gfn_client *c, const char *name,
                                       gfn_function *out)
{
	wire_out w;

	if (wire_out_init(&w) != 0)
		return fail(GFN_ENOMEM, "out of memory");
	begin(c, &w, "register", 2);
	wire_kstr(&w, "name", name);
	wire_kstr(&w, "kind", "builtin");
	return reg_call(c, &w, out);
}

gfn_status gfn_client_register_model(gfn_client *c, const char *name,
                                     const char *dir, gfn_function *out)
{
	wire_out w;

	if (wire_out_init(&w) != 0)
		return fail(GFN_ENOMEM, "out of memory");
	begin(c, &w, "register", 3);
	wire_kstr(&w, "name", name);
	wire_kstr(&w, "kind", "model");
	wire_kstr(&w, "dir", dir);
	return reg_call(c, &w, out);
}

static void pack_specs(wire_out *w, const char *key, const gfn_tensor_spec *t,
                       size_t n)
{
	wire_key(w, key);
	msgpack_pack_array(&w->pk, n);
	for (size_t i = 0; i < n; i++) {
		msgpack_pack_map(&w->pk, 2);
		wire_ku64(w, "dtype", (uint64_t)t[i].dtype);
		wire_key(w, "dims");
		msgpack_pack_array(&w->pk, (size_t)t[i].ndim);
		for (int d = 0; d < t[i].ndim; d++)
			msgpack_pack_int64(&w->pk, t[i].dims[d]);
	}
}

static void pack_work(wire_out *w, const gfn_work_rule *r)
{
	wire_key(w, "work");
	msgpack_pack_map(&w->pk, 5);
	wire_ki64(w, "kind", r->kind);
	wire_ki64(w, "tensor", r->tensor);
	wire_ki64(w, "pass_sizes", r->pass_sizes);
	for (int k = 0; k < 2; k++) {
		const size_t *v = k ? r->local : r->global;

		wire_key(w, k ? "local" : "global");
		msgpack_pack_array(&w->pk, 3);
		for (int i = 0; i < 3; i++)
			msgpack_pack_uint64(&w->pk, v[i]);
	}
}

gfn_status gfn_client_register_opencl(gfn_client *c,
                                      const gfn_function_desc *desc,
                                      gfn_function *out)
{
	const gfn_opencl_kernel *k = desc ? desc->opencl : NULL;
	wire_out w;

	if (!k || !k->source || !k->name || !desc->name)
		return fail(GFN_EINVAL, "an OpenCL kernel with source and "
		                        "name is required");
	if (wire_out_init(&w) != 0)
		return fail(GFN_ENOMEM, "out of memory");
	begin(c, &w, "register", 9);
	wire_kstr(&w, "name", desc->name);
	wire_kstr(&w, "kind", "opencl");
	wire_kstr(&w, "source", k->source);
	wire_kstr(&w, "kernel", k->name);
	wire_kstr(&w, "options", k->options ? k->options : "");
	pack_specs(&w, "inputs", desc->inputs, desc->n_inputs);
	pack_specs(&w, "outputs", desc->outputs, desc->n_outputs);
	wire_key(&w, "params");
	msgpack_pack_array(&w.pk, desc->n_params);
	for (size_t i = 0; i < desc->n_params; i++)
		msgpack_pack_int64(&w.pk, desc->params[i].type);
	pack_work(&w, &k->work);
	return reg_call(c, &w, out);
}

/* The daemon's limits, asking once per connection. */
static gfn_status limits(gfn_client *c, gfn_client_info *info)
{
	int have;

	pthread_mutex_lock(&c->lock);
	have = c->have_info;
	*info = c->info;
	pthread_mutex_unlock(&c->lock);
	return have ? GFN_OK : gfn_client_hello(c, info);
}

/* The shared store connection, attached on first use. Under c->lock. */
static gfn_status store_handle(gfn_client *c, const gfn_client_info *info,
                               int fresh)
{
	if (fresh && c->store) {
		gfn_store_client_detach(c->store);
		c->store = NULL;
	}
	if (c->store)
		return GFN_OK;
	if (gfn_store_client_attach(info->store_socket, &c->store) != GFN_OK)
		return fail(GFN_ESHUTDOWN, "store at %s: %s",
		            info->store_socket, gfn_error_detail());
	return GFN_OK;
}

/*
 * A large payload: written into the shared segment by this process, so
 * the daemon never copies it. The reference belongs to the store
 * connection (given back when this process goes, like the others).
 */
static gfn_status put_store(gfn_client *c, const gfn_client_info *info,
                            gfn_dtype dt, int ndim, const int64_t *shape,
                            const void *data, size_t len, gfn_object *out)
{
	gfn_status s = GFN_ESHUTDOWN;
	void *p;
	size_t size;

	pthread_mutex_lock(&c->lock);
	/* A daemon restarted since: the old store connection is dead. */
	for (int attempt = 0; attempt < 2 && s == GFN_ESHUTDOWN; attempt++) {
		s = store_handle(c, info, attempt);
		if (s == GFN_OK)
			s = gfn_store_client_create(c->store, dt, ndim, shape,
			                            out);
	}
	pthread_mutex_unlock(&c->lock);
	if (s != GFN_OK)
		return fail(s, "%s", gfn_error_detail());
	s = gfn_store_client_map(c->store, *out, &p, &size);
	if (s == GFN_OK && size != len)
		s = GFN_ERANGE;
	if (s == GFN_OK) {
		memcpy(p, data, len);
		s = gfn_store_client_seal(c->store, *out);
	}
	if (s != GFN_OK) {
		gfn_store_client_release(c->store, *out);
		return fail(s, "put of %zu bytes through the store failed",
		            len);
	}
	return GFN_OK;
}

static gfn_status put_inline(gfn_client *c, gfn_dtype dt, int ndim,
                             const int64_t *shape, const void *data, size_t len,
                             gfn_object *out)
{
	char err[GFN_WIRE_DETAIL_MAX];
	wire_out w;
	reply r;
	gfn_status s;

	if (wire_out_init(&w) != 0)
		return fail(GFN_ENOMEM, "out of memory");
	begin(c, &w, "put", 3);
	wire_ku64(&w, "dtype", (uint64_t)dt);
	wire_key(&w, "shape");
	msgpack_pack_array(&w.pk, (size_t)ndim);
	for (int i = 0; i < ndim; i++)
		msgpack_pack_int64(&w.pk, shape[i]);
	wire_kbin(&w, "data", data, len);
	if ((s = call(c, &w, &r, "put")) != GFN_OK)
		return s;
	if (wire_get_obj(r.in.root, "obj", out, err) != GFN_OK)
		s = fail(GFN_EINTERNAL, "put reply without an object id");
	reply_fini(&r);
	return s;
}

gfn_status gfn_client_put(gfn_client *c, gfn_dtype dtype, int ndim,
                          const int64_t *shape, const void *data, size_t len,
                          gfn_object *out)
{
	gfn_client_info info;
	gfn_status s;

	if (ndim < 0 || ndim > GFN_MAX_DIMS || (ndim && !shape) ||
	    (len && !data))
		return fail(GFN_EINVAL, "bad ndim, shape or data");
	if ((s = limits(c, &info)) != GFN_OK)
		return s;
	if (len > info.inline_max && info.store_socket[0])
		return put_store(c, &info, dtype, ndim, shape, data, len, out);
	return put_inline(c, dtype, ndim, shape, data, len, out);
}

/* Fill view from a get reply; data is copied out of the message. */
static gfn_status read_view(reply *r, gfn_object_view *v)
{
	const msgpack_object_array *a;
	const void *p;
	size_t n;
	char err[GFN_WIRE_DETAIL_MAX];

	memset(v, 0, sizeof *v);
	if (wire_get_bin(r->in.root, "data", &p, &n, err) != GFN_OK ||
	    wire_get_array(r->in.root, "shape", &a, err) != GFN_OK ||
	    a->size > GFN_MAX_DIMS)
		return fail(GFN_EINTERNAL, "malformed get reply");
	v->dtype = (gfn_dtype)u64_field(r->in.root, "dtype");
	v->ndim = (int)a->size;
	for (uint32_t i = 0; i < a->size; i++)
		if (wire_as_i64(&a->ptr[i], &v->shape[i]) != GFN_OK)
			return fail(GFN_EINTERNAL, "malformed get reply");
	void *copy = malloc(n ? n : 1);
	if (!copy)
		return fail(GFN_ENOMEM, "no memory for %zu bytes", n);
	memcpy(copy, p, n);
	v->data = copy;
	v->size = n;
	return GFN_OK;
}

/* A request whose only field is the object id. */
static gfn_status obj_call(gfn_client *c, const char *op, gfn_object o,
                           reply *r)
{
	wire_out w;

	if (wire_out_init(&w) != 0)
		return fail(GFN_ENOMEM, "out of memory");
	begin(c, &w, op, 1);
	wire_kobj(&w, "obj", o);
	return call(c, &w, r, op);
}

gfn_status gfn_client_object_get(gfn_client *c, gfn_object obj,
                                 gfn_object_view *view)
{
	reply r;
	gfn_status s = obj_call(c, "get", obj, &r);

	if (s != GFN_OK)
		return s;
	s = read_view(&r, view);
	reply_fini(&r);
	return s;
}

/* A get reply that names the object instead of carrying it. */
static bool is_ref(const reply *r)
{
	const msgpack_object *v = wire_find(r->in.root, "ref");

	return v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
}

/*
 * Map obj through the store: one reference held by this process's store
 * connection, data read in place. A daemon restarted since makes the old
 * store connection dead: attach again once.
 */
static gfn_status store_view(gfn_client *c, const gfn_client_info *info,
                             gfn_object obj, gfn_object_view *v)
{
	gfn_status s = GFN_ESHUTDOWN;

	pthread_mutex_lock(&c->lock);
	for (int attempt = 0; attempt < 2 && s == GFN_ESHUTDOWN; attempt++) {
		s = store_handle(c, info, attempt);
		if (s == GFN_OK)
			s = gfn_store_client_get(c->store, obj, v);
	}
	pthread_mutex_unlock(&c->lock);
	return s;
}

/* Only over ipc:// can the daemon's store be this process's. */
static bool can_map(gfn_client *c, const gfn_client_info *info)
{
	return info->store_socket[0] && strncmp(c->url, "ipc://", 6) == 0;
}

/* "get" with "map": true: the reply may name the object (is_ref). */
static gfn_status get_map(gfn_client *c, gfn_object obj, reply *r)
{
	wire_out w;

	if (wire_out_init(&w) != 0)
		return fail(GFN_ENOMEM, "out of memory");
	begin(c, &w, "get", 2);
	wire_kobj(&w, "obj", obj);
	wire_key(&w, "map");
	msgpack_pack_true(&w.pk);
	return call(c, &w, r, "get");
}

gfn_status gfn_client_object_read(gfn_client *c, gfn_object obj,
                                  gfn_client_view *out)
{
	gfn_client_info info;
	reply r;
	gfn_status s;

	memset(out, 0, sizeof *out);
	out->obj = obj;
	if ((s = limits(c, &info)) != GFN_OK)
		return s;
	if (!can_map(c, &info))
		return gfn_client_object_get(c, obj, &out->view);
	if ((s = get_map(c, obj, &r)) != GFN_OK)
		return s;
	if (!is_ref(&r)) {
		s = read_view(&r, &out->view);
		reply_fini(&r);
		return s;
	}
	reply_fini(&r);
	if (store_view(c, &info, obj, &out->view) == GFN_OK) {
		out->mapped = 1;
		return GFN_OK;
	}
	/* Not this tenant's to map (or no store): the bytes inline. */
	return gfn_client_object_get(c, obj, &out->view);
}

void gfn_client_view_release(gfn_client *c, gfn_client_view *v)
{
	gfn_store_client *store = NULL;

	if (!v || !v->view.data)
		return;
	if (v->mapped && c) {
		pthread_mutex_lock(&c->lock);
		store = c->store;
		pthread_mutex_unlock(&c->lock);
	}
	if (store)
		gfn_store_client_release(store, v->obj);
	else if (!v->mapped)
		gfn_client_view_free(&v->view);
	memset(&v->view, 0, sizeof v->view);
	v->mapped = 0;
}

void gfn_client_view_free(gfn_object_view *view)
{
	if (!view)
		return;
	free((void *)view->data);
	view->data = NULL;
}

gfn_status gfn_client_object_release(gfn_client *c, gfn_object obj)
{
	reply r;
	gfn_status s = obj_call(c, "release", obj, &r);

	if (s == GFN_OK) {
		reply_fini(&r);
		return s;
	}
	/* Not the daemon's: maybe a large put held by the store connection. */
	if (s == GFN_ESTATE && c->store &&
	    gfn_store_client_release(c->store, obj) == GFN_OK)
		return GFN_OK;
	return s;
}

gfn_status gfn_client_object_delete(gfn_client *c, gfn_object obj)
{
	reply r;
	gfn_status s = obj_call(c, "delete", obj, &r);

	if (s == GFN_OK)
		reply_fini(&r);
	return s;
}

gfn_status gfn_client_invoke(gfn_client *c, const gfn_invocation *inv,
                             gfn_future *out)
{
	wire_out w;
	reply r;
	gfn_status s;

	if (!inv || inv->callback || inv->n_inputs > GFN_MAX_INPUTS ||
	    inv->n_params > GFN_MAX_PARAMS)
		return fail(GFN_EINVAL, "bad invocation (callbacks cannot "
		                        "cross processes: wait instead)");
	if (wire_out_init(&w) != 0)
		return fail(GFN_ENOMEM, "out of memory");
	begin(c, &w, "invoke", 4);
	wire_ku64(&w, "fn", inv->fn.id);
	wire_key(&w, "inputs");
	msgpack_pack_array(&w.pk, inv->n_inputs);
	for (size_t i = 0; i < inv->n_inputs; i++)
		wire_obj(&w, inv->inputs[i]);
	/* Same machine, same layout: the scalar's bytes travel as they are. */
	wire_key(&w, "params");
	msgpack_pack_array(&w.pk, inv->n_params);
	for (size_t i = 0; i < inv->n_params; i++) {
		msgpack_pack_bin(&w.pk, sizeof inv->params[i]);
		msgpack_pack_bin_body(&w.pk, &inv->params[i],
		                      sizeof inv->params[i]);
	}
	wire_ku64(&w, "devices", inv->devices);
	if ((s = call(c, &w, &r, "invoke")) != GFN_OK)
		return s;
	out->id = u64_field(r.in.root, "future");
	reply_fini(&r);
	return out->id ? GFN_OK : fail(GFN_EINTERNAL, "invoke without future");
}

/* A request on a future, with an optional timeout field. */
static gfn_status fut_call(gfn_client *c, const char *op, gfn_future f,
                           int64_t timeout_ms, reply *r)
{
	wire_out w;

	if (wire_out_init(&w) != 0)
		return fail(GFN_ENOMEM, "out of memory");
	begin(c, &w, op, timeout_ms == INT64_MIN ? 1 : 2);
	wire_ku64(&w, "future", f.id);
	if (timeout_ms != INT64_MIN)
		wire_ki64(&w, "timeout_ms", timeout_ms);
	return call(c, &w, r, op);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * gfnd bounds each wait request (wait_slice_ms), so a long wait is a
 * series of them, each asking for what is left of the caller's timeout.
 */
gfn_status gfn_client_future_wait(gfn_client *c, gfn_future f,
                                  int64_t timeout_ns)
{
	int64_t deadline = timeout_ns < 0 ? INT64_MAX : now_ns() + timeout_ns;

	for (;;) {
		int64_t left = deadline - now_ns(), ms;
		reply r;
		gfn_status s;

		if (left < 0)
			left = 0;
		ms = timeout_ns < 0 ? -1 : left / 1000000;
		s = fut_call(c, "wait", f, ms, &r);
		if (s == GFN_OK)
			reply_fini(&r);
		if (s != GFN_ETIMEDOUT || now_ns() >= deadline)
			return s;
	}
}

gfn_status gfn_client_future_outputs(gfn_client *c, gfn_future f,
                                     gfn_object *outs, size_t cap, size_t *n)
{
	const msgpack_object_array *a;
	reply r;
	gfn_status s = fut_call(c, "outputs", f, INT64_MIN, &r);

	if (s != GFN_OK || (s = reply_array(&r, "outputs", &a)) != GFN_OK)
		return s;
	*n = a->size;
	for (uint32_t i = 0; i < a->size; i++)
		if (i >= cap || wire_as_obj(&a->ptr[i], &outs[i]) != GFN_OK) {
			/* The references are the connection's; not lost. */
			s = fail(i >= cap ? GFN_ERANGE : GFN_EINTERNAL,
			         "%u outputs, room for %zu", a->size, cap);
			break;
		}
	reply_fini(&r);
	return s;
}

gfn_status gfn_client_future_cancel(gfn_client *c, gfn_future f)
{
	reply r;
	gfn_status s = fut_call(c, "cancel", f, INT64_MIN, &r);

	if (s == GFN_OK)
		reply_fini(&r);
	return s;
}

gfn_status gfn_client_future_release(gfn_client *c, gfn_future f)
{
	reply r;
	gfn_status s = fut_call(c, "future_release", f, INT64_MIN, &r);

	if (s == GFN_OK)
		reply_fini(&r);
	return s;
}

gfn_status gfn_client_stats(gfn_client *c, gfn_stats *out,
                            gfn_client_daemon_stats *daemon)
{
	const msgpack_object *m;
	reply r;
	gfn_status s = simple(c, "stats", &r);

	if (s != GFN_OK)
		return s;
	m = r.in.root;
#define F(name) out->name = u64_field(m, #name)
	F(submitted), F(completed), F(failed), F(canceled), F(rejected_busy);
	F(queued), F(running), F(host_allocs), F(context_creates);
	F(kernel_compiles), F(pinnings), F(input_copies), F(store_objects);
	F(store_bytes), F(store_evictions), F(kernel_cache_hits);
	F(device_allocs), F(device_resets), F(devices_retired);
#undef F
	if (daemon) {
		daemon->requests = u64_field(m, "requests");
		daemon->bad_requests = u64_field(m, "bad_requests");
		daemon->connections = u64_field(m, "connections");
		daemon->sessions = u64_field(m, "sessions");
		daemon->inflight = i64_field(m, "inflight");
		daemon->draining = u64_field(m, "draining");
		daemon->held_objects = u64_field(m, "held_objects");
		daemon->held_futures = u64_field(m, "held_futures");
	}
	reply_fini(&r);
	return GFN_OK;
}
