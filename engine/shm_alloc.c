/*
 * shm_alloc.c - blocks inside shared-memory segments (see shm_alloc.h).
 */
#include "engine/shm_alloc.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/util.h"

#define BLK_SHIFT 12
#define BLK_CHUNK (1u << BLK_SHIFT) /* records per table chunk */
#define NIL GFN_BLK_NIL

gfn_blk *gfn__blk(const gfn_blocks *b, uint32_t i)
{
	return &b->chunks[i >> BLK_SHIFT][i & (BLK_CHUNK - 1)];
}

gfn_status gfn__blocks_init(gfn_blocks *b, uint64_t max_records)
{
	uint64_t n = (max_records + BLK_CHUNK - 1) / BLK_CHUNK;

	memset(b, 0, sizeof(*b));
	if (n > UINT32_MAX / BLK_CHUNK)
		n = UINT32_MAX / BLK_CHUNK;
	b->maxchunks = (uint32_t)(n ? n : 1);
	b->chunks = calloc(b->maxchunks, sizeof(*b->chunks));
	if (!b->chunks)
		return gfn__fail(GFN_ENOMEM, "no memory for block records");
	b->free_rec = NIL;
	return GFN_OK;
}

void gfn__blocks_fini(gfn_blocks *b)
{
	for (uint32_t c = 0; c < b->nchunks; c++)
		free(b->chunks[c]);
	free(b->chunks);
	memset(b, 0, sizeof(*b));
}

/* An unused record, growing the table when none is left; NIL if full. */
static uint32_t rec_get(gfn_blocks *b)
{
	uint32_t i;
	gfn_blk *c;

	if (b->free_rec == NIL) {
		if (b->nchunks == b->maxchunks)
			return NIL;
		c = calloc(BLK_CHUNK, sizeof(*c));
		if (!c)
			return NIL;
		b->chunks[b->nchunks] = c;
		for (uint32_t k = BLK_CHUNK; k-- > 0;) {
			c[k].fnext = b->free_rec;
			b->free_rec = b->nchunks * BLK_CHUNK + k;
		}
		b->nchunks++;
		b->host_allocs++;
	}
	i = b->free_rec;
	b->free_rec = gfn__blk(b, i)->fnext;
	return i;
}

static void rec_put(gfn_blocks *b, uint32_t i)
{
	gfn_blk *k = gfn__blk(b, i);

	memset(k, 0, sizeof(*k));
	k->fnext = b->free_rec;
	b->free_rec = i;
}

/* ---- bins ------------------------------------------------------------------ */

/* Four bins per power of two; lengths 1..3 have a bin each. */
static unsigned bin_of(uint32_t len)
{
	unsigned fl, sl;

	if (len < 4)
		return len;
	fl = 31u - (unsigned)__builtin_clz(len);
	sl = (len >> (fl - 2)) & 3u;
	return (fl - 1) * 4 + sl;
}

static void bin_push(gfn_blocks *b, gfn_arena *a, uint32_t i)
{
	gfn_blk *k = gfn__blk(b, i);
	unsigned bin = bin_of(k->len);

	k->free = 1;
	k->bin = (uint8_t)bin;
	k->fprev = NIL;
	k->fnext = a->bin[bin];
	if (k->fnext != NIL)
		gfn__blk(b, k->fnext)->fprev = i;
	a->bin[bin] = i;
	a->mask[bin >> 6] |= 1ull << (bin & 63);
	a->free_granules += k->len;
}

static void bin_unlink(gfn_blocks *b, gfn_arena *a, uint32_t i)
{
	gfn_blk *k = gfn__blk(b, i);

	if (k->fprev != NIL)
		gfn__blk(b, k->fprev)->fnext = k->fnext;
	else
		a->bin[k->bin] = k->fnext;
	if (k->fnext != NIL)
		gfn__blk(b, k->fnext)->fprev = k->fprev;
	if (a->bin[k->bin] == NIL)
		a->mask[k->bin >> 6] &= ~(1ull << (k->bin & 63));
	a->free_granules -= k->len;
	k->free = 0;
	k->fprev = k->fnext = NIL;
}

