/*
 * gfn.h - the public interface of gfn, a GPU-aware function execution engine.
 *
 * This header is the whole contract: anything not declared here (or in the
 * other headers under include/gfn/) is not API and may change at any time.
 *
 * Conventions used throughout:
 *  - Every function that can fail returns a gfn_status. GFN_OK is zero, every
 *    error is negative. On failure a thread-local detail message says what was
 *    wrong in words a person can act on: see gfn_error_detail().
 *  - Heavy objects (the engine) are opaque pointers with _create/_destroy;
 *    destroy accepts NULL.
 *  - Anything a client can name (object, function, invocation) is a small
 *    typed id struct. A stale or unknown id is rejected with GFN_ENOENT or
 *    GFN_ESTALE; it never crashes.
 *  - Ownership is stated per function: "the caller owns one reference" means
 *    the caller must eventually give it back with the matching release call.
 *
 * ABI rule: until version 1.0 the ABI may change with every minor version.
 * From 1.0 on, a minor version only adds functions and adds fields at the end
 * of structs that are initialised by a gfn_*_init() call, so a program built
 * against 1.x runs against any later 1.y.
 */
#ifndef GFN_GFN_H
#define GFN_GFN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(GFN_BUILDING_SHARED) && defined(__GNUC__)
#define GFN_API __attribute__((visibility("default")))
#else
#define GFN_API
#endif

/* ---------------------------------------------------------------- version */

#define GFN_VERSION_MAJOR 0
#define GFN_VERSION_MINOR 1
#define GFN_VERSION_PATCH 0
#define GFN_VERSION_HEX                                                        \
	((GFN_VERSION_MAJOR << 16) | (GFN_VERSION_MINOR << 8) |                \
	 GFN_VERSION_PATCH)

/* The version of the library actually loaded, as GFN_VERSION_HEX. */
GFN_API unsigned gfn_version(void);
/* The same as "MAJOR.MINOR.PATCH"; a static string. */
GFN_API const char *gfn_version_string(void);

/* ---------------------------------------------------------------- status */

/*
 * The one list of status codes. The enum, gfn_status_name() and
 * gfn_status_str() are all generated from it, so they cannot drift.
 */
#define GFN_STATUS_MAP(X)                                                      \
	X(OK, 0, "success")                                                    \
	X(EINVAL, -1, "invalid argument")                                      \
	X(ENOMEM, -2, "out of memory")                                         \
	X(EBUSY, -3, "queue full, retry later")                                \
	X(ENOENT, -4, "no such id")                                            \
	X(ESTALE, -5, "id refers to something that no longer exists")          \
	X(ESTATE, -6, "object or future is in the wrong state for this call")  \
	X(EDTYPE, -7, "tensor element type does not match")                    \
	X(ESHAPE, -8, "tensor shape does not match")                           \
	X(ERANGE, -9, "offset or size out of range")                           \
	X(EPENDING, -10, "not finished yet")                                   \
	X(ETIMEDOUT, -11, "timed out")                                         \
	X(ECANCELED, -12, "canceled")                                          \
	X(ESHUTDOWN, -13, "engine is shutting down")                           \
	X(ENODEV, -14, "no suitable device")                                   \
	X(EDEVICE, -15, "device failure")                                      \
	X(EKERNEL, -16, "kernel reported an error")                            \
	X(EACCES, -17, "permission denied")                                    \
	X(ENOTSUP, -18, "operation not supported")                             \
	X(EEXIST, -19, "already exists")                                       \
	X(ESYS, -20, "operating system call failed")                           \
	X(EINTERNAL, -21, "internal error in gfn")                             \
	X(EQUOTA, -22, "a tenant limit would be exceeded")

typedef enum gfn_status {
#define GFN_STATUS_ENUM_(name, code, text) GFN_##name = code,
	GFN_STATUS_MAP(GFN_STATUS_ENUM_)
#undef GFN_STATUS_ENUM_
} gfn_status;

