/*
 * test_hotpath - after warm-up, invocations of shapes the engine has seen
 * take no host memory from the OS, create no contexts, compile nothing,
 * pin nothing and copy no input bytes on the host.
 */
#include "test.h"

#define MAXLEN 4096 /* most f32 elements per tensor */
#define WINDOW 8    /* invocations in flight */

struct pending {
	gfn_future f; /* the invocation */
	uint32_t k;   /* its data seed */
};

/* Tensor length of invocation k: always 1024, or a mix of three. */
static int mixed;

static int len_of(uint32_t k)
{
	static const int lens[3] = {1024, 4096, 16};

	return mixed ? lens[k % 3] : 1024;
}

static void fill(float *a, float *b, uint32_t k)
{
	for (int i = 0; i < len_of(k); i++) {
		a[i] = (float)((k + (uint32_t)i) % 4096u);
		b[i] = (float)((k * 3u) % 1000u) - (float)i;
	}
}

/* Inputs made as a client would: one filled in place, one copied in. */
static gfn_future submit(gfn_engine *e, gfn_function fn, uint32_t k)
{
	static float a[MAXLEN], b[MAXLEN];
	int64_t shape[1] = {len_of(k)};
	size_t nbytes = (size_t)len_of(k) * sizeof(float);
	gfn_object in[2];
	gfn_invocation inv;
	gfn_future f;
	void *p;
	size_t sz;

	fill(a, b, k);
	ASSERT_OK(gfn_object_create(e, GFN_F32, 1, shape, &in[0]));
	ASSERT_OK(gfn_object_map(e, in[0], &p, &sz));
	ASSERT_EQ(sz, nbytes);
	memcpy(p, a, sz);
	ASSERT_OK(gfn_object_seal(e, in[0]));
	ASSERT_OK(gfn_object_create(e, GFN_F32, 1, shape, &in[1]));
	ASSERT_OK(gfn_object_write(e, in[1], 0, b, nbytes));
	ASSERT_OK(gfn_object_seal(e, in[1]));
	inv = test_inv(fn, 2, in, 0, NULL);
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	/* The invocation holds the inputs; the client is done with them. */
	test_drop(e, in[0]);
	test_drop(e, in[1]);
	return f;
}

static void collect(gfn_engine *e, struct pending *p)
{
	static float a[MAXLEN], b[MAXLEN];
	gfn_object o = test_take_output(e, p->f);
	gfn_object_view v;
	const float *c;

	fill(a, b, p->k);
	ASSERT_OK(gfn_object_get(e, o, &v));
	ASSERT_EQ(v.size, (size_t)len_of(p->k) * sizeof(float));
	c = v.data;
	for (int i = 0; i < len_of(p->k); i++)
		if (c[i] != a[i] + b[i])
			test_fail(__FILE__, __LINE__,
			          "invocation %u: c[%d] = %g, want %g", p->k, i,
			          (double)c[i], (double)(a[i] + b[i]));
	ASSERT_OK(gfn_object_release(e, o));
	test_drop(e, o);
	ASSERT_OK(gfn_future_release(e, p->f));
}

/* Run n invocations with WINDOW in flight, seeds starting at k0. */
static void run(gfn_engine *e, gfn_function fn, size_t n, uint32_t k0)
{
	struct pending ring[WINDOW];
	size_t head = 0, live = 0;

	for (size_t i = 0; i < n; i++) {
		if (live == WINDOW) {
			collect(e, &ring[head]);
			head = (head + 1) % WINDOW;
			live--;
		}
		ring[(head + live) % WINDOW].k = k0 + (uint32_t)i;
		ring[(head + live) % WINDOW].f =
		        submit(e, fn, k0 + (uint32_t)i);
		live++;
	}
	while (live) {
		collect(e, &ring[head]);
		head = (head + 1) % WINDOW;
		live--;
	}
}

static void print_stats(const char *when, const gfn_stats *s)
{
	printf("#   %-8s submitted %llu completed %llu host_allocs %llu "
	       "context_creates %llu kernel_compiles %llu pinnings %llu "
	       "input_copies %llu\n",
	       when, (unsigned long long)s->submitted,
	       (unsigned long long)s->completed,
	       (unsigned long long)s->host_allocs,
	       (unsigned long long)s->context_creates,
	       (unsigned long long)s->kernel_compiles,
	       (unsigned long long)s->pinnings,
	       (unsigned long long)s->input_copies);
}

static void hotpath_run(void)
{
	gfn_config cfg;
	gfn_engine *e;
	gfn_function fn;
	size_t warm = test_scaled(2000, 500);
	size_t n = test_scaled(20000, 1000);
	gfn_stats s0, s1;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	e = test_engine_with(&cfg);
	fn = test_register_vadd(e, "vadd");

	run(e, fn, warm, 0);
	s0 = test_stats_idle(e);
	print_stats("warm", &s0);
	ASSERT_EQ(s0.completed, warm);
	/* The store's memory came from the OS and was counted. */
	ASSERT_GT(s0.host_allocs, 0);

	run(e, fn, n, (uint32_t)warm);
	s1 = test_stats_idle(e);
	print_stats("after", &s1);
	ASSERT_EQ(s1.submitted - s0.submitted, n);
	ASSERT_EQ(s1.completed - s0.completed, n);
	ASSERT_EQ(s1.failed, s0.failed);
	/* The hot path: nothing on it grew. */
	ASSERT_U64_EQ(s1.host_allocs, s0.host_allocs);
	ASSERT_U64_EQ(s1.context_creates, s0.context_creates);
	ASSERT_U64_EQ(s1.kernel_compiles, s0.kernel_compiles);
	ASSERT_U64_EQ(s1.pinnings, s0.pinnings);
	ASSERT_U64_EQ(s1.input_copies, s0.input_copies);
	/* The CPU reads inputs where they lie in the store. */
	ASSERT_U64_EQ(s1.input_copies, 0);
	gfn_engine_destroy(e);
}

/* One shape, 1024 elements. */
static void hotpath_counters_flat(void)
{
	mixed = 0;
	hotpath_run();
}

/* Three shapes in turn, all of them seen during warm-up. */
static void hotpath_counters_flat_mixed_shapes(void)
{
	mixed = 1;
	hotpath_run();
}

int main(void)
{
	printf("# test_hotpath\n");
	TEST_RUN(hotpath_counters_flat);
	TEST_RUN(hotpath_counters_flat_mixed_shapes);
	return 0;
}
