/*
 * test_futures - waiting, polling, callbacks, outputs, errors, cancel.
 */
#include "test.h"

#include <pthread.h>

/* "fail": no inputs, output f32 [1] = 1, returns its i64 parameter. */
static int fail_kernel(const gfn_kernel_args *a, void *user)
{
	(void)user;
	if (a->n_params != 1 || a->n_outputs != 1)
		return 98;
	*(float *)a->outputs[0].data = 1.0f;
	return (int)a->params[0].i64;
}

static gfn_function register_fail(gfn_engine *e)
{
	static const gfn_tensor_spec out = {"y", GFN_F32, 1, {1}};
	static const gfn_param_spec p = {"code", GFN_PARAM_I64};
	gfn_function_desc d;
	gfn_function fn;

	memset(&d, 0, sizeof d);
	d.name = "fail";
	d.n_outputs = 1;
	d.outputs = &out;
	d.n_params = 1;
	d.params = &p;
	d.cpu_fn = fail_kernel;
	ASSERT_OK(gfn_function_register(e, &d, &fn));
	return fn;
}

/* Invoke vadd on a[i] = i + k, b[i] = 2i; inputs dropped at once. */
static gfn_future invoke_vadd(gfn_engine *e, gfn_function fn, size_t n, int k,
                              gfn_callback cb, void *arg)
{
	float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
	gfn_object in[2];
	gfn_invocation inv;
	gfn_future f = {0};

	ASSERT(a && b);
	for (size_t i = 0; i < n; i++) {
		a[i] = (float)(i + (size_t)k);
		b[i] = (float)(2 * i);
	}
	in[0] = test_make_f32_1d(e, a, n);
	in[1] = test_make_f32_1d(e, b, n);
	inv = test_inv(fn, 2, in, 0, NULL);
	inv.callback = cb;
	inv.callback_arg = arg;
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	ASSERT_NE(f.id, 0);
	/*
	 * The invocation holds its own references: drop ours and delete the
	 * inputs while it may still be queued.
	 */
	test_drop(e, in[0]);
	test_drop(e, in[1]);
	free(a);
	free(b);
	return f;
}

static int vadd_result_ok(const float *c, size_t n, int k)
{
	for (size_t i = 0; i < n; i++)
		if (c[i] != (float)(i + (size_t)k) + (float)(2 * i))
			return 0;
	return 1;
}

static void check_vadd_output(gfn_engine *e, gfn_future f, size_t n, int k)
{
	gfn_object o = test_take_output(e, f);
	float *c = malloc(n * sizeof *c + 1);

	ASSERT_NOT_NULL(c);
	test_read_f32(e, o, c, n);
	ASSERT(vadd_result_ok(c, n, k));
	test_drop(e, o);
	free(c);
}

/* -------------------------------------------------------------------- wait */

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

static void futures_wait_timeout(void)
{
	gfn_engine *e = test_engine_single();
	struct test_gate gate, gate2;
	gfn_function g, g2;
	gfn_invocation inv;
	gfn_future f, f2;
	struct opener op;
	pthread_t th;
	uint64_t t0, dt;

	test_gate_init(&gate);
	test_gate_init(&gate2);
	g = test_register_gate(e, "gate", &gate);
	g2 = test_register_gate(e, "gate2", &gate2);
	inv = test_inv(g, 0, NULL, 0, NULL);
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	test_gate_wait_entered(&gate, 1);

	t0 = test_now_ns();
	ASSERT_STATUS(gfn_future_wait(e, f, 20000000), GFN_ETIMEDOUT);
	dt = test_now_ns() - t0;
	ASSERT_GE(dt, 19000000); /* it did wait (1 ms of clock slack) */
	ASSERT_STATUS(gfn_future_poll(e, f), GFN_EPENDING);
	ASSERT_STATUS(gfn_future_wait(e, f, 0), GFN_ETIMEDOUT);
	ASSERT_STATUS(gfn_future_wait(e, f, 1000), GFN_ETIMEDOUT);
	ASSERT_EQ(atomic_load(&gate.passed), 0);

	test_gate_open(&gate);
	ASSERT_OK(gfn_future_wait(e, f, -12345)); /* any negative: forever */
	ASSERT_EQ(atomic_load(&gate.passed), 1);
	ASSERT_OK(gfn_future_poll(e, f));
	ASSERT_OK(gfn_future_wait(e, f, 0));
	ASSERT_OK(gfn_future_wait(e, f, 1000));
	ASSERT_OK(gfn_future_wait(e, f, -1));
	/* A function without outputs: none, and cap 0 is enough. */
	{
		gfn_object outs[1];
		size_t n = 99;

		ASSERT_OK(gfn_future_outputs(e, f, outs, 0, &n));
		ASSERT_EQ(n, 0);
	}
	ASSERT_OK(gfn_future_release(e, f));

	/* A long wait ends soon after the invocation does, not at timeout. */
	inv = test_inv(g2, 0, NULL, 0, NULL);
	ASSERT_OK(gfn_invoke(e, &inv, &f2));
	op = (struct opener){&gate2, 50000};
	ASSERT_EQ(pthread_create(&th, NULL, opener_main, &op), 0);
	t0 = test_now_ns();
	ASSERT_OK(gfn_future_wait(e, f2, 20ll * 1000000000ll));
	dt = test_now_ns() - t0;
	ASSERT_LT(dt, 10ull * 1000000000ull);
	ASSERT_EQ(pthread_join(th, NULL), 0);
	ASSERT_OK(gfn_future_release(e, f2));
	gfn_engine_destroy(e);
}

