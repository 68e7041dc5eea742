/*
 * A program outside the gfn tree, built against an installed gfn (by
 * tests/install/run-install-test.sh, once with pkg-config and once with
 * find_package). It prints the version, runs one trivial CPU function and
 * exits 0 only when the result is right.
 */
#include <gfn/gfn.h>

#include <stdio.h>
#include <string.h>

/* out[i] = in[i] + 1 */
static int add_one(const gfn_kernel_args *args, void *user)
{
	const int32_t *in = args->inputs[0].data;
	int32_t *out = args->outputs[0].data;
	int64_t n = args->inputs[0].shape[0];

	(void)user;
	for (int64_t i = 0; i < n; i++)
		out[i] = in[i] + 1;
	return 0;
}

static int fail(const char *what, gfn_status s)
{
	/* The detail is valid only until the next gfn call: print it first. */
	fprintf(stderr, "consumer: %s: %s", what, gfn_error_detail());
	fprintf(stderr, " (%s)\n", gfn_status_name(s));
	return 1;
}

static int run(gfn_engine *e)
{
	enum { N = 5 };
	const int32_t in[N] = {1, 2, 3, 4, 5};
	int64_t n = N;
	gfn_tensor_spec vec = {"v", GFN_I32, 1, {GFN_DIM_VAR(0)}};
	gfn_function_desc desc = {.name = "add_one",
	                          .n_inputs = 1,
	                          .inputs = &vec,
	                          .n_outputs = 1,
	                          .outputs = &vec,
	                          .cpu_fn = add_one};
	gfn_invocation inv = {0};
	gfn_object obj, res;
	gfn_object_view view;
	gfn_future fut;
	gfn_status s;
	size_t n_out = 0;
	int bad = 0;

	if ((s = gfn_function_register(e, &desc, &inv.fn)) != GFN_OK)
		return fail("gfn_function_register", s);
	if ((s = gfn_object_create(e, GFN_I32, 1, &n, &obj)) != GFN_OK)
		return fail("gfn_object_create", s);
	if ((s = gfn_object_write(e, obj, 0, in, sizeof in)) != GFN_OK)
		return fail("gfn_object_write", s);
	if ((s = gfn_object_seal(e, obj)) != GFN_OK)
		return fail("gfn_object_seal", s);
	inv.n_inputs = 1;
	inv.inputs = &obj;
	if ((s = gfn_invoke(e, &inv, &fut)) != GFN_OK)
		return fail("gfn_invoke", s);
	if ((s = gfn_future_wait(e, fut, -1)) != GFN_OK)
		return fail("gfn_future_wait", s);
	if ((s = gfn_future_outputs(e, fut, &res, 1, &n_out)) != GFN_OK)
		return fail("gfn_future_outputs", s);
	if ((s = gfn_object_get(e, res, &view)) != GFN_OK)
		return fail("gfn_object_get", s);
	if (n_out != 1 || view.size != sizeof in || view.dtype != GFN_I32) {
		fprintf(stderr, "consumer: n_out %zu, size %zu, dtype %s\n",
		        n_out, view.size, gfn_dtype_name(view.dtype));
		bad = 1;
	}
	for (int i = 0; !bad && i < N; i++) {
		int32_t got = ((const int32_t *)view.data)[i];
		if (got != in[i] + 1) {
			fprintf(stderr, "consumer: out[%d] = %d, want %d\n", i,
			        (int)got, (int)(in[i] + 1));
			bad = 1;
		}
	}
	gfn_object_release(e, res); /* the view's reference */
	gfn_object_release(e, res); /* the one gfn_future_outputs gave */
	gfn_future_release(e, fut);
	gfn_object_release(e, obj);
	return bad;
}

int main(void)
{
	gfn_config cfg;
	gfn_engine *e = NULL;
	gfn_status s;
	int rc;

	printf("gfn %s (header %d.%d.%d)\n", gfn_version_string(),
	       GFN_VERSION_MAJOR, GFN_VERSION_MINOR, GFN_VERSION_PATCH);
	if (gfn_version() != GFN_VERSION_HEX) {
		fprintf(stderr, "consumer: library %s is not header %#x\n",
		        gfn_version_string(), (unsigned)GFN_VERSION_HEX);
		return 1;
	}
	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	if ((s = gfn_engine_create(&cfg, &e)) != GFN_OK)
		return fail("gfn_engine_create", s);
	rc = run(e);
	gfn_engine_destroy(e);
	if (rc == 0)
		printf("consumer: ok\n");
	return rc;
}
