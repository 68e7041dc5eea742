/*
 * test_topology.c - runtime/topology on this machine and on the synthetic
 * machines in tests/topologies/ (hwloc XML), and the engine's use of it:
 * device NUMA nodes from a device mapping, workers pinned to their
 * device's node, and clear errors for bad topology input.
 */
#include "test.h"

#include <gfn/gfn_builtins.h>

#include <sched.h>
#include <unistd.h>

#include "runtime/topology.h"

static char dir[4096]; /* tests/topologies */

static const char *topo_file(const char *name)
{
	static char path[4200];

	snprintf(path, sizeof(path), "%s/%s.xml", dir, name);
	return path;
}

static gfn_topology *load(const char *name)
{
	gfn_topology *t = NULL;

	ASSERT_OK(gfn_topology_load(name ? topo_file(name) : NULL, &t));
	return t;
}

static void topo_this_machine(void)
{
	gfn_topology *t = load(NULL);
	int n = gfn_topology_nodes(t), cpus[1024];
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	int total = 0;

	ASSERT(gfn_topology_is_real(t));
	ASSERT_GE(n, 1);
	for (int i = 0; i < n; i++) {
		int k = gfn_topology_node_cpus(t, i, cpus, 1024);
		ASSERT_EQ(k, gfn_topology_node_cores(t, i));
		ASSERT_GT(gfn_topology_node_memory(t, i), 0);
		total += k;
	}
	ASSERT_GE(total, 1);
	ASSERT_LE(total, online);
	ASSERT_OK(gfn_topology_bind_thread(t, 0));
	ASSERT_EQ(gfn_topology_current_node(t), 0);
	ASSERT_FAILS(gfn_topology_bind_thread(t, n), GFN_EINVAL);
	gfn_topology_free(t);
}

static void topo_dgx(void)
{
	gfn_topology *t = load("dgx-h100");
	static const char *const node0[] = {"0000:18:00.0", "0000:2a:00.0",
	                                    "0000:3a:00.0", "0000:5d:00.0"};
	static const char *const node1[] = {"0000:9a:00.0", "0000:ab:00.0",
	                                    "0000:ba:00.0", "0000:db:00.0"};
	int cpus[64];

	ASSERT(!gfn_topology_is_real(t));
	ASSERT_EQ(gfn_topology_nodes(t), 2);
	for (int n = 0; n < 2; n++) {
		ASSERT_EQ(gfn_topology_node_cores(t, n), 56);
		ASSERT_EQ(gfn_topology_node_memory(t, n), 1ull << 40);
		ASSERT_EQ(gfn_topology_node_cache(t, n), 110100480);
		ASSERT_EQ(gfn_topology_node_cpus(t, n, cpus, 64), 56);
	}
	/* Cores of node 1 are the second socket's: two threads per core. */
	gfn_topology_node_cpus(t, 1, cpus, 64);
	ASSERT_EQ(cpus[0], 112);
	ASSERT_EQ(cpus[1], 114);
	for (int k = 0; k < 4; k++) {
		ASSERT_EQ(gfn_topology_pci_node(t, node0[k]), 0);
		ASSERT_EQ(gfn_topology_pci_node(t, node1[k]), 1);
	}
	ASSERT_EQ(gfn_topology_pci_node(t, "9A:00.0"), 1); /* case, domain */
	ASSERT_EQ(gfn_topology_pci_node(t, "0000:77:00.0"), -1);
	ASSERT(!gfn_topology_has_pci(t, "0000:77:00.0"));
	ASSERT_EQ(gfn_topology_pci_node(t, "not a bus id"), -1);
	ASSERT_EQ(gfn_topology_pci_node(t, ""), -1);
	ASSERT_EQ(gfn_topology_current_node(t), -1);
	ASSERT_FAILS(gfn_topology_bind_thread(t, 0), GFN_ENOTSUP);
	gfn_topology_free(t);
}

