/*
 * place.c - the placement decision (see place.h).
 */
#include "engine/place.h"

uint64_t gfn__place_transfer_ns(const gfn_place_in *in, int node)
{
	uint64_t bytes = 0;

	if (node < 0)
		return 0;
	for (int k = 0; k < in->n; k++) {
		int s = in->node[k];

		if (s < 0 || s == node)
			continue;
		bytes += in->bytes[k];
		if (in->link_queued && s < GFN_PLACE_MAX_NODES &&
		    node < GFN_PLACE_MAX_NODES)
			bytes += in->link_queued[s][node];
	}
	return bytes / in->link_gbs; /* GB/s = bytes per ns */
}

int gfn__place_pick(const gfn_place_dev *devs, int ndev, const gfn_place_in *in,
                    unsigned start, uint64_t *finish)
{
	uint64_t best_t = UINT64_MAX;
	int best = -1;

	for (int k = 0; k < ndev; k++) {
		int i = (int)((start + (unsigned)k) % (unsigned)ndev);
		const gfn_place_dev *d = &devs[i];
		uint64_t t;

		if (!d->ok)
			continue;
		t = d->backlog_ns + gfn__place_transfer_ns(in, d->node) +
		    d->run_ns;
		if (t < best_t) {
			best_t = t;
			best = i;
		}
	}
	if (finish)
		*finish = best_t;
	return best;
}

/* When c would finish where it waits now. */
static uint64_t there(const gfn_steal_cand *c, uint64_t now)
{
	return (c->start > now ? c->start : now) + c->run_there;
}

int gfn__steal_pick(const gfn_steal_cand *c, int n, uint64_t now)
{
	int best = -1;

	for (int k = 0; k < n; k++) {
		uint64_t t = now + c[k].here_ns;

		if (!c[k].ok || t > c[k].deadline || t > there(&c[k], now))
			continue;
		if (best < 0 || c[k].here_ns < c[best].here_ns ||
		    (c[k].here_ns == c[best].here_ns &&
		     there(&c[k], now) > there(&c[best], now)))
			best = k;
	}
	return best;
}
