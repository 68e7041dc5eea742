/*
 * sched.c - devices, their bounded queues, placement and the workers.
 *
 * Each device has one ring of future ids guarded by a mutex (held only to
 * move indices) and its own worker threads. Submission places each job on
 * the eligible device with the shortest queue; a full queue refuses at once
 * (GFN_EBUSY). An idle worker spins for cfg.spin_us before it sleeps on a
 * futex: a hand-off through a spinning worker costs ~2 us here, a futex
 * wake ~20 us, and the spin is bounded so an idle engine burns no core.
 * A worker whose queue runs empty first steals queued work (steal.c).
 */
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/place.h"

#define SUBMIT_CHUNK 256 /* jobs placed under one round of queue locks */
#define POP_BATCH 16     /* most jobs a worker takes in one lock */
/* Expected work a worker takes in one pop (at least one job): several
   short jobs save lock round trips, but a popped job can no longer be
   stolen by an idle device (steal.c), so no more than about a futex
   wake's worth. */
#define POP_WINDOW_NS 20000

/* ---- devices -------------------------------------------------------------- */

static gfn_status dev_init(gfn_engine *e, gfn_dev *d, const gfn_backend *b,
                           int bidx)
{
	gfn_status s;

	d->ops = b->ops;
	s = b->ops->device_info(bidx, &d->info);
	if (s != GFN_OK)
		return s;
	d->info.backend_index = bidx;
	if ((s = gfn_pq_init(&d->q, e->cfg.queue_capacity)) != GFN_OK)
		return s;
	d->cap = e->cfg.queue_capacity;
	pthread_mutex_init(&d->lock, NULL);
	s = b->ops->device_open(bidx, &d->bdev);
	if (s != GFN_OK)
		return s;
	atomic_fetch_add(&e->context_creates, 1);
	if (b->ops->flags & GFN_BFLAG_HOST_IS_DEVICE)
		return GFN_OK; /* tensors stay in host memory */
	return gfn_devmem_create(b->ops, d->bdev, e->cfg.device_pool_chunk,
	                         e->cfg.device_pool_limit
	                                 ? e->cfg.device_pool_limit
	                                 : d->info.memory_bytes / 2,
	                         &d->pool);
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

		gfn_devmem_destroy(d->pool);
		if (d->bdev)
			d->ops->device_close(d->bdev);
		if (d->q.h) {
			gfn_pq_fini(&d->q);
			pthread_mutex_destroy(&d->lock);
		}
	}
	free(e->devs);
	e->devs = NULL;
	e->ndev = 0;
}

/* ---- queues ----------------------------------------------------------------- */

/* Take up to max ids from the head of d's queue, until their expected
   run time reaches window ns. */
static size_t queue_pop_window(gfn_dev *d, uint64_t *out, size_t max,
                               uint64_t window)
{
	uint64_t work = 0;
	size_t n = 0;
	gfn_qent qe;

	if (!atomic_load_explicit(&d->count, memory_order_acquire))
		return 0;
	pthread_mutex_lock(&d->lock);
	while (n < max && work < window && gfn_pq_pop(&d->q, &qe)) {
		out[n++] = qe.id;
		work += qe.run;
	}
	atomic_fetch_sub(&d->count, n);
	pthread_mutex_unlock(&d->lock);
	return n;
}

size_t gfn__queue_pop(gfn_dev *d, uint64_t *out, size_t max)
{
	return queue_pop_window(d, out, max, UINT64_MAX);
}

static void dev_wake(gfn_dev *d, unsigned n)
{
	if (!atomic_load(&d->sleepers))
		return;
	atomic_fetch_add(&d->wake_seq, 1);
	gfn__futex_wake(&d->wake_seq, (int)(n < d->nworkers ? n : d->nworkers));
}

#define DEFAULT_RUN_NS 20000 /* a function never timed anywhere yet */

/*
 * Expected run time of fn on device i: learned there; else the best
 * learned on a device of the same backend (an optimistic guess, so an
 * untried device gets tried and learns its own); else a default.
 */
