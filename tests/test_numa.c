/*
 * test_numa - NUMA placement of store segments and node-bound host pools:
 * every object records the node of its segment (gfn_store_object_node);
 * segments are made per (tenant, node); a node this machine has gets its
 * pages bound there (checked with get_mempolicy and move_pages), a node
 * only a synthetic topology has is recorded and not bound; placement hints
 * from the engine API and from a client process's connection; bad hints
 * rejected; host pools bound to a node before they are pinned, and a pool
 * for a node that does not exist refused.
 */
#include <gfn/gfn_store_client.h>

#include <inttypes.h>
#include <numaif.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine/store.h"
#include "runtime/hostmem.h"
#include "runtime/numa.h"
#include "runtime/util.h"
#include "test.h"
#include "test_shm_util.h"

/* ------------------------------------------------------------- helpers */

static gfn_store *store_nodes(int nodes, size_t capacity, const char *sock)
{
	gfn_store_config cfg = {.capacity = capacity,
	                        .max_objects = 1 << 14,
	                        .segment_size = 1 << 20,
	                        .numa_nodes = nodes,
	                        .socket_path = sock};
	gfn_store *st = NULL;

	ASSERT_OK(gfn_store_create(&cfg, &st));
	return st;
}

/* An object of n floats of tenant on node; its place in *loc. */
static gfn_object make_on(gfn_store *st, uint32_t tenant, int node, int64_t n,
                          gfn_store_loc *loc)
{
	gfn_object o;

	ASSERT_OK(gfn_store_create_at(st, tenant, node, GFN_STORE_NODE_HERE,
	                              GFN_F32, 1, &n, &o, loc));
	return o;
}

/* The policy of the page at p: its mode and the first node of its mask. */
static int policy_of(void *p, int *first_node)
{
	unsigned long mask[16] = {0};
	int mode = -1;

	ASSERT_EQ(get_mempolicy(&mode, mask, 16 * 64 + 1, p, MPOL_F_ADDR), 0);
	*first_node = -1;
	for (int k = 0; k < 16 * 64; k++) {
		if (mask[k / 64] >> (k % 64) & 1) {
			*first_node = k;
			break;
		}
	}
	return mode;
}

/* A node number this machine does not have (synthetic only). */
static int missing_node(void)
{
	return gfn__numa_max_node() + 1;
}

/* --------------------------------------------------------------- store */

/* The default store knows this machine's nodes; objects record theirs. */
static void numa_object_node_recorded(void)
{
	gfn_store *st = store_nodes(0, 8 << 20, NULL);
	int nodes = gfn_store_numa_nodes(st);
	int64_t n = 100;
	gfn_store_loc loc;
	gfn_object o, gone;

	ASSERT_EQ(nodes, gfn__numa_available() ? gfn__numa_max_node() + 1 : 1);
	o = make_on(st, GFN_TENANT_ENGINE, 0, 100, &loc);
	ASSERT_EQ(loc.node, 0);
	ASSERT_EQ(gfn_store_object_node(st, o), 0);
	/* No hint: the calling thread's node, as getcpu says. */
	ASSERT_OK(gfn_store_create_object(st, GFN_F32, 1, &n, &gone, NULL));
	ASSERT_EQ(gfn_store_object_node(st, gone),
	          gfn__numa_current_node() >= 0 &&
	                          gfn__numa_current_node() < nodes
	                  ? gfn__numa_current_node()
	                  : 0);
	ASSERT_OK(gfn_store_delete(st, gone));
	ASSERT_EQ(gfn_store_object_node(st, gone), -1); /* deleted */
	ASSERT_EQ(gfn_store_object_node(st, GFN_OBJECT_NONE), -1);
	ASSERT_EQ(gfn_store_object_node(st, (gfn_object){o.hi ^ 1, o.lo}), -1);
	ASSERT_OK(gfn_store_check(st));
	gfn_store_destroy(st);
}

/*
 * A store told of more nodes than this machine has (a synthetic
 * topology) makes a segment per (tenant, node), and objects of one
 * (tenant, node) share theirs.
 */
