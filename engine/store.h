/*
 * store.h - the object store as the engine sees it. Internal: not API.
 *
 * Object data lives in shared-memory segments (memfd, see shm_segment.h)
 * that client processes map too; docs/store.md describes the whole
 * design. Every object belongs to a tenant. Tenant 0 is the engine
 * itself: the calls without a tenant argument act as tenant 0, which is
 * trusted and may use every tenant's objects. The _as calls take the
 * caller's tenant; a caller other than 0 may only use its own tenant's
 * objects (GFN_EACCES otherwise). Every call is thread-safe.
 */
#ifndef GFN_ENGINE_STORE_H
#define GFN_ENGINE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "gfn/gfn.h"
#include "runtime/hostmem.h"

typedef struct gfn_store gfn_store;

#define GFN_TENANT_ENGINE 0u /* the engine's own tenant: trusted */

#define GFN_STORE_MAX_NODES 64 /* NUMA nodes a store places segments on */
/* caller_node of gfn_store_create_at: the calling thread's node (getcpu). */
#define GFN_STORE_NODE_HERE (-1)
/* caller_node of gfn_store_create_at: not known (objects go on node 0). */
#define GFN_STORE_NODE_UNKNOWN (-2)

/*
 * Called once for every host memory region the store maps for object data
 * (a shared-memory segment), before any object in it is handed out, so
 * the engine can register the region with every device once (zero-copy
 * handoff). Returns GFN_OK or the store fails the allocation that needed
 * the region (and unmaps it without calling on_region_gone).
 */
typedef gfn_status (*gfn_region_fn)(void *ctx, void *base, size_t len);
/*
 * Called before the store unmaps a region it announced with on_region
 * while the engine runs (a segment retired to make room for another
 * tenant's). Not called by gfn_store_destroy: the engine drops its
 * registrations itself before that. When on_region is set and this is
 * not, the store never retires a segment.
 */
typedef void (*gfn_region_gone_fn)(void *ctx, void *base, size_t len);

typedef struct gfn_store_config {
	size_t capacity;     /* bytes of object data (sum of object sizes) */
	size_t max_objects;  /* live objects */
	size_t segment_size; /* bytes per segment; 0: 64 MiB. Smaller
	                        stores use smaller segments; an object too
	                        big for one gets a segment of its own */
	size_t tenant_quota; /* most object bytes a tenant other than 0 may
	                        hold; 0: no quota but the capacity */
	const char *socket_path;    /* unix socket for client processes
	                            (store_server.c); NULL: none */
	unsigned attach_timeout_ms; /* a connection that has not attached
	                               by then is dropped; 0: 10 s */
	int numa_nodes; /* logical NUMA nodes (runtime/topology.h) segments
	                   are placed on, 1..GFN_STORE_MAX_NODES; 0: this
	                   machine's (libnuma; 1 without NUMA support) */
	gfn_region_fn on_region;           /* optional: new region hook */
	gfn_region_gone_fn on_region_gone; /* optional: region going */
	void *region_ctx;                  /* their argument */
} gfn_store_config;

typedef struct gfn_store_stats {
	uint64_t objects;      /* live objects */
	uint64_t bytes;        /* bytes of live objects */
	uint64_t evictions;    /* objects evicted under pressure */
	uint64_t host_allocs;  /* tables and segments taken from the OS */
	uint64_t segments;     /* segments mapped now */
	uint64_t mapped_bytes; /* their bytes */
	uint64_t retired;      /* segments unmapped to make room */
	uint64_t clients;      /* client processes attached now */
} gfn_store_stats;

/* Where an object lives, for a client that maps its segment. */
typedef struct gfn_store_loc {
	uint32_t seg_id;             /* segment (ids are never reused) */
	uint32_t tenant;             /* owner of the object */
	uint64_t seg_size;           /* bytes of the segment */
	uint64_t off;                /* its slot header in the segment */
	void *data;                  /* its bytes in the engine's mapping */
	size_t size;                 /* bytes */
	gfn_dtype dtype;             /* element type */
	int ndim;                    /* dimensions */
	int64_t shape[GFN_MAX_DIMS]; /* extents */
	int node;                    /* NUMA node of its segment */
} gfn_store_loc;