static void futures_poll_until_done(void)
{
	gfn_engine *e = test_engine();
	gfn_function fn = test_register_vadd(e, "vadd");
	enum { N = 200000 };
	gfn_future f = invoke_vadd(e, fn, N, 5, NULL, NULL);
	uint64_t t0 = test_now_ns();
	gfn_status s;

	while ((s = gfn_future_poll(e, f)) == GFN_EPENDING) {
		ASSERT_LT(test_now_ns() - t0, 30ull * 1000000000ull);
		test_sleep_us(50);
	}
	ASSERT_OK(s);
	ASSERT_OK(gfn_future_poll(e, f));
	check_vadd_output(e, f, N, 5);
	ASSERT_OK(gfn_future_release(e, f));
	gfn_engine_destroy(e);
}

/* --------------------------------------------------------------- callbacks */

struct slot {
	atomic_int calls;  /* callback calls for this invocation */
	gfn_status status; /* status the callback got */
	gfn_future cb_f;   /* future the callback got */
	gfn_status want;   /* status expected */
};

static void slot_cb(gfn_engine *e, gfn_future f, gfn_status status, void *arg)
{
	struct slot *s = arg;

	(void)e;
	s->status = status;
	s->cb_f = f;
	atomic_fetch_add(&s->calls, 1);
}

static void futures_callbacks_once(void)
{
	gfn_engine *e = test_engine();
	gfn_function vadd = test_register_vadd(e, "vadd");
	gfn_function fail = register_fail(e);
	size_t n = test_scaled(300, 30);
	struct slot *slots = calloc(n, sizeof *slots);
	gfn_future *fs = calloc(n, sizeof *fs);

	ASSERT(slots && fs);
	for (size_t i = 0; i < n; i++) {
		atomic_init(&slots[i].calls, 0);
		if (i % 3 == 0) {
			gfn_scalar code = {.i64 = i % 2 ? 7 : 0};
			gfn_invocation inv = test_inv(fail, 0, NULL, 1, &code);

			inv.callback = slot_cb;
			inv.callback_arg = &slots[i];
			slots[i].want = code.i64 ? GFN_EKERNEL : GFN_OK;
			ASSERT_OK(gfn_invoke(e, &inv, &fs[i]));
		} else {
			slots[i].want = GFN_OK;
			fs[i] = invoke_vadd(e, vadd, 1 + i % 50, (int)i,
			                    slot_cb, &slots[i]);
		}
	}
	for (size_t i = 0; i < n; i++) {
		ASSERT_STATUS(gfn_future_wait(e, fs[i], -1), slots[i].want);
		if (i % 3 != 0)
			check_vadd_output(e, fs[i], 1 + i % 50, (int)i);
	}
	/* Every callback fires before destroy returns, exactly once. */
	for (size_t i = 0; i < n; i++)
		ASSERT_OK(gfn_future_release(e, fs[i]));
	gfn_engine_destroy(e);
	for (size_t i = 0; i < n; i++) {
		ASSERT_EQ(atomic_load(&slots[i].calls), 1);
		ASSERT_STATUS(slots[i].status, slots[i].want);
		ASSERT_U64_EQ(slots[i].cb_f.id, fs[i].id);
	}
	free(slots);
	free(fs);
}