static void numa_segments_per_node(void)
{
	gfn_store *st = store_nodes(4, 16 << 20, NULL);
	gfn_store_loc loc[2][4][2];
	uint32_t tenants[2] = {GFN_TENANT_ENGINE, 7};
	gfn_object o[2][4][2];
	gfn_store_stats s;

	ASSERT_EQ(gfn_store_numa_nodes(st), 4);
	for (int t = 0; t < 2; t++)
		for (int n = 0; n < 4; n++)
			for (int k = 0; k < 2; k++)
				o[t][n][k] = make_on(st, tenants[t], n, 1000,
				                     &loc[t][n][k]);
	for (int t = 0; t < 2; t++) {
		for (int n = 0; n < 4; n++) {
			ASSERT_EQ(loc[t][n][0].node, n);
			ASSERT_EQ(gfn_store_object_node(st, o[t][n][1]), n);
			ASSERT_EQ(loc[t][n][0].seg_id, loc[t][n][1].seg_id);
			ASSERT_EQ(loc[t][n][0].tenant, tenants[t]);
			for (int m = 0; m < n; m++)
				ASSERT_NE(loc[t][n][0].seg_id,
				          loc[t][m][0].seg_id);
		}
	}
	ASSERT_NE(loc[0][2][0].seg_id, loc[1][2][0].seg_id);
	gfn_store_get_stats(st, &s);
	ASSERT_EQ(s.segments, 8);
	ASSERT_OK(gfn_store_check(st));
	for (int t = 0; t < 2; t++)
		for (int n = 0; n < 4; n++)
			for (int k = 0; k < 2; k++)
				ASSERT_OK(gfn_store_delete_as(st, tenants[t],
				                              o[t][n][k]));
	ASSERT_OK(gfn_store_check(st));
	gfn_store_destroy(st);
}

/*
 * Every node of this machine (node 0 at least): the segment's pages are
 * bound there, for the engine's process and any client's.
 */
static void numa_bound_on_real_node(void)
{
	gfn_store *st = store_nodes(0, 8 << 20, NULL);
	gfn_store_loc loc;
	int first;

	if (!gfn__numa_node_exists(0)) {
		printf("# no NUMA support here: binding not checked\n");
		gfn_store_destroy(st);
		return;
	}
	for (int node = 0; node < gfn_store_numa_nodes(st); node++) {
		if (!gfn__numa_node_exists(node))
			continue;
		make_on(st, GFN_TENANT_ENGINE, node, 1 << 16, &loc);
		ASSERT_EQ(policy_of(loc.data, &first), MPOL_PREFERRED);
		ASSERT_EQ(first, node);
		memset(loc.data, 0x5a, loc.size); /* first touch */
		ASSERT_EQ(gfn__numa_page_node(loc.data), node);
		ASSERT_OK(gfn__numa_check(loc.data, loc.size, node));
	}
	ASSERT_OK(gfn_store_check(st));
	gfn_store_destroy(st);
}

/* A node only a synthetic topology has: accepted, recorded, not bound. */
static void numa_synthetic_node_not_bound(void)
{
	int node = missing_node();
	gfn_store *st = store_nodes(node + 1, 8 << 20, NULL);
	gfn_store_loc loc;
	gfn_object o;
	int first;

	o = make_on(st, 3, node, 4096, &loc);
	ASSERT_EQ(loc.node, node);
	ASSERT_EQ(gfn_store_object_node(st, o), node);
	ASSERT_EQ(policy_of(loc.data, &first), MPOL_DEFAULT);
	memset(loc.data, 1, loc.size); /* usable all the same */
	ASSERT_OK(gfn_store_check(st));
	gfn_store_destroy(st);
}

