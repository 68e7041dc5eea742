/*
 * gfn_sim.c - gfn-sim: the engine's placement decision (engine/place.c)
 * and device queue (engine/pqueue.c) run against a simulated machine and
 * a synthetic workload, next to three other policies, in simulated time.
 *
 * Machine: an hwloc XML topology (default: the DGX H100-like one in
 * tests/topologies); every GPU in it is a device on its NUMA node. Moving
 * an input to a device costs bytes / pcie_gbs, plus bytes / link_gbs over
 * the link between the two NUMA nodes when the input's memory is on the
 * other one. Each direction of a link carries one transfer at a time, so
 * traffic across it queues (the link is shared, as a socket link is).
 *
 * Workload: F functions with Zipf(1.1) popularity, short inference
 * functions with sizable inputs: each has a run time (log-uniform 50 ..
 * 400 us) and an input size (log-uniform 1 .. 16 MiB), and a home node
 * where 80% of its inputs are produced (the rest land on a random node). Arrivals are Poisson at `load` times the
 * machine's capacity when every input is local. Each invocation has a
 * deadline: arrival + 2 ms + 10 x its run time.
 *
 * Policies: gfn (finish-time estimate with learned run times, admission
 * and before-run deadline checks, and work stealing by a device that
 * falls idle, as in the engine), round_robin,
 * least_loaded (shortest queue) and locality_only (shortest queue among
 * the devices on the input's node). The others run everything, late or
 * not. A deadline miss is an invocation refused, dropped, or finished
 * after its deadline. Throughput is invocations completed per second
 * until the last one completed (what the machine sustained); goodput
 * counts only those completed in time, per second of the arrival window.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "engine/place.h"
#include "engine/pqueue.h"
#include "runtime/topology.h"

#define MAX_DEV 64

typedef enum { POL_GFN, POL_RR, POL_LEAST, POL_LOCAL, NPOL } policy;

static const char *const pol_name[NPOL] = {"gfn", "round_robin", "least_loaded",
                                           "locality_only"};

typedef struct sim_opts {
	const char *topo;  /* hwloc XML */
	size_t n;          /* invocations */
	int nfn;           /* functions */
	double load;       /* offered load / local capacity */
	unsigned link_gbs; /* NUMA link */
	unsigned pcie_gbs; /* host to device */
	uint64_t seed;     /* workload seed */
	int json;          /* one JSON object on stdout */
} sim_opts;

typedef struct fn_def {
	uint64_t run_ns; /* run time on a device */
	uint64_t bytes;  /* input size */
	int home;        /* node most inputs come from */
} fn_def;

typedef struct inv {
	uint64_t arrive;   /* ns */
	uint64_t deadline; /* ns */
	int fn;            /* function */
	int8_t node;       /* where its input is */
	int dev;           /* where it went, -1 refused */
	uint64_t est;      /* backlog it added (gfn) */
} inv;

typedef struct dev_state {
	int node;         /* NUMA node */
	gfn_pqueue q;     /* waiting invocations (indices) */
	int64_t running;  /* invocation running, -1 idle */
	uint64_t free_at; /* when the running one ends */
	uint64_t backlog; /* expected ns of queued + running (gfn) */
} dev_state;

typedef struct stats {
	size_t ontime, late, refused, dropped; /* outcomes */
	double *lat;                           /* latencies (us) */
	size_t nlat;                           /* of completed ones */
	uint64_t cross_bytes;                  /* moved across NUMA links */
	uint64_t window;                       /* arrival window (ns) */
	uint64_t last_end;                     /* last completion (ns) */
} stats;

typedef struct sim {
	const sim_opts *o;
	int ndev, nnodes;
	dev_state dev[MAX_DEV];
	fn_def *fn;
	double *zipf_cdf;
	inv *iv;
	uint64_t *avg;             /* learned run time, fn x device (gfn) */
	uint64_t link_free[8][8];  /* when each link direction is free */
	uint64_t link_bytes[8][8]; /* queued to cross, as the engine counts */
	unsigned rr;               /* round-robin position */
	uint64_t rng;              /* workload random state */
} sim;