struct reader {
	atomic_int calls;    /* callback calls */
	atomic_int good;     /* callbacks that saw the right output */
	int k;               /* the invocation's data offset */
	size_t n;            /* elements */
	gfn_status released; /* what releasing the future inside said */
};

static void reader_cb(gfn_engine *e, gfn_future f, gfn_status status, void *arg)
{
	struct reader *r = arg;
	gfn_object outs[GFN_MAX_OUTPUTS];
	gfn_object_view v;
	size_t n = 0;

	if (status == GFN_OK &&
	    gfn_future_outputs(e, f, outs, GFN_MAX_OUTPUTS, &n) == GFN_OK &&
	    n == 1 && gfn_object_get(e, outs[0], &v) == GFN_OK) {
		if (v.size == r->n * sizeof(float) &&
		    vadd_result_ok(v.data, r->n, r->k))
			atomic_fetch_add(&r->good, 1);
		gfn_object_release(e, outs[0]);
		gfn_object_release(e, outs[0]);
		gfn_object_delete(e, outs[0]);
	}
	r->released = gfn_future_release(e, f);
	atomic_fetch_add(&r->calls, 1);
}

static void futures_callback_reads_outputs(void)
{
	gfn_engine *e = test_engine();
	gfn_function fn = test_register_vadd(e, "vadd");
	enum { K = 64 };
	struct reader r[K];
	gfn_future f[K];

	for (int k = 0; k < K; k++) {
		atomic_init(&r[k].calls, 0);
		atomic_init(&r[k].good, 0);
		r[k].k = k;
		r[k].n = 10 + (size_t)k;
		r[k].released = GFN_EINTERNAL;
		f[k] = invoke_vadd(e, fn, r[k].n, k, reader_cb, &r[k]);
	}
	for (int k = 0; k < K; k++) {
		uint64_t t0 = test_now_ns();

		while (atomic_load(&r[k].calls) == 0) {
			ASSERT_LT(test_now_ns() - t0, 30ull * 1000000000ull);
			test_sleep_us(100);
		}
		ASSERT_EQ(atomic_load(&r[k].good), 1);
		ASSERT_OK(r[k].released);
		/* Released inside the callback: the id is gone here. */
		ASSERT_FAILS_ID(gfn_future_poll(e, f[k]));
	}
	gfn_engine_destroy(e);
	for (int k = 0; k < K; k++)
		ASSERT_EQ(atomic_load(&r[k].calls), 1);
}

/* ----------------------------------------------------------------- release */

static void futures_release_before_completion(void)
{
	gfn_engine *e = test_engine_single();
	struct test_gate gate;
	struct test_cb_count cb;
	gfn_function fn;
	gfn_future f, f2;
	gfn_object outs[1];
	size_t n;

	test_gate_init(&gate);
	test_cb_count_init(&cb);
	fn = test_register_vadd_gated(e, "slow", &gate);
	f = invoke_vadd(e, fn, 100, 1, test_count_cb, &cb);
	f2 = invoke_vadd(e, fn, 100, 2, test_count_cb, &cb);
	test_gate_wait_entered(&gate, 1);
	/* One running, one queued: give both futures back. */
	ASSERT_OK(gfn_future_release(e, f));
	ASSERT_OK(gfn_future_release(e, f2));
	ASSERT_FAILS_ID(gfn_future_wait(e, f, 0));
	ASSERT_FAILS_ID(gfn_future_poll(e, f2));
	ASSERT_FAILS_ID(gfn_future_outputs(e, f, outs, 1, &n));
	ASSERT_FAILS_ID(gfn_future_cancel(e, f2));
	ASSERT_FAILS_ID(gfn_future_release(e, f));
	ASSERT_EQ(atomic_load(&cb.calls), 0);

	test_gate_open(&gate);
	/* They still run and their callbacks still fire. */
	test_cb_wait(&cb, 2);
	ASSERT_EQ(atomic_load(&cb.ok), 2);
	ASSERT_EQ(atomic_load(&gate.passed), 2);
	/* The engine goes on. */
	f = invoke_vadd(e, fn, 100, 3, test_count_cb, &cb);
	check_vadd_output(e, f, 100, 3);
	ASSERT_OK(gfn_future_release(e, f));
	gfn_engine_destroy(e);
	ASSERT_EQ(atomic_load(&cb.calls), 3);
	ASSERT_EQ(atomic_load(&cb.ok), 3);
}