uint64_t gfn__expected_ns(const gfn_engine *e, gfn_fn *fn, int i)
{
	uint64_t t = atomic_load_explicit(&fn->avg_ns[i], memory_order_relaxed);
	uint64_t best = 0;

	if (t)
		return t;
	for (int k = 0; k < e->ndev; k++) {
		uint64_t a = atomic_load_explicit(&fn->avg_ns[k],
		                                  memory_order_relaxed);
		if (a && e->devs[k].ops == e->devs[i].ops &&
		    (!best || a < best))
			best = a;
	}
	return best ? best : DEFAULT_RUN_NS;
}

const uint64_t (*gfn__link_snapshot(
        gfn_engine *e, uint64_t q[][GFN_PLACE_MAX_NODES]))[GFN_PLACE_MAX_NODES]
{
	int n = gfn_topology_nodes(e->topo);

	if (n < 2)
		return NULL;
	n = n < GFN_PLACE_MAX_NODES ? n : GFN_PLACE_MAX_NODES;
	for (int a = 0; a < n; a++)
		for (int b = 0; b < n; b++)
			q[a][b] = atomic_load_explicit(&e->link_bytes[a][b],
			                               memory_order_relaxed);
	return (const uint64_t(*)[GFN_PLACE_MAX_NODES])q;
}

/* Count (sign 1) or uncount (-1) j's bytes that cross to node dst. */
static void link_account(gfn_engine *e, const gfn_job *j, int dst, int sign)
{
	if (dst < 0 || dst >= GFN_PLACE_MAX_NODES)
		return;
	for (int k = 0; k < j->n_in; k++) {
		int src = j->in_node[k];
		if (src < 0 || src == dst || src >= GFN_PLACE_MAX_NODES)
			continue;
		if (sign > 0)
			atomic_fetch_add(&e->link_bytes[src][dst],
			                 j->in[k].nbytes);
		else
			atomic_fetch_sub(&e->link_bytes[src][dst],
			                 j->in[k].nbytes);
	}
}

void gfn__place_in(gfn_engine *e, const gfn_job *j, uint64_t *bytes,
                   uint64_t queued[][GFN_PLACE_MAX_NODES], gfn_place_in *in)
{
	for (int k = 0; k < j->n_in; k++)
		bytes[k] = j->in[k].nbytes;
	*in = (gfn_place_in){j->n_in, j->in_node, bytes, e->cfg.numa_link_gbs,
	                     gfn__link_snapshot(e, queued)};
}

uint64_t gfn__run_ns(const gfn_engine *e, gfn_fn *fn, int i)
{
	uint64_t t = gfn__expected_ns(e, fn, i);

	if (fn->load_cost) /* instance not warm there yet */
		t += fn->load_cost(fn->cpu_user, i);
	return t;
}

/*
 * The allowed device with room where j would finish first: the work
 * already queued there (learned run times), the input bytes that must
 * cross a NUMA link to reach it, and j's own run time there (place.c
 * decides). -1 when none may take it.
 */
static int place(gfn_engine *e, gfn_job *j, unsigned start, uint64_t *finish)
{
	gfn_place_dev pd[GFN_MAX_DEVICES];
	uint64_t bytes[GFN_MAX_INPUTS];
	uint64_t queued[GFN_PLACE_MAX_NODES][GFN_PLACE_MAX_NODES];
	gfn_place_in in;

	gfn__place_in(e, j, bytes, queued, &in);
	for (int i = 0; i < e->ndev; i++) {
		gfn_dev *d = &e->devs[i];

		pd[i].ok = atomic_load(&d->state) == DEV_ACTIVE &&
		           (j->fn->runs_on & (1ull << i)) && d->q.n < d->cap &&
		           (!j->devmask || (j->devmask & (1ull << i)));
		if (!pd[i].ok)
			continue;
		pd[i].node = d->info.numa_node;
		pd[i].backlog_ns = atomic_load_explicit(&d->backlog_ns,
		                                        memory_order_relaxed);
		pd[i].run_ns = gfn__run_ns(e, j->fn, i);
	}
	return gfn__place_pick(pd, e->ndev, &in, start, finish);
}

