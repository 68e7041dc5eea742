/*
 * test_registry - registering, finding and unregistering functions, and
 * signature validation.
 */
#include "test.h"

#include <pthread.h>

static void vadd_desc(gfn_function_desc *d, const char *name,
                      gfn_tensor_spec in[2], gfn_tensor_spec out[1])
{
	test_vadd_signature(in, out);
	memset(d, 0, sizeof *d);
	d->name = name;
	d->n_inputs = 2;
	d->inputs = in;
	d->n_outputs = 1;
	d->outputs = out;
	d->cpu_fn = test_vadd_kernel;
}

static void registry_register_find(void)
{
	gfn_engine *e = test_engine();
	gfn_function fn = test_register_vadd(e, "vadd");
	gfn_function other = test_register_vadd(e, "vadd2");
	gfn_function found = {0};

	ASSERT_NE(fn.id, other.id);
	ASSERT_OK(gfn_function_find(e, "vadd", &found));
	ASSERT_EQ(found.id, fn.id);
	ASSERT_OK(gfn_function_find(e, "vadd2", &found));
	ASSERT_EQ(found.id, other.id);
	ASSERT_FAILS(gfn_function_find(e, "vadd3", &found), GFN_ENOENT);
	ASSERT_FAILS(gfn_function_find(e, "VADD", &found), GFN_ENOENT);
	ASSERT_FAILS(gfn_function_find(e, "vad", &found), GFN_ENOENT);
	test_vadd_roundtrip(e, fn, 100);
	test_vadd_roundtrip(e, other, 1);
	test_vadd_roundtrip(e, other, 0); /* a size variable bound to 0 */
	gfn_engine_destroy(e);
}

static void registry_duplicate_name(void)
{
	gfn_engine *e = test_engine();
	gfn_function fn = test_register_vadd(e, "dup");
	struct test_gate gate;
	gfn_tensor_spec in[2], out[1];
	gfn_function_desc d;
	gfn_function got = {0}, found = {0};

	/* The same signature under the same name. */
	vadd_desc(&d, "dup", in, out);
	ASSERT_FAILS(gfn_function_register(e, &d, &got), GFN_EEXIST);
	/* A different signature under the same name is still a clash. */
	test_gate_init(&gate);
	test_gate_open(&gate);
	memset(&d, 0, sizeof d);
	d.name = "dup";
	d.cpu_fn = test_gate_kernel;
	d.user = &gate;
	ASSERT_FAILS(gfn_function_register(e, &d, &got), GFN_EEXIST);
	/* The first registration is untouched. */
	ASSERT_OK(gfn_function_find(e, "dup", &found));
	ASSERT_EQ(found.id, fn.id);
	test_vadd_roundtrip(e, fn, 10);
	ASSERT_EQ(atomic_load(&gate.entered), 0);
	gfn_engine_destroy(e);
}

static void registry_desc_copied(void)
{
	gfn_engine *e = test_engine();
	char name[64];
	gfn_tensor_spec in[2], out[1];
	gfn_function_desc d;
	gfn_function fn = {0}, found = {0};

	snprintf(name, sizeof name, "copied");
	vadd_desc(&d, name, in, out);
	ASSERT_OK(gfn_function_register(e, &d, &fn));
	/* Scribble over everything the descriptor pointed at. */
	snprintf(name, sizeof name, "scribbled");
	memset(in, 0xff, sizeof in);
	memset(out, 0xff, sizeof out);
	memset(&d, 0xff, sizeof d);
	ASSERT_OK(gfn_function_find(e, "copied", &found));
	ASSERT_EQ(found.id, fn.id);
	ASSERT_FAILS(gfn_function_find(e, "scribbled", &found), GFN_ENOENT);
	test_vadd_roundtrip(e, fn, 33);
	gfn_engine_destroy(e);
}

