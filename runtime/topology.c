/*
 * topology.c - NUMA nodes, cores, caches and device locality through
 * hwloc (see topology.h).
 */
#include "runtime/topology.h"

#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/util.h"

struct gfn_topology {
	hwloc_topology_t h; /* the hwloc topology */
	int real;           /* it is this machine */
	int nnodes;         /* NUMA nodes */
};

static gfn_status open_xml(hwloc_topology_t h, const char *xml)
{
	FILE *f = fopen(xml, "r");

	if (!f)
		return gfn__fail(GFN_EINVAL, "topology file %s cannot be read",
		                 xml);
	fclose(f);
	if (hwloc_topology_set_xml(h, xml) != 0)
		return gfn__fail(GFN_EINVAL,
		                 "topology file %s is not hwloc XML", xml);
	return GFN_OK;
}

gfn_status gfn_topology_load(const char *xml, gfn_topology **out)
{
	gfn_topology *t = calloc(1, sizeof(*t));
	gfn_status s = GFN_OK;

	if (!t)
		return gfn__fail(GFN_ENOMEM, "no memory for the topology");
	if (hwloc_topology_init(&t->h) != 0) {
		free(t);
		return gfn__fail(GFN_ESYS, "hwloc_topology_init failed");
	}
	/* Keep PCI devices: GPUs are found by bus id. */
	hwloc_topology_set_io_types_filter(t->h,
	                                   HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
	if (xml && xml[0])
		s = open_xml(t->h, xml);
	if (s == GFN_OK && hwloc_topology_load(t->h) != 0)
		s = gfn__fail(GFN_EINVAL,
		              "topology %s cannot be loaded "
		              "(malformed?)",
		              xml && xml[0] ? xml : "of this machine");
	if (s == GFN_OK) {
		t->nnodes = hwloc_get_nbobjs_by_type(t->h, HWLOC_OBJ_NUMANODE);
		t->real = hwloc_topology_is_thissystem(t->h);
		if (t->nnodes < 1 || t->nnodes > GFN_TOPO_MAX_NODES)
			s = gfn__fail(GFN_EINVAL,
			              "topology has %d NUMA nodes (1..%d)",
			              t->nnodes, GFN_TOPO_MAX_NODES);
	}
	if (s != GFN_OK) {
		gfn_topology_free(t);
		return s;
	}
	*out = t;
	return GFN_OK;
}

void gfn_topology_free(gfn_topology *t)
{
	if (!t)
		return;
	hwloc_topology_destroy(t->h);
	free(t);
}

int gfn_topology_is_real(const gfn_topology *t)
{
	return t->real;
}

int gfn_topology_nodes(const gfn_topology *t)
{
	return t->nnodes;
}

static hwloc_obj_t node_obj(const gfn_topology *t, int node)
{
	if (node < 0 || node >= t->nnodes)
		return NULL;
	return hwloc_get_obj_by_type(t->h, HWLOC_OBJ_NUMANODE, (unsigned)node);
}

int gfn_topology_node_cores(const gfn_topology *t, int node)
{
	hwloc_obj_t n = node_obj(t, node);

	if (!n)
		return 0;
	return hwloc_get_nbobjs_inside_cpuset_by_type(t->h, n->cpuset,
	                                              HWLOC_OBJ_CORE);
}

uint64_t gfn_topology_node_memory(const gfn_topology *t, int node)
{
	hwloc_obj_t n = node_obj(t, node);

	return n ? n->attr->numanode.local_memory : 0;
}

int gfn_topology_node_cpus(const gfn_topology *t, int node, int *cpus, int max)
{
	hwloc_obj_t n = node_obj(t, node), core = NULL;
	int k = 0;

	if (!n)
		return 0;
	while ((core = hwloc_get_next_obj_inside_cpuset_by_type(
	                t->h, n->cpuset, HWLOC_OBJ_CORE, core))) {
		int pu = hwloc_bitmap_first(core->cpuset);
		if (k < max && cpus)
			cpus[k] = pu;
		k++;
	}
	return k;
}

uint64_t gfn_topology_node_cache(const gfn_topology *t, int node)
{
	static const hwloc_obj_type_t levels[] = {
	        HWLOC_OBJ_L3CACHE, HWLOC_OBJ_L2CACHE, HWLOC_OBJ_L1CACHE};
	hwloc_obj_t n = node_obj(t, node);

	if (!n)
		return 0;
	for (size_t l = 0; l < sizeof(levels) / sizeof(levels[0]); l++) {
		hwloc_obj_t c = hwloc_get_next_obj_inside_cpuset_by_type(
		        t->h, n->cpuset, levels[l], NULL);
		if (c && c->attr)
			return c->attr->cache.size;
	}
	return 0;
}

/* The PCI device with busid, accepting "bb:dd.f" and any case. */
static hwloc_obj_t pci_obj(const gfn_topology *t, const char *busid)
{
	char id[32];

	if (!busid || !busid[0] || strlen(busid) > 16)
		return NULL;
	if (strchr(busid, ':') == strrchr(busid, ':')) /* no domain */
		snprintf(id, sizeof(id), "0000:%s", busid);
	else
		snprintf(id, sizeof(id), "%s", busid);
	return hwloc_get_pcidev_by_busidstring(t->h, id);
}

int gfn_topology_has_pci(const gfn_topology *t, const char *busid)
{
	return pci_obj(t, busid) != NULL;
}

/* Logical NUMA index of the first node in a nodeset, or -1. */
static int first_node(const gfn_topology *t, hwloc_const_nodeset_t set)
{
	int os = hwloc_bitmap_first(set);

	for (int i = 0; os >= 0 && i < t->nnodes; i++)
		if ((int)node_obj(t, i)->os_index == os)
			return i;
	return -1;
}

int gfn_topology_pci_node(const gfn_topology *t, const char *busid)
{
	hwloc_obj_t dev = pci_obj(t, busid), anc;

	if (!dev)
		return -1;
	anc = hwloc_get_non_io_ancestor_obj(t->h, dev);
	if (!anc || !anc->nodeset || hwloc_bitmap_weight(anc->nodeset) != 1)
		return -1; /* attached to several nodes: no single home */
	return first_node(t, anc->nodeset);
}

int gfn_topology_current_node(const gfn_topology *t)
{
	hwloc_bitmap_t set;
	int node = -1;

	if (!t->real || !(set = hwloc_bitmap_alloc()))
		return -1;
	if (hwloc_get_last_cpu_location(t->h, set, HWLOC_CPUBIND_THREAD) == 0)
		for (int i = 0; i < t->nnodes && node < 0; i++)
			if (hwloc_bitmap_isincluded(set,
			                            node_obj(t, i)->cpuset))
				node = i;
	hwloc_bitmap_free(set);
	return node;
}

gfn_status gfn_topology_bind_thread(const gfn_topology *t, int node)
{
	hwloc_obj_t n = node_obj(t, node);

	if (!t->real)
		return gfn__fail(GFN_ENOTSUP,
		                 "topology is not this machine's: no binding");
	if (!n)
		return gfn__fail(GFN_EINVAL, "no NUMA node %d", node);
	if (hwloc_set_cpubind(t->h, n->cpuset, HWLOC_CPUBIND_THREAD) != 0)
		return gfn__fail(GFN_ESYS, "cannot bind a thread to node %d",
		                 node);
	return GFN_OK;
}

int gfn_topology_gpus(const gfn_topology *t, char (*ids)[16], int max)
{
	hwloc_obj_t o = NULL;
	int k = 0;

	while ((o = hwloc_get_next_pcidev(t->h, o))) {
		unsigned cls = o->attr->pcidev.class_id >> 8;

		if (cls != 0x03 && cls != 0x12) /* display, accelerator */
			continue;
		if (k < max)
			snprintf(ids[k], sizeof(ids[k]), "%04x:%02x:%02x.%x",
			         o->attr->pcidev.domain, o->attr->pcidev.bus,
			         o->attr->pcidev.dev, o->attr->pcidev.func);
		k++;
	}
	return k;
}
