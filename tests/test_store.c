/*
 * test_store - the object store: lifecycle, views, ids, eviction, threads.
 */
#include "test.h"

#include <pthread.h>

static void fill_pattern(float *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (float)((seed * 7919u + (uint32_t)i * 31u) % 65536u);
}

static int view_has_pattern(const gfn_object_view *v, size_t n, uint32_t seed)
{
	const float *p = v->data;

	if (v->size != n * sizeof(float) || v->dtype != GFN_F32)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (p[i] !=
		    (float)((seed * 7919u + (uint32_t)i * 31u) % 65536u))
			return 0;
	return 1;
}

/* Get obj, check it holds n elements of pattern seed, release. */
static void check_pattern(gfn_engine *e, gfn_object obj, size_t n,
                          uint32_t seed)
{
	gfn_object_view v;

	ASSERT_OK(gfn_object_get(e, obj, &v));
	ASSERT(view_has_pattern(&v, n, seed));
	ASSERT_OK(gfn_object_release(e, obj));
}

static gfn_object make_pattern(gfn_engine *e, size_t n, uint32_t seed)
{
	float *p = malloc(n * sizeof *p);
	gfn_object o;

	ASSERT_NOT_NULL(p);
	fill_pattern(p, n, seed);
	o = test_make_f32_1d(e, p, n);
	free(p);
	return o;
}

/* --------------------------------------------------------------- lifecycle */

static void store_lifecycle(void)
{
	gfn_engine *e = test_engine();
	gfn_stats s0 = test_stats(e), s1;
	int64_t shape[2] = {2, 3};
	const float tail[3] = {4, 5, 6};
	gfn_object o = GFN_OBJECT_NONE;
	gfn_object_view v;
	const float *vf;
	float *f;
	void *p = NULL;
	size_t sz = 0;

	ASSERT_OK(gfn_object_create(e, GFN_F32, 2, shape, &o));
	ASSERT(!gfn_object_equal(o, GFN_OBJECT_NONE));
	s1 = test_stats(e);
	ASSERT_EQ(s1.store_objects, s0.store_objects + 1);
	ASSERT_GE(s1.store_bytes, s0.store_bytes + 24);

	/* Fill the first half in place, the second half by copy. */
	ASSERT_OK(gfn_object_map(e, o, &p, &sz));
	ASSERT_NOT_NULL(p);
	ASSERT_EQ(sz, 24);
	f = p;
	f[0] = 1;
	f[1] = 2;
	f[2] = 3;
	ASSERT_OK(gfn_object_write(e, o, 12, tail, sizeof tail));
	ASSERT_OK(gfn_object_map(e, o, &p, &sz));
	f = p;
	ASSERT_DBL_EQ(f[0], 1);
	ASSERT_DBL_EQ(f[5], 6);
	ASSERT_OK(gfn_object_seal(e, o));

	memset(&v, 0, sizeof v);
	ASSERT_OK(gfn_object_get(e, o, &v));
	ASSERT_EQ(v.dtype, GFN_F32);
	ASSERT_EQ(v.ndim, 2);
	ASSERT_EQ(v.shape[0], 2);
	ASSERT_EQ(v.shape[1], 3);
	ASSERT_EQ(v.size, 24);
	ASSERT_NOT_NULL(v.data);
	vf = v.data;
	for (int i = 0; i < 6; i++)
		ASSERT_DBL_EQ(vf[i], i + 1);
	ASSERT_OK(gfn_object_release(e, o)); /* the get's reference */
	ASSERT_OK(gfn_object_release(e, o)); /* the create's reference */

	/* Unreferenced but sealed: still cached, may be got again. */
	memset(&v, 0, sizeof v);
	ASSERT_OK(gfn_object_get(e, o, &v));
	ASSERT_EQ(v.size, 24);
	vf = v.data;
	for (int i = 0; i < 6; i++)
		ASSERT_DBL_EQ(vf[i], i + 1);
	ASSERT_OK(gfn_object_release(e, o));
	ASSERT_EQ(test_stats(e).store_objects, s0.store_objects + 1);

	ASSERT_OK(gfn_object_delete(e, o));
	ASSERT_FAILS(gfn_object_get(e, o, &v), GFN_ESTALE);
	ASSERT_FAILS(gfn_object_map(e, o, &p, &sz), GFN_ESTALE);
	ASSERT_FAILS(gfn_object_write(e, o, 0, tail, 4), GFN_ESTALE);
	ASSERT_FAILS(gfn_object_seal(e, o), GFN_ESTALE);
	ASSERT_FAILS(gfn_object_release(e, o), GFN_ESTALE);
	ASSERT_FAILS(gfn_object_delete(e, o), GFN_ESTALE);
	s1 = test_stats(e);
	ASSERT_EQ(s1.store_objects, s0.store_objects);
	ASSERT_EQ(s1.store_bytes, s0.store_bytes);

	/* An unsealed object is freed when its last reference goes. */
	ASSERT_OK(gfn_object_create(e, GFN_F32, 2, shape, &o));
	ASSERT_OK(gfn_object_write(e, o, 0, tail, sizeof tail));
	ASSERT_EQ(test_stats(e).store_objects, s0.store_objects + 1);
	ASSERT_OK(gfn_object_release(e, o));
	s1 = test_stats(e);
	ASSERT_EQ(s1.store_objects, s0.store_objects);
	ASSERT_EQ(s1.store_bytes, s0.store_bytes);
	ASSERT_FAILS_ID(gfn_object_seal(e, o));
	ASSERT_FAILS_ID(gfn_object_get(e, o, &v));
	gfn_engine_destroy(e);
}

