/*
 * cuda_int.h - what the files of the CUDA backend share: the device,
 * queue and kernel records and the helpers every driver call goes
 * through. Internal to runtime/backends/cuda/.
 */
#ifndef GFN_CUDA_CUDA_INT_H
#define GFN_CUDA_CUDA_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "runtime/backend.h"
#include "runtime/backends/cuda/cuda_api.h"
#include "runtime/backends/cuda/cuda_backend.h"
#include "runtime/hostmem.h"
#include "runtime/kcache.h"

#define CUDA_MAX_REGIONS 1024  /* registered host ranges per device */
#define CUDA_MAX_STAGED 64     /* staged copies in flight per queue */
#define CUDA_DEFAULT_BLOCK 256 /* threads per block when local is 0 */
#define CUDA_PINNED_LIMIT ((size_t)256 << 20) /* staging pool per device */

/* A registered (or pinned-allocated) host range. */
typedef struct cuda_region {
	const char *base; /* host address */
	size_t len;       /* bytes */
	int pinned_alloc; /* from cuMemHostAlloc: freed, not unregistered */
} cuda_region;

/* A loaded module, shared by the kernels made from the same bytes. */
typedef struct cuda_module {
	gfn_kkey key;             /* content key (image, or CUDA C build) */
	CUmodule mod;             /* the driver's module */
	unsigned refs;            /* kernels using it (device lock) */
	unsigned gen;             /* device generation it was loaded in */
	struct cuda_module *next; /* the device's list */
} cuda_module;

struct gfn_bdev {
	int idx;                /* CUDA device ordinal */
	CUdevice dev;           /* its handle */
	char name[128];         /* "cuda0:NVIDIA H200" */
	char arch[16];          /* "sm_90" */
	int cc_major, cc_minor; /* compute capability */
	int driver_version;     /* cuDriverGetVersion, e.g. 13000 */
	pthread_mutex_t lock;   /* guards retain/reset and mods */
	_Atomic(CUcontext) ctx; /* primary context; NULL until first use */
	_Atomic unsigned gen;   /* bumped by every reset */
	_Atomic int poisoned;   /* a sticky error was seen since reset */
	cuda_module *mods;      /* loaded modules */
	pthread_rwlock_t rlock; /* guards regions */
	cuda_region regions[CUDA_MAX_REGIONS]; /* sorted by base */
	int nregions;                          /* how many */
	gfn_hostmem *pinned;                   /* staging pool */
	int numa_node;                         /* where it lives, -1 any */
	_Atomic uint64_t staged;               /* bytes copied through it */
};

typedef struct cuda_staged {
	void *p;  /* pinned block */
	size_t n; /* its size */
} cuda_staged;

struct gfn_bqueue {
	gfn_bdev *dev;                       /* owner */
	CUstream stream;                     /* NULL until first use */
	CUevent done;                        /* recorded at each sync; NULL
	                                        without event entry points */
	unsigned gen;                        /* device generation of stream */
	cuda_staged staged[CUDA_MAX_STAGED]; /* freed at the next sync */
	int nstaged;                         /* how many */
	void *blas;                          /* cuBLAS handle (cublas.c) */
	int capturing;                       /* inside a graph capture */
};

struct gfn_bkernel {
	cuda_module *mod; /* module holding it */
	CUfunction fn;    /* the kernel */
	unsigned block;   /* threads per block when local is 0 */
	unsigned gen;     /* device generation it was loaded in */
	char name[64];    /* entry name, for messages */
};

/* The driver table (cuda_api.h); set by probe before any device use. */
static inline gfn_cuda_api *gfn__cu(void)
{
	return gfn_cuda_api_get();
}

/* Nonzero for the errors after which the context is unusable. */
int gfn__cuda_sticky(CUresult r);

/*
 * Translate r from call into a status with a detail naming the device,
 * the call and the driver's error name and text. A sticky error marks d
 * poisoned (d may be NULL). OUT_OF_MEMORY is GFN_ENOMEM, INVALID_VALUE
 * GFN_EINVAL, image and PTX errors GFN_EKERNEL, the rest GFN_EDEVICE.
 */
gfn_status gfn__cuda_fail(gfn_bdev *d, CUresult r, const char *call);

/*
 * Make d's primary context current on this thread, retaining it first
 * when this is the device's first use. GFN_EDEVICE at once when d is
 * poisoned: every call would fail until the engine resets it.
 */
gfn_status gfn__cuda_enter(gfn_bdev *d);

/* Make d's context current if it has one (release paths, which must
   work on a poisoned device too). */
void gfn__cuda_current(gfn_bdev *d);

/* gfn__cuda_enter, then create q's stream if it has none yet (or its
   stream died with a reset). */
gfn_status gfn__cuda_stream(gfn_bqueue *q);

/*
 * Compile CUDA C with NVRTC for d (nvrtc.c): a cubin for d's
 * architecture where NVRTC supports it, else PTX for the newest
 * architecture it supports below it. On GFN_OK *bin (malloc'd, the
 * caller frees it) holds the image and *len its size (PTX with its NUL).
 * Compile errors: GFN_EKERNEL with the start of the log.
 */
gfn_status gfn__cuda_nvrtc_build(const gfn_bdev *d, const char *src, size_t len,
                                 const char *options, void **bin, size_t *blen);

/* Destroy q's cuBLAS handle, if any (cublas.c). */
void gfn__cuda_blas_release(gfn_bqueue *q);

/* Whether [p, p+n) lies in a registered or pinned range of d. */
int gfn__cuda_is_registered(gfn_bdev *d, const void *p, size_t n);

#endif /* GFN_CUDA_CUDA_INT_H */