/* "GFN_EBUSY" for GFN_EBUSY; "GFN_UNKNOWN" for a value not in the list. */
GFN_API const char *gfn_status_name(gfn_status s);
/* A short English sentence for the status; never NULL. */
GFN_API const char *gfn_status_str(gfn_status s);
/*
 * The detail message of the last failed gfn call on this thread, e.g.
 * "object 3f2a..:00000007 is not sealed". Every failing call sets it;
 * calls that succeed leave it alone. Empty before the first failure.
 * Valid until the next gfn call on this thread.
 */
GFN_API const char *gfn_error_detail(void);

/* ---------------------------------------------------------------- tensors */

#define GFN_MAX_DIMS 8    /* most dimensions a tensor may have */
#define GFN_MAX_INPUTS 16 /* most input tensors of one function */
#define GFN_MAX_OUTPUTS 8 /* most output tensors of one function */
#define GFN_MAX_PARAMS 16 /* most scalar parameters of one function */

typedef enum gfn_dtype {
	GFN_DTYPE_INVALID = 0,
	GFN_F32 = 1,
	GFN_F64 = 2,
	GFN_F16 = 3,
	GFN_BF16 = 4,
	GFN_I8 = 5,
	GFN_U8 = 6,
	GFN_I32 = 7,
	GFN_I64 = 8,
} gfn_dtype;

/* Bytes per element, 0 for an unknown dtype. */
GFN_API size_t gfn_dtype_size(gfn_dtype t);
/* "f32", "i64", ...; "invalid" for an unknown dtype. */
GFN_API const char *gfn_dtype_name(gfn_dtype t);

/* A tensor as a kernel sees it: memory plus type and shape, row-major. */
typedef struct gfn_tensor {
	void *data;                  /* first element; device-visible memory */
	gfn_dtype dtype;             /* element type */
	int ndim;                    /* number of dimensions, 0 = scalar */
	int64_t shape[GFN_MAX_DIMS]; /* extent of each dimension */
	size_t nbytes;               /* product(shape) * dtype size */
} gfn_tensor;

/* ---------------------------------------------------------------- engine */

typedef struct gfn_engine gfn_engine;

/* Which backends an engine may use; a bit mask. */
enum {
	GFN_BACKEND_CPU = 1u << 0,
	GFN_BACKEND_OPENCL = 1u << 1,
	GFN_BACKEND_CUDA = 1u << 2,
	GFN_BACKEND_ALL = 0xffu,
};

/* What gfn_engine_destroy() does with invocations that have not run yet. */
typedef enum gfn_shutdown_mode {
	GFN_SHUTDOWN_DRAIN = 0,  /* run every accepted invocation, then stop */
	GFN_SHUTDOWN_CANCEL = 1, /* end queued ones with GFN_ECANCELED */
} gfn_shutdown_mode;