static void store_delete_while_referenced(void)
{
	gfn_engine *e = test_engine();
	gfn_object o = make_pattern(e, 1000, 42);
	gfn_object_view v;

	ASSERT_OK(gfn_object_get(e, o, &v));
	ASSERT_OK(gfn_object_delete(e, o));
	/* The id stops resolving at once... */
	ASSERT_FAILS(gfn_object_get(e, o, &v), GFN_ESTALE);
	/* ...but memory lives while references (ours) remain. */
	ASSERT(view_has_pattern(&v, 1000, 42));
	/* A new object must not land on top of the referenced memory. */
	for (uint32_t i = 0; i < 16; i++) {
		gfn_object other = make_pattern(e, 1000, 1000 + i);

		test_drop(e, other);
	}
	ASSERT(view_has_pattern(&v, 1000, 42));
	gfn_engine_destroy(e);
}

static void store_dtypes_and_shapes(void)
{
	gfn_engine *e = test_engine();
	int64_t full[GFN_MAX_DIMS];
	int64_t empty[3] = {2, 0, 5};
	unsigned char bytes[2048];

	for (int i = 0; i < GFN_MAX_DIMS; i++)
		full[i] = 2;
	for (size_t i = 0; i < sizeof bytes; i++)
		bytes[i] = (unsigned char)(i * 13 + 7);

	for (int t = GFN_F32; t <= GFN_I64; t++) {
		struct {
			int ndim;
			const int64_t *shape;
		} cases[] = {
		        {0, full}, {1, full}, {3, empty}, {GFN_MAX_DIMS, full}};

		for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
			int ndim = cases[c].ndim;
			const int64_t *shape = cases[c].shape;
			size_t size = test_numel(ndim, shape) *
			              gfn_dtype_size((gfn_dtype)t);
			gfn_object o;
			gfn_object_view v;

			ASSERT_GT(gfn_dtype_size((gfn_dtype)t), 0);
			ASSERT_LE(size, sizeof bytes);
			o = test_make(e, (gfn_dtype)t, ndim, shape, bytes);
			memset(&v, 0, sizeof v);
			ASSERT_OK(gfn_object_get(e, o, &v));
			ASSERT_EQ(v.dtype, t);
			ASSERT_EQ(v.ndim, ndim);
			for (int d = 0; d < ndim; d++)
				ASSERT_EQ(v.shape[d], shape[d]);
			ASSERT_EQ(v.size, size);
			if (size > 0) {
				ASSERT_NOT_NULL(v.data);
				ASSERT(memcmp(v.data, bytes, size) == 0);
			}
			ASSERT_OK(gfn_object_release(e, o));
			test_drop(e, o);
		}
	}
	gfn_engine_destroy(e);
}

/* --------------------------------------------------------------------- ids */

static int cmp_obj(const void *pa, const void *pb)
{
	const gfn_object *a = pa, *b = pb;

	if (a->hi != b->hi)
		return a->hi < b->hi ? -1 : 1;
	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	return 0;
}