/* ----------------------------------------------------------------- outputs */

static void futures_outputs_twice(void)
{
	gfn_engine *e = test_engine_single();
	struct test_gate gate;
	gfn_function fn;
	gfn_object outs[2] = {GFN_OBJECT_NONE, GFN_OBJECT_NONE};
	gfn_future f;
	size_t n = 99;
	float c[40];

	test_gate_init(&gate);
	fn = test_register_vadd_gated(e, "slow", &gate);
	f = invoke_vadd(e, fn, 40, 9, NULL, NULL);
	test_gate_wait_entered(&gate, 1);
	ASSERT_STATUS(gfn_future_outputs(e, f, outs, 2, &n), GFN_EPENDING);
	test_gate_open(&gate);
	ASSERT_OK(gfn_future_wait(e, f, -1));

	ASSERT_OK(gfn_future_outputs(e, f, outs, 2, &n));
	ASSERT_EQ(n, 1);
	ASSERT_FAILS(gfn_future_outputs(e, f, outs + 1, 1, &n), GFN_ESTATE);
	/* Outputs arrive sealed. */
	{
		void *p;
		size_t sz;
		float x = 0;

		ASSERT_FAILS(gfn_object_write(e, outs[0], 0, &x, sizeof x),
		             GFN_ESTATE);
		ASSERT_FAILS(gfn_object_map(e, outs[0], &p, &sz), GFN_ESTATE);
		ASSERT_FAILS(gfn_object_seal(e, outs[0]), GFN_ESTATE);
	}
	/* Our reference outlives the future. */
	ASSERT_OK(gfn_future_release(e, f));
	test_read_f32(e, outs[0], c, 40);
	ASSERT(vadd_result_ok(c, 40, 9));
	/* Exactly one reference was moved to us. */
	ASSERT_OK(gfn_object_release(e, outs[0]));
	ASSERT_FAILS(gfn_object_release(e, outs[0]), GFN_ESTATE);
	ASSERT_OK(gfn_object_delete(e, outs[0]));
	gfn_engine_destroy(e);
}

/* ------------------------------------------------------------------ errors */

static void futures_kernel_error(void)
{
	gfn_engine *e = test_engine();
	gfn_function fn = register_fail(e);
	struct test_cb_count cb;
	gfn_scalar code = {.i64 = 4242};
	gfn_invocation inv = test_inv(fn, 0, NULL, 1, &code);
	gfn_object outs[1];
	gfn_stats s0, s1;
	gfn_future f;
	size_t n;
	char det[512];

	test_cb_count_init(&cb);
	inv.callback = test_count_cb;
	inv.callback_arg = &cb;
	s0 = test_stats(e);
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	ASSERT_STATUS(gfn_future_wait(e, f, -1), GFN_EKERNEL);
	test_copy_detail(det, sizeof det);
	if (strstr(det, "4242") == NULL)
		test_fail(__FILE__, __LINE__,
		          "EKERNEL detail \"%s\" does not name the kernel's "
		          "return value 4242",
		          det);
	ASSERT_STATUS(gfn_future_poll(e, f), GFN_EKERNEL);
	ASSERT_FAILS(gfn_future_outputs(e, f, outs, 1, &n), GFN_EKERNEL);
	ASSERT_STATUS(gfn_future_cancel(e, f), GFN_ESTATE);
	ASSERT_OK(gfn_future_release(e, f));
	test_cb_wait(&cb, 1);
	ASSERT_EQ(atomic_load(&cb.other), 1);
	s1 = test_stats(e);
	ASSERT_EQ(s1.failed, s0.failed + 1);
	ASSERT_EQ(s1.completed, s0.completed);
	ASSERT_EQ(s1.submitted, s0.submitted + 1);

	/* A failed invocation fails alone. */
	code.i64 = 0;
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	ASSERT_OK(gfn_future_wait(e, f, -1));
	ASSERT_OK(gfn_future_outputs(e, f, outs, 1, &n));
	ASSERT_EQ(n, 1);
	{
		float y;

		test_read_f32(e, outs[0], &y, 1);
		ASSERT_DBL_EQ(y, 1.0f);
	}
	test_drop(e, outs[0]);
	ASSERT_OK(gfn_future_release(e, f));
	code.i64 = -1;
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	ASSERT_STATUS(gfn_future_wait(e, f, -1), GFN_EKERNEL);
	ASSERT_OK(gfn_future_release(e, f));
	test_cb_wait(&cb, 3);
	ASSERT_EQ(atomic_load(&cb.ok), 1);
	ASSERT_EQ(atomic_load(&cb.other), 2);
	s1 = test_stats(e);
	ASSERT_EQ(s1.failed, s0.failed + 2);
	ASSERT_EQ(s1.completed, s0.completed + 1);
	gfn_engine_destroy(e);
}

