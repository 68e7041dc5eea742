/*
 * opencl.c - the OpenCL backend, through the ICD loader (PoCL on CPU-only
 * machines, where CI runs it for real).
 *
 * One context per device, shared by every function and tenant; one
 * in-order queue per engine worker, so copies and launches a worker
 * enqueues run in order without explicit events and sync is clFinish.
 * Device memory comes from the engine's device pool as sub-buffers of large
 * buffers. Host regions the engine registers become CL_MEM_USE_HOST_PTR
 * buffers, cached per region, and copies from them are device-side copies:
 * store objects reach the device without a staging copy.
 *
 * Caveat: the OpenCL spec makes host writes to a USE_HOST_PTR region after
 * the buffer was created visible to the device only through map/unmap.
 * PoCL (and other implementations that use the host memory in place)
 * honour them directly; for others, registration can be switched off
 * (GFN_OPENCL_NO_REGISTER=1) and copies then read the host memory with
 * clEnqueueWriteBuffer.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/backend.h"
#include "runtime/backends/opencl/cl_util.h"
#include <CL/cl_ext.h>
#include "runtime/hostmem.h"
#include "runtime/kcache.h"
#ifdef GFN_HAVE_CLBLAST
#include <clblast_c.h>
#endif
#include "runtime/util.h"

#define CL_MAX_DEVICES 64
#define CL_MAX_REGIONS 1024
#define CL_PINNED_LIMIT ((size_t)256 << 20) /* staging pool per device */
#define CL_MAX_STAGED 64 /* staged copies in flight per queue */
#define CL_MAX_EVENTS 64 /* events kept per queue between syncs */

typedef struct cl_dev_entry {
	cl_platform_id platform; /* its platform */
	cl_device_id id;         /* the device */
} cl_dev_entry;

static cl_dev_entry all_devs[CL_MAX_DEVICES]; /* every device, in order */
static int n_all_devs;                        /* how many */
static pthread_once_t enum_once = PTHREAD_ONCE_INIT;

typedef struct region {
	const char *base; /* host address */
	size_t len;       /* bytes */
	cl_mem mem;       /* USE_HOST_PTR buffer over it */
} region;

struct gfn_bdev {
	int idx;                /* index in all_devs */
	cl_device_id id;        /* the device */
	cl_context ctx;         /* its context, shared by everything */
	char name[128];         /* CL_DEVICE_NAME */
	char driver[128];       /* CL_DRIVER_VERSION + platform version */
	pthread_rwlock_t rlock; /* guards regions */
	region regions[CL_MAX_REGIONS]; /* registered host memory, by base */
	int nregions;                   /* how many */
	int no_register;                /* registration switched off */
	cl_command_queue mapq;          /* maps pinned slabs once */
	gfn_hostmem *pinned;            /* pinned staging pool */
	_Atomic uint64_t staged;        /* bytes copied through it */
};

typedef struct staged_block {
	void *p;  /* pinned block */
	size_t n; /* its size */
} staged_block;

struct gfn_bqueue {
	gfn_bdev *dev;                      /* owner */
	cl_command_queue q;                 /* in-order queue */
	staged_block staged[CL_MAX_STAGED]; /* freed at the next sync */
	int nstaged;                        /* how many */
	int ooo; /* out-of-order queue: events order it */
	cl_event copies[CL_MAX_EVENTS]; /* copies in since the last launch */
	int ncopies;                    /* how many */
	cl_event launch_ev;             /* the last launch, or NULL */
	cl_event done[CL_MAX_EVENTS];   /* other events until the next sync */
	int ndone;                      /* how many */
};

struct gfn_bkernel {
	cl_program prog;      /* built program */
	cl_kernel k;          /* the kernel */
	pthread_mutex_t lock; /* kernel arguments are shared state: held
	                         from the first clSetKernelArg to enqueue */
};

static void free_staged(gfn_bqueue *q);
static void release_events(gfn_bqueue *q);

/* ---- enumeration ---------------------------------------------------------- */

static void enumerate(void)
{
	cl_platform_id plats[16];
	cl_uint np = 0;

	if (clGetPlatformIDs(16, plats, &np) != CL_SUCCESS)
		return; /* no ICD or no platform: zero devices */
	for (cl_uint p = 0; p < np && p < 16; p++) {
		cl_device_id ids[CL_MAX_DEVICES];
		cl_uint nd = 0;

		if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, CL_MAX_DEVICES,
		                   ids, &nd) != CL_SUCCESS)
			continue;
		for (cl_uint d = 0; d < nd && n_all_devs < CL_MAX_DEVICES;
		     d++) {
			all_devs[n_all_devs].platform = plats[p];
			all_devs[n_all_devs].id = ids[d];
			n_all_devs++;
		}
	}
}