static void registry_unregister(void)
{
	gfn_engine *e = test_engine();
	gfn_function fn = test_register_vadd(e, "gone"), fn2, found;
	float a[4] = {1, 2, 3, 4};
	gfn_object in[2];
	gfn_invocation inv;
	gfn_future f = {0};
	gfn_stats s0;

	test_vadd_roundtrip(e, fn, 4);
	ASSERT_OK(gfn_function_unregister(e, fn));
	in[0] = test_make_f32_1d(e, a, 4);
	in[1] = test_make_f32_1d(e, a, 4);
	inv = test_inv(fn, 2, in, 0, NULL);
	s0 = test_stats(e);
	ASSERT_FAILS(gfn_invoke(e, &inv, &f), GFN_ESTALE);
	ASSERT_EQ(test_stats(e).submitted, s0.submitted);
	ASSERT_FAILS(gfn_function_find(e, "gone", &found), GFN_ENOENT);
	ASSERT_FAILS(gfn_function_unregister(e, fn), GFN_ESTALE);

	/* The name is free again; the new function has a new id. */
	fn2 = test_register_vadd(e, "gone");
	ASSERT_NE(fn2.id, fn.id);
	ASSERT_OK(gfn_function_find(e, "gone", &found));
	ASSERT_EQ(found.id, fn2.id);
	ASSERT_FAILS(gfn_invoke(e, &inv, &f), GFN_ESTALE);
	ASSERT_FAILS(gfn_function_unregister(e, fn), GFN_ESTALE);
	test_vadd_roundtrip(e, fn2, 4);
	test_drop(e, in[0]);
	test_drop(e, in[1]);
	gfn_engine_destroy(e);
}

/* -------------------------------------------------------------- signatures */

#define BAD_CASES 22

/*
 * Try to register a descriptor that is valid (vadd-shaped, one f64
 * parameter) except for one thing, chosen by which.
 */
static gfn_status register_bad(gfn_engine *e, int which, const char *name,
                               const char **what)
{
	gfn_tensor_spec in[GFN_MAX_INPUTS + 1], out[GFN_MAX_OUTPUTS + 1];
	gfn_param_spec params[GFN_MAX_PARAMS + 1];
	char long_name[65];
	gfn_function_desc d;
	gfn_function fn = {0};

	test_vadd_signature(in, out);
	for (int i = 2; i <= GFN_MAX_INPUTS; i++)
		in[i] = in[0];
	for (int i = 0; i <= GFN_MAX_OUTPUTS; i++)
		out[i] = out[0];
	for (int i = 0; i <= GFN_MAX_PARAMS; i++)
		params[i] = (gfn_param_spec){"p", GFN_PARAM_F64};
	memset(long_name, 'x', 64);
	long_name[64] = '\0';

	memset(&d, 0, sizeof d);
	d.name = name;
	d.n_inputs = 2;
	d.inputs = in;
	d.n_outputs = 1;
	d.outputs = out;
	d.n_params = 1;
	d.params = params;
	d.cpu_fn = test_vadd_kernel;

	switch (which) {
	case 0:
		*what = "input dtype INVALID";
		in[0].dtype = GFN_DTYPE_INVALID;
		break;
	case 1:
		*what = "input dtype 99";
		in[1].dtype = (gfn_dtype)99;
		break;
	case 2:
		*what = "output dtype INVALID";
		out[0].dtype = GFN_DTYPE_INVALID;
		break;
	case 3:
		*what = "input ndim > MAX_DIMS";
		in[0].ndim = GFN_MAX_DIMS + 1;
		break;
	case 4:
		*what = "input ndim < 0";
		in[0].ndim = -1;
		break;
	case 5:
		*what = "output ndim > MAX_DIMS";
		out[0].ndim = GFN_MAX_DIMS + 1;
		break;
	case 6:
		*what = "n_inputs > MAX_INPUTS";
		d.n_inputs = GFN_MAX_INPUTS + 1;
		break;
	case 7:
		*what = "n_outputs > MAX_OUTPUTS";
		d.n_outputs = GFN_MAX_OUTPUTS + 1;
		break;
	case 8:
		*what = "n_params > MAX_PARAMS";
		d.n_params = GFN_MAX_PARAMS + 1;
		break;
	case 9:
		*what = "output GFN_DIM_ANY";
		out[0].dims[0] = GFN_DIM_ANY;
		break;
	case 10:
		*what = "output unbound GFN_DIM_VAR(3)";
		out[0].dims[0] = GFN_DIM_VAR(3);
		break;
	case 11:
		*what = "GFN_DIM_VAR(GFN_MAX_DIM_VARS)";
		in[0].dims[0] = GFN_DIM_VAR(GFN_MAX_DIM_VARS);
		in[1].dims[0] = GFN_DIM_VAR(GFN_MAX_DIM_VARS);
		out[0].dims[0] = GFN_DIM_VAR(GFN_MAX_DIM_VARS);
		break;
	case 12:
		*what = "input extent -100";
		in[0].dims[0] = -100;
		break;
	case 13:
		*what = "name NULL";
		d.name = NULL;
		break;
	case 14:
		*what = "name empty";
		d.name = "";
		break;
	case 15:
		*what = "name 64 chars";
		d.name = long_name;
		break;
	case 16:
		*what = "param type 0";
		params[0].type = (gfn_param_type)0;
		break;
	case 17:
		*what = "param type 99";
		params[0].type = (gfn_param_type)99;
		break;
	case 18:
		*what = "inputs NULL";
		d.inputs = NULL;
		break;
	case 19:
		*what = "outputs NULL";
		d.outputs = NULL;
		break;
	case 20:
		*what = "params NULL";
		d.params = NULL;
		break;
	default:
		*what = "output 2-D with an unbound variable";
		out[0].ndim = 2;
		out[0].dims[1] = GFN_DIM_VAR(1);
		break;
	}
	return gfn_function_register(e, &d, &fn);
}