static void topo_quad_and_one_socket(void)
{
	gfn_topology *t = load("quad-socket");
	static const char *const gpus[] = {"17", "31", "4b", "65",
	                                   "98", "b1", "ca", "e3"};
	char id[32];

	ASSERT_EQ(gfn_topology_nodes(t), 4);
	for (int k = 0; k < 8; k++) {
		snprintf(id, sizeof(id), "0000:%s:00.0", gpus[k]);
		ASSERT_EQ(gfn_topology_pci_node(t, id), k / 2);
	}
	ASSERT_EQ(gfn_topology_node_cores(t, 3), 24);
	gfn_topology_free(t);
	t = load("one-socket-gpus");
	ASSERT_EQ(gfn_topology_nodes(t), 2);
	ASSERT_EQ(gfn_topology_pci_node(t, "0000:5e:00.0"), 0);
	ASSERT_EQ(gfn_topology_node_cores(t, 1), 32);
	gfn_topology_free(t);
}

/* Eight engine devices mapped onto the DGX's eight GPUs. */
static const char *dgx_map = "0000:18:00.0,0000:2a:00.0,0000:3a:00.0,"
                             "0000:5d:00.0,0000:9a:00.0,0000:ab:00.0,"
                             "0000:ba:00.0,0000:db:00.0";

static gfn_config dgx_config(void)
{
	gfn_config cfg;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	cfg.cpu_devices = 8;
	cfg.topology_xml = topo_file("dgx-h100");
	cfg.topology_devices = dgx_map;
	return cfg;
}

static void topo_engine_mapping(void)
{
	gfn_config cfg = dgx_config();
	gfn_engine *e = test_engine_with(&cfg);
	gfn_device_info info;
	gfn_device_stats ds;

	for (size_t i = 0; i < 8; i++) {
		ASSERT_OK(gfn_device_get_info(e, i, &info));
		ASSERT_EQ(info.numa_node, i < 4 ? 0 : 1);
		ASSERT_OK(gfn_device_get_stats(e, i, &ds));
		ASSERT_EQ(ds.bound_workers, 0); /* not this machine: no pin */
	}
	gfn_engine_destroy(e);
	/* A partial mapping leaves the rest without a node. */
	cfg.topology_devices = ",0000:9a:00.0";
	e = test_engine_with(&cfg);
	ASSERT_OK(gfn_device_get_info(e, 0, &info));
	ASSERT_EQ(info.numa_node, -1);
	ASSERT_OK(gfn_device_get_info(e, 1, &info));
	ASSERT_EQ(info.numa_node, 1);
	gfn_engine_destroy(e);
}

/* The first PCI device of this machine that t places on a node, into
   busid; 0 (and "") when there is none. */
static int placed_pci(const gfn_topology *t, char *busid, size_t len)
{
	FILE *p = popen("ls /sys/bus/pci/devices 2>/dev/null", "r");

	busid[0] = '\0';
	while (p && fgets(busid, (int)len, p)) {
		busid[strcspn(busid, "\n")] = '\0';
		if (gfn_topology_pci_node(t, busid) >= 0)
			break;
		busid[0] = '\0';
	}
	if (p)
		pclose(p);
	return busid[0] != '\0';
}

/* On this machine a device mapped to a real PCI device gets that
   device's node, and its workers are pinned to the node's cores. */
static void topo_engine_binds_workers(void)
{
	gfn_topology *t = load(NULL);
	gfn_config cfg;
	gfn_engine *e;
	gfn_device_stats ds;
	gfn_device_info info;
	char busid[32];

	if (!placed_pci(t, busid, sizeof(busid))) {
		printf("# no PCI device with a NUMA node here: skipped\n");
		gfn_topology_free(t);
		return;
	}
	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	cfg.workers_per_device = 2;
	cfg.topology_devices = busid;
	e = test_engine_with(&cfg);
	ASSERT_OK(gfn_device_get_info(e, 0, &info));
	ASSERT_EQ(info.numa_node, gfn_topology_pci_node(t, busid));
	for (int i = 0; i < 2000; i++) { /* workers start asynchronously */
		ASSERT_OK(gfn_device_get_stats(e, 0, &ds));
		if (ds.bound_workers == 2)
			break;
		test_sleep_us(1000);
	}
	ASSERT_EQ(ds.bound_workers, 2);
	gfn_engine_destroy(e);
	gfn_topology_free(t);
}