void gfn__push_job(gfn_engine *e, gfn_job *j, int i)
{
	gfn_dev *d = &e->devs[i];
	uint64_t start;

	j->dev = i;
	j->link_dst = (int8_t)d->info.numa_node;
	link_account(e, j, j->link_dst, 1);
	j->est_ns = gfn__expected_ns(e, j->fn, i);
	atomic_store_explicit(&j->end_ns, 0, memory_order_relaxed);
	/* Where it would start in arrival order: now + what is ahead. */
	start = gfn__now_ns() + atomic_fetch_add_explicit(&d->backlog_ns,
	                                                  j->est_ns,
	                                                  memory_order_relaxed);
	gfn_pq_push(&d->q, gfn__job_id(j), j->prio, j->deadline, start,
	            j->est_ns);
	atomic_fetch_add(&d->count, 1);
}

/*
 * Place and queue jobs[0..n-1] in order, all device locks held, until
 * one finds no room (GFN_EBUSY) or could not finish before its deadline
 * anywhere (GFN_ETIMEDOUT). *done says how many went in.
 */
static gfn_status place_locked(gfn_engine *e, gfn_job **jobs, size_t n,
                               unsigned *pushed, size_t *done)
{
	unsigned start =
	        atomic_fetch_add_explicit(&e->rr, 1, memory_order_relaxed);
	uint64_t now = gfn__now_ns(), finish;
	size_t k;

	for (k = 0; k < n; k++) {
		gfn_job *j = jobs[k];
		int i = place(e, j, start + (unsigned)k, &finish);
		uint64_t sw;

		if (i < 0)
			break;
		if (j->deadline != UINT64_MAX && now + finish > j->deadline) {
			*done = k;
			return gfn__fail(
			        GFN_ETIMEDOUT,
			        "%s cannot finish before its deadline: "
			        "estimated %llu ns late",
			        j->fn->name,
			        (unsigned long long)(now + finish -
			                             j->deadline));
		}
		sw = atomic_load_explicit(&j->sw, memory_order_relaxed);
		atomic_store_explicit(&j->sw,
		                      (sw & ~0xffffffffull) | JOB_QUEUED,
		                      memory_order_release);
		gfn__push_job(e, j, i);
		pushed[i]++;
	}
	*done = k;
	if (k < n)
		return gfn__fail(GFN_EBUSY,
		                 "every device that may run %s is full (queue "
		                 "capacity %zu) or being reset after a fault",
		                 jobs[k]->fn->name, e->cfg.queue_capacity);
	return GFN_OK;
}

void gfn__lock_devices(gfn_engine *e)
{
	for (int i = 0; i < e->ndev; i++)
		pthread_mutex_lock(&e->devs[i].lock);
}

void gfn__unlock_devices(gfn_engine *e)
{
	for (int i = e->ndev; i-- > 0;)
		pthread_mutex_unlock(&e->devs[i].lock);
}

static void wake_pushed(gfn_engine *e, const unsigned *pushed)
{
	for (int i = 0; i < e->ndev; i++)
		if (pushed[i])
			dev_wake(&e->devs[i], pushed[i]);
}

gfn_status gfn__submit(gfn_engine *e, gfn_job **jobs, size_t n,
                       size_t *accepted)
{
	unsigned pushed[GFN_MAX_DEVICES] = {0};
	gfn_status s;

	gfn__lock_devices(e);
	s = place_locked(e, jobs, n, pushed, accepted);
	gfn__unlock_devices(e);
	wake_pushed(e, pushed);
	if (s == GFN_EBUSY)
		atomic_fetch_add(&e->rejected_busy, n - *accepted);
	return s;
}

/* End a job that was queued with status, if it is still queued. */
static void end_queued(gfn_engine *e, uint64_t id, gfn_status status)
{
	gfn_job *j = gfn__job_slot(e, (uint32_t)id);
	uint64_t want = (id & ~0xffffffffull) | JOB_QUEUED;

	if (atomic_compare_exchange_strong(
	            &j->sw, &want, (want & ~0xffffffffull) | JOB_RUNNING))
		gfn__job_finish(e, j, status);
}

