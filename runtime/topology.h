/*
 * topology.h - the machine as hwloc sees it: NUMA nodes, cores, caches,
 * and the NUMA node of each device. Internal: not API.
 *
 * A topology is either this machine (hwloc's discovery) or an hwloc XML
 * file (gfn_config.topology_xml, $GFN_TOPOLOGY_XML) describing a machine
 * we do not have, for tests and the simulator. Only a real topology may
 * be used to bind threads and memory: gfn_topology_is_real() says which.
 */
#ifndef GFN_RUNTIME_TOPOLOGY_H
#define GFN_RUNTIME_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>

#include "gfn/gfn.h"

typedef struct gfn_topology gfn_topology;

#define GFN_TOPO_MAX_NODES 64 /* NUMA nodes gfn keeps track of */

/*
 * Load this machine's topology (xml NULL or "") or the one in the hwloc
 * XML file xml. GFN_EINVAL with the parser's message for a file that is
 * missing, malformed or has no NUMA node. *out is the caller's.
 */
gfn_status gfn_topology_load(const char *xml, gfn_topology **out);
void gfn_topology_free(gfn_topology *t); /* NULL ok */

/* Nonzero when t describes the machine we run on (binding allowed). */
int gfn_topology_is_real(const gfn_topology *t);

/* NUMA nodes, numbered 0..n-1 in hwloc's logical order. */
int gfn_topology_nodes(const gfn_topology *t);
/* Cores (not hardware threads) on node, 0 for a bad node. */
int gfn_topology_node_cores(const gfn_topology *t, int node);
/* Bytes of memory on node (0 when the topology does not say). */
uint64_t gfn_topology_node_memory(const gfn_topology *t, int node);
/*
 * OS indices of the first hardware thread of each core on node, at most
 * max of them into cpus; returns how many there are in all.
 */
int gfn_topology_node_cpus(const gfn_topology *t, int node, int *cpus, int max);
/* Size of the largest cache level shared on node (bytes; 0 unknown). */
uint64_t gfn_topology_node_cache(const gfn_topology *t, int node);

/*
 * NUMA node of the PCI device with bus id "dddd:bb:dd.f" (case and a
 * missing domain are tolerated), or -1 when the topology has no such
 * device or does not say.
 */
int gfn_topology_pci_node(const gfn_topology *t, const char *busid);
/* Nonzero when the topology has a PCI device with that bus id. */
int gfn_topology_has_pci(const gfn_topology *t, const char *busid);

/*
 * Bus ids ("dddd:bb:dd.f") of the GPUs and other accelerators in t (PCI
 * display and processing-accelerator classes), at most max into ids;
 * returns how many there are.
 */
int gfn_topology_gpus(const gfn_topology *t, char (*ids)[16], int max);

/* The NUMA node the calling thread runs on now (-1 unknown, or when t is
   not real). */
int gfn_topology_current_node(const gfn_topology *t);

/*
 * Pin the calling thread to the cores of node. GFN_ENOTSUP for a
 * topology that is not this machine's; GFN_ESYS when the OS refuses.
 */
gfn_status gfn_topology_bind_thread(const gfn_topology *t, int node);

#endif /* GFN_RUNTIME_TOPOLOGY_H */
