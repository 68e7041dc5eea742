/*
 * test_model.c - models as functions (gfn/gfn_model.h) on the CPU backend.
 *
 * The digits MLP that scikit-learn trained (scripts/export_digits.py made
 * the fixtures in tests/models/digits/): gfn's probabilities on the whole
 * held-out split are within 1e-5 of scikit-learn's predict_proba and the
 * accuracy is the same; one batched call equals row-by-row calls. Then
 * manifests and weights that must be refused, each with its status.
 */
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gfn/gfn_model.h>

#include "kernels/model.h"

#ifndef GFN_MODELS_DIR
#error "GFN_MODELS_DIR must name tests/models"
#endif

#define DIGITS GFN_MODELS_DIR "/digits"
#define NFEAT 64
#define NCLASS 10

/* A whole fixture file; *n is its size in elements of size each. */
static void *slurp(const char *path, size_t size, size_t *n)
{
	FILE *fp = fopen(path, "rb");
	long len;
	void *p;

	if (!fp)
		test_fail(__FILE__, __LINE__, "cannot open %s", path);
	ASSERT_EQ(fseek(fp, 0, SEEK_END), 0);
	len = ftell(fp);
	ASSERT_GT(len, 0);
	rewind(fp);
	p = malloc((size_t)len);
	ASSERT_NOT_NULL(p);
	ASSERT_EQ(fread(p, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	ASSERT_EQ((size_t)len % size, 0);
	*n = (size_t)len / size;
	return p;
}

static gfn_engine *cpu_engine(void)
{
	gfn_config cfg;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	cfg.workers_per_device = 2;
	cfg.kcache_dir = "";
	return test_engine_with(&cfg);
}

/* Run fn on rows x NFEAT floats; copy the rows x NCLASS output to out. */
static void classify(gfn_engine *e, gfn_function fn, const float *x,
                     size_t rows, float *out)
{
	int64_t shape[2] = {(int64_t)rows, NFEAT};
	gfn_invocation inv = {.fn = fn, .n_inputs = 1};
	gfn_object in, res;
	gfn_object_view v;
	gfn_future f;
	size_t n;

	ASSERT_OK(gfn_object_create(e, GFN_F32, 2, shape, &in));
	ASSERT_OK(gfn_object_write(e, in, 0, x, rows * NFEAT * sizeof *x));
	ASSERT_OK(gfn_object_seal(e, in));
	inv.inputs = &in;
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	ASSERT_OK(gfn_future_wait(e, f, -1));
	ASSERT_OK(gfn_future_outputs(e, f, &res, 1, &n));
	ASSERT_EQ(n, 1);
	ASSERT_OK(gfn_object_get(e, res, &v));
	ASSERT_EQ(v.ndim, 2);
	ASSERT_EQ(v.shape[0], (int64_t)rows);
	ASSERT_EQ(v.shape[1], NCLASS);
	memcpy(out, v.data, rows * NCLASS * sizeof *out);
	ASSERT_OK(gfn_object_release(e, res)); /* the get */
	test_drop(e, res); /* deleted: the store does not fill up */
	ASSERT_OK(gfn_future_release(e, f));
	test_drop(e, in);
}

static int argmax(const float *p, size_t n)
{
	size_t best = 0;

	for (size_t j = 1; j < n; j++)
		if (p[j] > p[best])
			best = j;
	return (int)best;
}

static void test_digits(void)
{
	size_t nx, ny, nref, correct = 0, ref_correct = 0;
	float *x = slurp(DIGITS "/test_x.f32", 4, &nx);
	int32_t *y = slurp(DIGITS "/test_y.i32", 4, &ny);
	float *ref = slurp(DIGITS "/ref_proba.f32", 4, &nref), *got,
	      one[NCLASS];
	gfn_engine *e = cpu_engine();
	gfn_function fn;
	double worst = 0.0;

	ASSERT_EQ(nx, ny * NFEAT);
	ASSERT_EQ(nref, ny * NCLASS);
	got = malloc(nref * sizeof *got);
	ASSERT_NOT_NULL(got);
	ASSERT_OK(gfn_function_register_model(e, DIGITS, "digits", &fn));
	classify(e, fn, x, ny, got);
	for (size_t i = 0; i < nref; i++)
		worst = fmax(worst, fabs((double)got[i] - ref[i]));
	for (size_t r = 0; r < ny; r++) {
		correct += argmax(got + r * NCLASS, NCLASS) == y[r];
		ref_correct += argmax(ref + r * NCLASS, NCLASS) == y[r];
	}
	printf("# digits: %zu rows, max |gfn - sklearn| = %.3g, accuracy "
	       "%.4f (sklearn %.4f)\n",
	       ny, worst, (double)correct / (double)ny,
	       (double)ref_correct / (double)ny);
	ASSERT_LE(worst, 1e-5);
	ASSERT_EQ(correct, ref_correct);
	/* One row at a time gives what the batch gave. */
	for (size_t r = 0; r < ny; r += 9) {
		classify(e, fn, x + r * NFEAT, 1, one);
		for (int j = 0; j < NCLASS; j++)
			ASSERT_LE(fabs(one[j] - got[r * NCLASS + j]), 1e-6);
	}
	ASSERT_FAILS(gfn_function_register_model(e, DIGITS, "digits", &fn),
	             GFN_EEXIST);
	ASSERT_OK(gfn_model_unregister(e, fn));
	ASSERT_FAILS(gfn_model_unregister(e, fn), GFN_ENOENT);
	gfn_engine_destroy(e);
	free(x);
	free(y);
	free(ref);
	free(got);
}

/* ---- small models against numpy ----------------------------------------- */

/* One fixture model: its input and two outputs, f32 and i32. */
typedef struct fixture {
	const char *dir;               /* under GFN_MODELS_DIR */
	gfn_dtype in_dtype;            /* of input.bin */
	int in_ndim;                   /* with the batch */
	int64_t in_shape[4];           /* [0] filled from the file */
	const char *out_f32, *out_i32; /* ref_<name>.bin files */
	size_t out_cols;               /* f32 output per row */
} fixture;

/* Outputs of one call on rows of in: out[0] f32, out[1] i32. */
static void run_model(gfn_engine *e, gfn_function fn, const fixture *fx,
                      const void *in, size_t rows, float *f32, int32_t *i32)
{
	int64_t shape[4];
	gfn_invocation inv = {.fn = fn, .n_inputs = 1};
	gfn_object obj, res[2];
	gfn_object_view v;
	gfn_future f;
	size_t n, row_bytes = 4;

	memcpy(shape, fx->in_shape, sizeof shape);
	shape[0] = (int64_t)rows;
	for (int i = 1; i < fx->in_ndim; i++)
		row_bytes *= (size_t)shape[i];
	ASSERT_OK(gfn_object_create(e, fx->in_dtype, fx->in_ndim, shape, &obj));
	ASSERT_OK(gfn_object_write(e, obj, 0, in, rows * row_bytes));
	ASSERT_OK(gfn_object_seal(e, obj));
	inv.inputs = &obj;
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	ASSERT_OK(gfn_future_wait(e, f, -1));
	ASSERT_OK(gfn_future_outputs(e, f, res, 2, &n));
	ASSERT_EQ(n, 2);
	ASSERT_OK(gfn_object_get(e, res[0], &v));
	ASSERT_EQ(v.size, rows * fx->out_cols * 4);
	memcpy(f32, v.data, v.size);
	ASSERT_OK(gfn_object_release(e, res[0]));
	ASSERT_OK(gfn_object_get(e, res[1], &v));
	ASSERT_EQ(v.size, rows * 4);
	memcpy(i32, v.data, v.size);
	ASSERT_OK(gfn_object_release(e, res[1]));
	for (int i = 0; i < 2; i++)
		ASSERT_OK(gfn_object_release(e, res[i]));
	ASSERT_OK(gfn_future_release(e, f));
	ASSERT_OK(gfn_object_release(e, obj));
}

static void check_fixture(const fixture *fx)
{
	char path[512];
	size_t nin, nf, ni, rows;
	void *in;
	float *ref_f, *got_f;
	int32_t *ref_i, *got_i;
	gfn_engine *e = cpu_engine();
	gfn_function fn;
	double worst = 0.0;

	snprintf(path, sizeof path, GFN_MODELS_DIR "/%s/input.bin", fx->dir);
	in = slurp(path, 4, &nin);
	snprintf(path, sizeof path, GFN_MODELS_DIR "/%s/ref_%s.bin", fx->dir,
	         fx->out_f32);
	ref_f = slurp(path, 4, &nf);
	snprintf(path, sizeof path, GFN_MODELS_DIR "/%s/ref_%s.bin", fx->dir,
	         fx->out_i32);
	ref_i = slurp(path, 4, &ni);
	rows = ni;
	ASSERT_EQ(nf, rows * fx->out_cols);
	got_f = malloc(nf * 4);
	got_i = malloc(ni * 4);
	ASSERT(got_f && got_i);
	snprintf(path, sizeof path, GFN_MODELS_DIR "/%s", fx->dir);
	ASSERT_OK(gfn_function_register_model(e, path, fx->dir, &fn));
	run_model(e, fn, fx, in, rows, got_f, got_i);
	for (size_t i = 0; i < nf; i++) {
		double d = fabs((double)got_f[i] - ref_f[i]);

		worst = fmax(worst, d);
		ASSERT_LE(d, 1e-5 + 1e-5 * fabs(ref_f[i]));
	}
	for (size_t i = 0; i < ni; i++)
		ASSERT_EQ(got_i[i], ref_i[i]);
	printf("# %s: %zu rows, max |gfn - numpy| = %.3g\n", fx->dir, rows,
	       worst);
	ASSERT_OK(gfn_model_unregister(e, fn));
	gfn_engine_destroy(e);
	free(in);
	free(ref_f);
	free(ref_i);
	free(got_f);
	free(got_i);
}

static void test_cnn(void)
{
	fixture fx = {"cnn", GFN_F32, 4, {0, 1, 8, 8}, "probs", "label", 10};

	check_fixture(&fx);
}

static void test_embed(void)
{
	fixture fx = {"embed", GFN_I32, 2, {0, 4}, "score", "best", 3};
	int32_t ids[4] = {0, 1, 16, 2}; /* 16 rows: 16 is out of range */
	int64_t shape[2] = {1, 4};
	gfn_invocation inv = {.n_inputs = 1};
	gfn_engine *e;
	gfn_object obj;
	gfn_future f;

	check_fixture(&fx);
	/* A bad id fails its invocation alone, with the kernel's code. */
	e = cpu_engine();
	ASSERT_OK(gfn_function_register_model(e, GFN_MODELS_DIR "/embed",
	                                      "embed", &inv.fn));
	ASSERT_OK(gfn_object_create(e, GFN_I32, 2, shape, &obj));
	ASSERT_OK(gfn_object_write(e, obj, 0, ids, sizeof ids));
	ASSERT_OK(gfn_object_seal(e, obj));
	inv.inputs = &obj;
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	ASSERT_FAILS(gfn_future_wait(e, f, -1), GFN_EKERNEL);
	ASSERT_OK(gfn_future_release(e, f));
	ASSERT_OK(gfn_object_release(e, obj));
	ASSERT_OK(gfn_model_unregister(e, inv.fn));
	gfn_engine_destroy(e);
}

/* ---- warm instances ------------------------------------------------------ */

/* Invoke fn on device dev with input in; its status (outputs dropped). */
static gfn_status invoke_on(gfn_engine *e, gfn_function fn, size_t dev,
                            gfn_object in)
{
	gfn_invocation inv = {.fn = fn, .n_inputs = 1, .inputs = &in};
	gfn_future f;
	gfn_status s;

	inv.devices = 1ull << dev;
	ASSERT_OK(gfn_invoke(e, &inv, &f));
	s = gfn_future_wait(e, f, -1);
	ASSERT_OK(gfn_future_release(e, f));
	return s;
}

static gfn_model_device_info dev_info(gfn_engine *e, gfn_function fn,
                                      size_t dev)
{
	gfn_model_device_info i;

	ASSERT_OK(gfn_model_get_device_info(e, fn, dev, &i));
	return i;
}

/* The warm list of dev must be want[0..n) in that order. */
static void expect_warm(gfn_engine *e, size_t dev, const gfn_function *want,
                        size_t n)
{
	gfn_function got[8];
	size_t k;

	ASSERT_OK(gfn_model_warm_list(e, dev, got, 8, &k));
	ASSERT_EQ(k, n);
	for (size_t i = 0; i < n; i++)
		ASSERT_EQ(got[i].id, want[i].id);
}

/*
 * Weights go to a device with the first invocation there and stay; under
 * a limit that holds two of the three models the least recently used
 * idle one is evicted; one that can never fit fails its invocation.
 */
static void test_warm(void)
{
	gfn_config cfg;
	gfn_engine *e;
	gfn_function dg, cnn, emb;
	gfn_object xd, xc, xe;
	int64_t sd[2] = {1, NFEAT}, sc[4] = {1, 1, 8, 8}, se[2] = {1, 4};
	int32_t ids[4] = {1, 2, 3, 4};
	float img[64] = {0};
	size_t big;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	cfg.cpu_devices = 2;
	cfg.kcache_dir = "";
	e = test_engine_with(&cfg);
	ASSERT_OK(gfn_function_register_model(e, DIGITS, "digits", &dg));
	ASSERT_OK(gfn_function_register_model(e, GFN_MODELS_DIR "/cnn", "cnn",
	                                      &cnn));
	ASSERT_OK(gfn_function_register_model(e, GFN_MODELS_DIR "/embed",
	                                      "embed", &emb));
	xd = test_make(e, GFN_F32, 2, sd, img);
	xc = test_make(e, GFN_F32, 4, sc, img);
	xe = test_make(e, GFN_I32, 2, se, ids);
	expect_warm(e, 0, NULL, 0);
	ASSERT_EQ(dev_info(e, dg, 0).warm, 0);
	/* First use on device 0 uploads; later ones share it. */
	for (int i = 0; i < 5; i++)
		ASSERT_OK(invoke_on(e, dg, 0, xd));
	ASSERT_EQ(dev_info(e, dg, 0).warm, 1);
	ASSERT_EQ(dev_info(e, dg, 0).uploads, 1);
	ASSERT_EQ(dev_info(e, dg, 0).users, 0);
	ASSERT_EQ(dev_info(e, dg, 1).warm, 0);
	ASSERT_OK(invoke_on(e, dg, 1, xd));
	ASSERT_EQ(dev_info(e, dg, 1).uploads, 1);
	/* Room for digits and cnn, not for all three. */
	big = dev_info(e, dg, 0).bytes + dev_info(e, cnn, 0).bytes + 500;
	ASSERT_GT(dev_info(e, emb, 0).bytes, 500);
	ASSERT_OK(gfn_model_set_warm_limit(e, big));
	ASSERT_OK(invoke_on(e, cnn, 0, xc));
	expect_warm(e, 0, (gfn_function[]){cnn, dg}, 2);
	ASSERT_OK(invoke_on(e, emb, 0, xe)); /* evicts digits: LRU */
	expect_warm(e, 0, (gfn_function[]){emb, cnn}, 2);
	ASSERT_EQ(dev_info(e, dg, 0).evictions, 1);
	ASSERT_EQ(dev_info(e, dg, 1).warm, 1); /* other devices keep theirs */
	ASSERT_OK(invoke_on(e, dg, 0, xd));    /* back, evicting cnn */
	expect_warm(e, 0, (gfn_function[]){dg, emb}, 2);
	ASSERT_EQ(dev_info(e, dg, 0).uploads, 2);
	ASSERT_EQ(dev_info(e, cnn, 0).evictions, 1);
	/* A limit below one model: its invocations fail, alone. */
	ASSERT_OK(gfn_model_set_warm_limit(e, 1000));
	ASSERT_FAILS(invoke_on(e, cnn, 0, xc), GFN_EKERNEL);
	ASSERT_OK(invoke_on(e, emb, 1, xe));
	ASSERT_OK(gfn_model_set_warm_limit(e, 0)); /* default again */
	ASSERT_OK(invoke_on(e, cnn, 0, xc));
	ASSERT_FAILS(gfn_model_get_device_info(e, (gfn_function){7}, 0,
	                                       &(gfn_model_device_info){0}),
	             GFN_ENOENT);
	for (int i = 0; i < 3; i++)
		test_drop(e, i == 0 ? xd : i == 1 ? xc : xe);
	ASSERT_OK(gfn_model_unregister(e, dg));
	ASSERT_OK(gfn_model_unregister(e, cnn));
	ASSERT_OK(gfn_model_unregister(e, emb));
	gfn_engine_destroy(e);
}

/* Many clients on two devices at once: every answer right, one upload
   per device (run under TSan by the sanitizer builds). */
static void test_warm_concurrent(void)
{
	gfn_config cfg;
	gfn_engine *e;
	gfn_function fn;
	size_t nx, ny, nref, n = test_scaled(400, 40);
	float *x = slurp(DIGITS "/test_x.f32", 4, &nx);
	int32_t *y = slurp(DIGITS "/test_y.i32", 4, &ny);
	float *ref = slurp(DIGITS "/ref_proba.f32", 4, &nref);
	gfn_future *f = calloc(n, sizeof *f);
	gfn_object *in = calloc(n, sizeof *in);
	int64_t shape[2] = {1, NFEAT};

	ASSERT(f && in);
	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	cfg.cpu_devices = 2;
	cfg.workers_per_device = 3;
	cfg.kcache_dir = "";
	e = test_engine_with(&cfg);
	ASSERT_OK(gfn_function_register_model(e, DIGITS, "digits", &fn));
	for (size_t i = 0; i < n; i++) {
		gfn_invocation inv = {.fn = fn, .n_inputs = 1};

		in[i] = test_make(e, GFN_F32, 2, shape, x + (i % ny) * NFEAT);
		inv.inputs = &in[i];
		ASSERT_OK(gfn_invoke(e, &inv, &f[i]));
	}
	for (size_t i = 0; i < n; i++) {
		gfn_object o;
		gfn_object_view v;
		size_t k;

		ASSERT_OK(gfn_future_wait(e, f[i], -1));
		ASSERT_OK(gfn_future_outputs(e, f[i], &o, 1, &k));
		ASSERT_OK(gfn_object_get(e, o, &v));
		for (int j = 0; j < NCLASS; j++)
			ASSERT_LE(fabs(((const float *)v.data)[j] -
			               ref[(i % ny) * NCLASS + j]),
			          1e-5);
		ASSERT_OK(gfn_object_release(e, o));
		test_drop(e, o);
		ASSERT_OK(gfn_future_release(e, f[i]));
		test_drop(e, in[i]);
	}
	for (size_t d = 0; d < 2; d++)
		ASSERT_LE(dev_info(e, fn, d).uploads, 1);
	ASSERT_OK(gfn_model_unregister(e, fn));
	gfn_engine_destroy(e);
	free(x);
	free(y);
	free(ref);
	free(f);
	free(in);
}

/* After warm-up a model's invocations take no host memory from the OS,
   compile nothing, copy no input on the host and upload no weights. */
static void test_hot(void)
{
	gfn_engine *e = cpu_engine();
	gfn_function fn;
	size_t nx, rounds = test_scaled(2000, 200);
	float *x = slurp(DIGITS "/test_x.f32", 4, &nx), out[4 * NCLASS];
	gfn_stats s0, s1;

	ASSERT_OK(gfn_function_register_model(e, DIGITS, "digits", &fn));
	for (size_t i = 0; i < 200; i++) /* every worker and row count */
		classify(e, fn, x + (i % 4) * NFEAT, 1 + i % 4, out);
	s0 = test_stats_idle(e);
	for (size_t i = 0; i < rounds; i++)
		classify(e, fn, x + (i % 4) * NFEAT, 1 + i % 4, out);
	s1 = test_stats_idle(e);
	ASSERT_U64_EQ(s1.host_allocs, s0.host_allocs);
	ASSERT_U64_EQ(s1.kernel_compiles, s0.kernel_compiles);
	ASSERT_U64_EQ(s1.context_creates, s0.context_creates);
	ASSERT_U64_EQ(s1.pinnings, s0.pinnings);
	ASSERT_U64_EQ(s1.input_copies, s0.input_copies);
	ASSERT_U64_EQ(s1.completed, s0.completed + rounds);
	ASSERT_EQ(dev_info(e, fn, 0).uploads, 1);
	ASSERT_OK(gfn_model_unregister(e, fn));
	gfn_engine_destroy(e);
	free(x);
}

/*
 * Fuzz-style: corrupted copies of the cnn manifest (bytes flipped, digits
 * swapped, cut short) are built against the real weights. Each must build
 * or fail with a detail; none may read out of bounds (ASan) or leak.
 */
static void test_manifest_corrupted(void)
{
	size_t len, iters = test_scaled(3000, 300);
	char *good = slurp(GFN_MODELS_DIR "/cnn/model.json", 1, &len);
	char *text = malloc(len + 1);
	uint64_t rng = 0x5eed;
	size_t built = 0;

	ASSERT_NOT_NULL(text);
	for (size_t it = 0; it < iters; it++) {
		size_t n = it % 5 == 0 ? test_rand(&rng) % (len + 1) : len;
		gfn_model m;

		memcpy(text, good, n);
		text[n] = '\0';
		for (int k = (int)(test_rand(&rng) % 3); k >= 0 && n; k--) {
			size_t at = test_rand(&rng) % n;

			text[at] = it % 2 ? (char)('0' + test_rand(&rng) % 10)
			                  : (char)(text[at] ^ (1 << (it % 7)));
			if (!text[at])
				text[at] = ' ';
		}
		memset(&m, 0, sizeof m);
		if (gfn__model_build(&m, text, GFN_MODELS_DIR "/cnn") == GFN_OK)
			built++;
		else
			ASSERT_NE(gfn_error_detail()[0], '\0');
		gfn__model_free(&m);
	}
	printf("# %zu of %zu corrupted manifests still built\n", built, iters);
	free(text);
	free(good);
}

/* ---- refused models ------------------------------------------------------ */

static char tmpdir[64];

static void write_file(const char *name, const void *p, size_t len)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	fp = fopen(path, "wb");
	ASSERT_NOT_NULL(fp);
	ASSERT_EQ(fwrite(p, 1, len, fp), len);
	fclose(fp);
}

static void remove_file(const char *name)
{
	char path[256];

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	unlink(path);
}

/* w [2,3] F32 and b [3] F32 in tmpdir/w.safetensors. */
static void write_weights(void)
{
	const char *h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],"
	                "\"data_offsets\":[0,24]},"
	                "\"b\":{\"dtype\":\"F32\",\"shape\":[3],"
	                "\"data_offsets\":[24,36]}}";
	unsigned char buf[512] = {0};
	size_t hl = strlen(h);

	buf[0] = (unsigned char)hl;
	memcpy(buf + 8, h, hl);
	write_file("w.safetensors", buf, 8 + hl + 36);
}

