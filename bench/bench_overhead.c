/*
 * bench_overhead.c - what the engine costs per invocation, with nothing
 * else to pay for: a null CPU kernel (no inputs, outputs or parameters,
 * returns 0 at once) run through the engine, against calling the same
 * function through a volatile pointer (the baseline, measured in the same
 * run, interleaved with the engine cases so machine noise hits both).
 *
 * Cases:
 *   batched_wait      gfn_invoke_many in batches, futures waited for and
 *                     released by the submitting thread
 *   batched_callback  the same, but a completion callback releases each
 *                     future, so the submitter never waits on one
 *   sync_round_trip   one gfn_invoke + gfn_future_wait + gfn_future_release
 *                     at a time, per-call time percentiles
 *
 * EBUSY (queue full) is never a drop: the submitter waits for some of its
 * outstanding invocations to end and submits the rest again.
 */
#include "bench.h"

#include <gfn/gfn.h>

#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 1024        /* invocations per gfn_invoke_many */
#define WINDOW 4          /* batches in flight before the oldest is waited */
#define DIRECT_CHUNK 4096 /* direct calls between two clock reads */
#define SYNC_PER_SECOND 20000 /* sync calls per --seconds (20,000 at 1 s) */
#define SYNC_MIN 500          /* fewest sync calls, for short smoke runs */
#define STALL_LIMIT 10000000u /* EBUSY retries with nothing outstanding */
#define GOAL_RATE 1e6         /* invocations/s, batched */
#define GOAL_P50_US 10.0      /* sync round trip, median */

/* State of the completion-callback variant, shared with worker threads. */
typedef struct cb_state {
	_Atomic uint64_t done;        /* callbacks that have finished */
	_Atomic uint64_t bad;         /* ended with a status other than OK */
	_Atomic int first_bad;        /* the first such status */
	_Atomic uint64_t release_err; /* failed releases in on_done */
} cb_state;

typedef struct ovh {
	gfn_engine *e;                 /* the engine under test */
	gfn_function fn;               /* the null kernel, registered */
	gfn_invocation invs[BATCH];    /* BATCH copies of one invocation */
	gfn_future fut[WINDOW][BATCH]; /* futures of the batches in flight */
	size_t fut_n[WINDOW];          /* futures outstanding per batch slot */
	uint64_t busy;                 /* EBUSY answers seen */
	uint64_t stalls;               /* EBUSY with none of ours in flight */
	uint64_t bad;                  /* invocations that did not end OK */
	gfn_status first_bad;          /* status of the first such one */
	cb_state cb;                   /* callback variant */
} ovh;

static int null_kernel(const gfn_kernel_args *args, void *user)
{
	(void)args;
	(void)user;
	return 0;
}

/* volatile: the compiler must load and call it every time, not inline. */
static gfn_cpu_kernel_fn volatile direct_fn = null_kernel;

static void api_error(const char *what, gfn_status st)
{
	fprintf(stderr, "overhead: %s: %s (%s) %s\n", what, gfn_status_name(st),
	        gfn_status_str(st), gfn_error_detail());
}

static double seconds_between(uint64_t t0, uint64_t t1)
{
	return (double)(t1 - t0) / 1e9;
}

/* ---- baseline ------------------------------------------------------------ */

/* Direct calls per second for about `seconds`; -1 if a call failed. */
static double direct_rate(double seconds)
{
	gfn_kernel_args args;
	uint64_t t0, t1, calls = 0;
	int acc = 0;
	int i;

	memset(&args, 0, sizeof(args));
	t0 = bench_now_ns();
	do {
		for (i = 0; i < DIRECT_CHUNK; i++)
			acc |= direct_fn(&args, NULL);
		calls += DIRECT_CHUNK;
		t1 = bench_now_ns();
	} while (seconds_between(t0, t1) < seconds);
	if (acc != 0)
		return -1.0;
	return (double)calls / seconds_between(t0, t1);
}

/* ---- engine set-up ------------------------------------------------------- */

