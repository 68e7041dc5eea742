/*
 * shm_alloc.h - the allocator of blocks inside shared-memory segments.
 * Internal: not API.
 *
 * Every block of every segment (allocated or free) has a private record
 * here, in engine memory that no client can reach: clients write into
 * segments, so an allocator whose lists lived in the segments could be
 * broken by any of them. Records sit in a table grown a chunk at a time
 * (never shrunk); a free record list recycles them, so after warm-up
 * allocating and freeing blocks takes nothing from the OS.
 *
 * Blocks are counted in granules (GFN_SHM_GRANULE bytes). Free blocks are
 * kept in segregated lists ("bins", TLSF-style: four bins per power of
 * two) of one arena; the store has an arena per tenant, since a tenant's
 * objects may only go in that tenant's segments. An allocation takes the
 * first block that fits from the bin of its size, else any block of the
 * next non-empty bigger bin, and splits off the rest. Freeing merges the
 * block with free neighbours at once (each record links to its neighbours
 * in address order), so a segment whose blocks are all free is one block.
 * Not thread-safe: the store's lock guards it.
 */
#ifndef GFN_ENGINE_SHM_ALLOC_H
#define GFN_ENGINE_SHM_ALLOC_H

#include <stdint.h>

#include "gfn/gfn.h"

#define GFN_BLK_NIL UINT32_MAX /* no record */
#define GFN_NBINS 128          /* free-list bins of an arena */

/* The private record of one block. */
typedef struct gfn_blk {
	uint32_t seg;   /* segment index in the store */
	uint32_t off;   /* first granule in the segment */
	uint32_t len;   /* granules */
	uint32_t prev;  /* block just before it in the segment, or NIL */
	uint32_t next;  /* block just after it in the segment, or NIL */
	uint32_t fprev; /* free list of its bin (free blocks only) */
	uint32_t fnext; /* free list of its bin, or the record free list */
	uint8_t free;   /* 1: free, 0: allocated or an unused record */
	uint8_t bin;    /* its bin while free */
} gfn_blk;

/* The record table, shared by every arena of a store. */
typedef struct gfn_blocks {
	gfn_blk **chunks;     /* table, GFN_BLK_CHUNK records each */
	uint32_t nchunks;     /* chunks allocated */
	uint32_t maxchunks;   /* size of chunks[] */
	uint32_t free_rec;    /* unused records */
	uint64_t host_allocs; /* chunks taken from the OS */
} gfn_blocks;

/* The free blocks of one tenant's segments. */
typedef struct gfn_arena {
	uint32_t bin[GFN_NBINS]; /* head of each bin's free list */
	uint64_t mask[2];        /* bit b: bin b is not empty */
	uint64_t free_granules;  /* total free */
} gfn_arena;

/* Room for max_records records (they are allocated as needed). */
gfn_status gfn__blocks_init(gfn_blocks *b, uint64_t max_records);
void gfn__blocks_fini(gfn_blocks *b);
/* The record at index i (which must exist). */
gfn_blk *gfn__blk(const gfn_blocks *b, uint32_t i);

void gfn__arena_init(gfn_arena *a);
/*
 * Add a new segment's data area (granules off .. off+len-1 of segment
 * seg) as one free block; *out is its record.
 */
gfn_status gfn__arena_add(gfn_blocks *b, gfn_arena *a, uint32_t seg,
                          uint32_t off, uint32_t len, uint32_t *out);
/*
 * A block of at least len granules (len >= 1) from any segment of the
 * arena; GFN_ENOMEM (no detail set) when none is free.
 */
gfn_status gfn__arena_alloc(gfn_blocks *b, gfn_arena *a, uint32_t len,
                            uint32_t *out);
/*
 * Free block i, merging it with free neighbours. Returns the record of
 * the merged free block; when it has no neighbours its segment is empty.
 */
uint32_t gfn__arena_free(gfn_blocks *b, gfn_arena *a, uint32_t i);
/* Take a free block out of the arena for good (its segment is retired). */
void gfn__arena_remove(gfn_blocks *b, gfn_arena *a, uint32_t i);

#endif /* GFN_ENGINE_SHM_ALLOC_H */
