/*
 * safetensors.h - a bounds-checked reader of safetensors files.
 * Internal: not API.
 *
 * The format: an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...,
 * optional "__metadata__"}), then the data section that the offsets index.
 * A weights file may come from anywhere, so every length, offset and shape
 * is checked before anything is read through it: the header length against
 * a limit and the file size, each shape's element count and byte size
 * against overflow and against its offsets, the offsets against the data
 * section, and tensors against each other (no overlap, no duplicate name).
 * Only F32, F16 and BF16 tensors are accepted; they are read as f32.
 */
#ifndef GFN_KERNELS_SAFETENSORS_H
#define GFN_KERNELS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "gfn/gfn.h"

/* Largest JSON header accepted: ample for thousands of tensors, and a
   forged length cannot make the reader take gigabytes. */
#define GFN_ST_MAX_HEADER ((uint64_t)16 << 20)
/* Longest tensor name accepted, in bytes. */
#define GFN_ST_MAX_NAME 255

typedef struct gfn_st_tensor {
	char *name;                  /* NUL-terminated; owned by the file */
	gfn_dtype dtype;             /* GFN_F32, GFN_F16 or GFN_BF16 */
	int ndim;                    /* 0 .. GFN_MAX_DIMS */
	int64_t shape[GFN_MAX_DIMS]; /* extents, each >= 0 */
	size_t count;                /* elements: product of shape */
	size_t offset;               /* first byte within the data section */
	size_t nbytes;               /* count * element size */
} gfn_st_tensor;

typedef struct gfn_st_file {
	unsigned char *owned;      /* the file's bytes when read by open */
	const unsigned char *data; /* the data section */
	size_t data_size;          /* its bytes */
	size_t n;                  /* tensors */
	gfn_st_tensor *tensors;    /* n of them, in header order */
} gfn_st_file;

/*
 * Parse a safetensors image of len bytes at buf. The file borrows buf (it
 * must outlive the file). On success *f holds the tensor list (free it
 * with gfn__st_close); on failure *f is empty and the detail says what is
 * wrong: GFN_EINVAL for a malformed file, GFN_ERANGE for a length or
 * offset out of bounds, GFN_ENOTSUP for a dtype other than F32/F16/BF16,
 * GFN_ENOMEM.
 */
gfn_status gfn__st_parse(const void *buf, size_t len, gfn_st_file *f);

/* Read the file at path and parse it; the file owns the bytes. GFN_ENOENT
   when it cannot be opened, GFN_ESYS when it cannot be read. */
gfn_status gfn__st_open(const char *path, gfn_st_file *f);

/* Free what parse or open took; an empty or zeroed file is fine. */
void gfn__st_close(gfn_st_file *f);

/* The tensor called name, or NULL. */
const gfn_st_tensor *gfn__st_find(const gfn_st_file *f, const char *name);

/* Convert t's elements to f32 into dst (t->count floats). */
void gfn__st_read_f32(const gfn_st_file *f, const gfn_st_tensor *t, float *dst);

/* IEEE half and bfloat16 bit patterns to float (exact). */
float gfn__f16_to_f32(uint16_t h);
float gfn__bf16_to_f32(uint16_t b);

#endif /* GFN_KERNELS_SAFETENSORS_H */
