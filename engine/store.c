/*
 * store.c - the object store: objects in shared-memory segments (see
 * store.h and docs/store.md).
 *
 * The engine's records are private: a table of object slots (grown a
 * chunk at a time and never shrunk, so a stale id can always be looked at
 * safely), the block records of shm_alloc.c, the segments and a record
 * per tenant. Segments carry a published copy of each object's record in
 * its slot header, for client processes; the store never reads one back
 * to decide anything, it only checks them for clients (verify_header).
 *
 * An id is (64 bits from getrandom, generation << 32 | slot): the slot
 * finds the entry at once, the generation rejects ids of freed objects
 * (GFN_ESTALE) and the random half rejects forged ones (GFN_ENOENT).
 *
 * Space: object bytes are limited by the capacity (and, per tenant, the
 * quota); mapped segments by a budget of whole segments for capacity +
 * 1/4, plus one, which leaves room for slot headers, rounding,
 * fragmentation and several tenants' segments. Each
 * tenant's objects go in that tenant's segments only, because a client
 * maps whole segments. A create that does not fit evicts sealed,
 * unreferenced objects (least recently used first), maps a new segment
 * while the budget allows, retires empty segments of other tenants to
 * make budget, and otherwise fails with GFN_ENOMEM at once.
 *
 * Reference rule: create gives the caller one reference; get adds one;
 * release drops one. A sealed object with no reference stays cached on
 * the LRU lists until deleted or evicted; an unsealed or deleted object
 * is freed when its last reference goes. One mutex guards everything:
 * every operation is short, and bytes are copied outside it.
 */
#include "engine/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "engine/store_impl.h"
#include "runtime/numa.h"
#include "runtime/util.h"

const char *gfn_store_id_str(gfn_object id, char *buf, size_t len)
{
	snprintf(buf, len, "%016" PRIx64 ":%u/%u", id.hi,
	         (unsigned)(id.lo & 0xffffffffu), (unsigned)(id.lo >> 32));
	return buf;
}

/* The random half of a new id: 64 bits from the kernel's CSPRNG. */
static gfn_status next_random(gfn_store *st, uint64_t *out)
{
	do {
		if (!st->nrnd) {
			ssize_t r = getrandom(st->rnd, sizeof(st->rnd), 0);

			if (r != (ssize_t)sizeof(st->rnd))
				return gfn__fail(GFN_ESYS, "getrandom: %s",
				                 strerror(errno));
			st->nrnd = RAND_WORDS;
		}
		*out = st->rnd[--st->nrnd];
		st->rnd[st->nrnd] = 0; /* a used id is not kept around */
	} while (!*out);               /* hi == 0 marks a free slot */
	return GFN_OK;
}

/* ---- tenants ------------------------------------------------------------ */

/* The record of tenant id, made on first use; NULL when the table is full. */
static tenant_rec *tenant_get(gfn_store *st, uint32_t id, gfn_status *s)
{
	uint32_t h = (id * 2654435761u) & (MAX_TENANTS - 1);

	for (uint32_t k = 0; k < MAX_TENANTS; k++) {
		tenant_rec **p = &st->tenants[(h + k) & (MAX_TENANTS - 1)];

		if (*p && (*p)->id == id)
			return *p;
		if (*p)
			continue;
		*p = calloc(1, sizeof(**p) +
		                       (size_t)st->nnodes * sizeof(gfn_arena));
		if (!*p)
			break;
		(*p)->id = id;
		(*p)->lru.head = (*p)->lru.tail = NIL;
		for (int n = 0; n < st->nnodes; n++)
			gfn__arena_init(&(*p)->arena[n]);
		st->host_allocs++;
		return *p;
	}
	*s = gfn__fail(GFN_ENOMEM, "no room for tenant %u (at most %d)", id,
	               MAX_TENANTS);
	return NULL;
}

/* ---- lists -------------------------------------------------------------------- */

static void list_unlink(gfn_store *st, list *l, int tl, uint32_t i)
{
	links *x = lk(st, i, tl);

	if (x->prev != NIL)
		lk(st, x->prev, tl)->next = x->next;
	else
		l->head = x->next;
	if (x->next != NIL)
		lk(st, x->next, tl)->prev = x->prev;
	else
		l->tail = x->prev;
	x->prev = x->next = NIL;
}

static void list_push(gfn_store *st, list *l, int tl, uint32_t i)
{
	links *x = lk(st, i, tl);

	x->next = NIL;
	x->prev = l->tail;
	if (l->tail != NIL)
		lk(st, l->tail, tl)->next = i;
	else
		l->head = i;
	l->tail = i;
}

static void lru_unlink(gfn_store *st, uint32_t i)
{
	slot *e = at(st, i);

	if (!e->cached)
		return;
	list_unlink(st, &st->lru, 0, i);
	list_unlink(st, &e->t->lru, 1, i);
	e->cached = 0;
}

static void lru_push(gfn_store *st, uint32_t i)
{
	slot *e = at(st, i);

	list_push(st, &st->lru, 0, i);
	list_push(st, &e->t->lru, 1, i);
	e->cached = 1;
}

/* Add a chunk of free slots. */
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
		c[i].gl.next = st->free_head;
		st->free_head = st->nchunks * CHUNK + i;
	}
	st->nchunks++;
	st->host_allocs++;
	return GFN_OK;
}

/* ---- slot headers --------------------------------------------------------------- */