static gfn_status cl_probe(unsigned hint, int *count)
{
	(void)hint;
	pthread_once(&enum_once, enumerate);
	*count = n_all_devs;
	return GFN_OK;
}

static void pci_bus_id(cl_device_id id, char *out, size_t len)
{
	cl_device_pci_bus_info_khr pci;
	char ext[4096] = "";

	out[0] = '\0';
	clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, sizeof(ext) - 1, ext, NULL);
	if (!strstr(ext, "cl_khr_pci_bus_info"))
		return;
	if (clGetDeviceInfo(id, CL_DEVICE_PCI_BUS_INFO_KHR, sizeof(pci), &pci,
	                    NULL) != CL_SUCCESS)
		return;
	snprintf(out, len, "%04x:%02x:%02x.%x", pci.pci_domain, pci.pci_bus,
	         pci.pci_device, pci.pci_function);
}

static gfn_status ocl_device_info(int idx, gfn_device_info *info)
{
	cl_device_id id;
	cl_ulong mem = 0;
	cl_uint cu = 0;
	char name[100] = "";

	if (idx < 0 || idx >= n_all_devs)
		return gfn__fail(GFN_ERANGE, "no OpenCL device %d", idx);
	id = all_devs[idx].id;
	memset(info, 0, sizeof(*info));
	clGetDeviceInfo(id, CL_DEVICE_NAME, sizeof(name) - 1, name, NULL);
	clGetDeviceInfo(id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof(mem), &mem, NULL);
	clGetDeviceInfo(id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof(cu), &cu, NULL);
	snprintf(info->name, sizeof(info->name), "opencl%d:%s", idx, name);
	info->backend = GFN_BACKEND_OPENCL;
	info->backend_index = idx;
	info->memory_bytes = mem;
	info->compute_units = cu;
	pci_bus_id(id, info->pci_bus_id, sizeof(info->pci_bus_id));
	info->numa_node = -1; /* the topology issue fills this in */
	return GFN_OK;
}

/* ---- contexts and queues ------------------------------------------------------ */

static void describe_driver(gfn_bdev *d)
{
	char drv[64] = "", plat[64] = "";

	clGetDeviceInfo(d->id, CL_DEVICE_NAME, sizeof(d->name) - 1, d->name,
	                NULL);
	clGetDeviceInfo(d->id, CL_DRIVER_VERSION, sizeof(drv) - 1, drv, NULL);
	clGetPlatformInfo(all_devs[d->idx].platform, CL_PLATFORM_VERSION,
	                  sizeof(plat) - 1, plat, NULL);
	snprintf(d->driver, sizeof(d->driver), "%s|%s", drv, plat);
}

static void cl_device_close(gfn_bdev *d);
static int add_region(gfn_bdev *d, void *p, size_t size, cl_mem m);
static cl_mem drop_region(gfn_bdev *d, const void *base);

/* A pinned slab: an ALLOC_HOST_PTR buffer mapped once, kept mapped, and
   listed as a region so copies out of it are device-side copies. */
static void *pinned_alloc(void *ctx, size_t bytes, void **handle)
{
	gfn_bdev *d = ctx;
	cl_int err;
	cl_mem m = clCreateBuffer(d->ctx,
	                          CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR,
	                          bytes, NULL, &err);
	void *p;

	if (!m)
		return NULL;
	p = clEnqueueMapBuffer(d->mapq, m, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE,
	                       0, bytes, 0, NULL, NULL, &err);
	if (!p || !add_region(d, p, bytes, m)) {
		if (p)
			clEnqueueUnmapMemObject(d->mapq, m, p, 0, NULL, NULL);
		clFinish(d->mapq);
		clReleaseMemObject(m);
		return NULL;
	}
	*handle = m;
	return p;
}

static void pinned_free(void *ctx, void *p, size_t bytes, void *handle)
{
	gfn_bdev *d = ctx;
	cl_mem m = handle;

	(void)bytes;
	drop_region(d, p);
	clEnqueueUnmapMemObject(d->mapq, m, p, 0, NULL, NULL);
	clFinish(d->mapq);
	clReleaseMemObject(m);
}

