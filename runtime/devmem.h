/*
 * devmem.h - device memory pool: power-of-two blocks carved from large
 * driver allocations, so the invoke path makes no device malloc (and, on
 * OpenCL, creates no buffer object) once the pool is warm.
 *
 * Each block carries a view (gfn_bmem) made once, the first time the block
 * is handed out, and kept for the life of the pool. Memory goes back to
 * the driver only when the pool is destroyed. Thread-safe.
 */
#ifndef GFN_RUNTIME_DEVMEM_H
#define GFN_RUNTIME_DEVMEM_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/backend.h"

typedef struct gfn_devmem gfn_devmem;

typedef struct gfn_dblock {
	gfn_bmem mem;            /* the block: use in copies, launches */
	struct gfn_dblock *next; /* free list */
	unsigned cls;            /* size class */
	int has_view;            /* mem was made */
	uint32_t chunk;          /* chunk it is carved from */
	size_t off;              /* offset in that chunk */
} gfn_dblock;

/*
 * A pool on dev, taking driver memory chunk bytes at a time (more for one
 * larger block) and at most limit bytes in all (0: no limit).
 */
gfn_status gfn_devmem_create(const gfn_backend_ops *ops, gfn_bdev *dev,
                             size_t chunk, size_t limit, gfn_devmem **out);
/* Every block must have been freed. Accepts NULL. */
void gfn_devmem_destroy(gfn_devmem *dm);

/* A block of at least size bytes; GFN_ENOMEM at the limit. */
gfn_status gfn_devmem_alloc(gfn_devmem *dm, size_t size, gfn_dblock **out);
void gfn_devmem_free(gfn_devmem *dm, gfn_dblock *b);

/* Driver allocations made so far (a hot-path counter). */
uint64_t gfn_devmem_driver_allocs(gfn_devmem *dm);

#endif /* GFN_RUNTIME_DEVMEM_H */