void gfn__store_to_shm(gfn_store *st, uint32_t i, gfn_shm_slot *h)
{
	slot *e = at(st, i);
	gfn_object id = id_of(st, i);

	h->id_hi = id.hi;
	h->id_lo = id.lo;
	h->tenant = e->t->id;
	h->refs = e->refs;
	h->state = e->state == ST_SEALED ? GFN_SHM_SEALED : GFN_SHM_OPEN;
	h->dtype = (uint8_t)e->dtype;
	h->ndim = (uint8_t)e->ndim;
	memcpy(h->shape, e->shape, sizeof(h->shape));
	h->size = e->size;
	h->off = e->off;
	h->block = (uint64_t)gfn__blk(&st->blocks, e->blk)->len * G;
}

/* Publish slot i's state and references in its header. */
static void publish(gfn_store *st, uint32_t i)
{
	slot *e = at(st, i);
	gfn_shm_slot h = {
	        .tenant = e->t->id,
	        .refs = e->refs,
	        .state = e->state == ST_SEALED ? GFN_SHM_SEALED : GFN_SHM_OPEN,
	        .dtype = (uint8_t)e->dtype,
	        .ndim = (uint8_t)e->ndim,
	        .off = e->off,
	};

	gfn__shm_slot_update(st->segs[e->seg]->map.base, &h);
}

/*
 * Check slot i's header before a client relies on it; a corrupt one is
 * rewritten from the record (so the next reader finds it whole) and the
 * call fails.
 */
static gfn_status verify_header(gfn_store *st, uint32_t i)
{
	slot *e = at(st, i);
	seg *sg = st->segs[e->seg];
	gfn_shm_slot want, got;
	gfn_status s;
	char why[256], b[48];

	gfn__store_to_shm(st, i, &want);
	s = gfn__shm_slot_parse(sg->map.base, sg->map.size, e->off, &got);
	if (s == GFN_OK && gfn__shm_slot_same(&want, &got))
		return GFN_OK;
	snprintf(why, sizeof(why), "%s",
	         s == GFN_OK ? "it describes something else"
	                     : gfn_error_detail());
	gfn__shm_slot_write(sg->map.base, &want);
	gfn__log(GFN_LOG_WARN, "store: slot header of %s was corrupt: %s",
	         gfn_store_id_str(id_of(st, i), b, sizeof(b)), why);
	return gfn__fail(GFN_EINVAL,
	                 "slot header of object %s was corrupt (%s); "
	                 "restored from the engine's record",
	                 b, why);
}

/* ---- segments ---------------------------------------------------------------------- */

static size_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096;
}

