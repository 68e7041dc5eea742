/*
 * numa.c - NUMA policy of memory ranges through libnuma (see numa.h).
 */
#include "runtime/numa.h"

#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "runtime/util.h"

#define MASK_WORDS 16 /* nodes 0..1023 in policy masks */
#define MASK_BITS (MASK_WORDS * 64)
#define CHECK_PAGES 64 /* pages gfn__numa_check asks about */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int available;           /* numa_available() succeeded */
static int max_node;            /* numa_max_node() */
static struct bitmask *allowed; /* mems_allowed; kept for the process */

static void init_once(void)
{
	available = numa_available() >= 0;
	if (!available)
		return;
	max_node = numa_max_node();
	allowed = numa_get_mems_allowed();
}

int gfn__numa_available(void)
{
	pthread_once(&once, init_once);
	return available;
}

int gfn__numa_max_node(void)
{
	return gfn__numa_available() ? max_node : 0;
}

int gfn__numa_node_exists(int node)
{
	if (!gfn__numa_available() || node < 0 || node > max_node ||
	    node >= MASK_BITS || !allowed)
		return 0;
	return numa_bitmask_isbitset(allowed, (unsigned)node);
}

int gfn__numa_current_node(void)
{
	unsigned cpu, node;

	if (getcpu(&cpu, &node) != 0)
		return -1;
	return (int)node;
}

static void mask_of(int node, unsigned long *mask)
{
	memset(mask, 0, MASK_WORDS * sizeof(*mask));
	mask[node / 64] = 1ul << (node % 64);
}

/* The policy of p is mode on node alone (get_mempolicy MPOL_F_ADDR). */
static gfn_status check_policy(void *p, int node, int mode)
{
	unsigned long mask[MASK_WORDS], want[MASK_WORDS];
	int got;

	if (get_mempolicy(&got, mask, MASK_BITS + 1, p, MPOL_F_ADDR) != 0)
		return gfn__fail(GFN_ESYS, "get_mempolicy: %s",
		                 strerror(errno));
	mask_of(node, want);
	if (got != mode || memcmp(mask, want, sizeof(mask)) != 0)
		return gfn__fail(GFN_ESYS,
		                 "the kernel did not keep the policy: mode %d "
		                 "(wanted %d) for node %d",
		                 got, mode, node);
	return GFN_OK;
}

gfn_status gfn__numa_bind(void *p, size_t len, int node, gfn_numa_mode how)
{
	int mode = how == GFN_NUMA_BIND ? MPOL_BIND : MPOL_PREFERRED;
	unsigned flags =
	        how == GFN_NUMA_BIND ? MPOL_MF_STRICT | MPOL_MF_MOVE : 0;
	unsigned long mask[MASK_WORDS];

	if (!gfn__numa_node_exists(node))
		return gfn__fail(GFN_EINVAL,
		                 "NUMA node %d does not exist on this machine "
		                 "(or is not allowed here)",
		                 node);
	mask_of(node, mask);
	if (mbind(p, len, mode, mask, MASK_BITS + 1, flags) != 0)
		return gfn__fail(GFN_ESYS, "mbind of %zu bytes to node %d: %s",
		                 len, node, strerror(errno));
	return check_policy(p, node, mode);
}

int gfn__numa_page_node(void *p)
{
	int node = -1;

	if (get_mempolicy(&node, NULL, 0, p, MPOL_F_NODE | MPOL_F_ADDR) != 0)
		return -1;
	return node;
}

gfn_status gfn__numa_check(void *p, size_t len, int node)
{
	long ps = sysconf(_SC_PAGESIZE);
	size_t page = ps > 0 ? (size_t)ps : 4096;
	size_t npages = len / page ? len / page : 1;
	size_t n = npages < CHECK_PAGES ? npages : CHECK_PAGES;
	void *pages[CHECK_PAGES];
	int status[CHECK_PAGES];

	for (size_t k = 0; k < n; k++)
		pages[k] = (char *)p + k * (npages / n) * page;
	if (move_pages(0, (unsigned long)n, pages, NULL, status, 0) != 0)
		return gfn__fail(GFN_ESYS, "move_pages: %s", strerror(errno));
	for (size_t k = 0; k < n; k++) {
		if (status[k] == -ENOENT || status[k] == node)
			continue; /* not touched yet, or where it belongs */
		return gfn__fail(GFN_EINVAL,
		                 "page %p is on node %d, not %d (status %d)",
		                 pages[k], status[k] < 0 ? -1 : status[k], node,
		                 status[k]);
	}
	return GFN_OK;
}
