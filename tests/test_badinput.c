/*
 * test_badinput - every bad argument is refused with the status the header
 * names and a detail message, and the engine goes on working afterwards.
 */
#include "test.h"

static gfn_engine *E;      /* shared by every case */
static gfn_function VADD;  /* vadd, registered once */
static gfn_function FIXED; /* f32 [4] -> f32 [4] with one i64 parameter */

static const gfn_object UNKNOWN_OBJ = {0x5eed5eed5eed5eedull,
                                       0x00000000deadbeefull};
static const gfn_future UNKNOWN_FUT = {0x00000000deadbeefull};
static const gfn_function UNKNOWN_FN = {0xdeadbeefu};

static int fixed_kernel(const gfn_kernel_args *a, void *user)
{
	(void)user;
	memcpy(a->outputs[0].data, a->inputs[0].data, 4 * sizeof(float));
	return (int)a->params[0].i64;
}

static gfn_function register_fixed(gfn_engine *e)
{
	static const gfn_tensor_spec in = {"x", GFN_F32, 1, {4}};
	static const gfn_tensor_spec out = {"y", GFN_F32, 1, {4}};
	static const gfn_param_spec p = {"rc", GFN_PARAM_I64};
	gfn_function_desc d;
	gfn_function fn;

	memset(&d, 0, sizeof d);
	d.name = "fixed";
	d.n_inputs = 1;
	d.inputs = &in;
	d.n_outputs = 1;
	d.outputs = &out;
	d.n_params = 1;
	d.params = &p;
	d.cpu_fn = fixed_kernel;
	ASSERT_OK(gfn_function_register(e, &d, &fn));
	return fn;
}

static gfn_object vec(size_t n)
{
	float v[64];

	ASSERT_LE(n, 64);
	for (size_t i = 0; i < n; i++)
		v[i] = (float)i;
	return test_make_f32_1d(E, v, n);
}

/* A sealed object that was deleted. */
static gfn_object stale_obj(void)
{
	gfn_object o = vec(4);

	test_drop(E, o);
	return o;
}

/* A future that ended and was released. */
static gfn_future released_future(void)
{
	gfn_object in[2] = {vec(3), vec(3)};
	gfn_invocation inv = test_inv(VADD, 2, in, 0, NULL);
	gfn_future f;

	ASSERT_OK(gfn_invoke(E, &inv, &f));
	ASSERT_OK(gfn_future_wait(E, f, -1));
	ASSERT_OK(gfn_future_release(E, f));
	test_drop(E, in[0]);
	test_drop(E, in[1]);
	return f;
}

/* ------------------------------------------------------------------- NULLs */

