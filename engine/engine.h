/*
 * engine.h - the engine's internal umbrella header: devices, device
 * queues, functions, jobs (the state behind a future). Internal: not API.
 */
#ifndef GFN_ENGINE_ENGINE_H
#define GFN_ENGINE_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "engine/place.h"
#include "engine/pqueue.h"
#include "engine/store.h"
#include "gfn/gfn.h"
#include "runtime/backend.h"
#include "runtime/devfn.h"
#include "runtime/devmem.h"
#include "runtime/kcache.h"
#include "runtime/topology.h"
#include "runtime/hostmem.h"
#include "runtime/util.h"

#define GFN_MAX_DEVICES 64     /* devices one engine drives */
#define GFN_MAX_FUNCTIONS 4096 /* registered functions at once */

/* ---- functions (registry.c) --------------------------------------------- */

typedef struct gfn_fn {
	char name[64];                        /* unique name */
	size_t n_in, n_out, n_par;            /* signature sizes */
	gfn_tensor_spec in[GFN_MAX_INPUTS];   /* inputs (names dropped) */
	gfn_tensor_spec out[GFN_MAX_OUTPUTS]; /* outputs */
	gfn_param_type par[GFN_MAX_PARAMS];   /* parameter types */
	gfn_cpu_kernel_fn cpu_fn;             /* CPU version or NULL */
	void *cpu_user;                       /* its argument */
	int has_ocl;                          /* OpenCL version given */
	gfn_work_rule work;                   /* its work-size rule */
	char *ocl_source;                     /* its source (owned) */
	char *ocl_options;                    /* build options (owned) */
	char ocl_name[64];                    /* kernel name */
	int has_cuda;                         /* CUDA version given */
	void *cuda_image;                     /* its module image (owned) */
	size_t cuda_image_len;                /* bytes of it */
	char *cuda_source;                    /* or its CUDA C (owned) */
	char *cuda_options;                   /* NVRTC options (owned) */
	char cuda_name[64];                   /* kernel name */
	gfn_bkernel *kernel[GFN_MAX_DEVICES]; /* per device; NULL: can't */
	uint64_t runs_on;   /* devices it was loaded on (fixed) */
	unsigned batch_max; /* > 1: invocations may run batched */
	uint64_t (*load_cost)(void *, int); /* warm-up estimate, or NULL */
	_Atomic int64_t pending; /* batching: invocations not yet ended */
	_Atomic uint64_t avg_ns[GFN_MAX_DEVICES]; /* learned run time
	                                              per device, 0 unknown */
	uint32_t slot;                            /* registry slot */
	gfn_devfn dx;              /* device program, if has_dx */
	int has_dx;                /* one was given */
	uint64_t dx_on;            /* devices it was prepared on (fixed) */
	void (*user_free)(void *); /* called with cpu_user when freed */
} gfn_fn;

/*
 * A registry slot. word = generation << 32 | dead << 31 | references; one
 * atomic word so that taking a reference checks liveness and generation
 * in the same compare-and-swap, without a lock on the invoke path.
 */
typedef struct gfn_fn_slot {
	_Atomic uint64_t word; /* see above */
	gfn_fn *fn;            /* set before word is published */
	uint32_t next_free;    /* free list (registry lock) */
} gfn_fn_slot;

#define FN_DEAD (1ull << 31)
#define FN_REFS 0x7fffffffull

/* ---- tenant limits (tenants.c) ------------------------------------------ */

#define GFN_MAX_TENANTS 1024 /* tenants with limits tracked at once */

typedef struct gfn_tenant_rec {
	_Atomic uint32_t id;                        /* tenant, 0 = free */
	_Atomic int64_t inflight;                   /* invocations not ended */
	_Atomic int64_t dev_bytes[GFN_MAX_DEVICES]; /* device memory used */
} gfn_tenant_rec;

/* ---- jobs: the state behind a future (future.c) ----------------------------- */

enum {
	JOB_FREE = 0, /* on the free list */
	JOB_PREP = 1, /* being checked and filled at submission */
	JOB_QUEUED,   /* in a device queue */
	JOB_RUNNING,  /* claimed by a worker (or a canceler) */
	JOB_DONE,     /* ended; status is final */
};