static gfn_status open_pinned(gfn_bdev *d)
{
	gfn_hostmem_provider prov = {pinned_alloc, pinned_free, d};
	cl_int err;

	d->mapq = clCreateCommandQueue(d->ctx, d->id, 0, &err);
	if (!d->mapq)
		return gfn_cl_fail(err, "clCreateCommandQueue");
	return gfn_hostmem_create_with(CL_PINNED_LIMIT, &prov, &d->pinned);
}

/* Pin a node-bound slab: a USE_HOST_PTR buffer over it, listed as a
   region so copies out of it are device-side copies. */
static gfn_status node_pin(void *ctx, void *p, size_t bytes, void **handle)
{
	gfn_bdev *d = ctx;
	cl_int err;
	cl_mem m =
	        clCreateBuffer(d->ctx, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR,
	                       bytes, p, &err);

	if (!m)
		return gfn_cl_fail(err, "clCreateBuffer(USE_HOST_PTR)");
	if (!add_region(d, p, bytes, m)) {
		clReleaseMemObject(m);
		return gfn__fail(GFN_ENOMEM, "too many regions");
	}
	*handle = m;
	return GFN_OK;
}

static void node_unpin(void *ctx, void *p, size_t bytes, void *handle)
{
	(void)bytes;
	drop_region(ctx, p);
	clReleaseMemObject(handle);
}

/*
 * Move the staging pool to the device's NUMA node: a pool whose slabs
 * are bound there before they are pinned. Only while it is unused.
 */
static gfn_status cl_set_numa_node(gfn_bdev *d, int node)
{
	gfn_hostmem_pinner pin = {node_pin, node_unpin, d};
	gfn_hostmem *hm;
	gfn_status s;

	if (gfn_hostmem_os_allocs(d->pinned))
		return gfn__fail(GFN_ESTATE, "staging pool already in use");
	s = gfn_hostmem_create_on_node(CL_PINNED_LIMIT, node, &pin, &hm);
	if (s != GFN_OK)
		return s;
	gfn_hostmem_destroy(d->pinned);
	d->pinned = hm;
	return GFN_OK;
}

static gfn_status cl_device_open(int idx, gfn_bdev **out)
{
	cl_context_properties props[3];
	const char *noreg = getenv("GFN_OPENCL_NO_REGISTER");
	gfn_bdev *d;
	cl_int err;

	if (idx < 0 || idx >= n_all_devs)
		return gfn__fail(GFN_ERANGE, "no OpenCL device %d", idx);
	d = calloc(1, sizeof(*d));
	if (!d)
		return gfn__fail(GFN_ENOMEM, "no memory for an OpenCL device");
	d->idx = idx;
	d->id = all_devs[idx].id;
	props[0] = CL_CONTEXT_PLATFORM;
	props[1] = (cl_context_properties)all_devs[idx].platform;
	props[2] = 0;
	d->ctx = clCreateContext(props, 1, &d->id, NULL, NULL, &err);
	if (!d->ctx) {
		free(d);
		return gfn_cl_fail(err, "clCreateContext");
	}
	describe_driver(d);
	pthread_rwlock_init(&d->rlock, NULL);
	d->no_register = noreg && noreg[0] == '1';
	if (open_pinned(d) != GFN_OK) {
		cl_device_close(d);
		return GFN_ENOMEM;
	}
	*out = d;
	return GFN_OK;
}

static void cl_device_close(gfn_bdev *d)
{
	if (!d)
		return;
	gfn_hostmem_destroy(d->pinned); /* unregisters its slabs */
	if (d->mapq)
		clReleaseCommandQueue(d->mapq);
	for (int i = 0; i < d->nregions; i++) /* engine left some: drop */
		clReleaseMemObject(d->regions[i].mem);
	pthread_rwlock_destroy(&d->rlock);
	clReleaseContext(d->ctx);
	free(d);
}

/*
 * Out-of-order where the device allows it: then input copies of one
 * invocation may overlap, the launch waits on their events and the copies
 * out wait on the launch's. In-order queues give the same order for free.
 */
static cl_command_queue_properties queue_props(gfn_bdev *d)
{
	cl_command_queue_properties p = 0;
	const char *env = getenv("GFN_OPENCL_IN_ORDER");

	if (env && env[0] == '1')
		return 0;
	clGetDeviceInfo(d->id, CL_DEVICE_QUEUE_PROPERTIES, sizeof(p), &p, NULL);
	return p & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE;
}

