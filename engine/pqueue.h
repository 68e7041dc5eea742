/*
 * pqueue.h - a device's queue: a binary heap of future ids ordered by
 * priority (higher first), then deadline (earlier first), then arrival
 * (FIFO among equals). Not thread-safe: the device lock guards it.
 * Internal: not API.
 */
#ifndef GFN_ENGINE_PQUEUE_H
#define GFN_ENGINE_PQUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "gfn/gfn.h"

typedef struct gfn_qent {
	uint64_t id;       /* future id */
	uint64_t deadline; /* monotonic ns; UINT64_MAX for none */
	uint64_t seq;      /* arrival order */
	int32_t prio;      /* higher runs first */
} gfn_qent;

typedef struct gfn_pqueue {
	gfn_qent *h;  /* heap, h[0] first */
	size_t n;     /* entries */
	size_t cap;   /* most entries */
	uint64_t seq; /* next arrival number */
} gfn_pqueue;

/* A queue of at most cap entries, allocated now (never on the hot path). */
gfn_status gfn_pq_init(gfn_pqueue *q, size_t cap);
void gfn_pq_fini(gfn_pqueue *q);
/* Add an entry; 0 when full. */
int gfn_pq_push(gfn_pqueue *q, uint64_t id, int32_t prio, uint64_t deadline);
/* Take the first entry into *e; 0 when empty. */
int gfn_pq_pop(gfn_pqueue *q, gfn_qent *e);

#endif /* GFN_ENGINE_PQUEUE_H */
