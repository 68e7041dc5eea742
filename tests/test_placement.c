/*
 * test_placement.c - placement by estimated finish time on the synthetic
 * DGX H100 topology (tests/topologies/dgx-h100.xml): eight CPU devices are
 * mapped onto its eight GPUs, four per NUMA node. Inputs whose memory is
 * on node 1 go to a node-1 device, unless the node-1 devices' queues are
 * long enough that a node-0 device finishes first in spite of moving the
 * bytes across the NUMA link.
 *
 * Work stealing (engine/steal.c): a device whose queue runs empty takes
 * queued invocations from a busy device's queue, but never one whose
 * gfn_invocation.devices pins it elsewhere, nor one whose function does
 * not run on it (a CPU-only function and an OpenCL device).
 */
#include "test.h"

#include <gfn/gfn_builtins.h>
#include <stdatomic.h>
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

/* ---- work stealing ---------------------------------------------------- */

enum { NSTEAL = 32 };              /* invocations queued behind a hold */
static atomic_ullong release_mask; /* devices whose holds may end */
static atomic_int holding;         /* hold kernels running now */
static const int64_t WAIT_NS = 30000000000; /* 30 s: a hang, not a result */

/* Keeps its device busy until the test releases that device. */
static int hold_kernel(const gfn_kernel_args *a, void *user)
{
	(void)user;
	atomic_fetch_add(&holding, 1);
	while (!(atomic_load(&release_mask) >> a->device & 1))
		usleep(100);
	atomic_fetch_sub(&holding, 1);
	return 0;
}

static gfn_function reg_hold(gfn_engine *e)
{
	gfn_function_desc d = {.name = "holddev", .cpu_fn = hold_kernel};
	gfn_function fn;

	ASSERT_OK(gfn_function_register(e, &d, &fn));
	return fn;
}

/* A hold on device dev, pinned there; returns once it runs. */
static gfn_future hold_on(gfn_engine *e, gfn_function h, int dev)
{
	gfn_invocation inv = test_inv(h, 0, NULL, 0, NULL);
	int before = atomic_load(&holding);
	uint64_t t0 = test_now_ns();
	gfn_future f;

	inv.devices = 1ull << dev;
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	while (atomic_load(&holding) == before) {
		ASSERT_LT(test_now_ns() - t0, (uint64_t)WAIT_NS);
		usleep(100);
	}
	return f;
}

static void end_hold(gfn_engine *e, gfn_future f)
{
	ASSERT_OK(gfn_future_wait(e, f, WAIT_NS));
	ASSERT_OK(gfn_future_release(e, f));
}

/* Let every hold end, and teach the engine that a hold takes about
   200 ms: the invocations queued behind one then expect to start that
   much later, so another device finishes them sooner. */
static void learn_hold(gfn_engine *e, gfn_function h)
{
	gfn_future f;

	atomic_store(&release_mask, 0);
	f = hold_on(e, h, 0);
	usleep(200000);
	atomic_store(&release_mask, ~0ull);
	end_hold(e, f);
}

static uint64_t stolen(gfn_engine *e)
{
	return test_stats(e).stolen;
}

static uint64_t queued_on(gfn_engine *e, size_t dev)
{
	gfn_device_stats ds;

	ASSERT_OK(gfn_device_get_stats(e, dev, &ds));
	return ds.queued;
}

/* NSTEAL sums of in, allowed on the devices in mask. */
static void submit_sums(gfn_engine *e, gfn_function fn, gfn_object in,
                        uint64_t mask, gfn_future *f)
{
	for (int k = 0; k < NSTEAL; k++) {
		gfn_invocation inv = test_inv(fn, 1, &in, 0, NULL);
		inv.devices = mask;
		ASSERT_OK(gfn_invoke(e, &inv, &f[k]));
	}
}

/* Every sum ended, right. */
static void check_sums(gfn_engine *e, gfn_future *f)
{
	for (int k = 0; k < NSTEAL; k++) {
		gfn_object out;
		float s;

		ASSERT_OK(gfn_future_wait(e, f[k], WAIT_NS));
		out = test_take_output(e, f[k]);
		test_read_f32(e, out, &s, 1);
		ASSERT_DBL_EQ(s, 2.0f);
		test_drop(e, out);
		ASSERT_OK(gfn_future_release(e, f[k]));
	}
}

/*
 * Devices 0 and 1 held, sums queued on both; device 1 is released: it
 * runs its own, then takes device 0's while device 0 is still held.
 */
static void steal_idle(gfn_engine *e, gfn_function fn, gfn_function h)
{
	gfn_object in0 = input_on(e, 0);
	gfn_future f[NSTEAL], h0, h1;
	uint64_t s0, a0;

	learn_hold(e, h);
	s0 = stolen(e);
	a0 = done_on(e, 1u << 0);
	atomic_store(&release_mask, 0);
	h0 = hold_on(e, h, 0);
	h1 = hold_on(e, h, 1);
	submit_sums(e, fn, in0, 0x3, f);
	ASSERT_GT(queued_on(e, 0), 0); /* something to steal */
	atomic_store(&release_mask, 1u << 1);
	check_sums(e, f); /* device 0 is still held */
	ASSERT_EQ(done_on(e, 1u << 0) - a0, 0);
	ASSERT_GT(stolen(e), s0);
	atomic_store(&release_mask, ~0ull);
	end_hold(e, h0);
	end_hold(e, h1);
	test_drop(e, in0);
}