typedef struct gfn_job {
	_Atomic uint64_t sw;        /* generation << 32 | JOB_* state */
	_Atomic uint32_t refs;      /* owner's + engine's */
	_Atomic uint32_t wake;      /* futex word, bumped at completion */
	_Atomic uint32_t waiters;   /* threads asleep on wake */
	_Atomic uint32_t released;  /* owner gave the future back */
	gfn_status status;          /* final status, written before DONE */
	char detail[160];           /* detail message of a failure */
	gfn_fn *fn;                 /* referenced until the job ends */
	int dev;                    /* device it was placed on */
	uint8_t n_in, n_out, n_par; /* argument counts */
	uint8_t inputs_held;        /* input references still held */
	uint32_t tenant;            /* owner of the outputs (acquire) */
	uint8_t outputs_live;       /* outputs exist and belong to the job */
	gfn_object in_id[GFN_MAX_INPUTS];   /* input objects */
	gfn_object out_id[GFN_MAX_OUTPUTS]; /* output objects */
	gfn_tensor in[GFN_MAX_INPUTS];      /* inputs as tensors */
	gfn_tensor out[GFN_MAX_OUTPUTS];    /* outputs: shape set at submit */
	gfn_scalar par[GFN_MAX_PARAMS];     /* parameters */
	gfn_callback cb;                    /* optional */
	uint64_t devmask;                   /* allowed devices, 0 = any */
	int8_t in_node[GFN_MAX_INPUTS];     /* NUMA node of each input, -1 */
	uint64_t
	        est_ns; /* expected run time, counted in its device's backlog */
	_Atomic uint64_t end_ns; /* when it should end, set when a worker
	                            claims it (claim time + est_ns); 0 while
	                            queued or unknown: waiters plan by it */
	int32_t prio;            /* queue priority */
	uint64_t deadline;       /* gfn_clock_ns time, UINT64_MAX: none */
	gfn_tenant_rec *quota;   /* limits it counts against, or NULL */
	uint64_t t_submit;       /* submission time (batching functions) */
	int8_t link_dst;    /* node its crossing bytes are counted to, -1 */
	void *cb_arg;       /* its argument */
	uint32_t idx;       /* slot in the job table */
	uint32_t next_free; /* free list */
} gfn_job;

/* ---- devices and their queues (sched.c) --------------------------------------- */

typedef struct gfn_worker {
	struct gfn_engine *e; /* owner */
	struct gfn_dev *dev;  /* device it feeds */
	gfn_bqueue *bq;       /* its backend queue */
	pthread_t thread;     /* the thread */
	int started;          /* thread was created */
	void *bbuf;           /* batch staging buffer */
	size_t bcap;          /* its size */
} gfn_worker;

typedef struct gfn_dev {
	int index;                      /* engine device index */
	const gfn_backend_ops *ops;     /* its backend */
	gfn_bdev *bdev;                 /* open device (context) */
	gfn_device_info info;           /* properties */
	gfn_devmem *pool;               /* device memory, NULL on the CPU */
	pthread_mutex_t lock;           /* guards q */
	gfn_pqueue q;                   /* queued future ids */
	size_t cap;                     /* max queued (config) */
	_Atomic size_t count;           /* queued now; read without lock */
	_Atomic uint32_t wake_seq;      /* futex word for idle workers */
	_Atomic uint32_t sleepers;      /* workers asleep */
	_Atomic uint64_t completed;     /* ended OK here */
	_Atomic uint64_t failed;        /* ended with an error here */
	_Atomic uint64_t running;       /* running now */
	_Atomic int state;              /* DEV_* */
	_Atomic unsigned bound_workers; /* pinned to the node's cores */
	_Atomic uint64_t backlog_ns;    /* expected time of queued + running */
	gfn_worker *workers;            /* its workers */
	unsigned nworkers;              /* how many */
} gfn_dev;

/* ---- the engine ---------------------------------------------------------- */

struct gfn_engine {
	gfn_config cfg;                         /* as given, defaults filled */
	gfn_backend backends[GFN_MAX_BACKENDS]; /* probed */
	int nbackends;                          /* how many */
	gfn_dev *devs;                          /* devices */
	int ndev;                               /* how many */
	gfn_store *store;                       /* objects */
	gfn_kcache *kcache;                     /* compiled kernels */
	gfn_topology *topo;       /* the machine (or the one described) */
	gfn_tenant_rec *tenants;  /* GFN_MAX_TENANTS limit records */
	pthread_mutex_t reg_lock; /* guards regs */
	struct gfn_reg *regs;     /* host regions registered */
	size_t nregs, capregs;    /* used and allocated entries */