typedef struct gfn_config {
	unsigned backends;           /* GFN_BACKEND_* mask; default ALL present;
	                                0 selects none (GFN_ENODEV) */
	unsigned cpu_devices;        /* CPU devices to expose; default 1 */
	unsigned workers_per_device; /* worker threads per device; default 1 */
	size_t queue_capacity;       /* max queued invocations per device;
	                                default 65536 */
	size_t store_capacity;       /* object store bytes; default 1 GiB */
	size_t max_objects; /* live objects in the store; default 1<<20 */
	size_t max_futures; /* unreleased futures; default 1<<20 */
	gfn_shutdown_mode shutdown;   /* destroy behaviour; default DRAIN */
	unsigned spin_us;             /* how long an idle worker or a waiter
	                                spins before sleeping; default 50 */
	const char *kcache_dir;       /* compiled-kernel cache directory; NULL:
	                               $XDG_CACHE_HOME/gfn/kcache (or
	                               ~/.cache/gfn/kcache); "" = memory only */
	size_t device_pool_chunk;     /* device memory pool chunk bytes;
	                               default 64 MiB */
	size_t device_pool_limit;     /* most device memory the pool takes per
	                               device; default half the device's */
	const char *store_socket;     /* unix socket path where client
	                               processes attach to the object store
	                               (gfn_store_client.h); NULL (default):
	                               no listener. Copied at create */
	size_t segment_size;          /* bytes per shared-memory segment of
	                               the store; default 64 MiB (smaller
	                               stores use smaller ones) */
	size_t tenant_quota_bytes;    /* most object bytes one client tenant
	                               may hold; default 0: no limit but
	                               store_capacity */
	const char *topology_xml;     /* hwloc XML file describing the machine
	                               (tests, planning); NULL: this machine,
	                               or $GFN_TOPOLOGY_XML when set */
	const char *topology_devices; /* with topology_xml: the PCI bus id
	                                 in that file of each engine device,
	                                 in device order, comma-separated;
	                                 an empty entry maps none. NULL:
	                                 $GFN_TOPOLOGY_DEVICES */
	unsigned numa_link_gbs;       /* bandwidth of a link between NUMA
	                                 nodes in GB/s, for placement;
	                                 default 20 */
	int64_t tenant_max_inflight;  /* most invocations one tenant other
	                                than 0 may have submitted and not
	                                ended; -1 (default): no limit */
	int64_t tenant_device_bytes;  /* most device memory the running
	                                invocations of one such tenant may
	                                use on one device; -1: no limit */
	unsigned batch_delay_us;      /* how long a batching function's first
	                                waiting invocation waits for others
	                                to join its launch; default 200 */
} gfn_config;

/* Fill *cfg with the defaults. Always call it before setting fields. */
GFN_API void gfn_config_init(gfn_config *cfg);

/*
 * Create an engine: probe the backends, create one context per device,
 * start the workers. On success *out owns the engine (give it back with
 * gfn_engine_destroy). On failure *out is NULL. GFN_ENODEV when the mask
 * selects no backend that has a device.
 */
GFN_API gfn_status gfn_engine_create(const gfn_config *cfg, gfn_engine **out);

/*
 * Stop accepting work (later calls get GFN_ESHUTDOWN), then drain or cancel
 * queued invocations as cfg.shutdown says, wait for running ones, run every
 * outstanding completion callback, and free everything. Every invocation
 * ends with a status and its callback (if any) is called exactly once before
 * this returns. Futures and object ids are invalid afterwards. NULL is a
 * no-op. Must not be called from a completion callback.
 */
GFN_API void gfn_engine_destroy(gfn_engine *e);

/* ---------------------------------------------------------------- devices */

typedef struct gfn_device_info {
	char name[128];         /* e.g. "cpu0", "pthread-AMD EPYC" */
	unsigned backend;       /* one GFN_BACKEND_* bit */
	int backend_index;      /* index within that backend */
	uint64_t memory_bytes;  /* device memory (host RAM for the CPU) */
	unsigned compute_units; /* cores, SMs or OpenCL compute units */
	char pci_bus_id[32];    /* "0000:3b:00.0" or "" */
	int numa_node;          /* -1 when unknown */
} gfn_device_info;

/* Number of devices the engine uses. */
GFN_API gfn_status gfn_device_count(gfn_engine *e, size_t *count);
/* Properties of device index (0 .. count-1); GFN_ERANGE past the end. */
GFN_API gfn_status gfn_device_get_info(gfn_engine *e, size_t index,
                                       gfn_device_info *info);

/* ---------------------------------------------------------------- objects */

/*
 * An object in the store. 128 bits, the high half unguessable; compare with
 * gfn_object_equal. The zero id is never a valid object (GFN_OBJECT_NONE).
 */
typedef struct gfn_object {
	uint64_t hi; /* random half */
	uint64_t lo; /* slot and generation */
} gfn_object;

#define GFN_OBJECT_NONE ((gfn_object){0, 0})

static inline int gfn_object_equal(gfn_object a, gfn_object b)
{
	return a.hi == b.hi && a.lo == b.lo;
}