static int engine_up(ovh *o)
{
	gfn_config cfg;
	gfn_function_desc desc;
	gfn_status st;

	gfn_config_init(&cfg);
	/* The kernel is CPU-only; probing other backends would only add
	   devices it cannot run on. One device, one worker, as stated. */
	cfg.backends = GFN_BACKEND_CPU;
	cfg.cpu_devices = 1;
	cfg.workers_per_device = 1;
	st = gfn_engine_create(&cfg, &o->e);
	if (st != GFN_OK) {
		api_error("gfn_engine_create", st);
		return -1;
	}
	memset(&desc, 0, sizeof(desc));
	desc.name = "bench.overhead.null";
	desc.cpu_fn = null_kernel;
	st = gfn_function_register(o->e, &desc, &o->fn);
	if (st != GFN_OK) {
		api_error("gfn_function_register", st);
		return -1;
	}
	return 0;
}

static void set_callback(ovh *o, gfn_callback cb, void *arg)
{
	size_t i;

	for (i = 0; i < BATCH; i++) {
		memset(&o->invs[i], 0, sizeof(o->invs[i]));
		o->invs[i].fn = o->fn;
		o->invs[i].callback = cb;
		o->invs[i].callback_arg = arg;
	}
}

static void note_bad(ovh *o, gfn_status st)
{
	if (o->bad++ == 0)
		o->first_bad = st;
}

/* ---- batched, waiting on futures ----------------------------------------- */

/* Wait for and release every future in one batch slot. */
static int drain_slot(ovh *o, size_t s)
{
	size_t i;
	gfn_status st;

	for (i = 0; i < o->fut_n[s]; i++) {
		st = gfn_future_wait(o->e, o->fut[s][i], -1);
		if (st != GFN_OK)
			note_bad(o, st);
		st = gfn_future_release(o->e, o->fut[s][i]);
		if (st != GFN_OK) {
			api_error("gfn_future_release", st);
			return -1;
		}
	}
	o->fut_n[s] = 0;
	return 0;
}

/*
 * Queue full: make room by ending our own oldest work. Slots are used round
 * robin, so the oldest is the first non-empty one after `cur`; `cur` itself
 * (partly accepted) is the youngest. With nothing of ours in flight the
 * queue is full of nothing we can wait for; yield and let the caller retry.
 */
static int make_room(ovh *o, size_t cur)
{
	size_t k;

	o->busy++;
	for (k = 1; k <= WINDOW; k++) {
		size_t s = (cur + k) % WINDOW;

		if (o->fut_n[s] > 0)
			return drain_slot(o, s);
	}
	if (++o->stalls > STALL_LIMIT) {
		fprintf(stderr, "overhead: queue stays full with nothing of "
		                "ours in flight\n");
		return -1;
	}
	sched_yield();
	return 0;
}

/* Submit one batch into slot s (empty), retrying after EBUSY. */
static int submit_batch(ovh *o, size_t s, uint64_t *sent)
{
	size_t left = BATCH;
	size_t acc;
	gfn_status st;

	while (left > 0) {
		acc = 0;
		st = gfn_invoke_many(o->e, o->invs, left,
		                     &o->fut[s][o->fut_n[s]], &acc);
		o->fut_n[s] += acc;
		left -= acc;
		*sent += acc;
		if (st == GFN_OK)
			continue;
		if (st != GFN_EBUSY) {
			api_error("gfn_invoke_many", st);
			return -1;
		}
		if (make_room(o, s) < 0)
			return -1;
	}
	return 0;
}

static int drain_all(ovh *o, size_t cur)
{
	size_t k;

	/* Oldest first, so no wait is longer than it has to be. */
	for (k = 1; k <= WINDOW; k++)
		if (drain_slot(o, (cur + k) % WINDOW) < 0)
			return -1;
	return 0;
}

/* Invocations/s for about `seconds` of batched submission; -1 on error. */
static double batched_wait_rate(ovh *o, double seconds)
{
	uint64_t t0, sent = 0;
	size_t cur = 0;

	set_callback(o, NULL, NULL);
	t0 = bench_now_ns();
	while (seconds_between(t0, bench_now_ns()) < seconds) {
		cur = (cur + 1) % WINDOW;
		/* Slot reuse: the batch in it is the oldest in flight. */
		if (drain_slot(o, cur) < 0 || submit_batch(o, cur, &sent) < 0)
			return -1.0;
	}
	if (drain_all(o, cur) < 0)
		return -1.0;
	return (double)sent / seconds_between(t0, bench_now_ns());
}