void gfn__replace_ids(gfn_engine *e, const uint64_t *ids, size_t n)
{
	unsigned pushed[GFN_MAX_DEVICES] = {0};
	uint64_t fail[64];
	size_t nfail = 0;

	for (size_t k = 0; k < n; k++) {
		gfn_job *j = gfn__job_slot(e, (uint32_t)ids[k]);
		int i;

		uint64_t queued = (ids[k] & ~0xffffffffull) | JOB_QUEUED;
		uint64_t want = queued;

		gfn__lock_devices(e);
		/* Hold it in PREP while it moves: a cancel meanwhile waits
		   instead of ending a job that is about to be queued again. */
		if (!atomic_compare_exchange_strong(&j->sw, &want,
		                                    (queued & ~0xffffffffull) |
		                                            JOB_PREP)) {
			gfn__unlock_devices(e); /* canceled meanwhile */
			continue;
		}
		i = place(e, j, (unsigned)k, NULL);
		if (i >= 0) {
			gfn__backlog_done(e, j); /* leaves its old device */
			gfn__push_job(e, j, i);
			pushed[i]++;
		}
		atomic_store(&j->sw, queued);
		gfn__unlock_devices(e);
		if (i < 0)
			fail[nfail++] = ids[k];
		if (nfail == 64 || k + 1 == n) /* end them outside the locks */
			for (; nfail; nfail--) {
				gfn__fail(
				        GFN_EDEVICE,
				        "its device failed and no other device "
				        "can run it");
				end_queued(e, fail[nfail - 1], GFN_EDEVICE);
			}
	}
	wake_pushed(e, pushed);
}

/* ---- running a job ------------------------------------------------------------ */

/* The tensor a work rule names: inputs first, then outputs. */
static const gfn_tensor *rule_tensor(const gfn_job *j, int idx)
{
	return idx < j->n_in ? &j->in[idx] : &j->out[idx - j->n_in];
}

static uint64_t elements(const gfn_tensor *t)
{
	uint64_t n = 1;

	for (int d = 0; d < t->ndim; d++)
		n *= (uint64_t)t->shape[d];
	return n;
}

/*
 * Global and local sizes and the size arguments from fn's work rule.
 * Returns 0 when there is no work (an empty tensor).
 */
static int work_size(const gfn_fn *fn, const gfn_job *j, gfn_launch *l)
{
	const gfn_work_rule *r = &fn->work;
	const gfn_tensor *t = rule_tensor(j, r->tensor);
	uint64_t n = elements(t);
	uint64_t cols = t->ndim ? (uint64_t)t->shape[t->ndim - 1] : 1;

	memset(l->global, 0, sizeof(l->global));
	memcpy(l->local, r->local, sizeof(l->local));
	l->nsizes = 0;
	if (!r->kind) { /* a C kernel: no grid, one call */
		l->global[0] = 1;
		return 1;
	}
	if (r->kind == GFN_WORK_ELEMENTS) {
		l->global[0] = n;
		l->sizes[l->nsizes++] = n;
	} else if (r->kind == GFN_WORK_MATRIX) {
		l->global[0] = cols;
		l->global[1] = cols ? n / cols : 0;
		l->sizes[l->nsizes++] = cols;
		l->sizes[l->nsizes++] = l->global[1];
	} else {
		memcpy(l->global, r->global, sizeof(l->global));
		l->sizes[l->nsizes++] = n;
	}
	if (!r->pass_sizes)
		l->nsizes = 0;
	for (int d = 0; d < 3; d++)
		if (l->global[d] && l->local[d])
			l->global[d] = (l->global[d] + l->local[d] - 1) /
			               l->local[d] * l->local[d];
	if (r->kind == GFN_WORK_MATRIX)
		return l->global[0] && l->global[1];
	return l->global[0] != 0;
}