static void store_ids_unique(void)
{
	gfn_engine *e = test_engine();
	size_t n = test_scaled(20000, 500);
	gfn_object *ids = malloc(2 * n * sizeof *ids);
	gfn_stats s0 = test_stats(e);
	int64_t shape[1] = {1};
	unsigned char byte = 7;
	gfn_object_view v;

	ASSERT_NOT_NULL(ids);
	/* n live at once. */
	for (size_t i = 0; i < n; i++) {
		ids[i] = test_make(e, GFN_U8, 1, shape, &byte);
		ASSERT(!gfn_object_equal(ids[i], GFN_OBJECT_NONE));
	}
	ASSERT_EQ(test_stats(e).store_objects, s0.store_objects + n);
	/* n more that come and go, so slots are reused. */
	for (size_t i = n; i < 2 * n; i++) {
		ids[i] = test_make(e, GFN_U8, 1, shape, &byte);
		ASSERT(!gfn_object_equal(ids[i], GFN_OBJECT_NONE));
		test_drop(e, ids[i]);
	}
	/* A deleted id stays stale even after its slot was reused. */
	ASSERT_FAILS(gfn_object_get(e, ids[n], &v), GFN_ESTALE);
	ASSERT_FAILS(gfn_object_get(e, ids[2 * n - 1], &v), GFN_ESTALE);
	/* The live ones still resolve. */
	ASSERT_OK(gfn_object_get(e, ids[0], &v));
	ASSERT_OK(gfn_object_release(e, ids[0]));
	for (size_t i = 0; i < n; i++)
		test_drop(e, ids[i]);
	ASSERT_EQ(test_stats(e).store_objects, s0.store_objects);

	qsort(ids, 2 * n, sizeof *ids, cmp_obj);
	for (size_t i = 1; i < 2 * n; i++) {
		if (gfn_object_equal(ids[i - 1], ids[i]))
			test_fail(__FILE__, __LINE__,
			          "object id %016llx:%016llx issued twice",
			          (unsigned long long)ids[i].hi,
			          (unsigned long long)ids[i].lo);
		/*
		 * The high half is random per object (a repeat among a few
		 * thousand 64-bit draws has odds below 1e-11), so one id
		 * does not give away another.
		 */
		if (ids[i - 1].hi == ids[i].hi)
			test_fail(__FILE__, __LINE__,
			          "two objects share the random half %016llx",
			          (unsigned long long)ids[i].hi);
	}
	free(ids);
	gfn_engine_destroy(e);
}

/* ---------------------------------------------------------------- eviction */

#define EV_CAP (1u << 20) /* store_capacity for these cases */
#define EV_N (16384u)     /* f32 elements of one object: 64 KiB */

static gfn_engine *small_store_engine(void)
{
	gfn_config cfg;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	cfg.store_capacity = EV_CAP;
	return test_engine_with(&cfg);
}

