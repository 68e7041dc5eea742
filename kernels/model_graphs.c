/*
 * model_graphs.c - a model's launches on a CUDA device as CUDA graphs.
 *
 * A model graph is a dozen launches and GEMMs; enqueued one by one each
 * costs a few microseconds of CPU, and a CUDA graph replays them all with
 * one cuGraphLaunch. A graph holds the addresses it was recorded with, so
 * one is kept per (queue, batch rows, every buffer address): the engine's
 * device pool hands a worker the same blocks again for the same sizes, so
 * steady traffic replays. A key is recorded the second time it is seen,
 * not the first: one-off shapes cost no capture, and cuBLAS has made its
 * workspace on that stream by then (it must not allocate while captured).
 * The least recently used of a queue's entries makes room for a new one.
 *
 * Each worker's queue touches only its own entries, so a launch needs the
 * table's lock only to find or claim an entry, never while enqueueing.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/model.h"
#include "runtime/util.h"

#ifdef GFN_HAVE_CUDA
#include "runtime/backends/cuda/cuda_backend.h"

#define ENTRIES 16 /* graphs per model and device, all queues together */

typedef struct entry {
	gfn_bqueue *q;                /* owner; NULL: free */
	uint64_t key[GFN_MGRAPH_KEY]; /* rows and buffer addresses */
	size_t nkey;                  /* used words of key */
	gfn_cuda_graph *g;            /* NULL: seen once, not recorded */
	uint64_t last;                /* LRU tick */
} entry;

struct gfn_mgraphs {
	pthread_mutex_t lock; /* guards the table, not the graphs' use */
	entry e[ENTRIES];
	uint64_t tick;
	uint64_t recorded, replayed; /* for tests and reports */
	int off;                     /* recording failed once: run directly */
};

gfn_mgraphs *gfn__mgraphs_new(void)
{
	gfn_mgraphs *t = calloc(1, sizeof *t);

	if (t)
		pthread_mutex_init(&t->lock, NULL);
	return t;
}

void gfn__mgraphs_free(gfn_mgraphs *t)
{
	if (!t)
		return;
	for (int i = 0; i < ENTRIES; i++)
		gfn_cuda_graph_destroy(t->e[i].g);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

void gfn__mgraphs_counts(gfn_mgraphs *t, uint64_t *recorded, uint64_t *replayed)
{
	pthread_mutex_lock(&t->lock);
	*recorded = t->recorded;
	*replayed = t->replayed;
	pthread_mutex_unlock(&t->lock);
}

static int same(const entry *e, gfn_bqueue *q, const uint64_t *key, size_t n)
{
	return e->q == q && e->nkey == n &&
	       !memcmp(e->key, key, n * sizeof *key);
}

/* How willingly e makes room for a new key of q: a free entry, then one
   of q's own, then another queue's never recorded; 0: keep it. */
static int room(const entry *e, gfn_bqueue *q)
{
	if (!e->q)
		return 3;
	if (e->q == q)
		return 2;
	return e->g ? 0 : 1;
}

/* q's entry for key, or one to reuse for it (*fresh), the least recently
   used of the most willing; NULL when none is. Lock held. */
static entry *claim(gfn_mgraphs *t, gfn_bqueue *q, const uint64_t *key,
                    size_t n, int *fresh)
{
	entry *best = NULL;
	int best_room = 0;

	*fresh = 0;
	for (int i = 0; i < ENTRIES; i++) {
		entry *e = &t->e[i];
		int r = room(e, q);

		if (same(e, q, key, n))
			return e;
		if (r > best_room ||
		    (r && r == best_room && e->last < best->last)) {
			best = e;
			best_room = r;
		}
	}
	*fresh = best != NULL;
	return best;
}

/*
 * Record the launches enqueue(arg) makes on q as *g, then run it. Where
 * the driver has no graphs, or recording fails (a call the capture
 * refused: nothing of it ran), run them directly: *g stays NULL.
 */
static gfn_status record(gfn_bqueue *q, gfn_status (*enqueue)(void *),
                         void *arg, gfn_cuda_graph **g)
{
	gfn_status s = gfn_cuda_graph_begin(q), s2;

	*g = NULL;
	if (s != GFN_OK)
		return enqueue(arg);
	s = enqueue(arg);
	s2 = gfn_cuda_graph_end(q, g); /* ends the capture either way */
	if (s == GFN_OK && s2 == GFN_OK)
		return gfn_cuda_graph_launch(q, *g);
	gfn__log(GFN_LOG_WARN,
	         "CUDA graph not recorded (%s): launching "
	         "directly",
	         gfn_error_detail());
	gfn_cuda_graph_destroy(*g);
	*g = NULL;
	return enqueue(arg);
}

gfn_status gfn__mgraphs_run(gfn_mgraphs *t, gfn_bqueue *q, const uint64_t *key,
                            size_t nkey, gfn_status (*enqueue)(void *),
                            void *arg)
{
	gfn_cuda_graph *g = NULL, *old = NULL;
	entry *e;
	int fresh;
	gfn_status s;

	pthread_mutex_lock(&t->lock);
	e = t->off ? NULL : claim(t, q, key, nkey, &fresh);
	if (e && fresh) { /* seen for the first time: remember it */
		old = e->g;
		e->g = NULL;
		e->q = q;
		e->nkey = nkey;
		memcpy(e->key, key, nkey * sizeof *key);
	}
	if (e) {
		e->last = ++t->tick;
		g = e->g;
		t->replayed += g != NULL;
	}
	pthread_mutex_unlock(&t->lock);
	/* An evicted graph may still be running: the driver frees an
	   executing instance when it completes. */
	gfn_cuda_graph_destroy(old);
	if (g)
		return gfn_cuda_graph_launch(q, g);
	if (!e || fresh)
		return enqueue(arg);
	s = record(q, enqueue, arg, &g);
	pthread_mutex_lock(&t->lock);
	if (same(e, q, key, nkey) && !e->g && g) {
		e->g = g;
		g = NULL;
		t->recorded++;
	} else if (!g) {
		t->off = 1; /* recording failed: never try again here */
	}
	pthread_mutex_unlock(&t->lock);
	gfn_cuda_graph_destroy(g); /* only when it was not kept */
	return s;
}
#endif /* GFN_HAVE_CUDA */