static void registry_signature_validation(void)
{
	gfn_engine *e = test_engine();
	gfn_function found;
	const char *what = "";
	gfn_status s;
	char name[32], det[512];

	/* The base descriptor is valid: prove it once. */
	{
		gfn_tensor_spec in[2], out[1];
		gfn_param_spec p = {"p", GFN_PARAM_F64};
		gfn_function_desc d;
		gfn_function fn;

		vadd_desc(&d, "base", in, out);
		d.n_params = 1;
		d.params = &p;
		ASSERT_OK(gfn_function_register(e, &d, &fn));
	}
	for (int i = 0; i < BAD_CASES; i++) {
		snprintf(name, sizeof name, "bad%d", i);
		s = register_bad(e, i, name, &what);
		test_copy_detail(det, sizeof det);
		if (s != GFN_EINVAL)
			test_fail(__FILE__, __LINE__,
			          "register with %s: expected GFN_EINVAL, got "
			          "%s (detail \"%s\")",
			          what, gfn_status_name(s), det);
		if (det[0] == '\0')
			test_fail(__FILE__, __LINE__,
			          "register with %s: empty detail", what);
		/* Nothing was registered under the name. */
		ASSERT_FAILS(gfn_function_find(e, name, &found), GFN_ENOENT);
	}
	gfn_engine_destroy(e);
}

/* ------------------------------------------------------------------ limits */

/*
 * "wide": 16 inputs x_j, 8 outputs y_k, 16 parameters (even ones f64, odd
 * ones i64), all vectors of one length n:
 *   y_k[i] = (k + 1) * sum_j x_j[i] + sum(params)
 */
