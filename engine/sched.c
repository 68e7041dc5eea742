/*
 * sched.c - devices, their bounded queues, placement and the workers.
 *
 * Each device has one ring of future ids guarded by a mutex (held only to
 * move indices) and its own worker threads. Submission places each job on
 * the eligible device with the shortest queue; a full queue refuses at once
 * (GFN_EBUSY). An idle worker spins for cfg.spin_us before it sleeps on a
 * futex: a hand-off through a spinning worker costs ~2 us here, a futex
 * wake ~20 us, and the spin is bounded so an idle engine burns no core.
 */
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

#define SUBMIT_CHUNK 256 /* jobs placed under one round of queue locks */
#define POP_BATCH 16     /* most jobs a worker takes in one lock */

/* ---- devices -------------------------------------------------------------- */

static gfn_status dev_init(gfn_engine *e, gfn_dev *d, const gfn_backend *b,
                           int bidx)
{
	size_t ring = 1;
	gfn_status s;

	d->ops = b->ops;
	s = b->ops->device_info(bidx, &d->info);
	if (s != GFN_OK)
		return s;
	d->info.backend_index = bidx;
	while (ring < e->cfg.queue_capacity)
		ring <<= 1;
	d->ring = calloc(ring, sizeof(*d->ring));
	if (!d->ring)
		return gfn__fail(GFN_ENOMEM, "no memory for a device queue");
	d->mask = ring - 1;
	d->cap = e->cfg.queue_capacity;
	pthread_mutex_init(&d->lock, NULL);
	s = b->ops->device_open(bidx, &d->bdev);
	if (s != GFN_OK)
		return s;
	atomic_fetch_add(&e->context_creates, 1);
	return GFN_OK;
}

gfn_status gfn__devices_open(gfn_engine *e)
{
	int total = 0;

	for (int b = 0; b < e->nbackends; b++)
		total += e->backends[b].ndev;
	if (total > GFN_MAX_DEVICES)
		total = GFN_MAX_DEVICES;
	e->devs = calloc((size_t)total, sizeof(*e->devs));
	if (!e->devs)
		return gfn__fail(GFN_ENOMEM, "no memory for devices");
	for (int b = 0; b < e->nbackends; b++) {
		for (int i = 0; i < e->backends[b].ndev && e->ndev < total;
		     i++) {
			gfn_dev *d = &e->devs[e->ndev];
			gfn_status s;

			d->index = e->ndev++;
			s = dev_init(e, d, &e->backends[b], i);
			if (s != GFN_OK)
				return s; /* devices_close undoes the rest */
		}
	}
	return GFN_OK;
}

void gfn__devices_close(gfn_engine *e)
{
	for (int i = 0; i < e->ndev; i++) {
		gfn_dev *d = &e->devs[i];

		if (d->bdev)
			d->ops->device_close(d->bdev);
		if (d->ring) {
			free(d->ring);
			pthread_mutex_destroy(&d->lock);
		}
	}
	free(e->devs);
	e->devs = NULL;
	e->ndev = 0;
}

/* ---- queues ----------------------------------------------------------------- */

/* Take up to max ids from the head of d's queue. */
static size_t queue_pop(gfn_dev *d, uint64_t *out, size_t max)
{
	size_t n = 0;

	if (!atomic_load_explicit(&d->count, memory_order_acquire))
		return 0;
	pthread_mutex_lock(&d->lock);
	while (n < max && d->head != d->tail)
		out[n++] = d->ring[d->head++ & d->mask];
	atomic_fetch_sub(&d->count, n);
	pthread_mutex_unlock(&d->lock);
	return n;
}

static void dev_wake(gfn_dev *d, unsigned n)
{
	if (!atomic_load(&d->sleepers))
		return;
	atomic_fetch_add(&d->wake_seq, 1);
	gfn__futex_wake(&d->wake_seq, (int)(n < d->nworkers ? n : d->nworkers));
}

/* The device with room and the shortest queue that can run fn, or -1. */
static int place(gfn_engine *e, const gfn_fn *fn, unsigned start)
{
	size_t best_len = SIZE_MAX;
	int best = -1;

	for (int k = 0; k < e->ndev; k++) {
		int i = (int)((start + (unsigned)k) % (unsigned)e->ndev);
		gfn_dev *d = &e->devs[i];
		size_t len = d->tail - d->head;

		if (!fn->kernel[i] || len >= d->cap)
			continue;
		if (len < best_len) {
			best_len = len;
			best = i;
		}
	}
	return best;
}

