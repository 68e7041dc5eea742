/*
 * model_ops.c - every op of the model graph format, each as a one-node
 * model made here with seeded random weights, run on every device given
 * and compared with the CPU device (model_ops.h). Shared by the OpenCL
 * suite (test_model_dev), the CUDA suites through the fake driver
 * (test_cuda_model_fake) and on a GPU (test_cuda_gpu).
 */
#include "model_ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gfn/gfn_model.h>

#include "test.h"

static gfn_engine *eng;      /* of the current check */
static size_t cpu_dev;       /* the reference device */
static const size_t *devs;   /* the devices checked against it */
static size_t ndev;          /* how many */
static const char *tmpdir;   /* one-op models are written here */
static uint64_t rng = 12345; /* weights and inputs */

/* ---- files ---------------------------------------------------------------- */

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

static float frand(float lo, float hi)
{
	return lo + (hi - lo) * (float)(test_rand(&rng) % 100001) / 100000.0f;
}

/* A weight: its name, shape and random values. */
typedef struct wt {
	const char *name;
	int ndim;
	int64_t shape[4];
} wt;

static size_t numel(int ndim, const int64_t *shape)
{
	size_t n = 1;

	for (int i = 0; i < ndim; i++)
		n *= (size_t)shape[i];
	return n;
}