/* Kernel arguments of j, with tensors as given. */
static void kernel_args(gfn_kernel_args *a, const gfn_job *j, int dev,
                        const gfn_tensor *in, gfn_tensor *out)
{
	a->n_inputs = j->n_in;
	a->inputs = in;
	a->n_outputs = j->n_out;
	a->outputs = out;
	a->n_params = j->n_par;
	a->params = j->par;
	a->device = dev;
}

/* Run j where the device reads and writes host memory (the CPU). */
static gfn_status run_in_place(gfn_worker *w, gfn_job *j)
{
	gfn_dev *d = w->dev;
	gfn_kernel_args a;
	gfn_launch l = {.args = &a, .param_types = j->fn->par};
	gfn_status s;

	kernel_args(&a, j, d->index, j->in, j->out);
	s = d->ops->launch(w->bq, j->fn->kernel[d->index], &l);
	return s == GFN_OK ? d->ops->sync(w->bq) : s;
}

/* Stage tensors into pool blocks; copy host bytes in when copy_in. */
static gfn_status stage(gfn_worker *w, size_t n, const gfn_tensor *host,
                        gfn_tensor *dev, gfn_dblock **blk, int copy_in)
{
	gfn_status s = GFN_OK;

	for (size_t k = 0; k < n && s == GFN_OK; k++) {
		s = gfn_devmem_alloc(w->dev->pool, host[k].nbytes, &blk[k]);
		if (s != GFN_OK)
			break;
		dev[k] = host[k];
		dev[k].data = &blk[k]->mem;
		if (copy_in && host[k].nbytes)
			s = gfn_backend_copy_h2d(w->dev->ops, w->bq,
			                         &blk[k]->mem, 0, host[k].data,
			                         host[k].nbytes);
	}
	return s;
}

/* Copy outputs back into their store objects. */
static gfn_status unstage(gfn_worker *w, gfn_job *j, gfn_dblock **blk)
{
	gfn_status s = GFN_OK;

	for (size_t k = 0; k < j->n_out && s == GFN_OK; k++)
		if (j->out[k].nbytes)
			s = gfn_backend_copy_d2h(w->dev->ops, w->bq,
			                         j->out[k].data, &blk[k]->mem,
			                         0, j->out[k].nbytes);
	return s;
}

/* Device memory j's tensors take (what the tenant limit counts). */
static int64_t job_bytes(const gfn_job *j)
{
	int64_t n = 0;

	for (int k = 0; k < j->n_in; k++)
		n += (int64_t)j->in[k].nbytes;
	for (int k = 0; k < j->n_out; k++)
		n += (int64_t)j->out[k].nbytes;
	return n;
}

/* Enqueue j's device program (a function of several launches). */
static gfn_status run_program(gfn_worker *w, gfn_job *j,
                              const gfn_kernel_args *a, gfn_devrun *r)
{
	gfn__devctx(w->e, w->dev->index, &r->dev);
	r->q = w->bq;
	r->pool = w->dev->pool;
	r->args = a;
	r->host_in = j->in;
	return j->fn->dx.run(j->fn->cpu_user, r);
}

/* After the sync: free what the program held, tell it how it ended. */
static void program_done(gfn_worker *w, gfn_devrun *r, gfn_status s)
{
	for (int k = r->nhold; k-- > 0;)
		gfn_devmem_free(w->dev->pool, r->hold[k]);
	if (r->after)
		r->after(r->after_arg, s);
}

/*
 * Run j on a device with its own memory: inputs go straight from store
 * memory into pool blocks (one async copy each), the kernel runs, outputs
 * come back into the new store objects, then one sync.
 */
