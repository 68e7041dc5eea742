/*
 * devmem.c - device memory pool (see devmem.h).
 */
#include "runtime/devmem.h"

#include <pthread.h>
#include <stdlib.h>

#include "runtime/util.h"

#define MIN_SHIFT 12 /* 4 KiB: a multiple of every base-address alignment */
#define MAX_SHIFT 40 /* 1 TiB */
#define NCLASS (MAX_SHIFT - MIN_SHIFT + 1)
#define MIN_CHUNK ((size_t)1 << 20)
#define MAX_CHUNKS 4096

typedef struct chunk {
	gfn_bmem mem;       /* the driver allocation */
	gfn_dblock *blocks; /* block records carved from it */
	size_t nblocks;     /* how many */
} chunk;

struct gfn_devmem {
	const gfn_backend_ops *ops; /* backend */
	gfn_bdev *dev;              /* device */
	pthread_mutex_t lock;       /* guards everything below */
	gfn_dblock *free[NCLASS];   /* free blocks per class */
	chunk chunks[MAX_CHUNKS];   /* driver allocations */
	uint32_t nchunks;           /* used entries of chunks[] */
	size_t chunk_bytes;         /* usual chunk size */
	size_t limit;               /* max driver bytes, 0 = none */
	size_t bytes;               /* driver bytes taken */
	uint64_t driver_allocs;     /* chunks taken */
};

static int class_of(size_t size)
{
	int shift = MIN_SHIFT;

	while (shift <= MAX_SHIFT && ((size_t)1 << shift) < size)
		shift++;
	return shift > MAX_SHIFT ? -1 : shift - MIN_SHIFT;
}

gfn_status gfn_devmem_create(const gfn_backend_ops *ops, gfn_bdev *dev,
                             size_t chunk_bytes, size_t limit, gfn_devmem **out)
{
	gfn_devmem *dm = calloc(1, sizeof(*dm));

	if (!dm)
		return gfn__fail(GFN_ENOMEM, "no memory for a device pool");
	dm->ops = ops;
	dm->dev = dev;
	dm->chunk_bytes = chunk_bytes < MIN_CHUNK ? MIN_CHUNK : chunk_bytes;
	dm->limit = limit;
	pthread_mutex_init(&dm->lock, NULL);
	*out = dm;
	return GFN_OK;
}

void gfn_devmem_destroy(gfn_devmem *dm)
{
	if (!dm)
		return;
	for (uint32_t c = 0; c < dm->nchunks; c++) {
		chunk *ch = &dm->chunks[c];
		for (size_t i = 0; i < ch->nblocks; i++)
			if (ch->blocks[i].has_view)
				gfn_backend_mem_view_free(dm->ops, dm->dev,
				                          &ch->blocks[i].mem);
		free(ch->blocks);
		gfn_backend_mem_free(dm->ops, dm->dev, &ch->mem);
	}
	pthread_mutex_destroy(&dm->lock);
	free(dm);
}

/* Carve a new chunk into blocks of class c. Lock held. */
static gfn_status grow(gfn_devmem *dm, int c)
{
	size_t bsize = (size_t)1 << (c + MIN_SHIFT);
	size_t want =
	        bsize * 16 < dm->chunk_bytes ? bsize * 16 : dm->chunk_bytes;
	size_t bytes = want < bsize ? bsize : want;
	chunk *ch;
	gfn_status s;

	if (dm->nchunks == MAX_CHUNKS)
		return gfn__fail(GFN_ENOMEM, "device pool has %d chunks",
		                 MAX_CHUNKS);
	if (dm->limit && dm->bytes + bytes > dm->limit)
		return gfn__fail(GFN_ENOMEM,
		                 "device pool limit: %zu of %zu bytes taken, "
		                 "%zu more needed",
		                 dm->bytes, dm->limit, bytes);
	ch = &dm->chunks[dm->nchunks];
	ch->nblocks = bytes / bsize;
	ch->blocks = calloc(ch->nblocks, sizeof(*ch->blocks));
	if (!ch->blocks)
		return gfn__fail(GFN_ENOMEM, "no memory for block records");
	s = gfn_backend_mem_alloc(dm->ops, dm->dev, bytes, &ch->mem);
	if (s != GFN_OK) {
		free(ch->blocks);
		ch->blocks = NULL;
		return s;
	}
	for (size_t i = ch->nblocks; i-- > 0;) {
		gfn_dblock *b = &ch->blocks[i];
		b->cls = (unsigned)c;
		b->chunk = dm->nchunks;
		b->off = i * bsize;
		b->next = dm->free[c];
		dm->free[c] = b;
	}
	dm->nchunks++;
	dm->bytes += bytes;
	dm->driver_allocs++;
	return GFN_OK;
}

/* Give b its view on first use. Lock held. */
static gfn_status ensure_view(gfn_devmem *dm, gfn_dblock *b)
{
	size_t bsize = (size_t)1 << (b->cls + MIN_SHIFT);
	gfn_status s;

	if (b->has_view)
		return GFN_OK;
	s = gfn_backend_mem_view(dm->ops, dm->dev, &dm->chunks[b->chunk].mem,
	                         b->off, bsize, &b->mem);
	if (s == GFN_OK)
		b->has_view = 1;
	return s;
}

gfn_status gfn_devmem_alloc(gfn_devmem *dm, size_t size, gfn_dblock **out)
{
	int c = class_of(size ? size : 1);
	gfn_status s = GFN_OK;
	gfn_dblock *b;

	if (c < 0)
		return gfn__fail(GFN_ENOMEM, "%zu bytes is too large", size);
	pthread_mutex_lock(&dm->lock);
	if (!dm->free[c])
		s = grow(dm, c);
	b = dm->free[c];
	if (s == GFN_OK && (s = ensure_view(dm, b)) == GFN_OK) {
		dm->free[c] = b->next;
		*out = b;
	}
	pthread_mutex_unlock(&dm->lock);
	return s;
}

void gfn_devmem_free(gfn_devmem *dm, gfn_dblock *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&dm->lock);
	b->next = dm->free[b->cls];
	dm->free[b->cls] = b;
	pthread_mutex_unlock(&dm->lock);
}

uint64_t gfn_devmem_driver_allocs(gfn_devmem *dm)
{
	uint64_t n;

	pthread_mutex_lock(&dm->lock);
	n = dm->driver_allocs;
	pthread_mutex_unlock(&dm->lock);
	return n;
}
