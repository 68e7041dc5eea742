/*
 * store.c - the in-process object store (see store.h).
 *
 * Objects live in a table of slots, grown a chunk at a time and never
 * shrunk, so a slot's address is stable and a stale id can always be
 * looked at safely. An id is (random 64 bits, generation << 32 | slot):
 * the slot finds the entry at once, the generation rejects ids of freed
 * objects, and the random half rejects forged ones. Object data comes from
 * the host pool. One mutex guards the table: every operation is short.
 *
 * Reference rule: create gives the caller one reference; get adds one;
 * release drops one. A sealed object with no reference stays cached on the
 * LRU list until deleted or evicted; an unsealed or deleted object is freed
 * when its last reference goes.
 */
#include "engine/store.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/util.h"

#define CHUNK_SHIFT 10
#define CHUNK (1u << CHUNK_SHIFT) /* slots per table chunk */
#define NIL UINT32_MAX            /* no slot */

enum { ST_FREE = 0, ST_OPEN, ST_SEALED };

typedef struct slot {
	uint64_t hi;                 /* random half of the id; 0 when free */
	uint32_t gen;                /* generation; bumped when freed */
	uint8_t state;               /* ST_* */
	uint8_t deleted;             /* id no longer resolves */
	gfn_dtype dtype;             /* element type */
	int ndim;                    /* dimensions */
	int64_t shape[GFN_MAX_DIMS]; /* extents */
	size_t size;                 /* bytes */
	void *data;                  /* from the host pool */
	uint32_t refs;               /* references held */
	uint32_t prev, next;         /* LRU list, or free list (next) */
} slot;

struct gfn_store {
	pthread_mutex_t lock; /* guards everything below */
	gfn_hostmem *mem;     /* object data; not owned */
	size_t capacity;      /* max bytes */
	size_t max_objects;   /* max live objects */
	size_t bytes;         /* bytes of live objects */
	slot **chunks;        /* table, CHUNK slots each */
	uint32_t nchunks;     /* chunks allocated */
	uint32_t maxchunks;   /* size of chunks[] */
	uint32_t free_head;   /* free slots */
	uint32_t lru_head;    /* least recently used cached object */
	uint32_t lru_tail;    /* most recently used */
	uint64_t nobjects;    /* live objects */
	uint64_t evictions;   /* objects evicted */
	uint64_t host_allocs; /* chunks allocated */
	uint64_t rng;         /* splitmix64 state for ids */
};

const char *gfn_store_id_str(gfn_object id, char *buf, size_t len)
{
	snprintf(buf, len, "%016" PRIx64 ":%u/%u", id.hi,
	         (unsigned)(id.lo & 0xffffffffu), (unsigned)(id.lo >> 32));
	return buf;
}