/* Place and queue jobs[0..n-1] in order, all device locks held. */
static size_t place_locked(gfn_engine *e, gfn_job **jobs, size_t n,
                           unsigned *pushed)
{
	unsigned start =
	        atomic_fetch_add_explicit(&e->rr, 1, memory_order_relaxed);
	size_t k;

	for (k = 0; k < n; k++) {
		gfn_job *j = jobs[k];
		int i = place(e, j->fn, start + (unsigned)k);
		gfn_dev *d;
		uint64_t sw;

		if (i < 0)
			break;
		d = &e->devs[i];
		j->dev = i;
		sw = atomic_load_explicit(&j->sw, memory_order_relaxed);
		atomic_store_explicit(&j->sw,
		                      (sw & ~0xffffffffull) | JOB_QUEUED,
		                      memory_order_release);
		d->ring[d->tail++ & d->mask] = gfn__job_id(j);
		atomic_fetch_add(&d->count, 1);
		pushed[i]++;
	}
	return k;
}

gfn_status gfn__submit(gfn_engine *e, gfn_job **jobs, size_t n,
                       size_t *accepted)
{
	unsigned pushed[GFN_MAX_DEVICES] = {0};
	size_t k;

	for (int i = 0; i < e->ndev; i++)
		pthread_mutex_lock(&e->devs[i].lock);
	k = place_locked(e, jobs, n, pushed);
	for (int i = e->ndev; i-- > 0;)
		pthread_mutex_unlock(&e->devs[i].lock);
	for (int i = 0; i < e->ndev; i++)
		if (pushed[i])
			dev_wake(&e->devs[i], pushed[i]);
	*accepted = k;
	if (k < n) {
		atomic_fetch_add(&e->rejected_busy, n - k);
		return gfn__fail(GFN_EBUSY,
		                 "every device queue that can run %s is full "
		                 "(capacity %zu)",
		                 jobs[k]->fn->name, e->cfg.queue_capacity);
	}
	return GFN_OK;
}

/* ---- running a job ------------------------------------------------------------ */

static gfn_status execute(gfn_worker *w, gfn_job *j)
{
	gfn_engine *e = w->e;
	gfn_dev *d = w->dev;
	gfn_kernel_args a = {
	        .n_inputs = j->n_in,
	        .inputs = j->in,
	        .n_outputs = j->n_out,
	        .outputs = j->out,
	        .n_params = j->n_par,
	        .params = j->par,
	        .device = d->index,
	};
	gfn_launch l = {.args = &a};
	gfn_status s = GFN_OK;

	/* Inputs: the CPU reads store memory in place (no copy). */
	if (j->n_out)
		s = gfn_store_create_n(e->store, j->n_out, j->out, j->out_id);
	if (s != GFN_OK)
		return s;
	s = d->ops->launch(w->bq, j->fn->kernel[d->index], &l);
	if (s == GFN_OK)
		s = d->ops->sync(w->bq);
	if (s != GFN_OK) {
		gfn_store_discard_n(e->store, j->n_out, j->out_id);
		return s;
	}
	if (j->n_out) {
		gfn_store_seal_n(e->store, j->n_out, j->out_id);
		j->outputs_live = 1;
	}
	return GFN_OK;
}

void gfn__run_job(gfn_worker *w, gfn_job *j)
{
	gfn_status s;

	atomic_fetch_add_explicit(&w->dev->running, 1, memory_order_relaxed);
	s = execute(w, j);
	atomic_fetch_sub_explicit(&w->dev->running, 1, memory_order_relaxed);
	gfn__job_finish(w->e, j, s);
}

/* Claim a queued id (it may have been canceled meanwhile) and run it. */
static void run_id(gfn_worker *w, uint64_t id)
{
	gfn_job *j = gfn__job_slot(w->e, (uint32_t)id);
	uint64_t want = (id & ~0xffffffffull) | JOB_QUEUED;

	if (atomic_compare_exchange_strong(
	            &j->sw, &want, (want & ~0xffffffffull) | JOB_RUNNING))
		gfn__run_job(w, j);
}

