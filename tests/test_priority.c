/*
 * test_priority.c - queue order by priority, then by when each must start
 * (arrival order unless a deadline needs an earlier start), deadlines
 * refused at submission or ended before running, and the per-tenant
 * limits (invocations in flight, device memory).
 */
#include "test.h"

#include <gfn/gfn_builtins.h>
#include <stdatomic.h>

#include "engine/engine.h"
#include "engine/pqueue.h"

#define MAXRUN 256

static atomic_int nrun;   /* kernels that ran */
static int order[MAXRUN]; /* tag of each, in run order */

/* A kernel that records its tag (params[0]) in run order. */
static int tag_kernel(const gfn_kernel_args *a, void *user)
{
	int k = atomic_fetch_add(&nrun, 1);

	(void)user;
	if (k < MAXRUN)
		order[k] = (int)a->params[0].i64;
	return 0;
}

static gfn_function reg_tag(gfn_engine *e)
{
	gfn_param_spec p = {"tag", GFN_PARAM_I64};
	gfn_function_desc d = {.name = "tag",
	                       .n_params = 1,
	                       .params = &p,
	                       .cpu_fn = tag_kernel};
	gfn_function fn;

	ASSERT_OK(gfn_function_register(e, &d, &fn));
	return fn;
}

static gfn_status submit(gfn_engine *e, gfn_function fn, int64_t tag,
                         int32_t prio, uint64_t deadline, uint32_t tenant,
                         gfn_future *f)
{
	gfn_scalar p = {.i64 = tag};
	gfn_invocation inv = test_inv(fn, 0, NULL, 1, &p);

	inv.priority = prio;
	inv.deadline_ns = deadline;
	inv.tenant = tenant;
	return gfn_invoke(e, &inv, f);
}

/* One device, one worker, held by a gated invocation. */
struct held {
	gfn_engine *e;
	struct test_gate gate;
	gfn_future gf;
};

static void hold(struct held *h, gfn_config *cfg)
{
	gfn_function g;
	gfn_invocation inv;

	cfg->backends = GFN_BACKEND_CPU;
	h->e = test_engine_with(cfg);
	test_gate_init(&h->gate);
	g = test_register_gate(h->e, "gate", &h->gate);
	inv = test_inv(g, 0, NULL, 0, NULL);
	ASSERT_OK(gfn_invoke(h->e, &inv, &h->gf));
	test_gate_wait_entered(&h->gate, 1);
	atomic_store(&nrun, 0);
}

static void release_all(struct held *h, gfn_future *f, size_t n)
{
	test_gate_open(&h->gate);
	ASSERT_OK(gfn_future_wait(h->e, h->gf, -1));
	ASSERT_OK(gfn_future_release(h->e, h->gf));
	for (size_t k = 0; k < n; k++) {
		gfn_future_wait(h->e, f[k], -1);
		ASSERT_OK(gfn_future_release(h->e, f[k]));
	}
}

static void prio_order(void)
{
	struct held h;
	gfn_config cfg;
	gfn_function fn;
	gfn_future f[30];
	uint64_t far = gfn_clock_ns() + 60ull * 1000000000ull;

	gfn_config_init(&cfg);
	hold(&h, &cfg);
	fn = reg_tag(h.e);
	for (int k = 0; k < 10; k++) /* low priority, first in */
		ASSERT_OK(submit(h.e, fn, 100 + k, 0, 0, 0, &f[k]));
	for (int k = 0; k < 10; k++) /* high priority, later deadlines first
	                                (all far: arrival order keeps them) */
		ASSERT_OK(submit(h.e, fn, 200 + k, 5, far - (uint64_t)k * 1000,
		                 0, &f[10 + k]));
	for (int k = 0; k < 10; k++) /* middle priority */
		ASSERT_OK(submit(h.e, fn, 300 + k, 1, 0, 0, &f[20 + k]));
	release_all(&h, f, 30);
	ASSERT_EQ(atomic_load(&nrun), 30);
	for (int k = 0; k < 10; k++) {
		ASSERT_EQ(order[k], 200 + k);      /* priority 5, FIFO */
		ASSERT_EQ(order[10 + k], 300 + k); /* priority 1, FIFO */
		ASSERT_EQ(order[20 + k], 100 + k); /* priority 0, FIFO */
	}
	gfn_engine_destroy(h.e);
}