static void store_eviction_lru(void)
{
	gfn_engine *e = small_store_engine();
	enum { CHURN = 64 };
	gfn_object a, b, u, c[CHURN];
	gfn_object_view vb, v;
	float *buf = malloc(EV_N * sizeof *buf);
	int64_t shape[1] = {EV_N};
	gfn_stats s;
	uint64_t ev1;
	size_t resolvable = 0;

	ASSERT_NOT_NULL(buf);
	/* a: sealed, creator's reference kept. */
	a = make_pattern(e, EV_N, 1000);
	/* b: sealed, only a get's reference kept. */
	b = make_pattern(e, EV_N, 1001);
	ASSERT_OK(gfn_object_get(e, b, &vb));
	ASSERT_OK(gfn_object_release(e, b));
	/* u: unsealed, written, creator's reference kept. */
	ASSERT_OK(gfn_object_create(e, GFN_F32, 1, shape, &u));
	fill_pattern(buf, EV_N, 1002);
	ASSERT_OK(gfn_object_write(e, u, 0, buf, EV_N * sizeof *buf));

	/* Four times the capacity of sealed, unreferenced objects. */
	for (int i = 0; i < CHURN; i++) {
		c[i] = make_pattern(e, EV_N, (uint32_t)i);
		ASSERT_OK(gfn_object_release(e, c[i]));
		s = test_stats(e);
		ASSERT_LE(s.store_bytes, EV_CAP);
	}
	s = test_stats(e);
	/* At most 16 objects of 64 KiB fit in 1 MiB; 67 were made. */
	ASSERT_GE(s.store_evictions, CHURN + 3 - 16);
	ASSERT_LE(s.store_objects, 16);

	/* Least recently used went first; the newest is still there. */
	ASSERT_FAILS_ID(gfn_object_get(e, c[0], &v));
	check_pattern(e, c[CHURN - 1], EV_N, CHURN - 1);
	for (int i = 0; i < CHURN; i++) {
		gfn_status st = gfn_object_get(e, c[i], &v);

		if (st == GFN_OK) {
			ASSERT(view_has_pattern(&v, EV_N, (uint32_t)i));
			ASSERT_OK(gfn_object_release(e, c[i]));
			resolvable++;
		} else {
			ASSERT(st == GFN_ENOENT || st == GFN_ESTALE);
		}
	}
	ASSERT_LE(resolvable, 16 - 3);
	ASSERT_GE(resolvable, 1);

	/* Referenced objects were never evicted, and are intact. */
	check_pattern(e, a, EV_N, 1000);
	ASSERT(view_has_pattern(&vb, EV_N, 1001));
	check_pattern(e, b, EV_N, 1001);
	ASSERT_OK(gfn_object_write(e, u, 0, buf, sizeof(float)));
	ASSERT_OK(gfn_object_seal(e, u));
	check_pattern(e, u, EV_N, 1002);

	/* More pressure, more evictions. */
	ev1 = test_stats(e).store_evictions;
	for (int i = 0; i < 20; i++) {
		gfn_object o = make_pattern(e, EV_N, 5000u + (uint32_t)i);

		ASSERT_OK(gfn_object_release(e, o));
	}
	ASSERT_GT(test_stats(e).store_evictions, ev1);
	check_pattern(e, a, EV_N, 1000);
	ASSERT(view_has_pattern(&vb, EV_N, 1001));
	free(buf);
	gfn_engine_destroy(e);
}

static void store_enomem_when_referenced(void)
{
	gfn_engine *e = small_store_engine();
	enum { HELD = 12 };
	gfn_object held[HELD], cached[2], big, o;
	int64_t big_shape[1] = {EV_N * 6};   /* 384 KiB */
	int64_t huge_shape[1] = {EV_N * 32}; /* 2 MiB, over capacity */
	gfn_stats s0, s1;
	uint64_t t0, dt;

	for (int i = 0; i < HELD; i++)
		held[i] = make_pattern(e, EV_N, (uint32_t)i); /* 768 KiB */
	for (int i = 0; i < 2; i++) {
		cached[i] = make_pattern(e, EV_N, 100u + (uint32_t)i);
		ASSERT_OK(gfn_object_release(e, cached[i]));
	}

	/* 768 KiB referenced + 384 KiB > 1 MiB even after evicting all. */
	s0 = test_stats(e);
	t0 = test_now_ns();
	ASSERT_FAILS(gfn_object_create(e, GFN_F32, 1, big_shape, &big),
	             GFN_ENOMEM);
	dt = test_now_ns() - t0;
	/* "at once (never blocks)": generous bound, far above a lookup. */
	ASSERT_LT(dt, 1000000000ull);
	s1 = test_stats(e);
	ASSERT_LE(s1.store_objects, s0.store_objects);
	for (int i = 0; i < HELD; i++)
		check_pattern(e, held[i], EV_N, (uint32_t)i);

	/* Bigger than the whole store. */
	t0 = test_now_ns();
	ASSERT_FAILS(gfn_object_create(e, GFN_F32, 1, huge_shape, &o),
	             GFN_ENOMEM);
	ASSERT_LT(test_now_ns() - t0, 1000000000ull);

	/* Give back half of the held ones: now it fits by evicting them. */
	for (int i = 0; i < HELD / 2; i++)
		ASSERT_OK(gfn_object_release(e, held[i]));
	ASSERT_OK(gfn_object_create(e, GFN_F32, 1, big_shape, &big));
	ASSERT_OK(gfn_object_seal(e, big));
	for (int i = HELD / 2; i < HELD; i++)
		check_pattern(e, held[i], EV_N, (uint32_t)i);
	ASSERT_GT(test_stats(e).store_evictions, 0);
	gfn_engine_destroy(e);
}

/*
 * Inputs of a queued invocation are referenced by it: the client lets go
 * of them, the store comes under pressure, and they are not evicted.
 */
