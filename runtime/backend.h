/*
 * backend.h - the versioned ops table every backend fills in, and the
 * registry that knows the list of backends. Internal: not API.
 *
 * A backend knows devices, memory and kernels; it knows nothing of
 * functions, tenants or clients. Only backend.c knows which backends exist.
 * The wrappers gfn_backend_*() below are how the engine calls a backend:
 * they supply the default of every optional member, so backends do not.
 */
#ifndef GFN_RUNTIME_BACKEND_H
#define GFN_RUNTIME_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "gfn/gfn.h"

/* Bumped when a member changes meaning; the registry refuses others. */
#define GFN_BACKEND_API_VERSION 1

typedef struct gfn_bdev gfn_bdev;       /* an open device: its context */
typedef struct gfn_bqueue gfn_bqueue;   /* an in-order queue (stream) */
typedef struct gfn_bkernel gfn_bkernel; /* a loaded, launchable kernel */
typedef struct gfn_kcache gfn_kcache;   /* runtime/kcache.h */

/* Device memory as the engine holds it. */
typedef struct gfn_bmem {
	void *ptr;    /* device address (host address on the CPU backend) */
	size_t size;  /* bytes */
	void *handle; /* backend's own handle (cl_mem, ...) or NULL */
} gfn_bmem;

/* What a kernel is made from. */
typedef enum gfn_ksrc_kind {
	GFN_KSRC_CPU_FN = 1, /* a C function pointer (cpu_fn, user) */
	GFN_KSRC_OPENCL_C,   /* OpenCL C source (text, options, entry) */
	GFN_KSRC_CUDA_PTX,   /* PTX/cubin/fatbin image (text, len, entry) */
	GFN_KSRC_CUDA_C,     /* CUDA C for NVRTC (text, options, entry) */
} gfn_ksrc_kind;

typedef struct gfn_ksrc {
	gfn_ksrc_kind kind;       /* which members below are read */
	gfn_cpu_kernel_fn cpu_fn; /* GFN_KSRC_CPU_FN */
	void *user;               /* GFN_KSRC_CPU_FN: its argument */
	const char *text;         /* source or image */
	size_t len;               /* bytes of text */
	const char *options;      /* build options, may be NULL */
	const char *entry;        /* kernel name */
	gfn_kcache *kcache;       /* compiled-kernel cache, may be NULL */
} gfn_ksrc;

/*
 * One launch: the arguments plus the work size for data-parallel devices.
 * On a device without GFN_BFLAG_HOST_IS_DEVICE each tensor's data points
 * at the gfn_bmem of its device buffer; on the CPU it is the memory.
 */
typedef struct gfn_launch {
	const gfn_kernel_args *args;       /* tensors and scalars */
	const gfn_param_type *param_types; /* type of each scalar */
	size_t global[3];                  /* global work size, 0 = unused */
	size_t local[3];                   /* work-group size, 0 = pick */
	uint64_t sizes[3];                 /* trailing size arguments */
	int nsizes;                        /* how many of them */
} gfn_launch;

enum {
	/* The device reads and writes host memory directly (CPU): inputs
	   need no copy and no registration. */
	GFN_BFLAG_HOST_IS_DEVICE = 1u << 0,
};

