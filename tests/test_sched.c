/*
 * test_sched - concurrency, back-pressure, several devices, shutdown.
 */
#include "test.h"

#include <pthread.h>

/* -------------------------------------------------------------------- axpb */

/*
 * "axpb": y = a * x + b; input x f32 [VAR(0)], parameters a, b (f64),
 * output y f32 [VAR(0)]. Each device index the kernel runs on is counted
 * in the user array (so the test can compare with gfn_device_get_stats),
 * and the kernel spins for spin_ns to give the scheduler a backlog.
 */
struct axpb_user {
	atomic_ulong per_device[8]; /* kernel runs seen on each device */
	atomic_ulong bad_device;    /* runs with a device index out of range */
	uint64_t spin_ns;           /* busy time per invocation */
};

static int axpb_kernel(const gfn_kernel_args *args, void *user)
{
	struct axpb_user *u = user;
	const gfn_tensor *x = &args->inputs[0];
	gfn_tensor *y = &args->outputs[0];
	double a, b;
	int64_t n;

	if (args->n_inputs != 1 || args->n_outputs != 1 || args->n_params != 2)
		return 98;
	n = x->shape[0];
	if (x->dtype != GFN_F32 || y->dtype != GFN_F32 || y->shape[0] != n ||
	    y->nbytes != x->nbytes)
		return 97;
	if (args->device >= 0 && args->device < 8)
		atomic_fetch_add(&u->per_device[args->device], 1);
	else
		atomic_fetch_add(&u->bad_device, 1);
	a = args->params[0].f64;
	b = args->params[1].f64;
	for (int64_t i = 0; i < n; i++)
		((float *)y->data)[i] =
		        (float)(a * (double)((const float *)x->data)[i] + b);
	if (u->spin_ns) {
		uint64_t t0 = test_now_ns();

		while (test_now_ns() - t0 < u->spin_ns)
			;
	}
	return 0;
}

static gfn_function register_axpb(gfn_engine *e, struct axpb_user *u)
{
	static const gfn_tensor_spec in = {"x", GFN_F32, 1, {GFN_DIM_VAR(0)}};
	static const gfn_tensor_spec out = {"y", GFN_F32, 1, {GFN_DIM_VAR(0)}};
	static const gfn_param_spec ps[2] = {{"a", GFN_PARAM_F64},
	                                     {"b", GFN_PARAM_F64}};
	gfn_function_desc d;
	gfn_function fn;

	memset(&d, 0, sizeof d);
	d.name = "axpb";
	d.n_inputs = 1;
	d.inputs = &in;
	d.n_outputs = 1;
	d.outputs = &out;
	d.n_params = 2;
	d.params = ps;
	d.cpu_fn = axpb_kernel;
	d.user = u;
	ASSERT_OK(gfn_function_register(e, &d, &fn));
	return fn;
}

static void axpb_user_init(struct axpb_user *u, uint64_t spin_ns)
{
	for (int i = 0; i < 8; i++)
		atomic_init(&u->per_device[i], 0);
	atomic_init(&u->bad_device, 0);
	u->spin_ns = spin_ns;
}

/* ------------------------------------------------------------- concurrency */

#define CC_THREADS 8
#define CC_LEN 64
#define CC_BATCH 16

struct cc_arg {
	gfn_engine *e;
	gfn_function fn;
	int t;          /* thread index */
	size_t iters;   /* invocations to make */
	size_t checked; /* results verified */
};

/* The parameters of invocation i of thread t. */
static void cc_params(int t, size_t i, gfn_scalar p[2])
{
	p[0].f64 = (double)((int)(i % 1000) - 500);
	p[1].f64 = (double)(t * 10 + (int)(i % 7));
}

