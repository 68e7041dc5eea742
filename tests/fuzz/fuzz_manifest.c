/*
 * fuzz_manifest - fuzz target for the model manifest parser
 * (kernels/model_graph.c, model_nodes.c), which reads model.json files
 * from anywhere: gfnd registers models named in its config and by request.
 *
 * The input is the text of a model.json. The weights file it names is
 * looked up in a directory made once per process, holding one file,
 * model.safetensors, with every tensor of the committed models digits,
 * cnn and embed (their names do not clash), so the committed manifests
 * build as they are and mutations can mix their tensors. A graph that
 * builds must be one the runner can trust: every node's tensors exist and
 * it writes a value. It is then run on 1 and 3 rows with inputs and
 * outputs of exactly the sizes its signature says, so ASan sees any read
 * or write past them. Anything else aborts (a finding).
 *
 * Built as a libFuzzer binary (fuzz_manifest, with clang) and as a plain
 * driver (fuzz_manifest_replay, with replay.c) that ctest runs over the
 * corpus in tests/fuzz/corpus/manifest/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/model.h"
#include "kernels/safetensors.h"

#ifndef GFN_MODELS_DIR
#define GFN_MODELS_DIR "tests/models"
#endif

#define MAX_RUN_FLOATS ((size_t)1 << 22) /* larger graphs are not run */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the weights directory ----------------------------------------------- */

static const char *const sources[] = {"digits", "cnn", "embed"};

static const char *dtype_tag(gfn_dtype dt)
{
	return dt == GFN_F32 ? "F32" : dt == GFN_F16 ? "F16" : "BF16";
}

/* Append the header entries of f (data placed from *at on) to hdr. */
static void add_header(char *hdr, size_t cap, const gfn_st_file *f, size_t *at,
                       int *first)
{
	for (size_t i = 0; i < f->n; i++) {
		const gfn_st_tensor *t = &f->tensors[i];
		size_t len = strlen(hdr);

		len += (size_t)snprintf(
		        hdr + len, cap - len,
		        "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
		        *first ? "" : ",", t->name, dtype_tag(t->dtype));
		for (int d = 0; d < t->ndim; d++)
			len += (size_t)snprintf(hdr + len, cap - len, "%s%lld",
			                        d ? "," : "",
			                        (long long)t->shape[d]);
		snprintf(hdr + len, cap - len, "],\"data_offsets\":[%zu,%zu]}",
		         *at, *at + t->nbytes);
		*at += t->nbytes;
		*first = 0;
	}
}

/* Write every tensor of files[] into one safetensors file at path. */
static int merge(const char *path, gfn_st_file *files, size_t n)
{
	static char hdr[1 << 16];
	size_t at = 0, hlen;
	uint64_t le;
	int first = 1;
	FILE *out = fopen(path, "wb");

	if (!out)
		return -1;
	strcpy(hdr, "{");
	for (size_t i = 0; i < n; i++)
		add_header(hdr, sizeof hdr, &files[i], &at, &first);
	strcat(hdr, "}");
	hlen = strlen(hdr);
	le = (uint64_t)hlen; /* the format is little-endian, as is x86 */
	fwrite(&le, 8, 1, out);
	fwrite(hdr, 1, hlen, out);
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < files[i].n; k++)
			fwrite(files[i].data + files[i].tensors[k].offset, 1,
			       files[i].tensors[k].nbytes, out);
	return fclose(out);
}

static char weights_dir[256];

static void remove_dir(void)
{
	char path[300];

	snprintf(path, sizeof path, "%s/model.safetensors", weights_dir);
	unlink(path);
	rmdir(weights_dir);
}

/* The directory, made on the first call; NULL when it cannot be. */
static const char *weights(void)
{
	gfn_st_file f[3];
	char path[4096];
	int rc = 0;

	if (weights_dir[0])
		return weights_dir;
	snprintf(weights_dir, sizeof weights_dir, "%s/gfn-fuzz-manifest-XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(weights_dir))
		abort(); /* a broken set-up, not a finding: say so loudly */
	atexit(remove_dir);
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s/model.safetensors",
		         GFN_MODELS_DIR, sources[i]);
		if (gfn__st_open(path, &f[i]) != GFN_OK)
			abort();
	}
	snprintf(path, sizeof path, "%s/model.safetensors", weights_dir);
	rc = merge(path, f, 3);
	for (size_t i = 0; i < 3; i++)
		gfn__st_close(&f[i]);
	if (rc != 0)
		abort();
	return weights_dir;
}

/* ---- checks on a graph that built ----------------------------------------- */

static void check_graph(const gfn_model *m)
{
	for (size_t i = 0; i < m->n_nodes; i++) {
		const gfn_mnode *n = &m->nodes[i];

		if (n->n_in < 1 || n->n_in > 3 || n->out < 0 ||
		    (size_t)n->out >= m->n_tensors ||
		    m->tensors[n->out].kind != GFN_MT_VALUE)
			abort();
		for (int k = 0; k < n->n_in; k++)
			if (n->in[k] < 0 || (size_t)n->in[k] >= m->n_tensors)
				abort();
	}
	if (m->n_inputs < 1 || m->n_outputs < 1)
		abort();
}

/* Elements of all inputs and outputs for rows rows; 0 when too many. */
static size_t io_floats(const gfn_model *m, size_t rows)
{
	size_t all = (m->arena_row + 1) * rows + m->scratch;

	for (size_t i = 0; i < m->n_inputs; i++)
		all += m->tensors[m->inputs[i]].numel * rows;
	for (size_t i = 0; i < m->n_outputs; i++)
		all += m->tensors[m->outputs[i]].numel * rows;
	return all <= MAX_RUN_FLOATS ? all : 0;
}

/* Run on rows rows, every buffer a malloc of its exact size. */
static void run(const gfn_model *m, size_t rows)
{
	const void *in[GFN_MAX_INPUTS] = {0};
	void *out[GFN_MAX_OUTPUTS] = {0};
	int rc;

	if (!io_floats(m, rows))
		return;
	for (size_t i = 0; i < m->n_inputs; i++) {
		size_t n = m->tensors[m->inputs[i]].numel * rows;
		float *f = malloc(n * 4 + 1);
		int32_t *ids = (int32_t *)f;

		for (size_t k = 0; f && k < n; k++) {
			if (m->tensors[m->inputs[i]].dtype == GFN_I32)
				ids[k] =
				        (int32_t)(k % 3); /* 2 may be too big */
			else
				f[k] = (float)(k % 13) / 13.0f - 0.5f;
		}
		in[i] = f;
	}
	for (size_t i = 0; i < m->n_outputs; i++)
		out[i] = malloc(m->tensors[m->outputs[i]].numel * rows * 4 + 1);
	rc = gfn__model_run(m, m->weights, rows, in, out);
	if (rc != 0 && rc != 1 && rc != 2)
		abort();
	for (size_t i = 0; i < m->n_inputs; i++)
		free((void *)in[i]);
	for (size_t i = 0; i < m->n_outputs; i++)
		free(out[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = weights();
	gfn_model m;
	char *text;

	if (size > GFN_MODEL_MAX_MANIFEST)
		return 0; /* refused before parsing by model.c */
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&m, 0, sizeof m);
	if (gfn__model_build(&m, text, dir) == GFN_OK) {
		check_graph(&m);
		run(&m, 1);
		run(&m, 3);
	}
	gfn__model_free(&m);
	free(text);
	return 0;
}