/* tmpdir/w.safetensors with random f32 values for each weight. */
static void write_weights(const wt *w, int n)
{
	char header[1024] = "{", *p = header + 1;
	size_t off = 0, total = 0, hl;
	unsigned char *buf;

	for (int i = 0; i < n; i++) {
		size_t bytes = numel(w[i].ndim, w[i].shape) * 4;

		p += sprintf(p, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[",
		             i ? "," : "", w[i].name);
		for (int d = 0; d < w[i].ndim; d++)
			p += sprintf(p, "%s%lld", d ? "," : "",
			             (long long)w[i].shape[d]);
		p += sprintf(p, "],\"data_offsets\":[%zu,%zu]}", off,
		             off + bytes);
		off += bytes;
	}
	strcpy(p, "}");
	hl = strlen(header);
	total = 8 + hl + off;
	buf = calloc(1, total);
	ASSERT_NOT_NULL(buf);
	for (int b = 0; b < 8; b++)
		buf[b] = (unsigned char)(hl >> (8 * b));
	memcpy(buf + 8, header, hl);
	for (size_t i = 0; i < off / 4; i++) {
		float v = frand(-1.0f, 1.0f);

		memcpy(buf + 8 + hl + 4 * i, &v, 4);
	}
	write_file("w.safetensors", buf, total);
	free(buf);
}

/* ---- one-op models on every device vs the CPU ------------------------------ */

typedef struct opcase {
	const char *what;    /* for messages */
	const char *inputs;  /* manifest "inputs" */
	const char *node;    /* the one node, output "y" */
	wt w[3];             /* its weights */
	int nw;              /* how many */
	int in_ndim;         /* input rank with the batch */
	int64_t in_shape[5]; /* [0]: the batch, set per call */
	gfn_dtype in_dtype;  /* of the input */
	int32_t id_range;    /* i32 inputs: ids in 0..id_range-1 */
	gfn_dtype out_dtype; /* of y */
} opcase;

#define X(shape) "[{\"name\":\"x\",\"shape\":[\"batch\"," shape "]}]"
#define IDS "[{\"name\":\"x\",\"dtype\":\"i32\",\"shape\":[\"batch\",5]}]"
#define NODE(op, ins, attrs)                                                   \
	"{\"op\":\"" op "\",\"inputs\":[" ins "],\"output\":\"y\"" attrs "}"

static const opcase cases[] = {
        {"matmul",
         X("5"),
         NODE("matmul", "\"x\",\"w\"", ""),
         {{"w", 2, {5, 7}}},
         1,
         2,
         {0, 5},
         GFN_F32,
         0,
         GFN_F32},
        {"matmul transpose_b",
         X("3,5"),
         NODE("matmul", "\"x\",\"w\"", ",\"transpose_b\":true"),
         {{"w", 2, {7, 5}}},
         1,
         3,
         {0, 3, 5},
         GFN_F32,
         0,
         GFN_F32},
        {"bias_add last axis",
         X("6"),
         NODE("bias_add", "\"x\",\"b\"", ""),
         {{"b", 1, {6}}},
         1,
         2,
         {0, 6},
         GFN_F32,
         0,
         GFN_F32},
        {"bias_add channels",
         X("3,4,4"),
         NODE("bias_add", "\"x\",\"b\"", ",\"axis\":0"),
         {{"b", 1, {3}}},
         1,
         4,
         {0, 3, 4, 4},
         GFN_F32,
         0,
         GFN_F32},
        {"relu",
         X("33"),
         NODE("relu", "\"x\"", ""),
         {{0}},
         0,
         2,
         {0, 33},
         GFN_F32,
         0,
         GFN_F32},
        {"gelu",
         X("33"),
         NODE("gelu", "\"x\"", ""),
         {{0}},
         0,
         2,
         {0, 33},
         GFN_F32,
         0,
         GFN_F32},
        {"tanh",
         X("33"),
         NODE("tanh", "\"x\"", ""),
         {{0}},
         0,
         2,
         {0, 33},
         GFN_F32,
         0,
         GFN_F32},
        {"sigmoid",
         X("33"),
         NODE("sigmoid", "\"x\"", ""),
         {{0}},
         0,
         2,
         {0, 33},
         GFN_F32,
         0,
         GFN_F32},
        {"softmax",
         X("3,10"),
         NODE("softmax", "\"x\"", ""),
         {{0}},
         0,
         3,
         {0, 3, 10},
         GFN_F32,
         0,
         GFN_F32},
        {"layernorm",
         X("2,16"),
         NODE("layernorm", "\"x\",\"g\",\"b\"", ",\"eps\":0.001"),
         {{"g", 1, {16}}, {"b", 1, {16}}},
         2,
         3,
         {0, 2, 16},
         GFN_F32,
         0,
         GFN_F32},
        {"conv2d stride 2 pad 1 bias",
         X("2,7,6"),
         NODE("conv2d", "\"x\",\"w\",\"b\"", ",\"stride\":2,\"pad\":1"),
         {{"w", 4, {4, 2, 3, 3}}, {"b", 1, {4}}},
         2,
         4,
         {0, 2, 7, 6},
         GFN_F32,
         0,
         GFN_F32},
        {"conv2d no bias",
         X("3,5,5"),
         NODE("conv2d", "\"x\",\"w\"", ""),
         {{"w", 4, {2, 3, 2, 2}}},
         1,
         4,
         {0, 3, 5, 5},
         GFN_F32,
         0,
         GFN_F32},
        {"maxpool2d",
         X("2,7,6"),
         NODE("maxpool2d", "\"x\"", ",\"kernel\":3,\"stride\":2,\"pad\":1"),
         {{0}},
         0,
         4,
         {0, 2, 7, 6},
         GFN_F32,
         0,
         GFN_F32},
        {"avgpool2d",
         X("2,7,6"),
         NODE("avgpool2d", "\"x\"", ",\"kernel\":2,\"stride\":1,\"pad\":1"),
         {{0}},
         0,
         4,
         {0, 2, 7, 6},
         GFN_F32,
         0,
         GFN_F32},
        {"flatten",
         X("2,3,4"),
         NODE("flatten", "\"x\"", ""),
         {{0}},
         0,
         4,
         {0, 2, 3, 4},
         GFN_F32,
         0,
         GFN_F32},
        {"embedding",
         IDS,
         NODE("embedding", "\"x\",\"t\"", ""),
         {{"t", 2, {9, 4}}},
         1,
         2,
         {0, 5},
         GFN_I32,
         9,
         GFN_F32},
        {"argmax",
         X("2,11"),
         NODE("argmax", "\"x\"", ""),
         {{0}},
         0,
         3,
         {0, 2, 11},
         GFN_F32,
         0,
         GFN_I32},
};

/* Random input of rows rows for c. */
static gfn_object make_input(const opcase *c, size_t rows)
{
	int64_t shape[5];
	size_t n;
	gfn_object obj;
	void *p;

	memcpy(shape, c->in_shape, sizeof shape);
	shape[0] = (int64_t)rows;
	n = numel(c->in_ndim, shape);
	p = malloc(n * 4 + 4);
	ASSERT_NOT_NULL(p);
	for (size_t i = 0; i < n; i++)
		if (c->in_dtype == GFN_I32)
			((int32_t *)p)[i] = (int32_t)(test_rand(&rng) %
			                              (uint64_t)c->id_range);
		else
			((float *)p)[i] = frand(-2.0f, 2.0f);
	obj = test_make(eng, c->in_dtype, c->in_ndim, shape, p);
	free(p);
	return obj;
}

/* Run fn on device dev with in; its one output's bytes into out. */
static size_t run_on(gfn_function fn, size_t dev, gfn_object in, void *out,
                     size_t cap)
{
	gfn_invocation inv = {.fn = fn, .n_inputs = 1, .inputs = &in};
	gfn_object res;
	gfn_object_view v;
	gfn_future f;
	size_t n;

	inv.devices = 1ull << dev;
	ASSERT_OK(gfn_invoke(eng, &inv, &f));
	ASSERT_OK(gfn_future_wait(eng, f, -1));
	ASSERT_OK(gfn_future_outputs(eng, f, &res, 1, &n));
	ASSERT_OK(gfn_object_get(eng, res, &v));
	ASSERT_LE(v.size, cap);
	memcpy(out, v.data, v.size);
	n = v.size;
	ASSERT_OK(gfn_object_release(eng, res));
	test_drop(eng, res);
	ASSERT_OK(gfn_future_release(eng, f));
	return n;
}

static void compare(const opcase *c, const void *want, const void *got,
                    size_t bytes, size_t dev)
{
	double worst = 0.0;

	for (size_t i = 0; i < bytes / 4; i++) {
		if (c->out_dtype == GFN_I32) {
			if (((const int32_t *)got)[i] !=
			    ((const int32_t *)want)[i])
				test_fail(
				        __FILE__, __LINE__,
				        "%s on device %zu: element %zu is %d, "
				        "CPU %d",
				        c->what, dev, i,
				        ((const int32_t *)got)[i],
				        ((const int32_t *)want)[i]);
			continue;
		}
		double w = ((const float *)want)[i],
		       g = ((const float *)got)[i];
		double d = fabs(w - g);

		worst = fmax(worst, d);
		if (!(d <= 1e-5 + 1e-5 * fabs(w)))
			test_fail(__FILE__, __LINE__,
			          "%s on device %zu: element %zu is %.9g, CPU "
			          "%.9g",
			          c->what, dev, i, g, w);
	}
	printf("# %-28s device %zu: %zu values, max |device - cpu| %.3g\n",
	       c->what, dev, bytes / 4, worst);
}

static void one_op(const opcase *c)
{
	static const size_t rows[] = {1, 5, 37};
	char text[2048];
	gfn_function fn;
	size_t cap = 1 << 20;
	void *want = malloc(cap), *got = malloc(cap);

	ASSERT(want && got);
	write_weights(c->w, c->nw);
	snprintf(text, sizeof text,
	         "{\"format\":\"gfn-model/1\",\"weights\":\"w.safetensors\","
	         "\"inputs\":%s,\"nodes\":[%s],\"outputs\":[\"y\"]}",
	         c->inputs, c->node);
	write_file("model.json", text, strlen(text));
	ASSERT_OK(gfn_function_register_model(eng, tmpdir, "op", &fn));
	for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
		gfn_object in = make_input(c, rows[r]);
		size_t n = run_on(fn, cpu_dev, in, want, cap);

		ASSERT_GT(n, 0);
		for (size_t d = 0; d < ndev; d++) {
			memset(got, 0xff, cap);
			ASSERT_EQ(run_on(fn, devs[d], in, got, cap), n);
			compare(c, want, got, n, devs[d]);
		}
		test_drop(eng, in);
	}
	ASSERT_OK(gfn_model_unregister(eng, fn));
	free(want);
	free(got);
}

static void test_ops(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		one_op(&cases[i]);
}

size_t model_ops_run_on(gfn_engine *e, gfn_function fn, size_t dev,
                        gfn_object in, void *out, size_t cap)
{
	eng = e;
	return run_on(fn, dev, in, out, cap);
}

void model_ops_check_all(gfn_engine *e, size_t ref_dev, const size_t *devices,
                         size_t n)
{
	char dir[64] = "/tmp/gfn-model-ops-XXXXXX", cmd[128];

	ASSERT_NOT_NULL(mkdtemp(dir));
	eng = e;
	cpu_dev = ref_dev;
	devs = devices;
	ndev = n;
	tmpdir = dir;
	test_ops();
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ASSERT_EQ(system(cmd), 0);
	tmpdir = NULL;
}
