/*
 * store.h - the object store as the engine sees it. Internal: not API.
 *
 * This interface is what stays when the store moves from process memory to
 * shared-memory segments (a later issue): the engine and gfn.h only use
 * these calls. Every call is thread-safe.
 */
#ifndef GFN_ENGINE_STORE_H
#define GFN_ENGINE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "gfn/gfn.h"
#include "runtime/hostmem.h"

typedef struct gfn_store gfn_store;

/*
 * Called once for every host memory region the store maps for object data
 * (a pool slab today, a shared-memory segment later), before any object in
 * it is handed out, so the engine can register the region with every
 * device once (zero-copy handoff). Returns GFN_OK or the store fails the
 * allocation that needed the region.
 */
typedef gfn_status (*gfn_region_fn)(void *ctx, void *base, size_t len);

typedef struct gfn_store_config {
	size_t capacity;         /* bytes of object data */
	size_t max_objects;      /* live objects */
	gfn_hostmem *mem;        /* where object data comes from; not owned */
	gfn_region_fn on_region; /* optional: new region hook */
	void *region_ctx;        /* its argument */
} gfn_store_config;

typedef struct gfn_store_stats {
	uint64_t objects;     /* live objects */
	uint64_t bytes;       /* bytes of live objects */
	uint64_t evictions;   /* objects evicted under pressure */
	uint64_t host_allocs; /* table chunks taken from the OS */
} gfn_store_stats;

gfn_status gfn_store_create(const gfn_store_config *cfg, gfn_store **out);
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
 * Take a reference to each of n sealed objects and describe each as a
 * tensor, all or nothing (one lock). On failure no reference is kept.
 */
gfn_status gfn_store_acquire(gfn_store *st, size_t n, const gfn_object *ids,
                             gfn_tensor *out);
/* Drop one reference of each (as gfn_store_release, errors ignored). */
void gfn_store_release_n(gfn_store *st, size_t n, const gfn_object *ids);
/*
 * Create n unsealed objects shaped like the tensors in t (dtype, ndim,
 * shape), fill in t[i].data and t[i].nbytes, all or nothing.
 */
gfn_status gfn_store_create_n(gfn_store *st, size_t n, gfn_tensor *t,
                              gfn_object *ids);
/* Seal n objects made by gfn_store_create_n. */
void gfn_store_seal_n(gfn_store *st, size_t n, const gfn_object *ids);
/* Delete and release n objects (an invocation that failed or was dropped). */
void gfn_store_discard_n(gfn_store *st, size_t n, const gfn_object *ids);

void gfn_store_get_stats(gfn_store *st, gfn_store_stats *out);

/* "3f2a9c..:7/2" for messages; buf needs 48 bytes. */
const char *gfn_store_id_str(gfn_object id, char *buf, size_t len);

#endif /* GFN_ENGINE_STORE_H */
