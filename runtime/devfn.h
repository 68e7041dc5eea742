/*
 * devfn.h - a device program: a function implementation that enqueues
 * several launches and GEMMs on a device queue per invocation, instead
 * of the one kernel of gfn_opencl_kernel / gfn_cuda_kernel. Model
 * functions (kernels/model_dev.c) are the user. Internal: not API.
 *
 * The engine stages the inputs into device memory, calls run on the
 * worker that owns the queue, copies the outputs back, syncs the queue
 * once, and only then frees what run asked it to hold and calls its
 * after hook: run itself never waits for the device.
 */
#ifndef GFN_RUNTIME_DEVFN_H
#define GFN_RUNTIME_DEVFN_H

#include "gfn/gfn.h"
#include "runtime/backend.h"
#include "runtime/devmem.h"

/* One open device, as a device program sees it. */
typedef struct gfn_devctx {
	const gfn_backend_ops *ops; /* its backend */
	gfn_bdev *bdev;             /* its context */
	int device;                 /* the engine's index of it */
	gfn_kcache *kcache;         /* compiled-kernel cache, may be NULL */
} gfn_devctx;

#define GFN_DEVRUN_HOLD 4 /* pool blocks one run may hold */

/* One invocation (or batch) on one device queue. */
typedef struct gfn_devrun {
	gfn_devctx dev;                    /* where it runs */
	gfn_bqueue *q;                     /* the worker's queue */
	gfn_devmem *pool;                  /* the device's memory pool */
	const gfn_kernel_args *args;       /* tensors in device memory: each
	                                 data points at a gfn_bmem */
	const gfn_tensor *host_in;         /* the inputs in host memory */
	gfn_dblock *hold[GFN_DEVRUN_HOLD]; /* run's scratch: freed by the
	                                      engine after the sync */
	int nhold;                         /* used entries of hold */
	void (*after)(void *arg, gfn_status s); /* called after the sync
	                                           with the final status,
	                                           or NULL */
	void *after_arg;                        /* its argument */
} gfn_devrun;

typedef struct gfn_devfn {
	unsigned backends; /* GFN_BACKEND_* bits it can run on */
	/*
	 * Get ready to run on c's device at registration: load kernels
	 * (*loads / *hits count compiles and kernel-cache hits). GFN_ENOTSUP
	 * means "not on this device" and is not an error; any other failure
	 * fails the registration.
	 */
	gfn_status (*prepare)(void *user, const gfn_devctx *c, int *loads,
	                      int *hits);
	/* Enqueue one invocation on r->q; GFN_OK or a failure with detail. */
	gfn_status (*run)(void *user, gfn_devrun *r);
	/* The function is being freed: release what prepare and run made on
	   c's device (its queues are idle, the device still open). */
	void (*release)(void *user, const gfn_devctx *c);
} gfn_devfn;

/*
 * gfn_function_register with a device program as well: desc's own
 * implementations run where they exist, x->run on the devices of
 * x->backends that prepare accepted. x is copied. Defined by the engine
 * (engine/registry.c): the one call by which a lower layer hands the
 * engine a device program.
 */
gfn_status gfn__function_register_dev(gfn_engine *e,
                                      const gfn_function_desc *desc,
                                      const gfn_devfn *x, gfn_function *out);

#endif /* GFN_RUNTIME_DEVFN_H */