static void bad_null_engine(void)
{
	int64_t shape[1] = {4};
	gfn_object o = vec(4), o2, outs[1];
	gfn_object_view v;
	gfn_function fn;
	gfn_tensor_spec in[2], out[1];
	gfn_function_desc d;
	gfn_invocation inv = test_inv(VADD, 0, NULL, 0, NULL);
	gfn_future f = {1};
	gfn_stats s;
	gfn_device_stats ds;
	gfn_device_info info;
	size_t n;
	void *p;
	float x = 0;

	test_vadd_signature(in, out);
	memset(&d, 0, sizeof d);
	d.name = "never";
	d.n_inputs = 2;
	d.inputs = in;
	d.n_outputs = 1;
	d.outputs = out;
	d.cpu_fn = test_vadd_kernel;

	ASSERT_FAILS(gfn_device_count(NULL, &n), GFN_EINVAL);
	ASSERT_FAILS(gfn_device_get_info(NULL, 0, &info), GFN_EINVAL);
	ASSERT_FAILS(gfn_device_get_stats(NULL, 0, &ds), GFN_EINVAL);
	ASSERT_FAILS(gfn_engine_stats(NULL, &s), GFN_EINVAL);
	ASSERT_FAILS(gfn_object_create(NULL, GFN_F32, 1, shape, &o2),
	             GFN_EINVAL);
	ASSERT_FAILS(gfn_object_write(NULL, o, 0, &x, 4), GFN_EINVAL);
	ASSERT_FAILS(gfn_object_map(NULL, o, &p, &n), GFN_EINVAL);
	ASSERT_FAILS(gfn_object_seal(NULL, o), GFN_EINVAL);
	ASSERT_FAILS(gfn_object_get(NULL, o, &v), GFN_EINVAL);
	ASSERT_FAILS(gfn_object_release(NULL, o), GFN_EINVAL);
	ASSERT_FAILS(gfn_object_delete(NULL, o), GFN_EINVAL);
	ASSERT_FAILS(gfn_function_register(NULL, &d, &fn), GFN_EINVAL);
	ASSERT_FAILS(gfn_function_find(NULL, "vadd", &fn), GFN_EINVAL);
	ASSERT_FAILS(gfn_function_unregister(NULL, VADD), GFN_EINVAL);
	ASSERT_FAILS(gfn_invoke(NULL, &inv, &f), GFN_EINVAL);
	ASSERT_FAILS(gfn_invoke_many(NULL, &inv, 1, &f, &n), GFN_EINVAL);
	ASSERT_FAILS(gfn_future_wait(NULL, f, 0), GFN_EINVAL);
	ASSERT_FAILS(gfn_future_poll(NULL, f), GFN_EINVAL);
	ASSERT_FAILS(gfn_future_outputs(NULL, f, outs, 1, &n), GFN_EINVAL);
	ASSERT_FAILS(gfn_future_cancel(NULL, f), GFN_EINVAL);
	ASSERT_FAILS(gfn_future_release(NULL, f), GFN_EINVAL);
	/* None of that touched the real object or function. */
	ASSERT_OK(gfn_object_get(E, o, &v));
	ASSERT_OK(gfn_object_release(E, o));
	test_drop(E, o);
	ASSERT_OK(gfn_function_find(E, "vadd", &fn));
	ASSERT_EQ(fn.id, VADD.id);
}

static void bad_null_out(void)
{
	int64_t shape[1] = {4};
	gfn_config cfg;
	gfn_tensor_spec in[2], out[1];
	gfn_function_desc d;
	gfn_object o = vec(4), u, in2[2] = {vec(3), vec(3)};
	gfn_invocation inv = test_inv(VADD, 2, in2, 0, NULL);
	gfn_future f[1];
	size_t n;
	void *p;
	gfn_stats s0 = test_stats(E);

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	test_vadd_signature(in, out);
	memset(&d, 0, sizeof d);
	d.name = "never";
	d.n_inputs = 2;
	d.inputs = in;
	d.n_outputs = 1;
	d.outputs = out;
	d.cpu_fn = test_vadd_kernel;

	ASSERT_FAILS(gfn_engine_create(&cfg, NULL), GFN_EINVAL);
	ASSERT_FAILS(gfn_device_count(E, NULL), GFN_EINVAL);
	ASSERT_FAILS(gfn_device_get_info(E, 0, NULL), GFN_EINVAL);
	ASSERT_FAILS(gfn_device_get_stats(E, 0, NULL), GFN_EINVAL);
	ASSERT_FAILS(gfn_engine_stats(E, NULL), GFN_EINVAL);
	ASSERT_FAILS(gfn_object_create(E, GFN_F32, 1, shape, NULL), GFN_EINVAL);
	ASSERT_FAILS(gfn_function_register(E, &d, NULL), GFN_EINVAL);
	ASSERT_FAILS(gfn_function_find(E, "vadd", NULL), GFN_EINVAL);
	ASSERT_FAILS(gfn_invoke(E, &inv, NULL), GFN_EINVAL);
	ASSERT_FAILS(gfn_invoke_many(E, &inv, 1, NULL, &n), GFN_EINVAL);
	ASSERT_FAILS(gfn_invoke_many(E, &inv, 1, f, NULL), GFN_EINVAL);
	ASSERT_OK(gfn_object_create(E, GFN_F32, 1, shape, &u));
	ASSERT_FAILS(gfn_object_map(E, u, NULL, &n), GFN_EINVAL);
	ASSERT_FAILS(gfn_object_get(E, o, NULL), GFN_EINVAL);
	(void)p;
	/* No invocation was accepted by any of that. */
	ASSERT_EQ(test_stats(E).submitted, s0.submitted);
	ASSERT_OK(gfn_object_release(E, u));
	test_drop(E, o);
	test_drop(E, in2[0]);
	test_drop(E, in2[1]);
}

