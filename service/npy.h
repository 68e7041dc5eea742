/*
 * npy.h - NumPy .npy files (format 1.0 to 3.0), C order, little-endian:
 * what `gfn invoke` and `gfn put/get` read and write.
 */
#ifndef GFN_SERVICE_NPY_H
#define GFN_SERVICE_NPY_H

#include <gfn/gfn.h>

#include <stddef.h>

typedef struct npy_array {
	gfn_dtype dtype;             /* element type */
	int ndim;                    /* dimensions */
	int64_t shape[GFN_MAX_DIMS]; /* extents */
	void *data;                  /* nbytes bytes, malloc'ed */
	size_t nbytes;               /* product(shape) * dtype size */
} npy_array;

/* Read path into *a (the caller frees a->data). -1 with err (256). */
int npy_read(const char *path, npy_array *a, char *err);
/* Write a as path (format 1.0). -1 with err (256). */
int npy_write(const char *path, const npy_array *a, char *err);

#endif /* GFN_SERVICE_NPY_H */