/* ------------------------------------------------------------------ cancel */

static void futures_cancel_queued(void)
{
	gfn_engine *e = test_engine_single();
	struct test_gate gate;
	struct test_cb_count cb;
	gfn_function g;
	gfn_invocation inv;
	gfn_future running, q1, q2;
	gfn_object outs[1];
	gfn_stats s0, s1;
	size_t n;

	test_gate_init(&gate);
	test_cb_count_init(&cb);
	g = test_register_gate(e, "gate", &gate);
	inv = test_inv(g, 0, NULL, 0, NULL);
	inv.callback = test_count_cb;
	inv.callback_arg = &cb;
	s0 = test_stats(e);
	ASSERT_OK(gfn_invoke(e, &inv, &running));
	test_gate_wait_entered(&gate, 1);
	ASSERT_OK(gfn_invoke(e, &inv, &q1));
	ASSERT_OK(gfn_invoke(e, &inv, &q2));
	s1 = test_stats(e);
	ASSERT_EQ(s1.queued, s0.queued + 2);
	ASSERT_EQ(s1.running, s0.running + 1);

	ASSERT_OK(gfn_future_cancel(e, q1));
	ASSERT_STATUS(gfn_future_wait(e, q1, -1), GFN_ECANCELED);
	ASSERT_STATUS(gfn_future_poll(e, q1), GFN_ECANCELED);
	ASSERT_STATUS(gfn_future_outputs(e, q1, outs, 1, &n), GFN_ECANCELED);
	ASSERT_FAILS(gfn_future_cancel(e, q1), GFN_ESTATE);
	ASSERT_FAILS(gfn_future_cancel(e, running), GFN_ESTATE);
	test_cb_wait(&cb, 1);
	ASSERT_EQ(atomic_load(&cb.canceled), 1);

	test_gate_open(&gate);
	ASSERT_OK(gfn_future_wait(e, running, -1));
	ASSERT_OK(gfn_future_wait(e, q2, -1));
	ASSERT_FAILS(gfn_future_cancel(e, running), GFN_ESTATE);
	ASSERT_FAILS(gfn_future_cancel(e, q2), GFN_ESTATE);
	test_cb_wait(&cb, 3);
	ASSERT_EQ(atomic_load(&cb.ok), 2);
	ASSERT_EQ(atomic_load(&cb.canceled), 1);
	ASSERT_EQ(atomic_load(&cb.other), 0);
	/* The canceled one never ran. */
	ASSERT_EQ(atomic_load(&gate.entered), 2);
	s1 = test_stats(e);
	ASSERT_EQ(s1.canceled, s0.canceled + 1);
	ASSERT_EQ(s1.completed, s0.completed + 2);
	ASSERT_EQ(s1.failed, s0.failed);
	ASSERT_OK(gfn_future_release(e, running));
	ASSERT_OK(gfn_future_release(e, q1));
	ASSERT_OK(gfn_future_release(e, q2));
	gfn_engine_destroy(e);
	ASSERT_EQ(atomic_load(&cb.calls), 3);
}

/* ------------------------------------------------------------------ copies */