static void bad_null_desc(void)
{
	gfn_function fn;
	gfn_future f[2];
	gfn_object o, u;
	int64_t shape[1] = {4};
	size_t n = 99;

	ASSERT_FAILS(gfn_function_register(E, NULL, &fn), GFN_EINVAL);
	ASSERT_FAILS(gfn_function_find(E, NULL, &fn), GFN_EINVAL);
	ASSERT_FAILS(gfn_invoke(E, NULL, f), GFN_EINVAL);
	ASSERT_FAILS(gfn_invoke_many(E, NULL, 2, f, &n), GFN_EINVAL);
	ASSERT_EQ(n, 0);
	/* A shape pointer is needed when ndim > 0, a source when len > 0. */
	ASSERT_FAILS(gfn_object_create(E, GFN_F32, 1, NULL, &o), GFN_EINVAL);
	ASSERT_OK(gfn_object_create(E, GFN_F32, 1, shape, &u));
	ASSERT_FAILS(gfn_object_write(E, u, 0, NULL, 4), GFN_EINVAL);
	ASSERT_OK(gfn_object_release(E, u));
}

static void bad_engine_config(void)
{
	gfn_config cfg;
	gfn_engine *e = (gfn_engine *)&cfg; /* must be overwritten */

	/* A mask bit that names no backend at all. */
	gfn_config_init(&cfg);
	cfg.backends = 1u << 7;
	ASSERT_FAILS(gfn_engine_create(&cfg, &e), GFN_ENODEV);
	ASSERT_NULL(e);
	/* An empty mask selects no backend either. */
	e = (gfn_engine *)&cfg;
	cfg.backends = 0;
	ASSERT_FAILS(gfn_engine_create(&cfg, &e), GFN_ENODEV);
	ASSERT_NULL(e);
}

static void bad_device_index(void)
{
	gfn_device_info info;
	size_t n = 0;

	ASSERT_OK(gfn_device_count(E, &n));
	ASSERT_FAILS(gfn_device_get_info(E, n, &info), GFN_ERANGE);
	ASSERT_FAILS(gfn_device_get_info(E, (size_t)-1, &info), GFN_ERANGE);
	ASSERT_OK(gfn_device_get_info(E, n - 1, &info));
}

/* -------------------------------------------------------------- object ids */

static void check_bad_object_id(gfn_object o, int stale)
{
	gfn_object_view v;
	void *p;
	size_t n;
	float x = 1;

#define CHECK_ID_(expr)                                                        \
	do {                                                                   \
		if (stale)                                                     \
			ASSERT_FAILS(expr, GFN_ESTALE);                        \
		else                                                           \
			ASSERT_FAILS_ID(expr);                                 \
	} while (0)
	CHECK_ID_(gfn_object_get(E, o, &v));
	CHECK_ID_(gfn_object_write(E, o, 0, &x, sizeof x));
	CHECK_ID_(gfn_object_map(E, o, &p, &n));
	CHECK_ID_(gfn_object_seal(E, o));
	CHECK_ID_(gfn_object_release(E, o));
	CHECK_ID_(gfn_object_delete(E, o));
#undef CHECK_ID_
}

static void bad_object_unknown_id(void)
{
	uint64_t rng = 0xabcdef;

	check_bad_object_id(UNKNOWN_OBJ, 0);
	for (int i = 0; i < 100; i++) {
		gfn_object o = {test_rand(&rng), test_rand(&rng)};

		check_bad_object_id(o, 0);
	}
	/* A real slot with a wrong random half. */
	{
		gfn_object real = vec(4), fake = real;

		fake.hi ^= 0x1;
		check_bad_object_id(fake, 0);
		test_drop(E, real);
	}
}

static void bad_object_zero_id(void)
{
	check_bad_object_id(GFN_OBJECT_NONE, 0);
}

static void bad_object_stale_id(void)
{
	check_bad_object_id(stale_obj(), 1);
}

/* ------------------------------------------------------------------ create */