static void cc_check(struct cc_arg *arg, const float *x, gfn_future f, size_t i)
{
	gfn_object o = test_take_output(arg->e, f);
	gfn_scalar p[2];
	float y[CC_LEN];

	cc_params(arg->t, i, p);
	test_read_f32(arg->e, o, y, CC_LEN);
	for (int j = 0; j < CC_LEN; j++) {
		float want = (float)(p[0].f64 * (double)x[j] + p[1].f64);

		if (y[j] != want)
			test_fail(__FILE__, __LINE__,
			          "thread %d invocation %zu: y[%d] = %.9g, "
			          "want %.9g",
			          arg->t, i, j, (double)y[j], (double)want);
	}
	test_drop(arg->e, o);
	ASSERT_OK(gfn_future_release(arg->e, f));
	arg->checked++;
}

/* Submit invocations first .. first+n-1, alternating invoke / invoke_many. */
static void cc_submit(struct cc_arg *arg, gfn_object x, size_t first, size_t n,
                      gfn_scalar (*params)[2], gfn_future *fs)
{
	gfn_invocation invs[CC_BATCH];
	size_t accepted = 0;

	for (size_t k = 0; k < n; k++) {
		cc_params(arg->t, first + k, params[k]);
		invs[k] = test_inv(arg->fn, 1, &x, 2, params[k]);
	}
	if ((first / CC_BATCH) % 2 == 0) {
		for (size_t k = 0; k < n; k++)
			ASSERT_OK(gfn_invoke(arg->e, &invs[k], &fs[k]));
	} else {
		ASSERT_OK(gfn_invoke_many(arg->e, invs, n, fs, &accepted));
		ASSERT_EQ(accepted, n);
	}
}

static void *cc_main(void *argp)
{
	struct cc_arg *arg = argp;
	float x[CC_LEN];
	gfn_object xo;
	gfn_scalar params[2][CC_BATCH][2];
	gfn_future fs[2][CC_BATCH];
	size_t nb[2] = {0, 0}, first[2] = {0, 0};
	size_t next = 0;
	int cur = 0;

	for (int j = 0; j < CC_LEN; j++)
		x[j] = (float)(j - 32 + arg->t);
	xo = test_make_f32_1d(arg->e, x, CC_LEN);
	/* Two batches in flight: submit one, then check the previous. */
	while (next < arg->iters || nb[0] || nb[1]) {
		if (next < arg->iters) {
			size_t n = arg->iters - next;

			n = n > CC_BATCH ? CC_BATCH : n;
			cc_submit(arg, xo, next, n, params[cur], fs[cur]);
			nb[cur] = n;
			first[cur] = next;
			next += n;
		}
		cur ^= 1;
		for (size_t k = 0; k < nb[cur]; k++)
			cc_check(arg, x, fs[cur][k], first[cur] + k);
		nb[cur] = 0;
	}
	test_drop(arg->e, xo);
	return NULL;
}

static void sched_concurrent(void)
{
	gfn_engine *e = test_engine();
	struct axpb_user u;
	struct cc_arg args[CC_THREADS];
	pthread_t th[CC_THREADS];
	size_t iters = test_scaled(10000, 200);
	gfn_stats s0, s1;
	gfn_function fn;

	axpb_user_init(&u, 0);
	fn = register_axpb(e, &u);
	s0 = test_stats(e);
	for (int t = 0; t < CC_THREADS; t++) {
		args[t] = (struct cc_arg){e, fn, t, iters, 0};
		ASSERT_EQ(pthread_create(&th[t], NULL, cc_main, &args[t]), 0);
	}
	for (int t = 0; t < CC_THREADS; t++) {
		ASSERT_EQ(pthread_join(th[t], NULL), 0);
		ASSERT_EQ(args[t].checked, iters);
	}
	s1 = test_stats_idle(e);
	ASSERT_EQ(s1.submitted - s0.submitted, CC_THREADS * iters);
	ASSERT_EQ(s1.completed - s0.completed, CC_THREADS * iters);
	ASSERT_EQ(s1.failed, s0.failed);
	ASSERT_EQ(s1.rejected_busy, s0.rejected_busy);
	ASSERT_EQ(atomic_load(&u.bad_device), 0);
	gfn_engine_destroy(e);
}

/* ----------------------------------------------------------- back-pressure */