/* ---- batched, completion callbacks --------------------------------------- */

static void on_done(gfn_engine *e, gfn_future f, gfn_status status, void *arg)
{
	cb_state *cb = arg;

	if (status != GFN_OK) {
		int none = 0;

		atomic_compare_exchange_strong(&cb->first_bad, &none,
		                               (int)status);
		atomic_fetch_add(&cb->bad, 1);
	}
	if (gfn_future_release(e, f) != GFN_OK)
		atomic_fetch_add(&cb->release_err, 1);
	/* Last: once done == sent the submitter may stop the run. */
	atomic_fetch_add_explicit(&cb->done, 1, memory_order_release);
}

static uint64_t cb_done(ovh *o)
{
	return atomic_load_explicit(&o->cb.done, memory_order_acquire);
}

/* Block (politely: the worker needs the CPU) until fewer than `limit` of
 * the `sent` invocations are still in flight. */
static void wait_in_flight(ovh *o, uint64_t sent, uint64_t limit)
{
	while (sent - cb_done(o) > limit)
		sched_yield();
}

static int submit_batch_cb(ovh *o, uint64_t *sent)
{
	size_t left = BATCH;
	uint64_t done;
	size_t acc;
	gfn_status st;

	while (left > 0) {
		acc = 0;
		/* The futures are released by on_done; fut[0] is scratch. */
		st = gfn_invoke_many(o->e, o->invs, left, o->fut[0], &acc);
		left -= acc;
		*sent += acc;
		if (st == GFN_OK)
			continue;
		if (st != GFN_EBUSY) {
			api_error("gfn_invoke_many", st);
			return -1;
		}
		o->busy++;
		done = cb_done(o);
		if (*sent > done) {
			/* Let half of ours end before retrying: retrying
			   after each single completion would mostly measure
			   refusals. */
			wait_in_flight(o, *sent, (*sent - done) / 2);
			continue;
		}
		if (++o->stalls > STALL_LIMIT) {
			fprintf(stderr, "overhead: queue stays full with "
			                "nothing of ours in flight\n");
			return -1;
		}
		sched_yield();
	}
	return 0;
}

static double batched_cb_rate(ovh *o, double seconds)
{
	uint64_t t0, sent = 0;

	atomic_store(&o->cb.done, 0);
	set_callback(o, on_done, &o->cb);
	t0 = bench_now_ns();
	while (seconds_between(t0, bench_now_ns()) < seconds) {
		wait_in_flight(o, sent, (WINDOW - 1) * BATCH);
		/* On error, callbacks still in flight end in destroy. */
		if (submit_batch_cb(o, &sent) < 0)
			return -1.0;
	}
	wait_in_flight(o, sent, 0);
	return (double)sent / seconds_between(t0, bench_now_ns());
}

/* ---- synchronous round trip ---------------------------------------------- */

/* One invoke + wait + release; its time in microseconds, -1 on error. */
static double sync_once(ovh *o)
{
	gfn_future f;
	gfn_status st;
	uint64_t t0 = bench_now_ns();

	while ((st = gfn_invoke(o->e, &o->invs[0], &f)) == GFN_EBUSY) {
		/* Nothing of ours is in flight: the queue cannot be full of
		   our work, so this is worth reporting. */
		o->busy++;
		if (++o->stalls > STALL_LIMIT)
			break;
		sched_yield();
	}
	if (st != GFN_OK) {
		api_error("gfn_invoke", st);
		return -1.0;
	}
	st = gfn_future_wait(o->e, f, -1);
	if (st != GFN_OK)
		note_bad(o, st);
	st = gfn_future_release(o->e, f);
	if (st != GFN_OK) {
		api_error("gfn_future_release", st);
		return -1.0;
	}
	return (double)(bench_now_ns() - t0) / 1e3;
}

/* Fill us[0..n-1] with round-trip times after n/10 warm-up calls. */
static int sync_samples(ovh *o, double *us, size_t n)
{
	size_t warm = n / 10 < 100 ? 100 : n / 10;
	size_t i;

	set_callback(o, NULL, NULL);
	for (i = 0; i < warm + n; i++) {
		double t = sync_once(o);

		if (t < 0)
			return -1;
		if (i >= warm)
			us[i - warm] = t;
	}
	bench_sort(us, n);
	return 0;
}