/* Jobs without a deadline are not overtaken by later ones with (far)
   deadlines: earliest-deadline order would run them last, forever if
   deadline work kept coming. */
static void deadline_no_starve(void)
{
	struct held h;
	gfn_config cfg;
	gfn_function fn;
	gfn_future f[11];
	uint64_t far = gfn_clock_ns() + 60ull * 1000000000ull;

	gfn_config_init(&cfg);
	hold(&h, &cfg);
	fn = reg_tag(h.e);
	ASSERT_OK(submit(h.e, fn, 0, 0, 0, 0, &f[0]));
	for (int k = 1; k <= 10; k++)
		ASSERT_OK(submit(h.e, fn, k, 0, far - (uint64_t)k * 1000000, 0,
		                 &f[k]));
	release_all(&h, f, 11);
	ASSERT_EQ(atomic_load(&nrun), 11);
	for (int k = 0; k <= 10; k++)
		ASSERT_EQ(order[k], k);
	gfn_engine_destroy(h.e);
}

static uint64_t pop_id(gfn_pqueue *q)
{
	gfn_qent e;

	ASSERT(gfn_pq_pop(q, &e));
	return e.id;
}

/* The queue itself: arrival order unless a deadline needs an earlier
   start, in which case the entry goes just ahead of those that can wait;
   priority first; arrival order kept when backlog estimates shrink. */
static void queue_must_start(void)
{
	gfn_pqueue q;
	gfn_qent e;

	ASSERT_OK(gfn_pq_init(&q, 16));
	/* id, prio, deadline, start in arrival order, run time */
	ASSERT(gfn_pq_push(&q, 1, 0, UINT64_MAX, 100, 10));
	ASSERT(gfn_pq_push(&q, 2, 0, UINT64_MAX, 110, 10));
	ASSERT(gfn_pq_push(&q, 3, 0, 1000, 120, 10));       /* can wait */
	ASSERT(gfn_pq_push(&q, 4, 0, 125, 130, 10));        /* start by 115 */
	ASSERT(gfn_pq_push(&q, 5, 0, 50, 140, 10));         /* start by 40 */
	ASSERT(gfn_pq_push(&q, 6, 0, UINT64_MAX, 90, 10));  /* shrank */
	ASSERT(gfn_pq_push(&q, 7, 1, UINT64_MAX, 150, 10)); /* priority */
	ASSERT_EQ(pop_id(&q), 7);
	ASSERT_EQ(pop_id(&q), 5);
	ASSERT_EQ(pop_id(&q), 1);
	ASSERT_EQ(pop_id(&q), 2);
	ASSERT_EQ(pop_id(&q), 4);
	ASSERT_EQ(pop_id(&q), 3);
	ASSERT_EQ(pop_id(&q), 6);
	ASSERT(!gfn_pq_pop(&q, &e));
	/* Emptied: arrival order starts again from the backlog now. */
	ASSERT(gfn_pq_push(&q, 8, 0, UINT64_MAX, 20, 10));
	/* 140 kept from before would put this ahead of 8 (35 < 140). */
	ASSERT(gfn_pq_push(&q, 9, 0, 45, 30, 10));
	ASSERT_EQ(pop_id(&q), 8);
	ASSERT_EQ(pop_id(&q), 9);
	gfn_pq_fini(&q);
}

