/*
 * hostmem.c - size-class host memory pool (see hostmem.h).
 */
#include "runtime/hostmem.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/numa.h"
#include "runtime/util.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#define MIN_SHIFT 6  /* smallest class: 64 bytes */
#define MAX_SHIFT 30 /* largest class: 1 GiB */
#define NCLASS (MAX_SHIFT - MIN_SHIFT + 1)
#define SLAB_BYTES (1u << 20) /* small classes are carved from 1 MiB */

typedef struct slab {
	struct slab *next; /* all slabs, for destroy */
	void *base;        /* mmap'ed or provided memory */
	void *handle;      /* the provider's handle, or NULL */
	size_t bytes;      /* its length */
} slab;

typedef struct free_block {
	struct free_block *next; /* next free block of the same class */
} free_block;

typedef struct size_class {
	pthread_mutex_t lock; /* guards free */
	free_block *free;     /* blocks ready to hand out */
} size_class;

struct gfn_hostmem {
	size_class cls[NCLASS];     /* one free list per power of two */
	pthread_mutex_t slab_lock;  /* guards slabs */
	slab *slabs;                /* everything taken from the OS */
	size_t limit;               /* max bytes from the OS, 0 = none */
	_Atomic size_t os_bytes;    /* bytes taken from the OS */
	_Atomic uint64_t os_allocs; /* times memory was taken from the OS */
	gfn_hostmem_provider prov;  /* slab source; alloc NULL: mmap */
	int node;                   /* NUMA node of the slabs; -1: any */
	gfn_hostmem_pinner pin;     /* pins node-bound slabs; pin NULL: no */
	gfn_status (*on_slab)(void *, void *, size_t); /* new-slab hook */
	void *on_slab_ctx;                             /* its argument */
};

void gfn_hostmem_on_slab(gfn_hostmem *hm,
                         gfn_status (*fn)(void *ctx, void *base, size_t len),
                         void *ctx)
{
	hm->on_slab = fn;
	hm->on_slab_ctx = ctx;
}

static int class_of(size_t size)
{
	int shift = MIN_SHIFT;

	while (shift <= MAX_SHIFT && ((size_t)1 << shift) < size)
		shift++;
	return shift > MAX_SHIFT ? -1 : shift - MIN_SHIFT;
}

gfn_status gfn_hostmem_create_with(size_t limit,
                                   const gfn_hostmem_provider *prov,
                                   gfn_hostmem **out)
{
	gfn_status s = gfn_hostmem_create(limit, out);

	if (s == GFN_OK && prov)
		(*out)->prov = *prov;
	return s;
}

gfn_status gfn_hostmem_create(size_t limit, gfn_hostmem **out)
{
	gfn_hostmem *hm = calloc(1, sizeof(*hm));

	if (!hm)
		return gfn__fail(GFN_ENOMEM, "no memory for the host pool");
	for (int i = 0; i < NCLASS; i++)
		pthread_mutex_init(&hm->cls[i].lock, NULL);
	pthread_mutex_init(&hm->slab_lock, NULL);
	hm->limit = limit;
	hm->node = -1;
	*out = hm;
	return GFN_OK;
}

gfn_status gfn_hostmem_create_on_node(size_t limit, int node,
                                      const gfn_hostmem_pinner *pin,
                                      gfn_hostmem **out)
{
	gfn_status s;

	*out = NULL;
	if (!gfn__numa_available())
		return gfn__fail(GFN_ENOTSUP,
		                 "no NUMA support in this kernel: "
		                 "a pool cannot be bound to node %d",
		                 node);
	if (!gfn__numa_node_exists(node))
		return gfn__fail(GFN_EINVAL,
		                 "NUMA node %d does not exist on this machine "
		                 "(nodes 0..%d) or is not allowed here",
		                 node, gfn__numa_max_node());
	if ((s = gfn_hostmem_create(limit, out)) != GFN_OK)
		return s;
	(*out)->node = node;
	if (pin)
		(*out)->pin = *pin;
	return GFN_OK;
}

int gfn_hostmem_node(const gfn_hostmem *hm)
{
	return hm->node;
}

/* Give a slab back: unpin and unmap, or to its provider. */
static void slab_unmap(gfn_hostmem *hm, void *p, size_t bytes, void *handle)
{
	if (hm->prov.alloc) {
		hm->prov.free(hm->prov.ctx, p, bytes, handle);
		return;
	}
	if (hm->node >= 0 && hm->pin.pin && hm->pin.unpin)
		hm->pin.unpin(hm->pin.ctx, p, bytes, handle);
	munmap(p, bytes);
}

/* Fault every page of a fresh slab in, for writing (no OOM kill on ENOMEM). */
static gfn_status populate(void *p, size_t bytes)
{
	long ps = sysconf(_SC_PAGESIZE);
	size_t page = ps > 0 ? (size_t)ps : 4096;

	if (madvise(p, bytes, MADV_POPULATE_WRITE) == 0)
		return GFN_OK;
	if (errno != EINVAL)
		return gfn__fail(GFN_ENOMEM, "faulting in %zu bytes: %s", bytes,
		                 strerror(errno));
	for (size_t off = 0; off < bytes; off += page)
		((volatile char *)p)[off] = 0; /* kernel before 5.14 */
	return GFN_OK;
}

