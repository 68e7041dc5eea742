/*
 * test_placement.c - placement by estimated finish time on the synthetic
 * DGX H100 topology (tests/topologies/dgx-h100.xml): eight CPU devices are
 * mapped onto its eight GPUs, four per NUMA node. Inputs whose memory is
 * on node 1 go to a node-1 device, unless the node-1 devices' queues are
 * long enough that a node-0 device finishes first in spite of moving the
 * bytes across the NUMA link.
 */
#include "test.h"

#include <unistd.h>

static const char *dgx_map = "0000:18:00.0,0000:2a:00.0,0000:3a:00.0,"
                             "0000:5d:00.0,0000:9a:00.0,0000:ab:00.0,"
                             "0000:ba:00.0,0000:db:00.0";

enum { NODE0 = 0x0f, NODE1 = 0xf0, NELEM = 1 << 20 }; /* 4 MiB inputs */
enum { HOLD = 64 }; /* held invocations per node-1 device */

/*
 * out[0] = x[0] + x[n-1]: cheap on purpose, so the estimates are ruled
 * by queues and NUMA transfers, not by how fast this machine (or a
 * sanitizer build) sums 4 MiB.
 */
static int sum_kernel(const gfn_kernel_args *a, void *user)
{
	const float *x = a->inputs[0].data;
	int64_t n = a->inputs[0].shape[0];

	(void)user;
	((float *)a->outputs[0].data)[0] = n ? x[0] + x[n - 1] : 0.0f;
	return 0;
}

static gfn_function reg_sum(gfn_engine *e)
{
	gfn_tensor_spec in = {"x", GFN_F32, 1, {GFN_DIM_ANY}};
	gfn_tensor_spec out = {"s", GFN_F32, 1, {1}};
	gfn_function_desc d = {.name = "sum",
	                       .n_inputs = 1,
	                       .inputs = &in,
	                       .n_outputs = 1,
	                       .outputs = &out,
	                       .cpu_fn = sum_kernel};
	gfn_function fn;

	ASSERT_OK(gfn_function_register(e, &d, &fn));
	return fn;
}

static gfn_object input_on(gfn_engine *e, int node)
{
	int64_t shape[1] = {NELEM};
	gfn_object o;
	void *p;
	size_t n;

	ASSERT_OK(gfn_object_create_on(e, GFN_F32, 1, shape, node, &o));
	ASSERT_OK(gfn_object_map(e, o, &p, &n));
	for (size_t i = 0; i < NELEM; i++)
		((float *)p)[i] = 1.0f;
	ASSERT_OK(gfn_object_seal(e, o));
	return o;
}

/* Completed invocations on the devices in mask. */
static uint64_t done_on(gfn_engine *e, unsigned mask)
{
	uint64_t n = 0;

	for (size_t i = 0; i < 8; i++) {
		gfn_device_stats ds;
		ASSERT_OK(gfn_device_get_stats(e, i, &ds));
		if (mask & (1u << i))
			n += ds.completed;
	}
	return n;
}

static void run_sum(gfn_engine *e, gfn_function fn, gfn_object in)
{
	gfn_invocation inv = test_inv(fn, 1, &in, 0, NULL);
	gfn_object out;
	gfn_future f;
	float s;

	ASSERT_OK(gfn_invoke(e, &inv, &f));
	out = test_take_output(e, f);
	test_read_f32(e, out, &s, 1);
	ASSERT_DBL_EQ(s, 2.0f);
	test_drop(e, out);
	ASSERT_OK(gfn_future_release(e, f));
}

static gfn_engine *dgx_engine(const char *dir)
{
	char xml[4200];
	gfn_config cfg;

	snprintf(xml, sizeof(xml), "%s/dgx-h100.xml", dir);
	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	cfg.cpu_devices = 8;
	cfg.topology_xml = xml;
	cfg.topology_devices = dgx_map;
	return test_engine_with(&cfg);
}