/* A manifest around the given nodes and outputs. */
static void manifest(const char *weights, const char *inputs, const char *nodes,
                     const char *outputs)
{
	char text[2048];

	snprintf(text, sizeof text,
	         "{\"format\":\"gfn-model/1\",\"weights\":\"%s\","
	         "\"inputs\":%s,\"nodes\":%s,\"outputs\":%s}",
	         weights, inputs, nodes, outputs);
	write_file("model.json", text, strlen(text));
}

#define IN2 "[{\"name\":\"x\",\"shape\":[\"batch\",2]}]"
#define MM "{\"op\":\"matmul\",\"inputs\":[\"x\",\"w\"],\"output\":\"y\"}"

static void refused(gfn_engine *e, gfn_status want)
{
	gfn_function fn;

	ASSERT_FAILS(gfn_function_register_model(e, tmpdir, "bad", &fn), want);
}

static void test_refused(void)
{
	gfn_engine *e = cpu_engine();
	gfn_function fn;

	snprintf(tmpdir, sizeof tmpdir, "/tmp/gfn-model-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(tmpdir));
	refused(e, GFN_ENOENT); /* no model.json */
	write_file("model.json", "{", 1);
	refused(e, GFN_EINVAL);
	manifest("w.safetensors", IN2, "[" MM "]", "[\"y\"]");
	refused(e, GFN_ENOENT); /* no weights yet */
	write_weights();
	ASSERT_OK(gfn_function_register_model(e, tmpdir, "good", &fn));
	ASSERT_OK(gfn_model_unregister(e, fn));
	manifest("../w.safetensors", IN2, "[" MM "]", "[\"y\"]");
	refused(e, GFN_EINVAL);
	manifest("w.safetensors", IN2, "[" MM "]", "[\"x\"]");
	refused(e, GFN_EINVAL); /* an input is not an output */
	manifest("w.safetensors", IN2, "[" MM "]", "[\"nope\"]");
	refused(e, GFN_EINVAL);
	manifest(
	        "w.safetensors", IN2,
	        "[{\"op\":\"frobnicate\",\"inputs\":[\"x\"],\"output\":\"y\"}]",
	        "[\"y\"]");
	refused(e, GFN_EINVAL);
	manifest("w.safetensors", "[{\"name\":\"x\",\"shape\":[\"batch\",3]}]",
	         "[" MM "]", "[\"y\"]");
	refused(e, GFN_EINVAL); /* K = 3 against w [2,3] */
	manifest("w.safetensors", "[{\"name\":\"x\",\"shape\":[2]}]",
	         "[" MM "]", "[\"y\"]");
	refused(e, GFN_EINVAL); /* no batch */
	manifest("w.safetensors", IN2,
	         "[" MM ",{\"op\":\"bias_add\",\"inputs\":[\"y\",\"w\"],"
	         "\"output\":\"z\"}]",
	         "[\"z\"]");
	refused(e, GFN_EINVAL); /* bias of 6 over 3 */
	manifest("w.safetensors", IN2,
	         "[" MM ",{\"op\":\"relu\",\"inputs\":[\"y\"],"
	         "\"output\":\"y\"}]",
	         "[\"y\"]");
	refused(e, GFN_EINVAL); /* y twice */
	manifest("w.safetensors", IN2,
	         "[{\"op\":\"maxpool2d\",\"inputs\":[\"x\"],\"kernel\":2,"
	         "\"output\":\"y\"}]",
	         "[\"y\"]");
	refused(e, GFN_EINVAL); /* not an image */
	write_file("w.safetensors", "\x02\0\0\0\0\0\0\0{}", 10);
	manifest("w.safetensors", IN2, "[" MM "]", "[\"y\"]");
	refused(e, GFN_EINVAL); /* w is not there */
	write_file("w.safetensors", "\xff\0\0\0\0\0\0\0{}", 10);
	refused(e, GFN_ERANGE); /* header length past the end */
	gfn_engine_destroy(e);
	remove_file("model.json");
	remove_file("w.safetensors");
	rmdir(tmpdir);
}

int main(void)
{
	TEST_RUN(test_digits);
	TEST_RUN(test_cnn);
	TEST_RUN(test_embed);
	TEST_RUN(test_warm);
	TEST_RUN(test_warm_concurrent);
	TEST_RUN(test_hot);
	TEST_RUN(test_manifest_corrupted);
	TEST_RUN(test_refused);
	return 0;
}