static gfn_status cl_queue_create(gfn_bdev *d, gfn_bqueue **out)
{
	gfn_bqueue *q = calloc(1, sizeof(*q));
	cl_int err;

	if (!q)
		return gfn__fail(GFN_ENOMEM, "no memory for an OpenCL queue");
	q->dev = d;
	q->q = clCreateCommandQueue(d->ctx, d->id, queue_props(d), &err);
	if (!q->q) {
		free(q);
		return gfn_cl_fail(err, "clCreateCommandQueue");
	}
	q->ooo = queue_props(d) != 0;
	*out = q;
	return GFN_OK;
}

static void cl_queue_destroy(gfn_bqueue *q)
{
	if (!q)
		return;
	clFinish(q->q);
	free_staged(q);
	release_events(q);
	clReleaseCommandQueue(q->q);
	free(q);
}

static gfn_status cl_sync(gfn_bqueue *q)
{
	cl_int err = clFinish(q->q);

	free_staged(q); /* every copy out of them has finished */
	release_events(q);
	return err == CL_SUCCESS ? GFN_OK : gfn_cl_fail(err, "clFinish");
}

/* ---- memory ------------------------------------------------------------------- */

static gfn_status cl_mem_alloc(gfn_bdev *d, size_t size, gfn_bmem *out)
{
	cl_int err;
	cl_mem m = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, size ? size : 1,
	                          NULL, &err);

	if (!m)
		return gfn_cl_fail(err, "clCreateBuffer");
	out->ptr = NULL; /* not addressable from the host */
	out->size = size;
	out->handle = m;
	return GFN_OK;
}

static void cl_mem_free(gfn_bdev *d, gfn_bmem *m)
{
	(void)d;
	if (m->handle)
		clReleaseMemObject((cl_mem)m->handle);
	m->handle = NULL;
}

static gfn_status cl_mem_view(gfn_bdev *d, const gfn_bmem *chunk, size_t off,
                              size_t size, gfn_bmem *out)
{
	cl_buffer_region r = {off, size};
	cl_int err;
	cl_mem m;

	(void)d;
	m = clCreateSubBuffer((cl_mem)chunk->handle, CL_MEM_READ_WRITE,
	                      CL_BUFFER_CREATE_TYPE_REGION, &r, &err);
	if (!m)
		return gfn_cl_fail(err, "clCreateSubBuffer");
	out->ptr = NULL;
	out->size = size;
	out->handle = m;
	return GFN_OK;
}

/* ---- registered host regions ---------------------------------------------------- */

/* Insert a region, keeping them sorted by base; 0 when full. */
static int add_region(gfn_bdev *d, void *p, size_t size, cl_mem m)
{
	int i;

	pthread_rwlock_wrlock(&d->rlock);
	if (d->nregions == CL_MAX_REGIONS) {
		pthread_rwlock_unlock(&d->rlock);
		return 0;
	}
	for (i = d->nregions; i > 0 && d->regions[i - 1].base > (char *)p; i--)
		d->regions[i] = d->regions[i - 1];
	d->regions[i] = (region){p, size, m};
	d->nregions++;
	pthread_rwlock_unlock(&d->rlock);
	return 1;
}

/* Remove the region starting at base; its buffer, or NULL. */
static cl_mem drop_region(gfn_bdev *d, const void *base)
{
	cl_mem m = NULL;

	pthread_rwlock_wrlock(&d->rlock);
	for (int i = 0; i < d->nregions; i++) {
		if (d->regions[i].base != base)
			continue;
		m = d->regions[i].mem;
		memmove(&d->regions[i], &d->regions[i + 1],
		        (size_t)(d->nregions - i - 1) * sizeof(region));
		d->nregions--;
		break;
	}
	pthread_rwlock_unlock(&d->rlock);
	return m;
}

static gfn_status cl_host_register(gfn_bdev *d, void *p, size_t size,
                                   void **handle)
{
	cl_int err;
	cl_mem m;

	*handle = NULL;
	if (d->no_register)
		return gfn__fail(GFN_ENOTSUP, "registration switched off");
	m = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR,
	                   size, p, &err);
	if (!m)
		return gfn_cl_fail(err, "clCreateBuffer(USE_HOST_PTR)");
	if (!add_region(d, p, size, m)) {
		clReleaseMemObject(m);
		return gfn__fail(GFN_ENOMEM, "%d regions registered already",
		                 CL_MAX_REGIONS);
	}
	*handle = p;
	return GFN_OK;
}