static size_t sat_add(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t round_up(size_t x, size_t a)
{
	return x > SIZE_MAX - a ? SIZE_MAX / a * a : (x + a - 1) / a * a;
}

static uint32_t free_seg_index(gfn_store *st)
{
	for (uint32_t k = 0; k < MAX_SEGS; k++)
		if (!st->segs[k])
			return k;
	return NIL;
}

/* Unmap an empty segment for good. */
static void retire(gfn_store *st, uint32_t idx)
{
	seg *sg = st->segs[idx];

	gfn__arena_remove(&st->blocks, &sg->t->arena[sg->node], sg->head);
	if (st->on_region_gone)
		st->on_region_gone(st->region_ctx, sg->map.base, sg->map.size);
	st->mapped -= sg->map.size;
	/* Punch: clients that still map it must not keep its pages alive. */
	gfn__shm_close(&sg->map, 1);
	free(sg);
	st->segs[idx] = NULL;
	st->nsegs--;
	st->retired++;
	st->epoch++;
}

/* Retire one empty segment; 0 when there is none or it is not allowed. */
static int retire_one(gfn_store *st)
{
	if (st->on_region && !st->on_region_gone)
		return 0; /* the engine could not drop its registration */
	for (uint32_t k = 0; k < st->nseg_idx; k++) {
		if (st->segs[k] && !st->segs[k]->live) {
			retire(st, k);
			return 1;
		}
	}
	return 0;
}

/*
 * Bind a fresh segment's pages to its node before anything touches them,
 * when the node exists here; then touch the first (the header goes there)
 * and see where it went. Preferred, not bound: a node short of memory
 * spills over rather than fail a page fault (SIGBUS in whoever touched).
 * A refusal is logged and the segment stays unbound: placement is worth
 * having, not worth failing a create for.
 */
static void bind_segment(seg *sg)
{
	int got;

	if (!gfn__numa_node_exists(sg->node))
		return; /* a node only a synthetic topology has */
	if (gfn__numa_bind(sg->map.base, sg->map.size, sg->node,
	                   GFN_NUMA_PREFERRED) != GFN_OK) {
		gfn__log(GFN_LOG_WARN, "store: segment not bound: %s",
		         gfn_error_detail());
		return;
	}
	sg->bound = 1;
	memset(sg->map.base, 0, G); /* first touch, under the policy */
	got = gfn__numa_page_node(sg->map.base);
	if (got != sg->node)
		gfn__log(GFN_LOG_WARN,
		         "store: segment for node %d got its first page on "
		         "node %d (node short of memory?)",
		         sg->node, got);
}

/* A new, announced segment of size bytes for t on node at index idx. */
static gfn_status map_segment(gfn_store *st, tenant_rec *t, int node,
                              size_t size, uint32_t idx)
{
	seg *sg = calloc(1, sizeof(*sg));
	gfn_shm_seg_info info;
	char name[48];
	gfn_status s;

	if (!sg)
		return gfn__fail(GFN_ENOMEM, "no memory for a segment");
	if (!++st->next_seg_id)
		st->next_seg_id = 1; /* 0 is never a segment */
	snprintf(name, sizeof(name), "gfn-store-t%u-n%d-s%u", t->id, node,
	         st->next_seg_id);
	if ((s = gfn__shm_create(size, name, &sg->map)) != GFN_OK)
		goto err_free;
	sg->node = node;
	bind_segment(sg);
	info = (gfn_shm_seg_info){st->next_seg_id, t->id, size, G};
	gfn__shm_seg_write(sg->map.base, &info);
	if (st->on_region &&
	    (s = st->on_region(st->region_ctx, sg->map.base, size)) != GFN_OK)
		goto err_close;
	s = gfn__arena_add(&st->blocks, &t->arena[node], idx, 1,
	                   (uint32_t)(size / G - 1), &sg->head);
	if (s != GFN_OK)
		goto err_gone;
	sg->id = st->next_seg_id;
	sg->t = t;
	st->segs[idx] = sg;
	return GFN_OK;

err_gone:
	if (st->on_region_gone)
		st->on_region_gone(st->region_ctx, sg->map.base, size);
err_close:
	gfn__shm_close(&sg->map, 0);
err_free:
	free(sg);
	return s;
}

/*
 * Map a segment for t on node that holds a block of g granules. GFN_EBUSY
 * (internal, no detail) when the budget or the segment table is full.
 */
static gfn_status add_segment(gfn_store *st, tenant_rec *t, int node,
                              uint32_t g)
{
	size_t bytes = ((size_t)g + 1) * G, size = st->seg_size;
	uint32_t idx;
	gfn_status s;

	if (bytes > size)
		size = round_up(bytes, page_size());
	if (size / G - 1 > UINT32_MAX)
		return gfn__fail(GFN_ENOMEM, "a %zu-byte segment is too big",
		                 size);
	if (size > st->budget - st->mapped || (idx = free_seg_index(st)) == NIL)
		return GFN_EBUSY;
	if ((s = map_segment(st, t, node, size, idx)) != GFN_OK)
		return s;
	if (idx >= st->nseg_idx)
		st->nseg_idx = idx + 1;
	st->mapped += size;
	st->nsegs++;
	st->host_allocs++;
	return GFN_OK;
}

/* ---- space ------------------------------------------------------------------------- */

/* Return slot i and its block; the slot gets a new generation. */
static void free_slot(gfn_store *st, uint32_t i)
{
	slot *e = at(st, i);
	seg *sg = st->segs[e->seg];

	gfn__shm_slot_clear(sg->map.base, e->off);
	gfn__arena_free(&st->blocks, &e->t->arena[sg->node], e->blk);
	sg->live--;
	e->t->bytes -= e->size;
	e->t->objects--;
	st->bytes -= e->size;
	st->nobjects--;
	e->hi = 0;
	e->data = NULL;
	e->t = NULL;
	e->state = ST_FREE;
	e->deleted = 0;
	e->gen = e->gen + 1 ? e->gen + 1 : 1;
	e->gl.next = st->free_head;
	st->free_head = i;
}

static void evict(gfn_store *st, uint32_t i)
{
	lru_unlink(st, i);
	free_slot(st, i);
	st->evictions++;
}

static int over_quota(const gfn_store *st, const tenant_rec *t, size_t need)
{
	return t->id != GFN_TENANT_ENGINE && st->quota &&
	       (need > st->quota || t->bytes > st->quota - need);
}

static int fits(const gfn_store *st, const tenant_rec *t, size_t need)
{
	return need <= st->capacity && st->bytes <= st->capacity - need &&
	       st->nobjects < st->max_objects && !over_quota(st, t, need);
}

/* Evict cached objects until one more of need bytes fits the limits. */
static gfn_status make_room(gfn_store *st, tenant_rec *t, size_t need)
{
	while (!fits(st, t, need)) {
		int quota = over_quota(st, t, need);
		uint32_t victim = quota ? t->lru.head : st->lru.head;

		if (victim == NIL)
			return gfn__fail(
			        GFN_ENOMEM,
			        "%s: %zu bytes wanted, %zu of %zu in use "
			        "(tenant %u: %" PRIu64 "), %" PRIu64
			        " of %zu objects, none evictable",
			        quota ? "tenant quota reached" : "store full",
			        need, st->bytes,
			        quota ? st->quota : st->capacity, t->id,
			        t->bytes, st->nobjects, st->max_objects);
		evict(st, victim);
	}
	return GFN_OK;
}

/*
 * A block of g granules in one of t's segments on node: from their free
 * blocks, else a new segment, else after retiring an empty segment, else
 * after evicting (t's own cached objects first).
 */
static gfn_status place(gfn_store *st, tenant_rec *t, int node, uint32_t g,
                        uint32_t *blk)
{
	gfn_arena *a = &t->arena[node];

	for (;;) {
		gfn_status s;
		uint32_t victim;

		if (gfn__arena_alloc(&st->blocks, a, g, blk) == GFN_OK)
			return GFN_OK;
		s = add_segment(st, t, node, g);
		if (s == GFN_OK) {
			if (gfn__arena_alloc(&st->blocks, a, g, blk))
				return gfn__fail(GFN_EINTERNAL,
				                 "new segment has no room");
			return GFN_OK;
		}
		if (s != GFN_EBUSY)
			return s;
		if (retire_one(st))
			continue;
		victim = t->lru.head != NIL ? t->lru.head : st->lru.head;
		if (victim == NIL)
			return gfn__fail(
			        GFN_ENOMEM,
			        "no segment has room for %u more "
			        "bytes (%zu of %zu mapped) and nothing "
			        "is evictable",
			        g * G, st->mapped, st->budget);
		evict(st, victim);
	}
}

/* ---- lookup -------------------------------------------------------------------------- */

static gfn_status fail_id(gfn_status s, gfn_object id, const char *what)
{
	char b[48];

	return gfn__fail(s, "object %s %s", gfn_store_id_str(id, b, sizeof(b)),
	                 what);
}

/* Slot i (with generation gen) exists and is id's, deleted or not. */
static slot *slot_of(gfn_store *st, gfn_object id, uint32_t *idx)
{
	uint32_t i = (uint32_t)id.lo, gen = (uint32_t)(id.lo >> 32);
	slot *e;

	if (!id.hi || !gen || i >= st->nchunks * CHUNK)
		return NULL;
	e = at(st, i);
	if (e->gen != gen || e->hi != id.hi || e->state == ST_FREE)
		return NULL;
	*idx = i;
	return e;
}

/* Why id does not resolve: unknown (ENOENT) or gone (ESTALE). */
static gfn_status lookup_error(gfn_store *st, gfn_object id)
{
	uint32_t i = (uint32_t)id.lo, gen = (uint32_t)(id.lo >> 32);
	slot *e;

	if (!id.hi || !gen || i >= st->nchunks * CHUNK)
		return fail_id(GFN_ENOENT, id, "does not exist");
	e = at(st, i);
	/* A slot's generation moves on when its object is freed, so one at
	   or past the slot's was never issued, or was forged. */
	if (gen > e->gen || (gen == e->gen && (e->hi != id.hi || !e->hi)))
		return fail_id(GFN_ENOENT, id, "does not exist");
	return fail_id(GFN_ESTALE, id, "was deleted or evicted");
}

static gfn_status check_tenant(const slot *e, uint32_t caller, gfn_object id)
{
	if (caller == GFN_TENANT_ENGINE || e->t->id == caller)
		return GFN_OK;
	return fail_id(GFN_EACCES, id, "belongs to another tenant");
}

/* The slot of a live (not deleted) object caller may use, or NULL. */
static slot *find(gfn_store *st, uint32_t caller, gfn_object id, gfn_status *s,
                  uint32_t *idx)
{
	slot *e = slot_of(st, id, idx);

	if (!e || e->deleted) {
		*s = lookup_error(st, id);
		return NULL;
	}
	if ((*s = check_tenant(e, caller, id)) != GFN_OK)
		return NULL;
	return e;
}

/* An unsealed object, for writing. */
static slot *find_open(gfn_store *st, uint32_t caller, gfn_object id,
                       gfn_status *s, uint32_t *idx)
{
	slot *e = find(st, caller, id, s, idx);

	if (e && e->state != ST_OPEN) {
		*s = fail_id(GFN_ESTATE, id, "is sealed");
		return NULL;
	}
	return e;
}

/* Like find but also accepts deleted objects still referenced. */
static slot *find_ref(gfn_store *st, uint32_t caller, gfn_object id,
                      gfn_status *s, uint32_t *idx)
{
	slot *e = slot_of(st, id, idx);

	if (!e || (e->deleted && !e->refs)) {
		*s = lookup_error(st, id);
		return NULL;
	}
	if ((*s = check_tenant(e, caller, id)) != GFN_OK)
		return NULL;
	if (!e->refs) {
		*s = fail_id(GFN_ESTATE, id, "has no reference to release");
		return NULL;
	}
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
		if (shape[d] && n > SIZE_MAX / 4 / (size_t)shape[d])
			return gfn__fail(GFN_ERANGE, "tensor size overflows");
		n *= (size_t)shape[d];
	}
	*size = n;
	return GFN_OK;
}