/* Idle devices: inputs stay on their node. */
static void place_local(gfn_engine *e, gfn_function fn)
{
	gfn_object in0 = input_on(e, 0), in1 = input_on(e, 1);
	uint64_t a0 = done_on(e, NODE0), a1 = done_on(e, NODE1);

	for (int i = 0; i < 20; i++)
		run_sum(e, fn, in1);
	ASSERT_EQ(done_on(e, NODE1) - a1, 20);
	ASSERT_EQ(done_on(e, NODE0) - a0, 0);
	for (int i = 0; i < 20; i++)
		run_sum(e, fn, in0);
	ASSERT_EQ(done_on(e, NODE0) - a0, 20);
	ASSERT_EQ(done_on(e, NODE1) - a1, 20);
	test_drop(e, in0);
	test_drop(e, in1);
}

/* Node-1 devices held busy with a long queue: node 0 finishes first. */
static void place_spill(gfn_engine *e, gfn_function fn)
{
	struct test_gate gate;
	gfn_function g;
	gfn_future held[4 * HOLD];
	gfn_object in1 = input_on(e, 1);
	size_t nheld = 0;
	uint64_t a0, a1;

	test_gate_init(&gate);
	g = test_register_gate(e, "hold", &gate);
	/* HOLD queued per node-1 device: their backlog (HOLD x the default
	   guess for a function never timed, 20 us) beats moving 4 MiB
	   across a 20 GB/s link (~210 us). */
	for (int k = 0; k < 4 * HOLD; k++) {
		gfn_invocation inv = test_inv(g, 0, NULL, 0, NULL);
		inv.devices = NODE1;
		ASSERT_OK(gfn_invoke(e, &inv, &held[nheld++]));
	}
	test_gate_wait_entered(&gate, 4);
	a0 = done_on(e, NODE0);
	a1 = done_on(e, NODE1);
	for (int i = 0; i < 10; i++)
		run_sum(e, fn, in1);
	ASSERT_EQ(done_on(e, NODE0) - a0, 10);
	ASSERT_EQ(done_on(e, NODE1) - a1, 0);
	test_gate_open(&gate);
	for (size_t k = 0; k < nheld; k++) {
		ASSERT_OK(gfn_future_wait(e, held[k], -1));
		ASSERT_OK(gfn_future_release(e, held[k]));
	}
	/* Queues drained: back to the inputs' own node. */
	run_sum(e, fn, in1);
	ASSERT_EQ(done_on(e, NODE1) - a1, 4 * HOLD + 1);
	test_drop(e, in1);
}

/* Only device 6 has the function warm: the others would need 10 ms. */
static uint64_t warm_on_6(void *user, int device)
{
	(void)user;
	return device == 6 ? 0 : 10000000;
}

/* A cold instance costs its load time: a warm device far away wins. */
static void place_warm(gfn_engine *e)
{
	gfn_tensor_spec in = {"x", GFN_F32, 1, {GFN_DIM_ANY}};
	gfn_tensor_spec out = {"s", GFN_F32, 1, {1}};
	gfn_function_desc d = {.name = "warm6",
	                       .n_inputs = 1,
	                       .inputs = &in,
	                       .n_outputs = 1,
	                       .outputs = &out,
	                       .cpu_fn = sum_kernel,
	                       .load_cost_ns = warm_on_6};
	gfn_object in0 = input_on(e, 0);
	gfn_function fn;
	uint64_t a6;

	ASSERT_OK(gfn_function_register(e, &d, &fn));
	a6 = done_on(e, 1u << 6);
	for (int i = 0; i < 10; i++)
		run_sum(e, fn, in0); /* inputs on node 0, device 6 on node 1 */
	ASSERT_EQ(done_on(e, 1u << 6) - a6, 10);
	test_drop(e, in0);
}

int main(void)
{
	const char *dir = getenv("GFN_TOPOLOGIES");
	gfn_engine *e = dgx_engine(dir ? dir : "tests/topologies");
	gfn_function fn = reg_sum(e);
	gfn_object bad;
	int64_t shape[1] = {4};

	place_local(e, fn);
	printf("ok - place_local\n");
	place_spill(e, fn);
	printf("ok - place_spill\n");
	place_warm(e);
	printf("ok - place_warm\n");
	/* A hint for a node the machine does not have. */
	ASSERT_FAILS(gfn_object_create_on(e, GFN_F32, 1, shape, 2, &bad),
	             GFN_EINVAL);
	ASSERT_FAILS(gfn_object_create_on(e, GFN_F32, 1, shape, -2, &bad),
	             GFN_EINVAL);
	gfn_engine_destroy(e);
	return 0;
}