static gfn_status run_on_device(gfn_worker *w, gfn_job *j)
{
	gfn_dblock *bin[GFN_MAX_INPUTS] = {0}, *bout[GFN_MAX_OUTPUTS] = {0};
	gfn_tensor din[GFN_MAX_INPUTS], dout[GFN_MAX_OUTPUTS];
	gfn_dev *d = w->dev;
	gfn_kernel_args a;
	gfn_launch l = {.args = &a, .param_types = j->fn->par};
	gfn_devrun r = {.nhold = 0};
	gfn_status s, s2;

	int64_t bytes = job_bytes(j);

	s = gfn__tenant_take_device(w->e, j->quota, d->index, bytes);
	if (s != GFN_OK)
		return s;
	s = stage(w, j->n_in, j->in, din, bin, 1);
	if (s == GFN_OK)
		s = stage(w, j->n_out, j->out, dout, bout, 0);
	kernel_args(&a, j, d->index, din, dout);
	if (s == GFN_OK && !j->fn->kernel[d->index])
		s = run_program(w, j, &a, &r);
	else if (s == GFN_OK && work_size(j->fn, j, &l))
		s = d->ops->launch(w->bq, j->fn->kernel[d->index], &l);
	if (s == GFN_OK)
		s = unstage(w, j, bout);
	s2 = d->ops->sync(w->bq); /* also before the blocks are reused */
	if (s == GFN_OK)
		s = s2;
	/* Blocks go back in the reverse of the order they were taken: the
	   pool's free lists are stacks, so the next invocation of the same
	   shape gets the very same blocks (a CUDA graph recorded with their
	   addresses replays). */
	program_done(w, &r, s);
	for (size_t k = GFN_MAX_OUTPUTS; k-- > 0;)
		gfn_devmem_free(d->pool, bout[k]);
	for (size_t k = GFN_MAX_INPUTS; k-- > 0;)
		gfn_devmem_free(d->pool, bin[k]);
	gfn__tenant_give_device(w->e, j->quota, d->index, bytes);
	return s;
}