/*
 * Reserve an object of dtype and shape (ndim 0..GFN_MAX_DIMS, every extent
 * >= 0) in the store. The object starts unsealed and writable. On success
 * the caller owns one reference to *out. GFN_EINVAL for an unknown dtype, a
 * bad ndim or a negative extent. GFN_ENOMEM at once when the store is full
 * even after evicting unreferenced sealed objects, or holds max_objects
 * objects (never blocks).
 */
GFN_API gfn_status gfn_object_create(gfn_engine *e, gfn_dtype dtype, int ndim,
                                     const int64_t *shape, gfn_object *out);

/*
 * As gfn_object_create, with a placement hint: the object's memory goes on
 * NUMA node numa_node (logical numbering, as the engine's topology counts
 * nodes), normally the node of the device that will read it. -1 is no
 * hint: the node the calling thread runs on, which is also where
 * gfn_object_create puts it. On a node this machine has, the pages are
 * bound there (preferred: they spill to another node rather than fail
 * when it is full); a node only a simulated topology has is recorded for
 * placement, not bound. GFN_EINVAL for numa_node < -1 or not below the
 * number of nodes the engine knows; otherwise as gfn_object_create.
 */
GFN_API gfn_status gfn_object_create_on(gfn_engine *e, gfn_dtype dtype,
                                        int ndim, const int64_t *shape,
                                        int numa_node, gfn_object *out);

/*
 * As gfn_object_create, for tenant (0: the engine's own, as
 * gfn_object_create): the object belongs to that tenant, counts against
 * its quota, and its client process may use it in place. For embedders
 * such as gfnd that create objects on behalf of clients.
 */
GFN_API gfn_status gfn_object_create_for(gfn_engine *e, uint32_t tenant,
                                         gfn_dtype dtype, int ndim,
                                         const int64_t *shape, gfn_object *out);

/*
 * Copy len bytes from src into the unsealed object at byte offset off.
 * GFN_ERANGE when off+len passes the end; GFN_ESTATE when sealed.
 */
GFN_API gfn_status gfn_object_write(gfn_engine *e, gfn_object obj, size_t off,
                                    const void *src, size_t len);

/*
 * Writable pointer to the memory of an unsealed object, for filling it in
 * place (no copy). Valid until the object is sealed. GFN_ESTATE when sealed.
 */
GFN_API gfn_status gfn_object_map(gfn_engine *e, gfn_object obj, void **data,
                                  size_t *size);

/* Make the object immutable. GFN_ESTATE when already sealed. */
GFN_API gfn_status gfn_object_seal(gfn_engine *e, gfn_object obj);

/* What gfn_object_get() returns: a read-only view of a sealed object. */
typedef struct gfn_object_view {
	const void *data;            /* first byte; valid until released */
	size_t size;                 /* bytes */
	gfn_dtype dtype;             /* element type */
	int ndim;                    /* number of dimensions */
	int64_t shape[GFN_MAX_DIMS]; /* extents */
} gfn_object_view;

/*
 * Take one more reference to a sealed object and describe it. The caller
 * owns that reference. GFN_ESTATE when the object is not sealed yet.
 */
GFN_API gfn_status gfn_object_get(gfn_engine *e, gfn_object obj,
                                  gfn_object_view *view);

/*
 * Give back one reference. When the last one goes, a sealed object stays
 * cached (it may be got again) until it is deleted or evicted; an unsealed
 * or deleted object is freed. GFN_ESTATE when it has no reference left.
 */
GFN_API gfn_status gfn_object_release(gfn_engine *e, gfn_object obj);

/*
 * The tenant an object belongs to (0: the engine's own; a client
 * process's is its uid + 1). For embedders such as gfnd that act for
 * several clients and must keep them apart.
 */
GFN_API gfn_status gfn_object_tenant(gfn_engine *e, gfn_object obj,
                                     uint32_t *tenant);

/*
 * Remove the object from the store: its id stops resolving at once
 * (GFN_ESTALE afterwards) and its memory is freed when the last reference
 * (including ones held by running invocations) goes.
 */