	pthread_mutex_t fn_lock; /* guards names, free list, frees */
	gfn_fn_slot *fn_slots;   /* GFN_MAX_FUNCTIONS */
	uint32_t fn_free;        /* free slot list */

	pthread_mutex_t job_lock;     /* guards the job free list, growth */
	gfn_job **job_chunks;         /* job table */
	_Atomic uint32_t njob_chunks; /* chunks allocated */
	uint32_t max_job_chunks;      /* size of job_chunks */
	uint32_t job_free;            /* free list */

	_Atomic int stopping;        /* destroy has begun: refuse work */
	_Atomic int quit;            /* no submission left: workers exit
	                                 once their queue is empty */
	_Atomic uint32_t submitting; /* threads inside a submission */
	_Atomic uint32_t rr;         /* round-robin start for placement */

	_Atomic uint64_t submitted; /* counters, see gfn_stats */
	_Atomic uint64_t canceled;
	_Atomic uint64_t rejected_busy;
	_Atomic uint64_t host_allocs; /* engine tables grown */
	_Atomic uint64_t context_creates;
	_Atomic uint64_t kernel_compiles;
	_Atomic uint64_t kernel_cache_hits;
	_Atomic uint64_t pinnings;
	_Atomic uint64_t input_copies;
	_Atomic uint64_t device_resets;   /* poisoned devices rebuilt */
	_Atomic uint64_t devices_retired; /* poisoned devices given up */
	_Atomic uint64_t batches;         /* batched launches */
	_Atomic uint64_t
	        link_bytes[GFN_PLACE_MAX_NODES]
	                  [GFN_PLACE_MAX_NODES]; /* queued to cross s->d */
	_Atomic uint64_t batched;                /* invocations in them */
	_Atomic uint64_t stolen; /* taken by an idle device (steal.c) */
	_Atomic uint64_t
	        dead_device_allocs; /* of pools reset devices dropped */
};

#define GFN_JOB_SHIFT 10
#define GFN_JOB_CHUNK (1u << GFN_JOB_SHIFT) /* jobs per table chunk */

/* The job in table slot idx (which must exist). */
static inline gfn_job *gfn__job_slot(gfn_engine *e, uint32_t idx)
{
	return &e->job_chunks[idx >> GFN_JOB_SHIFT][idx & (GFN_JOB_CHUNK - 1)];
}

/* A host region registered with one device (engine.c). */
typedef struct gfn_reg {
	int dev;      /* device index */
	void *handle; /* backend's handle; NULL while the device resets */
	void *base;   /* the region */
	size_t len;   /* its bytes */
} gfn_reg;

/* Device states (gfn_dev.state), changed with every queue lock held. */
enum {
	DEV_ACTIVE = 0,      /* takes work */
	DEV_QUARANTINED = 1, /* poisoned: being reset, takes no work */
	DEV_RETIRED = 2,     /* reset failed: takes no work again */
};

/* tenants.c: limits of tenants other than 0 (see gfn_config). */
gfn_status gfn__tenants_init(gfn_engine *e);
void gfn__tenants_fini(gfn_engine *e);
/* Count one more invocation of tenant t; *out is what to release. */
gfn_status gfn__tenant_admit(gfn_engine *e, uint32_t t, gfn_tenant_rec **out);
void gfn__tenant_leave(gfn_tenant_rec *r);
gfn_status gfn__tenant_take_device(gfn_engine *e, gfn_tenant_rec *r, int dev,
                                   int64_t bytes);
void gfn__tenant_give_device(gfn_engine *e, gfn_tenant_rec *r, int dev,
                             int64_t bytes);

/* registry.c */
gfn_status gfn__registry_init(gfn_engine *e);
void gfn__registry_fini(gfn_engine *e);
/* Take a reference to a live function; ENOENT/ESTALE otherwise. */
gfn_status gfn__fn_acquire(gfn_engine *e, gfn_function id, gfn_fn **out);
/* The kernel source of fn for dev's backend; 0 when it has none. */
int gfn__fn_source(gfn_engine *e, const gfn_fn *fn, const gfn_dev *dev,
                   gfn_ksrc *src);
/* Drop a reference; the last one after unregister frees the function. */
void gfn__fn_release(gfn_engine *e, gfn_fn *fn);
/* Engine device i as a device program sees it. */
void gfn__devctx(const gfn_engine *e, int i, gfn_devctx *out);