#define QCAP 4

static void sched_queue_full(void)
{
	gfn_config cfg;
	gfn_engine *e;
	struct test_gate g1, g2;
	struct test_cb_count cb;
	gfn_function f1, f2;
	gfn_invocation inv, invs[10];
	gfn_future fs[32], many[10];
	size_t nf = 0, accepted = 99, n;
	gfn_stats s0, s1;
	gfn_status st;
	uint64_t t0;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	cfg.cpu_devices = 1;
	cfg.workers_per_device = 1;
	cfg.queue_capacity = QCAP;
	e = test_engine_with(&cfg);
	test_gate_init(&g1);
	test_gate_init(&g2);
	test_cb_count_init(&cb);
	f1 = test_register_gate(e, "gate1", &g1);
	f2 = test_register_gate(e, "gate2", &g2);

	/* One running (holding the only worker), then fill the queue. */
	inv = test_inv(f1, 0, NULL, 0, NULL);
	inv.callback = test_count_cb;
	inv.callback_arg = &cb;
	ASSERT_OK(gfn_invoke(e, &inv, &fs[nf++]));
	test_gate_wait_entered(&g1, 1);
	s0 = test_stats(e);
	for (;;) {
		ASSERT_LT(nf, 32);
		t0 = test_now_ns();
		st = gfn_invoke(e, &inv, &fs[nf]);
		if (st != GFN_OK)
			break;
		nf++;
	}
	ASSERT_STATUS(st, GFN_EBUSY);
	ASSERT_LT(test_now_ns() - t0, 1000000000ull); /* at once */
	ASSERT_EQ(nf - 1, QCAP);
	ASSERT_FAILS(gfn_invoke(e, &inv, &fs[nf]), GFN_EBUSY);
	for (int k = 0; k < 3; k++)
		invs[k] = inv;
	ASSERT_FAILS(gfn_invoke_many(e, invs, 3, many, &accepted), GFN_EBUSY);
	ASSERT_EQ(accepted, 0);
	s1 = test_stats(e);
	ASSERT_EQ(s1.queued, QCAP);
	ASSERT_GE(s1.rejected_busy, s0.rejected_busy + 3);
	ASSERT_EQ(s1.submitted, s0.submitted + QCAP);
	ASSERT_EQ(atomic_load(&cb.calls), 0);

	/* Drain: exactly the accepted ones end, all OK. */
	test_gate_open(&g1);
	for (size_t i = 0; i < nf; i++) {
		ASSERT_OK(gfn_future_wait(e, fs[i], -1));
		ASSERT_OK(gfn_future_release(e, fs[i]));
	}
	test_cb_wait(&cb, nf);
	ASSERT_EQ(atomic_load(&cb.ok), nf);
	ASSERT_EQ(atomic_load(&g1.passed), (int)nf);

	/* invoke_many into a queue with room for QCAP: partial acceptance. */
	inv.fn = f2;
	ASSERT_OK(gfn_invoke(e, &inv, &fs[0]));
	test_gate_wait_entered(&g2, 1);
	for (int k = 0; k < 10; k++)
		invs[k] = inv;
	ASSERT_FAILS(gfn_invoke_many(e, invs, 10, many, &accepted), GFN_EBUSY);
	ASSERT_EQ(accepted, QCAP);
	test_gate_open(&g2);
	ASSERT_OK(gfn_future_wait(e, fs[0], -1));
	ASSERT_OK(gfn_future_release(e, fs[0]));
	for (size_t i = 0; i < accepted; i++) {
		ASSERT_OK(gfn_future_wait(e, many[i], -1));
		ASSERT_OK(gfn_future_release(e, many[i]));
	}
	n = nf + 1 + accepted;
	test_cb_wait(&cb, n);
	ASSERT_EQ(atomic_load(&g2.passed), (int)(1 + accepted));
	gfn_engine_destroy(e);
	/* Nothing refused ever called back, nothing accepted was lost. */
	ASSERT_EQ(atomic_load(&cb.calls), n);
	ASSERT_EQ(atomic_load(&cb.ok), n);
}

