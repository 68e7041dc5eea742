/*
 * test_batching.c - dynamic batching: invocations of a batching function
 * that wait together run as one launch, joined along dimension 0, and each
 * gets exactly the rows an unbatched run gives it; different parameters
 * never share a launch; a failed launch is retried one by one so a bad
 * input fails alone.
 */
#include "test.h"

#include <math.h>
#include <stdatomic.h>

enum { COLS = 4, ROWS = 3, N = 20 };

static atomic_int calls;    /* kernel launches */
static atomic_int max_rows; /* most rows one launch saw */

/* y = a * x + b per element; fails (7) on a NaN in x. */
static int affine(const gfn_kernel_args *a, void *user)
{
	const float *x = a->inputs[0].data;
	float *y = a->outputs[0].data;
	int64_t rows = a->inputs[0].shape[0];
	int seen = atomic_load(&max_rows);

	(void)user;
	atomic_fetch_add(&calls, 1);
	while (rows > seen &&
	       !atomic_compare_exchange_weak(&max_rows, &seen, (int)rows))
		;
	for (int64_t i = 0; i < rows * COLS; i++) {
		if (isnan(x[i]))
			return 7;
		y[i] = (float)a->params[0].f64 * x[i] + (float)a->params[1].f64;
	}
	return 0;
}

static gfn_function reg_affine(gfn_engine *e, unsigned batch_max)
{
	gfn_tensor_spec t = {"x", GFN_F32, 2, {GFN_DIM_VAR(0), COLS}};
	gfn_param_spec p[2] = {{"a", GFN_PARAM_F64}, {"b", GFN_PARAM_F64}};
	gfn_function_desc d = {.name = "affine",
	                       .n_inputs = 1,
	                       .inputs = &t,
	                       .n_outputs = 1,
	                       .outputs = &t,
	                       .n_params = 2,
	                       .params = p,
	                       .cpu_fn = affine,
	                       .batch_max = batch_max};
	gfn_function fn;

	ASSERT_OK(gfn_function_register(e, &d, &fn));
	return fn;
}

struct run {
	gfn_object in[N];
	gfn_future f[N];
	gfn_scalar p[N][2];
	float x[N][ROWS * COLS];
};

/* One device, one worker held by a gate, N invocations queued behind. */
static void queue_all(gfn_engine *e, gfn_function fn, struct run *r, int mixed,
                      int nan_at)
{
	int64_t shape[2] = {ROWS, COLS};

	for (int i = 0; i < N; i++) {
		gfn_invocation inv;
		for (int k = 0; k < ROWS * COLS; k++)
			r->x[i][k] = (float)(i * 100 + k);
		if (i == nan_at)
			r->x[i][5] = NAN;
		r->in[i] = test_make_f32(e, r->x[i], 2, shape);
		r->p[i][0].f64 = mixed && i % 2 ? 3.0 : 2.0;
		r->p[i][1].f64 = 0.5;
		inv = test_inv(fn, 1, &r->in[i], 2, r->p[i]);
		ASSERT_OK(gfn_invoke(e, &inv, &r->f[i]));
	}
}

/* Every invocation's own rows, as unbatched; returns how many failed. */
static int check_all(gfn_engine *e, struct run *r)
{
	int failed = 0;
	float y[ROWS * COLS];

	for (int i = 0; i < N; i++) {
		gfn_status s = gfn_future_wait(e, r->f[i], -1);
		if (s != GFN_OK) {
			ASSERT_EQ(s, GFN_EKERNEL);
			failed++;
		} else {
			gfn_object o = test_take_output(e, r->f[i]);
			test_read_f32(e, o, y, ROWS * COLS);
			for (int k = 0; k < ROWS * COLS; k++)
				ASSERT_DBL_EQ(y[k], (float)r->p[i][0].f64 *
				                                    r->x[i][k] +
				                            0.5f);
			test_drop(e, o);
		}
		test_drop(e, r->in[i]);
		ASSERT_OK(gfn_future_release(e, r->f[i]));
	}
	return failed;
}

static gfn_engine *held_engine(struct test_gate *gate, gfn_future *gf)
{
	gfn_config cfg;
	gfn_engine *e;
	gfn_function g;
	gfn_invocation inv;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	e = test_engine_with(&cfg);
	test_gate_init(gate);
	g = test_register_gate(e, "gate", gate);
	inv = test_inv(g, 0, NULL, 0, NULL);
	ASSERT_OK(gfn_invoke(e, &inv, gf));
	test_gate_wait_entered(gate, 1);
	return e;
}

static void run_case(int mixed, int nan_at, int *failed, gfn_stats *st)
{
	static struct run r;
	struct test_gate gate;
	gfn_future gf;
	gfn_engine *e = held_engine(&gate, &gf);
	gfn_function fn = reg_affine(e, 8);

	atomic_store(&calls, 0);
	atomic_store(&max_rows, 0);
	queue_all(e, fn, &r, mixed, nan_at);
	test_gate_open(&gate);
	ASSERT_OK(gfn_future_wait(e, gf, -1));
	ASSERT_OK(gfn_future_release(e, gf));
	*failed = check_all(e, &r);
	*st = test_stats(e);
	gfn_engine_destroy(e);
}

static void batch_joins(void)
{
	gfn_stats st;
	int failed;

	run_case(0, -1, &failed, &st);
	ASSERT_EQ(failed, 0);
	ASSERT_GT(st.batches, 0);
	ASSERT_GE(st.batched, 2 * st.batches);
	ASSERT_LT(atomic_load(&calls), N);           /* fewer launches */
	ASSERT_LE(atomic_load(&max_rows), 8 * ROWS); /* batch_max holds */
	ASSERT_GT(atomic_load(&max_rows), ROWS);
}

static void batch_params_apart(void)
{
	gfn_stats st;
	int failed;

	run_case(1, -1, &failed, &st); /* results checked per invocation */
	ASSERT_EQ(failed, 0);
	ASSERT_GT(st.batches, 0);
}

static void batch_failure_isolated(void)
{
	gfn_stats st;
	int failed;

	run_case(0, 7, &failed, &st);
	ASSERT_EQ(failed, 1); /* only the NaN one */
}

static void batch_bad_signature(void)
{
	gfn_engine *e = test_engine();
	gfn_tensor_spec t = {"x", GFN_F32, 2, {COLS, GFN_DIM_VAR(0)}};
	gfn_function_desc d = {.name = "bad",
	                       .n_inputs = 1,
	                       .inputs = &t,
	                       .n_outputs = 1,
	                       .outputs = &t,
	                       .cpu_fn = affine,
	                       .batch_max = 4};
	gfn_function fn;

	ASSERT_FAILS(gfn_function_register(e, &d, &fn), GFN_EINVAL);
	d.batch_max = 1; /* not batching: fine */
	ASSERT_OK(gfn_function_register(e, &d, &fn));
	gfn_engine_destroy(e);
}

int main(void)
{
	TEST_RUN(batch_joins);
	TEST_RUN(batch_params_apart);
	TEST_RUN(batch_failure_isolated);
	TEST_RUN(batch_bad_signature);
	return 0;
}