GFN_API gfn_status gfn_object_delete(gfn_engine *e, gfn_object obj);

/* ---------------------------------------------------------------- functions */

typedef struct gfn_function {
	uint32_t id; /* slot and generation; 0 is never valid */
} gfn_function;

/*
 * Shapes in a signature. A positive extent is fixed. GFN_DIM_ANY accepts any
 * extent. GFN_DIM_VAR(k) (k < GFN_MAX_DIM_VARS) binds a size variable: every
 * place that names the same variable must have the same extent, and output
 * shapes may only use fixed extents and variables bound by the inputs.
 */
#define GFN_MAX_DIM_VARS 8
#define GFN_DIM_ANY ((int64_t)-1)
#define GFN_DIM_VAR(k) ((int64_t)(-2 - (int64_t)(k)))

typedef struct gfn_tensor_spec {
	const char *name;           /* for messages; may be NULL */
	gfn_dtype dtype;            /* required element type */
	int ndim;                   /* required number of dimensions */
	int64_t dims[GFN_MAX_DIMS]; /* extent, GFN_DIM_ANY or GFN_DIM_VAR(k) */
} gfn_tensor_spec;

typedef enum gfn_param_type {
	GFN_PARAM_F64 = 1, /* double (OpenCL: double, needs cl_khr_fp64) */
	GFN_PARAM_I64 = 2, /* int64_t (OpenCL: long) */
	GFN_PARAM_F32 = 3, /* float */
	GFN_PARAM_I32 = 4, /* int32_t (OpenCL: int) */
} gfn_param_type;

typedef struct gfn_param_spec {
	const char *name;    /* for messages; may be NULL */
	gfn_param_type type; /* which member of gfn_scalar is read */
} gfn_param_spec;

typedef union gfn_scalar {
	double f64;  /* for GFN_PARAM_F64 */
	int64_t i64; /* for GFN_PARAM_I64 */
	float f32;   /* for GFN_PARAM_F32 */
	int32_t i32; /* for GFN_PARAM_I32 */
} gfn_scalar;

/* Everything a CPU kernel gets for one invocation. */
typedef struct gfn_kernel_args {
	size_t n_inputs;          /* as declared */
	const gfn_tensor *inputs; /* read-only input tensors */
	size_t n_outputs;         /* as declared */
	gfn_tensor *outputs;      /* output tensors to fill */
	size_t n_params;          /* as declared */
	const gfn_scalar *params; /* scalar parameters */
	int device;               /* engine device index it runs on */
} gfn_kernel_args;

/*
 * A CPU kernel. Called on a worker thread, possibly on several workers at
 * once. Returns 0 on success; any other value fails the invocation with
 * GFN_EKERNEL and that value in the detail message. It must not call gfn.
 */
typedef int (*gfn_cpu_kernel_fn)(const gfn_kernel_args *args, void *user);

/*
 * How a data-parallel kernel's global work size follows from a tensor's
 * shape. Global sizes are rounded up to a multiple of the work-group size,
 * so a kernel must check its index against the real extent (pass_sizes).
 */
typedef enum gfn_work_kind {
	GFN_WORK_ELEMENTS = 1, /* 1-D: one work-item per element */
	GFN_WORK_MATRIX = 2,   /* 2-D: (last extent, product of the others) */
	GFN_WORK_FIXED = 3,    /* the sizes in global[] */
} gfn_work_kind;

typedef struct gfn_work_rule {
	gfn_work_kind kind; /* see above */
	int tensor;         /* inputs 0..n_inputs-1, then outputs */
	size_t global[3];   /* GFN_WORK_FIXED: global size, 0 = unused dim */
	size_t local[3];    /* work-group size, 0 = the backend picks */
	int pass_sizes;     /* nonzero: the real extents follow the params as
	                       ulong arguments: ELEMENTS n; MATRIX cols, rows;
	                       FIXED the element count of tensor */
} gfn_work_rule;