static int wide_kernel(const gfn_kernel_args *a, void *user)
{
	double psum = 0;
	int64_t n;

	(void)user;
	if (a->n_inputs != GFN_MAX_INPUTS || a->n_outputs != GFN_MAX_OUTPUTS ||
	    a->n_params != GFN_MAX_PARAMS)
		return 1;
	n = a->inputs[0].shape[0];
	for (size_t p = 0; p < a->n_params; p++)
		psum += p % 2 ? (double)a->params[p].i64 : a->params[p].f64;
	for (size_t k = 0; k < a->n_outputs; k++) {
		float *y = a->outputs[k].data;

		if (a->outputs[k].shape[0] != n)
			return 2;
		for (int64_t i = 0; i < n; i++) {
			double s = 0;

			for (size_t j = 0; j < a->n_inputs; j++)
				s += ((const float *)a->inputs[j].data)[i];
			y[i] = (float)((double)(k + 1) * s + psum);
		}
	}
	return 0;
}

static void registry_limits_accepted(void)
{
	gfn_engine *e = test_engine();
	gfn_tensor_spec in[GFN_MAX_INPUTS], out[GFN_MAX_OUTPUTS], tmp[1];
	gfn_param_spec ps[GFN_MAX_PARAMS];
	gfn_scalar pv[GFN_MAX_PARAMS];
	gfn_object x[GFN_MAX_INPUTS], y[GFN_MAX_OUTPUTS];
	char name63[64];
	gfn_function_desc d;
	gfn_function fn, found;
	gfn_invocation inv;
	gfn_future f;
	size_t ny = 0;
	double psum = 0;
	enum { N = 5 };

	for (int j = 0; j < GFN_MAX_INPUTS; j += 2)
		test_vadd_signature(&in[j], tmp);
	for (int k = 0; k < GFN_MAX_OUTPUTS; k++)
		out[k] = tmp[0];
	for (int p = 0; p < GFN_MAX_PARAMS; p++) {
		ps[p] = (gfn_param_spec){NULL,
		                         p % 2 ? GFN_PARAM_I64 : GFN_PARAM_F64};
		if (p % 2) {
			pv[p].i64 = -3 * p;
			psum += (double)pv[p].i64;
		} else {
			pv[p].f64 = 0.5 * p;
			psum += pv[p].f64;
		}
	}
	memset(name63, 'w', 63);
	name63[63] = '\0';
	memset(&d, 0, sizeof d);
	d.name = name63;
	d.n_inputs = GFN_MAX_INPUTS;
	d.inputs = in;
	d.n_outputs = GFN_MAX_OUTPUTS;
	d.outputs = out;
	d.n_params = GFN_MAX_PARAMS;
	d.params = ps;
	d.cpu_fn = wide_kernel;
	ASSERT_OK(gfn_function_register(e, &d, &fn));
	ASSERT_OK(gfn_function_find(e, name63, &found));
	ASSERT_EQ(found.id, fn.id);

	for (int j = 0; j < GFN_MAX_INPUTS; j++) {
		float v[N];

		for (int i = 0; i < N; i++)
			v[i] = (float)(j * 10 + i);
		x[j] = test_make_f32_1d(e, v, N);
	}
	inv = test_inv(fn, GFN_MAX_INPUTS, x, GFN_MAX_PARAMS, pv);
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	ASSERT_OK(gfn_future_wait(e, f, -1));
	ASSERT_OK(gfn_future_outputs(e, f, y, GFN_MAX_OUTPUTS, &ny));
	ASSERT_EQ(ny, GFN_MAX_OUTPUTS);
	for (int k = 0; k < GFN_MAX_OUTPUTS; k++) {
		float got[N];

		test_read_f32(e, y[k], got, N);
		for (int i = 0; i < N; i++) {
			double s = 0;

			for (int j = 0; j < GFN_MAX_INPUTS; j++)
				s += j * 10 + i;
			ASSERT_DBL_EQ(got[i], (float)((k + 1) * s + psum));
		}
		test_drop(e, y[k]);
	}
	ASSERT_OK(gfn_future_release(e, f));
	for (int j = 0; j < GFN_MAX_INPUTS; j++)
		test_drop(e, x[j]);
	gfn_engine_destroy(e);
}