static void cl_host_unregister(gfn_bdev *d, void *handle)
{
	cl_mem m = drop_region(d, handle);

	if (m)
		clReleaseMemObject(m);
}

/* The registered buffer holding [p, p+n) and p's offset in it, or NULL. */
static cl_mem find_region(gfn_bdev *d, const void *p, size_t n, size_t *off)
{
	const char *c = p;
	cl_mem m = NULL;
	int lo = 0, hi;

	pthread_rwlock_rdlock(&d->rlock);
	hi = d->nregions - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		const region *r = &d->regions[mid];

		if (c < r->base) {
			hi = mid - 1;
		} else if (c >= r->base + r->len) {
			lo = mid + 1;
		} else {
			if (n <= r->len - (size_t)(c - r->base)) {
				m = r->mem;
				*off = (size_t)(c - r->base);
			}
			break;
		}
	}
	pthread_rwlock_unlock(&d->rlock);
	return m;
}

/* ---- events --------------------------------------------------------------- */

static void release_events(gfn_bqueue *q)
{
	for (int i = 0; i < q->ncopies; i++)
		clReleaseEvent(q->copies[i]);
	for (int i = 0; i < q->ndone; i++)
		clReleaseEvent(q->done[i]);
	if (q->launch_ev)
		clReleaseEvent(q->launch_ev);
	q->ncopies = q->ndone = 0;
	q->launch_ev = NULL;
}

/*
 * Make room for one more event: when a list is full, wait for the queue
 * and drop them all (rare: more than CL_MAX_EVENTS copies per sync).
 */
static void event_room(gfn_bqueue *q)
{
	if (q->ncopies < CL_MAX_EVENTS && q->ndone < CL_MAX_EVENTS)
		return;
	clFinish(q->q);
	release_events(q);
}

/* Where an op's event goes; NULL on an in-order queue (none needed). */
static cl_event *copy_event(gfn_bqueue *q)
{
	if (!q->ooo)
		return NULL;
	event_room(q);
	return &q->copies[q->ncopies];
}

/*
 * Copy unregistered bytes into a pinned staging block (counted: it is a
 * host-side copy) and return the block's buffer, or NULL to let the
 * driver read src itself. The block is freed at the queue's next sync.
 */
static cl_mem stage(gfn_bqueue *q, const void **src, size_t n, size_t *off)
{
	gfn_bdev *d = q->dev;
	cl_mem m;
	void *p;

	if (q->nstaged == CL_MAX_STAGED || !n)
		return NULL;
	p = gfn_hostmem_alloc(d->pinned, n);
	if (!p)
		return NULL;
	memcpy(p, *src, n);
	m = find_region(d, p, n, off);
	if (!m) {
		gfn_hostmem_free(d->pinned, p, n);
		return NULL;
	}
	q->staged[q->nstaged++] = (staged_block){p, n};
	atomic_fetch_add_explicit(&d->staged, n, memory_order_relaxed);
	*src = p;
	return m;
}

static void free_staged(gfn_bqueue *q)
{
	for (int i = 0; i < q->nstaged; i++)
		gfn_hostmem_free(q->dev->pinned, q->staged[i].p,
		                 q->staged[i].n);
	q->nstaged = 0;
}

static gfn_status cl_copy_h2d(gfn_bqueue *q, const gfn_bmem *dst, size_t off,
                              const void *src, size_t n)
{
	cl_event *ev;
	size_t roff = 0;
	cl_mem reg = find_region(q->dev, src, n, &roff);
	cl_int err;

	if (!reg)
		reg = stage(q, &src, n, &roff);
	ev = copy_event(q);
	if (reg) /* a device-side copy out of registered host memory */
		err = clEnqueueCopyBuffer(q->q, reg, (cl_mem)dst->handle, roff,
		                          off, n, 0, NULL, ev);
	else /* the caller keeps src alive until sync */
		err = clEnqueueWriteBuffer(q->q, (cl_mem)dst->handle, CL_FALSE,
		                           off, n, src, 0, NULL, ev);
	if (ev && err == CL_SUCCESS)
		q->ncopies++;
	return err == CL_SUCCESS ? GFN_OK
	                         : gfn_cl_fail(err, "copy to the device");
}