typedef struct gfn_backend_ops {
	uint32_t api_version; /* GFN_BACKEND_API_VERSION it was written for */
	const char *name;     /* "cpu", "opencl", "cuda" */
	unsigned kind;        /* its GFN_BACKEND_* bit */
	unsigned flags;       /* GFN_BFLAG_* */

	/* --- mandatory; the registry refuses a table that lacks one --- */

	/*
	 * Count devices into *count. A missing driver or no hardware is
	 * *count = 0 and GFN_OK, never an error. hint: devices wanted where
	 * the backend can make any number (the CPU backend); others ignore
	 * it. Called once per engine; may load libraries; not thread-safe.
	 */
	gfn_status (*probe)(unsigned hint, int *count);

	/* Fill *info for device idx (0 .. count-1). Does not open it. */
	gfn_status (*device_info)(int idx, gfn_device_info *info);

	/*
	 * Open device idx: create (or retain) its context. Costly (this is
	 * the cold start gfn exists to pay once); the engine calls it once
	 * per device and counts it. *out is owned by the caller until
	 * device_close. Thread-safe between different devices.
	 */
	gfn_status (*device_open)(int idx, gfn_bdev **out);

	/* Release everything of the device. Every queue, kernel and memory
	   made from it has been released before. Accepts NULL. */
	void (*device_close)(gfn_bdev *dev);

	/* A new in-order queue; one per engine worker. Owned by caller. */
	gfn_status (*queue_create)(gfn_bdev *dev, gfn_bqueue **out);
	void (*queue_destroy)(gfn_bqueue *q); /* accepts NULL; drains first */

	/*
	 * Make a kernel from src: compile or load a module, look up the
	 * entry. Costly. Where src->kcache is set, a cached binary is used
	 * instead of compiling (*from_cache = 1) and a fresh build is put
	 * there. src is only read during the call. *out is owned by the
	 * caller. Build errors: GFN_EKERNEL with the build log as detail.
	 */
	gfn_status (*kernel_load)(gfn_bdev *dev, const gfn_ksrc *src,
	                          gfn_bkernel **out, int *from_cache);
	void (*kernel_unload)(gfn_bdev *dev, gfn_bkernel *k); /* NULL ok */

	/*
	 * Enqueue one launch. Asynchronous on devices with queues: launch
	 * data (args) is captured before return. Returns GFN_EKERNEL when
	 * a CPU kernel reports failure, GFN_EDEVICE for device faults, with
	 * detail. Called only by the queue's owning worker: no lock held.
	 */
	gfn_status (*launch)(gfn_bqueue *q, gfn_bkernel *k,
	                     const gfn_launch *l);

	/* Wait until everything enqueued on q has finished; the first
	   asynchronous error since the last sync is returned. */
	gfn_status (*sync)(gfn_bqueue *q);

	/* --- optional; NULL means the default given in brackets --- */

	/* Device memory of size bytes [GFN_ENOTSUP]. Slow: the engine's
	   device pool calls it for large chunks only. */
	gfn_status (*mem_alloc)(gfn_bdev *dev, size_t size, gfn_bmem *out);
	void (*mem_free)(gfn_bdev *dev, gfn_bmem *m); /* [nothing] */

	/* A buffer for bytes [off, off+size) of chunk, usable wherever a
	   buffer is (kernel arguments, copies); made once per pool block
	   [pointer arithmetic: ptr + off, handle NULL]. */
	gfn_status (*mem_view)(gfn_bdev *dev, const gfn_bmem *chunk, size_t off,
	                       size_t size, gfn_bmem *out);
	void (*mem_view_free)(gfn_bdev *dev, gfn_bmem *m); /* [nothing] */

	/* Pin/register host memory for direct device access; *handle is
	   the backend's record [GFN_ENOTSUP: the engine stages copies]. */
	gfn_status (*host_register)(gfn_bdev *dev, void *p, size_t size,
	                            void **handle);
	void (*host_unregister)(gfn_bdev *dev, void *handle); /* [nothing] */

	/* Asynchronous copies in queue order [memcpy, for host-visible
	   device memory only: GFN_ENOTSUP otherwise]. */
	gfn_status (*copy_h2d)(gfn_bqueue *q, const gfn_bmem *dst, size_t off,
	                       const void *src, size_t n);
	gfn_status (*copy_d2h)(gfn_bqueue *q, void *dst, const gfn_bmem *src,
	                       size_t off, size_t n);

	/* After a call on dev returned GFN_EDEVICE: nonzero when its context
	   is poisoned (CUDA sticky errors: every later call fails) and the
	   engine must quarantine the device and reset it [0: never]. */
	int (*poisoned)(gfn_bdev *dev);
	/* Rebuild a poisoned device's context in place (CUDA:
	   cuDevicePrimaryCtxReset). Every queue, kernel and memory made from
	   dev has been released before [GFN_ENOTSUP: retire the device]. */
	gfn_status (*device_reset)(gfn_bdev *dev);

	/* The device's NUMA node, once the engine knows it (real topology
	   only): the backend moves its pinned staging pool there, bound
	   before it is pinned. Called before any work [nothing]. */
	gfn_status (*set_numa_node)(gfn_bdev *dev, int node);

	/* Bytes of pinned host memory the device holds for staging (its
	   pinned pool) [0]. */
	uint64_t (*pinned_bytes)(gfn_bdev *dev);

	/* Bytes copy_h2d copied on the host into staging memory because the
	   source was not registered (the engine's input_copies) [0]. */
	uint64_t (*staged_bytes)(gfn_bdev *dev);

	/*
	 * c = a * op(b) in f32 through the vendor BLAS, enqueued on q after
	 * everything enqueued before it, and before everything after it.
	 * Row-major: a is m x k, op(b) k x n (b is n x k when trans_b), c
	 * m x n; each operand starts ao / bo / co floats into its buffer
	 * [GFN_ENOTSUP: no BLAS for this device].
	 */
	gfn_status (*gemm)(gfn_bqueue *q, int trans_b, size_t m, size_t n,
	                   size_t k, const gfn_bmem *a, size_t ao,
	                   const gfn_bmem *b, size_t bo, const gfn_bmem *c,
	                   size_t co);
} gfn_backend_ops;

