/*
 * steal.c - work stealing: a worker whose device queue is empty takes a
 * queued invocation from another device's queue, the one its device would
 * finish soonest (gfn__steal_pick in place.c decides; the simulator
 * bench/gfn-sim calls the same function, so it measures this policy).
 *
 * Placement decides with estimates made at submission; run times vary
 * and queues drain unevenly, so a device can fall idle while another has
 * a queue. In gfn-sim this lowers every latency (p50 -8%, p99 -4% on the
 * default seed, docs/scheduling.md).
 *
 * What it may take: an invocation whose function runs on the idle device,
 * whose gfn_invocation.devices allows it, that does not batch (its queue's
 * worker gathers batches from its own queue: a stolen one would split a
 * batch and make both halves wait out the batch delay), that the idle
 * device finishes by its deadline and no later than where it waits. Only
 * from a device whose workers are all busy: an idle worker there takes
 * its own work sooner than we can.
 *
 * How: 1. each such queue's lock is taken in turn, one at a time, and its
 * first GFN_STEAL_SCAN entries are read: each job is held in JOB_PREP
 * while its fields are read, so a cancel meanwhile waits instead of
 * ending (and clearing) it under us; 2. the choice; 3. the chosen entry
 * is taken out of its queue under that queue's lock, held in PREP, its
 * backlog and link bytes leave its old device (gfn__backlog_done), and
 * it is queued on the idle device as a submission would queue it
 * (gfn__push_job: job->dev, backlog, link bytes, count), then QUEUED
 * again. The idle worker pops it as its own: the claim, the deadline
 * check, tenant device quotas (taken on the device that runs it) and
 * cancellation all work as for any queued invocation.
 */
#include "engine/engine.h"

#define MAX_CANDS 256 /* entries looked at in one attempt */

typedef struct cands {
	gfn_steal_cand c[MAX_CANDS]; /* what the choice sees */
	uint64_t id[MAX_CANDS];      /* the future id of each */
	int from[MAX_CANDS];         /* the device it waits on */
	int n;                       /* how many */
} cands;

/* Hold queued job id in PREP: 0 when it is not queued (canceled). */
static int hold(gfn_job *j, uint64_t id)
{
	uint64_t want = (id & ~0xffffffffull) | JOB_QUEUED;

	return atomic_compare_exchange_strong(&j->sw, &want,
	                                      (id & ~0xffffffffull) | JOB_PREP);
}

static void unhold(gfn_job *j, uint64_t id)
{
	atomic_store(&j->sw, (id & ~0xffffffffull) | JOB_QUEUED);
}

/* Device t may run j (its function, its devices mask, not batched). */
static int may_run(const gfn_job *j, int t)
{
	return (j->fn->runs_on >> t & 1) &&
	       (!j->devmask || (j->devmask >> t & 1)) && j->fn->batch_max <= 1;
}

/* The candidate for entry qe as idle device t sees it; qe's device lock
   held, the job held. */
static void judge(gfn_engine *e, const gfn_qent *qe, const gfn_job *j, int t,
                  gfn_steal_cand *c)
{
	uint64_t bytes[GFN_MAX_INPUTS];
	uint64_t queued[GFN_PLACE_MAX_NODES][GFN_PLACE_MAX_NODES];
	gfn_place_in in;

	c->ok = may_run(j, t);
	if (!c->ok)
		return;
	gfn__place_in(e, j, bytes, queued, &in);
	c->here_ns = gfn__place_transfer_ns(&in, e->devs[t].info.numa_node) +
	             gfn__run_ns(e, j->fn, t);
	c->start = qe->start;
	c->run_there = j->est_ns;
	c->deadline = j->deadline;
}

/* A device worth looking at: work queued and every worker busy. */
static int victim(const gfn_dev *v)
{
	return atomic_load_explicit(&v->count, memory_order_relaxed) &&
	       atomic_load_explicit(&v->running, memory_order_relaxed) >=
	               v->nworkers;
}

/* Step 1: the first entries of v's queue as candidates for device t. */
static void collect(gfn_engine *e, gfn_dev *v, int t, cands *cs)
{
	pthread_mutex_lock(&v->lock);
	for (size_t p = 0;
	     p < v->q.n && p < GFN_STEAL_SCAN && cs->n < MAX_CANDS; p++) {
		const gfn_qent *qe = &v->q.h[p];
		gfn_job *j = gfn__job_slot(e, (uint32_t)qe->id);

		if (!hold(j, qe->id))
			continue; /* canceled: its entry is stale */
		judge(e, qe, j, t, &cs->c[cs->n]);
		unhold(j, qe->id);
		cs->id[cs->n] = qe->id;
		cs->from[cs->n++] = v->index;
	}
	pthread_mutex_unlock(&v->lock);
}

/* Step 3a: take id out of v's queue, held in PREP; NULL when it is no
   longer there (popped, stolen or canceled meanwhile). */
static gfn_job *take(gfn_engine *e, gfn_dev *v, uint64_t id)
{
	gfn_job *j = gfn__job_slot(e, (uint32_t)id);
	size_t p;
	gfn_qent qe;

	pthread_mutex_lock(&v->lock);
	p = gfn_pq_find(&v->q, id);
	if (p == v->q.n || !hold(j, id)) {
		pthread_mutex_unlock(&v->lock);
		return NULL;
	}
	gfn_pq_remove(&v->q, p, &qe);
	atomic_fetch_sub(&v->count, 1);
	pthread_mutex_unlock(&v->lock);
	gfn__backlog_done(e, j); /* leaves v: backlog and link bytes */
	return j;
}

/* Step 3b: queue the held job j on device t, or anywhere when t stopped
   taking work meanwhile (a fault on one of its other workers). */
static void give(gfn_engine *e, gfn_job *j, uint64_t id, int t)
{
	gfn_dev *d = &e->devs[t];
	int ok;

	pthread_mutex_lock(&d->lock);
	ok = atomic_load(&d->state) == DEV_ACTIVE && d->q.n < d->cap;
	if (ok)
		gfn__push_job(e, j, t);
	unhold(j, id);
	pthread_mutex_unlock(&d->lock);
	if (!ok)
		gfn__replace_ids(e, &id, 1);
}

int gfn__steal(gfn_worker *w)
{
	gfn_engine *e = w->e;
	int t = w->dev->index, k;
	cands cs;
	gfn_job *j;

	if (atomic_load(&w->dev->state) != DEV_ACTIVE)
		return 0;
	cs.n = 0;
	for (int v = 0; v < e->ndev; v++)
		if (v != t && victim(&e->devs[v]))
			collect(e, &e->devs[v], t, &cs);
	k = gfn__steal_pick(cs.c, cs.n, gfn__now_ns());
	if (k < 0)
		return 0;
	j = take(e, &e->devs[cs.from[k]], cs.id[k]);
	if (!j)
		return 0;
	give(e, j, cs.id[k], t);
	atomic_fetch_add_explicit(&e->stolen, 1, memory_order_relaxed);
	return 1;
}
