/*
 * place.h - the placement decision, as a pure function of what the
 * scheduler knows about each device. The engine (sched.c) and the
 * scheduler simulator (bench/gfn-sim) both call it, so the simulator
 * measures the policy the engine really runs. Internal: not API.
 */
#ifndef GFN_ENGINE_PLACE_H
#define GFN_ENGINE_PLACE_H

#include <stddef.h>
#include <stdint.h>

/* One candidate device. */
typedef struct gfn_place_dev {
	int ok;              /* allowed, active, has the function and room */
	int node;            /* its NUMA node, -1 unknown */
	uint64_t backlog_ns; /* expected time of what is queued and running */
	uint64_t run_ns;     /* expected run time of this invocation there */
} gfn_place_dev;

#define GFN_PLACE_MAX_NODES 8 /* nodes whose links are tracked */

/* The inputs of one invocation. */
typedef struct gfn_place_in {
	int n;                 /* inputs */
	const int8_t *node;    /* NUMA node of each, -1 unknown */
	const uint64_t *bytes; /* size of each */
	unsigned link_gbs;     /* NUMA link bandwidth, GB/s (> 0) */
	/* Bytes already queued to cross from node s to node d, or NULL:
	   a crossing waits behind them (a link is shared). */
	const uint64_t (*link_queued)[GFN_PLACE_MAX_NODES];
} gfn_place_in;

/* Time to bring the inputs to a device on node (0 when node < 0),
   behind what is queued on the links they cross. */
uint64_t gfn__place_transfer_ns(const gfn_place_in *in, int node);

/*
 * The device where the invocation finishes first: backlog + crossing +
 * run time, where crossing adds to the own transfer its ratio to the run
 * time times the device time it takes from work queued there, and counts
 * the link queue only past the device's backlog (place.c says why); equal estimates go to the first from start
 * (round-robin). -1 when no device is ok. *finish (optional) gets the
 * chosen device's finish estimate: backlog + gfn__place_transfer_ns +
 * run time (what admission checks a deadline against).
 */
int gfn__place_pick(const gfn_place_dev *devs, int ndev, const gfn_place_in *in,
                    unsigned start, uint64_t *finish);

/*
 * Work stealing: a device whose queue is empty takes a queued invocation
 * from another device's queue. It looks at the first GFN_STEAL_SCAN heap
 * positions of each other queue (those that start soonest there; a long
 * queue is not scanned whole on every idle moment).
 */
#define GFN_STEAL_SCAN 16

/* One queued invocation the idle device might take. */
typedef struct gfn_steal_cand {
	int ok;             /* the idle device may run it */
	uint64_t here_ns;   /* transfer + run time (+ load cost) there */
	uint64_t start;     /* when it starts where it waits (its queue key) */
	uint64_t run_there; /* its expected run time where it waits */
	uint64_t deadline;  /* monotonic ns, UINT64_MAX for none */
} gfn_steal_cand;

/*
 * The candidate the idle device would finish soonest (now + here_ns),
 * among those it finishes by their deadline and no later than they would
 * finish where they wait (max(start, now) + run_there, an early guess:
 * the device there is busy. So a cold instance or a long transfer is not
 * taken to save nothing); equal estimates go to the one that would wait
 * longest. -1 when none.
 */
int gfn__steal_pick(const gfn_steal_cand *c, int n, uint64_t now);

#endif /* GFN_ENGINE_PLACE_H */
