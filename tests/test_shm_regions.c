/*
 * test_shm_regions.c - store segments and device registrations stay in
 * step inside a real engine: when the store gives a segment back (to make
 * room for another tenant), the engine drops its registrations, so a new
 * segment mapped at the same address is registered afresh and device
 * copies read the new bytes. Runs on OpenCL devices (registration is
 * real there); exits 77 without one.
 */
#include "test.h"

#include <gfn/gfn_builtins.h>

#include "engine/store.h"
#include "test_shm_util.h"

static gfn_store_stats stats_of(gfn_store *st)
{
	gfn_store_stats s;

	gfn_store_get_stats(st, &s);
	return s;
}

/* Leave a cached 480 KiB object of tenant t in the store. */
static void cache_one(gfn_store *st, uint32_t t)
{
	int64_t shape[1] = {480 << 10};
	gfn_object o;

	ASSERT_OK(gfn_store_create_as(st, t, GFN_U8, 1, shape, &o, NULL));
	ASSERT_OK(gfn_store_seal_as(st, t, o));
	ASSERT_OK(gfn_store_release_as(st, t, o));
}

/* A sealed f32 vector of tenant t holding base + i. */
static gfn_object vec_of(gfn_store *st, uint32_t t, size_t n, float base)
{
	int64_t shape[1] = {(int64_t)n};
	gfn_store_loc loc;
	gfn_object o;

	ASSERT_OK(gfn_store_create_as(st, t, GFN_F32, 1, shape, &o, &loc));
	for (size_t i = 0; i < n; i++)
		((float *)loc.data)[i] = base + (float)i;
	ASSERT_OK(gfn_store_seal_as(st, t, o));
	return o;
}

/* vadd of two tenant-t vectors on the OpenCL device; checks the result. */
static void vadd_as(gfn_engine *e, gfn_store *st, uint32_t t, float base)
{
	enum { N = 100 << 10 };
	gfn_object in[2] = {vec_of(st, t, N, base), vec_of(st, t, N, 1.0f)};
	gfn_function fn;
	gfn_invocation inv;
	gfn_future f;
	gfn_object out;
	gfn_object_view v;

	ASSERT_OK(gfn_function_find(e, "gfn.vadd", &fn));
	inv = test_inv(fn, 2, in, 0, NULL);
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	out = test_take_output(e, f);
	ASSERT_OK(gfn_object_get(e, out, &v));
	for (size_t i = 0; i < N; i += 997)
		ASSERT_DBL_EQ(((const float *)v.data)[i],
		              base + (float)i + 1.0f + (float)i);
	ASSERT_OK(gfn_object_release(e, out));
	test_drop(e, out);
	ASSERT_OK(gfn_future_release(e, f));
	for (int k = 0; k < 2; k++) {
		ASSERT_OK(gfn_store_release_as(st, t, in[k]));
		ASSERT_OK(gfn_store_delete_as(st, t, in[k]));
	}
}

int main(void)
{
	gfn_config cfg;
	gfn_engine *e = NULL;
	gfn_store *st;
	gfn_stats s0, s1;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_OPENCL;
	cfg.kcache_dir = "";
	cfg.store_capacity = (size_t)2 << 20;
	cfg.segment_size = (size_t)512 << 10;
	if (gfn_engine_create(&cfg, &e) != GFN_OK) {
		printf("# no OpenCL device: skipped\n");
		return 77;
	}
	ASSERT_OK(gfn_builtins_register(e));
	st = shm_store_of(e);
	s0 = test_stats(e);
	/* Tenants 1 and 2 take turns: each turn needs segments the other
	   left cached, so segments are given back and mapped again. */
	for (int round = 0; round < 6; round++) {
		uint32_t t = 1 + (uint32_t)(round % 2);
		for (int k = 0; k < 4; k++)
			cache_one(st, t);
		vadd_as(e, st, 3 - t, (float)(round * 1000));
	}
	s1 = test_stats(e);
	printf("# segments retired %llu, registrations %llu\n",
	       (unsigned long long)stats_of(st).retired,
	       (unsigned long long)(s1.pinnings - s0.pinnings));
	ASSERT_GT(stats_of(st).retired, 0);
	ASSERT_GT(s1.pinnings, s0.pinnings);
	ASSERT_OK(gfn_store_check(st));
	gfn_engine_destroy(e);
	printf("ok - shm_regions\n");
	return 0;
}