/*
 * A kernel in OpenCL C. Its arguments, in order: one __global pointer per
 * input, one per output, the scalar parameters with their declared types,
 * then the sizes asked for by work.pass_sizes. Built once per device when
 * the function is registered (through the kernel cache); a build error
 * fails the registration with the build log in the detail message.
 */
typedef struct gfn_opencl_kernel {
	const char *source;  /* OpenCL C source, NUL-terminated */
	const char *options; /* build options, may be NULL */
	const char *name;    /* kernel function name */
	gfn_work_rule work;  /* global/local size rule */
} gfn_opencl_kernel;

/*
 * A kernel for CUDA devices. Give either a module image (PTX text, cubin
 * or fatbin, loaded with cuModuleLoadData) or CUDA C source (compiled at
 * registration with NVRTC, through the kernel cache). The kernel's
 * parameters follow the same order as OpenCL's: one device pointer per
 * input, one per output, the scalar parameters with their declared types,
 * then the sizes asked for by work.pass_sizes (unsigned long long). The
 * work rule gives the grid: global sizes are threads, local the block.
 */
typedef struct gfn_cuda_kernel {
	const void *image;  /* PTX (NUL-terminated), cubin or fatbin; or NULL */
	size_t image_len;   /* bytes of image (0 for PTX text) */
	const char *source; /* CUDA C for NVRTC when image is NULL */
	const char *options; /* NVRTC options, may be NULL */
	const char *name;    /* kernel (extern "C") name */
	gfn_work_rule work;  /* grid rule */
} gfn_cuda_kernel;

typedef struct gfn_function_desc {
	const char *name;                /* unique, 1..63 chars */
	size_t n_inputs;                 /* 0..GFN_MAX_INPUTS */
	const gfn_tensor_spec *inputs;   /* input signature */
	size_t n_outputs;                /* 0..GFN_MAX_OUTPUTS */
	const gfn_tensor_spec *outputs;  /* output signature */
	size_t n_params;                 /* 0..GFN_MAX_PARAMS */
	const gfn_param_spec *params;    /* scalar parameter signature */
	gfn_cpu_kernel_fn cpu_fn;        /* CPU implementation, or NULL */
	void *user;                      /* passed to cpu_fn; caller keeps it
	                                    alive until unregistered */
	const gfn_opencl_kernel *opencl; /* OpenCL implementation, or NULL;
	                                    copied */
	const gfn_cuda_kernel *cuda; /* CUDA implementation, or NULL; copied */
	uint64_t (*load_cost_ns)(void *user, int device); /* optional: how
	                                long making the function's instance
	                                warm on device would take now, 0 when
	                                it is; placement adds it to that
	                                device's estimate. Called with user,
	                                no gfn lock held; must be quick */
	unsigned batch_max;            /* > 1: invocations that arrive within
	                                batch_delay_us run as one launch of
	                                up to batch_max of them, joined
	                                along dimension 0 (every input and
	                                output must have GFN_DIM_VAR(0) as
	                                its first extent; only invocations
	                                with equal parameters and equal
	                                other extents join); each gets its
	                                own outputs, equal to an unbatched
	                                run's. 0 or 1: never batched */
	void (*user_free)(void *user); /* optional: called once with user
	                                after a successful registration's
	                                function is gone (unregistered and
	                                its last invocation ended, or the
	                                engine destroyed), on whichever
	                                thread ended it last. Not called
	                                when registration fails */
} gfn_function_desc;

/*
 * Register a function: at least one implementation (cpu_fn, opencl, cuda) must
 * be given; it runs on every device whose backend has one. The descriptor
 * is copied (names included). GFN_EEXIST
 * when the name is taken; GFN_EINVAL for a malformed signature; GFN_ENODEV
 * when no device of the engine can run it.
 */
GFN_API gfn_status gfn_function_register(gfn_engine *e,
                                         const gfn_function_desc *desc,
                                         gfn_function *out);

/* Look a registered function up by name. */
GFN_API gfn_status gfn_function_find(gfn_engine *e, const char *name,
                                     gfn_function *out);