static void deadline_admission(void)
{
	struct held h;
	gfn_config cfg;
	gfn_function fn;
	gfn_future f[200], x;
	uint64_t now;

	gfn_config_init(&cfg);
	hold(&h, &cfg);
	fn = reg_tag(h.e);
	now = gfn_clock_ns();
	/* Already passed. */
	ASSERT_FAILS(submit(h.e, fn, 1, 0, now - 1, 0, &x), GFN_ETIMEDOUT);
	/* 200 queued at the (never timed) default of 20 us each: 4 ms of
	   backlog ahead; a deadline 100 us away cannot be met. */
	for (int k = 0; k < 200; k++)
		ASSERT_OK(submit(h.e, fn, k, 0, 0, 0, &f[k]));
	ASSERT_FAILS(submit(h.e, fn, 1, 0, gfn_clock_ns() + 100000, 0, &x),
	             GFN_ETIMEDOUT);
	release_all(&h, f, 200);
	ASSERT_EQ(atomic_load(&nrun), 200);
	gfn_engine_destroy(h.e);
}

static void deadline_before_run(void)
{
	struct held h;
	gfn_config cfg;
	gfn_function fn;
	gfn_future f[2];

	gfn_config_init(&cfg);
	hold(&h, &cfg);
	fn = reg_tag(h.e);
	/* Admitted (the queue is short), then kept waiting past it. */
	ASSERT_OK(submit(h.e, fn, 1, 0, gfn_clock_ns() + 20000000, 0, &f[0]));
	ASSERT_OK(submit(h.e, fn, 2, 0, 0, 0, &f[1]));
	test_sleep_us(40000);
	test_gate_open(&h.gate);
	ASSERT_FAILS(gfn_future_wait(h.e, f[0], -1), GFN_ETIMEDOUT);
	ASSERT_OK(gfn_future_wait(h.e, f[1], -1));
	ASSERT_EQ(atomic_load(&nrun), 1); /* the late one never ran */
	ASSERT_EQ(order[0], 2);
	ASSERT_OK(gfn_future_wait(h.e, h.gf, -1));
	ASSERT_OK(gfn_future_release(h.e, h.gf));
	ASSERT_OK(gfn_future_release(h.e, f[0]));
	ASSERT_OK(gfn_future_release(h.e, f[1]));
	gfn_engine_destroy(h.e);
}

static void tenant_inflight(void)
{
	struct held h;
	gfn_config cfg;
	gfn_function fn;
	gfn_future f[6], x;

	gfn_config_init(&cfg);
	cfg.tenant_max_inflight = 2;
	hold(&h, &cfg);
	fn = reg_tag(h.e);
	ASSERT_OK(submit(h.e, fn, 1, 0, 0, 7, &f[0]));
	ASSERT_OK(submit(h.e, fn, 2, 0, 0, 7, &f[1]));
	ASSERT_FAILS(submit(h.e, fn, 3, 0, 0, 7, &x), GFN_EQUOTA);
	ASSERT_OK(submit(h.e, fn, 4, 0, 0, 8, &f[2])); /* another tenant */
	ASSERT_OK(submit(h.e, fn, 5, 0, 0, 0, &f[3])); /* the engine's own */
	ASSERT_OK(submit(h.e, fn, 6, 0, 0, 0, &f[4]));
	ASSERT_OK(submit(h.e, fn, 7, 0, 0, 0, &f[5]));
	release_all(&h, f, 6);
	/* Ended: tenant 7 may submit again. */
	ASSERT_OK(submit(h.e, fn, 8, 0, 0, 7, &x));
	ASSERT_OK(gfn_future_wait(h.e, x, -1));
	ASSERT_OK(gfn_future_release(h.e, x));
	gfn_engine_destroy(h.e);
}

/* Device memory of one tenant is bounded (needs a device with its own
   memory: OpenCL). */
