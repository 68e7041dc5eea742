/*
 * gfnd.h - the daemon's internal interface (service/gfnd_*.c).
 *
 * gfnd embeds one engine and serves it over NNG (REP, one context per
 * worker thread). Every connection (an NNG pipe) has a session that holds
 * the references its client owns, so that they are given back when the
 * client goes away, however it goes.
 */
#ifndef GFN_SERVICE_GFND_H
#define GFN_SERVICE_GFND_H

#include "wire.h"

#include <gfn/gfn.h>

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define GFND_MAX_FUNCTIONS 256 /* functions the daemon keeps a record of */
#define GFND_PATH_MAX 512      /* bytes of a path or URL in the config */

enum { GFND_LOG_ERROR, GFND_LOG_WARN, GFND_LOG_INFO, GFND_LOG_DEBUG };

#define GFND_MAX_MODELS 32 /* "model" lines in the config */

/* A model the config registers: "model = NAME DIR". */
typedef struct gfnd_model_cfg {
	char name[64];           /* function name */
	char dir[GFND_PATH_MAX]; /* model directory (model.json + weights) */
} gfnd_model_cfg;

typedef struct gfnd_config {
	char listen[GFND_PATH_MAX];       /* ipc:// URL clients dial */
	char tcp_listen[GFND_PATH_MAX];   /* optional tcp:// URL, "" = none */
	char token[128];                  /* required on tcp (and then
	                                     mandatory) */
	bool tcp_allow_remote;            /* tcp_listen may name a
	                                     non-loopback address */
	char store_socket[GFND_PATH_MAX]; /* engine's store socket; "" =
	                                     next to the ipc socket */
	char config_path[GFND_PATH_MAX];  /* file read at start and SIGHUP */
	unsigned workers;                 /* NNG contexts / threads */
	int log_level;                    /* GFND_LOG_* */
	unsigned backends;                /* GFN_BACKEND_* mask */
	unsigned cpu_devices;             /* gfn_config.cpu_devices */
	size_t store_capacity;            /* gfn_config.store_capacity */
	size_t max_message;               /* NNG_OPT_RECVMAXSZ */
	size_t inline_max;                /* largest inline put/get payload */
	unsigned drain_timeout_ms;        /* SIGTERM: cancel after this */
	unsigned wait_slice_ms;           /* longest one wait request blocks */
	bool builtins;                    /* register gfn.* at start */
	unsigned metrics_port;            /* loopback HTTP port; 0 = off */
	int ready_fd;                     /* write "ready\n" here once
	                                     listening; -1 = none */
	gfnd_model_cfg models[GFND_MAX_MODELS]; /* registered at start and
	                                           on SIGHUP */
	unsigned n_models;                      /* how many */
} gfnd_config;

/* What the daemon knows of a function it registered. */
typedef struct gfnd_fn {
	char name[64];                              /* registered name */
	char kind[16];                              /* "builtin", "opencl" */
	gfn_function id;                            /* engine id */
	unsigned n_inputs;                          /* signature sizes */
	unsigned n_outputs;                         /* ... */
	unsigned n_params;                          /* ... */
	gfn_param_type param_types[GFN_MAX_PARAMS]; /* how to read params */
} gfnd_fn;

typedef struct gfnd_session gfnd_session;

#define GFND_LAT_BUCKETS 7  /* latency histogram bounds, then +Inf */
#define GFND_MAX_DEVICES 64 /* devices with their own latency series */

/* One latency histogram: invocations of one function on one device. */
typedef struct gfnd_latency {
	atomic_ullong count;                         /* invocations ended */
	atomic_ullong sum_ns;                        /* total latency */
	atomic_ullong buckets[GFND_LAT_BUCKETS + 1]; /* latency histogram */
} gfnd_latency;

/*
 * Per-function metrics, at the function's index in gfnd.fns: latency per
 * device it ran on (gfn_future_device); the last entry counts those that
 * ended without running on one (refused, canceled while queued) and any
 * device past GFND_MAX_DEVICES.
 */
typedef struct gfnd_fn_metrics {
	atomic_ullong errors;                   /* ended with an error */
	gfnd_latency lat[GFND_MAX_DEVICES + 1]; /* by device */
} gfnd_fn_metrics;

/* What the completion callback of one invocation needs. */
typedef struct gfnd_call {
	struct gfnd *d;    /* the daemon */
	unsigned fn_index; /* index into fns / fn_metrics */
	uint64_t t0_ns;    /* accepted at (monotonic) */
} gfnd_call;

typedef struct gfnd_worker {
	struct gfnd *d;   /* the daemon */
	nng_ctx ctx;      /* its own REP context: one request at a time */
	nng_aio *aio;     /* for recv and send */
	pthread_t thread; /* runs worker_main */
} gfnd_worker;