static gfn_status cl_copy_d2h(gfn_bqueue *q, void *dst, const gfn_bmem *src,
                              size_t off, size_t n)
{
	/* A read into host memory in place: the spec-safe way to make the
	   bytes visible to the host, registered or not. */
	cl_event *ev = NULL;
	cl_uint nwait = 0;
	cl_int err;

	if (q->ooo) {
		event_room(q);
		ev = &q->done[q->ndone];
		nwait = q->launch_ev ? 1 : 0;
	}
	err = clEnqueueReadBuffer(q->q, (cl_mem)src->handle, CL_FALSE, off, n,
	                          dst, nwait, nwait ? &q->launch_ev : NULL, ev);
	if (ev && err == CL_SUCCESS)
		q->ndone++;

	return err == CL_SUCCESS ? GFN_OK
	                         : gfn_cl_fail(err, "copy to the host");
}

/* ---- programs and kernels --------------------------------------------------------- */

/* Build prog; on failure put the start of the build log in the detail. */
static gfn_status build(gfn_bdev *d, cl_program prog, const char *options,
                        const char *what)
{
	char log[400] = "";
	cl_int err = clBuildProgram(prog, 1, &d->id, options, NULL, NULL);

	if (err == CL_SUCCESS)
		return GFN_OK;
	clGetProgramBuildInfo(prog, d->id, CL_PROGRAM_BUILD_LOG,
	                      sizeof(log) - 1, log, NULL);
	return gfn__fail(GFN_EKERNEL, "%s: %s (%d); build log: %s", what,
	                 gfn_cl_error_name(err), (int)err, log);
}

static gfn_status from_source(gfn_bdev *d, const gfn_ksrc *src, cl_program *out)
{
	size_t len = src->len ? src->len : strlen(src->text);
	cl_int err;
	cl_program p;
	gfn_status s;

	const char *text = src->text;

	p = clCreateProgramWithSource(d->ctx, 1, &text, &len, &err);
	if (!p)
		return gfn_cl_fail(err, "clCreateProgramWithSource");
	s = build(d, p, src->options, "clBuildProgram");
	if (s != GFN_OK) {
		clReleaseProgram(p);
		return s;
	}
	*out = p;
	return GFN_OK;
}

/* A program from a cached binary; any failure means: build from source. */
static int from_binary(gfn_bdev *d, const gfn_ksrc *src, const void *bin,
                       size_t len, cl_program *out)
{
	const unsigned char *b = bin;
	cl_int err, st;
	cl_program p;

	p = clCreateProgramWithBinary(d->ctx, 1, &d->id, &len, &b, &st, &err);
	if (!p)
		return 0;
	if (err != CL_SUCCESS || st != CL_SUCCESS ||
	    build(d, p, src->options, "binary") != GFN_OK) {
		clReleaseProgram(p);
		return 0;
	}
	*out = p;
	return 1;
}

static void cache_binary(gfn_bdev *d, gfn_kcache *kc, gfn_kkey key,
                         cl_program p)
{
	size_t len = 0;
	unsigned char *bin;

	if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof(len), &len,
	                     NULL) != CL_SUCCESS ||
	    !len)
		return;
	bin = malloc(len);
	if (bin && clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof(bin), &bin,
	                            NULL) == CL_SUCCESS)
		gfn_kcache_put(kc, key, bin, len); /* best effort */
	free(bin);
	(void)d;
}

/* The program for src: from the cache when it has it, else built. */
static gfn_status get_program(gfn_bdev *d, const gfn_ksrc *src, cl_program *out,
                              int *from_cache)
{
	size_t len = src->len ? src->len : strlen(src->text);
	gfn_kkey key;
	void *bin = NULL;
	size_t blen = 0;
	gfn_status s;

	*from_cache = 0;
	if (!src->kcache)
		return from_source(d, src, out);
	key = gfn_kcache_key("opencl", d->name, d->driver, src->text, len,
	                     src->options ? src->options : "");
	if (gfn_kcache_get(src->kcache, key, &bin, &blen) == GFN_OK) {
		*from_cache = from_binary(d, src, bin, blen, out);
		free(bin);
		if (*from_cache)
			return GFN_OK;
	}
	s = from_source(d, src, out);
	if (s == GFN_OK)
		cache_binary(d, src->kcache, key, *out);
	return s;
}

