/*
 * fuzz_safetensors - fuzz target for the safetensors reader
 * (kernels/safetensors.c), which parses weights files from anywhere.
 *
 * The input is a file image. Whatever parses must describe tensors that
 * lie inside the data section with sizes that match their shapes; every
 * tensor is then read as f32, so ASan sees any read past the image.
 * Anything else aborts (a finding).
 *
 * Built as a libFuzzer binary (fuzz_safetensors, with clang) and as a
 * plain driver (fuzz_safetensors_replay, with replay.c) that ctest runs
 * over the corpus in tests/fuzz/corpus/safetensors/.
 */
#include <stdint.h>
#include <stdlib.h>

#include "kernels/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const gfn_st_file *f, const gfn_st_tensor *t)
{
	size_t esize = t->dtype == GFN_F32 ? 4 : 2;
	float *dst;

	if (t->offset > f->data_size || t->nbytes > f->data_size - t->offset ||
	    t->nbytes != t->count * esize || t->ndim < 0 ||
	    t->ndim > GFN_MAX_DIMS)
		abort();
	dst = malloc(t->count * sizeof(float) + 1);
	if (!dst)
		return;
	gfn__st_read_f32(f, t, dst);
	free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gfn_st_file f;

	if (gfn__st_parse(data, size, &f) != GFN_OK)
		return 0;
	for (size_t i = 0; i < f.n; i++)
		check(&f, &f.tensors[i]);
	gfn__st_close(&f);
	return 0;
}