/*
 * Make a store; with cfg->socket_path it also starts the listener that
 * client processes attach to. On failure nothing is left behind.
 */
gfn_status gfn_store_create(const gfn_store_config *cfg, gfn_store **out);
/*
 * Stop the listener: close every client connection (giving back what
 * each held) and join its thread. Idempotent; gfn_store_destroy calls it
 * too. The engine calls it first when it shuts down, so that no client
 * makes a segment appear while it unregisters the regions it knows.
 */
void gfn_store_shutdown(gfn_store *st);
void gfn_store_destroy(gfn_store *st);

/* gfn.h semantics; see gfn_object_* there. create also returns the data. */
gfn_status gfn_store_create_object(gfn_store *st, gfn_dtype dtype, int ndim,
                                   const int64_t *shape, gfn_object *out,
                                   void **data);
gfn_status gfn_store_write(gfn_store *st, gfn_object id, size_t off,
                           const void *src, size_t len);
gfn_status gfn_store_map(gfn_store *st, gfn_object id, void **data,
                         size_t *size);
gfn_status gfn_store_seal(gfn_store *st, gfn_object id);
gfn_status gfn_store_get(gfn_store *st, gfn_object id, gfn_object_view *v);
gfn_status gfn_store_release(gfn_store *st, gfn_object id);
gfn_status gfn_store_delete(gfn_store *st, gfn_object id);

/*
 * Create an object for tenant in a segment of NUMA node node (a placement
 * hint: the node of the device that will read it), or with node -1 on
 * caller_node, the node the caller runs on (GFN_STORE_NODE_HERE: the
 * calling thread's; a node the store does not know, or
 * GFN_STORE_NODE_UNKNOWN: node 0). GFN_EINVAL for a node below -1 or not
 * below the store's numa_nodes. Otherwise as gfn_store_create_as.
 *
 * Segments are made for one (tenant, node). A node that exists on this
 * machine has its pages bound there (mbind MPOL_PREFERRED, before the
 * first touch: a full node spills over instead of failing a client's page
 * fault with SIGBUS); a node only a synthetic topology has is recorded,
 * not bound.
 */
gfn_status gfn_store_create_at(gfn_store *st, uint32_t tenant, int node,
                               int caller_node, gfn_dtype dtype, int ndim,
                               const int64_t *shape, gfn_object *out,
                               gfn_store_loc *loc);
/* gfn_store_create_object on NUMA node node (-1: the calling thread's). */
gfn_status gfn_store_create_object_on(gfn_store *st, gfn_dtype dtype, int ndim,
                                      const int64_t *shape, int node,
                                      gfn_object *out, void **data);
/* The number of logical NUMA nodes the store places segments on. */
int gfn_store_numa_nodes(const gfn_store *st);

/*
 * The same on behalf of tenant (the caller's, from kernel-verified
 * credentials). loc may be NULL. map_as: the object must be unsealed;
 * get_as: sealed, and takes a reference. For a tenant other than 0,
 * seal_as and get_as also check the object's slot header in its segment
 * (clients can write there): a corrupt one is rewritten from the engine's
 * record and the call fails with GFN_EINVAL.
 */
gfn_status gfn_store_create_as(gfn_store *st, uint32_t tenant, gfn_dtype dtype,
                               int ndim, const int64_t *shape, gfn_object *out,
                               gfn_store_loc *loc);
gfn_status gfn_store_map_as(gfn_store *st, uint32_t tenant, gfn_object id,
                            gfn_store_loc *loc);
gfn_status gfn_store_seal_as(gfn_store *st, uint32_t tenant, gfn_object id);
gfn_status gfn_store_get_as(gfn_store *st, uint32_t tenant, gfn_object id,
                            gfn_store_loc *loc);
