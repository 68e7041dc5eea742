/*
 * cuda.c - the CUDA backend on the driver API, loaded at run time
 * (cuda_api.c): no libcuda at link time, zero devices without one.
 *
 * One primary context per device (cuDevicePrimaryCtxRetain), shared by
 * every function and tenant of the process and retained lazily: opening a
 * device costs nothing, its first real use pays the 0.3-0.5 s context
 * creation. One non-blocking stream per engine worker, made on the
 * worker's first use. Device memory comes from the engine's pool in large
 * cuMemAlloc chunks; blocks are pointer arithmetic on them (mem_view is
 * left to the default). Host ranges the engine registers are pinned with
 * cuMemHostRegister in pieces of at most GFN_CUDA_REGISTER_CHUNK; copies
 * from them are plain async DMA. Unregistered sources go through a pinned
 * staging pool (cuMemHostAlloc slabs), counted in staged_bytes.
 *
 * Modules (a PTX/cubin/fatbin image, or CUDA C compiled by NVRTC through
 * the kernel cache: nvrtc.c) are loaded once per device and content and
 * shared by every kernel made from them.
 *
 * Sticky errors: a kernel fault (illegal address and the like) poisons
 * the context: every later call on it fails. The call that sees one marks
 * the device (poisoned() says so) and further work fails at once with
 * GFN_EDEVICE; the engine quarantines the device, releases what it made
 * from it and calls device_reset, which releases the primary context and
 * resets it (cuDevicePrimaryCtxReset). The next use retains a fresh one.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/backends/cuda/cuda_int.h"
#include "runtime/util.h"

/* ---- errors ---------------------------------------------------------------- */

int gfn__cuda_sticky(CUresult r)
{
	switch (r) {
	case CUDA_ERROR_ECC_UNCORRECTABLE:
	case CUDA_ERROR_NVLINK_UNCORRECTABLE:
	case CUDA_ERROR_CONTAINED:
	case CUDA_ERROR_ILLEGAL_ADDRESS:
	case CUDA_ERROR_LAUNCH_TIMEOUT:
	case CUDA_ERROR_ASSERT:
	case CUDA_ERROR_HARDWARE_STACK_ERROR:
	case CUDA_ERROR_ILLEGAL_INSTRUCTION:
	case CUDA_ERROR_MISALIGNED_ADDRESS:
	case CUDA_ERROR_INVALID_ADDRESS_SPACE:
	case CUDA_ERROR_INVALID_PC:
	case CUDA_ERROR_LAUNCH_FAILED:
	case CUDA_ERROR_TENSOR_MEMORY_LEAK:
	case CUDA_ERROR_MPS_CLIENT_TERMINATED:
	case CUDA_ERROR_EXTERNAL_DEVICE:
		return 1;
	default:
		return 0;
	}
}

static gfn_status status_of(CUresult r)
{
	switch (r) {
	case CUDA_ERROR_OUT_OF_MEMORY:
		return GFN_ENOMEM;
	case CUDA_ERROR_INVALID_VALUE:
		return GFN_EINVAL;
	case CUDA_ERROR_INVALID_IMAGE:
	case CUDA_ERROR_INVALID_PTX:
	case CUDA_ERROR_UNSUPPORTED_PTX_VERSION:
	case CUDA_ERROR_NO_BINARY_FOR_GPU:
	case CUDA_ERROR_JIT_COMPILER_NOT_FOUND:
	case CUDA_ERROR_JIT_COMPILATION_DISABLED:
	case CUDA_ERROR_INVALID_SOURCE:
	case CUDA_ERROR_NOT_FOUND:
		return GFN_EKERNEL;
	default:
		return GFN_EDEVICE;
	}
}

gfn_status gfn__cuda_fail(gfn_bdev *d, CUresult r, const char *call)
{
	gfn_cuda_api *cu = gfn__cu();
	const char *name = NULL, *text = NULL;
	int sticky = gfn__cuda_sticky(r);

	if (cu->cuGetErrorName)
		cu->cuGetErrorName(r, &name);
	if (cu->cuGetErrorString)
		cu->cuGetErrorString(r, &text);
	if (sticky && d)
		atomic_store(&d->poisoned, 1);
	return gfn__fail(status_of(r), "%s%s%s: %s (%d)%s%s%s",
	                 d ? d->name : "", d ? ": " : "", call,
	                 name ? name : "CUDA error", (int)r, text ? ": " : "",
	                 text ? text : "",
	                 sticky ? " (context poisoned: the device must be "
	                          "reset)"
	                        : "");
}

/* ---- contexts ---------------------------------------------------------------- */

/* Retain the primary context on first use. Device lock held. */
static gfn_status retain(gfn_bdev *d)
{
	gfn_cuda_api *cu = gfn__cu();
	CUcontext c = NULL;
	CUresult r;

	if (atomic_load(&d->ctx))
		return GFN_OK;
	r = cu->cuDevicePrimaryCtxRetain(&c, d->dev);
	if (r != CUDA_SUCCESS)
		return gfn__cuda_fail(d, r, "cuDevicePrimaryCtxRetain");
	atomic_store(&d->ctx, c);
	gfn__log(GFN_LOG_INFO, "%s: primary context retained", d->name);
	return GFN_OK;
}

gfn_status gfn__cuda_enter(gfn_bdev *d)
{
	CUcontext c = atomic_load_explicit(&d->ctx, memory_order_acquire);
	gfn_status s = GFN_OK;
	CUresult r;

	if (atomic_load_explicit(&d->poisoned, memory_order_relaxed))
		return gfn__fail(
		        GFN_EDEVICE,
		        "%s: context poisoned by an earlier fault; the "
		        "device must be reset",
		        d->name);
	if (!c) {
		pthread_mutex_lock(&d->lock);
		s = retain(d);
		pthread_mutex_unlock(&d->lock);
		if (s != GFN_OK)
			return s;
		c = atomic_load(&d->ctx);
	}
	/* Cheap (a thread-local store in the driver), and always right
	   even after a reset gave the device a new context. */
	r = gfn__cu()->cuCtxSetCurrent(c);
	return r == CUDA_SUCCESS ? GFN_OK
	                         : gfn__cuda_fail(d, r, "cuCtxSetCurrent");
}

