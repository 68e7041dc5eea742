/*
 * cpu.c - the CPU backend: host memory is device memory, kernels are C
 * function pointers, and a queue runs each launch at once on the thread
 * that enqueues it. The engine gives every CPU device its own worker
 * threads, so those workers are this backend's thread pool.
 *
 * It is always present and is the oracle the conformance tests compare
 * every other backend with.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/backend.h"
#include "runtime/util.h"

#define CPU_MAX_DEVICES 64 /* virtual CPU devices one engine may ask for */

struct gfn_bdev {
	int idx; /* which virtual device */
};

struct gfn_bqueue {
	gfn_bdev *dev; /* owner */
};

struct gfn_bkernel {
	gfn_cpu_kernel_fn fn; /* the function */
	void *user;           /* its argument */
};

/* CPU devices are virtual: as many as the engine asks for (hint). */
static gfn_status cpu_probe(unsigned hint, int *count)
{
	unsigned n = hint ? hint : 1;

	*count = (int)(n > CPU_MAX_DEVICES ? CPU_MAX_DEVICES : n);
	return GFN_OK;
}

static gfn_status cpu_device_info(int idx, gfn_device_info *info)
{
	long pages = sysconf(_SC_PHYS_PAGES);
	long psize = sysconf(_SC_PAGESIZE);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (idx < 0 || idx >= CPU_MAX_DEVICES)
		return gfn__fail(GFN_ERANGE, "no CPU device %d", idx);
	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "cpu%d", idx);
	info->backend = GFN_BACKEND_CPU;
	info->backend_index = idx;
	info->memory_bytes =
	        pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
	info->compute_units = ncpu > 0 ? (unsigned)ncpu : 1;
	info->numa_node = -1; /* the topology issue fills this in */
	return GFN_OK;
}

static gfn_status cpu_device_open(int idx, gfn_bdev **out)
{
	gfn_bdev *d = calloc(1, sizeof(*d));

	if (!d)
		return gfn__fail(GFN_ENOMEM, "no memory for CPU device %d",
		                 idx);
	d->idx = idx;
	*out = d;
	return GFN_OK;
}

static void cpu_device_close(gfn_bdev *dev)
{
	free(dev);
}

static gfn_status cpu_queue_create(gfn_bdev *dev, gfn_bqueue **out)
{
	gfn_bqueue *q = calloc(1, sizeof(*q));

	if (!q)
		return gfn__fail(GFN_ENOMEM, "no memory for a CPU queue");
	q->dev = dev;
	*out = q;
	return GFN_OK;
}

static void cpu_queue_destroy(gfn_bqueue *q)
{
	free(q); /* launches ran synchronously: nothing to drain */
}

static gfn_status cpu_kernel_load(gfn_bdev *dev, const gfn_ksrc *src,
                                  gfn_bkernel **out, int *from_cache)
{
	gfn_bkernel *k;

	(void)dev;
	*from_cache = 0; /* nothing to compile or cache */
	if (src->kind != GFN_KSRC_CPU_FN)
		return gfn__fail(GFN_ENOTSUP,
		                 "the CPU backend runs C functions only");
	if (!src->cpu_fn)
		return gfn__fail(GFN_EINVAL, "CPU kernel has no function");
	k = calloc(1, sizeof(*k));
	if (!k)
		return gfn__fail(GFN_ENOMEM, "no memory for a CPU kernel");
	k->fn = src->cpu_fn;
	k->user = src->user;
	*out = k;
	return GFN_OK;
}

static void cpu_kernel_unload(gfn_bdev *dev, gfn_bkernel *k)
{
	(void)dev;
	free(k);
}

static gfn_status cpu_launch(gfn_bqueue *q, gfn_bkernel *k, const gfn_launch *l)
{
	int rc;

	(void)q;
	rc = k->fn(l->args, k->user);
	if (rc != 0)
		return gfn__fail(GFN_EKERNEL, "CPU kernel returned %d", rc);
	return GFN_OK;
}

static gfn_status cpu_sync(gfn_bqueue *q)
{
	(void)q; /* every launch has already run */
	return GFN_OK;
}

static gfn_status cpu_mem_alloc(gfn_bdev *dev, size_t size, gfn_bmem *out)
{
	size_t rounded = (size + 63) & ~(size_t)63;
	void *p;

	(void)dev;
	p = aligned_alloc(64, rounded ? rounded : 64);
	if (!p)
		return gfn__fail(GFN_ENOMEM, "cannot allocate %zu bytes", size);
	out->ptr = p;
	out->size = size;
	out->handle = NULL;
	return GFN_OK;
}

static void cpu_mem_free(gfn_bdev *dev, gfn_bmem *m)
{
	(void)dev;
	free(m->ptr);
	m->ptr = NULL;
}

const gfn_backend_ops gfn_cpu_backend = {
        .api_version = GFN_BACKEND_API_VERSION,
        .name = "cpu",
        .kind = GFN_BACKEND_CPU,
        .flags = GFN_BFLAG_HOST_IS_DEVICE,
        .probe = cpu_probe,
        .device_info = cpu_device_info,
        .device_open = cpu_device_open,
        .device_close = cpu_device_close,
        .queue_create = cpu_queue_create,
        .queue_destroy = cpu_queue_destroy,
        .kernel_load = cpu_kernel_load,
        .kernel_unload = cpu_kernel_unload,
        .launch = cpu_launch,
        .sync = cpu_sync,
        .mem_alloc = cpu_mem_alloc,
        .mem_free = cpu_mem_free,
};