static void fill_loc(gfn_store *st, uint32_t i, gfn_store_loc *loc)
{
	slot *e = at(st, i);
	seg *sg = st->segs[e->seg];

	if (!loc)
		return;
	loc->seg_id = sg->id;
	loc->tenant = e->t->id;
	loc->seg_size = sg->map.size;
	loc->off = e->off;
	loc->data = e->data;
	loc->size = e->size;
	loc->dtype = e->dtype;
	loc->ndim = e->ndim;
	memcpy(loc->shape, e->shape, sizeof(loc->shape));
	loc->node = sg->node;
}

/* ---- create ---------------------------------------------------------------------------- */

/* Fill free slot i as a new object in block blk; one reference. */
static void init_slot(gfn_store *st, uint32_t i, tenant_rec *t, uint32_t blk,
                      const gfn_tensor *shape_of, size_t size, uint64_t hi)
{
	slot *e = at(st, i);
	gfn_blk *k = gfn__blk(&st->blocks, blk);
	seg *sg = st->segs[k->seg];
	gfn_shm_slot h;

	st->free_head = e->gl.next;
	e->hi = hi;
	e->state = ST_OPEN;
	e->deleted = e->cached = 0;
	e->dtype = shape_of->dtype;
	e->ndim = shape_of->ndim;
	memset(e->shape, 0, sizeof(e->shape));
	if (e->ndim)
		memcpy(e->shape, shape_of->shape,
		       (size_t)e->ndim * sizeof(*e->shape));
	e->size = size;
	e->t = t;
	e->seg = k->seg;
	e->blk = blk;
	e->off = (uint64_t)k->off * G;
	e->data = (char *)sg->map.base + e->off + G;
	e->refs = 1;
	e->gl.prev = e->gl.next = e->tl.prev = e->tl.next = NIL;
	sg->live++;
	t->bytes += size;
	t->objects++;
	st->bytes += size;
	st->nobjects++;
	gfn__store_to_shm(st, i, &h);
	gfn__shm_slot_write(sg->map.base, &h);
}

