/*
 * future.c - jobs (the state behind a future) and the future calls.
 *
 * Jobs live in a table grown a chunk at a time and never shrunk, so a stale
 * future id can be checked safely and the invoke path reuses jobs from a
 * free list instead of allocating. A future id is generation << 32 | slot.
 * The state word sw holds the generation and the state together, so a
 * worker or a canceler claims a queued job with one compare-and-swap that
 * also proves the slot was not recycled meanwhile.
 *
 * A job has two references: the owner's (the future, dropped by
 * gfn_future_release) and the engine's (dropped when the job ends). The
 * last one returns the job to the free list.
 */
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

#define JOB_CHUNK GFN_JOB_CHUNK
#define NIL UINT32_MAX
#define job_ptr gfn__job_slot

static uint32_t sw_gen(uint64_t sw)
{
	return (uint32_t)(sw >> 32);
}

static uint32_t sw_state(uint64_t sw)
{
	return (uint32_t)sw;
}

gfn_status gfn__jobs_init(gfn_engine *e)
{
	size_t max = e->cfg.max_futures ? e->cfg.max_futures : 1;

	e->max_job_chunks = (uint32_t)((max + JOB_CHUNK - 1) / JOB_CHUNK);
	e->job_chunks = calloc(e->max_job_chunks, sizeof(*e->job_chunks));
	if (!e->job_chunks)
		return gfn__fail(GFN_ENOMEM, "no memory for the job table");
	pthread_mutex_init(&e->job_lock, NULL);
	e->job_free = NIL;
	return GFN_OK;
}

void gfn__jobs_fini(gfn_engine *e)
{
	uint32_t n = atomic_load(&e->njob_chunks);

	if (!e->job_chunks)
		return;
	for (uint32_t c = 0; c < n; c++)
		free(e->job_chunks[c]);
	free(e->job_chunks);
	pthread_mutex_destroy(&e->job_lock);
}

/* Add a chunk of free jobs. job_lock held. */
static gfn_status grow(gfn_engine *e)
{
	uint32_t c = atomic_load(&e->njob_chunks);
	gfn_job *chunk;

	if (c == e->max_job_chunks)
		return gfn__fail(GFN_ENOMEM,
		                 "%zu futures are unreleased (max_futures)",
		                 e->cfg.max_futures);
	chunk = calloc(JOB_CHUNK, sizeof(*chunk));
	if (!chunk)
		return gfn__fail(GFN_ENOMEM, "no memory for futures");
	for (uint32_t i = JOB_CHUNK; i-- > 0;) {
		atomic_init(&chunk[i].sw, (uint64_t)1 << 32 | JOB_FREE);
		chunk[i].idx = c * JOB_CHUNK + i;
		chunk[i].next_free = e->job_free;
		e->job_free = c * JOB_CHUNK + i;
	}
	e->job_chunks[c] = chunk;
	/* Publish after the chunk is filled: lookups read it lock-free. */
	atomic_store_explicit(&e->njob_chunks, c + 1, memory_order_release);
	atomic_fetch_add(&e->host_allocs, 1);
	return GFN_OK;
}

gfn_status gfn__jobs_alloc(gfn_engine *e, size_t n, gfn_job **out)
{
	gfn_status s = GFN_OK;
	size_t k;

	pthread_mutex_lock(&e->job_lock);
	for (k = 0; k < n; k++) {
		gfn_job *j;
		uint64_t sw;
		if (e->job_free == NIL && (s = grow(e)) != GFN_OK)
			break;
		j = job_ptr(e, e->job_free);
		e->job_free = j->next_free;
		sw = atomic_load_explicit(&j->sw, memory_order_relaxed);
		atomic_store_explicit(&j->sw, (sw & ~0xffffffffull) | JOB_PREP,
		                      memory_order_relaxed);
		atomic_store_explicit(&j->refs, 2, memory_order_relaxed);
		atomic_store_explicit(&j->released, 0, memory_order_relaxed);
		out[k] = j;
	}
	pthread_mutex_unlock(&e->job_lock);
	if (s != GFN_OK)
		for (size_t i = 0; i < k; i++)
			gfn__job_abort(e, out[i]);
	return s;
}