/*
 * "deep": input f32 of GFN_MAX_DIMS dimensions
 *   [2, ANY, VAR(1), 1, 1, 1, 1, VAR(1)]
 * output f32 [VAR(1), 2]; out[i] = i + number of input elements.
 * "scalar": f64 [] -> f64 [], doubled.
 */
static int deep_kernel(const gfn_kernel_args *a, void *user)
{
	int64_t n = a->outputs[0].shape[0] * a->outputs[0].shape[1];
	size_t in_n = a->inputs[0].nbytes / sizeof(float);
	float *y = a->outputs[0].data;

	(void)user;
	if (a->inputs[0].ndim != GFN_MAX_DIMS || a->outputs[0].ndim != 2)
		return 1;
	for (int64_t i = 0; i < n; i++)
		y[i] = (float)(i + (int64_t)in_n);
	return 0;
}

static int scalar_kernel(const gfn_kernel_args *a, void *user)
{
	(void)user;
	if (a->inputs[0].ndim != 0 || a->inputs[0].nbytes != sizeof(double))
		return 1;
	*(double *)a->outputs[0].data = 2 * *(const double *)a->inputs[0].data;
	return 0;
}

static void registry_shapes_accepted(void)
{
	gfn_engine *e = test_engine();
	gfn_tensor_spec in = {
	        "x",
	        GFN_F32,
	        GFN_MAX_DIMS,
	        {2, GFN_DIM_ANY, GFN_DIM_VAR(1), 1, 1, 1, 1, GFN_DIM_VAR(1)}};
	gfn_tensor_spec out = {"y", GFN_F32, 2, {GFN_DIM_VAR(1), 2}};
	gfn_tensor_spec sin = {"s", GFN_F64, 0, {0}};
	gfn_tensor_spec sout = {"t", GFN_F64, 0, {0}};
	int64_t good[GFN_MAX_DIMS] = {2, 3, 4, 1, 1, 1, 1, 4};
	int64_t bad_var[GFN_MAX_DIMS] = {2, 3, 4, 1, 1, 1, 1, 5};
	int64_t bad_fixed[GFN_MAX_DIMS] = {3, 3, 4, 1, 1, 1, 1, 4};
	static float data[3 * 3 * 4 * 5];
	gfn_function_desc d;
	gfn_function deep, scalar;
	gfn_object x, o;
	gfn_object_view v;
	gfn_invocation inv;
	gfn_future f;
	double sv = 21.25;

	memset(&d, 0, sizeof d);
	d.name = "deep";
	d.n_inputs = 1;
	d.inputs = &in;
	d.n_outputs = 1;
	d.outputs = &out;
	d.cpu_fn = deep_kernel;
	ASSERT_OK(gfn_function_register(e, &d, &deep));
	d.name = "scalar";
	d.inputs = &sin;
	d.outputs = &sout;
	d.cpu_fn = scalar_kernel;
	ASSERT_OK(gfn_function_register(e, &d, &scalar));

	x = test_make_f32(e, data, GFN_MAX_DIMS, good);
	inv = test_inv(deep, 1, &x, 0, NULL);
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	o = test_take_output(e, f);
	ASSERT_OK(gfn_object_get(e, o, &v));
	ASSERT_EQ(v.ndim, 2);
	ASSERT_EQ(v.shape[0], 4);
	ASSERT_EQ(v.shape[1], 2);
	ASSERT_EQ(v.size, 8 * sizeof(float));
	for (int i = 0; i < 8; i++)
		ASSERT_DBL_EQ(((const float *)v.data)[i], i + 96);
	ASSERT_OK(gfn_object_release(e, o));
	test_drop(e, o);
	ASSERT_OK(gfn_future_release(e, f));
	test_drop(e, x);

	x = test_make_f32(e, data, GFN_MAX_DIMS, bad_var);
	inv = test_inv(deep, 1, &x, 0, NULL);
	ASSERT_FAILS(gfn_invoke(e, &inv, &f), GFN_ESHAPE);
	test_drop(e, x);
	x = test_make_f32(e, data, GFN_MAX_DIMS, bad_fixed);
	inv = test_inv(deep, 1, &x, 0, NULL);
	ASSERT_FAILS(gfn_invoke(e, &inv, &f), GFN_ESHAPE);
	test_drop(e, x);

	x = test_make(e, GFN_F64, 0, good, &sv);
	inv = test_inv(scalar, 1, &x, 0, NULL);
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	o = test_take_output(e, f);
	ASSERT_OK(gfn_object_get(e, o, &v));
	ASSERT_EQ(v.ndim, 0);
	ASSERT_EQ(v.dtype, GFN_F64);
	ASSERT_EQ(v.size, sizeof(double));
	ASSERT_DBL_EQ(*(const double *)v.data, 42.5);
	ASSERT_OK(gfn_object_release(e, o));
	test_drop(e, o);
	ASSERT_OK(gfn_future_release(e, f));
	test_drop(e, x);
	gfn_engine_destroy(e);
}

