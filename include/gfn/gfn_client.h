/*
 * gfn_client.h - gfn from another process, through the gfnd daemon.
 *
 * The calls have the shapes of the in-process calls in gfn.h: the same id
 * structs, statuses and ownership rules, with a gfn_client handle in place
 * of the engine. The wire protocol they speak is docs/protocol.md.
 *
 * What differs from the in-process API:
 *  - References a client holds (objects it put or took as outputs,
 *    futures it made) belong to its connection: when the connection goes
 *    (gfn_client_close, exit, crash, SIGKILL), gfnd gives them all back.
 *  - A call whose daemon is not reachable fails at once with
 *    GFN_ESHUTDOWN ("gfnd at ... is not reachable"); one whose connection
 *    drops while it waits fails with GFN_ESHUTDOWN too. The handle
 *    reconnects by itself when gfnd comes back; ids from before are then
 *    unknown to the new daemon (GFN_ENOENT / GFN_ESTALE).
 *  - GFN_ETIMEDOUT when gfnd does not answer within the request timeout
 *    (30 s, GFN_CLIENT_TIMEOUT_MS in the environment overrides).
 *  - Failures set this thread's gfn_client_error_detail(), with the
 *    daemon's own message when the daemon refused.
 * A handle may be used from many threads at once: every call is its own
 * request on its own NNG context, so many are in flight per connection.
 */
#ifndef GFN_GFN_CLIENT_H
#define GFN_GFN_CLIENT_H

#include <gfn/gfn.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gfn_client gfn_client;

/*
 * Connect to gfnd at url ("ipc:///run/gfn/gfnd.sock"). Returns at once
 * even when gfnd is not up yet: calls wait up to 2 s for the connection.
 * On success *out owns the handle (give it back with gfn_client_close).
 */
GFN_API gfn_status gfn_client_connect(const char *url, gfn_client **out);
/* Close the connection; gfnd releases what it held. NULL is a no-op. */
GFN_API void gfn_client_close(gfn_client *c);
/* The detail of this thread's last failed client call; never NULL. */
GFN_API const char *gfn_client_error_detail(void);

typedef struct gfn_client_info {
	char server[32];        /* "gfnd" */
	char version[32];       /* gfn version of the daemon */
	unsigned protocol;      /* wire protocol version */
	char store_socket[256]; /* store socket for large objects, or "" */
	uint64_t inline_max;    /* largest payload put or got inline */
	uint64_t max_message;   /* largest message gfnd accepts */
} gfn_client_info;

/* Say hello: check the protocol version and learn the daemon's limits. */
GFN_API gfn_status gfn_client_hello(gfn_client *c, gfn_client_info *out);

/* The daemon's devices: up to cap into out, the total into *n. */
GFN_API gfn_status gfn_client_devices(gfn_client *c, gfn_device_info *out,
                                      size_t cap, size_t *n);

typedef struct gfn_client_function_info {
	char name[64];                              /* registered name */
	char kind[16];                              /* "builtin", "opencl",
	                                               "model" */
	gfn_function fn;                            /* id to invoke */
	unsigned n_inputs;                          /* signature sizes */
	unsigned n_outputs;                         /* ... */
	unsigned n_params;                          /* ... */
	gfn_param_type param_types[GFN_MAX_PARAMS]; /* of each param */
} gfn_client_function_info;

/* The daemon's functions: up to cap into out, the total into *n. */
GFN_API gfn_status gfn_client_functions(gfn_client *c,
                                        gfn_client_function_info *out,
                                        size_t cap, size_t *n);
/* As gfn_function_find. */
GFN_API gfn_status gfn_client_function_find(gfn_client *c, const char *name,
                                            gfn_function *out);
/* Make a built-in (gfn_builtins.h) available; its id in *out. */
GFN_API gfn_status gfn_client_register_builtin(gfn_client *c, const char *name,
                                               gfn_function *out);
/*
 * As gfn_function_register with desc->opencl set (cpu_fn and cuda are
 * not sent: code cannot travel). The build log of a failed build is the
 * detail.
 */
GFN_API gfn_status gfn_client_register_opencl(gfn_client *c,
                                              const gfn_function_desc *desc,
                                              gfn_function *out);
/* A model directory (gfn_model.h) on the daemon's machine. */
GFN_API gfn_status gfn_client_register_model(gfn_client *c, const char *name,
                                             const char *dir,
                                             gfn_function *out);