static void bad_object_create(void)
{
	int64_t shape[GFN_MAX_DIMS + 1];
	int64_t neg[2] = {4, -1};
	int64_t huge[1] = {(int64_t)1 << 40};
	gfn_object o;
	gfn_stats s0 = test_stats(E);

	for (int i = 0; i <= GFN_MAX_DIMS; i++)
		shape[i] = 1;
	ASSERT_FAILS(gfn_object_create(E, GFN_DTYPE_INVALID, 1, shape, &o),
	             GFN_EINVAL);
	ASSERT_FAILS(gfn_object_create(E, (gfn_dtype)9, 1, shape, &o),
	             GFN_EINVAL);
	ASSERT_FAILS(gfn_object_create(E, (gfn_dtype)1000, 1, shape, &o),
	             GFN_EINVAL);
	ASSERT_FAILS(gfn_object_create(E, GFN_F32, -1, shape, &o), GFN_EINVAL);
	ASSERT_FAILS(gfn_object_create(E, GFN_F32, GFN_MAX_DIMS + 1, shape, &o),
	             GFN_EINVAL);
	ASSERT_FAILS(gfn_object_create(E, GFN_F32, 2, neg, &o), GFN_EINVAL);
	/* 4 TiB in a 1 GiB store. */
	ASSERT_FAILS(gfn_object_create(E, GFN_F32, 1, huge, &o), GFN_ENOMEM);
	ASSERT_EQ(test_stats(E).store_objects, s0.store_objects);
	/* The limits themselves are fine. */
	ASSERT_OK(gfn_object_create(E, GFN_F32, GFN_MAX_DIMS, shape, &o));
	ASSERT_OK(gfn_object_release(E, o));
	ASSERT_OK(gfn_object_create(E, GFN_I64, 0, shape, &o));
	ASSERT_OK(gfn_object_release(E, o));
}

/* ------------------------------------------------------------------ states */

static void bad_write_past_end(void)
{
	int64_t shape[1] = {16}; /* 64 bytes */
	unsigned char buf[80] = {0};
	gfn_object o;

	ASSERT_OK(gfn_object_create(E, GFN_F32, 1, shape, &o));
	ASSERT_FAILS(gfn_object_write(E, o, 0, buf, 65), GFN_ERANGE);
	ASSERT_FAILS(gfn_object_write(E, o, 60, buf, 8), GFN_ERANGE);
	ASSERT_FAILS(gfn_object_write(E, o, 64, buf, 1), GFN_ERANGE);
	ASSERT_FAILS(gfn_object_write(E, o, 65, buf, 0), GFN_ERANGE);
	/* off + len overflows size_t: still out of range, not a wrap. */
	ASSERT_FAILS(gfn_object_write(E, o, SIZE_MAX, buf, 2), GFN_ERANGE);
	ASSERT_FAILS(gfn_object_write(E, o, 8, buf, SIZE_MAX - 4), GFN_ERANGE);
	/* Up to the end exactly is fine. */
	ASSERT_OK(gfn_object_write(E, o, 0, buf, 64));
	ASSERT_OK(gfn_object_write(E, o, 56, buf, 8));
	ASSERT_OK(gfn_object_write(E, o, 64, buf, 0));
	ASSERT_OK(gfn_object_release(E, o));
}

static void bad_after_seal(void)
{
	gfn_object o = vec(8);
	float x = 1;
	void *p = NULL;
	size_t n = 0;
	float back[8];

	ASSERT_FAILS(gfn_object_write(E, o, 0, &x, sizeof x), GFN_ESTATE);
	ASSERT_FAILS(gfn_object_map(E, o, &p, &n), GFN_ESTATE);
	ASSERT_FAILS(gfn_object_seal(E, o), GFN_ESTATE);
	/* Still the sealed contents. */
	test_read_f32(E, o, back, 8);
	for (int i = 0; i < 8; i++)
		ASSERT_DBL_EQ(back[i], i);
	test_drop(E, o);
}

static void bad_get_unsealed(void)
{
	int64_t shape[1] = {4};
	gfn_object o;
	gfn_object_view v;

	ASSERT_OK(gfn_object_create(E, GFN_F32, 1, shape, &o));
	ASSERT_FAILS(gfn_object_get(E, o, &v), GFN_ESTATE);
	ASSERT_OK(gfn_object_seal(E, o));
	ASSERT_OK(gfn_object_get(E, o, &v));
	ASSERT_OK(gfn_object_release(E, o));
	test_drop(E, o);
}