uint64_t gfn__job_id(const gfn_job *j)
{
	uint64_t sw =
	        atomic_load_explicit(&((gfn_job *)j)->sw, memory_order_relaxed);

	return (sw & ~0xffffffffull) | j->idx;
}

/* Return a job to the free list with a new generation. */
static void job_free(gfn_engine *e, gfn_job *j)
{
	uint64_t sw = atomic_load(&j->sw);
	uint32_t gen = sw_gen(sw) + 1;
	uint32_t idx = j->idx;

	if (j->outputs_live) /* never taken by the owner */
		gfn_store_discard_n(e->store, j->n_out, j->out_id);
	j->outputs_live = 0;
	j->cb = NULL;
	pthread_mutex_lock(&e->job_lock);
	atomic_store(&j->sw, (uint64_t)(gen ? gen : 1) << 32 | JOB_FREE);
	j->next_free = e->job_free;
	e->job_free = idx;
	pthread_mutex_unlock(&e->job_lock);
}

static void job_unref(gfn_engine *e, gfn_job *j)
{
	if (atomic_fetch_sub_explicit(&j->refs, 1, memory_order_acq_rel) == 1)
		job_free(e, j);
}

/* Drop what the job holds while it is in flight: inputs, function. */
static void job_drop_args(gfn_engine *e, gfn_job *j)
{
	if (j->inputs_held)
		gfn_store_release_n(e->store, j->n_in, j->in_id);
	j->inputs_held = 0;
	if (j->fn && j->t_submit)
		atomic_fetch_sub(&j->fn->pending, 1);
	if (j->fn)
		gfn__fn_release(e, j->fn);
	j->fn = NULL;
	gfn__tenant_leave(j->quota);
	j->quota = NULL;
}

void gfn__job_abort(gfn_engine *e, gfn_job *j)
{
	job_drop_args(e, j);
	atomic_store(&j->refs, 1);
	job_unref(e, j);
}

void gfn__job_finish(gfn_engine *e, gfn_job *j, gfn_status status)
{
	uint64_t sw = atomic_load(&j->sw);
	gfn_dev *dev = &e->devs[j->dev];

	job_drop_args(e, j);
	gfn__backlog_done(e, j);
	j->status = status;
	if (status != GFN_OK) /* the failing call set this thread's detail */
		snprintf(j->detail, sizeof(j->detail), "%s",
		         gfn_error_detail());
	if (status == GFN_OK)
		atomic_fetch_add_explicit(&dev->completed, 1,
		                          memory_order_relaxed);
	else if (status == GFN_ECANCELED)
		atomic_fetch_add_explicit(&e->canceled, 1,
		                          memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&dev->failed, 1,
		                          memory_order_relaxed);
	atomic_store_explicit(&j->sw, (sw & ~0xffffffffull) | JOB_DONE,
	                      memory_order_release);
	atomic_fetch_add(&j->wake, 1);
	if (atomic_load(&j->waiters))
		gfn__futex_wake(&j->wake, INT32_MAX);
	if (j->cb)
		j->cb(e, (gfn_future){gfn__job_id(j)}, status, j->cb_arg);
	job_unref(e, j);
}

/* ---- lookup --------------------------------------------------------------------- */

gfn_job *gfn__job_at(gfn_engine *e, uint64_t id)
{
	uint32_t idx = (uint32_t)id, gen = (uint32_t)(id >> 32);
	uint32_t n =
	        atomic_load_explicit(&e->njob_chunks, memory_order_acquire);
	gfn_job *j;
	uint64_t sw;

	if (!id || !gen || idx >= n * JOB_CHUNK) {
		gfn__fail(GFN_ENOENT, "no future %" PRIx64, id);
		return NULL;
	}
	j = job_ptr(e, idx);
	sw = atomic_load_explicit(&j->sw, memory_order_acquire);
	if (sw_gen(sw) != gen || sw_state(sw) == JOB_FREE ||
	    atomic_load(&j->released)) {
		if (gen > sw_gen(sw))
			gfn__fail(GFN_ENOENT, "no future %" PRIx64, id);
		else
			gfn__fail(GFN_ESTALE, "future %" PRIx64 " was released",
			          id);
		return NULL;
	}
	return j;
}

