/*
 * fuzz_slot_header - fuzz target for the parsers of the headers in a
 * shared-memory segment (engine/shm_segment.c), which read memory that
 * client processes can write.
 *
 * The input is a segment image. The target parses its segment header,
 * walks its blocks from the first one as a reader would (each slot header
 * says how long its block is), and parses a slot header at an offset the
 * input's last 8 bytes choose. Whatever parses must describe a block
 * inside the image, and must come back the same after being written out
 * again with gfn__shm_slot_write; anything else aborts (a finding).
 *
 * Built as a libFuzzer binary (fuzz_slot_header, with clang) and as a
 * plain driver (fuzz_slot_header_replay, replay.c) that ctest runs over
 * the corpus in tests/fuzz/corpus/slot_header/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/shm_segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A header that parsed holds together, and writes out the same. */
static void check_slot(const gfn_shm_slot *sl, size_t len, uint64_t off)
{
	gfn_shm_slot again;
	uint64_t *img;

	if (sl->off != off || sl->block < GFN_SHM_GRANULE ||
	    sl->block > len - off || sl->size > sl->block - GFN_SHM_GRANULE ||
	    sl->ndim > GFN_MAX_DIMS || sl->block % GFN_SHM_GRANULE)
		abort();
	img = calloc(1, (size_t)(off + sl->block));
	if (!img)
		return;
	gfn__shm_slot_write(img, sl);
	if (gfn__shm_slot_parse(img, (size_t)(off + sl->block), off, &again) !=
	            GFN_OK ||
	    !gfn__shm_slot_same(sl, &again) || sl->refs != again.refs)
		abort();
	free(img);
}

/* Walk the blocks from the first, as far as they parse. */
static void walk(const void *seg, size_t len, uint64_t first)
{
	gfn_shm_slot sl;
	uint64_t off = first;

	for (size_t steps = 0; off < len && steps <= len / GFN_SHM_GRANULE;
	     steps++) {
		if (gfn__shm_slot_parse(seg, len, off, &sl) != GFN_OK)
			return;
		check_slot(&sl, len, off);
		off += sl.block;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gfn_shm_seg_info info;
	gfn_shm_slot sl;
	uint64_t pick = 0;
	void *seg;

	if (size >= sizeof(pick))
		memcpy(&pick, data + size - sizeof(pick), sizeof(pick));
	/* The parsers want the alignment of a mapping. */
	seg = aligned_alloc(64, (size + 63) / 64 * 64 + 64);
	if (!seg)
		return 0;
	memcpy(seg, data, size);
	if (gfn__shm_seg_parse(seg, size, &info) == GFN_OK) {
		if (info.size != size || info.data_off != GFN_SHM_GRANULE)
			abort();
		walk(seg, size, info.data_off);
	} else {
		walk(seg, size, GFN_SHM_GRANULE);
	}
	if (gfn__shm_slot_parse(seg, size, pick, &sl) == GFN_OK)
		check_slot(&sl, size, pick);
	if (size && gfn__shm_slot_parse(seg, size, pick % size & ~127ull,
	                                &sl) == GFN_OK)
		check_slot(&sl, size, pick % size & ~127ull);
	free(seg);
	return 0;
}
