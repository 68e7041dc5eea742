/*
 * hostmem.h - host memory pool with power-of-two size classes.
 *
 * The invoke path takes object memory from here, never from malloc: a block
 * freed into its class is handed out again, so after warm-up (once every
 * size class in use has enough blocks) the pool asks the OS for nothing.
 * Memory goes back to the OS only when the pool is destroyed. Thread-safe.
 *
 * A pool may be bound to a NUMA node (gfn_hostmem_create_on_node): its
 * slabs are mapped, bound to the node with mbind (MPOL_BIND), faulted in
 * and checked to lie there (move_pages) before they are pinned, because
 * pinning faults the pages in wherever the policy says and they cannot
 * move afterwards.
 */
#ifndef GFN_RUNTIME_HOSTMEM_H
#define GFN_RUNTIME_HOSTMEM_H

#include <stddef.h>
#include <stdint.h>

#include "gfn/gfn.h"

typedef struct gfn_hostmem gfn_hostmem;

/*
 * Where a pool's slabs come from when not from mmap: a backend's pinned
 * host memory (OpenCL CL_MEM_ALLOC_HOST_PTR mapped once, CUDA
 * cuMemHostAlloc). alloc returns the address and a handle for free.
 */
typedef struct gfn_hostmem_provider {
	void *(*alloc)(void *ctx, size_t bytes, void **handle); /* NULL: no */
	void (*free)(void *ctx, void *p, size_t bytes, void *handle);
	void *ctx; /* passed to both */
} gfn_hostmem_provider;

/*
 * Pins memory a node-bound pool mapped itself, with a backend
 * (cuMemHostRegister; an OpenCL CL_MEM_USE_HOST_PTR buffer). pin returns
 * GFN_OK and a handle for unpin, or the slab is not taken; unpin may be
 * NULL.
 */
typedef struct gfn_hostmem_pinner {
	gfn_status (*pin)(void *ctx, void *p, size_t bytes, void **handle);
	void (*unpin)(void *ctx, void *p, size_t bytes, void *handle);
	void *ctx; /* passed to both */
} gfn_hostmem_pinner;

/* A pool that takes at most limit bytes from the OS (0: no limit). */
gfn_status gfn_hostmem_create(size_t limit, gfn_hostmem **out);
/* The same with slabs from prov (copied). */
gfn_status gfn_hostmem_create_with(size_t limit,
                                   const gfn_hostmem_provider *prov,
                                   gfn_hostmem **out);
/*
 * A pool whose slabs lie on NUMA node node of this machine (see above),
 * pinned by pin when not NULL (copied). GFN_EINVAL when the node does not
 * exist here (or the cpuset does not allow it), GFN_ENOTSUP when the
 * kernel has no NUMA support; nothing is left behind then. A slab that
 * cannot be bound, faulted in on the node or pinned fails the allocation
 * that needed it (GFN_ENOMEM; the reason is logged as a warning).
 */
gfn_status gfn_hostmem_create_on_node(size_t limit, int node,
                                      const gfn_hostmem_pinner *pin,
                                      gfn_hostmem **out);
/* The node a pool is bound to, -1 when it is not. */
int gfn_hostmem_node(const gfn_hostmem *hm);
/* Give every slab back to the OS; blocks still handed out become invalid. */
void gfn_hostmem_destroy(gfn_hostmem *hm);

/*
 * A block of at least size bytes, aligned to 64 bytes (to the page for
 * blocks of a page or more). NULL with GFN_ENOMEM detail when the limit or
 * the OS says no.
 */
void *gfn_hostmem_alloc(gfn_hostmem *hm, size_t size);
/*
 * Call fn(ctx, base, len) for every slab the pool takes from now on,
 * before any block of it is handed out; a failure fails that allocation.
 * For registering the pool's memory with devices.
 */
void gfn_hostmem_on_slab(gfn_hostmem *hm,
                         gfn_status (*fn)(void *ctx, void *base, size_t len),
                         void *ctx);

/* Return a block; size must be the size it was allocated with. */
void gfn_hostmem_free(gfn_hostmem *hm, void *p, size_t size);

/* How many times the pool took memory from the OS (a hot-path counter). */
uint64_t gfn_hostmem_os_allocs(const gfn_hostmem *hm);
/* Bytes taken from the OS and not given back. */
size_t gfn_hostmem_os_bytes(const gfn_hostmem *hm);

#endif /* GFN_RUNTIME_HOSTMEM_H */