static void bad_release_without_reference(void)
{
	gfn_object o = vec(4);
	gfn_object_view v;

	ASSERT_OK(gfn_object_release(E, o));
	ASSERT_FAILS(gfn_object_release(E, o), GFN_ESTATE);
	/* Still cached; one get, one release, then none again. */
	ASSERT_OK(gfn_object_get(E, o, &v));
	ASSERT_OK(gfn_object_release(E, o));
	ASSERT_FAILS(gfn_object_release(E, o), GFN_ESTATE);
	ASSERT_OK(gfn_object_delete(E, o));
}

/* ------------------------------------------------------------------ invoke */

static void bad_invoke_function_id(void)
{
	gfn_object in[2] = {vec(3), vec(3)};
	gfn_invocation inv = test_inv(UNKNOWN_FN, 2, in, 0, NULL);
	gfn_function gone = test_register_vadd(E, "gone");
	gfn_future f;
	gfn_stats s0 = test_stats(E);

	ASSERT_FAILS_ID(gfn_invoke(E, &inv, &f));
	inv.fn = (gfn_function){0};
	ASSERT_FAILS_ID(gfn_invoke(E, &inv, &f));
	ASSERT_FAILS_ID(gfn_function_unregister(E, (gfn_function){0}));
	ASSERT_FAILS_ID(gfn_function_unregister(E, UNKNOWN_FN));
	ASSERT_OK(gfn_function_unregister(E, gone));
	inv.fn = gone;
	ASSERT_FAILS(gfn_invoke(E, &inv, &f), GFN_ESTALE);
	ASSERT_EQ(test_stats(E).submitted, s0.submitted);
	test_drop(E, in[0]);
	test_drop(E, in[1]);
}

/* Every invocation below is refused at once; check none was accepted. */
static gfn_stats before;

static void expect_refused(void)
{
	gfn_stats s = test_stats(E);

	ASSERT_EQ(s.submitted, before.submitted);
}