/* The first non-empty bin after bin, or -1. */
static int next_bin(const gfn_arena *a, unsigned bin)
{
	for (unsigned w = (bin + 1) >> 6; w < 2; w++) {
		uint64_t m = a->mask[w];

		if (w == (bin + 1) >> 6)
			m &= ~0ull << ((bin + 1) & 63);
		if (m)
			return (int)(w * 64 + (unsigned)__builtin_ctzll(m));
	}
	return -1;
}

/* ---- arena -------------------------------------------------------------------- */

void gfn__arena_init(gfn_arena *a)
{
	for (int i = 0; i < GFN_NBINS; i++)
		a->bin[i] = NIL;
	a->mask[0] = a->mask[1] = 0;
	a->free_granules = 0;
}

gfn_status gfn__arena_add(gfn_blocks *b, gfn_arena *a, uint32_t seg,
                          uint32_t off, uint32_t len, uint32_t *out)
{
	uint32_t i = rec_get(b);
	gfn_blk *k;

	if (i == NIL)
		return gfn__fail(GFN_ENOMEM, "no memory for block records");
	k = gfn__blk(b, i);
	k->seg = seg;
	k->off = off;
	k->len = len;
	k->prev = k->next = NIL;
	bin_push(b, a, i);
	*out = i;
	return GFN_OK;
}

/* Cut the tail of allocated block i beyond len into a new free block. */
static void split(gfn_blocks *b, gfn_arena *a, uint32_t i, uint32_t len)
{
	gfn_blk *k = gfn__blk(b, i), *r;
	uint32_t j;

	if (k->len == len || (j = rec_get(b)) == NIL)
		return;     /* exact, or no record: hand out the whole block */
	k = gfn__blk(b, i); /* the table may have grown */
	r = gfn__blk(b, j);
	r->seg = k->seg;
	r->off = k->off + len;
	r->len = k->len - len;
	r->prev = i;
	r->next = k->next;
	if (k->next != NIL)
		gfn__blk(b, k->next)->prev = j;
	k->next = j;
	k->len = len;
	bin_push(b, a, j);
}

/* First block in bin that holds len granules, or NIL. */
static uint32_t first_fit(gfn_blocks *b, const gfn_arena *a, unsigned bin,
                          uint32_t len)
{
	uint32_t i = a->bin[bin];

	while (i != NIL && gfn__blk(b, i)->len < len)
		i = gfn__blk(b, i)->fnext;
	return i;
}

gfn_status gfn__arena_alloc(gfn_blocks *b, gfn_arena *a, uint32_t len,
                            uint32_t *out)
{
	unsigned bin = bin_of(len);
	uint32_t i = first_fit(b, a, bin, len);

	if (i == NIL) {
		int nb = next_bin(a, bin);

		if (nb < 0)
			return GFN_ENOMEM;
		i = a->bin[nb]; /* every block there is longer than len */
	}
	bin_unlink(b, a, i);
	split(b, a, i, len);
	*out = i;
	return GFN_OK;
}

/* Merge free block j (just after i) into i and drop j's record. */
static void absorb(gfn_blocks *b, uint32_t i, uint32_t j)
{
	gfn_blk *k = gfn__blk(b, i), *n = gfn__blk(b, j);

	k->len += n->len;
	k->next = n->next;
	if (n->next != NIL)
		gfn__blk(b, n->next)->prev = i;
	rec_put(b, j);
}

uint32_t gfn__arena_free(gfn_blocks *b, gfn_arena *a, uint32_t i)
{
	gfn_blk *k = gfn__blk(b, i);
	uint32_t n = k->next, p = k->prev;

	if (n != NIL && gfn__blk(b, n)->free) {
		bin_unlink(b, a, n);
		absorb(b, i, n);
	}
	if (p != NIL && gfn__blk(b, p)->free) {
		bin_unlink(b, a, p);
		absorb(b, p, i);
		i = p;
	}
	bin_push(b, a, i);
	return i;
}

void gfn__arena_remove(gfn_blocks *b, gfn_arena *a, uint32_t i)
{
	bin_unlink(b, a, i);
	rec_put(b, i);
}