/*
 * An OpenCL device mapped to a real PCI device of this machine gets that
 * node; its staging pool is then bound there. With registration off every
 * input is staged through it: the results must still be right.
 */
static void topo_opencl_staging_on_node(void)
{
	gfn_topology *t = load(NULL);
	gfn_config cfg;
	gfn_engine *e = NULL;
	gfn_function fn;
	char busid[32];

	placed_pci(t, busid, sizeof(busid));
	gfn_topology_free(t);
	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_OPENCL;
	cfg.kcache_dir = "";
	cfg.topology_devices = busid;
	setenv("GFN_OPENCL_NO_REGISTER", "1", 1);
	if (!busid[0] || gfn_engine_create(&cfg, &e) != GFN_OK) {
		unsetenv("GFN_OPENCL_NO_REGISTER");
		printf("# no OpenCL device or no placed PCI device: skipped\n");
		return;
	}
	unsetenv("GFN_OPENCL_NO_REGISTER");
	ASSERT_OK(gfn_builtins_register(e));
	ASSERT_OK(gfn_function_find(e, "gfn.vadd", &fn));
	for (int i = 0; i < 10; i++)
		test_vadd_roundtrip_on(e, fn, 10000, 1);
	ASSERT_GT(test_stats(e).input_copies, 0); /* staged, node-bound */
	gfn_engine_destroy(e);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ASSERT_NOT_NULL(f);
	fputs(text, f);
	fclose(f);
}

static void topo_bad_input(void)
{
	gfn_config cfg = dgx_config();
	char bad[] = "/tmp/gfn-topo-XXXXXX";
	int fd = mkstemp(bad);
	gfn_engine *e = NULL;
	char detail[512];

	ASSERT(fd >= 0);
	close(fd);
	write_file(bad, "<topology version=\"2.0\"><object type=");
	cfg.topology_xml = bad; /* malformed */
	cfg.topology_devices = NULL;
	ASSERT_FAILS(gfn_engine_create(&cfg, &e), GFN_EINVAL);
	ASSERT_NULL(e);
	write_file(bad, "not xml at all");
	ASSERT_FAILS(gfn_engine_create(&cfg, &e), GFN_EINVAL);
	cfg.topology_xml = "/nonexistent/topology.xml";
	ASSERT_FAILS(gfn_engine_create(&cfg, &e), GFN_EINVAL);
	test_copy_detail(detail, sizeof(detail));
	ASSERT(strstr(detail, "/nonexistent/topology.xml") != NULL);
	cfg = dgx_config(); /* a device the topology does not have */
	cfg.topology_devices = "0000:18:00.0,0000:77:00.0";
	ASSERT_FAILS(gfn_engine_create(&cfg, &e), GFN_EINVAL);
	test_copy_detail(detail, sizeof(detail));
	ASSERT(strstr(detail, "0000:77:00.0") != NULL);
	cfg = dgx_config(); /* more entries than devices */
	cfg.cpu_devices = 2;
	ASSERT_FAILS(gfn_engine_create(&cfg, &e), GFN_EINVAL);
	ASSERT_NULL(e);
	unlink(bad);
}

int main(int argc, char **argv)
{
	const char *src = getenv("GFN_TOPOLOGIES");

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s", src ? src : "tests/topologies");
	TEST_RUN(topo_this_machine);
	TEST_RUN(topo_dgx);
	TEST_RUN(topo_quad_and_one_socket);
	TEST_RUN(topo_engine_mapping);
	TEST_RUN(topo_engine_binds_workers);
	TEST_RUN(topo_opencl_staging_on_node);
	TEST_RUN(topo_bad_input);
	return 0;
}