static void numa_bad_hints_rejected(void)
{
	gfn_store_config cfg = {.capacity = 1 << 20, .max_objects = 64};
	gfn_store *st = store_nodes(2, 8 << 20, NULL), *bad = NULL;
	int64_t n = 10;
	gfn_object o;

	ASSERT_FAILS(gfn_store_create_at(st, 0, 2, GFN_STORE_NODE_HERE, GFN_F32,
	                                 1, &n, &o, NULL),
	             GFN_EINVAL);
	ASSERT_FAILS(gfn_store_create_at(st, 0, -2, GFN_STORE_NODE_HERE,
	                                 GFN_F32, 1, &n, &o, NULL),
	             GFN_EINVAL);
	ASSERT_FAILS(
	        gfn_store_create_object_on(st, GFN_F32, 1, &n, 1000, &o, NULL),
	        GFN_EINVAL);
	/* A caller node the store does not know is no error: node 0. */
	ASSERT_OK(gfn_store_create_at(st, 0, -1, 9, GFN_F32, 1, &n, &o, NULL));
	ASSERT_EQ(gfn_store_object_node(st, o), 0);
	ASSERT_OK(gfn_store_create_at(st, 0, -1, 1, GFN_F32, 1, &n, &o, NULL));
	ASSERT_EQ(gfn_store_object_node(st, o), 1);
	ASSERT_OK(gfn_store_create_at(st, 0, -1, GFN_STORE_NODE_UNKNOWN,
	                              GFN_F32, 1, &n, &o, NULL));
	ASSERT_EQ(gfn_store_object_node(st, o), 0);
	gfn_store_destroy(st);
	cfg.numa_nodes = GFN_STORE_MAX_NODES + 1;
	ASSERT_FAILS(gfn_store_create(&cfg, &bad), GFN_EINVAL);
	ASSERT_NULL(bad);
	cfg.numa_nodes = -1;
	ASSERT_FAILS(gfn_store_create(&cfg, &bad), GFN_EINVAL);
}

/* Outputs of invocations (create_n) go on the calling thread's node. */
static void numa_create_n_on_caller_node(void)
{
	gfn_store *st = store_nodes(0, 8 << 20, NULL);
	gfn_tensor t[2] = {{.dtype = GFN_U8, .ndim = 1, .shape = {300}},
	                   {.dtype = GFN_F64, .ndim = 0}};
	gfn_object ids[2];
	int here = gfn__numa_current_node();

	if (here < 0 || here >= gfn_store_numa_nodes(st))
		here = 0;
	ASSERT_OK(gfn_store_create_n(st, 5, 2, t, ids));
	ASSERT_EQ(gfn_store_object_node(st, ids[0]), here);
	ASSERT_EQ(gfn_store_object_node(st, ids[1]), here);
	gfn_store_discard_n(st, 2, ids);
	ASSERT_OK(gfn_store_check(st));
	gfn_store_destroy(st);
}

/*
 * Churn over nodes and tenants in a store small enough to evict all
 * along; the records stay consistent. (2 tenants x 3 nodes need 6
 * segments of the 8 the budget allows: 1 MiB segments, 4 MiB capacity.)
 */
static void numa_churn_across_nodes(void)
{
	gfn_store *st = store_nodes(3, 4 << 20, NULL);
	size_t rounds = test_scaled(3000, 300);
	uint64_t rng = 42;
	gfn_object live[64] = {{0}};
	size_t made = 0;
	gfn_store_stats ss;

	for (size_t r = 0; r < rounds; r++) {
		uint64_t x = test_rand(&rng);
		int slot = (int)(x % 64), node = (int)((x >> 8) % 3);
		int64_t n = (int64_t)((x >> 16) % 40000) + 1;
		uint32_t tenant = (uint32_t)((x >> 40) % 2);
		gfn_object o;
		gfn_status s;

		if (live[slot].hi) {
			(void)gfn_store_release(st, live[slot]);
			live[slot] = GFN_OBJECT_NONE;
		}
		s = gfn_store_create_at(st, tenant, node, GFN_STORE_NODE_HERE,
		                        GFN_U8, 1, &n, &o, NULL);
		if (s == GFN_ENOMEM)
			continue;
		ASSERT_OK(s);
		ASSERT_EQ(gfn_store_object_node(st, o), node);
		ASSERT_OK(gfn_store_seal(st, o));
		live[slot] = o;
		made++;
		if (r % 256 == 0)
			ASSERT_OK(gfn_store_check(st));
	}
	ASSERT_OK(gfn_store_check(st));
	gfn_store_get_stats(st, &ss);
	printf("# %zu of %zu made, %" PRIu64 " evictions, %" PRIu64
	       " segments retired\n",
	       made, rounds, ss.evictions, ss.retired);
	ASSERT_GT(made, rounds * 9 / 10);
	ASSERT_GT(ss.evictions, 0);
	gfn_store_destroy(st);
}