static gfn_status create_locked(gfn_store *st, tenant_rec *t, int node,
                                const gfn_tensor *shape_of, size_t size,
                                gfn_object *out, uint32_t *idx)
{
	uint64_t block = gfn__shm_block_bytes(size), hi;
	uint32_t blk, i;
	gfn_status s;

	if (!block || size > st->capacity || block / G >= UINT32_MAX)
		return gfn__fail(GFN_ENOMEM,
		                 "store full: %zu bytes wanted, capacity %zu",
		                 size, st->capacity);
	if ((s = make_room(st, t, size)) != GFN_OK)
		return s;
	if (st->free_head == NIL && (s = grow_table(st)) != GFN_OK)
		return s;
	if ((s = next_random(st, &hi)) != GFN_OK)
		return s;
	if ((s = place(st, t, node, (uint32_t)(block / G), &blk)) != GFN_OK)
		return s;
	i = st->free_head;
	init_slot(st, i, t, blk, shape_of, size, hi);
	*out = id_of(st, i);
	*idx = i;
	return GFN_OK;
}

/* The node caller_node names: a node of the store, or 0 when unknown. */
static int caller_node_of(const gfn_store *st, int caller_node)
{
	if (caller_node == GFN_STORE_NODE_HERE)
		caller_node = gfn__numa_current_node();
	return caller_node >= 0 && caller_node < st->nnodes ? caller_node : 0;
}

/* The node a new object goes on (see gfn_store_create_at). */
static gfn_status pick_node(const gfn_store *st, int node, int caller_node,
                            int *out)
{
	if (node < -1 || node >= st->nnodes)
		return gfn__fail(GFN_EINVAL,
		                 "NUMA node %d is not a node of the store "
		                 "(0..%d, or -1 for no hint)",
		                 node, st->nnodes - 1);
	*out = node >= 0 ? node : caller_node_of(st, caller_node);
	return GFN_OK;
}

gfn_status gfn_store_create_at(gfn_store *st, uint32_t tenant, int node,
                               int caller_node, gfn_dtype dtype, int ndim,
                               const int64_t *shape, gfn_object *out,
                               gfn_store_loc *loc)
{
	gfn_tensor t = {.dtype = dtype, .ndim = ndim};
	gfn_status s = check_shape(dtype, ndim, shape, &t.nbytes);
	tenant_rec *tr;
	uint32_t i;

	if (s == GFN_OK)
		s = pick_node(st, node, caller_node, &node);
	if (s != GFN_OK)
		return s;
	if (ndim)
		memcpy(t.shape, shape, (size_t)ndim * sizeof(*shape));
	pthread_mutex_lock(&st->lock);
	tr = tenant_get(st, tenant, &s);
	if (tr)
		s = create_locked(st, tr, node, &t, t.nbytes, out, &i);
	if (s == GFN_OK)
		fill_loc(st, i, loc);
	pthread_mutex_unlock(&st->lock);
	return s;
}

gfn_status gfn_store_create_as(gfn_store *st, uint32_t tenant, gfn_dtype dtype,
                               int ndim, const int64_t *shape, gfn_object *out,
                               gfn_store_loc *loc)
{
	return gfn_store_create_at(st, tenant, -1, GFN_STORE_NODE_HERE, dtype,
	                           ndim, shape, out, loc);
}

gfn_status gfn_store_create_object_on(gfn_store *st, gfn_dtype dtype, int ndim,
                                      const int64_t *shape, int node,
                                      gfn_object *out, void **data)
{
	gfn_store_loc loc = {0};
	gfn_status s = gfn_store_create_at(st, GFN_TENANT_ENGINE, node,
	                                   GFN_STORE_NODE_HERE, dtype, ndim,
	                                   shape, out, &loc);

	if (s == GFN_OK && data)
		*data = loc.data;
	return s;
}

gfn_status gfn_store_create_object(gfn_store *st, gfn_dtype dtype, int ndim,
                                   const int64_t *shape, gfn_object *out,
                                   void **data)
{
	return gfn_store_create_object_on(st, dtype, ndim, shape, -1, out,
	                                  data);
}

int gfn_store_numa_nodes(const gfn_store *st)
{
	return st->nnodes;
}