static void bad_invoke_inputs(void)
{
	gfn_object a = vec(8), b = vec(8), c9 = vec(9), in[3];
	int64_t shape2[2] = {2, 4};
	int32_t ints[8] = {0};
	gfn_object i32 = test_make(E, GFN_I32, 1, (int64_t[]){8}, ints);
	gfn_object m2 = test_make_f32(E, (float[8]){0}, 2, shape2);
	gfn_object stale = stale_obj(), unsealed;
	gfn_scalar p = {.i64 = 0};
	gfn_invocation inv;
	gfn_future f;

	ASSERT_OK(gfn_object_create(E, GFN_F32, 1, (int64_t[]){8}, &unsealed));
	before = test_stats(E);

	/* Wrong number of inputs. */
	in[0] = a;
	in[1] = b;
	in[2] = b;
	inv = test_inv(VADD, 1, in, 0, NULL);
	ASSERT_FAILS(gfn_invoke(E, &inv, &f), GFN_EINVAL);
	inv = test_inv(VADD, 3, in, 0, NULL);
	ASSERT_FAILS(gfn_invoke(E, &inv, &f), GFN_EINVAL);
	inv = test_inv(VADD, 0, NULL, 0, NULL);
	ASSERT_FAILS(gfn_invoke(E, &inv, &f), GFN_EINVAL);
	inv = test_inv(VADD, 2, NULL, 0, NULL);
	ASSERT_FAILS(gfn_invoke(E, &inv, &f), GFN_EINVAL);

	/* Wrong dtype. */
	in[1] = i32;
	inv = test_inv(VADD, 2, in, 0, NULL);
	ASSERT_FAILS(gfn_invoke(E, &inv, &f), GFN_EDTYPE);

	/* Wrong ndim, wrong fixed extent, mismatched size variable. */
	in[1] = m2;
	ASSERT_FAILS(gfn_invoke(E, &inv, &f), GFN_ESHAPE);
	in[1] = c9;
	ASSERT_FAILS(gfn_invoke(E, &inv, &f), GFN_ESHAPE);
	inv = test_inv(FIXED, 1, &a, 1, &p); /* wants [4], gets [8] */
	ASSERT_FAILS(gfn_invoke(E, &inv, &f), GFN_ESHAPE);

	/* Wrong number of parameters. */
	{
		gfn_object x4 = vec(4);
		gfn_scalar two[2] = {{.i64 = 0}, {.i64 = 0}};

		inv = test_inv(FIXED, 1, &x4, 0, NULL);
		ASSERT_FAILS(gfn_invoke(E, &inv, &f), GFN_EINVAL);
		inv = test_inv(FIXED, 1, &x4, 2, two);
		ASSERT_FAILS(gfn_invoke(E, &inv, &f), GFN_EINVAL);
		inv = test_inv(FIXED, 1, &x4, 1, NULL);
		ASSERT_FAILS(gfn_invoke(E, &inv, &f), GFN_EINVAL);
		in[0] = a;
		in[1] = b;
		inv = test_inv(VADD, 2, in, 1, &p);
		ASSERT_FAILS(gfn_invoke(E, &inv, &f), GFN_EINVAL);
		test_drop(E, x4);
	}

	/* Unsealed, deleted, unknown and zero inputs. */
	in[0] = a;
	in[1] = unsealed;
	inv = test_inv(VADD, 2, in, 0, NULL);
	ASSERT_FAILS(gfn_invoke(E, &inv, &f), GFN_ESTATE);
	in[1] = stale;
	ASSERT_FAILS(gfn_invoke(E, &inv, &f), GFN_ESTALE);
	in[1] = UNKNOWN_OBJ;
	ASSERT_FAILS_ID(gfn_invoke(E, &inv, &f));
	in[1] = GFN_OBJECT_NONE;
	ASSERT_FAILS_ID(gfn_invoke(E, &inv, &f));
	expect_refused();

	/* The unsealed object was not harmed: seal it, now it is accepted. */
	{
		float z[8] = {0};

		ASSERT_OK(gfn_object_write(E, unsealed, 0, z, sizeof z));
		ASSERT_OK(gfn_object_seal(E, unsealed));
		in[1] = unsealed;
		ASSERT_OK(gfn_invoke(E, &inv, &f));
		ASSERT_OK(gfn_future_wait(E, f, -1));
		ASSERT_OK(gfn_future_release(E, f));
	}
	test_drop(E, a);
	test_drop(E, b);
	test_drop(E, c9);
	test_drop(E, i32);
	test_drop(E, m2);
	test_drop(E, unsealed);
}

static void bad_invoke_many_partial(void)
{
	gfn_object good[2] = {vec(5), vec(5)};
	gfn_object bad[2] = {vec(5), vec(6)};
	gfn_invocation invs[3];
	gfn_future fs[3];
	size_t acc = 99;
	gfn_stats s0 = test_stats(E);

	invs[0] = test_inv(VADD, 2, good, 0, NULL);
	invs[1] = test_inv(VADD, 2, bad, 0, NULL);
	invs[2] = test_inv(VADD, 2, good, 0, NULL);
	ASSERT_FAILS(gfn_invoke_many(E, invs, 3, fs, &acc), GFN_ESHAPE);
	ASSERT_EQ(acc, 1);
	ASSERT_OK(gfn_future_wait(E, fs[0], -1));
	ASSERT_OK(gfn_future_release(E, fs[0]));
	ASSERT_EQ(test_stats(E).submitted, s0.submitted + 1);
	/* Zero invocations is fine and accepts nothing. */
	acc = 99;
	ASSERT_OK(gfn_invoke_many(E, invs, 0, fs, &acc));
	ASSERT_EQ(acc, 0);
	for (int i = 0; i < 2; i++) {
		test_drop(E, good[i]);
		test_drop(E, bad[i]);
	}
}

/* ----------------------------------------------------------------- futures */