static void store_inputs_held_by_invocation(void)
{
	gfn_config cfg;
	gfn_engine *e;
	struct test_gate gate;
	gfn_function g, vadd;
	gfn_invocation inv;
	gfn_future fg, fv;
	gfn_object in[2], out;
	gfn_object_view v;
	enum { N = 4096 }; /* 16 KiB per input */
	float *c = malloc(N * sizeof *c);

	ASSERT_NOT_NULL(c);
	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	cfg.cpu_devices = 1;
	cfg.workers_per_device = 1;
	cfg.store_capacity = EV_CAP;
	e = test_engine_with(&cfg);
	test_gate_init(&gate);
	g = test_register_gate(e, "gate", &gate);
	vadd = test_register_vadd(e, "vadd");
	inv = test_inv(g, 0, NULL, 0, NULL);
	ASSERT_OK(gfn_invoke(e, &inv, &fg));
	test_gate_wait_entered(&gate, 1);

	in[0] = make_pattern(e, N, 1);
	in[1] = make_pattern(e, N, 2);
	inv = test_inv(vadd, 2, in, 0, NULL);
	ASSERT_OK(gfn_invoke(e, &inv, &fv));
	ASSERT_OK(gfn_object_release(e, in[0]));
	ASSERT_OK(gfn_object_release(e, in[1]));
	/* Four times the store's capacity goes through it. */
	for (int i = 0; i < 64; i++) {
		gfn_object o = make_pattern(e, EV_N, 100u + (uint32_t)i);

		ASSERT_OK(gfn_object_release(e, o));
	}
	ASSERT_GT(test_stats(e).store_evictions, 0);
	check_pattern(e, in[0], N, 1);
	check_pattern(e, in[1], N, 2);

	test_gate_open(&gate);
	ASSERT_OK(gfn_future_wait(e, fg, -1));
	out = test_take_output(e, fv);
	ASSERT_OK(gfn_object_get(e, out, &v));
	ASSERT_EQ(v.size, N * sizeof(float));
	memcpy(c, v.data, v.size);
	ASSERT_OK(gfn_object_release(e, out));
	{
		float a[N], b[N];

		fill_pattern(a, N, 1);
		fill_pattern(b, N, 2);
		for (int i = 0; i < N; i++)
			ASSERT_DBL_EQ(c[i], a[i] + b[i]);
	}
	test_drop(e, out);
	ASSERT_OK(gfn_future_release(e, fg));
	ASSERT_OK(gfn_future_release(e, fv));
	free(c);
	gfn_engine_destroy(e);
}

static void store_max_objects(void)
{
	gfn_config cfg;
	gfn_engine *e;
	enum { MAX = 8 };
	gfn_object o[MAX], extra, extra2;
	int64_t shape[1] = {4};
	gfn_object_view v;
	uint64_t ev;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	cfg.max_objects = MAX;
	e = test_engine_with(&cfg);
	for (int i = 0; i < MAX; i++)
		o[i] = make_pattern(e, 4, (uint32_t)i);
	ASSERT_EQ(test_stats(e).store_objects, MAX);
	/* All referenced: the store is full and nothing can be evicted. */
	ASSERT_FAILS(gfn_object_create(e, GFN_F32, 1, shape, &extra),
	             GFN_ENOMEM);
	ASSERT_EQ(test_stats(e).store_objects, MAX);
	/* One sealed object unreferenced: it makes room. */
	ev = test_stats(e).store_evictions;
	ASSERT_OK(gfn_object_release(e, o[3]));
	ASSERT_OK(gfn_object_create(e, GFN_F32, 1, shape, &extra));
	ASSERT_EQ(test_stats(e).store_evictions, ev + 1);
	ASSERT_FAILS_ID(gfn_object_get(e, o[3], &v));
	/* Unsealed objects are not evicted either. */
	ASSERT_FAILS(gfn_object_create(e, GFN_F32, 1, shape, &extra2),
	             GFN_ENOMEM);
	/* Deleting frees a slot at once. */
	ASSERT_OK(gfn_object_release(e, o[0]));
	ASSERT_OK(gfn_object_delete(e, o[0]));
	ASSERT_OK(gfn_object_create(e, GFN_F32, 1, shape, &extra2));
	for (int i = 1; i < MAX; i++)
		if (i != 3)
			check_pattern(e, o[i], 4, (uint32_t)i);
	ASSERT_EQ(test_stats(e).store_objects, MAX);
	gfn_engine_destroy(e);
}

/* ----------------------------------------------------------------- threads */

#define MT_THREADS 8
#define MT_KEEP 32