/* ---- the scenario -------------------------------------------------------- */

/* Samples of every timed case, one per repeat. */
typedef struct ovh_runs {
	double *direct; /* direct calls/s */
	double *wait;   /* batched_wait invocations/s */
	double *cb;     /* batched_callback invocations/s */
	int n;          /* repeats done */
} ovh_runs;

static int run_repeats(ovh *o, const bench_opts *opts, ovh_runs *r)
{
	FILE *h = bench_human(opts);

	for (r->n = 0; r->n < opts->repeats; r->n++) {
		int i = r->n;

		r->direct[i] = direct_rate(opts->seconds);
		r->wait[i] = batched_wait_rate(o, opts->seconds);
		r->cb[i] = batched_cb_rate(o, opts->seconds);
		if (r->direct[i] < 0 || r->wait[i] < 0 || r->cb[i] < 0)
			return -1;
		fprintf(h,
		        "  repeat %d/%d: direct %.0f/s, batched_wait "
		        "%.0f/s, batched_callback %.0f/s\n",
		        i + 1, opts->repeats, r->direct[i], r->wait[i],
		        r->cb[i]);
	}
	return 0;
}

/* Median, min and max of runs[0..n-1] into res, with goal and baseline. */
static void add_rate(bench_report *rep, const char *name, double *runs, int n,
                     double base)
{
	bench_result *res = bench_report_add(rep, name, "throughput", "inv/s");

	if (!res)
		return;
	res->value = bench_median(runs, (size_t)n);
	res->lo = runs[0];
	res->hi = runs[n - 1];
	res->baseline_name = "direct_call";
	res->baseline_value = base;
	res->ratio = res->value / base;
	res->goal = ">= 1e6 inv/s";
	res->goal_met = res->value >= GOAL_RATE;
}

static void add_sync(bench_report *rep, const double *us, size_t n,
                     double base_us)
{
	bench_result *res =
	        bench_report_add(rep, "sync_round_trip", "latency", "us");

	if (!res)
		return;
	res->p50 = bench_percentile_sorted(us, n, 50);
	res->p99 = bench_percentile_sorted(us, n, 99);
	res->value = res->p50;
	res->lo = us[0];
	res->hi = us[n - 1];
	res->baseline_name = "direct_call";
	res->baseline_value = base_us;
	res->ratio = res->value / base_us;
	res->goal = "p50 <= 10 us";
	res->goal_met = res->p50 <= GOAL_P50_US;
}

/* What the engine counted over one phase; hot-path counters should be +0. */
static void print_stats_delta(FILE *h, const char *phase, const gfn_stats *a,
                              const gfn_stats *b)
{
	fprintf(h,
	        "  engine, %s: submitted +%llu completed +%llu failed +%llu "
	        "rejected_busy +%llu; hot path (should be +0): host_allocs "
	        "+%llu context_creates +%llu kernel_compiles +%llu "
	        "pinnings +%llu\n",
	        phase, (unsigned long long)(b->submitted - a->submitted),
	        (unsigned long long)(b->completed - a->completed),
	        (unsigned long long)(b->failed - a->failed),
	        (unsigned long long)(b->rejected_busy - a->rejected_busy),
	        (unsigned long long)(b->host_allocs - a->host_allocs),
	        (unsigned long long)(b->context_creates - a->context_creates),
	        (unsigned long long)(b->kernel_compiles - a->kernel_compiles),
	        (unsigned long long)(b->pinnings - a->pinnings));
}

/* Check every invocation ended OK; print what went wrong otherwise. */
static int verdict(ovh *o, FILE *h)
{
	uint64_t cb_bad = atomic_load(&o->cb.bad);
	uint64_t rel = atomic_load(&o->cb.release_err);

	fprintf(h,
	        "  EBUSY answers: %llu (with none of ours in flight: "
	        "%llu)\n",
	        (unsigned long long)o->busy, (unsigned long long)o->stalls);
	if (o->bad)
		fprintf(stderr,
		        "overhead: %llu invocations ended with an "
		        "error, first %s\n",
		        (unsigned long long)o->bad,
		        gfn_status_name(o->first_bad));
	if (cb_bad)
		fprintf(stderr,
		        "overhead: %llu callbacks got an error, "
		        "first %s\n",
		        (unsigned long long)cb_bad,
		        gfn_status_name(
		                (gfn_status)atomic_load(&o->cb.first_bad)));
	if (rel)
		fprintf(stderr,
		        "overhead: gfn_future_release failed %llu "
		        "times in callbacks\n",
		        (unsigned long long)rel);
	return o->bad || cb_bad || rel ? -1 : 0;
}