int gfn_store_object_node(gfn_store *st, gfn_object id)
{
	int node = -1;
	uint32_t i;
	slot *e;

	pthread_mutex_lock(&st->lock);
	e = slot_of(st, id, &i);
	if (e && !e->deleted)
		node = st->segs[e->seg]->node;
	pthread_mutex_unlock(&st->lock);
	return node;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

gfn_status gfn_store_write(gfn_store *st, gfn_object id, size_t off,
                           const void *src, size_t len)
{
	gfn_status s = GFN_OK;
	void *dst = NULL;
	uint32_t i;
	slot *e;

	pthread_mutex_lock(&st->lock);
	e = find_open(st, GFN_TENANT_ENGINE, id, &s, &i);
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

gfn_status gfn_store_map_as(gfn_store *st, uint32_t tenant, gfn_object id,
                            gfn_store_loc *loc)
{
	gfn_status s = GFN_OK;
	uint32_t i;

	pthread_mutex_lock(&st->lock);
	if (find_open(st, tenant, id, &s, &i))
		fill_loc(st, i, loc);
	pthread_mutex_unlock(&st->lock);
	return s;
}

gfn_status gfn_store_map(gfn_store *st, gfn_object id, void **data,
                         size_t *size)
{
	gfn_store_loc loc = {0};
	gfn_status s = gfn_store_map_as(st, GFN_TENANT_ENGINE, id, &loc);

	if (s == GFN_OK) {
		*data = loc.data;
		*size = loc.size;
	}
	return s;
}

gfn_status gfn_store_seal_as(gfn_store *st, uint32_t tenant, gfn_object id)
{
	gfn_status s = GFN_OK;
	uint32_t i;
	slot *e;

	pthread_mutex_lock(&st->lock);
	e = find_open(st, tenant, id, &s, &i);
	if (e && tenant != GFN_TENANT_ENGINE)
		s = verify_header(st, i);
	if (e && s == GFN_OK) {
		e->state = ST_SEALED;
		publish(st, i);
	}
	pthread_mutex_unlock(&st->lock);
	return s;
}

gfn_status gfn_store_seal(gfn_store *st, gfn_object id)
{
	return gfn_store_seal_as(st, GFN_TENANT_ENGINE, id);
}

/* Take a reference to a sealed object. Caller holds the lock. */
static slot *ref_sealed(gfn_store *st, uint32_t caller, gfn_object id,
                        gfn_status *s, uint32_t *idx)
{
	slot *e = find(st, caller, id, s, idx);

	if (!e)
		return NULL;
	if (e->state != ST_SEALED) {
		*s = fail_id(GFN_ESTATE, id, "is not sealed");
		return NULL;
	}
	if (e->refs == UINT32_MAX) {
		*s = fail_id(GFN_ENOMEM, id, "has too many references");
		return NULL;
	}
	if (caller != GFN_TENANT_ENGINE &&
	    (*s = verify_header(st, *idx)) != GFN_OK)
		return NULL;
	if (e->refs++ == 0)
		lru_unlink(st, *idx);
	publish(st, *idx);
	return e;
}

gfn_status gfn_store_get_as(gfn_store *st, uint32_t tenant, gfn_object id,
                            gfn_store_loc *loc)
{
	gfn_status s = GFN_OK;
	uint32_t i;

	pthread_mutex_lock(&st->lock);
	if (ref_sealed(st, tenant, id, &s, &i))
		fill_loc(st, i, loc);
	pthread_mutex_unlock(&st->lock);
	return s;
}

gfn_status gfn_store_get(gfn_store *st, gfn_object id, gfn_object_view *v)
{
	gfn_store_loc loc = {0};
	gfn_status s = gfn_store_get_as(st, GFN_TENANT_ENGINE, id, &loc);

	if (s == GFN_OK) {
		v->data = loc.data;
		v->size = loc.size;
		v->dtype = loc.dtype;
		v->ndim = loc.ndim;
		memcpy(v->shape, loc.shape, sizeof(v->shape));
	}
	return s;
}

/* Drop a reference by slot; frees or caches at zero. Lock held. */
static void unref(gfn_store *st, uint32_t i)
{
	slot *e = at(st, i);

	if (--e->refs) {
		publish(st, i);
		return;
	}
	if (e->state == ST_SEALED && !e->deleted) {
		publish(st, i);
		lru_push(st, i);
	} else {
		free_slot(st, i);
	}
}

gfn_status gfn_store_release_as(gfn_store *st, uint32_t tenant, gfn_object id)
{
	gfn_status s = GFN_OK;
	uint32_t i;

	pthread_mutex_lock(&st->lock);
	if (find_ref(st, tenant, id, &s, &i))
		unref(st, i);
	pthread_mutex_unlock(&st->lock);
	return s;
}

void gfn_store_release_count(gfn_store *st, uint32_t tenant, gfn_object id,
                             uint32_t count)
{
	gfn_status s;
	uint32_t i;

	pthread_mutex_lock(&st->lock);
	while (count-- > 0 && find_ref(st, tenant, id, &s, &i))
		unref(st, i);
	pthread_mutex_unlock(&st->lock);
}

gfn_status gfn_store_release(gfn_store *st, gfn_object id)
{
	return gfn_store_release_as(st, GFN_TENANT_ENGINE, id);
}

gfn_status gfn_store_delete_as(gfn_store *st, uint32_t tenant, gfn_object id)
{
	gfn_status s = GFN_OK;
	uint32_t i;
	slot *e;

	pthread_mutex_lock(&st->lock);
	e = find(st, tenant, id, &s, &i);
	if (e && !e->refs) {
		lru_unlink(st, i);
		free_slot(st, i);
	} else if (e) {
		e->deleted = 1; /* freed by the last release */
	}
	pthread_mutex_unlock(&st->lock);
	return s;
}

gfn_status gfn_store_delete(gfn_store *st, gfn_object id)
{
	return gfn_store_delete_as(st, GFN_TENANT_ENGINE, id);
}

/* ---- batches for invocations ------------------------------------------------------------- */

static void describe(const slot *e, gfn_tensor *t)
{
	t->data = e->data;
	t->dtype = e->dtype;
	t->ndim = e->ndim;
	memcpy(t->shape, e->shape, sizeof(t->shape));
	t->nbytes = e->size;
}

/* Fold tenant into the owner of outputs (see gfn_store_acquire). */
static void own(uint32_t tenant, uint32_t *owner, int *mixed)
{
	if (tenant == GFN_TENANT_ENGINE)
		return;
	if (*owner != GFN_TENANT_ENGINE && *owner != tenant)
		*mixed = 1;
	*owner = tenant;
}

gfn_status gfn_store_acquire(gfn_store *st, uint32_t caller, size_t n,
                             const gfn_object *ids, gfn_tensor *out,
                             uint32_t *owner)
{
	uint32_t who = GFN_TENANT_ENGINE, i;
	gfn_status s = GFN_OK;
	int mixed = 0;
	size_t k;
	slot *e;

	pthread_mutex_lock(&st->lock);
	for (k = 0; k < n; k++) {
		e = ref_sealed(st, GFN_TENANT_ENGINE, ids[k], &s, &i);
		if (!e)
			break;
		if (caller != GFN_TENANT_ENGINE && e->t->id != caller &&
		    e->t->id != GFN_TENANT_ENGINE) {
			unref(st, i);
			s = fail_id(GFN_EACCES, ids[k],
			            "belongs to another tenant");
			break;
		}
		describe(e, &out[k]);
		own(e->t->id, &who, &mixed);
	}
	while (k < n && k-- > 0) /* undo on failure */
		unref(st, (uint32_t)ids[k].lo);
	pthread_mutex_unlock(&st->lock);
	if (owner)
		*owner = caller != GFN_TENANT_ENGINE ? caller
		         : mixed                     ? GFN_TENANT_ENGINE
		                                     : who;
	return s;
}

void gfn_store_release_n(gfn_store *st, size_t n, const gfn_object *ids)
{
	pthread_mutex_lock(&st->lock);
	for (size_t k = 0; k < n; k++) {
		gfn_status s;
		uint32_t i;
		if (find_ref(st, GFN_TENANT_ENGINE, ids[k], &s, &i))
			unref(st, i);
	}
	pthread_mutex_unlock(&st->lock);
}

gfn_status gfn_store_create_n(gfn_store *st, uint32_t tenant, size_t n,
                              gfn_tensor *t, gfn_object *ids)
{
	int node = caller_node_of(st, GFN_STORE_NODE_HERE);
	gfn_status s = GFN_OK;
	tenant_rec *tr;
	size_t k = 0, size;
	uint32_t i;

	pthread_mutex_lock(&st->lock);
	tr = tenant == GFN_TENANT_ENGINE ? st->engine_t
	                                 : tenant_get(st, tenant, &s);
	for (; tr && k < n; k++) {
		s = check_shape(t[k].dtype, t[k].ndim, t[k].shape, &size);
		if (s == GFN_OK)
			s = create_locked(st, tr, node, &t[k], size, &ids[k],
			                  &i);
		if (s != GFN_OK)
			break;
		t[k].data = at(st, i)->data;
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
	for (size_t k = 0; k < n; k++) {
		uint32_t i = (uint32_t)ids[k].lo;

		at(st, i)->state = ST_SEALED;
		publish(st, i);
	}
	pthread_mutex_unlock(&st->lock);
}

void gfn_store_discard_n(gfn_store *st, size_t n, const gfn_object *ids)
{
	pthread_mutex_lock(&st->lock);
	for (size_t k = 0; k < n; k++) {
		gfn_status s;
		uint32_t i;
		slot *e = find_ref(st, GFN_TENANT_ENGINE, ids[k], &s, &i);
		if (!e)
			continue;
		e->deleted = 1;
		unref(st, i);
	}
	pthread_mutex_unlock(&st->lock);
}

/* ---- for the socket server ---------------------------------------------------------------- */

static seg *seg_by_id(gfn_store *st, uint32_t id)
{
	for (uint32_t k = 0; k < st->nseg_idx; k++)
		if (st->segs[k] && st->segs[k]->id == id)
			return st->segs[k];
	return NULL;
}

gfn_status gfn_store_segment_fd(gfn_store *st, uint32_t tenant, uint32_t seg_id,
                                int *fd, size_t *size)
{
	gfn_status s = GFN_OK;
	gfn_shm_seg_info info;
	seg *sg;

	pthread_mutex_lock(&st->lock);
	sg = seg_by_id(st, seg_id);
	if (!sg)
		s = gfn__fail(GFN_ENOENT, "no segment %u", seg_id);
	else if (tenant != GFN_TENANT_ENGINE && sg->t->id != tenant)
		s = gfn__fail(GFN_EACCES,
		              "segment %u belongs to another tenant", seg_id);
	if (s == GFN_OK) {
		info = (gfn_shm_seg_info){sg->id, sg->t->id, sg->map.size, G};
		gfn__shm_seg_write(sg->map.base, &info);
		*fd = fcntl(sg->map.fd, F_DUPFD_CLOEXEC, 0);
		*size = sg->map.size;
		if (*fd < 0)
			s = gfn__fail(GFN_ESYS, "dup of segment %u: %s", seg_id,
			              strerror(errno));
	}
	pthread_mutex_unlock(&st->lock);
	return s;
}

uint64_t gfn_store_segments_live(gfn_store *st, uint32_t tenant, size_t n,
                                 const uint32_t *ids)
{
	uint64_t mask = 0;

	pthread_mutex_lock(&st->lock);
	for (size_t k = 0; k < n && k < 64; k++) {
		seg *sg = seg_by_id(st, ids[k]);

		if (sg && (tenant == GFN_TENANT_ENGINE || sg->t->id == tenant))
			mask |= 1ull << k;
	}
	pthread_mutex_unlock(&st->lock);
	return mask;
}

uint32_t gfn_store_epoch(gfn_store *st)
{
	uint32_t e;

	pthread_mutex_lock(&st->lock);
	e = st->epoch;
	pthread_mutex_unlock(&st->lock);
	return e;
}

void gfn_store_count_client(gfn_store *st, int delta)
{
	atomic_fetch_add(&st->clients, (uint64_t)(int64_t)delta);
}

void gfn_store_get_stats(gfn_store *st, gfn_store_stats *out)
{
	pthread_mutex_lock(&st->lock);
	out->objects = st->nobjects;
	out->bytes = st->bytes;
	out->evictions = st->evictions;
	out->host_allocs = st->host_allocs + st->blocks.host_allocs;
	out->segments = st->nsegs;
	out->mapped_bytes = st->mapped;
	out->retired = st->retired;
	pthread_mutex_unlock(&st->lock);
	out->clients = atomic_load(&st->clients);
}

/* ---- create and destroy ------------------------------------------------------------------- */

/* Segment size and mapping budget from the config. */
static void size_segments(gfn_store *st, const gfn_store_config *cfg)
{
	size_t slack = st->capacity / 4;
	size_t want = cfg->segment_size ? cfg->segment_size : DEFAULT_SEG;
	size_t small = sat_add(sat_add(st->capacity, slack), 2 * G);
	size_t most = (size_t)UINT32_MAX / 2 * G;

	if (want > small)
		want = small; /* a small store needs no big segment */
	if (want < MIN_SEG)
		want = MIN_SEG;
	if (want > most)
		want = most;
	st->seg_size = round_up(want, page_size());
	/* Whole segments for the data and slack, and one more: room for a
	   tenant's first segment and for objects of their own segment; and
	   one more per NUMA node past the first, whose objects need
	   segments of their own. */
	st->budget =
	        sat_add(round_up(sat_add(st->capacity, slack), st->seg_size),
	                st->seg_size);
	for (int n = 1; n < st->nnodes; n++)
		st->budget = sat_add(st->budget, st->seg_size);
}

/* The logical NUMA nodes of the config (0: this machine's). */
static gfn_status count_nodes(gfn_store *st, const gfn_store_config *cfg)
{
	int n = cfg->numa_nodes;

	if (!n)
		n = gfn__numa_available() ? gfn__numa_max_node() + 1 : 1;
	if (n > GFN_STORE_MAX_NODES)
		n = cfg->numa_nodes ? n : GFN_STORE_MAX_NODES;
	if (n < 1 || n > GFN_STORE_MAX_NODES)
		return gfn__fail(GFN_EINVAL,
		                 "numa_nodes %d is outside 1..%d (0: this "
		                 "machine's)",
		                 cfg->numa_nodes, GFN_STORE_MAX_NODES);
	st->nnodes = n;
	return GFN_OK;
}

static gfn_status init(gfn_store *st, const gfn_store_config *cfg)
{
	size_t maxobj = cfg->max_objects ? cfg->max_objects : 1;
	gfn_status s;

	if ((s = count_nodes(st, cfg)) != GFN_OK)
		return s;
	st->maxchunks = (uint32_t)((maxobj + CHUNK - 1) / CHUNK);
	st->chunks = calloc(st->maxchunks, sizeof(*st->chunks));
	if (!st->chunks)
		return gfn__fail(GFN_ENOMEM, "no memory for the object table");
	s = gfn__blocks_init(&st->blocks, 2 * (uint64_t)maxobj + 2 * MAX_SEGS);
	if (s != GFN_OK)
		return s;
	st->capacity = cfg->capacity;
	st->max_objects = maxobj;
	st->quota = cfg->tenant_quota;
	size_segments(st, cfg);
	st->free_head = NIL;
	st->lru.head = st->lru.tail = NIL;
	st->on_region = cfg->on_region;
	st->on_region_gone = cfg->on_region_gone;
	st->region_ctx = cfg->region_ctx;
	st->engine_t = tenant_get(st, GFN_TENANT_ENGINE, &s);
	return st->engine_t ? GFN_OK : s;
}

gfn_status gfn_store_create(const gfn_store_config *cfg, gfn_store **out)
{
	gfn_store *st = calloc(1, sizeof(*st));
	gfn_status s;

	*out = NULL;
	if (!st)
		return gfn__fail(GFN_ENOMEM, "no memory for the object store");
	pthread_mutex_init(&st->lock, NULL);
	pthread_mutex_init(&st->server_lock, NULL);
	s = init(st, cfg);
	if (s == GFN_OK && cfg->socket_path)
		s = gfn__store_server_start(st, cfg->socket_path,
		                            cfg->attach_timeout_ms,
		                            &st->server);
	if (s != GFN_OK) {
		char why[512];

		snprintf(why, sizeof(why), "%s", gfn_error_detail());
		gfn_store_destroy(st);
		return gfn__fail(s, "%s", why);
	}
	*out = st;
	return GFN_OK;
}

void gfn_store_shutdown(gfn_store *st)
{
	gfn_store_server *srv;

	if (!st)
		return;
	pthread_mutex_lock(&st->server_lock);
	srv = st->server;
	st->server = NULL;
	pthread_mutex_unlock(&st->server_lock);
	gfn__store_server_stop(srv); /* its thread uses the store lock */
}

void gfn_store_destroy(gfn_store *st)
{
	if (!st)
		return;
	gfn_store_shutdown(st);
	for (uint32_t k = 0; k < st->nseg_idx; k++) {
		if (!st->segs[k])
			continue;
		gfn__shm_close(&st->segs[k]->map, 0);
		free(st->segs[k]);
	}
	for (uint32_t c = 0; c < st->nchunks; c++)
		free(st->chunks[c]);
	free(st->chunks);
	for (int k = 0; k < MAX_TENANTS; k++)
		free(st->tenants[k]);
	gfn__blocks_fini(&st->blocks);
	pthread_mutex_destroy(&st->server_lock);
	pthread_mutex_destroy(&st->lock);
	free(st);
}