static void futures_args_copied(void)
{
	gfn_engine *e = test_engine_single();
	struct test_gate gate;
	gfn_function g, vadd, fail;
	gfn_invocation inv;
	gfn_future fg, fv, ff;
	gfn_scalar code[1] = {{.i64 = 0}};
	gfn_object in[2];
	float a[16], b[16];

	test_gate_init(&gate);
	g = test_register_gate(e, "gate", &gate);
	vadd = test_register_vadd(e, "vadd");
	fail = register_fail(e);
	inv = test_inv(g, 0, NULL, 0, NULL);
	ASSERT_OK(gfn_invoke(e, &inv, &fg));
	test_gate_wait_entered(&gate, 1);

	/* Queued behind the gate; then the caller reuses its arrays. */
	for (int i = 0; i < 16; i++) {
		a[i] = (float)i;
		b[i] = (float)(100 * i);
	}
	in[0] = test_make_f32_1d(e, a, 16);
	in[1] = test_make_f32_1d(e, b, 16);
	inv = test_inv(vadd, 2, in, 0, NULL);
	ASSERT_OK(gfn_invoke(e, &inv, &fv));
	inv = test_inv(fail, 0, NULL, 1, code);
	ASSERT_OK(gfn_invoke(e, &inv, &ff));
	code[0].i64 = 4242;
	test_drop(e, in[0]);
	test_drop(e, in[1]);
	in[0] = GFN_OBJECT_NONE;
	in[1] = GFN_OBJECT_NONE;
	memset(&inv, 0xff, sizeof inv);

	test_gate_open(&gate);
	ASSERT_OK(gfn_future_wait(e, fg, -1));
	ASSERT_OK(gfn_future_wait(e, ff, -1)); /* ran with code 0 */
	{
		gfn_object o = test_take_output(e, fv);
		float c[16];

		test_read_f32(e, o, c, 16);
		for (int i = 0; i < 16; i++)
			ASSERT_DBL_EQ(c[i], 101 * i);
		test_drop(e, o);
	}
	ASSERT_OK(gfn_future_release(e, fg));
	ASSERT_OK(gfn_future_release(e, fv));
	ASSERT_OK(gfn_future_release(e, ff));
	gfn_engine_destroy(e);
}

/* ----------------------------------------------------------------- waiters */

struct waiter {
	gfn_engine *e;
	gfn_future f;
	int64_t timeout_ns;
	gfn_status got;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	w->got = gfn_future_wait(w->e, w->f, w->timeout_ns);
	return NULL;
}

static void futures_many_waiters(void)
{
	gfn_engine *e = test_engine_single();
	struct test_gate gate;
	gfn_function g;
	gfn_invocation inv;
	gfn_future f;
	enum { W = 5 };
	struct waiter w[W];
	pthread_t th[W];

	test_gate_init(&gate);
	g = test_register_gate(e, "gate", &gate);
	inv = test_inv(g, 0, NULL, 0, NULL);
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	test_gate_wait_entered(&gate, 1);
	for (int i = 0; i < W; i++) {
		/* The last waiter gives up after 10 ms; the others wait. */
		w[i] = (struct waiter){e, f, i == W - 1 ? 10000000 : -1,
		                       GFN_EINTERNAL};
		ASSERT_EQ(pthread_create(&th[i], NULL, waiter_main, &w[i]), 0);
	}
	ASSERT_EQ(pthread_join(th[W - 1], NULL), 0);
	ASSERT_STATUS(w[W - 1].got, GFN_ETIMEDOUT);
	test_sleep_us(10000);
	test_gate_open(&gate);
	for (int i = 0; i < W - 1; i++) {
		ASSERT_EQ(pthread_join(th[i], NULL), 0);
		ASSERT_OK(w[i].got);
	}
	ASSERT_OK(gfn_future_release(e, f));
	gfn_engine_destroy(e);
}

int main(void)
{
	printf("# test_futures\n");
	TEST_RUN(futures_wait_timeout);
	TEST_RUN(futures_poll_until_done);
	TEST_RUN(futures_callbacks_once);
	TEST_RUN(futures_callback_reads_outputs);
	TEST_RUN(futures_release_before_completion);
	TEST_RUN(futures_outputs_twice);
	TEST_RUN(futures_kernel_error);
	TEST_RUN(futures_cancel_queued);
	TEST_RUN(futures_args_copied);
	TEST_RUN(futures_many_waiters);
	return 0;
}