/* ---- randomness ----------------------------------------------------------- */

static uint64_t next_u64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double uniform(uint64_t *s)
{
	return (double)(next_u64(s) >> 11) / 9007199254740992.0;
}

static double log_uniform(uint64_t *s, double lo, double hi)
{
	return lo * exp(uniform(s) * log(hi / lo));
}

/* ---- the workload ------------------------------------------------------------ */

static void make_functions(sim *m)
{
	double sum = 0;

	m->fn = calloc((size_t)m->o->nfn, sizeof(*m->fn));
	m->zipf_cdf = calloc((size_t)m->o->nfn, sizeof(*m->zipf_cdf));
	for (int f = 0; f < m->o->nfn; f++) {
		m->fn[f].run_ns = (uint64_t)log_uniform(&m->rng, 50e3, 400e3);
		m->fn[f].bytes =
		        (uint64_t)log_uniform(&m->rng, 1 << 20, 16 << 20);
		m->fn[f].home = (int)(next_u64(&m->rng) % (uint64_t)m->nnodes);
		sum += 1 / pow(f + 1, 1.1);
		m->zipf_cdf[f] = sum;
	}
	for (int f = 0; f < m->o->nfn; f++)
		m->zipf_cdf[f] /= sum;
}

static int pick_function(sim *m)
{
	double u = uniform(&m->rng);
	int lo = 0, hi = m->o->nfn - 1;

	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (m->zipf_cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Service time of f on a device on node dnode, input on inode. */
static uint64_t service_ns(const sim *m, int f, int inode, int dnode)
{
	uint64_t b = m->fn[f].bytes;
	uint64_t t = m->fn[f].run_ns + b / m->o->pcie_gbs;

	return inode != dnode ? t + b / m->o->link_gbs : t;
}

/* Mean local service time over the popularity mix. */
static double mean_local_ns(const sim *m)
{
	double mean = 0, prev = 0;

	for (int f = 0; f < m->o->nfn; f++) {
		mean += (m->zipf_cdf[f] - prev) *
		        (double)service_ns(m, f, 0, 0);
		prev = m->zipf_cdf[f];
	}
	return mean;
}

static void make_arrivals(sim *m)
{
	double rate = m->o->load * m->ndev / mean_local_ns(m); /* per ns */
	double t = 0;

	m->iv = calloc(m->o->n, sizeof(*m->iv));
	for (size_t i = 0; i < m->o->n; i++) {
		inv *v = &m->iv[i];

		t += -log(1 - uniform(&m->rng)) / rate;
		v->arrive = (uint64_t)t;
		v->fn = pick_function(m);
		v->node = (int8_t)(uniform(&m->rng) < 0.8
		                           ? m->fn[v->fn].home
		                           : (int)(next_u64(&m->rng) %
		                                   (uint64_t)m->nnodes));
		v->deadline = v->arrive + 2000000 + 10 * m->fn[v->fn].run_ns;
	}
}

/* ---- the policies -------------------------------------------------------------- */

/* As the engine: learned here, else the best learned elsewhere (every
   simulated device has the same backend), else 20 us. */
static uint64_t learned(const sim *m, int f, int d)
{
	const uint64_t *a = &m->avg[(size_t)f * MAX_DEV];
	uint64_t best = 0;

	if (a[d])
		return a[d];
	for (int k = 0; k < m->ndev; k++)
		if (a[k] && (!best || a[k] < best))
			best = a[k];
	return best ? best : 20000;
}

/* What the engine tracks (sched.c link_account): the input bytes of
   every invocation queued or running that crosses each link. */
static const uint64_t (*link_snapshot(
        const sim *m, uint64_t q[][GFN_PLACE_MAX_NODES]))[GFN_PLACE_MAX_NODES]
{
	for (int a = 0; a < m->nnodes && a < GFN_PLACE_MAX_NODES; a++)
		for (int b = 0; b < m->nnodes && b < GFN_PLACE_MAX_NODES; b++)
			q[a][b] = m->link_bytes[a][b];
	return (const uint64_t(*)[GFN_PLACE_MAX_NODES])q;
}

/* gfn: the engine's own decision; -1 when it cannot make the deadline. */
static int choose_gfn(sim *m, inv *v, uint64_t now)
{
	gfn_place_dev pd[MAX_DEV];
	uint64_t bytes = m->fn[v->fn].bytes, finish;
	uint64_t q[GFN_PLACE_MAX_NODES][GFN_PLACE_MAX_NODES] = {{0}};
	gfn_place_in in = {1, &v->node, &bytes, m->o->link_gbs,
	                   link_snapshot(m, q)};
	int d;

	for (int i = 0; i < m->ndev; i++) {
		pd[i].ok = 1;
		pd[i].node = m->dev[i].node;
		pd[i].backlog_ns = m->dev[i].backlog;
		pd[i].run_ns = learned(m, v->fn, i);
	}
	d = gfn__place_pick(pd, m->ndev, &in, m->rr++, &finish);
	return now + finish > v->deadline ? -1 : d;
}

static size_t qlen(const dev_state *d)
{
	return d->q.n + (d->running >= 0);
}

static int choose_least(sim *m, int node)
{
	int best = -1;

	for (int k = 0; k < m->ndev; k++) {
		int i = (int)((m->rr + (unsigned)k) % (unsigned)m->ndev);
		if (node >= 0 && m->dev[i].node != node)
			continue;
		if (best < 0 || qlen(&m->dev[i]) < qlen(&m->dev[best]))
			best = i;
	}
	m->rr++;
	return best;
}

static int choose(sim *m, policy p, inv *v, uint64_t now)
{
	switch (p) {
	case POL_GFN:
		return choose_gfn(m, v, now);
	case POL_RR:
		return (int)(m->rr++ % (unsigned)m->ndev);
	case POL_LEAST:
		return choose_least(m, -1);
	case POL_LOCAL:
		return choose_least(m, v->node);
	case NPOL:
		break;
	}
	return -1;
}

/* ---- the simulation --------------------------------------------------------------- */

/* Count (sign 1) or uncount (-1) v's input crossing to device d's node,
   from queueing to the end, as the engine does. */
static void link_account(sim *m, const inv *v, int d, int sign)
{
	int dnode = m->dev[d].node;

	if (v->node != dnode && v->node < 8 && dnode < 8)
		m->link_bytes[v->node][dnode] +=
		        (uint64_t)sign * m->fn[v->fn].bytes;
}

static void finish_running(sim *m, policy p, int d, stats *st)
{
	dev_state *ds = &m->dev[d];
	inv *v = &m->iv[ds->running];
	uint64_t *a = &m->avg[(size_t)v->fn * MAX_DEV + (size_t)d];
	uint64_t took = m->fn[v->fn].run_ns +
	                m->fn[v->fn].bytes / m->o->pcie_gbs; /* device time */

	if (p == POL_GFN) { /* learn as the engine does (weight 1/8) */
		*a = *a ? *a - *a / 8 + took / 8 : took;
		ds->backlog -= v->est;
		link_account(m, v, d, -1);
	}
	if (ds->free_at > st->last_end)
		st->last_end = ds->free_at;
	if (ds->free_at <= v->deadline)
		st->ontime++;
	else
		st->late++;
	st->lat[st->nlat++] = (double)(ds->free_at - v->arrive) / 1e3;
	ds->running = -1;
}

/*
 * When v, started at now on a device on node dnode, ends: a crossing
 * input first waits for its link direction, then holds it for the
 * transfer; then the copy in over PCIe and the run.
 */
static uint64_t start_at(sim *m, const inv *v, int dnode, uint64_t now,
                         stats *st)
{
	const fn_def *f = &m->fn[v->fn];
	uint64_t t = now;

	if (v->node != dnode && v->node < 8 && dnode < 8) {
		uint64_t *free_at = &m->link_free[v->node][dnode];
		t = *free_at > now ? *free_at : now;
		t += f->bytes / m->o->link_gbs;
		*free_at = t;
		st->cross_bytes += f->bytes;
	}
	return t + f->bytes / m->o->pcie_gbs + f->run_ns;
}

/* Start the next queued invocation on d at now (gfn drops hopeless ones). */
static void pop_next(sim *m, policy p, int d, uint64_t now, stats *st)
{
	dev_state *ds = &m->dev[d];
	gfn_qent e;

	while (ds->running < 0 && gfn_pq_pop(&ds->q, &e)) {
		inv *v = &m->iv[e.id];
		if (p == POL_GFN && now + learned(m, v->fn, d) > v->deadline) {
			ds->backlog -= v->est; /* ended before it runs */
			link_account(m, v, d, -1);
			st->dropped++;
			continue;
		}
		ds->running = (int64_t)e.id;
		ds->free_at = start_at(m, v, ds->node, now, st);
	}
}

static int push(sim *m, policy p, size_t i, int d, uint64_t now);

/*
 * Work stealing as the engine's idle worker does it (engine/steal.c):
 * idle device d looks at the first GFN_STEAL_SCAN entries of every other
 * queue and takes the one gfn__steal_pick chooses, with its backlog and
 * link bytes. Returns 1 when it took one.
 */
static int steal(sim *m, int d, uint64_t now)
{
	gfn_steal_cand c[MAX_DEV * GFN_STEAL_SCAN];
	int from[MAX_DEV * GFN_STEAL_SCAN], n = 0, k;
	size_t pos[MAX_DEV * GFN_STEAL_SCAN];
	uint64_t q[GFN_PLACE_MAX_NODES][GFN_PLACE_MAX_NODES] = {{0}};
	const uint64_t(*lq)[GFN_PLACE_MAX_NODES] = link_snapshot(m, q);
	gfn_qent e;

	for (int v = 0; v < m->ndev; v++)
		for (size_t p = 0;
		     v != d && p < m->dev[v].q.n && p < GFN_STEAL_SCAN; p++) {
			const inv *x = &m->iv[m->dev[v].q.h[p].id];
			uint64_t bytes = m->fn[x->fn].bytes;
			gfn_place_in in = {1, &x->node, &bytes, m->o->link_gbs,
			                   lq};

			c[n] = (gfn_steal_cand){
			        1,
			        gfn__place_transfer_ns(&in, m->dev[d].node) +
			                learned(m, x->fn, d),
			        m->dev[v].q.h[p].start, x->est, x->deadline};
			from[n] = v;
			pos[n++] = p;
		}
	if ((k = gfn__steal_pick(c, n, now)) < 0)
		return 0;
	gfn_pq_remove(&m->dev[from[k]].q, pos[k], &e);
	m->dev[from[k]].backlog -= m->iv[e.id].est;
	link_account(m, &m->iv[e.id], from[k], -1);
	m->iv[e.id].dev = d;
	return push(m, POL_GFN, e.id, d, now);
}

/* Start the next invocation on d at now: its own queue first; gfn's
   idle device then steals. */
static void start_next(sim *m, policy p, int d, uint64_t now, stats *st)
{
	do
		pop_next(m, p, d, now, st);
	while (p == POL_GFN && m->dev[d].running < 0 && steal(m, d, now));
}

/*
 * Queue v on d as the engine's push_job does: ordered by when v must
 * start, the earlier of its deadline's latest start and its place in
 * arrival order (now + the backlog ahead; see engine/pqueue.h). The other
 * policies keep no run-time estimates (backlog and run time 0), which
 * leaves their queues in arrival order.
 */
static int push(sim *m, policy p, size_t i, int d, uint64_t now)
{
	inv *v = &m->iv[i];
	uint64_t start = now + m->dev[d].backlog;

	v->est = p == POL_GFN ? learned(m, v->fn, d) : 0;
	if (!gfn_pq_push(&m->dev[d].q, i, 0, v->deadline, start, v->est))
		return 0;
	if (p == POL_GFN) {
		m->dev[d].backlog += v->est;
		link_account(m, v, d, 1);
	}
	return 1;
}

static void arrive(sim *m, policy p, size_t i, stats *st)
{
	inv *v = &m->iv[i];
	int d = choose(m, p, v, v->arrive);

	v->dev = d;
	if (d < 0) {
		st->refused++;
		return;
	}
	if (!push(m, p, i, d, v->arrive)) {
		st->refused++; /* queue full: back-pressure */
		return;
	}
	start_next(m, p, d, v->arrive, st);
}

/* The device whose running invocation ends first, or -1. */
static int next_completion(const sim *m)
{
	int best = -1;

	for (int d = 0; d < m->ndev; d++)
		if (m->dev[d].running >= 0 &&
		    (best < 0 || m->dev[d].free_at < m->dev[best].free_at))
			best = d;
	return best;
}

static void run_policy(sim *m, policy p, stats *st)
{
	size_t i = 0;

	memset(m->avg, 0, (size_t)m->o->nfn * MAX_DEV * sizeof(*m->avg));
	for (int d = 0; d < m->ndev; d++) {
		m->dev[d].running = -1;
		m->dev[d].backlog = 0;
		m->dev[d].q.n = 0;
		m->dev[d].q.fifo = 0;
	}
	m->rr = 0;
	memset(m->link_free, 0, sizeof(m->link_free));
	memset(m->link_bytes, 0, sizeof(m->link_bytes));
	for (;;) {
		int d = next_completion(m);

		if (i < m->o->n &&
		    (d < 0 || m->iv[i].arrive < m->dev[d].free_at)) {
			arrive(m, p, i++, st);
			continue;
		}
		if (d < 0)
			break;
		finish_running(m, p, d, st);
		start_next(m, p, d, m->dev[d].free_at, st);
	}
	st->window = m->iv[m->o->n - 1].arrive;
}

/* ---- set-up and report ---------------------------------------------------------------- */

static int load_machine(sim *m)
{
	char ids[MAX_DEV][16];
	gfn_topology *t;
	int n;

	if (gfn_topology_load(m->o->topo, &t) != GFN_OK) {
		fprintf(stderr, "gfn-sim: %s\n", gfn_error_detail());
		return -1;
	}
	n = gfn_topology_gpus(t, ids, MAX_DEV);
	m->nnodes = gfn_topology_nodes(t);
	m->ndev = n < MAX_DEV ? n : MAX_DEV;
	for (int d = 0; d < m->ndev; d++) {
		m->dev[d].node = gfn_topology_pci_node(t, ids[d]);
		if (m->dev[d].node < 0)
			m->dev[d].node = 0;
		/* Room for an overloaded policy's backlog; past it, the
		   queue refuses (back-pressure, counted as a miss). */
		gfn_pq_init(&m->dev[d].q,
		            2 * m->o->n / (size_t)(n ? n : 1) + 1024);
	}
	gfn_topology_free(t);
	if (!m->ndev)
		fprintf(stderr, "gfn-sim: %s has no GPU\n", m->o->topo);
	return m->ndev ? 0 : -1;
}

static void report(const sim_opts *o, stats *st, bench_report *r)
{
	double tput[NPOL], good[NPOL];
	FILE *h = o->json ? stderr : stdout;

	for (int p = 0; p < NPOL; p++) {
		tput[p] = (double)(st[p].ontime + st[p].late) /
		          ((double)st[p].last_end / 1e9);
		good[p] = (double)st[p].ontime / ((double)st[p].window / 1e9);
	}
	for (int p = 0; p < NPOL; p++) {
		bench_result *x =
		        bench_report_add(r, pol_name[p], "throughput", "inv/s");
		size_t miss = st[p].late + st[p].refused + st[p].dropped;

		bench_sort(st[p].lat, st[p].nlat);
		x->value = tput[p];
		x->baseline_name = "round_robin";
		x->baseline_value = tput[POL_RR];
		x->ratio = tput[p] / tput[POL_RR];
		x = bench_report_add(r, pol_name[p], "goodput", "inv/s");
		x->value = good[p];
		x->baseline_name = "round_robin";
		x->baseline_value = good[POL_RR];
		x->ratio = good[p] / good[POL_RR];
		x = bench_report_add(r, pol_name[p], "latency", "us");
		x->p50 = bench_percentile_sorted(st[p].lat, st[p].nlat, 50);
		x->p99 = bench_percentile_sorted(st[p].lat, st[p].nlat, 99);
		x->value = x->p50;
		x = bench_report_add(r, pol_name[p], "deadline_miss", "%");
		x->value = 100.0 * (double)miss / (double)o->n;
		x = bench_report_add(r, pol_name[p], "numa_bytes", "GB");
		x->value = (double)st[p].cross_bytes / 1e9;
		fprintf(h,
		        "  %-14s on time %zu, late %zu, refused %zu, dropped "
		        "%zu\n",
		        pol_name[p], st[p].ontime, st[p].late, st[p].refused,
		        st[p].dropped);
	}
	fprintf(h,
	        "goals: gfn >= 1.3x round_robin throughput: %s (%.2fx); "
	        "gfn p99 <= 3x p50: %s; gfn misses < 1%%: %s; "
	        "round_robin misses > 10%%: %s\n",
	        tput[POL_GFN] >= 1.3 * tput[POL_RR] ? "met" : "MISSED",
	        tput[POL_GFN] / tput[POL_RR],
	        r->results[2].p99 <= 3 * r->results[2].p50 ? "met" : "MISSED",
	        r->results[3].value < 1 ? "met" : "MISSED",
	        r->results[8].value > 10 ? "yes" : "no");
}

static int parse(int argc, char **argv, sim_opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--json"))
			o->json = 1;
		else if (!strcmp(a, "--topology") && v)
			o->topo = argv[++i];
		else if (!strcmp(a, "--n") && v)
			o->n = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(a, "--functions") && v)
			o->nfn = atoi(argv[++i]);
		else if (!strcmp(a, "--load") && v)
			o->load = atof(argv[++i]);
		else if (!strcmp(a, "--seed") && v)
			o->seed = strtoull(argv[++i], NULL, 10);
		else {
			fprintf(stderr,
			        "usage: gfn-sim [--topology XML] [--n N] "
			        "[--functions F] [--load L] [--seed S] "
			        "[--json]\n");
			return -1;
		}
	}
	if (o->n < 2 || o->nfn < 1 || o->load <= 0 || o->load > 4) {
		fprintf(stderr, "gfn-sim: n >= 2, functions >= 1, 0 < load "
		                "<= 4\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	sim_opts o = {GFN_SIM_TOPOLOGY, 1000000, 1000, 0.8, 20, 50, 42, 0};
	stats st[NPOL];
	bench_report r = {.bench = "gfn-sim"};
	sim m = {.o = &o};

	if (parse(argc, argv, &o) || load_machine(&m))
		return 2;
	m.rng = o.seed;
	make_functions(&m);
	make_arrivals(&m);
	m.avg = calloc((size_t)o.nfn * MAX_DEV, sizeof(*m.avg));
	fprintf(o.json ? stderr : stdout,
	        "gfn-sim: %s, %d devices on %d nodes, %zu invocations of %d "
	        "functions at %.0f%% load\n",
	        o.topo, m.ndev, m.nnodes, o.n, o.nfn, o.load * 100);
	for (int p = 0; p < NPOL; p++) {
		memset(&st[p], 0, sizeof(st[p]));
		st[p].lat = malloc(o.n * sizeof(double));
		run_policy(&m, (policy)p, &st[p]);
	}
	report(&o, st, &r);
	bench_print_table(o.json ? stderr : stdout, &r);
	if (o.json)
		bench_print_json(stdout, &r);
	for (int p = 0; p < NPOL; p++)
		free(st[p].lat);
	for (int d = 0; d < m.ndev; d++)
		gfn_pq_fini(&m.dev[d].q);
	free(m.avg);
	free(m.iv);
	free(m.fn);
	free(m.zipf_cdf);
	return 0;
}