struct mt_arg {
	gfn_engine *e;
	gfn_object shared; /* one sealed object every thread gets */
	uint32_t shared_seed;
	size_t shared_n;
	int id;
	size_t iters;
	size_t done;
};

static uint64_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

static void *mt_main(void *argp)
{
	struct mt_arg *arg = argp;
	gfn_engine *e = arg->e;
	uint64_t rng = 0x1234567ull + (uint64_t)arg->id * 0x9e3779b9ull;
	gfn_object keep[MT_KEEP];
	size_t nkeep = 0;
	float *buf = malloc(2048 * sizeof *buf);

	ASSERT_NOT_NULL(buf);
	for (size_t it = 0; it < arg->iters; it++) {
		size_t n = 1 + test_rand(&rng) % 2048;
		int64_t shape[1] = {(int64_t)n};
		gfn_object o;
		gfn_object_view v;
		uint64_t h;

		for (size_t i = 0; i < n; i++)
			buf[i] = (float)(test_rand(&rng) % 100000);
		h = hash_bytes(buf, n * sizeof *buf);
		ASSERT_OK(gfn_object_create(e, GFN_F32, 1, shape, &o));
		if (it % 2) {
			void *p;
			size_t sz;

			ASSERT_OK(gfn_object_map(e, o, &p, &sz));
			ASSERT_EQ(sz, n * sizeof *buf);
			memcpy(p, buf, sz);
		} else {
			ASSERT_OK(gfn_object_write(e, o, 0, buf,
			                           n * sizeof *buf));
		}
		ASSERT_OK(gfn_object_seal(e, o));
		ASSERT_OK(gfn_object_get(e, o, &v));
		ASSERT_EQ(v.size, n * sizeof *buf);
		ASSERT_EQ(v.shape[0], (int64_t)n);
		ASSERT_U64_EQ(hash_bytes(v.data, v.size), h);
		ASSERT_OK(gfn_object_release(e, o));

		/* The shared object, under concurrent get/release. */
		ASSERT_OK(gfn_object_get(e, arg->shared, &v));
		ASSERT(view_has_pattern(&v, arg->shared_n, arg->shared_seed));
		ASSERT_OK(gfn_object_release(e, arg->shared));

		/* Delete some at once, keep some for a while. */
		if (it % 3 == 0) {
			test_drop(e, o);
			continue;
		}
		if (nkeep == MT_KEEP) {
			size_t k = test_rand(&rng) % MT_KEEP;

			test_drop(e, keep[k]);
			keep[k] = o;
		} else {
			keep[nkeep++] = o;
		}
	}
	for (size_t i = 0; i < nkeep; i++)
		test_drop(e, keep[i]);
	free(buf);
	arg->done = arg->iters;
	return NULL;
}

static void store_multithreaded(void)
{
	gfn_engine *e = test_engine();
	struct mt_arg args[MT_THREADS];
	pthread_t th[MT_THREADS];
	gfn_stats s0 = test_stats(e);
	gfn_object shared = make_pattern(e, 4096, 777);
	size_t iters = test_scaled(3000, 100);

	for (int i = 0; i < MT_THREADS; i++) {
		args[i] = (struct mt_arg){e, shared, 777, 4096, i, iters, 0};
		ASSERT_EQ(pthread_create(&th[i], NULL, mt_main, &args[i]), 0);
	}
	for (int i = 0; i < MT_THREADS; i++) {
		ASSERT_EQ(pthread_join(th[i], NULL), 0);
		ASSERT_EQ(args[i].done, iters);
	}
	/* Every get was matched by a release: exactly one reference left. */
	ASSERT_OK(gfn_object_release(e, shared));
	ASSERT_FAILS(gfn_object_release(e, shared), GFN_ESTATE);
	ASSERT_OK(gfn_object_delete(e, shared));
	ASSERT_EQ(test_stats(e).store_objects, s0.store_objects);
	gfn_engine_destroy(e);
}

int main(void)
{
	printf("# test_store\n");
	TEST_RUN(store_lifecycle);
	TEST_RUN(store_delete_while_referenced);
	TEST_RUN(store_dtypes_and_shapes);
	TEST_RUN(store_ids_unique);
	TEST_RUN(store_eviction_lru);
	TEST_RUN(store_enomem_when_referenced);
	TEST_RUN(store_inputs_held_by_invocation);
	TEST_RUN(store_max_objects);
	TEST_RUN(store_multithreaded);
	return 0;
}