/* future.c */
gfn_status gfn__jobs_init(gfn_engine *e);
void gfn__jobs_fini(gfn_engine *e);
/* n free jobs, each in JOB_PREP with refs 2, or GFN_ENOMEM. */
gfn_status gfn__jobs_alloc(gfn_engine *e, size_t n, gfn_job **out);
/* The job behind future id in the given state mask; NULL with status. */
gfn_job *gfn__job_at(gfn_engine *e, uint64_t id);
uint64_t gfn__job_id(const gfn_job *j);
/* Undo a job that was never queued. */
void gfn__job_abort(gfn_engine *e, gfn_job *j);
/* End a claimed job with status: counters, wake, callback, unref. */
void gfn__job_finish(gfn_engine *e, gfn_job *j, gfn_status status);

/* sched.c */
gfn_status gfn__devices_open(gfn_engine *e);
/* Register a new host region with every device (store region hook). */
gfn_status gfn__region_register(void *engine, void *base, size_t len);
/* Unregister a region the store gives back (store region-gone hook). */
void gfn__region_gone(void *engine, void *base, size_t len);
void gfn__regions_unregister(gfn_engine *e);
void gfn__devices_close(gfn_engine *e);
gfn_status gfn__workers_start(gfn_engine *e);
/* Stop the workers: drain or cancel first, per cfg.shutdown. */
void gfn__workers_stop(gfn_engine *e);
/* Queue n prepared jobs in order; *accepted of them went in. */
gfn_status gfn__submit(gfn_engine *e, gfn_job **jobs, size_t n,
                       size_t *accepted);
/* Lock / unlock every device queue (ascending order). */
void gfn__lock_devices(gfn_engine *e);
void gfn__unlock_devices(gfn_engine *e);
/* A job leaves its device: take its expected time out of the backlog. */
void gfn__backlog_done(gfn_engine *e, gfn_job *j);
/* Queue ids again on active devices; end those no device can take. */
void gfn__replace_ids(gfn_engine *e, const uint64_t *ids, size_t n);
/* Queue j on device i (accounting: backlog, link bytes, count); that
   device's lock held, j not counted on any device. */
void gfn__push_job(gfn_engine *e, gfn_job *j, int i);
/* Expected run time of fn on device i (learned, borrowed or default);
   gfn__run_ns adds the load cost where its instance is not warm. */
uint64_t gfn__expected_ns(const gfn_engine *e, gfn_fn *fn, int i);
uint64_t gfn__run_ns(const gfn_engine *e, gfn_fn *fn, int i);
/* What is queued on the NUMA links now into q; NULL on a one-node
   machine. */
const uint64_t (*gfn__link_snapshot(
        gfn_engine *e, uint64_t q[][GFN_PLACE_MAX_NODES]))[GFN_PLACE_MAX_NODES];
/* j's inputs as placement sees them (bytes: GFN_MAX_INPUTS entries). */
void gfn__place_in(gfn_engine *e, const gfn_job *j, uint64_t *bytes,
                   uint64_t queued[][GFN_PLACE_MAX_NODES], gfn_place_in *in);

/* sched.c, for batch.c: claim a queued id for w's device (NULL: it was
   canceled, moved or ended for its deadline; running is raised for a
   claimed job); run a claimed job's tensors; run and end a claimed job. */
gfn_job *gfn__claim(gfn_worker *w, uint64_t id);
gfn_status gfn__run_tensors(gfn_worker *w, gfn_job *j);
void gfn__run_claimed(gfn_worker *w, gfn_job *j);
size_t gfn__queue_pop(gfn_dev *d, uint64_t *out, size_t max);
void gfn__learn(gfn_fn *fn, int dev, uint64_t ns);

/* batch.c: run first (claimed) with compatible jobs from ids[k+1..n) and
   the queue as one launch; ids it takes are zeroed. */
void gfn__batch_run(gfn_worker *w, gfn_job *first, uint64_t *ids, size_t k,
                    size_t n);
void gfn__batch_free(gfn_worker *w);

/* steal.c: w's queue is empty: take the queued invocation of another
   device that w's device would finish soonest into w's queue. 1 when it
   took one. */
int gfn__steal(gfn_worker *w);

/* recover.c: a worker whose device is poisoned quarantines it, moves its
   queued work elsewhere, and resets or retires it. */
void gfn__quarantine(gfn_worker *w);

#endif /* GFN_ENGINE_ENGINE_H */
