/*
 * store_check.c - gfn_store_check: every invariant of the store's private
 * records and of the slot headers they publish, for tests (store.h).
 */
#include <inttypes.h>

#include "engine/store_impl.h"
#include "runtime/util.h"

/* Walk segment k's blocks; count its allocated ones into *live. */
static gfn_status check_segment(gfn_store *st, uint32_t k, uint64_t *live)
{
	seg *sg = st->segs[k];
	uint32_t expect = 1, n = 0, prev_free = 0, last = NIL;

	for (uint32_t i = sg->head; i != NIL;
	     i = gfn__blk(&st->blocks, i)->next) {
		gfn_blk *b = gfn__blk(&st->blocks, i);

		if (b->seg != k || b->off != expect || !b->len ||
		    b->prev != last)
			return gfn__fail(GFN_EINTERNAL,
			                 "segment %u: block at granule %u "
			                 "(expected %u) is misplaced",
			                 sg->id, b->off, expect);
		if (b->free && prev_free)
			return gfn__fail(GFN_EINTERNAL,
			                 "segment %u: two free blocks side by "
			                 "side at granule %u",
			                 sg->id, b->off);
		prev_free = b->free;
		n += !b->free;
		expect += b->len;
		last = i;
	}
	if ((uint64_t)expect * G != sg->map.size || n != sg->live)
		return gfn__fail(GFN_EINTERNAL,
		                 "segment %u: blocks cover %u granules of "
		                 "%zu, %u allocated but %u live",
		                 sg->id, expect, sg->map.size / G, n, sg->live);
	*live += n;
	return GFN_OK;
}

/* Free granules of t's segments on node, counted block by block. */
static uint64_t free_of(gfn_store *st, const tenant_rec *t, int node)
{
	uint64_t sum = 0;

	for (uint32_t k = 0; k < st->nseg_idx; k++) {
		if (!st->segs[k] || st->segs[k]->t != t ||
		    st->segs[k]->node != node)
			continue;
		for (uint32_t i = st->segs[k]->head; i != NIL;
		     i = gfn__blk(&st->blocks, i)->next)
			if (gfn__blk(&st->blocks, i)->free)
				sum += gfn__blk(&st->blocks, i)->len;
	}
	return sum;
}

/* Slot i agrees with its block, its header and the caching rule. */
static gfn_status check_slot(gfn_store *st, uint32_t i)
{
	slot *e = at(st, i);
	gfn_blk *b = gfn__blk(&st->blocks, e->blk);
	gfn_shm_slot want, got;
	char id[48];
	gfn_status s;

	gfn_store_id_str(id_of(st, i), id, sizeof(id));
	if (!e->t || e->seg >= st->nseg_idx || !st->segs[e->seg] ||
	    st->segs[e->seg]->t != e->t || b->free || b->seg != e->seg ||
	    (uint64_t)b->off * G != e->off)
		return gfn__fail(GFN_EINTERNAL,
		                 "object %s: record and block disagree", id);
	if (e->cached != (e->state == ST_SEALED && !e->refs && !e->deleted) ||
	    (!e->refs && !e->cached))
		return gfn__fail(GFN_EINTERNAL,
		                 "object %s: refs %u, cached %u, state %u", id,
		                 e->refs, e->cached, e->state);
	gfn__store_to_shm(st, i, &want);
	s = gfn__shm_slot_parse(st->segs[e->seg]->map.base,
	                        st->segs[e->seg]->map.size, e->off, &got);
	if (s != GFN_OK || !gfn__shm_slot_same(&want, &got) ||
	    got.refs != e->refs)
		return gfn__fail(GFN_EINTERNAL, "object %s: slot header %s", id,
		                 s == GFN_OK ? "differs" : "is corrupt");
	return GFN_OK;
}

static uint32_t list_len(gfn_store *st, const list *l, int tl)
{
	uint32_t n = 0;

	for (uint32_t i = l->head; i != NIL && n <= st->nchunks * CHUNK;
	     i = lk(st, i, tl)->next)
		n++;
	return n;
}