/* What a registered function takes and gives. */
typedef struct gfn_function_info {
	char name[64];                              /* registered name */
	size_t n_inputs;                            /* input tensors */
	size_t n_outputs;                           /* output tensors */
	size_t n_params;                            /* scalar parameters */
	gfn_param_type param_types[GFN_MAX_PARAMS]; /* type of each */
	unsigned batch_max;                         /* > 1: it batches */
} gfn_function_info;

GFN_API gfn_status gfn_function_get_info(gfn_engine *e, gfn_function fn,
                                         gfn_function_info *out);

/*
 * Unregister. New invocations get GFN_ESTALE at once; ones already accepted
 * still run (the function lives until the last of them ends).
 */
GFN_API gfn_status gfn_function_unregister(gfn_engine *e, gfn_function fn);

/* ---------------------------------------------------------------- invoking */

typedef struct gfn_future {
	uint64_t id; /* slot and generation; 0 is never valid */
} gfn_future;

/*
 * Completion callback: called once when the invocation has ended with
 * status: on a worker thread, or on the thread that canceled it
 * (gfn_future_cancel, gfn_engine_destroy). The
 * future is still valid inside; the callback may read its outputs and may
 * release it. It must not block for long and must not destroy the engine.
 */
typedef void (*gfn_callback)(gfn_engine *e, gfn_future f, gfn_status status,
                             void *arg);

/*
 * One invocation. Zero-initialise it (designated initialisers or memset),
 * so that fields later versions add read as their defaults.
 */
typedef struct gfn_invocation {
	gfn_function fn;          /* what to run */
	size_t n_inputs;          /* must equal the signature */
	const gfn_object *inputs; /* sealed objects; each is referenced while
	                             the invocation is in flight */
	size_t n_params;          /* must equal the signature */
	const gfn_scalar *params; /* copied at submission */
	gfn_callback callback;    /* optional */
	void *callback_arg;       /* passed to callback */
	uint64_t devices;         /* bit d allows engine device d; 0: any.
	                             No allowed device that can run the
	                             function: GFN_ENODEV */
	int32_t priority;         /* higher runs first; default 0 */
	uint64_t deadline_ns;     /* gfn_clock_ns() time by which it must
	                             have run; 0: none. One that cannot make
	                             it is refused (GFN_ETIMEDOUT) at
	                             submission or ended before it runs */
	uint32_t tenant;          /* who it runs for (a store tenant, as a
	                             client process's is): it counts against
	                             that tenant's limits, may use only that
	                             tenant's and the engine's objects
	                             (GFN_EACCES), and its outputs belong to
	                             that tenant, so its client reads them in
	                             place. 0: the engine's own. Set by a
	                             trusted embedder such as gfnd */
} gfn_invocation;

/* The clock deadlines are on: CLOCK_MONOTONIC, in nanoseconds. */
GFN_API uint64_t gfn_clock_ns(void);

/*
 * Submit one invocation. Arguments are checked at once (function, input
 * ids, sealed state, dtypes, shapes, parameter count); a bad one fails this
 * call and no future is made. On GFN_OK the caller owns *out and must give
 * it back with gfn_future_release. GFN_EBUSY at once when the chosen
 * device queue is full: nothing was queued.
 */
GFN_API gfn_status gfn_invoke(gfn_engine *e, const gfn_invocation *inv,
                              gfn_future *out);

/*
 * Submit n invocations with one hand-off per device. They are accepted in
 * order until one fails its checks or finds the queue full; *accepted says
 * how many (those futures are in out[0 .. *accepted-1] and owned by the
 * caller), and the return value is the status of the first one refused
 * (GFN_OK when all were accepted).
 */
GFN_API gfn_status gfn_invoke_many(gfn_engine *e, const gfn_invocation *invs,
                                   size_t n, gfn_future *out, size_t *accepted);

/*
 * Wait until the invocation ends or timeout_ns passes (negative: forever,
 * 0: just look). Returns the invocation's status once it has ended (GFN_OK
 * or the error it ended with), GFN_ETIMEDOUT if it had not ended in time.
 */
