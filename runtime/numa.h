/*
 * numa.h - binding memory to NUMA nodes of this machine (libnuma).
 * Internal: not API.
 *
 * Node numbers here are the kernel's (what mbind and getcpu take). gfn's
 * logical nodes (runtime/topology.h, hwloc's logical order) are the same
 * numbers on Linux, where hwloc orders NUMA nodes by OS index; a logical
 * node of a synthetic topology that this machine lacks is simply not
 * gfn__numa_node_exists().
 */
#ifndef GFN_RUNTIME_NUMA_H
#define GFN_RUNTIME_NUMA_H

#include <stddef.h>

#include "gfn/gfn.h"

/* How gfn__numa_bind binds: only that node, or that node first. */
typedef enum gfn_numa_mode {
	GFN_NUMA_BIND = 0,      /* MPOL_BIND: fail rather than go elsewhere */
	GFN_NUMA_PREFERRED = 1, /* MPOL_PREFERRED: elsewhere when it is full */
} gfn_numa_mode;

/* Nonzero when the kernel supports NUMA policy (libnuma's numa_available). */
int gfn__numa_available(void);
/*
 * Nonzero when node is a memory node this process may bind to (it exists
 * and is in the cpuset's mems_allowed). Always 0 without NUMA support.
 */
int gfn__numa_node_exists(int node);
/* Highest node number of this machine (0 without NUMA support). */
int gfn__numa_max_node(void);
/* The node the calling thread runs on now (getcpu); -1 unknown. */
int gfn__numa_current_node(void);

/*
 * Set the memory policy of the page-aligned range [p, p+len) to node
 * (mbind), before its pages are touched, and check with get_mempolicy that
 * the kernel kept it. For a shared mapping (a memfd) the policy belongs to
 * the file, so every process that maps it gets its pages from node.
 * GFN_EINVAL for a node that does not exist here, GFN_ESYS when the kernel
 * refuses.
 */
gfn_status gfn__numa_bind(void *p, size_t len, int node, gfn_numa_mode mode);
/*
 * The node of the page at p, faulting it in first when untouched
 * (get_mempolicy MPOL_F_NODE | MPOL_F_ADDR); -1 when the kernel says no.
 */
int gfn__numa_page_node(void *p);
/*
 * Check that the touched pages of [p, p+len) lie on node: up to 64 pages
 * spread over the range, asked in one move_pages call. GFN_EINVAL with
 * the first page found elsewhere; GFN_ESYS when the kernel refuses.
 */
gfn_status gfn__numa_check(void *p, size_t len, int node);

#endif /* GFN_RUNTIME_NUMA_H */
