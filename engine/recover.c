/*
 * recover.c - a device whose context is poisoned (CUDA sticky errors: one
 * illegal address and every later call on that context fails) is taken
 * out of service, its queued work moves to other devices, and it is rebuilt
 * in place or retired. The invocation that hit the fault has already
 * failed with GFN_EDEVICE; everything else goes on.
 *
 * Order of a recovery, run by the worker that saw the fault:
 *  1. state = QUARANTINED with every queue lock held: placement skips it;
 *  2. its queue is emptied and the ids placed again (gfn__replace_ids);
 *  3. wait until no job runs on it (run_id raises running before it reads
 *     the state, so a late pop re-places itself instead of running);
 *  4. drop every handle made from the context: worker queues, kernels,
 *     registered regions, the device pool; then device_reset;
 *  5. rebuild them and mark it ACTIVE, or RETIRED when any step fails.
 * reg_lock is held from 4 to 5 so no region registers meanwhile.
 */
#include <sched.h>
#include <stdlib.h>

#include "engine/engine.h"

/* Take every id from d's queue. Every queue lock held. */
static size_t drain_locked(gfn_dev *d, uint64_t **out)
{
	size_t n = d->q.n, k = 0;
	uint64_t *ids = n ? malloc(n * sizeof(*ids)) : NULL;
	gfn_qent qe;

	if (n && !ids)
		n = 0; /* no memory: the ids stay, and run_id re-places them */
	for (; k < n && gfn_pq_pop(&d->q, &qe); k++)
		ids[k] = qe.id;
	atomic_fetch_sub(&d->count, n);
	*out = ids;
	return n;
}

static void drop_queues(gfn_dev *d)
{
	for (unsigned k = 0; k < d->nworkers; k++) {
		d->ops->queue_destroy(d->workers[k].bq);
		d->workers[k].bq = NULL;
	}
}

static gfn_status make_queues(gfn_dev *d)
{
	gfn_status s = GFN_OK;

	for (unsigned k = 0; k < d->nworkers && s == GFN_OK; k++)
		s = d->ops->queue_create(d->bdev, &d->workers[k].bq);
	return s;
}

/* Registered regions of device d: drop (on = 0) or register again. */
static gfn_status regions(gfn_engine *e, gfn_dev *d, int on)
{
	gfn_status s = GFN_OK;

	for (size_t k = 0; k < e->nregs && s == GFN_OK; k++) {
		gfn_reg *r = &e->regs[k];
		if (r->dev != d->index)
			continue;
		if (!on && r->handle)
			gfn_backend_host_unregister(d->ops, d->bdev, r->handle);
		if (!on)
			r->handle = NULL;
		else
			s = gfn_backend_host_register(d->ops, d->bdev, r->base,
			                              r->len, &r->handle);
	}
	return s;
}

/* Release (on = 0) or prepare again fn's device program on d. */
static gfn_status program(gfn_engine *e, gfn_fn *fn, gfn_dev *d, int on)
{
	int loads = 0, hits = 0;
	gfn_devctx c;
	gfn_status s;

	gfn__devctx(e, d->index, &c);
	if (!on) {
		fn->dx.release(fn->cpu_user, &c);
		return GFN_OK;
	}
	s = fn->dx.prepare(fn->cpu_user, &c, &loads, &hits);
	atomic_fetch_add(&e->kernel_compiles, (uint64_t)loads);
	atomic_fetch_add(&e->kernel_cache_hits, (uint64_t)hits);
	return s;
}

/* Unload (on = 0) or load again every function's kernel (or device
   program) on device d. */