/* Wait for work: spin a little, then sleep until woken. */
static void idle(gfn_worker *w)
{
	gfn_dev *d = w->dev;
	gfn_engine *e = w->e;
	uint64_t end = gfn__now_ns() + (uint64_t)e->cfg.spin_us * 1000u;
	uint32_t seq;

	for (unsigned i = 0;; i++) {
		if (atomic_load_explicit(&d->count, memory_order_relaxed) ||
		    atomic_load_explicit(&e->quit, memory_order_relaxed))
			return;
		if (gfn__spin_step(i, end))
			break;
	}
	seq = atomic_load(&d->wake_seq);
	atomic_fetch_add(&d->sleepers, 1);
	if (!atomic_load(&d->count) && !atomic_load(&e->quit))
		gfn__futex_wait(&d->wake_seq, seq, -1);
	atomic_fetch_sub(&d->sleepers, 1);
}

static void *worker_main(void *arg)
{
	gfn_worker *w = arg;
	uint64_t ids[POP_BATCH];
	char name[16];

	snprintf(name, sizeof(name), "gfn-dev%d", w->dev->index);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		/* Share a long queue among the device's workers. */
		size_t want = atomic_load(&w->dev->count) / w->dev->nworkers;
		size_t n = queue_pop(w->dev, ids,
		                     want < 1           ? 1
		                     : want > POP_BATCH ? POP_BATCH
		                                        : want);
		for (size_t k = 0; k < n; k++)
			run_id(w, ids[k]);
		if (n)
			continue;
		if (atomic_load(&w->e->quit))
			break; /* queue empty and no more submissions */
		idle(w);
	}
	return NULL;
}

/* ---- start and stop ------------------------------------------------------------- */

gfn_status gfn__workers_start(gfn_engine *e)
{
	for (int i = 0; i < e->ndev; i++) {
		gfn_dev *d = &e->devs[i];

		d->workers =
		        calloc(e->cfg.workers_per_device, sizeof(*d->workers));
		if (!d->workers)
			return gfn__fail(GFN_ENOMEM, "no memory for workers");
		d->nworkers = e->cfg.workers_per_device;
		for (unsigned k = 0; k < d->nworkers; k++) {
			gfn_worker *w = &d->workers[k];
			gfn_status s;

			w->e = e;
			w->dev = d;
			s = d->ops->queue_create(d->bdev, &w->bq);
			if (s != GFN_OK)
				return s;
			if (pthread_create(&w->thread, NULL, worker_main, w))
				return gfn__fail(
				        GFN_ESYS,
				        "cannot start a worker thread");
			w->started = 1;
		}
	}
	return GFN_OK;
}

/* End every job still queued on d with GFN_ECANCELED. */
static void cancel_queued(gfn_engine *e, gfn_dev *d)
{
	uint64_t ids[POP_BATCH];
	size_t n;

	while ((n = queue_pop(d, ids, POP_BATCH)) > 0) {
		for (size_t k = 0; k < n; k++) {
			gfn_job *j = gfn__job_slot(e, (uint32_t)ids[k]);
			uint64_t want = (ids[k] & ~0xffffffffull) | JOB_QUEUED;

			if (!atomic_compare_exchange_strong(
			            &j->sw, &want,
			            (want & ~0xffffffffull) | JOB_RUNNING))
				continue;
			gfn__fail(GFN_ECANCELED,
			          "engine destroyed before the invocation ran");
			gfn__job_finish(e, j, GFN_ECANCELED);
		}
	}
}

void gfn__workers_stop(gfn_engine *e)
{
	atomic_store(&e->stopping, 1);
	while (atomic_load(&e->submitting)) /* let submissions finish */
		sched_yield();
	atomic_store(&e->quit, 1);
	for (int i = 0; i < e->ndev; i++) {
		gfn_dev *d = &e->devs[i];

		if (e->cfg.shutdown == GFN_SHUTDOWN_CANCEL)
			cancel_queued(e, d);
		atomic_fetch_add(&d->wake_seq, 1);
		gfn__futex_wake(&d->wake_seq, INT32_MAX);
	}
	for (int i = 0; i < e->ndev; i++) {
		gfn_dev *d = &e->devs[i];

		for (unsigned k = 0; k < d->nworkers; k++) {
			gfn_worker *w = &d->workers[k];
			if (w->started)
				pthread_join(w->thread, NULL);
			if (w->bq)
				d->ops->queue_destroy(w->bq);
		}
		free(d->workers);
		d->workers = NULL;
		d->nworkers = 0;
	}
}