static void check_bad_future(gfn_future f)
{
	gfn_object outs[GFN_MAX_OUTPUTS];
	size_t n;

	ASSERT_FAILS_ID(gfn_future_wait(E, f, 0));
	ASSERT_FAILS_ID(gfn_future_wait(E, f, -1));
	ASSERT_FAILS_ID(gfn_future_poll(E, f));
	ASSERT_FAILS_ID(gfn_future_outputs(E, f, outs, GFN_MAX_OUTPUTS, &n));
	ASSERT_FAILS_ID(gfn_future_cancel(E, f));
	ASSERT_FAILS_ID(gfn_future_release(E, f));
}

static void bad_future_ids(void)
{
	uint64_t rng = 0x77;

	check_bad_future(UNKNOWN_FUT);
	check_bad_future((gfn_future){0});
	check_bad_future(released_future());
	for (int i = 0; i < 50; i++)
		check_bad_future((gfn_future){test_rand(&rng)});
}

static void bad_outputs_cap(void)
{
	gfn_object in[2] = {vec(7), vec(7)};
	gfn_invocation inv = test_inv(VADD, 2, in, 0, NULL);
	gfn_object outs[1];
	gfn_future f;
	size_t n = 0;
	float c[7];

	ASSERT_OK(gfn_invoke(E, &inv, &f));
	ASSERT_OK(gfn_future_wait(E, f, -1));
	ASSERT_FAILS(gfn_future_outputs(E, f, outs, 0, &n), GFN_ERANGE);
	/* Nothing was moved by the refused calls: the next one works. */
	ASSERT_OK(gfn_future_outputs(E, f, outs, 1, &n));
	ASSERT_EQ(n, 1);
	test_read_f32(E, outs[0], c, 7);
	for (int i = 0; i < 7; i++)
		ASSERT_DBL_EQ(c[i], 2 * i);
	test_drop(E, outs[0]);
	ASSERT_OK(gfn_future_release(E, f));
	test_drop(E, in[0]);
	test_drop(E, in[1]);
}

static void bad_destroy_null(void)
{
	gfn_engine_destroy(NULL);
	gfn_engine_destroy(NULL);
}

/* ------------------------------------------------------------------- after */

static void still_works(void)
{
	gfn_stats s = test_stats(E);
	gfn_object x = vec(4);
	gfn_scalar rc = {.i64 = 0};
	gfn_invocation inv = test_inv(FIXED, 1, &x, 1, &rc);
	gfn_future f;
	gfn_object o;
	float y[4];

	test_vadd_roundtrip(E, VADD, 64);
	ASSERT_OK(gfn_invoke(E, &inv, &f));
	o = test_take_output(E, f);
	test_read_f32(E, o, y, 4);
	for (int i = 0; i < 4; i++)
		ASSERT_DBL_EQ(y[i], i);
	test_drop(E, o);
	ASSERT_OK(gfn_future_release(E, f));
	test_drop(E, x);
	/* Refused calls never became failed invocations. */
	ASSERT_EQ(s.failed, 0);
	ASSERT_EQ(s.canceled, 0);
	s = test_stats_idle(E);
	ASSERT_EQ(s.failed, 0);
	ASSERT_EQ(s.submitted, s.completed);
}

int main(void)
{
	printf("# test_badinput\n");
	E = test_engine();
	VADD = test_register_vadd(E, "vadd");
	FIXED = register_fixed(E);
	TEST_RUN(bad_null_engine);
	TEST_RUN(bad_null_out);
	TEST_RUN(bad_null_desc);
	TEST_RUN(bad_engine_config);
	TEST_RUN(bad_device_index);
	TEST_RUN(bad_object_unknown_id);
	TEST_RUN(bad_object_zero_id);
	TEST_RUN(bad_object_stale_id);
	TEST_RUN(bad_object_create);
	TEST_RUN(bad_write_past_end);
	TEST_RUN(bad_after_seal);
	TEST_RUN(bad_get_unsealed);
	TEST_RUN(bad_release_without_reference);
	TEST_RUN(bad_invoke_function_id);
	TEST_RUN(bad_invoke_inputs);
	TEST_RUN(bad_invoke_many_partial);
	TEST_RUN(bad_future_ids);
	TEST_RUN(bad_outputs_cap);
	TEST_RUN(bad_destroy_null);
	TEST_RUN(still_works);
	gfn_engine_destroy(E);
	return 0;
}