/* The status for an id gfn__job_at refused. */
static gfn_status lookup_error(uint64_t id, gfn_engine *e)
{
	uint32_t idx = (uint32_t)id, gen = (uint32_t)(id >> 32);
	uint32_t n = atomic_load(&e->njob_chunks);

	if (!id || !gen || idx >= n * JOB_CHUNK)
		return GFN_ENOENT;
	return gen > sw_gen(atomic_load(&job_ptr(e, idx)->sw)) ? GFN_ENOENT
	                                                       : GFN_ESTALE;
}

static gfn_job *lookup(gfn_engine *e, gfn_future f, gfn_status *s)
{
	gfn_job *j;

	if (!e) {
		*s = gfn__fail(GFN_EINVAL, "engine is NULL");
		return NULL;
	}
	j = gfn__job_at(e, f.id);
	if (!j)
		*s = lookup_error(f.id, e);
	return j;
}

static int is_done(gfn_job *j)
{
	return sw_state(atomic_load_explicit(&j->sw, memory_order_acquire)) ==
	       JOB_DONE;
}

/* ---- the future calls -------------------------------------------------------------- */

/* Sleep on the job's futex until done or deadline (0: none). */
static int sleep_until_done(gfn_job *j, uint64_t deadline)
{
	for (;;) {
		uint32_t w = atomic_load(&j->wake);
		int64_t left = -1;

		if (is_done(j))
			return 1;
		if (deadline) {
			uint64_t now = gfn__now_ns();
			if (now >= deadline)
				return 0;
			left = (int64_t)(deadline - now);
		}
		atomic_fetch_add(&j->waiters, 1);
		if (!is_done(j))
			gfn__futex_wait(&j->wake, w, left);
		atomic_fetch_sub(&j->waiters, 1);
	}
}

/* Sleep on j's futex for at most ns (the caller checked it is not done). */
static void nap(gfn_job *j, int64_t ns)
{
	uint32_t w = atomic_load(&j->wake);

	atomic_fetch_add(&j->waiters, 1);
	if (!is_done(j))
		gfn__futex_wait(&j->wake, w, ns);
	atomic_fetch_sub(&j->waiters, 1);
}

/* When j should end by its device's learned run time: 0 while it is
   queued or the time is unknown. */
static uint64_t expected_end(const gfn_job *j)
{
	return atomic_load_explicit(&j->end_ns, memory_order_relaxed);
}

/*
 * Wait for the job. A short spin first: a kernel of a few microseconds
 * ends sooner than a futex round trip (~20 us here) would. Then, once a
 * worker runs it, the waiter plans by the expected end: up to NAP_SPINS
 * spin windows away it keeps spinning to it (a futex wake-up costs 50 us
 * and more on a busy machine, longer than the rest of the run); further
 * away it sleeps until two windows before it (timer slack is ~50 us),
 * then spins. A job that overruns its estimate is waited for on the
 * futex, as one whose end is unknown.
 */
#define NAP_SPINS 4

static int wait_done(gfn_engine *e, gfn_job *j, int64_t timeout_ns)
{
	uint64_t start, now, spin_end, end, win, deadline = 0;
	int planned = 0;

	if (is_done(j) || timeout_ns == 0)
		return is_done(j);
	start = gfn__now_ns();
	win = (uint64_t)e->cfg.spin_us * 1000u;
	spin_end = start + win;
	if (timeout_ns > 0)
		deadline = start + (uint64_t)timeout_ns;
	for (;;) {
		if (deadline && deadline < spin_end)
			spin_end = deadline;
		for (unsigned i = 0;; i++) {
			if (is_done(j))
				return 1;
			if (gfn__spin_step(i, spin_end))
				break;
		}
		now = gfn__now_ns();
		end = expected_end(j);
		if (planned || !end || end <= now || !win ||
		    (deadline && now >= deadline))
			break;
		planned = 1; /* one plan per wait: then the futex */
		if (end - now > NAP_SPINS * win) {
			uint64_t until = end - 2 * win;

			if (deadline && deadline < until)
				until = deadline;
			nap(j, (int64_t)(until - now));
			now = gfn__now_ns();
		}
		spin_end = (end > now ? end : now) + win;
	}
	return sleep_until_done(j, deadline);
}

