/*
 * bench_model_wide.c - the "wide" model of gfn-bench model's 64-client
 * case: an MLP 1024 -> 4096 -> 4096 -> 10 (relu, relu, softmax) with
 * 84 MB of seeded random weights, written to a fresh directory at run
 * time (too large to commit).
 *
 * Why it is there: one row through it reads all 84 MB of weights (a
 * matrix-vector product is bound by memory), while 32 rows batched read
 * them once (a matrix-matrix product is bound by arithmetic). That is the
 * cost dynamic batching exists to share. The committed digits and CNN
 * models cost a few microseconds a row, less than an invocation's own
 * overhead on two cores, so batching cannot multiply their throughput.
 */
#include "bench.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WIDE_IN 1024
#define WIDE_HIDDEN 4096
#define WIDE_OUT 10

static const char manifest[] =
        "{\"format\": \"gfn-model/1\", \"weights\": \"model.safetensors\",\n"
        " \"inputs\": [{\"name\": \"x\", \"dtype\": \"f32\","
        " \"shape\": [\"batch\", 1024]}],\n"
        " \"outputs\": [\"probs\"],\n"
        " \"nodes\": [\n"
        "  {\"op\": \"matmul\", \"inputs\": [\"x\", \"w0\"], \"output\": "
        "\"m0\"},\n"
        "  {\"op\": \"bias_add\", \"inputs\": [\"m0\", \"b0\"], \"output\": "
        "\"z0\"},\n"
        "  {\"op\": \"relu\", \"inputs\": [\"z0\"], \"output\": \"a0\"},\n"
        "  {\"op\": \"matmul\", \"inputs\": [\"a0\", \"w1\"], \"output\": "
        "\"m1\"},\n"
        "  {\"op\": \"bias_add\", \"inputs\": [\"m1\", \"b1\"], \"output\": "
        "\"z1\"},\n"
        "  {\"op\": \"relu\", \"inputs\": [\"z1\"], \"output\": \"a1\"},\n"
        "  {\"op\": \"matmul\", \"inputs\": [\"a1\", \"w2\"], \"output\": "
        "\"m2\"},\n"
        "  {\"op\": \"bias_add\", \"inputs\": [\"m2\", \"b2\"], \"output\": "
        "\"z2\"},\n"
        "  {\"op\": \"softmax\", \"inputs\": [\"z2\"], \"output\": "
        "\"probs\"}]}\n";

typedef struct wtensor {
	const char *name;
	size_t rows, cols; /* cols 0: a vector of rows */
	float scale;       /* values uniform in [-scale, scale] */
} wtensor;

/* Scaled so that activations stay of order one through the layers. */
static const wtensor tensors[] = {
        {"w0", WIDE_IN, WIDE_HIDDEN, 0.05f},      {"b0", WIDE_HIDDEN, 0, 0.1f},
        {"w1", WIDE_HIDDEN, WIDE_HIDDEN, 0.025f}, {"b1", WIDE_HIDDEN, 0, 0.1f},
        {"w2", WIDE_HIDDEN, WIDE_OUT, 0.025f},    {"b2", WIDE_OUT, 0, 0.1f},
};

#define N_TENSORS (sizeof tensors / sizeof tensors[0])

static size_t numel(const wtensor *t)
{
	return t->rows * (t->cols ? t->cols : 1);
}

/* The safetensors header for tensors[], padded with spaces to 8 bytes. */
static size_t header(char *h, size_t cap)
{
	size_t off = 0, n = (size_t)snprintf(h, cap, "{");

	for (size_t i = 0; i < N_TENSORS && n < cap; i++) {
		const wtensor *t = &tensors[i];
		size_t bytes = numel(t) * sizeof(float);
		char shape[64];

		if (t->cols)
			snprintf(shape, sizeof shape, "%zu, %zu", t->rows,
			         t->cols);
		else
			snprintf(shape, sizeof shape, "%zu", t->rows);
		n += (size_t)snprintf(h + n, cap - n,
		                      "%s\"%s\": {\"dtype\": \"F32\", "
		                      "\"shape\": [%s], "
		                      "\"data_offsets\": [%zu, %zu]}",
		                      i ? ", " : "", t->name, shape, off,
		                      off + bytes);
		off += bytes;
	}
	n += (size_t)snprintf(h + n, cap > n ? cap - n : 0, "}");
	while (n % 8 && n + 1 < cap)
		h[n++] = ' ';
	h[n] = '\0';
	return n < cap ? n : 0;
}

/* xorshift64*: the same weights on every run. */
static float uniform(uint64_t *s, float scale)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return scale * ((float)((*s * 2685821657736338717ull) >> 40) /
	                        (float)(1u << 23) -
	                1.0f);
}

static int write_weights(FILE *fp)
{
	char h[2048];
	size_t hl = header(h, sizeof h);
	uint64_t s = 0x9e3779b97f4a7c15ull, len = hl;
	float buf[4096];

	if (!hl || fwrite(&len, 8, 1, fp) != 1 || fwrite(h, 1, hl, fp) != hl)
		return -1;
	for (size_t i = 0; i < N_TENSORS; i++)
		for (size_t left = numel(&tensors[i]); left;) {
			size_t k = left < 4096 ? left : 4096;

			for (size_t j = 0; j < k; j++)
				buf[j] = uniform(&s, tensors[i].scale);
			if (fwrite(buf, sizeof(float), k, fp) != k)
				return -1;
			left -= k;
		}
	return 0;
}

static int write_file(const char *dir, const char *name, int weights)
{
	char path[4200];
	FILE *fp;
	int rc;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	fp = fopen(path, "wb");
	if (!fp)
		return -1;
	rc = weights ? write_weights(fp) : fputs(manifest, fp) < 0 ? -1 : 0;
	return fclose(fp) == 0 ? rc : -1;
}

int bench_wide_make(char *dir, size_t cap)
{
	const char *tmp = getenv("TMPDIR");

	if ((size_t)snprintf(dir, cap, "%s/gfn-bench-wide-XXXXXX",
	                     tmp && *tmp ? tmp : "/tmp") >= cap ||
	    !mkdtemp(dir))
		return -1;
	if (write_file(dir, "model.json", 0) < 0 ||
	    write_file(dir, "model.safetensors", 1) < 0) {
		bench_wide_remove(dir);
		return -1;
	}
	return 0;
}

void bench_wide_remove(const char *dir)
{
	char path[4200];

	snprintf(path, sizeof path, "%s/model.json", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/model.safetensors", dir);
	unlink(path);
	rmdir(dir);
}

void bench_wide_rows(float *x, size_t rows)
{
	uint64_t s = 0x2545f4914f6cdd1dull;

	for (size_t i = 0; i < rows * WIDE_IN; i++)
		x[i] = uniform(&s, 1.0f);
}