gfn_status gfn_store_release_as(gfn_store *st, uint32_t tenant, gfn_object id);
gfn_status gfn_store_delete_as(gfn_store *st, uint32_t tenant, gfn_object id);

/*
 * Take a reference to each of n sealed objects and describe each as a
 * tensor, all or nothing (one lock). On failure no reference is kept.
 * A caller other than 0 may only use its own objects and the engine's
 * (GFN_EACCES). *owner (may be NULL) is the tenant outputs computed from
 * them belong to: the caller when not 0, else the one tenant other than 0
 * among their owners, else 0 (all the engine's, or several mixed).
 */
gfn_status gfn_store_acquire(gfn_store *st, uint32_t caller, size_t n,
                             const gfn_object *ids, gfn_tensor *out,
                             uint32_t *owner);
/* Drop one reference of each (as gfn_store_release, errors ignored). */
void gfn_store_release_n(gfn_store *st, size_t n, const gfn_object *ids);
/*
 * Create n unsealed objects of tenant shaped like the tensors in t
 * (dtype, ndim, shape), fill in t[i].data and t[i].nbytes, all or nothing.
 * They go on the calling thread's NUMA node (a device worker bound to its
 * device's node writes outputs there).
 */
gfn_status gfn_store_create_n(gfn_store *st, uint32_t tenant, size_t n,
                              gfn_tensor *t, gfn_object *ids);
/* Seal n objects made by gfn_store_create_n. */
void gfn_store_seal_n(gfn_store *st, size_t n, const gfn_object *ids);
/* Delete and release n objects (an invocation that failed or was dropped). */
void gfn_store_discard_n(gfn_store *st, size_t n, const gfn_object *ids);

void gfn_store_get_stats(gfn_store *st, gfn_store_stats *out);

/*
 * The NUMA node (logical, as in runtime/topology.h) holding object id's
 * memory, or -1 when unknown or the id is not a live object. Placement
 * uses it to weigh input bytes that would cross a NUMA link.
 */
int gfn_store_object_node(gfn_store *st, gfn_object id);

/* "3f2a9c..:7/2" for messages; buf needs 48 bytes. */
const char *gfn_store_id_str(gfn_object id, char *buf, size_t len);

/* ---- for the socket server (store_server.c) --------------------------- */

/*
 * A new descriptor for segment seg_id (the caller closes it) and the
 * segment's size; the segment must belong to tenant. The segment header
 * is rewritten first, so a client that scribbled on it does not break
 * the next one that maps it. GFN_ENOENT when there is no such segment
 * (any more), GFN_EACCES when it is another tenant's.
 */
gfn_status gfn_store_segment_fd(gfn_store *st, uint32_t tenant, uint32_t seg_id,
                                int *fd, size_t *size);
/* Bit k of the result: segment ids[k] (k < 64) is mapped and tenant's. */
uint64_t gfn_store_segments_live(gfn_store *st, uint32_t tenant, size_t n,
                                 const uint32_t *ids);
/*
 * Drop count references to tenant's object id under one lock (what a
 * client held when its connection closed); stops early when none is left.
 */
void gfn_store_release_count(gfn_store *st, uint32_t tenant, gfn_object id,
                             uint32_t count);
/* Bumped each time a segment is retired: clients then drop theirs. */
uint32_t gfn_store_epoch(gfn_store *st);
/* The number of attached clients changed by delta (for the stats). */
void gfn_store_count_client(gfn_store *st, int delta);

/*
 * Check every invariant of the store: blocks tile each segment, free
 * neighbours are merged, free lists and counters agree, and every live
 * object's slot header parses and matches the engine's record. GFN_OK,
 * or GFN_EINTERNAL with what is wrong in the detail. For tests.
 */
gfn_status gfn_store_check(gfn_store *st);

#endif /* GFN_ENGINE_STORE_H */