/* Short untimed runs so the timed ones see a warm engine. */
static int warm_up(ovh *o, const bench_opts *opts)
{
	double s = opts->seconds < 0.1 ? opts->seconds : 0.1;

	if (batched_wait_rate(o, s) < 0 || batched_cb_rate(o, s) < 0)
		return -1;
	return 0;
}

static void add_results(bench_report *rep, ovh_runs *runs, const double *us,
                        size_t n_sync, FILE *h)
{
	double base = bench_median(runs->direct, (size_t)runs->n);

	add_rate(rep, "batched_wait", runs->wait, runs->n, base);
	add_rate(rep, "batched_callback", runs->cb, runs->n, base);
	add_sync(rep, us, n_sync, 1e6 / base);
	fprintf(h,
	        "  time per invocation: batched_wait %.0f ns, "
	        "batched_callback %.0f ns; direct call %.2f ns\n",
	        1e9 / rep->results[0].value, 1e9 / rep->results[1].value,
	        1e9 / base);
}

static int measure(ovh *o, const bench_opts *opts, bench_report *rep,
                   ovh_runs *runs, double *us, size_t n_sync)
{
	FILE *h = bench_human(opts);
	gfn_stats s0, s1, s2;

	/* Counters are read between phases, so a hot-path allocation is
	   pinned to the phase that made it. */
	if (warm_up(o, opts) < 0 || gfn_engine_stats(o->e, &s0) != GFN_OK)
		return -1;
	if (run_repeats(o, opts, runs) < 0 ||
	    gfn_engine_stats(o->e, &s1) != GFN_OK)
		return -1;
	if (sync_samples(o, us, n_sync) < 0 ||
	    gfn_engine_stats(o->e, &s2) != GFN_OK)
		return -1;
	add_results(rep, runs, us, n_sync, h);
	print_stats_delta(h, "batched phases", &s0, &s1);
	print_stats_delta(h, "sync phase", &s1, &s2);
	return 0;
}

int bench_overhead_run(const bench_opts *opts, bench_report *report)
{
	size_t n_sync = (size_t)(opts->seconds * SYNC_PER_SECOND);
	size_t reps = (size_t)opts->repeats;
	ovh_runs runs = {0};
	double *us;
	ovh *o;
	int rc = -1;

	if (n_sync < SYNC_MIN)
		n_sync = SYNC_MIN;
	if (n_sync > SYNC_PER_SECOND)
		n_sync = SYNC_PER_SECOND;
	o = calloc(1, sizeof(*o));
	us = calloc(n_sync, sizeof(*us));
	runs.direct = calloc(reps, sizeof(double));
	runs.wait = calloc(reps, sizeof(double));
	runs.cb = calloc(reps, sizeof(double));
	if (!o || !us || !runs.direct || !runs.wait || !runs.cb) {
		fprintf(stderr, "overhead: out of memory\n");
		goto out_free;
	}
	fprintf(bench_human(opts),
	        "overhead: null CPU kernel, 1 CPU device, "
	        "1 worker; batch %d, %d batches in flight; %d x %.3g s; "
	        "%zu sync calls\n",
	        BATCH, WINDOW, opts->repeats, opts->seconds, n_sync);
	if (engine_up(o) == 0 &&
	    measure(o, opts, report, &runs, us, n_sync) == 0)
		rc = 0;
	if (o->e && verdict(o, bench_human(opts)) < 0)
		rc = -1;
	/* Destroy runs every outstanding callback, so none touches o after. */
	gfn_engine_destroy(o->e);
out_free:
	free(runs.cb);
	free(runs.wait);
	free(runs.direct);
	free(us);
	free(o);
	return rc;
}
