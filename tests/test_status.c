/*
 * test_status - the status list, detail messages, version and dtypes.
 */
#include "test.h"

#include <pthread.h>

struct status_row {
	gfn_status value; /* the enum constant */
	int code;         /* the number in the list */
	const char *name; /* "GFN_" #name */
	const char *text; /* the sentence in the list */
};

static const struct status_row rows[] = {
#define ROW_(name, code, text) {GFN_##name, code, "GFN_" #name, text},
        GFN_STATUS_MAP(ROW_)
#undef ROW_
};
#define N_ROWS (sizeof rows / sizeof rows[0])

static void status_codes_distinct(void)
{
	ASSERT_GE(N_ROWS, 2);
	ASSERT_EQ(GFN_OK, 0);
	for (size_t i = 0; i < N_ROWS; i++) {
		ASSERT_EQ(rows[i].value, rows[i].code);
		if (rows[i].value != GFN_OK)
			ASSERT_LT(rows[i].value, 0);
		for (size_t j = i + 1; j < N_ROWS; j++)
			ASSERT_NE(rows[i].code, rows[j].code);
	}
}

static void status_names_and_strings(void)
{
	for (size_t i = 0; i < N_ROWS; i++) {
		const char *s = gfn_status_str(rows[i].value);

		ASSERT_STR_EQ(gfn_status_name(rows[i].value), rows[i].name);
		ASSERT_NOT_NULL(s);
		ASSERT_GT(strlen(s), 0);
		/* Generated from the same list, so the same words. */
		ASSERT_STR_EQ(s, rows[i].text);
	}
	/* Names are distinct too (a copy-paste slip would repeat one). */
	for (size_t i = 0; i < N_ROWS; i++)
		for (size_t j = i + 1; j < N_ROWS; j++)
			ASSERT(strcmp(gfn_status_name(rows[i].value),
			              gfn_status_name(rows[j].value)) != 0);
}

static void status_unknown(void)
{
	const int unknown[] = {1, 2, 77, -90, -91, -99, -100000, 123456789};

	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		gfn_status s = (gfn_status)unknown[i];
		const char *str = gfn_status_str(s);

		/* The values above are not in the list: make sure. */
		for (size_t j = 0; j < N_ROWS; j++)
			ASSERT_NE(rows[j].code, unknown[i]);
		ASSERT_STR_EQ(gfn_status_name(s), "GFN_UNKNOWN");
		ASSERT_NOT_NULL(str);
		ASSERT_GT(strlen(str), 0);
	}
}

static void version_matches(void)
{
	char want[64];

	ASSERT_EQ(gfn_version(), GFN_VERSION_HEX);
	ASSERT_EQ((gfn_version() >> 16) & 0xff, GFN_VERSION_MAJOR);
	ASSERT_EQ((gfn_version() >> 8) & 0xff, GFN_VERSION_MINOR);
	ASSERT_EQ(gfn_version() & 0xff, GFN_VERSION_PATCH);
	snprintf(want, sizeof want, "%d.%d.%d", GFN_VERSION_MAJOR,
	         GFN_VERSION_MINOR, GFN_VERSION_PATCH);
	ASSERT_STR_EQ(gfn_version_string(), want);
	/* A static string: the same pointer every time. */
	ASSERT(gfn_version_string() == gfn_version_string());
}

static void dtype_size_and_name(void)
{
	static const struct {
		gfn_dtype t;
		size_t size;
		const char *name;
	} dt[] = {
	        {GFN_F32, 4, "f32"},   {GFN_F64, 8, "f64"}, {GFN_F16, 2, "f16"},
	        {GFN_BF16, 2, "bf16"}, {GFN_I8, 1, "i8"},   {GFN_U8, 1, "u8"},
	        {GFN_I32, 4, "i32"},   {GFN_I64, 8, "i64"},
	};

	for (size_t i = 0; i < sizeof dt / sizeof dt[0]; i++) {
		ASSERT_EQ(gfn_dtype_size(dt[i].t), dt[i].size);
		ASSERT_STR_EQ(gfn_dtype_name(dt[i].t), dt[i].name);
	}
	ASSERT_EQ(gfn_dtype_size(GFN_DTYPE_INVALID), 0);
	ASSERT_EQ(gfn_dtype_size((gfn_dtype)9), 0);
	ASSERT_EQ(gfn_dtype_size((gfn_dtype)-1), 0);
	ASSERT_EQ(gfn_dtype_size((gfn_dtype)1000), 0);
	ASSERT_STR_EQ(gfn_dtype_name(GFN_DTYPE_INVALID), "invalid");
	ASSERT_STR_EQ(gfn_dtype_name((gfn_dtype)9), "invalid");
	ASSERT_STR_EQ(gfn_dtype_name((gfn_dtype)-1), "invalid");
}

/* ------------------------------------------------------------------ detail */

static gfn_engine *shared_engine;

