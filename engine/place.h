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
 * The device where the invocation finishes first: backlog + transfer +
 * run time; equal estimates go to the first from start (round-robin).
 * -1 when no device is ok. *finish (optional) gets the estimate.
 */
int gfn__place_pick(const gfn_place_dev *devs, int ndev, const gfn_place_in *in,
                    unsigned start, uint64_t *finish);

#endif /* GFN_ENGINE_PLACE_H */