/* --------------------------------------------------------------- in flight */

static void registry_unregister_in_flight(void)
{
	gfn_engine *e = test_engine_single();
	struct test_gate gate;
	struct test_cb_count cb;
	enum { K = 6, N = 64 };
	gfn_object in[K][2];
	gfn_future f[K];
	gfn_function fn, found;
	gfn_invocation inv;
	gfn_future late;

	test_gate_init(&gate);
	test_cb_count_init(&cb);
	fn = test_register_vadd_gated(e, "slow", &gate);
	for (int k = 0; k < K; k++) {
		float a[N], b[N];

		for (int i = 0; i < N; i++) {
			a[i] = (float)(k * 100 + i);
			b[i] = (float)(i * 3);
		}
		in[k][0] = test_make_f32_1d(e, a, N);
		in[k][1] = test_make_f32_1d(e, b, N);
		inv = test_inv(fn, 2, in[k], 0, NULL);
		inv.callback = test_count_cb;
		inv.callback_arg = &cb;
		ASSERT_OK(gfn_invoke(e, &inv, &f[k]));
	}
	test_gate_wait_entered(&gate, 1);
	ASSERT_OK(gfn_function_unregister(e, fn));
	inv = test_inv(fn, 2, in[0], 0, NULL);
	ASSERT_FAILS(gfn_invoke(e, &inv, &late), GFN_ESTALE);
	ASSERT_FAILS(gfn_function_find(e, "slow", &found), GFN_ENOENT);
	ASSERT_EQ(atomic_load(&cb.calls), 0);
	test_gate_open(&gate);

	for (int k = 0; k < K; k++) {
		gfn_object o = test_take_output(e, f[k]);
		float c[N];

		test_read_f32(e, o, c, N);
		for (int i = 0; i < N; i++)
			ASSERT_DBL_EQ(c[i], (float)(k * 100 + i + i * 3));
		test_drop(e, o);
		ASSERT_OK(gfn_future_release(e, f[k]));
		test_drop(e, in[k][0]);
		test_drop(e, in[k][1]);
	}
	test_cb_wait(&cb, K);
	ASSERT_EQ(atomic_load(&cb.ok), K);
	ASSERT_EQ(atomic_load(&gate.passed), K);
	gfn_engine_destroy(e);
	ASSERT_EQ(atomic_load(&cb.calls), K);
}

/* ----------------------------------------------------------------- threads */

#define RC_THREADS 4

struct rc_arg {
	gfn_engine *e;
	int t;                    /* thread index */
	size_t rounds;            /* register / unregister rounds */
	uint32_t *ids;            /* every id this thread was given */
	pthread_barrier_t *start; /* all threads race for one name */
	atomic_int *contested_ok; /* how many won it */
};

