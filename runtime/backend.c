/*
 * backend.c - the registry of backends and the defaults of optional ops.
 * The only file that knows the list of backends.
 */
#include "runtime/backend.h"

#include <string.h>

#include "runtime/util.h"

static const gfn_backend_ops *const all_backends[] = {
        &gfn_cpu_backend,
#ifdef GFN_HAVE_OPENCL
        &gfn_opencl_backend,
#endif
#ifdef GFN_HAVE_CUDA
        &gfn_cuda_backend,
#endif
};

/* One more backend, for tests of the engine (a fault-injecting fake). */
static const gfn_backend_ops *extra_backend;

void gfn__backend_set_extra(const gfn_backend_ops *ops)
{
	extra_backend = ops;
}

gfn_status gfn_backend_check(const gfn_backend_ops *ops)
{
	const char *name = ops && ops->name ? ops->name : "(unnamed)";

	if (!ops || ops->api_version != GFN_BACKEND_API_VERSION)
		return gfn__fail(GFN_ENOTSUP,
		                 "backend %s has api version %u, gfn needs %u",
		                 name, ops ? ops->api_version : 0,
		                 GFN_BACKEND_API_VERSION);
	if (!ops->probe || !ops->device_info || !ops->device_open ||
	    !ops->device_close || !ops->queue_create || !ops->queue_destroy ||
	    !ops->kernel_load || !ops->kernel_unload || !ops->launch ||
	    !ops->sync)
		return gfn__fail(GFN_EINVAL,
		                 "backend %s lacks a mandatory operation",
		                 name);
	return GFN_OK;
}

gfn_status gfn_backends_probe(unsigned mask, unsigned cpu_devices,
                              gfn_backend *out, int *n)
{
	size_t nall = sizeof(all_backends) / sizeof(all_backends[0]);
	gfn_status s;
	int count;

	*n = 0;
	for (size_t i = 0; i <= nall && *n < GFN_MAX_BACKENDS; i++) {
		const gfn_backend_ops *ops =
		        i < nall ? all_backends[i] : extra_backend;

		if (!ops)
			continue;
		if (!(ops->kind & mask))
			continue;
		s = gfn_backend_check(ops);
		if (s != GFN_OK) {
			gfn__log(GFN_LOG_ERROR, "%s", gfn_error_detail());
			continue;
		}
		count = 0;
		s = ops->probe(cpu_devices, &count);
		if (s != GFN_OK || count <= 0) {
			gfn__log(GFN_LOG_INFO, "backend %s: no devices",
			         ops->name);
			continue;
		}
		gfn__log(GFN_LOG_INFO, "backend %s: %d device(s)", ops->name,
		         count);
		out[*n].ops = ops;
		out[*n].ndev = count;
		(*n)++;
	}
	return GFN_OK;
}

gfn_status gfn_backend_mem_alloc(const gfn_backend_ops *ops, gfn_bdev *dev,
                                 size_t size, gfn_bmem *out)
{
	if (!ops->mem_alloc)
		return gfn__fail(GFN_ENOTSUP, "backend %s has no device memory",
		                 ops->name);
	return ops->mem_alloc(dev, size, out);
}

void gfn_backend_mem_free(const gfn_backend_ops *ops, gfn_bdev *dev,
                          gfn_bmem *m)
{
	if (ops->mem_free)
		ops->mem_free(dev, m);
}

gfn_status gfn_backend_mem_view(const gfn_backend_ops *ops, gfn_bdev *dev,
                                const gfn_bmem *chunk, size_t off, size_t size,
                                gfn_bmem *out)
{
	if (off > chunk->size || size > chunk->size - off)
		return gfn__fail(GFN_ERANGE,
		                 "view [%zu, +%zu) past chunk of %zu", off,
		                 size, chunk->size);
	if (ops->mem_view)
		return ops->mem_view(dev, chunk, off, size, out);
	out->ptr = (char *)chunk->ptr + off;
	out->size = size;
	out->handle = NULL;
	return GFN_OK;
}

void gfn_backend_mem_view_free(const gfn_backend_ops *ops, gfn_bdev *dev,
                               gfn_bmem *m)
{
	if (ops->mem_view_free)
		ops->mem_view_free(dev, m);
}

gfn_status gfn_backend_host_register(const gfn_backend_ops *ops, gfn_bdev *dev,
                                     void *p, size_t size, void **handle)
{
	*handle = NULL;
	if (ops->flags & GFN_BFLAG_HOST_IS_DEVICE)
		return GFN_OK; /* nothing to do: the device is the host */
	if (!ops->host_register)
		return gfn__fail(GFN_ENOTSUP,
		                 "backend %s cannot register host memory",
		                 ops->name);
	return ops->host_register(dev, p, size, handle);
}

void gfn_backend_host_unregister(const gfn_backend_ops *ops, gfn_bdev *dev,
                                 void *handle)
{
	if (handle && ops->host_unregister)
		ops->host_unregister(dev, handle);
}

gfn_status gfn_backend_copy_h2d(const gfn_backend_ops *ops, gfn_bqueue *q,
                                const gfn_bmem *dst, size_t off,
                                const void *src, size_t n)
{
	if (ops->copy_h2d)
		return ops->copy_h2d(q, dst, off, src, n);
	if (!(ops->flags & GFN_BFLAG_HOST_IS_DEVICE))
		return gfn__fail(GFN_ENOTSUP,
		                 "backend %s has no copy to device", ops->name);
	if (off > dst->size || n > dst->size - off)
		return gfn__fail(GFN_ERANGE,
		                 "copy of %zu bytes at %zu past %zu", n, off,
		                 dst->size);
	memcpy((char *)dst->ptr + off, src, n);
	return GFN_OK;
}

gfn_status gfn_backend_copy_d2h(const gfn_backend_ops *ops, gfn_bqueue *q,
                                void *dst, const gfn_bmem *src, size_t off,
                                size_t n)
{
	if (ops->copy_d2h)
		return ops->copy_d2h(q, dst, src, off, n);
	if (!(ops->flags & GFN_BFLAG_HOST_IS_DEVICE))
		return gfn__fail(GFN_ENOTSUP, "backend %s has no copy to host",
		                 ops->name);
	if (off > src->size || n > src->size - off)
		return gfn__fail(GFN_ERANGE,
		                 "copy of %zu bytes at %zu past %zu", n, off,
		                 src->size);
	memcpy(dst, (const char *)src->ptr + off, n);
	return GFN_OK;
}

gfn_status gfn_backend_gemm(const gfn_backend_ops *ops, gfn_bqueue *q,
                            int trans_b, size_t m, size_t n, size_t k,
                            const gfn_bmem *a, size_t ao, const gfn_bmem *b,
                            size_t bo, const gfn_bmem *c, size_t co)
{
	if (!ops->gemm)
		return gfn__fail(GFN_ENOTSUP, "backend %s has no GEMM",
		                 ops->name);
	if (!m || !n) /* nothing to write; some BLAS refuse empty sizes */
		return GFN_OK;
	return ops->gemm(q, trans_b, m, n, k, a, ao, b, bo, c, co);
}