static gfn_status execute(gfn_worker *w, gfn_job *j)
{
	gfn_engine *e = w->e;
	gfn_status s = GFN_OK;

	if (j->n_out)
		s = gfn_store_create_n(e->store, j->tenant, j->n_out, j->out,
		                       j->out_id);
	if (s != GFN_OK)
		return s;
	s = gfn__run_tensors(w, j);
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

/* Fold a run time into fn's average on device i (weight 1/8). */
void gfn__learn(gfn_fn *fn, int i, uint64_t ns)
{
	uint64_t a = atomic_load_explicit(&fn->avg_ns[i], memory_order_relaxed);

	a = a ? a - a / 8 + ns / 8 : ns;
	atomic_store_explicit(&fn->avg_ns[i], a ? a : 1, memory_order_relaxed);
}

void gfn__backlog_done(gfn_engine *e, gfn_job *j)
{
	link_account(e, j, j->link_dst, -1);
	j->link_dst = -1;
	if (j->est_ns)
		atomic_fetch_sub_explicit(&e->devs[j->dev].backlog_ns,
		                          j->est_ns, memory_order_relaxed);
	j->est_ns = 0;
}

/* A device error that poisoned the context: the device must be reset. */
static int poisoned(const gfn_dev *d, gfn_status s)
{
	return s == GFN_EDEVICE && d->ops->poisoned &&
	       d->ops->poisoned(d->bdev);
}

/*
 * Claim a queued id (it may have been canceled meanwhile) to run here.
 * running goes up before the device state is read, so a quarantine that
 * sets the state and then sees running == 0 knows no job is left on the
 * device (the same pattern as the futex sleepers).
 */
gfn_job *gfn__claim(gfn_worker *w, uint64_t id)
{
	gfn_job *j = gfn__job_slot(w->e, (uint32_t)id);
	uint64_t want = (id & ~0xffffffffull) | JOB_QUEUED;
	gfn_dev *d = w->dev;

	atomic_fetch_add(&d->running, 1);
	if (atomic_load(&d->state) != DEV_ACTIVE) { /* popped before it */
		atomic_fetch_sub(&d->running, 1);
		gfn__replace_ids(w->e, &id, 1);
		return NULL;
	}
	if (!atomic_compare_exchange_strong(
	            &j->sw, &want, (want & ~0xffffffffull) | JOB_RUNNING)) {
		atomic_fetch_sub(&d->running, 1);
		return NULL;
	}
	if (j->deadline != UINT64_MAX &&
	    gfn__now_ns() + gfn__expected_ns(w->e, j->fn, d->index) >
	            j->deadline) {
		atomic_fetch_sub(&d->running, 1);
		gfn__fail(GFN_ETIMEDOUT,
		          "%s would end after its deadline: not run",
		          j->fn->name);
		gfn__job_finish(w->e, j, GFN_ETIMEDOUT);
		return NULL;
	}
	/* For its waiters: when it should end. */
	atomic_store_explicit(&j->end_ns,
	                      j->est_ns ? gfn__now_ns() + j->est_ns : 0,
	                      memory_order_relaxed);
	return j;
}

void gfn__run_claimed(gfn_worker *w, gfn_job *j)
{
	gfn_dev *d = w->dev;
	uint64_t t0 = gfn__now_ns();
	gfn_status s = execute(w, j);

	if (s == GFN_OK)
		gfn__learn(j->fn, d->index, gfn__now_ns() - t0);
	atomic_fetch_sub(&d->running, 1);
	gfn__job_finish(w->e, j, s);
	if (poisoned(d, s))
		gfn__quarantine(w);
}

gfn_status gfn__run_tensors(gfn_worker *w, gfn_job *j)
{
	return w->dev->pool ? run_on_device(w, j) : run_in_place(w, j);
}

/* Run ids[k] (and, for a batching function, others with it). */
static void run_id(gfn_worker *w, uint64_t *ids, size_t k, size_t n)
{
	gfn_job *j = gfn__claim(w, ids[k]);

	if (!j)
		return;
	if (j->fn->batch_max > 1)
		gfn__batch_run(w, j, ids, k, n);
	else
		gfn__run_claimed(w, j);
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

/*
 * Run a device's workers on the cores of the device's NUMA node, so that
 * what they touch (queues, staging, the kernel arguments) is local. Only
 * on a real topology and a device whose node is known.
 */
static void bind_worker(gfn_worker *w)
{
	const gfn_topology *t = w->e->topo;
	int node = w->dev->info.numa_node;

	if (!t || node < 0 || !gfn_topology_is_real(t))
		return;
	if (gfn_topology_bind_thread(t, node) != GFN_OK)
		gfn__log(GFN_LOG_WARN, "%s: worker not bound: %s",
		         w->dev->info.name, gfn_error_detail());
	else
		atomic_fetch_add(&w->dev->bound_workers, 1);
}

static void *worker_main(void *arg)
{
	gfn_worker *w = arg;
	uint64_t ids[POP_BATCH];
	char name[16];

	snprintf(name, sizeof(name), "gfn-dev%d", w->dev->index);
	pthread_setname_np(pthread_self(), name);
	bind_worker(w);
	for (;;) {
		/* Share a long queue among the device's workers. */
		size_t want = atomic_load(&w->dev->count) / w->dev->nworkers;
		size_t n = queue_pop_window(w->dev, ids,
		                            want < 1           ? 1
		                            : want > POP_BATCH ? POP_BATCH
		                                               : want,
		                            POP_WINDOW_NS);
		for (size_t k = 0; k < n; k++)
			if (ids[k]) /* 0: taken into a batch */
				run_id(w, ids, k, n);
		if (n || gfn__steal(w))
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

	while ((n = gfn__queue_pop(d, ids, POP_BATCH)) > 0) {
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
	/* Join every worker before freeing any: a worker still running may
	   wake another device's workers (re-placed work). */
	for (int i = 0; i < e->ndev; i++)
		for (unsigned k = 0; k < e->devs[i].nworkers; k++)
			if (e->devs[i].workers[k].started)
				pthread_join(e->devs[i].workers[k].thread,
				             NULL);
	for (int i = 0; i < e->ndev; i++) {
		gfn_dev *d = &e->devs[i];

		for (unsigned k = 0; k < d->nworkers; k++) {
			if (d->workers[k].bq)
				d->ops->queue_destroy(d->workers[k].bq);
			gfn__batch_free(&d->workers[k]);
		}
		free(d->workers);
		d->workers = NULL;
		d->nworkers = 0;
	}
}