void gfn__cuda_current(gfn_bdev *d)
{
	CUcontext c = atomic_load(&d->ctx);

	if (c)
		gfn__cu()->cuCtxSetCurrent(c);
}

/* ---- enumeration --------------------------------------------------------------- */

static gfn_status cu_probe(unsigned hint, int *count)
{
	gfn_cuda_api *cu = gfn_cuda_api_get();
	CUresult r;
	int n = 0;

	(void)hint;
	*count = 0;
	if (!gfn_cuda_api_usable(cu)) {
		gfn__log(GFN_LOG_INFO, "cuda: no usable libcuda.so.1");
		return GFN_OK;
	}
	r = cu->cuInit(0);
	if (r == CUDA_SUCCESS)
		r = cu->cuDeviceGetCount(&n);
	if (r != CUDA_SUCCESS) { /* no GPU, no kernel module, ...: none */
		gfn__cuda_fail(NULL, r, "cuInit");
		gfn__log(GFN_LOG_INFO, "cuda: %s", gfn_error_detail());
		return GFN_OK;
	}
	*count = n > 0 ? n : 0;
	return GFN_OK;
}

/* "0000:3b:00.0", lower case like sysfs and hwloc, or "". */
static void pci_bus_id(CUdevice dev, char *out, size_t len)
{
	gfn_cuda_api *cu = gfn__cu();

	out[0] = '\0';
	if (!cu->cuDeviceGetPCIBusId ||
	    cu->cuDeviceGetPCIBusId(out, (int)len, dev) != CUDA_SUCCESS) {
		out[0] = '\0';
		return;
	}
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
}

static int attr(CUdevice dev, CUdevice_attribute a)
{
	int v = 0;

	if (gfn__cu()->cuDeviceGetAttribute(&v, a, dev) != CUDA_SUCCESS)
		return 0;
	return v;
}

static gfn_status get_device(int idx, CUdevice *dev, char *name, size_t len)
{
	gfn_cuda_api *cu = gfn__cu();
	CUresult r;

	r = cu->cuDeviceGet(dev, idx);
	if (r != CUDA_SUCCESS)
		return gfn__cuda_fail(NULL, r, "cuDeviceGet");
	name[0] = '\0';
	if (cu->cuDeviceGetName(name, (int)len - 1, *dev) != CUDA_SUCCESS)
		name[0] = '\0';
	name[len - 1] = '\0';
	return GFN_OK;
}