static gfn_status cl_kernel_load(gfn_bdev *d, const gfn_ksrc *src,
                                 gfn_bkernel **out, int *from_cache)
{
	gfn_bkernel *k;
	gfn_status s;
	cl_int err;

	if (src->kind != GFN_KSRC_OPENCL_C || !src->text || !src->entry)
		return gfn__fail(GFN_ENOTSUP,
		                 "the OpenCL backend builds OpenCL C only");
	k = calloc(1, sizeof(*k));
	if (!k)
		return gfn__fail(GFN_ENOMEM, "no memory for a kernel");
	s = get_program(d, src, &k->prog, from_cache);
	if (s != GFN_OK) {
		free(k);
		return s;
	}
	k->k = clCreateKernel(k->prog, src->entry, &err);
	if (!k->k) {
		clReleaseProgram(k->prog);
		free(k);
		return gfn__fail(GFN_EKERNEL, "kernel %s: %s", src->entry,
		                 gfn_cl_error_name(err));
	}
	pthread_mutex_init(&k->lock, NULL);
	*out = k;
	return GFN_OK;
}

static void cl_kernel_unload(gfn_bdev *d, gfn_bkernel *k)
{
	(void)d;
	if (!k)
		return;
	clReleaseKernel(k->k);
	clReleaseProgram(k->prog);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/* ---- launch ------------------------------------------------------------------------- */

static cl_int set_tensor(cl_kernel k, cl_uint i, const gfn_tensor *t)
{
	cl_mem m = (cl_mem)((const gfn_bmem *)t->data)->handle;

	return clSetKernelArg(k, i, sizeof(m), &m);
}

static cl_int set_param(cl_kernel k, cl_uint i, gfn_param_type type,
                        const gfn_scalar *v)
{
	switch (type) {
	case GFN_PARAM_F64:
		return clSetKernelArg(k, i, sizeof(cl_double), &v->f64);
	case GFN_PARAM_I64:
		return clSetKernelArg(k, i, sizeof(cl_long), &v->i64);
	case GFN_PARAM_F32:
		return clSetKernelArg(k, i, sizeof(cl_float), &v->f32);
	case GFN_PARAM_I32:
		return clSetKernelArg(k, i, sizeof(cl_int), &v->i32);
	}
	return CL_INVALID_ARG_VALUE;
}

/* Set every argument of l in gfn's order. Kernel lock held. */
static cl_int set_args(cl_kernel k, const gfn_launch *l)
{
	const gfn_kernel_args *a = l->args;
	cl_uint i = 0;
	cl_int err = CL_SUCCESS;

	for (size_t t = 0; t < a->n_inputs && !err; t++)
		err = set_tensor(k, i++, &a->inputs[t]);
	for (size_t t = 0; t < a->n_outputs && !err; t++)
		err = set_tensor(k, i++, &a->outputs[t]);
	for (size_t p = 0; p < a->n_params && !err; p++)
		err = set_param(k, i++, l->param_types[p], &a->params[p]);
	for (int s = 0; s < l->nsizes && !err; s++) {
		cl_ulong v = l->sizes[s];
		err = clSetKernelArg(k, i++, sizeof(v), &v);
	}
	return err;
}

/* ev is the queue's newest launch: later launches and copies out wait
   for it; the copies in and the launch before it are done with. */
static void chain_launch(gfn_bqueue *q, cl_event ev)
{
	if (q->ndone + q->ncopies + 1 >= CL_MAX_EVENTS) { /* rare: drain */
		clFinish(q->q);
		release_events(q);
		clReleaseEvent(ev);
		return;
	}
	for (int i = 0; i < q->ncopies; i++) /* done with as wait list */
		q->done[q->ndone++] = q->copies[i];
	q->ncopies = 0;
	if (q->launch_ev)
		q->done[q->ndone++] = q->launch_ev;
	q->launch_ev = ev;
}

/* Launch once the copies in and the launch before it (a function of
   several kernels reads what the previous one wrote) have finished. */
static cl_int enqueue_after_copies(gfn_bqueue *q, cl_kernel k, cl_uint dims,
                                   const size_t *global, const size_t *local)
{
	cl_event ev = NULL, wait[CL_MAX_EVENTS + 1];
	cl_uint nwait = 0;
	cl_int err;

	if (!q->ooo)
		return clEnqueueNDRangeKernel(q->q, k, dims, NULL, global,
		                              local, 0, NULL, NULL);
	for (int i = 0; i < q->ncopies; i++)
		wait[nwait++] = q->copies[i];
	if (q->launch_ev)
		wait[nwait++] = q->launch_ev;
	err = clEnqueueNDRangeKernel(q->q, k, dims, NULL, global, local, nwait,
	                             nwait ? wait : NULL, &ev);
	if (err == CL_SUCCESS)
		chain_launch(q, ev);
	return err;
}

#ifdef GFN_HAVE_CLBLAST
/* A barrier after everything enqueued so far, which everything enqueued
   later waits for: the order CLBlast's calls (no wait list, and maybe
   several kernels ordered by its own events) need on an out-of-order
   queue. */
static cl_int fence(gfn_bqueue *q)
{
	cl_event ev = NULL;
	cl_int err = clEnqueueBarrierWithWaitList(q->q, 0, NULL, &ev);

	if (err == CL_SUCCESS)
		chain_launch(q, ev);
	return err;
}

static gfn_status cl_gemm(gfn_bqueue *q, int trans_b, size_t m, size_t n,
                          size_t k, const gfn_bmem *a, size_t ao,
                          const gfn_bmem *b, size_t bo, const gfn_bmem *c,
                          size_t co)
{
	cl_command_queue cq = q->q;
	CLBlastStatusCode st;
	cl_int err = q->ooo ? fence(q) : CL_SUCCESS;

	if (err != CL_SUCCESS)
		return gfn_cl_fail(err, "barrier before a GEMM");
	st = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo,
	                  trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m,
	                  n, k, 1.0f, (cl_mem)a->handle, ao, k,
	                  (cl_mem)b->handle, bo, trans_b ? k : n, 0.0f,
	                  (cl_mem)c->handle, co, n, &cq, NULL);
	if (st != CLBlastSuccess)
		return gfn__fail(GFN_EDEVICE,
		                 "%s: CLBlast sgemm %zux%zux%zu failed with "
		                 "status %d",
		                 q->dev->name, m, n, k, (int)st);
	err = q->ooo ? fence(q) : CL_SUCCESS;
	return err == CL_SUCCESS ? GFN_OK
	                         : gfn_cl_fail(err, "barrier after a GEMM");
}
#endif