/* The status an ended job reports, with the detail it failed with. */
static gfn_status ended_status(const gfn_job *j)
{
	if (j->status == GFN_OK)
		return GFN_OK;
	return gfn__fail(j->status, "%s", j->detail);
}

gfn_status gfn_future_wait(gfn_engine *e, gfn_future f, int64_t timeout_ns)
{
	gfn_status s;
	gfn_job *j = lookup(e, f, &s);

	if (!j)
		return s;
	if (!wait_done(e, j, timeout_ns))
		return gfn__fail(GFN_ETIMEDOUT,
		                 "future %" PRIx64 " not ended after %" PRId64
		                 " ns",
		                 f.id, timeout_ns);
	return ended_status(j);
}

gfn_status gfn_future_poll(gfn_engine *e, gfn_future f)
{
	gfn_status s;
	gfn_job *j = lookup(e, f, &s);

	if (!j)
		return s;
	if (!is_done(j))
		return gfn__fail(GFN_EPENDING, "future %" PRIx64 " is pending",
		                 f.id);
	return ended_status(j);
}

gfn_status gfn_future_outputs(gfn_engine *e, gfn_future f, gfn_object *outs,
                              size_t cap, size_t *n)
{
	gfn_status s = gfn_future_poll(e, f);
	gfn_job *j;

	if (s != GFN_OK)
		return s;
	if (!outs && cap)
		return gfn__fail(GFN_EINVAL, "outs is NULL");
	j = gfn__job_at(e, f.id);
	if (cap < j->n_out)
		return gfn__fail(GFN_ERANGE, "%u outputs, room for %zu",
		                 j->n_out, cap);
	if (!j->n_out) { /* nothing to move */
		if (n)
			*n = 0;
		return GFN_OK;
	}
	/* The owner is the only one who takes outputs: exchange makes a
	   second (racing or later) call see them gone. */
	if (!__atomic_exchange_n(&j->outputs_live, 0, __ATOMIC_ACQ_REL))
		return gfn__fail(GFN_ESTATE, "outputs already taken");
	memcpy(outs, j->out_id, j->n_out * sizeof(*outs));
	if (n)
		*n = j->n_out;
	return GFN_OK;
}

gfn_status gfn_future_device(gfn_engine *e, gfn_future f, size_t *device)
{
	gfn_status s;
	gfn_job *j = lookup(e, f, &s);

	if (!j)
		return s;
	if (!device)
		return gfn__fail(GFN_EINVAL, "device is NULL");
	*device = (size_t)j->dev;
	return GFN_OK;
}

/*
 * Claim queued job id for a cancel: 1 when claimed, 0 when it runs or
 * ended. A job held in PREP is moving between device queues (re-placed
 * or stolen: sched.c, steal.c), for a moment: wait until it is queued
 * again rather than say it runs.
 */
static int cancel_claim(gfn_job *j, uint64_t id)
{
	uint64_t gen = id & ~0xffffffffull;

	for (;;) {
		uint64_t want = gen | JOB_QUEUED;

		if (atomic_compare_exchange_strong(&j->sw, &want,
		                                   gen | JOB_RUNNING))
			return 1;
		if (want != (gen | JOB_PREP))
			return 0;
		sched_yield();
	}
}

gfn_status gfn_future_cancel(gfn_engine *e, gfn_future f)
{
	gfn_status s;
	gfn_job *j = lookup(e, f, &s);

	if (!j)
		return s;
	if (!cancel_claim(j, f.id))
		return gfn__fail(GFN_ESTATE,
		                 "future %" PRIx64 " is running or ended",
		                 f.id);
	/* The queue entry stays; the worker that pops it fails to claim. */
	gfn__fail(GFN_ECANCELED, "invocation %" PRIx64 " was canceled", f.id);
	gfn__job_finish(e, j, GFN_ECANCELED);
	return GFN_OK;
}

gfn_status gfn_future_release(gfn_engine *e, gfn_future f)
{
	gfn_status s;
	gfn_job *j = lookup(e, f, &s);

	if (!j)
		return s;
	if (atomic_exchange(&j->released, 1))
		return gfn__fail(GFN_ESTALE, "future %" PRIx64 " was released",
		                 f.id);
	job_unref(e, j);
	return GFN_OK;
}
