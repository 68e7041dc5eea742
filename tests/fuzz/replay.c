/*
 * replay - runs the fuzz target over every file of the given corpus
 * directories (or files), without libFuzzer, so that ctest checks the
 * corpus on every build, sanitizers included. Exits 1 when it found no
 * input at all (a corpus that went missing is a failure, not a pass).
 *
 * "replay --make-seeds DIR" writes the hand-made seed inputs the corpus
 * started from: small segment images with valid headers.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/shm_segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f)
		return 0;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc(n > 0 ? (size_t)n : 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		exit(2);
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 1;
}

static int run_path(const char *path)
{
	struct stat sb;
	struct dirent *de;
	char full[4096];
	int n = 0;
	DIR *d;

	if (stat(path, &sb) || !S_ISDIR(sb.st_mode))
		return run_file(path);
	d = opendir(path);
	while (d && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(full, sizeof(full), "%s/%s", path, de->d_name);
		n += run_file(full);
	}
	if (d)
		closedir(d);
	return n;
}

/* ---- seeds ----------------------------------------------------------------- */

static void put(const char *dir, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n) {
		fprintf(stderr, "replay: cannot write %s\n", path);
		exit(2);
	}
	fclose(f);
}

/* A segment of len bytes with objects of the given sizes, one a block. */
static void seed(const char *dir, const char *name, size_t len, int n,
                 const uint64_t *sizes, int state)
{
	uint64_t *img = calloc(1, len);
	gfn_shm_seg_info si = {7, 3, len, GFN_SHM_GRANULE};
	uint64_t off = GFN_SHM_GRANULE;

	gfn__shm_seg_write(img, &si);
	for (int i = 0; i < n; i++) {
		gfn_shm_slot sl = {.id_hi = 0x1234567890abcdefull + (uint64_t)i,
		                   .id_lo = (uint64_t)(i + 1) << 32 |
		                            (uint64_t)i,
		                   .tenant = 3,
		                   .refs = (uint32_t)i,
		                   .state = (uint8_t)state,
		                   .dtype = GFN_U8,
		                   .ndim = 1,
		                   .shape = {(int64_t)sizes[i]},
		                   .size = sizes[i],
		                   .off = off,
		                   .block = gfn__shm_block_bytes(sizes[i])};

		gfn__shm_slot_write(img, &sl);
		off += sl.block;
	}
	put(dir, name, img, len);
	free(img);
}

static void make_seeds(const char *dir)
{
	static const uint64_t one[] = {100}, three[] = {1, 300, 0},
	                      full[] = {4096 - 3 * GFN_SHM_GRANULE};
	gfn_shm_seg_info si = {1, 1, 4096, GFN_SHM_GRANULE};
	uint64_t hdr[GFN_SHM_GRANULE / 8] = {0};

	seed(dir, "seed-one-open", 1024, 1, one, GFN_SHM_OPEN);
	seed(dir, "seed-three-sealed", 2048, 3, three, GFN_SHM_SEALED);
	seed(dir, "seed-full", 4096, 1, full, GFN_SHM_SEALED);
	seed(dir, "seed-empty", 512, 0, NULL, 0);
	gfn__shm_seg_write(hdr, &si);
	put(dir, "seed-header-only", hdr, sizeof(hdr));
	put(dir, "seed-short", "GFNSEG01", 8);
}

int main(int argc, char **argv)
{
	int n = 0;

	if (argc == 3 && !strcmp(argv[1], "--make-seeds")) {
		make_seeds(argv[2]);
		return 0;
	}
	for (int i = 1; i < argc; i++)
		n += run_path(argv[i]);
	printf("replay: %d inputs ran clean\n", n);
	return n ? 0 : 1;
}
