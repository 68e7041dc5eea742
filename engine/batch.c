/*
 * batch.c - dynamic batching: invocations of a batching function
 * (gfn_function_desc.batch_max > 1) that wait together run as one launch.
 *
 * The worker that claims the first one gathers others of the same function
 * with equal parameters and equal extents past dimension 0: from the ids
 * it popped with it, then from its queue, until batch_max of them, or the
 * first one has waited batch_delay_us since submission, or every
 * invocation of the function not yet ended is in the batch already. Ids of other
 * functions popped meanwhile run after the batch, in order. The inputs are
 * joined along dimension 0 in the worker's staging buffer (a host copy,
 * counted), the kernel runs once, and each invocation's rows are copied
 * into its own output objects. If the batched launch fails, each
 * invocation runs again alone, so a bad input fails only its own.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

#define BATCH_CAP 64 /* most invocations in one launch */

typedef struct batch {
	gfn_job *job[BATCH_CAP];   /* claimed, first is the oldest */
	int n;                     /* how many */
	int limit;                 /* the function's batch_max, capped */
	uint64_t later[BATCH_CAP]; /* other ids popped while gathering */
	int nlater;                /* how many */
} batch;

void gfn__batch_free(gfn_worker *w)
{
	free(w->bbuf);
	w->bbuf = NULL;
	w->bcap = 0;
}

/* Same extents past dimension 0 in every tensor. */
static int same_tail(const gfn_tensor *a, const gfn_tensor *b, int n)
{
	for (int k = 0; k < n; k++)
		if (memcmp(&a[k].shape[1], &b[k].shape[1],
		           (size_t)(a[k].ndim - 1) * sizeof(int64_t)))
			return 0;
	return 1;
}

/* j, still queued, may join first's launch (read before claiming: a
   queued job's arguments do not change). */
static int joins(const gfn_job *first, const gfn_job *j)
{
	return j->fn == first->fn && j->n_par == first->n_par &&
	       !memcmp(j->par, first->par, j->n_par * sizeof(*j->par)) &&
	       same_tail(j->in, first->in, j->n_in) &&
	       same_tail(j->out, first->out, j->n_out);
}

/* Claim id into b when it joins, else keep it for later. */
static void consider(gfn_worker *w, batch *b, uint64_t id)
{
	gfn_job *j = gfn__job_slot(w->e, (uint32_t)id);

	if (b->n < b->limit && joins(b->job[0], j)) {
		gfn_job *c = gfn__claim(w, id);
		if (c)
			b->job[b->n++] = c;
		return;
	}
	b->later[b->nlater++] = id;
}

/* Gather from the queue until full; wait for more only until the first
   has waited long enough. What is queued already joins at any time: a
   worker pops a few ids at a time (sched.c POP_WINDOW_NS), so a batch
   whose first invocation waited long is gathered here, not from the ids
   popped with it. */
static void gather_queue(gfn_worker *w, batch *b)
{
	uint64_t until = b->job[0]->t_submit +
	                 (uint64_t)w->e->cfg.batch_delay_us * 1000u;
	uint64_t ids[BATCH_CAP];

	/* Stop early when every invocation of the function not yet ended
	   is already in the batch: waiting could bring nothing. */
	for (unsigned spin = 0; b->n < b->limit && b->nlater < BATCH_CAP / 2 &&
	                        atomic_load(&b->job[0]->fn->pending) > b->n;
	     spin++) {
		size_t want = (size_t)(b->limit - b->n), m;

		if (want > (size_t)(BATCH_CAP / 2 - b->nlater))
			want = (size_t)(BATCH_CAP / 2 - b->nlater);
		m = gfn__queue_pop(w->dev, ids, want);
		for (size_t k = 0; k < m; k++)
			consider(w, b, ids[k]);
		if (!m &&
		    (gfn__now_ns() >= until || gfn__spin_step(spin, until)))
			break;
	}
}

/* Staging room for every joined tensor; NULL when memory runs out. */
static char *staging(gfn_worker *w, const batch *b)
{
	size_t need = 0;

	for (int i = 0; i < b->n; i++) {
		for (int k = 0; k < b->job[i]->n_in; k++)
			need += (b->job[i]->in[k].nbytes + 63) & ~(size_t)63;
		for (int k = 0; k < b->job[i]->n_out; k++)
			need += (b->job[i]->out[k].nbytes + 63) & ~(size_t)63;
	}
	if (need > w->bcap) {
		void *p = realloc(w->bbuf, need);
		if (!p)
			return NULL;
		w->bbuf = p;
		w->bcap = need;
		atomic_fetch_add(&w->e->host_allocs, 1);
	}
	return w->bbuf;
}

/* Join tensor k of every job (inputs or outputs) at p; the joined
   tensor goes to *t. Inputs are copied in. Returns the end of it. */
static char *join(const batch *b, int k, int out, char *p, gfn_tensor *t)
{
	const gfn_job *f = b->job[0];
	size_t bytes = 0;
	int64_t rows = 0;

	*t = out ? f->out[k] : f->in[k];
	t->data = p;
	for (int i = 0; i < b->n; i++) {
		const gfn_tensor *x =
		        out ? &b->job[i]->out[k] : &b->job[i]->in[k];
		if (!out && x->nbytes)
			memcpy(p + bytes, x->data, x->nbytes);
		bytes += x->nbytes;
		rows += x->shape[0];
	}
	t->shape[0] = rows;
	t->nbytes = bytes;
	return p + ((bytes + 63) & ~(size_t)63);
}