static gfn_status check_slots(gfn_store *st, uint64_t *objects, size_t *bytes)
{
	uint32_t cached = 0;
	gfn_status s;

	for (uint32_t i = 0; i < st->nchunks * CHUNK; i++) {
		slot *e = at(st, i);

		if (e->state == ST_FREE)
			continue;
		if ((s = check_slot(st, i)) != GFN_OK)
			return s;
		++*objects;
		*bytes += e->size;
		cached += e->cached;
	}
	if (list_len(st, &st->lru, 0) != cached)
		return gfn__fail(GFN_EINTERNAL, "LRU holds %u, %u are cached",
		                 list_len(st, &st->lru, 0), cached);
	return GFN_OK;
}

/* Every arena of t lists the free granules of t's segments on its node. */
static gfn_status check_arenas(gfn_store *st, const tenant_rec *t)
{
	for (int n = 0; n < st->nnodes; n++) {
		uint64_t listed = t->arena[n].free_granules;

		if (listed != free_of(st, t, n))
			return gfn__fail(GFN_EINTERNAL,
			                 "tenant %u, node %d: %" PRIu64
			                 " free granules listed, %" PRIu64
			                 " in its segments",
			                 t->id, n, listed, free_of(st, t, n));
	}
	return GFN_OK;
}

static gfn_status check_tenants(gfn_store *st)
{
	uint64_t objects = 0, bytes = 0, cached = 0;
	gfn_status s;

	for (int k = 0; k < MAX_TENANTS; k++) {
		tenant_rec *t = st->tenants[k];

		if (!t)
			continue;
		if ((s = check_arenas(st, t)) != GFN_OK)
			return s;
		objects += t->objects;
		bytes += t->bytes;
		cached += list_len(st, &t->lru, 1);
	}
	if (objects != st->nobjects || bytes != st->bytes ||
	    cached != list_len(st, &st->lru, 0))
		return gfn__fail(GFN_EINTERNAL,
		                 "tenants hold %" PRIu64 " objects, %" PRIu64
		                 " bytes, %" PRIu64 " cached; the store "
		                 "counts %" PRIu64 ", %zu",
		                 objects, bytes, cached, st->nobjects,
		                 st->bytes);
	return GFN_OK;
}

static gfn_status check_locked(gfn_store *st)
{
	uint64_t live = 0, objects = 0;
	size_t bytes = 0, mapped = 0;
	gfn_status s;

	for (uint32_t k = 0; k < st->nseg_idx; k++) {
		if (!st->segs[k])
			continue;
		if (st->segs[k]->node < 0 || st->segs[k]->node >= st->nnodes)
			return gfn__fail(
			        GFN_EINTERNAL, "segment %u is on node %d of %d",
			        st->segs[k]->id, st->segs[k]->node, st->nnodes);
		if ((s = check_segment(st, k, &live)) != GFN_OK)
			return s;
		mapped += st->segs[k]->map.size;
	}
	if (mapped != st->mapped || mapped > st->budget)
		return gfn__fail(GFN_EINTERNAL,
		                 "%zu bytes mapped, %zu counted, budget %zu",
		                 mapped, st->mapped, st->budget);
	if ((s = check_slots(st, &objects, &bytes)) != GFN_OK)
		return s;
	if (objects != st->nobjects || live != objects || bytes != st->bytes)
		return gfn__fail(GFN_EINTERNAL,
		                 "%" PRIu64 " objects of %zu bytes in the "
		                 "table, %" PRIu64
		                 " blocks live; counted %" PRIu64 " of %zu",
		                 objects, bytes, live, st->nobjects, st->bytes);
	return check_tenants(st);
}

gfn_status gfn_store_check(gfn_store *st)
{
	gfn_status s;

	pthread_mutex_lock(&st->lock);
	s = check_locked(st);
	pthread_mutex_unlock(&st->lock);
	return s;
}