typedef struct gfnd {
	gfnd_config cfg;                 /* as loaded */
	gfn_engine *e;                   /* the embedded engine */
	nng_socket sock;                 /* REP socket */
	gfnd_worker *workers;            /* cfg.workers of them */
	unsigned n_workers;              /* started */
	atomic_bool draining;            /* SIGTERM: refuse new work */
	atomic_bool stopping;            /* workers must leave */
	atomic_uint wait_slice_ms;       /* live value (SIGHUP) */
	pthread_mutex_t lock;            /* sessions, fns, inflight cond */
	pthread_cond_t idle;             /* inflight reached 0 */
	long inflight;                   /* accepted invocations not ended */
	gfnd_session *sessions[64];      /* hash on pipe id */
	gfnd_fn fns[GFND_MAX_FUNCTIONS]; /* registered functions */
	gfnd_fn_metrics fn_metrics[GFND_MAX_FUNCTIONS]; /* same index */
	void *mhd;                  /* the metrics HTTP daemon */
	unsigned n_fns;             /* used entries of fns */
	atomic_ulong requests;      /* requests answered */
	atomic_ulong bad_requests;  /* malformed or unknown ones */
	atomic_ulong connections;   /* pipes accepted so far */
	atomic_ulong refused_peers; /* pipes closed: wrong uid */
} gfnd;

/* gfnd_log.c */
extern atomic_int gfnd_log_level; /* SIGHUP may change it */
void gfnd_log(int level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* gfnd_config.c: defaults, file, flags. Errors go to err (256 bytes). */
void gfnd_config_defaults(gfnd_config *c);
int gfnd_config_load(gfnd_config *c, const char *path, char *err);
int gfnd_config_args(gfnd_config *c, int argc, char **argv, char *err);
int gfnd_config_check(const gfnd_config *c, char *err);

/* gfnd_server.c */
/* Make the ipc socket's directory (0700) or check it; before the
   engine, whose store socket lies there too. */
int gfnd_socket_dir(const char *url);
int gfnd_server_start(gfnd *d);
void gfnd_server_stop(gfnd *d);
/* Wait (bounded) until accepted invocations have ended and clients
   have collected their futures. */
void gfnd_drain(gfnd *d, unsigned timeout_ms);

/* gfnd_session.c: per-connection ownership. All take d->lock. */
/* trusted: an ipc peer of our uid; others must send the token. tenant:
   what the connection's invocations run as (gfn_invocation.tenant): the
   store tenant of the peer's process, uid + 1. */
void gfnd_session_open(gfnd *d, uint32_t pipe, bool trusted, uint32_t tenant);
bool gfnd_session_trusted(gfnd *d, uint32_t pipe);
/* The connection's tenant; 0 for a connection gfnd does not know. */
uint32_t gfnd_session_tenant(gfnd *d, uint32_t pipe);
void gfnd_session_close(gfnd *d, uint32_t pipe);
void gfnd_sessions_close_all(gfnd *d);
gfn_status gfnd_session_add_object(gfnd *d, uint32_t pipe, gfn_object o);
/* Remove one reference record; GFN_ESTATE when the session holds none. */
gfn_status gfnd_session_take_object(gfnd *d, uint32_t pipe, gfn_object o);
/* The connection may use o: it holds a reference through gfnd, or o
   belongs to its tenant. GFN_EACCES otherwise. */
gfn_status gfnd_session_may_use(gfnd *d, uint32_t pipe, gfn_object o);
gfn_status gfnd_session_add_future(gfnd *d, uint32_t pipe, gfn_future f);
gfn_status gfnd_session_has_future(gfnd *d, uint32_t pipe, gfn_future f);
gfn_status gfnd_session_take_future(gfnd *d, uint32_t pipe, gfn_future f);
size_t gfnd_session_count(gfnd *d);
/* Futures clients still hold, over all sessions. */
size_t gfnd_session_futures(gfnd *d);
/* Object references clients hold, over all sessions. */
size_t gfnd_session_objects(gfnd *d);

/* gfnd_ops.c: one request in, one reply out (never NULL unless OOM). */
nng_msg *gfnd_handle(gfnd *d, nng_msg *req);
/* gfnd_metrics.c */
uint64_t gfnd_now_ns(void);
/* device: where it ran; SIZE_MAX when it ran on none. */
void gfnd_metrics_record(gfnd *d, unsigned fn_index, size_t device,
                         uint64_t t0_ns, gfn_status s);
/* The exposition text (malloc'ed, *len bytes); NULL without memory. */
char *gfnd_metrics_text(gfnd *d, size_t *len);
int gfnd_metrics_start(gfnd *d);
void gfnd_metrics_stop(gfnd *d);

/* gfnd_fns.c */
gfn_status gfnd_fns_add_builtins(gfnd *d);
/* Register the models of c that are not registered yet (start, SIGHUP);
   the first failure is returned, the others are still tried. */
gfn_status gfnd_models_sync(gfnd *d, const gfnd_config *c);
/* Unregister every model function (after the drain, before the engine
   is destroyed). */
void gfnd_models_drop(gfnd *d);
/* Copy of the record of function id and its index; NULL if unknown. */
const gfnd_fn *gfnd_fn_lookup(gfnd *d, uint32_t id, gfnd_fn *copy,
                              unsigned *index);
gfn_status gfnd_register(gfnd *d, const msgpack_object *m, gfnd_fn *out,
                         char *detail);
void gfnd_invocation_ended(gfn_engine *e, gfn_future f, gfn_status s,
                           void *arg);

#endif /* GFN_SERVICE_GFND_H */
