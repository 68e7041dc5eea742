/*
 * pqueue.c - the device queue's heap (see pqueue.h).
 */
#include "engine/pqueue.h"

#include <stdlib.h>

#include "runtime/util.h"

gfn_status gfn_pq_init(gfn_pqueue *q, size_t cap)
{
	q->h = calloc(cap ? cap : 1, sizeof(*q->h));
	if (!q->h)
		return gfn__fail(GFN_ENOMEM, "no memory for a device queue");
	q->n = 0;
	q->cap = cap;
	q->seq = 0;
	q->fifo = 0;
	return GFN_OK;
}

void gfn_pq_fini(gfn_pqueue *q)
{
	free(q->h);
	q->h = NULL;
}

/* a runs before b. */
static int before(const gfn_qent *a, const gfn_qent *b)
{
	if (a->prio != b->prio)
		return a->prio > b->prio;
	if (a->start != b->start)
		return a->start < b->start;
	return a->seq < b->seq;
}

static void swap(gfn_qent *a, gfn_qent *b)
{
	gfn_qent t = *a;

	*a = *b;
	*b = t;
}

/* Move h[i] towards the root while it runs before its parent. */
static size_t sift_up(gfn_pqueue *q, size_t i)
{
	while (i && before(&q->h[i], &q->h[(i - 1) / 2])) {
		swap(&q->h[i], &q->h[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	return i;
}

/* Move h[i] towards the leaves while a child runs before it. */
static void sift_down(gfn_pqueue *q, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < q->n && before(&q->h[l], &q->h[m]))
			m = l;
		if (r < q->n && before(&q->h[r], &q->h[m]))
			m = r;
		if (m == i)
			return;
		swap(&q->h[i], &q->h[m]);
		i = m;
	}
}

/* When an entry must start (see pqueue.h); raises q->fifo. */
static uint64_t must_start(gfn_pqueue *q, uint64_t deadline, uint64_t start,
                           uint64_t run_ns)
{
	uint64_t latest = deadline > run_ns ? deadline - run_ns : 0;

	if (start > q->fifo || !q->n) /* only queued entries need order */
		q->fifo = start;
	return latest < q->fifo ? latest : q->fifo;
}

int gfn_pq_push(gfn_pqueue *q, uint64_t id, int32_t prio, uint64_t deadline,
                uint64_t start, uint64_t run_ns)
{
	size_t i = q->n;

	if (q->n == q->cap)
		return 0;
	q->h[i] = (gfn_qent){
	        id, must_start(q, deadline, start, run_ns), q->seq++, prio,
	        run_ns < UINT32_MAX ? (uint32_t)run_ns : UINT32_MAX};
	q->n++;
	sift_up(q, i);
	return 1;
}

int gfn_pq_pop(gfn_pqueue *q, gfn_qent *e)
{
	if (!q->n)
		return 0;
	gfn_pq_remove(q, 0, e);
	return 1;
}

void gfn_pq_remove(gfn_pqueue *q, size_t i, gfn_qent *e)
{
	*e = q->h[i];
	q->h[i] = q->h[--q->n];
	if (i < q->n && sift_up(q, i) == i)
		sift_down(q, i);
}

size_t gfn_pq_find(const gfn_pqueue *q, uint64_t id)
{
	size_t i = 0;

	while (i < q->n && q->h[i].id != id)
		i++;
	return i;
}