static uint64_t next_random(gfn_store *st)
{
	uint64_t z = (st->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z ? z : 1; /* hi == 0 marks a free slot */
}

static slot *at(gfn_store *st, uint32_t i)
{
	return &st->chunks[i >> CHUNK_SHIFT][i & (CHUNK - 1)];
}

gfn_status gfn_store_create(const gfn_store_config *cfg, gfn_store **out)
{
	gfn_store *st = calloc(1, sizeof(*st));
	size_t maxobj = cfg->max_objects ? cfg->max_objects : 1;

	if (!st)
		return gfn__fail(GFN_ENOMEM, "no memory for the object store");
	st->maxchunks = (uint32_t)((maxobj + CHUNK - 1) / CHUNK);
	st->chunks = calloc(st->maxchunks, sizeof(*st->chunks));
	if (!st->chunks) {
		free(st);
		return gfn__fail(GFN_ENOMEM, "no memory for the object table");
	}
	pthread_mutex_init(&st->lock, NULL);
	st->mem = cfg->mem;
	st->capacity = cfg->capacity;
	st->max_objects = maxobj;
	st->free_head = st->lru_head = st->lru_tail = NIL;
	st->rng = gfn__random_seed();
	*out = st;
	return GFN_OK;
}

void gfn_store_destroy(gfn_store *st)
{
	if (!st)
		return;
	for (uint32_t c = 0; c < st->nchunks; c++) {
		for (uint32_t i = 0; i < CHUNK; i++) {
			slot *s = &st->chunks[c][i];
			if (s->state != ST_FREE)
				gfn_hostmem_free(st->mem, s->data, s->size);
		}
		free(st->chunks[c]);
	}
	free(st->chunks);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

/* ---- lists ---------------------------------------------------------------- */

static void lru_unlink(gfn_store *st, uint32_t i)
{
	slot *s = at(st, i);

	if (s->prev != NIL)
		at(st, s->prev)->next = s->next;
	else
		st->lru_head = s->next;
	if (s->next != NIL)
		at(st, s->next)->prev = s->prev;
	else
		st->lru_tail = s->prev;
	s->prev = s->next = NIL;
}

static void lru_push(gfn_store *st, uint32_t i)
{
	slot *s = at(st, i);

	s->next = NIL;
	s->prev = st->lru_tail;
	if (st->lru_tail != NIL)
		at(st, st->lru_tail)->next = i;
	else
		st->lru_head = i;
	st->lru_tail = i;
}

/* Add a chunk of free slots; the only allocation the table makes. */
static gfn_status grow_table(gfn_store *st)
{
	slot *c;

	if (st->nchunks == st->maxchunks)
		return gfn__fail(GFN_ENOMEM,
		                 "object store holds its maximum of "
		                 "%u objects",
		                 st->maxchunks * CHUNK);
	c = calloc(CHUNK, sizeof(*c));
	if (!c)
		return gfn__fail(GFN_ENOMEM, "no memory for object slots");
	st->chunks[st->nchunks] = c;
	for (uint32_t i = CHUNK; i-- > 0;) {
		c[i].gen = 1;
		c[i].next = st->free_head;
		st->free_head = st->nchunks * CHUNK + i;
	}
	st->nchunks++;
	st->host_allocs++;
	return GFN_OK;
}

/* Return slot i to the free list with a new generation. */
static void free_slot(gfn_store *st, uint32_t i)
{
	slot *s = at(st, i);

	gfn_hostmem_free(st->mem, s->data, s->size);
	st->bytes -= s->size;
	st->nobjects--;
	s->hi = 0;
	s->data = NULL;
	s->state = ST_FREE;
	s->deleted = 0;
	s->gen = s->gen + 1 ? s->gen + 1 : 1;
	s->next = st->free_head;
	st->free_head = i;
}

static int fits(const gfn_store *st, size_t need)
{
	return st->bytes + need <= st->capacity &&
	       st->nobjects < st->max_objects;
}

/* Evict cached objects, oldest first, until one more of need bytes fits. */
static int make_room(gfn_store *st, size_t need)
{
	while (!fits(st, need) && st->lru_head != NIL) {
		uint32_t i = st->lru_head;
		lru_unlink(st, i);
		free_slot(st, i);
		st->evictions++;
	}
	return fits(st, need);
}

/* ---- lookup ----------------------------------------------------------------- */

/* The slot of a live object, or NULL with the status in *s. */
static slot *find(gfn_store *st, gfn_object id, gfn_status *s, uint32_t *idx)
{
	uint32_t i = (uint32_t)id.lo, gen = (uint32_t)(id.lo >> 32);
	char b[48];
	slot *e;

	if (!id.hi || !gen || i >= st->nchunks * CHUNK) {
		*s = gfn__fail(GFN_ENOENT, "no object %s",
		               gfn_store_id_str(id, b, sizeof(b)));
		return NULL;
	}
	e = at(st, i);
	if (e->gen == gen && e->hi != id.hi && e->state != ST_FREE) {
		*s = gfn__fail(GFN_ENOENT, "no object %s",
		               gfn_store_id_str(id, b, sizeof(b)));
		return NULL;
	}
	if (e->gen != gen || e->state == ST_FREE || e->deleted) {
		*s = gfn__fail(GFN_ESTALE, "object %s was deleted or evicted",
		               gfn_store_id_str(id, b, sizeof(b)));
		return NULL;
	}
	*idx = i;
	return e;
}

static gfn_status check_shape(gfn_dtype dtype, int ndim, const int64_t *shape,
                              size_t *size)
{
	size_t n = gfn_dtype_size(dtype);

	if (!n)
		return gfn__fail(GFN_EINVAL, "unknown dtype %d", (int)dtype);
	if (ndim < 0 || ndim > GFN_MAX_DIMS)
		return gfn__fail(GFN_EINVAL, "ndim %d is outside 0..%d", ndim,
		                 GFN_MAX_DIMS);
	if (ndim > 0 && !shape)
		return gfn__fail(GFN_EINVAL, "shape is NULL for ndim %d", ndim);
	for (int d = 0; d < ndim; d++) {
		if (shape[d] < 0)
			return gfn__fail(GFN_EINVAL, "extent %d is %" PRId64, d,
			                 shape[d]);
		if (shape[d] && n > SIZE_MAX / 2 / (size_t)shape[d])
			return gfn__fail(GFN_ERANGE, "tensor size overflows");
		n *= (size_t)shape[d];
	}
	*size = n;
	return GFN_OK;
}

/* ---- create and lifecycle ----------------------------------------------------- */

static gfn_status create_locked(gfn_store *st, gfn_dtype dtype, int ndim,
                                const int64_t *shape, size_t size,
                                gfn_object *out, void **data)
{
	gfn_status s;
	uint32_t i;
	slot *e;
	void *p;

	if (!make_room(st, size))
		return gfn__fail(
		        GFN_ENOMEM,
		        "store full: %zu bytes wanted, %zu of %zu in use, "
		        "%" PRIu64 " of %zu objects, none evictable",
		        size, st->bytes, st->capacity, st->nobjects,
		        st->max_objects);
	if (st->free_head == NIL && (s = grow_table(st)) != GFN_OK)
		return s;
	p = gfn_hostmem_alloc(st->mem, size);
	if (!p)
		return GFN_ENOMEM; /* detail set by the pool */
	i = st->free_head;
	e = at(st, i);
	st->free_head = e->next;
	e->hi = next_random(st);
	e->state = ST_OPEN;
	e->deleted = 0;
	e->dtype = dtype;
	e->ndim = ndim;
	memset(e->shape, 0, sizeof(e->shape));
	if (ndim)
		memcpy(e->shape, shape, (size_t)ndim * sizeof(*shape));
	e->size = size;
	e->data = p;
	e->refs = 1;
	e->prev = e->next = NIL;
	st->bytes += size;
	st->nobjects++;
	out->hi = e->hi;
	out->lo = (uint64_t)e->gen << 32 | i;
	if (data)
		*data = p;
	return GFN_OK;
}

gfn_status gfn_store_create_object(gfn_store *st, gfn_dtype dtype, int ndim,
                                   const int64_t *shape, gfn_object *out,
                                   void **data)
{
	size_t size;
	gfn_status s = check_shape(dtype, ndim, shape, &size);

	if (s != GFN_OK)
		return s;
	pthread_mutex_lock(&st->lock);
	s = create_locked(st, dtype, ndim, shape, size, out, data);
	pthread_mutex_unlock(&st->lock);
	return s;
}

/* The slot of an unsealed object, for writing. Caller holds the lock. */
static slot *find_open(gfn_store *st, gfn_object id, gfn_status *s)
{
	uint32_t i;
	slot *e = find(st, id, s, &i);
	char b[48];

	if (e && e->state != ST_OPEN) {
		*s = gfn__fail(GFN_ESTATE, "object %s is sealed",
		               gfn_store_id_str(id, b, sizeof(b)));
		return NULL;
	}
	return e;
}

gfn_status gfn_store_write(gfn_store *st, gfn_object id, size_t off,
                           const void *src, size_t len)
{
	gfn_status s = GFN_OK;
	void *dst = NULL;
	slot *e;

	pthread_mutex_lock(&st->lock);
	e = find_open(st, id, &s);
	if (e && (off > e->size || len > e->size - off))
		s = gfn__fail(GFN_ERANGE,
		              "write of %zu bytes at %zu passes the end (%zu)",
		              len, off, e->size);
	else if (e)
		dst = (char *)e->data + off;
	pthread_mutex_unlock(&st->lock);
	/* Copy outside the lock: the creator's reference keeps it alive. */
	if (dst && len)
		memcpy(dst, src, len);
	return s;
}

gfn_status gfn_store_map(gfn_store *st, gfn_object id, void **data,
                         size_t *size)
{
	gfn_status s = GFN_OK;
	slot *e;

	pthread_mutex_lock(&st->lock);
	e = find_open(st, id, &s);
	if (e) {
		*data = e->data;
		*size = e->size;
	}
	pthread_mutex_unlock(&st->lock);
	return s;
}

gfn_status gfn_store_seal(gfn_store *st, gfn_object id)
{
	gfn_status s = GFN_OK;
	slot *e;

	pthread_mutex_lock(&st->lock);
	e = find_open(st, id, &s);
	if (e)
		e->state = ST_SEALED;
	pthread_mutex_unlock(&st->lock);
	return s;
}

static void describe(const slot *e, gfn_tensor *t)
{
	t->data = e->data;
	t->dtype = e->dtype;
	t->ndim = e->ndim;
	memcpy(t->shape, e->shape, sizeof(t->shape));
	t->nbytes = e->size;
}

/* Take a reference to a sealed object. Caller holds the lock. */
static slot *ref_sealed(gfn_store *st, gfn_object id, gfn_status *s)
{
	uint32_t i;
	slot *e = find(st, id, s, &i);
	char b[48];

	if (!e)
		return NULL;
	if (e->state != ST_SEALED) {
		*s = gfn__fail(GFN_ESTATE, "object %s is not sealed",
		               gfn_store_id_str(id, b, sizeof(b)));
		return NULL;
	}
	if (e->refs++ == 0)
		lru_unlink(st, i);
	return e;
}

gfn_status gfn_store_get(gfn_store *st, gfn_object id, gfn_object_view *v)
{
	gfn_status s = GFN_OK;
	slot *e;

	pthread_mutex_lock(&st->lock);
	e = ref_sealed(st, id, &s);
	if (e) {
		v->data = e->data;
		v->size = e->size;
		v->dtype = e->dtype;
		v->ndim = e->ndim;
		memcpy(v->shape, e->shape, sizeof(v->shape));
	}
	pthread_mutex_unlock(&st->lock);
	return s;
}

/* Drop a reference by slot; frees or caches at zero. Lock held. */
static void unref(gfn_store *st, uint32_t i)
{
	slot *e = at(st, i);

	if (--e->refs)
		return;
	if (e->state == ST_SEALED && !e->deleted)
		lru_push(st, i);
	else
		free_slot(st, i);
}

/* Like find but also accepts deleted objects still referenced. */
static slot *find_ref(gfn_store *st, gfn_object id, gfn_status *s,
                      uint32_t *idx)
{
	uint32_t i = (uint32_t)id.lo, gen = (uint32_t)(id.lo >> 32);
	char b[48];
	slot *e;

	if (id.hi && gen && i < st->nchunks * CHUNK) {
		e = at(st, i);
		if (e->deleted && e->gen == gen && e->hi == id.hi) {
			*idx = i;
			return e;
		}
	}
	e = find(st, id, s, idx);
	if (e && !e->refs) {
		*s = gfn__fail(GFN_ESTATE,
		               "object %s has no reference to release",
		               gfn_store_id_str(id, b, sizeof(b)));
		return NULL;
	}
	return e;
}

gfn_status gfn_store_release(gfn_store *st, gfn_object id)
{
	gfn_status s = GFN_OK;
	uint32_t i;

	pthread_mutex_lock(&st->lock);
	if (find_ref(st, id, &s, &i))
		unref(st, i);
	pthread_mutex_unlock(&st->lock);
	return s;
}

gfn_status gfn_store_delete(gfn_store *st, gfn_object id)
{
	gfn_status s = GFN_OK;
	uint32_t i;
	slot *e;

	pthread_mutex_lock(&st->lock);
	e = find(st, id, &s, &i);
	if (e && !e->refs) {
		lru_unlink(st, i);
		free_slot(st, i);
	} else if (e) {
		e->deleted = 1; /* freed by the last release */
	}
	pthread_mutex_unlock(&st->lock);
	return s;
}

/* ---- batches for invocations --------------------------------------------------- */

gfn_status gfn_store_acquire(gfn_store *st, size_t n, const gfn_object *ids,
                             gfn_tensor *out)
{
	gfn_status s = GFN_OK;
	size_t k;
	slot *e;

	pthread_mutex_lock(&st->lock);
	for (k = 0; k < n; k++) {
		e = ref_sealed(st, ids[k], &s);
		if (!e)
			break;
		describe(e, &out[k]);
	}
	while (k < n && k-- > 0) /* undo on failure */
		unref(st, (uint32_t)ids[k].lo);
	pthread_mutex_unlock(&st->lock);
	return s;
}

void gfn_store_release_n(gfn_store *st, size_t n, const gfn_object *ids)
{
	pthread_mutex_lock(&st->lock);
	for (size_t k = 0; k < n; k++) {
		gfn_status s;
		uint32_t i;
		if (find_ref(st, ids[k], &s, &i))
			unref(st, i);
	}
	pthread_mutex_unlock(&st->lock);
}

gfn_status gfn_store_create_n(gfn_store *st, size_t n, gfn_tensor *t,
                              gfn_object *ids)
{
	gfn_status s = GFN_OK;
	size_t k, size;

	pthread_mutex_lock(&st->lock);
	for (k = 0; k < n; k++) {
		s = check_shape(t[k].dtype, t[k].ndim, t[k].shape, &size);
		if (s == GFN_OK)
			s = create_locked(st, t[k].dtype, t[k].ndim, t[k].shape,
			                  size, &ids[k], &t[k].data);
		if (s != GFN_OK)
			break;
		t[k].nbytes = size;
	}
	while (s != GFN_OK && k-- > 0)
		free_slot(st, (uint32_t)ids[k].lo);
	pthread_mutex_unlock(&st->lock);
	return s;
}

void gfn_store_seal_n(gfn_store *st, size_t n, const gfn_object *ids)
{
	pthread_mutex_lock(&st->lock);
	for (size_t k = 0; k < n; k++)
		at(st, (uint32_t)ids[k].lo)->state = ST_SEALED;
	pthread_mutex_unlock(&st->lock);
}

void gfn_store_discard_n(gfn_store *st, size_t n, const gfn_object *ids)
{
	pthread_mutex_lock(&st->lock);
	for (size_t k = 0; k < n; k++) {
		gfn_status s;
		uint32_t i;
		slot *e = find_ref(st, ids[k], &s, &i);
		if (!e)
			continue;
		e->deleted = 1;
		unref(st, i);
	}
	pthread_mutex_unlock(&st->lock);
}

void gfn_store_get_stats(gfn_store *st, gfn_store_stats *out)
{
	pthread_mutex_lock(&st->lock);
	out->objects = st->nobjects;
	out->bytes = st->bytes;
	out->evictions = st->evictions;
	out->host_allocs = st->host_allocs;
	pthread_mutex_unlock(&st->lock);
}