static void *rc_main(void *argp)
{
	struct rc_arg *a = argp;
	char name[32];
	gfn_tensor_spec in[2], out[1];
	gfn_function_desc d;
	gfn_function fn, found;
	gfn_status s;

	/* Everyone registers the same name at once: exactly one wins. */
	test_vadd_signature(in, out);
	memset(&d, 0, sizeof d);
	d.name = "contested";
	d.n_inputs = 2;
	d.inputs = in;
	d.n_outputs = 1;
	d.outputs = out;
	d.cpu_fn = test_vadd_kernel;
	pthread_barrier_wait(a->start);
	s = gfn_function_register(a->e, &d, &fn);
	if (s == GFN_OK)
		atomic_fetch_add(a->contested_ok, 1);
	else
		ASSERT_STATUS(s, GFN_EEXIST);

	for (size_t r = 0; r < a->rounds; r++) {
		snprintf(name, sizeof name, "t%d-r%zu", a->t, r);
		fn = test_register_vadd(a->e, name);
		a->ids[r] = fn.id;
		ASSERT_OK(gfn_function_find(a->e, name, &found));
		ASSERT_EQ(found.id, fn.id);
		if (r % 4 == 0)
			test_vadd_roundtrip(a->e, fn, 1 + r % 17);
		ASSERT_OK(gfn_function_unregister(a->e, fn));
		ASSERT_FAILS(gfn_function_find(a->e, name, &found), GFN_ENOENT);
	}
	return NULL;
}

static int cmp_u32(const void *pa, const void *pb)
{
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;

	return a < b ? -1 : a > b;
}

static void registry_concurrent(void)
{
	gfn_engine *e = test_engine();
	size_t rounds = test_scaled(400, 40);
	uint32_t *ids = calloc(RC_THREADS * rounds, sizeof *ids);
	struct rc_arg args[RC_THREADS];
	pthread_t th[RC_THREADS];
	gfn_function keep = test_register_vadd(e, "keep"), found;
	pthread_barrier_t start;
	atomic_int contested_ok;

	ASSERT_NOT_NULL(ids);
	atomic_init(&contested_ok, 0);
	ASSERT_EQ(pthread_barrier_init(&start, NULL, RC_THREADS), 0);
	for (int t = 0; t < RC_THREADS; t++) {
		args[t] = (struct rc_arg){
		        e, t, rounds, ids + t * rounds, &start, &contested_ok};
		ASSERT_EQ(pthread_create(&th[t], NULL, rc_main, &args[t]), 0);
	}
	/* Meanwhile a stable function keeps working. */
	for (int i = 0; i < 50; i++)
		test_vadd_roundtrip(e, keep, 8);
	for (int t = 0; t < RC_THREADS; t++)
		ASSERT_EQ(pthread_join(th[t], NULL), 0);
	pthread_barrier_destroy(&start);
	ASSERT_EQ(atomic_load(&contested_ok), 1);
	ASSERT_OK(gfn_function_find(e, "contested", &found));
	/* A function id is never handed out twice, even after unregister. */
	qsort(ids, RC_THREADS * rounds, sizeof *ids, cmp_u32);
	for (size_t i = 0; i < RC_THREADS * rounds; i++) {
		ASSERT_NE(ids[i], 0);
		ASSERT_NE(ids[i], keep.id);
		if (i > 0)
			ASSERT_NE(ids[i], ids[i - 1]);
	}
	free(ids);
	gfn_engine_destroy(e);
}

int main(void)
{
	printf("# test_registry\n");
	TEST_RUN(registry_register_find);
	TEST_RUN(registry_duplicate_name);
	TEST_RUN(registry_desc_copied);
	TEST_RUN(registry_unregister);
	TEST_RUN(registry_signature_validation);
	TEST_RUN(registry_limits_accepted);
	TEST_RUN(registry_shapes_accepted);
	TEST_RUN(registry_unregister_in_flight);
	TEST_RUN(registry_concurrent);
	return 0;
}