GFN_API gfn_status gfn_future_wait(gfn_engine *e, gfn_future f,
                                   int64_t timeout_ns);

/* Like gfn_future_wait with timeout 0 but GFN_EPENDING when not ended. */
GFN_API gfn_status gfn_future_poll(gfn_engine *e, gfn_future f);

/*
 * Output objects of an ended, successful invocation: sealed, one per
 * declared output. The first call moves one reference of each to the
 * caller (release them with gfn_object_release); a second call gives
 * GFN_ESTATE. GFN_EPENDING when not ended; the invocation's error when it
 * failed. cap must be at least the number of outputs (GFN_ERANGE).
 */
GFN_API gfn_status gfn_future_outputs(gfn_engine *e, gfn_future f,
                                      gfn_object *outs, size_t cap, size_t *n);

/*
 * The engine device the invocation was placed on (the one it ran on,
 * once it has run). For per-device accounting by embedders such as gfnd.
 */
GFN_API gfn_status gfn_future_device(gfn_engine *e, gfn_future f,
                                     size_t *device);

/*
 * Ask for the invocation to be canceled. A queued invocation ends with
 * GFN_ECANCELED; a running or ended one is not affected (GFN_ESTATE).
 */
GFN_API gfn_status gfn_future_cancel(gfn_engine *e, gfn_future f);

/*
 * Give the future back. Allowed before it has ended: the invocation still
 * runs, its outputs are dropped and its callback still fires. Output
 * references not taken with gfn_future_outputs are released.
 */
GFN_API gfn_status gfn_future_release(gfn_engine *e, gfn_future f);

/* ---------------------------------------------------------------- stats */

typedef struct gfn_stats {
	uint64_t submitted;     /* invocations accepted */
	uint64_t completed;     /* ended with GFN_OK */
	uint64_t failed;        /* ended with an error other than cancel */
	uint64_t canceled;      /* ended with GFN_ECANCELED */
	uint64_t rejected_busy; /* invocations refused: GFN_EBUSY */
	uint64_t queued;        /* waiting in device queues now */
	uint64_t running;       /* running now */
	/* Hot-path counters: after warm-up each must stay unchanged while the
	   engine runs invocations whose shapes it has seen before. */
	uint64_t host_allocs;       /* host memory taken from the OS by gfn */
	uint64_t context_creates;   /* device contexts created */
	uint64_t kernel_compiles;   /* kernels compiled or modules loaded */
	uint64_t pinnings;          /* host ranges pinned or registered */
	uint64_t input_copies;      /* input bytes copied on the host */
	uint64_t store_objects;     /* live objects in the store */
	uint64_t store_bytes;       /* bytes held by live objects */
	uint64_t store_evictions;   /* objects evicted under pressure */
	uint64_t kernel_cache_hits; /* kernels loaded from the kernel cache
	                               instead of compiled */
	uint64_t device_allocs;     /* device memory taken from a driver
	                               (pool chunks) */
	uint64_t device_resets;     /* devices rebuilt after a fault that
	                               poisoned their context */
	uint64_t devices_retired;   /* devices given up after such a fault */
	uint64_t pinned_bytes;      /* pinned host memory of the devices'
	                               staging pools */
	uint64_t batches;           /* launches that ran several invocations */
	uint64_t batched;           /* invocations that ran in them */
	uint64_t stolen;            /* invocations an idle device took from
	                               another device's queue */
} gfn_stats;

GFN_API gfn_status gfn_engine_stats(gfn_engine *e, gfn_stats *out);

/* Per-device counters. */
typedef struct gfn_device_stats {
	uint64_t completed;     /* invocations that ran on the device */
	uint64_t queued;        /* waiting in its queue now */
	unsigned bound_workers; /* workers pinned to the cores of the
	                           device's NUMA node */
} gfn_device_stats;

GFN_API gfn_status gfn_device_get_stats(gfn_engine *e, size_t index,
                                        gfn_device_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* GFN_GFN_H */