/* Give each job its rows of the joined outputs. */
static void split(const batch *b, const gfn_job *bj)
{
	for (int k = 0; k < bj->n_out; k++) {
		const char *src = bj->out[k].data;
		for (int i = 0; i < b->n; i++) {
			gfn_tensor *x = &b->job[i]->out[k];
			if (x->nbytes)
				memcpy(x->data, src, x->nbytes);
			src += x->nbytes;
		}
	}
}

static gfn_status make_outputs(gfn_engine *e, const batch *b, int *made)
{
	gfn_status s = GFN_OK;

	for (*made = 0; *made < b->n && s == GFN_OK; (*made)++) {
		gfn_job *j = b->job[*made];
		if (j->n_out &&
		    (s = gfn_store_create_n(e->store, j->tenant, j->n_out,
		                            j->out, j->out_id)) != GFN_OK)
			break;
	}
	return s;
}

/* The fields a launch reads, from the first job (not its atomics: other
   threads wait on those). */
static void joined_job(gfn_job *bj, const gfn_job *f)
{
	memset(bj, 0, sizeof(*bj));
	bj->fn = f->fn;
	bj->dev = f->dev;
	bj->n_in = f->n_in;
	bj->n_out = f->n_out;
	bj->n_par = f->n_par;
	bj->tenant = f->tenant;
	bj->quota = f->quota;
	memcpy(bj->in, f->in, sizeof(bj->in));
	memcpy(bj->out, f->out, sizeof(bj->out));
	memcpy(bj->par, f->par, sizeof(bj->par));
	memcpy(bj->in_node, f->in_node, sizeof(bj->in_node));
}

/* One launch for the whole batch; GFN_OK when every job has its rows. */
static gfn_status launch(gfn_worker *w, const batch *b)
{
	gfn_engine *e = w->e;
	gfn_job bj; /* the joined invocation */
	gfn_status s;
	char *p;
	int made;

	joined_job(&bj, b->job[0]);
	/* Outputs first: their sizes are known once they exist. */
	s = make_outputs(e, b, &made);
	p = s == GFN_OK ? staging(w, b) : NULL;
	if (s == GFN_OK && !p)
		s = gfn__fail(GFN_ENOMEM, "no memory to join a batch");
	if (s == GFN_OK) {
		for (int k = 0; k < bj.n_in; k++) {
			p = join(b, k, 0, p, &bj.in[k]);
			atomic_fetch_add(&e->input_copies, bj.in[k].nbytes);
		}
		for (int k = 0; k < bj.n_out; k++)
			p = join(b, k, 1, p, &bj.out[k]);
		s = gfn__run_tensors(w, &bj);
	}
	if (s == GFN_OK) {
		split(b, &bj);
		return GFN_OK;
	}
	for (int i = 0; i < made; i++)
		gfn_store_discard_n(e->store, b->job[i]->n_out,
		                    b->job[i]->out_id);
	return s;
}

static void finish_all(gfn_worker *w, const batch *b, uint64_t took)
{
	gfn_engine *e = w->e;

	gfn__learn(b->job[0]->fn, w->dev->index, took / (uint64_t)b->n);
	atomic_fetch_add(&e->batches, 1);
	atomic_fetch_add(&e->batched, (uint64_t)b->n);
	for (int i = 0; i < b->n; i++) {
		gfn_job *j = b->job[i];
		if (j->n_out) {
			gfn_store_seal_n(e->store, j->n_out, j->out_id);
			j->outputs_live = 1;
		}
		atomic_fetch_sub(&w->dev->running, 1);
		gfn__job_finish(e, j, GFN_OK);
	}
}

void gfn__batch_run(gfn_worker *w, gfn_job *first, uint64_t *ids, size_t k,
                    size_t n)
{
	batch b = {.job = {first}, .n = 1};
	uint64_t t0;

	b.limit = first->fn->batch_max < BATCH_CAP ? (int)first->fn->batch_max
	                                           : BATCH_CAP;
	for (size_t x = k + 1; x < n && b.n < b.limit; x++) {
		if (!ids[x] ||
		    !joins(first, gfn__job_slot(w->e, (uint32_t)ids[x])))
			continue;
		gfn_job *c = gfn__claim(w, ids[x]);
		ids[x] = 0;
		if (c)
			b.job[b.n++] = c;
	}
	gather_queue(w, &b);
	t0 = gfn__now_ns();
	if (b.n > 1 && launch(w, &b) == GFN_OK)
		finish_all(w, &b, gfn__now_ns() - t0);
	else /* alone, or the batch failed: each on its own */
		for (int i = 0; i < b.n; i++)
			gfn__run_claimed(w, b.job[i]);
	for (int i = 0; i < b.nlater; i++) {
		gfn_job *j = gfn__claim(w, b.later[i]);
		if (j)
			gfn__run_claimed(w, j);
	}
}