static void tenant_device_bytes(void)
{
	gfn_config cfg;
	gfn_engine *e = NULL;
	gfn_function fn;
	gfn_invocation inv;
	gfn_object in[2], big[2];
	gfn_future f;
	float *z = calloc(1 << 20, sizeof(float));

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_OPENCL;
	cfg.kcache_dir = "";
	cfg.tenant_device_bytes = 1 << 20;
	if (gfn_engine_create(&cfg, &e) != GFN_OK) {
		printf("# no OpenCL device: device-memory limit not checked\n");
		free(z);
		return;
	}
	ASSERT_OK(gfn_builtins_register(e));
	ASSERT_OK(gfn_function_find(e, "gfn.vadd", &fn));
	in[0] = test_make_f32_1d(e, z, 1000);
	in[1] = test_make_f32_1d(e, z, 1000);
	big[0] = test_make_f32_1d(e, z, 1 << 20);
	big[1] = test_make_f32_1d(e, z, 1 << 20);
	inv = test_inv(fn, 2, big, 0, NULL);
	inv.tenant = 3;
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	ASSERT_FAILS(gfn_future_wait(e, f, -1), GFN_EQUOTA);
	ASSERT_OK(gfn_future_release(e, f));
	inv.inputs = in; /* 12 KB: within the limit */
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	ASSERT_OK(gfn_future_wait(e, f, -1));
	ASSERT_OK(gfn_future_release(e, f));
	inv.inputs = big; /* tenant 0 has no limit */
	inv.tenant = 0;
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	ASSERT_OK(gfn_future_wait(e, f, -1));
	ASSERT_OK(gfn_future_release(e, f));
	for (int k = 0; k < 2; k++) {
		test_drop(e, in[k]);
		test_drop(e, big[k]);
	}
	free(z);
	gfn_engine_destroy(e);
}

/* Outputs of an invocation run for tenant t belong to t; t may use its
   own and the engine's objects, not another tenant's. */
static void tenant_outputs(void)
{
	gfn_engine *e = test_engine();
	gfn_function fn = test_register_vadd(e, "vadd");
	float x[4] = {1, 2, 3, 4};
	gfn_object in[2] = {test_make_f32_1d(e, x, 4),
	                    test_make_f32_1d(e, x, 4)};
	gfn_invocation inv = test_inv(fn, 2, in, 0, NULL);
	gfn_store_loc loc;
	gfn_object out, t7;
	gfn_future f;
	size_t dev = 99;
	int64_t shape[1] = {4};

	inv.tenant = 5;
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	ASSERT_OK(gfn_future_device(e, f, &dev));
	ASSERT_EQ(dev, 0);
	out = test_take_output(e, f);
	ASSERT_OK(gfn_store_get_as(e->store, 5, out, &loc));
	ASSERT_OK(gfn_store_release_as(e->store, 5, out));
	ASSERT_FAILS(gfn_store_get_as(e->store, 6, out, &loc), GFN_EACCES);
	ASSERT_OK(gfn_future_release(e, f));
	/* Tenant 7's object cannot be an input of tenant 5's invocation. */
	ASSERT_OK(
	        gfn_store_create_as(e->store, 7, GFN_F32, 1, shape, &t7, NULL));
	ASSERT_OK(gfn_store_seal_as(e->store, 7, t7));
	in[1] = t7;
	ASSERT_FAILS(gfn_invoke(e, &inv, &f), GFN_EACCES);
	ASSERT_OK(gfn_store_release_as(e->store, 7, t7));
	test_drop(e, out);
	test_drop(e, in[0]);
	gfn_engine_destroy(e);
}

static void bad_limits(void)
{
	gfn_config cfg;
	gfn_engine *e = NULL;

	gfn_config_init(&cfg);
	cfg.tenant_max_inflight = 0;
	ASSERT_FAILS(gfn_engine_create(&cfg, &e), GFN_EINVAL);
	cfg.tenant_max_inflight = -5;
	ASSERT_FAILS(gfn_engine_create(&cfg, &e), GFN_EINVAL);
	gfn_config_init(&cfg);
	cfg.tenant_device_bytes = 0;
	ASSERT_FAILS(gfn_engine_create(&cfg, &e), GFN_EINVAL);
	ASSERT_NULL(e);
}

int main(void)
{
	TEST_RUN(prio_order);
	TEST_RUN(deadline_no_starve);
	TEST_RUN(queue_must_start);
	TEST_RUN(deadline_admission);
	TEST_RUN(deadline_before_run);
	TEST_RUN(tenant_inflight);
	TEST_RUN(tenant_device_bytes);
	TEST_RUN(tenant_outputs);
	TEST_RUN(bad_limits);
	return 0;
}
