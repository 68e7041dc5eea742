/*
 * store_impl.h - the object store's private records, shared by store.c
 * and store_check.c. Internal to the store: nothing else includes it.
 */
#ifndef GFN_ENGINE_STORE_IMPL_H
#define GFN_ENGINE_STORE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "engine/shm_alloc.h"
#include "engine/shm_segment.h"
#include "engine/store.h"
#include "engine/store_server.h"

#define CHUNK_SHIFT 10
#define CHUNK (1u << CHUNK_SHIFT) /* slots per table chunk */
#define NIL UINT32_MAX            /* no slot, segment or block */
#define G GFN_SHM_GRANULE
#define MAX_SEGS 4096                  /* segments mapped at once */
#define MAX_TENANTS 1024               /* distinct tenants (power of 2) */
#define RAND_WORDS 32                  /* ids drawn per getrandom call */
#define DEFAULT_SEG ((size_t)64 << 20) /* segment size by default */
#define MIN_SEG ((size_t)64 << 10)     /* smallest segment */

enum { ST_FREE = 0, ST_OPEN, ST_SEALED };

typedef struct links {
	uint32_t prev, next; /* neighbours in a list, NIL at the ends */
} links;

typedef struct list {
	uint32_t head, tail; /* oldest and newest; NIL when empty */
} list;

/* Everything the store knows about one tenant. */
typedef struct tenant_rec {
	uint32_t id;       /* the tenant */
	uint64_t bytes;    /* bytes of its live objects */
	uint64_t objects;  /* its live objects */
	list lru;          /* its cached objects, least recently used first */
	gfn_arena arena[]; /* free blocks of its segments, per NUMA node */
} tenant_rec;

typedef struct seg {
	gfn_shm_map map; /* memfd and the engine's mapping */
	uint32_t id;     /* what clients call it; never reused */
	tenant_rec *t;   /* owner */
	uint32_t live;   /* allocated blocks */
	uint32_t head;   /* record of its first block */
	int node;        /* logical NUMA node it was made for */
	int bound;       /* its pages are bound to node (mbind) */
} seg;

typedef struct slot {
	uint64_t hi;                 /* random half of the id; 0 when free */
	uint32_t gen;                /* generation; bumped when freed */
	uint8_t state;               /* ST_* */
	uint8_t deleted;             /* id no longer resolves */
	uint8_t cached;              /* on the LRU lists */
	gfn_dtype dtype;             /* element type */
	int ndim;                    /* dimensions */
	int64_t shape[GFN_MAX_DIMS]; /* extents */
	size_t size;                 /* bytes */
	void *data;                  /* in the engine's mapping */
	tenant_rec *t;               /* owner */
	uint32_t seg;                /* segment index */
	uint32_t blk;                /* block record */
	uint64_t off;                /* slot header offset in the segment */
	uint32_t refs;               /* references held */
	links gl;                    /* global LRU, or the free list (next) */
	links tl;                    /* its tenant's LRU */
} slot;

struct gfn_store {
	pthread_mutex_t lock; /* guards everything below but clients */
	size_t capacity;      /* max object bytes */
	size_t max_objects;   /* max live objects */
	size_t quota;         /* max object bytes per tenant (not 0) */
	size_t seg_size;      /* bytes of a standard segment */
	int nnodes;           /* logical NUMA nodes segments are placed on */
	size_t budget;        /* max bytes of mapped segments */
	size_t mapped;        /* bytes of mapped segments */
	size_t bytes;         /* bytes of live objects */
	uint64_t nobjects;    /* live objects */
	slot **chunks;        /* object table, CHUNK slots each */
	uint32_t nchunks;     /* chunks allocated */
	uint32_t maxchunks;   /* size of chunks[] */
	uint32_t free_head;   /* free slots */
	list lru;             /* every cached object, LRU first */
	gfn_blocks blocks;    /* block records */
	seg *segs[MAX_SEGS];  /* by index; NULL: unused */
	uint32_t nseg_idx;    /* indexes in use are below this */
	uint32_t nsegs;       /* segments mapped */
	uint32_t next_seg_id; /* id of the next segment */
	uint32_t epoch;       /* bumped when a segment is retired */
	tenant_rec *tenants[MAX_TENANTS];  /* open addressing by id */
	tenant_rec *engine_t;              /* tenant 0 */
	uint64_t rnd[RAND_WORDS];          /* ids from getrandom */
	unsigned nrnd;                     /* words of rnd left */
	uint64_t evictions;                /* objects evicted */
	uint64_t retired;                  /* segments retired */
	uint64_t host_allocs;              /* tables, tenants, segments */
	gfn_region_fn on_region;           /* new region hook */
	gfn_region_gone_fn on_region_gone; /* region going hook */
	void *region_ctx;                  /* their argument */
	_Atomic uint64_t clients;          /* attached client processes */
	pthread_mutex_t server_lock;       /* guards server (shutdown) */
	gfn_store_server *server;          /* listener, or NULL */
};

static inline slot *at(gfn_store *st, uint32_t i)
{
	return &st->chunks[i >> CHUNK_SHIFT][i & (CHUNK - 1)];
}

static inline gfn_object id_of(gfn_store *st, uint32_t i)
{
	slot *e = at(st, i);

	return (gfn_object){e->hi, (uint64_t)e->gen << 32 | i};
}

/* Links of slot i in the global (0) or its tenant's (1) LRU list. */
static inline links *lk(gfn_store *st, uint32_t i, int tenant_list)
{
	slot *e = at(st, i);

	return tenant_list ? &e->tl : &e->gl;
}

/* The slot header that describes live slot i (store.c). */
void gfn__store_to_shm(gfn_store *st, uint32_t i, gfn_shm_slot *h);

#endif /* GFN_ENGINE_STORE_IMPL_H */
