/*
 * shm_segment.h - shared-memory segments of the object store and the
 * headers inside them. Internal: not API.
 *
 * A segment is a memfd, sealed against shrinking (so no process that maps
 * it can truncate it under another and turn its reads into SIGBUS), mapped
 * shared by the engine and by the client processes of one tenant. Layout:
 *
 *   granule 0        segment header (gfn_shm_seg_hdr)
 *   granule 1 ...    blocks: a slot header (gfn_shm_slot_hdr, one granule)
 *                    followed by the object's bytes, rounded up to granules
 *
 * The headers in a segment are a published mirror of the engine's private
 * records: clients write into segments, so the engine never takes a
 * decision from a header it reads back. Readers (clients, the engine when
 * it checks a client's object, the fuzz target) validate every field with
 * the parsers below before using it. Headers are arrays of 64-bit words
 * read and written with relaxed atomics: another process may be writing
 * them, and a torn or hostile header must only ever fail validation.
 */
#ifndef GFN_ENGINE_SHM_SEGMENT_H
#define GFN_ENGINE_SHM_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "gfn/gfn.h"

#define GFN_SHM_GRANULE 128u /* allocation unit and data alignment */
#define GFN_SHM_VERSION 1u   /* layout version in the segment header */
#define GFN_SHM_SEG_MAGIC 0x31304745534e4647ull /* "GFNSEG01" */
#define GFN_SHM_SLOT_MAGIC 0x4f4e4647u          /* "GFNO" */

/* Slot states, as published in the slot header. */
enum { GFN_SHM_FREE = 0, GFN_SHM_OPEN = 1, GFN_SHM_SEALED = 2 };

/* The segment header: granule 0 of every segment. */
typedef struct gfn_shm_seg_hdr {
	uint64_t w[GFN_SHM_GRANULE / 8]; /* encoded words, see shm_segment.c */
} gfn_shm_seg_hdr;

/* The slot header: the first granule of every allocated block. */
typedef struct gfn_shm_slot_hdr {
	uint64_t w[GFN_SHM_GRANULE / 8]; /* encoded words, see shm_segment.c */
} gfn_shm_slot_hdr;

/* A segment header, decoded. */
typedef struct gfn_shm_seg_info {
	uint32_t seg_id;   /* the engine's id of the segment */
	uint32_t tenant;   /* tenant whose objects it holds */
	uint64_t size;     /* bytes of the whole segment */
	uint64_t data_off; /* offset of the first block */
} gfn_shm_seg_info;

/* A slot header, decoded. */
typedef struct gfn_shm_slot {
	uint64_t id_hi, id_lo;       /* the object's id */
	uint32_t tenant;             /* its owner */
	uint32_t refs;               /* references (a mirror, informational) */
	uint8_t state;               /* GFN_SHM_OPEN or GFN_SHM_SEALED */
	uint8_t dtype;               /* gfn_dtype */
	uint8_t ndim;                /* 0..GFN_MAX_DIMS */
	int64_t shape[GFN_MAX_DIMS]; /* extents; unused ones are 0 */
	uint64_t size;               /* bytes of data */
	uint64_t off;                /* offset of this header in the segment */
	uint64_t block;              /* header + data, rounded to granules */
} gfn_shm_slot;

/*
 * Bytes of a block holding an object of size bytes (header included), or
 * 0 when that overflows.
 */
uint64_t gfn__shm_block_bytes(uint64_t size);

/* Write the segment header at base (engine side). */
void gfn__shm_seg_write(void *base, const gfn_shm_seg_info *info);
/*
 * Decode and validate the segment header of a mapping of len bytes at
 * base (8-byte aligned). GFN_EINVAL with the reason when it is corrupt or
 * does not describe a segment of exactly len bytes.
 */
gfn_status gfn__shm_seg_parse(const void *base, size_t len,
                              gfn_shm_seg_info *out);

/* Write a whole slot header at its offset sl->off (engine side). */
void gfn__shm_slot_write(void *seg_base, const gfn_shm_slot *sl);
/* Publish new state and references of a written header (only state,
   dtype, ndim, tenant, refs and off of sl are used). */
void gfn__shm_slot_update(void *seg_base, const gfn_shm_slot *sl);
/* Mark the block at off free (clears the magic: stale readers fail). */
void gfn__shm_slot_clear(void *seg_base, uint64_t off);
/*
 * Decode and validate the slot header at off in a segment mapping of len
 * bytes: magic, state, dtype, shape, size against the block, the block
 * inside the segment, the self-offset and the checksum. GFN_EINVAL with
 * the reason when anything is wrong.
 */
gfn_status gfn__shm_slot_parse(const void *seg_base, size_t len, uint64_t off,
                               gfn_shm_slot *out);
/* Nonzero when a and b describe the same object the same way. */
int gfn__shm_slot_same(const gfn_shm_slot *a, const gfn_shm_slot *b);

/* ---- memfd segments --------------------------------------------------- */

/* A segment mapped into this process. */
typedef struct gfn_shm_map {
	int fd;      /* the memfd; -1 once closed */
	void *base;  /* shared mapping; NULL when not mapped */
	size_t size; /* bytes mapped (the whole segment) */
} gfn_shm_map;

/*
 * Make a memfd of size bytes (a multiple of the page size), seal it
 * against shrinking, growing and further sealing, and map it shared.
 * GFN_ENOMEM or GFN_ESYS with the failing call on error.
 */
gfn_status gfn__shm_create(size_t size, const char *name, gfn_shm_map *out);
/*
 * Map a segment received from the engine: fd must be a memfd sealed
 * against shrinking, of the size expected. On success out owns fd.
 */
gfn_status gfn__shm_attach(int fd, size_t expected, gfn_shm_map *out);
/* Unmap and close. With punch, also give the pages back to the kernel
   (other processes that still map it see zeros). */
void gfn__shm_close(gfn_shm_map *m, int punch);

#endif /* GFN_ENGINE_SHM_SEGMENT_H */