/*
 * Create, fill and seal an object in one call (gfn_object_create, write,
 * seal). len must be the tensor's size. On success the connection owns
 * one reference to *out. Payloads up to the daemon's inline_max travel
 * in the message; larger ones are written straight into the shared
 * store (zero copy through the daemon) when it advertises a store socket.
 */
GFN_API gfn_status gfn_client_put(gfn_client *c, gfn_dtype dtype, int ndim,
                                  const int64_t *shape, const void *data,
                                  size_t len, gfn_object *out);
/*
 * Read a sealed object: a copy of its bytes in view->data, which the
 * caller owns and frees with gfn_client_view_free. No reference is kept.
 */
GFN_API gfn_status gfn_client_object_get(gfn_client *c, gfn_object obj,
                                         gfn_object_view *view);
GFN_API void gfn_client_view_free(gfn_object_view *view);

/* What gfn_client_object_read returns. */
typedef struct gfn_client_view {
	gfn_object_view view; /* data valid until gfn_client_view_release */
	gfn_object obj;       /* the object read */
	int mapped;           /* 1: data lies in the shared store segment
	                         (zero copy); 0: a copy that arrived inline */
} gfn_client_view;

/*
 * Read a sealed object, in place when it can be: an object larger than
 * the daemon's inline_max that belongs to this process's store tenant
 * (its uid + 1: the outputs of invocations it made over ipc://, objects
 * it put through the store) is mapped from the shared store, and
 * view.data points into the segment the engine wrote it in (no copy, not
 * even through the daemon). This process's store connection then holds
 * one reference, so the object stays even after gfn_client_object_release
 * of the connection's own. Smaller objects, and any other (tcp://,
 * another tenant's), arrive inline as with gfn_client_object_get. Give
 * the view back with gfn_client_view_release, before gfn_client_close
 * (which unmaps the store).
 */
GFN_API gfn_status gfn_client_object_read(gfn_client *c, gfn_object obj,
                                          gfn_client_view *out);
/* Give back what gfn_client_object_read took. NULL view is a no-op. */
GFN_API void gfn_client_view_release(gfn_client *c, gfn_client_view *v);
/* Give back one reference this connection holds (GFN_ESTATE if none). */
GFN_API gfn_status gfn_client_object_release(gfn_client *c, gfn_object obj);
/* As gfn_object_delete. */
GFN_API gfn_status gfn_client_object_delete(gfn_client *c, gfn_object obj);

/*
 * As gfn_invoke; inv->callback must be NULL (GFN_EINVAL): wait instead.
 * On GFN_OK the connection owns the future.
 */
GFN_API gfn_status gfn_client_invoke(gfn_client *c, const gfn_invocation *inv,
                                     gfn_future *out);
/* As gfn_future_wait (negative timeout: forever). */
GFN_API gfn_status gfn_client_future_wait(gfn_client *c, gfn_future f,
                                          int64_t timeout_ns);
/* As gfn_future_outputs: the connection owns one reference of each. */
GFN_API gfn_status gfn_client_future_outputs(gfn_client *c, gfn_future f,
                                             gfn_object *outs, size_t cap,
                                             size_t *n);
/* As gfn_future_cancel. */
GFN_API gfn_status gfn_client_future_cancel(gfn_client *c, gfn_future f);
/* As gfn_future_release. */
GFN_API gfn_status gfn_client_future_release(gfn_client *c, gfn_future f);

/* The daemon's own counters, beside the engine's. */
typedef struct gfn_client_daemon_stats {
	uint64_t requests;     /* requests answered */
	uint64_t bad_requests; /* malformed, unknown op or version */
	uint64_t connections;  /* connections accepted so far */
	uint64_t sessions;     /* connections open now */
	int64_t inflight;      /* accepted invocations not ended */
	uint64_t draining;     /* 1 while shutting down */
	uint64_t held_objects; /* object references clients hold */
	uint64_t held_futures; /* futures clients hold */
} gfn_client_daemon_stats;

/* Engine counters into *out; the daemon's into *daemon when not NULL. */
GFN_API gfn_status gfn_client_stats(gfn_client *c, gfn_stats *out,
                                    gfn_client_daemon_stats *daemon);

#ifdef __cplusplus
}
#endif
#endif /* GFN_GFN_CLIENT_H */