/* A failing call of a different kind on each index, all on shared_engine. */
static gfn_status failing_call(int which)
{
	gfn_engine *e = shared_engine;
	int64_t shape[2] = {4, 4};
	int64_t bad_shape[1] = {-3};
	gfn_object o, unknown = {0x123456789abcdefull, 0x0fedcba9ull};
	gfn_object_view v;
	gfn_function fn;
	gfn_future f = {0x7777777777ull};

	switch (which) {
	case 0:
		return gfn_object_create(e, GFN_DTYPE_INVALID, 2, shape, &o);
	case 1:
		return gfn_object_get(e, unknown, &v);
	case 2:
		return gfn_object_create(e, GFN_F32, 1, bad_shape, &o);
	case 3:
		return gfn_function_find(e, "no-such-function-here", &fn);
	case 4:
		return gfn_future_poll(e, f);
	case 5:
		return gfn_object_create(NULL, GFN_F32, 2, shape, &o);
	case 6:
		return gfn_object_create(e, GFN_F32, GFN_MAX_DIMS + 1, shape,
		                         &o);
	default:
		return gfn_device_get_info(e, 1000, NULL);
	}
}
#define N_FAILING 8

static void detail_set_by_every_failure(void)
{
	size_t n = 0;

	for (int i = 0; i < N_FAILING; i++) {
		gfn_status s = failing_call(i);
		const char *d = gfn_error_detail();

		if (s == GFN_OK)
			test_fail(__FILE__, __LINE__,
			          "failing call %d returned GFN_OK", i);
		ASSERT_NOT_NULL(d);
		if (d[0] == '\0')
			test_fail(__FILE__, __LINE__,
			          "failing call %d (%s) left an empty detail",
			          i, gfn_status_name(s));
		/* A call that succeeds leaves it alone (gfn.h), errno-like. */
		char before[512];
		snprintf(before, sizeof(before), "%s", d);
		ASSERT_OK(gfn_device_count(shared_engine, &n));
		d = gfn_error_detail();
		ASSERT_NOT_NULL(d);
		ASSERT_STR_EQ(d, before);
	}
}

struct detail_thread {
	pthread_barrier_t *barrier;
	char initial[512]; /* the thread's detail before any gfn call */
	char own[512];     /* after its own failing call */
	char after[512];   /* after main failed again */
	gfn_status status; /* its failing call's status */
};

static void *detail_thread_main(void *arg)
{
	struct detail_thread *t = arg;

	test_copy_detail(t->initial, sizeof t->initial);
	t->status = failing_call(1);
	test_copy_detail(t->own, sizeof t->own);
	pthread_barrier_wait(t->barrier); /* 1: main checks its own detail */
	pthread_barrier_wait(t->barrier); /* 2: main failed differently */
	test_copy_detail(t->after, sizeof t->after);
	return NULL;
}

static void detail_is_thread_local(void)
{
	pthread_barrier_t barrier;
	struct detail_thread t;
	pthread_t th;
	char mine[512], mine2[512];

	memset(&t, 0, sizeof t);
	t.barrier = &barrier;
	ASSERT_EQ(pthread_barrier_init(&barrier, NULL, 2), 0);

	ASSERT(failing_call(0) != GFN_OK);
	test_copy_detail(mine, sizeof mine);
	ASSERT_GT(strlen(mine), 0);

	ASSERT_EQ(pthread_create(&th, NULL, detail_thread_main, &t), 0);
	pthread_barrier_wait(&barrier); /* 1 */
	/* The other thread's failure did not touch this thread's message. */
	ASSERT_STR_EQ(gfn_error_detail(), mine);
	/* Fail differently here; the other thread must not see it. */
	ASSERT(failing_call(3) != GFN_OK);
	test_copy_detail(mine2, sizeof mine2);
	pthread_barrier_wait(&barrier); /* 2 */
	ASSERT_EQ(pthread_join(th, NULL), 0);
	pthread_barrier_destroy(&barrier);

	/* A new thread starts with no detail. */
	ASSERT_STR_EQ(t.initial, "");
	ASSERT(t.status == GFN_ENOENT || t.status == GFN_ESTALE);
	ASSERT_GT(strlen(t.own), 0);
	/* The messages differ, or this test could not tell them apart. */
	ASSERT(strcmp(t.own, mine) != 0);
	ASSERT(strcmp(t.own, mine2) != 0);
	/* Unchanged by what the main thread did in the meantime. */
	ASSERT_STR_EQ(t.after, t.own);
	ASSERT_STR_EQ(gfn_error_detail(), mine2);
}

int main(void)
{
	printf("# test_status\n");
	TEST_RUN(status_codes_distinct);
	TEST_RUN(status_names_and_strings);
	TEST_RUN(status_unknown);
	TEST_RUN(version_matches);
	TEST_RUN(dtype_size_and_name);
	shared_engine = test_engine();
	TEST_RUN(detail_set_by_every_failure);
	TEST_RUN(detail_is_thread_local);
	gfn_engine_destroy(shared_engine);
	return 0;
}