/* Sums pinned to device 0 wait for it while device 1 falls idle. */
static void steal_never_pinned(gfn_engine *e, gfn_function fn, gfn_function h)
{
	gfn_object in0 = input_on(e, 0);
	gfn_future f[NSTEAL], h0, h1;
	uint64_t s0 = stolen(e), a0 = done_on(e, 1u << 0);

	atomic_store(&release_mask, 0);
	h0 = hold_on(e, h, 0);
	h1 = hold_on(e, h, 1);
	submit_sums(e, fn, in0, 1u << 0, f);
	atomic_store(&release_mask, 1u << 1); /* device 1 falls idle */
	end_hold(e, h1);
	usleep(20000);
	ASSERT_EQ(queued_on(e, 0), NSTEAL);
	ASSERT_EQ(stolen(e), s0);
	atomic_store(&release_mask, ~0ull);
	check_sums(e, f);
	ASSERT_EQ(done_on(e, 1u << 0) - a0, NSTEAL + 1);
	end_hold(e, h0);
	test_drop(e, in0);
}

/* The first device of backend b, or -1. */
static int device_of(gfn_engine *e, unsigned b)
{
	size_t n;

	ASSERT_OK(gfn_device_count(e, &n));
	for (size_t i = 0; i < n; i++) {
		gfn_device_info info;
		ASSERT_OK(gfn_device_get_info(e, i, &info));
		if (info.backend == b)
			return (int)i;
	}
	return -1;
}

/* An OpenCL device that falls idle leaves CPU-only sums where they are.
   0 when there is no OpenCL device (nothing checked). */
static int steal_only_runnable(void)
{
	gfn_config cfg;
	gfn_engine *e = NULL;
	gfn_function fn, h, vadd;
	gfn_future f[NSTEAL], h0, fv;
	gfn_object in, v[2];
	float z[64] = {0};
	int cpu, ocl;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU | GFN_BACKEND_OPENCL;
	cfg.kcache_dir = "";
	if (gfn_engine_create(&cfg, &e) != GFN_OK ||
	    (ocl = device_of(e, GFN_BACKEND_OPENCL)) < 0) {
		printf("# no OpenCL device: steal_only_runnable not run\n");
		if (e)
			gfn_engine_destroy(e);
		return 0;
	}
	cpu = device_of(e, GFN_BACKEND_CPU);
	fn = reg_sum(e);
	h = reg_hold(e);
	ASSERT_OK(gfn_builtins_register(e));
	ASSERT_OK(gfn_function_find(e, "gfn.vadd", &vadd));
	in = input_on(e, 0);
	v[0] = v[1] = test_make_f32_1d(e, z, 64);
	atomic_store(&release_mask, 0);
	h0 = hold_on(e, h, cpu);
	submit_sums(e, fn, in, 0, f); /* only the CPU device runs them */
	{ /* the OpenCL device runs one, then its queue is empty */
		gfn_invocation inv = test_inv(vadd, 2, v, 0, NULL);
		inv.devices = 1ull << ocl;
		ASSERT_OK(gfn_invoke(e, &inv, &fv));
		ASSERT_OK(gfn_future_wait(e, fv, WAIT_NS));
		test_drop(e, test_take_output(e, fv));
		ASSERT_OK(gfn_future_release(e, fv));
	}
	usleep(20000);
	ASSERT_EQ(queued_on(e, (size_t)cpu), NSTEAL);
	ASSERT_EQ(stolen(e), 0);
	atomic_store(&release_mask, ~0ull);
	check_sums(e, f);
	end_hold(e, h0);
	test_drop(e, v[0]);
	test_drop(e, in);
	gfn_engine_destroy(e);
	return 1;
}

int main(int argc, char **argv)
{
	const char *dir = getenv("GFN_TOPOLOGIES");
	gfn_engine *e;
	gfn_function fn;
	gfn_object bad;
	int64_t shape[1] = {4};

	if (argc > 1 && !strcmp(argv[1], "opencl")) { /* drives PoCL */
		if (!steal_only_runnable())
			return 77; /* skip */
		printf("ok - steal_only_runnable\n");
		return 0;
	}
	e = dgx_engine(dir ? dir : "tests/topologies");
	fn = reg_sum(e);

	place_local(e, fn);
	printf("ok - place_local\n");
	place_spill(e, fn);
	printf("ok - place_spill\n");
	place_warm(e);
	printf("ok - place_warm\n");
	{
		gfn_function h = reg_hold(e);

		steal_idle(e, fn, h);
		printf("ok - steal_idle\n");
		steal_never_pinned(e, fn, h);
		printf("ok - steal_never_pinned\n");
	}
	/* A hint for a node the machine does not have. */
	ASSERT_FAILS(gfn_object_create_on(e, GFN_F32, 1, shape, 2, &bad),
	             GFN_EINVAL);
	ASSERT_FAILS(gfn_object_create_on(e, GFN_F32, 1, shape, -2, &bad),
	             GFN_EINVAL);
	gfn_engine_destroy(e);
	return 0;
}
