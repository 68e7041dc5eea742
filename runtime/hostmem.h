/*
 * hostmem.h - host memory pool with power-of-two size classes.
 *
 * The invoke path takes object memory from here, never from malloc: a block
 * freed into its class is handed out again, so after warm-up (once every
 * size class in use has enough blocks) the pool asks the OS for nothing.
 * Memory goes back to the OS only when the pool is destroyed. Thread-safe.
 * Later issues bind pools to NUMA nodes and pin them with every backend.
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

/* A pool that takes at most limit bytes from the OS (0: no limit). */
gfn_status gfn_hostmem_create(size_t limit, gfn_hostmem **out);
/* The same with slabs from prov (copied). */
gfn_status gfn_hostmem_create_with(size_t limit,
                                   const gfn_hostmem_provider *prov,
                                   gfn_hostmem **out);
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