/* ---- registry --------------------------------------------------------- */

/* A backend with the devices it reported. */
typedef struct gfn_backend {
	const gfn_backend_ops *ops; /* checked table */
	int ndev;                   /* devices it has */
} gfn_backend;

#define GFN_MAX_BACKENDS 4

/*
 * Probe every compiled-in backend selected by mask (GFN_BACKEND_* bits);
 * list those with devices into out (at most GFN_MAX_BACKENDS) and their
 * number into *n. cpu_devices is the CPU backend's device count.
 */
gfn_status gfn_backends_probe(unsigned mask, unsigned cpu_devices,
                              gfn_backend *out, int *n);

/*
 * Probe ops after the compiled-in backends, in engines created from now
 * on (NULL: none). For tests of the engine only: a fake backend with
 * fault injection. Not thread-safe against engine creation.
 */
void gfn__backend_set_extra(const gfn_backend_ops *ops);

/* Check that ops has a known version and every mandatory member. */
gfn_status gfn_backend_check(const gfn_backend_ops *ops);

/* ---- wrappers supplying the optional defaults -------------------------- */

gfn_status gfn_backend_mem_alloc(const gfn_backend_ops *ops, gfn_bdev *dev,
                                 size_t size, gfn_bmem *out);
gfn_status gfn_backend_mem_view(const gfn_backend_ops *ops, gfn_bdev *dev,
                                const gfn_bmem *chunk, size_t off, size_t size,
                                gfn_bmem *out);
void gfn_backend_mem_view_free(const gfn_backend_ops *ops, gfn_bdev *dev,
                               gfn_bmem *m);
void gfn_backend_mem_free(const gfn_backend_ops *ops, gfn_bdev *dev,
                          gfn_bmem *m);
gfn_status gfn_backend_host_register(const gfn_backend_ops *ops, gfn_bdev *dev,
                                     void *p, size_t size, void **handle);
void gfn_backend_host_unregister(const gfn_backend_ops *ops, gfn_bdev *dev,
                                 void *handle);
gfn_status gfn_backend_copy_h2d(const gfn_backend_ops *ops, gfn_bqueue *q,
                                const gfn_bmem *dst, size_t off,
                                const void *src, size_t n);
gfn_status gfn_backend_copy_d2h(const gfn_backend_ops *ops, gfn_bqueue *q,
                                void *dst, const gfn_bmem *src, size_t off,
                                size_t n);

gfn_status gfn_backend_gemm(const gfn_backend_ops *ops, gfn_bqueue *q,
                            int trans_b, size_t m, size_t n, size_t k,
                            const gfn_bmem *a, size_t ao, const gfn_bmem *b,
                            size_t bo, const gfn_bmem *c, size_t co);

/* The backends compiled in; each defined in its own folder. */
extern const gfn_backend_ops gfn_cpu_backend;
#ifdef GFN_HAVE_OPENCL
extern const gfn_backend_ops gfn_opencl_backend;
#endif
#ifdef GFN_HAVE_CUDA
extern const gfn_backend_ops gfn_cuda_backend;
#endif

#endif /* GFN_RUNTIME_BACKEND_H */