/* ----------------------------------------------------------------- devices */

static void sched_two_devices(void)
{
	gfn_config cfg;
	gfn_engine *e;
	struct axpb_user u;
	gfn_function fn;
	size_t ndev = 0, n = test_scaled(4000, 400), done = 0;
	enum { B = 64, LEN = 16 };
	gfn_future fs[B];
	gfn_scalar params[B][2];
	gfn_invocation invs[B];
	gfn_object x;
	float xv[LEN];
	uint64_t sum = 0;
	gfn_stats s;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	cfg.cpu_devices = 2;
	e = test_engine_with(&cfg);
	ASSERT_OK(gfn_device_count(e, &ndev));
	ASSERT_EQ(ndev, 2);
	for (size_t d = 0; d < ndev; d++) {
		gfn_device_info info;

		memset(&info, 0, sizeof info);
		ASSERT_OK(gfn_device_get_info(e, d, &info));
		ASSERT_EQ(info.backend, GFN_BACKEND_CPU);
		ASSERT_EQ(info.backend_index, d);
		ASSERT_GT(strlen(info.name), 0);
		ASSERT_LT(strlen(info.name), sizeof info.name);
		ASSERT_GT(info.memory_bytes, 0);
		ASSERT_GT(info.compute_units, 0);
		ASSERT_GE(info.numa_node, -1);
	}
	axpb_user_init(&u, 20000);
	fn = register_axpb(e, &u);
	for (int j = 0; j < LEN; j++)
		xv[j] = (float)j;
	x = test_make_f32_1d(e, xv, LEN);

	while (done < n) {
		size_t k = n - done < B ? n - done : B, acc = 0;

		for (size_t i = 0; i < k; i++) {
			params[i][0].f64 = 2;
			params[i][1].f64 = (double)(done + i);
			invs[i] = test_inv(fn, 1, &x, 2, params[i]);
		}
		ASSERT_OK(gfn_invoke_many(e, invs, k, fs, &acc));
		ASSERT_EQ(acc, k);
		for (size_t i = 0; i < k; i++) {
			gfn_object o = test_take_output(e, fs[i]);
			float y[LEN];

			test_read_f32(e, o, y, LEN);
			for (int j = 0; j < LEN; j++)
				ASSERT_DBL_EQ(y[j], (float)(2 * j + done + i));
			test_drop(e, o);
			ASSERT_OK(gfn_future_release(e, fs[i]));
		}
		done += k;
	}
	s = test_stats_idle(e);
	ASSERT_EQ(s.completed, n);
	for (size_t d = 0; d < ndev; d++) {
		gfn_device_stats ds;

		ASSERT_OK(gfn_device_get_stats(e, d, &ds));
		printf("#   device %zu completed %llu\n", d,
		       (unsigned long long)ds.completed);
		ASSERT_GT(ds.completed, 0);
		ASSERT_EQ(ds.queued, 0);
		/* What the device counted is what its kernels saw. */
		ASSERT_EQ(ds.completed, atomic_load(&u.per_device[d]));
		sum += ds.completed;
	}
	ASSERT_EQ(sum, n);
	ASSERT_EQ(atomic_load(&u.bad_device), 0);
	test_drop(e, x);
	gfn_engine_destroy(e);
}

/* ----------------------------------------------------------------- workers */