/*
 * Bind a fresh slab to the pool's node, fault it in, check where its
 * pages went, then pin it: the policy only decides where pages are
 * faulted, and pinned pages never move.
 */
static gfn_status place_slab(gfn_hostmem *hm, void *p, size_t bytes,
                             void **handle)
{
	gfn_status s;

	if ((s = gfn__numa_bind(p, bytes, hm->node, GFN_NUMA_BIND)) != GFN_OK ||
	    (s = populate(p, bytes)) != GFN_OK ||
	    (s = gfn__numa_check(p, bytes, hm->node)) != GFN_OK)
		return s;
	return hm->pin.pin ? hm->pin.pin(hm->pin.ctx, p, bytes, handle)
	                   : GFN_OK;
}

/* A new slab of bytes from the provider, or mapped (and placed). */
static void *slab_map(gfn_hostmem *hm, size_t bytes, void **handle)
{
	void *p;

	*handle = NULL;
	if (hm->prov.alloc)
		return hm->prov.alloc(hm->prov.ctx, bytes, handle);
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (hm->node >= 0 && place_slab(hm, p, bytes, handle) != GFN_OK) {
		gfn__log(GFN_LOG_WARN, "host pool on node %d: %s", hm->node,
		         gfn_error_detail());
		munmap(p, bytes);
		return NULL;
	}
	return p;
}

void gfn_hostmem_destroy(gfn_hostmem *hm)
{
	slab *s, *next;

	if (!hm)
		return;
	for (s = hm->slabs; s; s = next) {
		next = s->next;
		slab_unmap(hm, s->base, s->bytes, s->handle);
		free(s);
	}
	for (int i = 0; i < NCLASS; i++)
		pthread_mutex_destroy(&hm->cls[i].lock);
	pthread_mutex_destroy(&hm->slab_lock);
	free(hm);
}

/* Take bytes from the OS, within the limit; NULL when refused. */
static void *os_take(gfn_hostmem *hm, size_t bytes)
{
	size_t had = atomic_fetch_add(&hm->os_bytes, bytes);
	slab *s;
	void *p;

	if (hm->limit && had + bytes > hm->limit)
		goto err_undo;
	s = malloc(sizeof(*s));
	if (!s)
		goto err_undo;
	p = slab_map(hm, bytes, &s->handle);
	if (!p)
		goto err_free_slab;
	if (hm->on_slab && hm->on_slab(hm->on_slab_ctx, p, bytes) != GFN_OK)
		goto err_unmap;
	s->base = p;
	s->bytes = bytes;
	pthread_mutex_lock(&hm->slab_lock);
	s->next = hm->slabs;
	hm->slabs = s;
	pthread_mutex_unlock(&hm->slab_lock);
	atomic_fetch_add(&hm->os_allocs, 1);
	return p;

err_unmap:
	slab_unmap(hm, p, bytes, s->handle);
err_free_slab:
	free(s);
err_undo:
	atomic_fetch_sub(&hm->os_bytes, bytes);
	return NULL;
}

/*
 * Grow class c by one slab. The first block goes to the caller, the rest
 * onto the free list (the caller holds the class lock).
 */
static void *grow(gfn_hostmem *hm, int c)
{
	size_t bsize = (size_t)1 << (c + MIN_SHIFT);
	size_t bytes = bsize < SLAB_BYTES ? SLAB_BYTES : bsize;
	char *base = os_take(hm, bytes);

	if (!base)
		return NULL;
	for (size_t off = bsize; off < bytes; off += bsize) {
		free_block *b = (free_block *)(base + off);
		b->next = hm->cls[c].free;
		hm->cls[c].free = b;
	}
	return base;
}

void *gfn_hostmem_alloc(gfn_hostmem *hm, size_t size)
{
	int c = class_of(size ? size : 1);
	free_block *b;
	void *p;

	if (c < 0) {
		gfn__fail(GFN_ENOMEM,
		          "%zu bytes is more than the largest block", size);
		return NULL;
	}
	pthread_mutex_lock(&hm->cls[c].lock);
	b = hm->cls[c].free;
	if (b) {
		hm->cls[c].free = b->next;
		p = b;
	} else {
		p = grow(hm, c);
	}
	pthread_mutex_unlock(&hm->cls[c].lock);
	if (!p)
		gfn__fail(GFN_ENOMEM,
		          "host pool cannot grow for %zu bytes (limit %zu, "
		          "in use %zu)",
		          size, hm->limit, (size_t)atomic_load(&hm->os_bytes));
	return p;
}

void gfn_hostmem_free(gfn_hostmem *hm, void *p, size_t size)
{
	int c = class_of(size ? size : 1);
	free_block *b = p;

	if (!p || c < 0)
		return;
	pthread_mutex_lock(&hm->cls[c].lock);
	b->next = hm->cls[c].free;
	hm->cls[c].free = b;
	pthread_mutex_unlock(&hm->cls[c].lock);
}

uint64_t gfn_hostmem_os_allocs(const gfn_hostmem *hm)
{
	return atomic_load(&((gfn_hostmem *)hm)->os_allocs);
}

size_t gfn_hostmem_os_bytes(const gfn_hostmem *hm)
{
	return atomic_load(&((gfn_hostmem *)hm)->os_bytes);
}