static gfn_status cl_launch(gfn_bqueue *q, gfn_bkernel *k, const gfn_launch *l)
{
	cl_uint dims = l->global[2] ? 3 : l->global[1] ? 2 : 1;
	const size_t *local = l->local[0] ? l->local : NULL;
	cl_int err;

	pthread_mutex_lock(&k->lock);
	err = set_args(k->k, l);
	if (err == CL_SUCCESS)
		err = enqueue_after_copies(q, k->k, dims, l->global, local);
	pthread_mutex_unlock(&k->lock);
	return err == CL_SUCCESS ? GFN_OK : gfn_cl_fail(err, "launch");
}

static uint64_t cl_staged_bytes(gfn_bdev *d)
{
	return atomic_load_explicit(&d->staged, memory_order_relaxed);
}

static uint64_t cl_pinned_bytes(gfn_bdev *d)
{
	return d->pinned ? gfn_hostmem_os_bytes(d->pinned) : 0;
}

const gfn_backend_ops gfn_opencl_backend = {
        .api_version = GFN_BACKEND_API_VERSION,
        .name = "opencl",
        .kind = GFN_BACKEND_OPENCL,
        .flags = 0,
        .probe = cl_probe,
        .device_info = ocl_device_info,
        .device_open = cl_device_open,
        .device_close = cl_device_close,
        .queue_create = cl_queue_create,
        .queue_destroy = cl_queue_destroy,
        .kernel_load = cl_kernel_load,
        .kernel_unload = cl_kernel_unload,
        .launch = cl_launch,
        .sync = cl_sync,
        .mem_alloc = cl_mem_alloc,
        .mem_free = cl_mem_free,
        .mem_view = cl_mem_view,
        .mem_view_free = cl_mem_free,
        .host_register = cl_host_register,
        .host_unregister = cl_host_unregister,
        .copy_h2d = cl_copy_h2d,
        .copy_d2h = cl_copy_d2h,
        .staged_bytes = cl_staged_bytes,
        .pinned_bytes = cl_pinned_bytes,
        .set_numa_node = cl_set_numa_node,
#ifdef GFN_HAVE_CLBLAST
        .gemm = cl_gemm,
#endif
};