static void sched_workers_per_device(void)
{
	gfn_config cfg;
	gfn_engine *e;
	struct test_gate gate;
	gfn_function g;
	gfn_invocation inv;
	enum { W = 3 };
	gfn_future f[W + 1];
	gfn_stats s;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	cfg.cpu_devices = 1;
	cfg.workers_per_device = W;
	e = test_engine_with(&cfg);
	test_gate_init(&gate);
	g = test_register_gate(e, "gate", &gate);
	inv = test_inv(g, 0, NULL, 0, NULL);
	for (int i = 0; i < W + 1; i++)
		ASSERT_OK(gfn_invoke(e, &inv, &f[i]));
	/* W run at once on the one device; the last one waits its turn. */
	test_gate_wait_entered(&gate, W);
	test_sleep_us(20000);
	ASSERT_EQ(atomic_load(&gate.entered), W);
	s = test_stats(e);
	ASSERT_EQ(s.running, W);
	ASSERT_EQ(s.queued, 1);
	test_gate_open(&gate);
	for (int i = 0; i < W + 1; i++) {
		ASSERT_OK(gfn_future_wait(e, f[i], -1));
		ASSERT_OK(gfn_future_release(e, f[i]));
	}
	ASSERT_EQ(atomic_load(&gate.passed), W + 1);
	gfn_engine_destroy(e);
}

/* ---------------------------------------------------------------- shutdown */

struct opener {
	struct test_gate *gate;
	unsigned delay_us;
};

static void *opener_main(void *arg)
{
	struct opener *o = arg;

	test_sleep_us(o->delay_us);
	test_gate_open(o->gate);
	return NULL;
}

/*
 * One gate invocation holds the only worker; n vadd invocations wait
 * behind it (half with their futures released, half not). Destroy the
 * engine while a thread opens the gate 200 ms later.
 */
static void destroy_with_backlog(gfn_shutdown_mode mode, size_t n,
                                 struct test_cb_count *cb,
                                 struct test_gate *gate)
{
	gfn_config cfg;
	gfn_engine *e;
	gfn_function g, vadd;
	gfn_invocation inv;
	gfn_future f;
	struct opener op = {gate, 200000};
	pthread_t th;
	float a[32], b[32];

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	cfg.cpu_devices = 1;
	cfg.workers_per_device = 1;
	cfg.shutdown = mode;
	e = test_engine_with(&cfg);
	g = test_register_gate(e, "gate", gate);
	vadd = test_register_vadd(e, "vadd");
	inv = test_inv(g, 0, NULL, 0, NULL);
	inv.callback = test_count_cb;
	inv.callback_arg = cb;
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	test_gate_wait_entered(gate, 1);
	for (int i = 0; i < 32; i++) {
		a[i] = (float)i;
		b[i] = 1;
	}
	for (size_t i = 0; i < n; i++) {
		gfn_object in[2];

		in[0] = test_make_f32_1d(e, a, 32);
		in[1] = test_make_f32_1d(e, b, 32);
		inv = test_inv(vadd, 2, in, 0, NULL);
		inv.callback = test_count_cb;
		inv.callback_arg = cb;
		ASSERT_OK(gfn_invoke(e, &inv, &f));
		if (i % 2)
			ASSERT_OK(gfn_future_release(e, f));
		test_drop(e, in[0]);
		test_drop(e, in[1]);
	}
	ASSERT_EQ(test_stats(e).queued, n);
	ASSERT_EQ(atomic_load(&cb->calls), 0);
	ASSERT_EQ(pthread_create(&th, NULL, opener_main, &op), 0);
	gfn_engine_destroy(e);
	ASSERT_EQ(pthread_join(th, NULL), 0);
}

static void sched_destroy_drain(void)
{
	size_t n = test_scaled(400, 20);
	struct test_cb_count cb;
	struct test_gate gate;

	test_cb_count_init(&cb);
	test_gate_init(&gate);
	destroy_with_backlog(GFN_SHUTDOWN_DRAIN, n, &cb, &gate);
	/* Every accepted invocation ran, and called back once, with OK. */
	ASSERT_EQ(atomic_load(&cb.calls), n + 1);
	ASSERT_EQ(atomic_load(&cb.ok), n + 1);
	ASSERT_EQ(atomic_load(&gate.passed), 1);
}