/* ------------------------------------------------ client placement hint */

static void numa_client_hint(void)
{
	char dir[64] = "/tmp/gfn-numa-XXXXXX", sock[128];
	gfn_store *st;
	gfn_store_client *c;
	gfn_object o, p;
	int64_t n = 512;
	void *data;
	size_t size;

	ASSERT_NOT_NULL(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/store.sock", dir);
	st = store_nodes(3, 8 << 20, sock);
	ASSERT_OK(gfn_store_client_attach(sock, &c));
	ASSERT_OK(gfn_store_client_create_on(c, GFN_F32, 1, &n, 2, &o));
	ASSERT_EQ(gfn_store_object_node(st, o), 2);
	ASSERT_OK(gfn_store_client_map(c, o, &data, &size));
	memset(data, 7, size);
	ASSERT_OK(gfn_store_client_seal(c, o));
	/* No hint: the node the client runs on. */
	ASSERT_OK(gfn_store_client_create(c, GFN_F32, 1, &n, &p));
	ASSERT_EQ(gfn_store_object_node(st, p),
	          gfn__numa_current_node() >= 0 && gfn__numa_current_node() < 3
	                  ? gfn__numa_current_node()
	                  : 0);
	ASSERT_FAILS(gfn_store_client_create_on(c, GFN_F32, 1, &n, 3, &p),
	             GFN_EINVAL);
	ASSERT_FAILS(gfn_store_client_create_on(c, GFN_F32, 1, &n, -5, &p),
	             GFN_EINVAL);
	gfn_store_client_detach(c);
	ASSERT_OK(gfn_store_check(st));
	gfn_store_destroy(st);
	unlink(sock);
	ASSERT_EQ(rmdir(dir), 0);
}

/* The public call through an engine (this machine's nodes). */
static void numa_engine_create_on(void)
{
	gfn_config cfg;
	gfn_engine *e;
	gfn_store *st;
	int64_t n = 64;
	gfn_object o;
	int nodes;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	e = test_engine_with(&cfg);
	st = shm_store_of(e);
	nodes = gfn_store_numa_nodes(st);
	ASSERT_OK(gfn_object_create_on(e, GFN_F32, 1, &n, nodes - 1, &o));
	ASSERT_EQ(gfn_store_object_node(st, o), nodes - 1);
	ASSERT_OK(gfn_object_release(e, o));
	ASSERT_OK(gfn_object_create_on(e, GFN_F32, 1, &n, -1, &o));
	ASSERT_GE(gfn_store_object_node(st, o), 0);
	ASSERT_OK(gfn_object_release(e, o));
	ASSERT_FAILS(gfn_object_create_on(e, GFN_F32, 1, &n, nodes, &o),
	             GFN_EINVAL);
	ASSERT_FAILS(gfn_object_create_on(e, GFN_F32, 1, &n, -2, &o),
	             GFN_EINVAL);
	ASSERT_FAILS(gfn_object_create_on(NULL, GFN_F32, 1, &n, 0, &o),
	             GFN_EINVAL);
	gfn_engine_destroy(e);
}

/* ----------------------------------------------------------- host pools */

struct pins {
	int pinned;   /* slabs pinned */
	int unpinned; /* slabs unpinned */
	int fail;     /* nonzero: refuse */
	int where;    /* node of the slab's first page when pinned */
};

static gfn_status pin(void *ctx, void *p, size_t bytes, void **handle)
{
	struct pins *pn = ctx;

	(void)bytes;
	if (pn->fail)
		return gfn__fail(GFN_EDEVICE, "refused by the test");
	/* Bound and faulted in before the backend sees it. */
	pn->where = gfn__numa_page_node(p);
	pn->pinned++;
	*handle = pn;
	return GFN_OK;
}

static void unpin(void *ctx, void *p, size_t bytes, void *handle)
{
	struct pins *pn = ctx;

	(void)p, (void)bytes;
	ASSERT(handle == pn);
	pn->unpinned++;
}

static void numa_hostmem_on_node(void)
{
	struct pins pn = {0};
	gfn_hostmem_pinner pr = {pin, unpin, &pn};
	gfn_hostmem *hm;
	char *a, *b;
	int first;

	if (!gfn__numa_available()) {
		ASSERT_FAILS(gfn_hostmem_create_on_node(0, 0, &pr, &hm),
		             GFN_ENOTSUP);
		return;
	}
	ASSERT_OK(gfn_hostmem_create_on_node(0, 0, &pr, &hm));
	ASSERT_EQ(gfn_hostmem_node(hm), 0);
	a = gfn_hostmem_alloc(hm, 4096);
	b = gfn_hostmem_alloc(hm, 4 << 20);
	ASSERT_NOT_NULL(a);
	ASSERT_NOT_NULL(b);
	ASSERT_EQ(pn.pinned, 2);
	ASSERT_EQ(pn.where, 0);
	ASSERT_EQ(policy_of(b, &first), MPOL_BIND);
	ASSERT_EQ(first, 0);
	ASSERT_EQ(gfn__numa_page_node(a), 0);
	ASSERT_OK(gfn__numa_check(b, 4 << 20, 0));
	memset(b, 3, 4 << 20);
	gfn_hostmem_free(hm, a, 4096);
	gfn_hostmem_free(hm, b, 4 << 20);
	gfn_hostmem_destroy(hm);
	ASSERT_EQ(pn.unpinned, 2);
}

static void numa_hostmem_bad_node(void)
{
	struct pins pn = {.fail = 1};
	gfn_hostmem_pinner pr = {pin, unpin, &pn};
	gfn_hostmem *hm = (gfn_hostmem *)&pn;

	if (!gfn__numa_available())
		return;
	ASSERT_FAILS(gfn_hostmem_create_on_node(0, missing_node(), NULL, &hm),
	             GFN_EINVAL);
	ASSERT_NULL(hm);
	ASSERT_FAILS(gfn_hostmem_create_on_node(0, -1, NULL, &hm), GFN_EINVAL);
	ASSERT_NULL(hm);
	/* A slab the backend will not pin fails its allocation, and leaks
	   nothing (ASan checks the unmapped slab). */
	ASSERT_OK(gfn_hostmem_create_on_node(0, 0, &pr, &hm));
	ASSERT_NULL(gfn_hostmem_alloc(hm, 1000));
	ASSERT_EQ(gfn_hostmem_os_bytes(hm), 0);
	ASSERT_EQ(gfn_hostmem_os_allocs(hm), 0);
	pn.fail = 0;
	ASSERT_NOT_NULL(gfn_hostmem_alloc(hm, 1000));
	ASSERT_EQ(gfn_hostmem_os_allocs(hm), 1);
	gfn_hostmem_destroy(hm);
	ASSERT_EQ(pn.unpinned, 1);
}

int main(void)
{
	printf("# test_numa (NUMA %s, nodes 0..%d, this thread on %d)\n",
	       gfn__numa_available() ? "available" : "not available",
	       gfn__numa_max_node(), gfn__numa_current_node());
	TEST_RUN(numa_object_node_recorded);
	TEST_RUN(numa_segments_per_node);
	TEST_RUN(numa_bound_on_real_node);
	TEST_RUN(numa_synthetic_node_not_bound);
	TEST_RUN(numa_bad_hints_rejected);
	TEST_RUN(numa_create_n_on_caller_node);
	TEST_RUN(numa_churn_across_nodes);
	TEST_RUN(numa_client_hint);
	TEST_RUN(numa_engine_create_on);
	TEST_RUN(numa_hostmem_on_node);
	TEST_RUN(numa_hostmem_bad_node);
	return 0;
}
