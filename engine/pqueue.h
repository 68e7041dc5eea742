/*
 * pqueue.h - a device's queue: a binary heap of future ids ordered by
 * priority (higher first), then by when each must start, then arrival.
 *
 * "Must start" is the earlier of two times: the latest start that still
 * meets the deadline (deadline - expected run time) and the time the
 * entry would start in arrival order (when it was queued plus the
 * device's backlog then). So entries that would all meet their deadlines
 * in arrival order keep it, and a later one whose deadline is far never
 * overtakes an earlier one; an entry that would miss its deadline in
 * arrival order goes ahead of those that can wait. Pure earliest-deadline
 * order made long invocations (later deadlines) wait behind every short
 * one that came after them, and broke the finish time that admission
 * promised them (docs/scheduling.md). An entry without a deadline is
 * ordered by arrival, so deadline work cannot starve it.
 *
 * Not thread-safe: the device lock guards it. Internal: not API.
 */
#ifndef GFN_ENGINE_PQUEUE_H
#define GFN_ENGINE_PQUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "gfn/gfn.h"

typedef struct gfn_qent {
	uint64_t id;    /* future id */
	uint64_t start; /* must start by (monotonic ns): the sort key */
	uint64_t seq;   /* arrival order */
	int32_t prio;   /* higher runs first */
	uint32_t run;   /* expected run time, ns (capped): how much work a
	                   worker takes with it when it pops several */
} gfn_qent;

typedef struct gfn_pqueue {
	gfn_qent *h;   /* heap, h[0] first */
	size_t n;      /* entries */
	size_t cap;    /* most entries */
	uint64_t seq;  /* next arrival number */
	uint64_t fifo; /* latest arrival-order start given since the queue
	                  was last empty: keeps arrival order when backlog
	                  estimates shrink meanwhile */
} gfn_pqueue;

/* A queue of at most cap entries, allocated now (never on the hot path). */
gfn_status gfn_pq_init(gfn_pqueue *q, size_t cap);
void gfn_pq_fini(gfn_pqueue *q);
/*
 * Add an entry; 0 when full. deadline: monotonic ns, UINT64_MAX for none;
 * start: when it would start in arrival order (now + the device's
 * backlog before it); run_ns: its expected run time there.
 */
int gfn_pq_push(gfn_pqueue *q, uint64_t id, int32_t prio, uint64_t deadline,
                uint64_t start, uint64_t run_ns);
/* Take the first entry into *e; 0 when empty. */
int gfn_pq_pop(gfn_pqueue *q, gfn_qent *e);
/* Take the entry at heap position i (< q->n) into *e, wherever it is:
   what an idle device steals (h[0..n) is the heap, roughly in order). */
void gfn_pq_remove(gfn_pqueue *q, size_t i, gfn_qent *e);
/* Heap position of the entry with id, or q->n when it is not queued. */
size_t gfn_pq_find(const gfn_pqueue *q, uint64_t id);

#endif /* GFN_ENGINE_PQUEUE_H */