static gfn_status cu_device_info(int idx, gfn_device_info *info)
{
	CUdevice dev;
	size_t mem = 0;
	char name[100];
	gfn_status s = get_device(idx, &dev, name, sizeof(name));

	if (s != GFN_OK)
		return s;
	memset(info, 0, sizeof(*info));
	gfn__cu()->cuDeviceTotalMem(&mem, dev);
	snprintf(info->name, sizeof(info->name), "cuda%d:%s", idx, name);
	info->backend = GFN_BACKEND_CUDA;
	info->backend_index = idx;
	info->memory_bytes = mem;
	info->compute_units =
	        (unsigned)attr(dev, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
	pci_bus_id(dev, info->pci_bus_id, sizeof(info->pci_bus_id));
	info->numa_node = -1; /* the topology issue fills this in */
	return GFN_OK;
}

/* ---- devices ------------------------------------------------------------------------ */

static gfn_status node_pin(void *ctx, void *p, size_t bytes, void **handle);
static void node_unpin(void *ctx, void *p, size_t bytes, void *handle);

/*
 * The staging pool: cuMemHostAlloc slabs, or, once the engine has told
 * the device its NUMA node, slabs bound to that node and then registered
 * (cuMemHostAlloc cannot be told a node).
 */
static gfn_status make_pinned(gfn_bdev *d)
{
	gfn_hostmem_pinner pin = {node_pin, node_unpin, d};
	gfn_hostmem_provider prov;

	if (d->numa_node >= 0 &&
	    gfn_hostmem_create_on_node(CUDA_PINNED_LIMIT, d->numa_node, &pin,
	                               &d->pinned) == GFN_OK)
		return GFN_OK;
	gfn_cuda_host_provider(d, &prov);
	return gfn_hostmem_create_with(CUDA_PINNED_LIMIT, &prov, &d->pinned);
}

static gfn_status cu_device_open(int idx, gfn_bdev **out)
{
	char name[100];
	gfn_bdev *d = calloc(1, sizeof(*d));
	gfn_status s;

	if (d)
		d->numa_node = -1;
	if (!d)
		return gfn__fail(GFN_ENOMEM, "no memory for a CUDA device");
	d->idx = idx;
	s = get_device(idx, &d->dev, name, sizeof(name));
	if (s != GFN_OK) {
		free(d);
		return s;
	}
	snprintf(d->name, sizeof(d->name), "cuda%d:%s", idx, name);
	d->cc_major =
	        attr(d->dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
	d->cc_minor =
	        attr(d->dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
	snprintf(d->arch, sizeof(d->arch), "sm_%d%d", d->cc_major, d->cc_minor);
	gfn__cu()->cuDriverGetVersion(&d->driver_version);
	pthread_mutex_init(&d->lock, NULL);
	pthread_rwlock_init(&d->rlock, NULL);
	s = make_pinned(d);
	if (s != GFN_OK) {
		pthread_rwlock_destroy(&d->rlock);
		pthread_mutex_destroy(&d->lock);
		free(d);
		return s;
	}
	*out = d; /* no context yet: retained on first use */
	return GFN_OK;
}

static void drop_registrations(gfn_bdev *d);

/* Unload every module left (the engine unloads its kernels first; this
   is for records a reset made stale). Device lock held or alone. */
static void drop_modules(gfn_bdev *d)
{
	unsigned gen = atomic_load(&d->gen);

	while (d->mods) {
		cuda_module *m = d->mods;

		d->mods = m->next;
		if (m->gen == gen)
			gfn__cu()->cuModuleUnload(m->mod);
		free(m);
	}
}

/* Release the primary context if this device holds it. Lock held. */
static CUresult release_ctx(gfn_bdev *d)
{
	CUresult r = CUDA_SUCCESS;

	if (atomic_load(&d->ctx))
		r = gfn__cu()->cuDevicePrimaryCtxRelease(d->dev);
	atomic_store(&d->ctx, NULL);
	return r;
}

static void cu_device_close(gfn_bdev *d)
{
	if (!d)
		return;
	drop_registrations(d);
	gfn_hostmem_destroy(d->pinned); /* frees its pinned slabs */
	pthread_mutex_lock(&d->lock);
	drop_modules(d);
	release_ctx(d);
	pthread_mutex_unlock(&d->lock);
	pthread_rwlock_destroy(&d->rlock);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static int cu_poisoned(gfn_bdev *d)
{
	return atomic_load(&d->poisoned);
}

/*
 * The engine has released every queue, kernel and block of d. Free what
 * the device holds itself (the staging pool, any registration the engine
 * left), give up the context and reset it: that destroys it for every
 * retainer in the process, which is right, since a sticky error has made
 * it useless to all of them. The next use retains a fresh one.
 */
static gfn_status cu_device_reset(gfn_bdev *d)
{
	gfn_cuda_api *cu = gfn__cu();
	gfn_status s;
	CUresult r;

	drop_registrations(d);
	gfn_hostmem_destroy(d->pinned);
	d->pinned = NULL;
	pthread_mutex_lock(&d->lock);
	drop_modules(d);
	release_ctx(d);
	r = cu->cuDevicePrimaryCtxReset(d->dev);
	atomic_fetch_add(&d->gen, 1);
	pthread_mutex_unlock(&d->lock);
	if (r != CUDA_SUCCESS)
		return gfn__cuda_fail(d, r, "cuDevicePrimaryCtxReset");
	s = make_pinned(d);
	if (s != GFN_OK)
		return s;
	atomic_store(&d->poisoned, 0);
	gfn__log(GFN_LOG_INFO, "%s: primary context reset", d->name);
	return GFN_OK;
}

/* ---- queues -------------------------------------------------------------------------- */

static gfn_status cu_queue_create(gfn_bdev *d, gfn_bqueue **out)
{
	gfn_bqueue *q = calloc(1, sizeof(*q));

	if (!q)
		return gfn__fail(GFN_ENOMEM, "no memory for a CUDA queue");
	q->dev = d; /* the stream is made on first use */
	*out = q;
	return GFN_OK;
}

static void free_staged(gfn_bqueue *q)
{
	for (int i = 0; i < q->nstaged; i++)
		gfn_hostmem_free(q->dev->pinned, q->staged[i].p,
		                 q->staged[i].n);
	q->nstaged = 0;
}

/*
 * The event a sync waits on. Made with CU_EVENT_BLOCKING_SYNC so the
 * waiting worker sleeps in the driver instead of spinning on a core that
 * other workers need; without the event entry points sync falls back to
 * cuStreamSynchronize.
 */
static gfn_status make_done_event(gfn_bqueue *q)
{
	gfn_cuda_api *cu = gfn__cu();
	CUresult r;

	q->done = NULL;
	if (!cu->cuEventCreate || !cu->cuEventRecord ||
	    !cu->cuEventSynchronize || !cu->cuEventDestroy)
		return GFN_OK;
	r = cu->cuEventCreate(&q->done,
	                      CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING);
	if (r != CUDA_SUCCESS) {
		q->done = NULL;
		return gfn__cuda_fail(q->dev, r, "cuEventCreate");
	}
	return GFN_OK;
}

gfn_status gfn__cuda_stream(gfn_bqueue *q)
{
	gfn_bdev *d = q->dev;
	gfn_status s = gfn__cuda_enter(d);
	unsigned gen = atomic_load(&d->gen);
	CUresult r;

	if (s != GFN_OK)
		return s;
	if (q->stream && q->gen == gen)
		return GFN_OK;
	if (q->stream) { /* died with a reset: its handles are gone */
		q->stream = NULL;
		q->done = NULL; /* died with the same context */
		q->nstaged = 0;
		q->blas = NULL; /* cuBLAS cannot free a handle whose
		                   context is gone: leaked, once per reset */
	}
	r = gfn__cu()->cuStreamCreate(&q->stream, CU_STREAM_NON_BLOCKING);
	if (r != CUDA_SUCCESS) {
		q->stream = NULL;
		return gfn__cuda_fail(d, r, "cuStreamCreate");
	}
	if ((s = make_done_event(q)) != GFN_OK) {
		gfn__cu()->cuStreamDestroy(q->stream);
		q->stream = NULL;
		return s;
	}
	q->gen = gen;
	return GFN_OK;
}

static void cu_queue_destroy(gfn_bqueue *q)
{
	gfn_cuda_api *cu = gfn__cu();

	if (!q)
		return;
	if (q->stream && q->gen == atomic_load(&q->dev->gen)) {
		gfn__cuda_current(q->dev);
		cu->cuStreamSynchronize(q->stream);
		free_staged(q);
		gfn__cuda_blas_release(q);
		if (q->done)
			cu->cuEventDestroy(q->done);
		cu->cuStreamDestroy(q->stream);
	}
	free(q);
}

/* Wait for everything enqueued on q: on its done event where it has one. */
static CUresult wait_stream(gfn_bqueue *q)
{
	gfn_cuda_api *cu = gfn__cu();
	CUresult r;

	if (!q->done)
		return cu->cuStreamSynchronize(q->stream);
	r = cu->cuEventRecord(q->done, q->stream);
	return r == CUDA_SUCCESS ? cu->cuEventSynchronize(q->done) : r;
}

static gfn_status cu_sync(gfn_bqueue *q)
{
	CUresult r;

	if (q->capturing)
		return gfn__fail(GFN_EINVAL, "%s: sync while recording a graph",
		                 q->dev->name);
	if (!q->stream || q->gen != atomic_load(&q->dev->gen)) {
		q->nstaged = 0; /* nothing was enqueued, or a reset ate it */
		return GFN_OK;
	}
	gfn__cuda_current(q->dev);
	r = wait_stream(q);
	free_staged(q); /* every copy out of them has ended */
	return r == CUDA_SUCCESS ? GFN_OK
	                         : gfn__cuda_fail(q->dev, r, "stream sync");
}

/* ---- device memory ------------------------------------------------------------------- */

static gfn_status cu_mem_alloc(gfn_bdev *d, size_t size, gfn_bmem *out)
{
	CUdeviceptr p = 0;
	gfn_status s = gfn__cuda_enter(d);
	CUresult r;

	if (s != GFN_OK)
		return s;
	r = gfn__cu()->cuMemAlloc(&p, size ? size : 1);
	if (r != CUDA_SUCCESS)
		return gfn__cuda_fail(d, r, "cuMemAlloc");
	out->ptr = (void *)(uintptr_t)p; /* blocks: pointer arithmetic */
	out->size = size;
	out->handle = NULL;
	return GFN_OK;
}

static void cu_mem_free(gfn_bdev *d, gfn_bmem *m)
{
	if (m->ptr && atomic_load(&d->ctx)) {
		gfn__cuda_current(d);
		gfn__cu()->cuMemFree((CUdeviceptr)(uintptr_t)m->ptr);
	}
	m->ptr = NULL;
}

/* ---- host ranges ------------------------------------------------------------------------ */

/* Insert a range, keeping them sorted by base; 0 when full. */
static int add_region(gfn_bdev *d, const void *p, size_t len, int pinned)
{
	int i;

	pthread_rwlock_wrlock(&d->rlock);
	if (d->nregions == CUDA_MAX_REGIONS) {
		pthread_rwlock_unlock(&d->rlock);
		return 0;
	}
	for (i = d->nregions; i > 0 && d->regions[i - 1].base > (char *)p; i--)
		d->regions[i] = d->regions[i - 1];
	d->regions[i] = (cuda_region){p, len, pinned};
	d->nregions++;
	pthread_rwlock_unlock(&d->rlock);
	return 1;
}

/* Remove the range starting at base into *out; 0 when there is none. */
static int drop_region(gfn_bdev *d, const void *base, cuda_region *out)
{
	int found = 0;

	pthread_rwlock_wrlock(&d->rlock);
	for (int i = 0; i < d->nregions && !found; i++) {
		if (d->regions[i].base != base)
			continue;
		*out = d->regions[i];
		memmove(&d->regions[i], &d->regions[i + 1],
		        (size_t)(d->nregions - i - 1) * sizeof(cuda_region));
		d->nregions--;
		found = 1;
	}
	pthread_rwlock_unlock(&d->rlock);
	return found;
}

int gfn__cuda_is_registered(gfn_bdev *d, const void *p, size_t n)
{
	const char *c = p;
	int lo = 0, hi, found = 0;

	pthread_rwlock_rdlock(&d->rlock);
	hi = d->nregions - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		const cuda_region *r = &d->regions[mid];

		if (c < r->base) {
			hi = mid - 1;
		} else if (c >= r->base + r->len) {
			lo = mid + 1;
		} else {
			found = n <= r->len - (size_t)(c - r->base);
			break;
		}
	}
	pthread_rwlock_unlock(&d->rlock);
	return found;
}

/* Unregister the first `done` bytes of [p, ...), chunk by chunk. */
static void unregister_chunks(const char *p, size_t done)
{
	for (size_t off = 0; off < done; off += GFN_CUDA_REGISTER_CHUNK)
		gfn__cu()->cuMemHostUnregister((char *)p + off);
}

/*
 * Pin [p, p+size) piece by piece. A piece the driver says is registered
 * already is taken as pinned: gfn counts its own registrations process-
 * wide (pin_get), so such a piece is one whose unregistration failed on a
 * poisoned context and survived the reset; it is gfn's, and is
 * unregistered with the rest when the range goes.
 */
static gfn_status register_chunks(gfn_bdev *d, char *p, size_t size)
{
	size_t off;

	for (off = 0; off < size; off += GFN_CUDA_REGISTER_CHUNK) {
		size_t left = size - off;
		size_t len = left < GFN_CUDA_REGISTER_CHUNK
		                     ? left
		                     : GFN_CUDA_REGISTER_CHUNK;
		CUresult r = gfn__cu()->cuMemHostRegister(
		        p + off, len, CU_MEMHOSTREGISTER_PORTABLE);

		if (r != CUDA_SUCCESS &&
		    r != CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED) {
			unregister_chunks(p, off);
			return gfn__cuda_fail(d, r, "cuMemHostRegister");
		}
	}
	return GFN_OK;
}

/*
 * CUDA pins a host range once per process (unified addressing), not once
 * per context: registering a range again, through any device, fails with
 * HOST_MEMORY_ALREADY_REGISTERED. Every device registers the store's
 * memory, so registrations are counted here, process-wide, and the driver
 * is called by the first device to register a range and the last to let
 * it go. Cold path: the lock is held across the driver calls.
 */
typedef struct pin {
	char *base;    /* registered range */
	size_t len;    /* its bytes */
	unsigned refs; /* devices holding it */
} pin;

static pin *pins;      /* every registered range */
static size_t npins;   /* used entries */
static size_t cappins; /* allocated entries */
static pthread_mutex_t pin_lock = PTHREAD_MUTEX_INITIALIZER; /* all above */

/* Index of the pin of exactly [p, p+len), or -1. pin_lock held. */
static long pin_find(const char *p, size_t len)
{
	for (size_t i = 0; i < npins; i++)
		if (pins[i].base == p && pins[i].len == len)
			return (long)i;
	return -1;
}

/* Room for one more pin; 0 without memory. pin_lock held. */
static int pins_room(void)
{
	size_t cap = cappins ? 2 * cappins : 64;
	pin *np;

	if (npins < cappins)
		return 1;
	np = realloc(pins, cap * sizeof(*np));
	if (!np)
		return 0;
	pins = np;
	cappins = cap;
	return 1;
}

static gfn_status pin_get(gfn_bdev *d, char *p, size_t len)
{
	gfn_status s = GFN_OK;
	long i;

	pthread_mutex_lock(&pin_lock);
	if ((i = pin_find(p, len)) >= 0) {
		pins[i].refs++;
	} else if (!pins_room()) {
		s = gfn__fail(GFN_ENOMEM, "no memory for a registration");
	} else if ((s = register_chunks(d, p, len)) == GFN_OK) {
		pins[npins++] = (pin){p, len, 1};
	}
	pthread_mutex_unlock(&pin_lock);
	return s;
}

static void pin_put(const char *p, size_t len)
{
	long i;

	pthread_mutex_lock(&pin_lock);
	i = pin_find(p, len);
	if (i >= 0 && !--pins[i].refs) {
		unregister_chunks(pins[i].base, len);
		pins[i] = pins[--npins];
	}
	if (!npins) { /* nothing registered: nothing kept */
		free(pins);
		pins = NULL;
		cappins = 0;
	}
	pthread_mutex_unlock(&pin_lock);
}

static gfn_status node_pin(void *ctx, void *p, size_t bytes, void **handle)
{
	gfn_bdev *d = ctx;
	gfn_status s = gfn__cuda_enter(d);

	if (s == GFN_OK &&
	    (!gfn__cu()->cuMemHostRegister || !gfn__cu()->cuMemHostUnregister))
		s = gfn__fail(GFN_ENOTSUP, "%s: cannot register", d->name);
	if (s == GFN_OK)
		s = pin_get(d, p, bytes);
	if (s != GFN_OK)
		return s;
	if (!add_region(d, p, bytes, 0)) {
		pin_put(p, bytes);
		return gfn__fail(GFN_ENOMEM, "%s: too many ranges", d->name);
	}
	*handle = p;
	return GFN_OK;
}

static void node_unpin(void *ctx, void *p, size_t bytes, void *handle)
{
	cuda_region r;

	(void)handle;
	drop_region(ctx, p, &r); /* gone already after a reset */
	pin_put(p, bytes);
}

/* Move the staging pool to node; only while it is unused. */
static gfn_status cu_set_numa_node(gfn_bdev *d, int node)
{
	gfn_hostmem *old = d->pinned;
	gfn_status s;

	if (gfn_hostmem_os_allocs(old))
		return gfn__fail(GFN_ESTATE, "%s: staging pool in use",
		                 d->name);
	d->numa_node = node;
	s = make_pinned(d);
	if (s != GFN_OK) {
		d->pinned = old;
		return s;
	}
	gfn_hostmem_destroy(old);
	return gfn_hostmem_node(d->pinned) == node
	               ? GFN_OK
	               : gfn__fail(GFN_ENOTSUP, "%s: pool not bound to node %d",
	                           d->name, node);
}

static gfn_status cu_host_register(gfn_bdev *d, void *p, size_t size,
                                   void **handle)
{
	gfn_status s;

	*handle = NULL;
	if (!gfn__cu()->cuMemHostRegister || !gfn__cu()->cuMemHostUnregister)
		return gfn__fail(GFN_ENOTSUP,
		                 "%s: driver cannot register host memory",
		                 d->name);
	if (!size)
		return gfn__fail(GFN_EINVAL, "%s: empty host range", d->name);
	s = gfn__cuda_enter(d);
	if (s == GFN_OK)
		s = pin_get(d, p, size);
	if (s != GFN_OK)
		return s;
	if (!add_region(d, p, size, 0)) {
		pin_put(p, size);
		return gfn__fail(GFN_ENOMEM, "%s: %d ranges registered already",
		                 d->name, CUDA_MAX_REGIONS);
	}
	*handle = p; /* looked up by base: a reset may have forgotten it */
	return GFN_OK;
}

static void cu_host_unregister(gfn_bdev *d, void *handle)
{
	cuda_region r;

	if (!drop_region(d, handle, &r) || r.pinned_alloc)
		return;
	gfn__cuda_current(d);
	pin_put(r.base, r.len);
}

/* Let go of every registered range d still holds (the engine normally
   unregisters them first). Pinned slabs stay: their pool frees them. */
static void drop_registrations(gfn_bdev *d)
{
	int i = 0;

	gfn__cuda_current(d);
	pthread_rwlock_wrlock(&d->rlock);
	while (i < d->nregions) {
		cuda_region *r = &d->regions[i];

		if (r->pinned_alloc) {
			i++;
			continue;
		}
		pin_put(r->base, r->len);
		memmove(r, r + 1,
		        (size_t)(d->nregions - i - 1) * sizeof(cuda_region));
		d->nregions--;
	}
	pthread_rwlock_unlock(&d->rlock);
}

/* ---- pinned staging ------------------------------------------------------------------------ */

static void *pinned_alloc(void *ctx, size_t bytes, void **handle)
{
	gfn_bdev *d = ctx;
	void *p = NULL;

	if (!gfn__cu()->cuMemHostAlloc || gfn__cuda_enter(d) != GFN_OK)
		return NULL;
	if (gfn__cu()->cuMemHostAlloc(&p, bytes, CU_MEMHOSTALLOC_PORTABLE) !=
	    CUDA_SUCCESS)
		return NULL;
	if (!add_region(d, p, bytes, 1)) {
		gfn__cu()->cuMemFreeHost(p);
		return NULL;
	}
	*handle = NULL;
	return p;
}

static void pinned_free(void *ctx, void *p, size_t bytes, void *handle)
{
	gfn_bdev *d = ctx;
	cuda_region r;

	(void)bytes, (void)handle;
	drop_region(d, p, &r); /* gone already after a reset */
	gfn__cuda_current(d);
	gfn__cu()->cuMemFreeHost(p);
}

void gfn_cuda_host_provider(gfn_bdev *dev, gfn_hostmem_provider *out)
{
	out->alloc = pinned_alloc;
	out->free = pinned_free;
	out->ctx = dev;
}

/*
 * Copy unregistered bytes into a pinned block (a counted host copy) so
 * the DMA is asynchronous; NULL to let the driver read *src itself (it
 * then stages pageable memory on its own). Freed at the next sync.
 */
static const void *stage(gfn_bqueue *q, const void *src, size_t n)
{
	gfn_bdev *d = q->dev;
	void *p;

	if (q->nstaged == CUDA_MAX_STAGED || !d->pinned)
		return NULL;
	p = gfn_hostmem_alloc(d->pinned, n);
	if (!p)
		return NULL;
	memcpy(p, src, n);
	q->staged[q->nstaged++] = (cuda_staged){p, n};
	atomic_fetch_add_explicit(&d->staged, n, memory_order_relaxed);
	return p;
}

static gfn_status check_range(const gfn_bdev *d, const gfn_bmem *m, size_t off,
                              size_t n)
{
	if (off > m->size || n > m->size - off)
		return gfn__fail(GFN_ERANGE,
		                 "%s: copy of %zu bytes at %zu past %zu",
		                 d->name, n, off, m->size);
	return GFN_OK;
}

static gfn_status cu_copy_h2d(gfn_bqueue *q, const gfn_bmem *dst, size_t off,
                              const void *src, size_t n)
{
	CUdeviceptr to = (CUdeviceptr)(uintptr_t)dst->ptr + off;
	gfn_status s = check_range(q->dev, dst, off, n);
	const void *from = src;
	CUresult r;

	if (s == GFN_OK && n)
		s = gfn__cuda_stream(q);
	if (s != GFN_OK || !n)
		return s;
	if (!gfn__cuda_is_registered(q->dev, src, n)) {
		if (q->capturing)
			return gfn__fail(GFN_EINVAL,
			                 "%s: a graph cannot record a copy "
			                 "from unregistered memory",
			                 q->dev->name);
		from = stage(q, src, n);
		if (!from) /* the caller keeps src alive until sync */
			from = src;
	}
	r = gfn__cu()->cuMemcpyHtoDAsync(to, from, n, q->stream);
	return r == CUDA_SUCCESS
	               ? GFN_OK
	               : gfn__cuda_fail(q->dev, r, "cuMemcpyHtoDAsync");
}

static gfn_status cu_copy_d2h(gfn_bqueue *q, void *dst, const gfn_bmem *src,
                              size_t off, size_t n)
{
	CUdeviceptr from = (CUdeviceptr)(uintptr_t)src->ptr + off;
	gfn_status s = check_range(q->dev, src, off, n);
	CUresult r;

	if (s == GFN_OK && n)
		s = gfn__cuda_stream(q);
	if (s != GFN_OK || !n)
		return s;
	r = gfn__cu()->cuMemcpyDtoHAsync(dst, from, n, q->stream);
	return r == CUDA_SUCCESS
	               ? GFN_OK
	               : gfn__cuda_fail(q->dev, r, "cuMemcpyDtoHAsync");
}

static uint64_t cu_staged_bytes(gfn_bdev *d)
{
	return atomic_load_explicit(&d->staged, memory_order_relaxed);
}

/* ---- modules and kernels ----------------------------------------------------------------------- */

/* The live module with key; NULL when none. Device lock held. */
static cuda_module *find_module(gfn_bdev *d, gfn_kkey key)
{
	unsigned gen = atomic_load(&d->gen);

	for (cuda_module *m = d->mods; m; m = m->next)
		if (m->gen == gen && gfn_kkey_equal(m->key, key))
			return m;
	return NULL;
}

/* Load image as a new module under key. Device lock held. */
static gfn_status load_module(gfn_bdev *d, gfn_kkey key, const void *image,
                              cuda_module **out)
{
	cuda_module *m = calloc(1, sizeof(*m));
	CUresult r;

	if (!m)
		return gfn__fail(GFN_ENOMEM, "no memory for a module");
	r = gfn__cu()->cuModuleLoadData(&m->mod, image);
	if (r != CUDA_SUCCESS) {
		free(m);
		return gfn__cuda_fail(d, r, "cuModuleLoadData");
	}
	m->key = key;
	m->refs = 1;
	m->gen = atomic_load(&d->gen);
	m->next = d->mods;
	d->mods = m;
	*out = m;
	return GFN_OK;
}

/* Drop one reference to m; unload it with the last. Device lock held. */
static void put_module(gfn_bdev *d, cuda_module *m)
{
	cuda_module **pp;

	if (--m->refs)
		return;
	for (pp = &d->mods; *pp && *pp != m; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = m->next;
	if (m->gen == atomic_load(&d->gen)) {
		gfn__cuda_current(d);
		gfn__cu()->cuModuleUnload(m->mod);
	}
	free(m);
}

/*
 * A module from an image (PTX text, cubin or fatbin). The driver wants
 * fatbin and cubin headers aligned, which an embedded char array need
 * not be: an unaligned image is copied first (a cold path).
 */
static gfn_status image_module(gfn_bdev *d, const gfn_ksrc *src,
                               cuda_module **out, int *hit)
{
	size_t len = src->len ? src->len : strlen(src->text) + 1;
	gfn_kkey key = gfn_kcache_key("cuda-image", "", "", src->text, len, "");
	const void *image = src->text;
	void *copy = NULL;
	gfn_status s;

	*out = find_module(d, key);
	if ((*hit = *out != NULL)) {
		(*out)->refs++;
		return GFN_OK;
	}
	if ((uintptr_t)image % 16) {
		copy = malloc(len + 1);
		if (!copy)
			return gfn__fail(GFN_ENOMEM, "no memory for an image");
		memcpy(copy, image, len);
		((char *)copy)[len] = '\0';
		image = copy;
	}
	s = load_module(d, key, image, out);
	free(copy);
	return s;
}

/* The kernel cache key of a CUDA C build for d. */
static gfn_kkey source_key(const gfn_bdev *d, const gfn_ksrc *src)
{
	char dev[160], drv[32];

	snprintf(dev, sizeof(dev), "%s|%s", d->name, d->arch);
	snprintf(drv, sizeof(drv), "cuda-driver %d", d->driver_version);
	return gfn_kcache_key("cuda", dev, drv, src->text,
	                      src->len ? src->len : strlen(src->text),
	                      src->options ? src->options : "");
}

/* A module from CUDA C: loaded already, in the kernel cache, or built
   with NVRTC (and put in the cache). */
static gfn_status source_module(gfn_bdev *d, const gfn_ksrc *src,
                                cuda_module **out, int *hit)
{
	gfn_kkey key = source_key(d, src);
	void *bin = NULL;
	size_t blen = 0;
	gfn_status s;

	*out = find_module(d, key);
	if ((*hit = *out != NULL)) {
		(*out)->refs++;
		return GFN_OK;
	}
	if (src->kcache &&
	    gfn_kcache_get(src->kcache, key, &bin, &blen) == GFN_OK) {
		s = load_module(d, key, bin, out);
		free(bin);
		if (s == GFN_OK) {
			*hit = 1;
			return GFN_OK;
		} /* a binary the driver refuses: build it again */
	}
	s = gfn__cuda_nvrtc_build(d, src->text,
	                          src->len ? src->len : strlen(src->text),
	                          src->options, &bin, &blen);
	if (s != GFN_OK)
		return s;
	s = load_module(d, key, bin, out);
	if (s == GFN_OK && src->kcache)
		gfn_kcache_put(src->kcache, key, bin, blen); /* best effort */
	free(bin);
	return s;
}

/* The block size to use when the work rule leaves it to the backend. */
static unsigned default_block(CUfunction fn)
{
	gfn_cuda_api *cu = gfn__cu();
	int max = 0;

	if (cu->cuFuncGetAttribute &&
	    cu->cuFuncGetAttribute(&max,
	                           CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
	                           fn) == CUDA_SUCCESS &&
	    max > 0 && max < CUDA_DEFAULT_BLOCK)
		return (unsigned)max;
	return CUDA_DEFAULT_BLOCK;
}

static gfn_status get_module(gfn_bdev *d, const gfn_ksrc *src, cuda_module **m,
                             int *hit)
{
	if (src->kind == GFN_KSRC_CUDA_PTX)
		return image_module(d, src, m, hit);
	return source_module(d, src, m, hit);
}

static gfn_status cu_kernel_load(gfn_bdev *d, const gfn_ksrc *src,
                                 gfn_bkernel **out, int *from_cache)
{
	gfn_bkernel *k;
	gfn_status s;
	CUresult r;

	*from_cache = 0;
	if ((src->kind != GFN_KSRC_CUDA_PTX && src->kind != GFN_KSRC_CUDA_C) ||
	    !src->text || !src->entry || strlen(src->entry) > 63)
		return gfn__fail(
		        GFN_ENOTSUP,
		        "the CUDA backend loads PTX/cubin/fatbin images "
		        "and CUDA C with a kernel name");
	k = calloc(1, sizeof(*k));
	if (!k)
		return gfn__fail(GFN_ENOMEM, "no memory for a kernel");
	s = gfn__cuda_enter(d);
	pthread_mutex_lock(&d->lock);
	if (s == GFN_OK)
		s = get_module(d, src, &k->mod, from_cache);
	if (s == GFN_OK) {
		r = gfn__cu()->cuModuleGetFunction(&k->fn, k->mod->mod,
		                                   src->entry);
		if (r != CUDA_SUCCESS) {
			char what[96];

			put_module(d, k->mod);
			snprintf(what, sizeof(what), "cuModuleGetFunction(%s)",
			         src->entry);
			s = gfn__cuda_fail(d, r, what);
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (s != GFN_OK) {
		free(k);
		return s;
	}
	k->block = default_block(k->fn);
	k->gen = k->mod->gen;
	strcpy(k->name, src->entry);
	*out = k;
	return GFN_OK;
}

static void cu_kernel_unload(gfn_bdev *d, gfn_bkernel *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&d->lock);
	put_module(d, k->mod);
	pthread_mutex_unlock(&d->lock);
	free(k);
}

/* ---- launch ---------------------------------------------------------------------------------- */

/* Every argument of a launch, kept until cuLaunchKernel copied them. */
typedef struct launch_args {
	CUdeviceptr ptrs[GFN_MAX_INPUTS + GFN_MAX_OUTPUTS]; /* tensors */
	unsigned long long sizes[3];                        /* extents */
	void *argv[GFN_MAX_INPUTS + GFN_MAX_OUTPUTS + GFN_MAX_PARAMS + 3];
} launch_args;

static CUdeviceptr dptr(const gfn_tensor *t)
{
	return (CUdeviceptr)(uintptr_t)((const gfn_bmem *)t->data)->ptr;
}

static void *param_ptr(gfn_param_type type, const gfn_scalar *v)
{
	switch (type) {
	case GFN_PARAM_F64:
		return (void *)&v->f64;
	case GFN_PARAM_I64:
		return (void *)&v->i64;
	case GFN_PARAM_F32:
		return (void *)&v->f32;
	case GFN_PARAM_I32:
		return (void *)&v->i32;
	}
	return NULL;
}

/* gfn.h's order: inputs, outputs, params, sizes. */
static void build_args(launch_args *la, const gfn_launch *l)
{
	const gfn_kernel_args *a = l->args;
	size_t np = 0, na = 0;

	for (size_t t = 0; t < a->n_inputs; t++)
		la->ptrs[np++] = dptr(&a->inputs[t]);
	for (size_t t = 0; t < a->n_outputs; t++)
		la->ptrs[np++] = dptr(&a->outputs[t]);
	for (size_t t = 0; t < np; t++)
		la->argv[na++] = &la->ptrs[t];
	for (size_t p = 0; p < a->n_params; p++)
		la->argv[na++] = param_ptr(l->param_types[p], &a->params[p]);
	for (int s = 0; s < l->nsizes; s++) {
		la->sizes[s] = l->sizes[s];
		la->argv[na++] = &la->sizes[s];
	}
}

/*
 * Block and grid from the work sizes: local[d] threads per block where
 * given, else the kernel's default along x (fewer for a small global)
 * and 1 along y and z; grid = ceil(global / block). A dimension with no
 * global size is unused, whatever local says (as in OpenCL, where the
 * number of global sizes is the number of dimensions).
 */
static gfn_status geometry(const gfn_bkernel *k, const gfn_launch *l,
                           unsigned grid[3], unsigned block[3])
{
	static const size_t max_grid[3] = {0x7fffffff, 65535, 65535};

	for (int d = 0; d < 3; d++) {
		size_t g = l->global[d] ? l->global[d] : 1;
		size_t b = l->local[d] && l->global[d] ? l->local[d]
		           : d == 0 ? (g < k->block ? g : k->block)
		                    : 1;
		size_t n = (g + b - 1) / b;

		if (b > 1024 || n > max_grid[d])
			return gfn__fail(GFN_EINVAL,
			                 "%s: work size %zu with blocks of %zu "
			                 "does not fit a CUDA grid (dim %d)",
			                 k->name, g, b, d);
		block[d] = (unsigned)b;
		grid[d] = (unsigned)n;
	}
	return GFN_OK;
}

static gfn_status cu_launch(gfn_bqueue *q, gfn_bkernel *k, const gfn_launch *l)
{
	unsigned grid[3], block[3];
	launch_args la;
	gfn_status s = gfn__cuda_stream(q);
	CUresult r;

	if (s != GFN_OK)
		return s;
	if (k->gen != q->gen)
		return gfn__fail(GFN_EDEVICE,
		                 "%s: kernel %s was loaded before the device "
		                 "was reset",
		                 q->dev->name, k->name);
	s = geometry(k, l, grid, block);
	if (s != GFN_OK)
		return s;
	build_args(&la, l);
	r = gfn__cu()->cuLaunchKernel(k->fn, grid[0], grid[1], grid[2],
	                              block[0], block[1], block[2], 0,
	                              q->stream, la.argv, NULL);
	if (r != CUDA_SUCCESS) {
		char what[96];

		snprintf(what, sizeof(what), "cuLaunchKernel(%s)", k->name);
		return gfn__cuda_fail(q->dev, r, what);
	}
	return GFN_OK;
}

static uint64_t cu_pinned_bytes(gfn_bdev *d)
{
	return d->pinned ? gfn_hostmem_os_bytes(d->pinned) : 0;
}

/* One offset operand of a GEMM as a buffer of its own (device pointers
   are plain addresses: no view object is needed). */
static gfn_bmem at(const gfn_bmem *m, size_t floats)
{
	gfn_bmem v = *m;

	v.ptr = (char *)m->ptr + floats * sizeof(float);
	return v;
}

static gfn_status cu_gemm(gfn_bqueue *q, int trans_b, size_t m, size_t n,
                          size_t k, const gfn_bmem *a, size_t ao,
                          const gfn_bmem *b, size_t bo, const gfn_bmem *c,
                          size_t co)
{
	gfn_bmem va = at(a, ao), vb = at(b, bo), vc = at(c, co);

	if (m > INT_MAX || n > INT_MAX || k > INT_MAX)
		return gfn__fail(GFN_EINVAL, "GEMM %zux%zux%zu is too large", m,
		                 n, k);
	return gfn_cuda_sgemm(q, 0, trans_b, (int)m, (int)n, (int)k, 1.0f, &va,
	                      (int)k, &vb, trans_b ? (int)k : (int)n, 0.0f, &vc,
	                      (int)n);
}

const gfn_backend_ops gfn_cuda_backend = {
        .api_version = GFN_BACKEND_API_VERSION,
        .name = "cuda",
        .kind = GFN_BACKEND_CUDA,
        .flags = 0,
        .probe = cu_probe,
        .device_info = cu_device_info,
        .device_open = cu_device_open,
        .device_close = cu_device_close,
        .queue_create = cu_queue_create,
        .queue_destroy = cu_queue_destroy,
        .kernel_load = cu_kernel_load,
        .kernel_unload = cu_kernel_unload,
        .launch = cu_launch,
        .sync = cu_sync,
        .mem_alloc = cu_mem_alloc,
        .mem_free = cu_mem_free,
        .host_register = cu_host_register,
        .host_unregister = cu_host_unregister,
        .copy_h2d = cu_copy_h2d,
        .copy_d2h = cu_copy_d2h,
        .poisoned = cu_poisoned,
        .device_reset = cu_device_reset,
        .staged_bytes = cu_staged_bytes,
        .pinned_bytes = cu_pinned_bytes,
        .set_numa_node = cu_set_numa_node,
        .gemm = cu_gemm,
};