static gfn_status kernels(gfn_engine *e, gfn_dev *d, int on)
{
	gfn_status s = GFN_OK;

	pthread_mutex_lock(&e->fn_lock);
	for (int i = 0; i < GFN_MAX_FUNCTIONS && s == GFN_OK; i++) {
		gfn_fn *fn = e->fn_slots[i].fn;
		gfn_ksrc src;
		int cached = 0;

		if (!fn)
			continue;
		if (fn->dx_on >> d->index & 1) {
			s = program(e, fn, d, on);
			continue;
		}
		if (!on && fn->kernel[d->index]) {
			d->ops->kernel_unload(d->bdev, fn->kernel[d->index]);
			fn->kernel[d->index] = NULL;
		} else if (on && gfn__fn_source(e, fn, d, &src)) {
			s = d->ops->kernel_load(d->bdev, &src,
			                        &fn->kernel[d->index], &cached);
			atomic_fetch_add(cached ? &e->kernel_cache_hits
			                        : &e->kernel_compiles,
			                 1);
		}
	}
	pthread_mutex_unlock(&e->fn_lock);
	return s;
}

static void drop_context_handles(gfn_engine *e, gfn_dev *d)
{
	drop_queues(d);
	kernels(e, d, 0);
	regions(e, d, 0);
	if (d->pool) /* keep device_allocs monotonic across the rebuild */
		atomic_fetch_add(&e->dead_device_allocs,
		                 gfn_devmem_driver_allocs(d->pool));
	gfn_devmem_destroy(d->pool);
	d->pool = NULL;
}

static gfn_status rebuild(gfn_engine *e, gfn_dev *d)
{
	gfn_status s;

	if (!d->ops->device_reset)
		return gfn__fail(GFN_ENOTSUP, "%s cannot be reset",
		                 d->info.name);
	if ((s = d->ops->device_reset(d->bdev)) != GFN_OK)
		return s;
	if (!(d->ops->flags & GFN_BFLAG_HOST_IS_DEVICE) &&
	    (s = gfn_devmem_create(d->ops, d->bdev, e->cfg.device_pool_chunk,
	                           e->cfg.device_pool_limit
	                                   ? e->cfg.device_pool_limit
	                                   : d->info.memory_bytes / 2,
	                           &d->pool)) != GFN_OK)
		return s;
	if ((s = make_queues(d)) != GFN_OK || (s = regions(e, d, 1)) != GFN_OK)
		return s;
	return kernels(e, d, 1);
}

static void set_state(gfn_engine *e, gfn_dev *d, int state)
{
	gfn__lock_devices(e);
	atomic_store(&d->state, state);
	gfn__unlock_devices(e);
}

static void recover(gfn_engine *e, gfn_dev *d)
{
	gfn_status s;

	pthread_mutex_lock(&e->reg_lock);
	drop_context_handles(e, d);
	s = rebuild(e, d);
	if (s != GFN_OK) {
		gfn__log(GFN_LOG_ERROR, "%s retired: %s", d->info.name,
		         gfn_error_detail());
		drop_context_handles(e, d); /* what the rebuild made */
		atomic_fetch_add(&e->devices_retired, 1);
	} else {
		gfn__log(GFN_LOG_WARN, "%s was reset after a device fault",
		         d->info.name);
		atomic_fetch_add(&e->device_resets, 1);
	}
	pthread_mutex_unlock(&e->reg_lock);
	set_state(e, d, s == GFN_OK ? DEV_ACTIVE : DEV_RETIRED);
}

void gfn__quarantine(gfn_worker *w)
{
	gfn_engine *e = w->e;
	gfn_dev *d = w->dev;
	uint64_t *ids = NULL;
	size_t n;

	gfn__lock_devices(e);
	if (atomic_load(&d->state) != DEV_ACTIVE) { /* another worker has it */
		gfn__unlock_devices(e);
		return;
	}
	atomic_store(&d->state, DEV_QUARANTINED);
	n = drain_locked(d, &ids);
	gfn__unlock_devices(e);
	gfn__log(GFN_LOG_WARN, "%s poisoned: quarantined, %zu queued moved",
	         d->info.name, n);
	gfn__replace_ids(e, ids, n);
	free(ids);
	while (atomic_load(&d->running)) /* jobs still on the device */
		sched_yield();
	recover(e, d);
}