static void sched_destroy_cancel(void)
{
	size_t n = test_scaled(400, 20);
	struct test_cb_count cb;
	struct test_gate gate;

	test_cb_count_init(&cb);
	test_gate_init(&gate);
	destroy_with_backlog(GFN_SHUTDOWN_CANCEL, n, &cb, &gate);
	printf("#   ok %zu canceled %zu other %zu\n",
	       (size_t)atomic_load(&cb.ok), (size_t)atomic_load(&cb.canceled),
	       (size_t)atomic_load(&cb.other));
	/* Every invocation called back once, with OK or ECANCELED. */
	ASSERT_EQ(atomic_load(&cb.calls), n + 1);
	ASSERT_EQ(atomic_load(&cb.other), 0);
	ASSERT_EQ(atomic_load(&cb.ok) + atomic_load(&cb.canceled), n + 1);
	/* The running one finished; the n queued ones were canceled. */
	ASSERT_EQ(atomic_load(&gate.passed), 1);
	ASSERT_GE(atomic_load(&cb.ok), 1);
	ASSERT_EQ(atomic_load(&cb.canceled), n);
}

/* A callback that tries to submit more work while the engine stops. */
struct late {
	gfn_function fn;     /* what it tries to invoke */
	atomic_int calls;    /* callbacks */
	atomic_int shutdown; /* invokes refused with GFN_ESHUTDOWN */
	atomic_int accepted; /* invokes accepted (wrong) */
	atomic_int other;    /* invokes refused otherwise */
};

static void late_cb(gfn_engine *e, gfn_future f, gfn_status status, void *arg)
{
	struct late *l = arg;
	gfn_invocation inv = test_inv(l->fn, 0, NULL, 0, NULL);
	gfn_future nf;
	gfn_status s = gfn_invoke(e, &inv, &nf);

	(void)f;
	(void)status;
	if (s == GFN_ESHUTDOWN)
		atomic_fetch_add(&l->shutdown, 1);
	else if (s == GFN_OK)
		atomic_fetch_add(&l->accepted, 1);
	else
		atomic_fetch_add(&l->other, 1);
	atomic_fetch_add(&l->calls, 1);
}

static void sched_destroy_refuses_new_work(void)
{
	gfn_config cfg;
	gfn_engine *e;
	struct test_gate gate;
	struct late l;
	gfn_invocation inv;
	gfn_future f;
	struct opener op;
	pthread_t th;
	enum { N = 10 };

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	cfg.cpu_devices = 1;
	cfg.workers_per_device = 1;
	cfg.shutdown = GFN_SHUTDOWN_DRAIN;
	e = test_engine_with(&cfg);
	test_gate_init(&gate);
	memset(&l, 0, sizeof l);
	l.fn = test_register_gate(e, "gate", &gate);
	inv = test_inv(l.fn, 0, NULL, 0, NULL);
	inv.callback = late_cb;
	inv.callback_arg = &l;
	for (int i = 0; i < N + 1; i++) {
		ASSERT_OK(gfn_invoke(e, &inv, &f));
		ASSERT_OK(gfn_future_release(e, f));
		if (i == 0)
			test_gate_wait_entered(&gate, 1);
	}
	/* Every callback runs after destroy began: no new work gets in. */
	op = (struct opener){&gate, 200000};
	ASSERT_EQ(pthread_create(&th, NULL, opener_main, &op), 0);
	gfn_engine_destroy(e);
	ASSERT_EQ(pthread_join(th, NULL), 0);
	ASSERT_EQ(atomic_load(&l.calls), N + 1);
	ASSERT_EQ(atomic_load(&l.accepted), 0);
	ASSERT_EQ(atomic_load(&l.other), 0);
	ASSERT_EQ(atomic_load(&l.shutdown), N + 1);
	ASSERT_EQ(atomic_load(&gate.passed), N + 1);
}

int main(void)
{
	printf("# test_sched\n");
	TEST_RUN(sched_concurrent);
	TEST_RUN(sched_queue_full);
	TEST_RUN(sched_two_devices);
	TEST_RUN(sched_workers_per_device);
	TEST_RUN(sched_destroy_drain);
	TEST_RUN(sched_destroy_cancel);
	TEST_RUN(sched_destroy_refuses_new_work);
	return 0;
}
