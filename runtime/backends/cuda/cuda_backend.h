/*
 * cuda_backend.h - the CUDA backend's calls beyond the ops table: CUDA
 * graphs, GEMM through cuBLAS, its pinned host memory as a hostmem
 * provider. For the engine's model functions and the ML ops, and for
 * tests. Internal: not API. Every call takes records made by
 * gfn_cuda_backend's ops (gfn_bdev, gfn_bqueue, gfn_bkernel, gfn_bmem).
 */
#ifndef GFN_CUDA_CUDA_BACKEND_H
#define GFN_CUDA_CUDA_BACKEND_H

#include <stddef.h>

#include "runtime/backend.h"
#include "runtime/hostmem.h"

/* Host ranges are registered with cuMemHostRegister in pieces of at most
   this many bytes (the driver refuses larger single registrations on
   some platforms, and a piece is pinned in one call that cannot be
   interrupted). */
#define GFN_CUDA_REGISTER_CHUNK ((size_t)64 << 30)

/* ---- CUDA graphs (graph.c) ------------------------------------------------- */

typedef struct gfn_cuda_graph gfn_cuda_graph;

/*
 * Start recording q: launches (and copies from registered memory)
 * enqueued on q until gfn_cuda_graph_end are captured, not run. A sync
 * of q, or a copy that would need staging, fails while recording. Only
 * the thread that owns q may record on it.
 */
gfn_status gfn_cuda_graph_begin(gfn_bqueue *q);

/*
 * Stop recording and make the captured work a launchable graph. On
 * GFN_OK the caller owns *out (gfn_cuda_graph_destroy). A launch that
 * failed while recording fails this call; q records nothing afterwards
 * either way.
 */
gfn_status gfn_cuda_graph_end(gfn_bqueue *q, gfn_cuda_graph **out);

/* Enqueue the whole graph on q (one driver call; async like launch).
   q may be any queue of the device the graph was recorded on. */
gfn_status gfn_cuda_graph_launch(gfn_bqueue *q, gfn_cuda_graph *g);

/* Free g; NULL is a no-op. Its launches must have finished. */
void gfn_cuda_graph_destroy(gfn_cuda_graph *g);

/* ---- cuBLAS (cublas.c) ---------------------------------------------------- */

/* The four cuBLAS entry points gfn uses, declared here rather than from
   cublas_v2.h (whose headers pull in the runtime API); their ABI has
   been stable since the _v2 interface of CUDA 4. */
typedef struct cublasContext *cublasHandle_t;
typedef int cublasStatus_t;    /* CUBLAS_STATUS_SUCCESS is 0 */
typedef int cublasOperation_t; /* CUBLAS_OP_N 0, CUBLAS_OP_T 1 */
struct CUstream_st;

#define GFN_CUBLAS_ENTRIES(X)                                                  \
	X(cublasCreate_v2)                                                     \
	X(cublasDestroy_v2)                                                    \
	X(cublasSetStream_v2)                                                  \
	X(cublasSgemm_v2)

typedef struct gfn_cublas_api {
	cublasStatus_t (*cublasCreate_v2)(cublasHandle_t *h); /* new handle */
	cublasStatus_t (*cublasDestroy_v2)(cublasHandle_t h); /* free it */
	cublasStatus_t (*cublasSetStream_v2)(cublasHandle_t h,
	                                     struct CUstream_st *s); /* bind */
	cublasStatus_t (*cublasSgemm_v2)(
	        cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
	        int m, int n, int k, const float *alpha, const float *a,
	        int lda, const float *b, int ldb, const float *beta, float *c,
	        int ldc); /* column-major GEMM, device pointers */
} gfn_cublas_api;

/* As gfn_cuda_api_get/_reset/_install (cuda_api.h), for libcublas.so
   (loaded on the first GEMM; versioned names .13, .12, .11 too). */
gfn_cublas_api *gfn_cublas_api_get(void);
void gfn_cublas_api_reset(void);
void gfn_cublas_api_install(const gfn_cublas_api *t);

/*
 * C = alpha * op(A) * op(B) + beta * C in single precision, all three
 * ROW-MAJOR as gfn's tensors are: op(A) is m x k, op(B) k x n, C m x n;
 * lda, ldb, ldc are row strides in elements; trans_a/b nonzero means
 * op(X) = X^T. Enqueued on q (asynchronous; sync q before reading C).
 * GFN_ENOTSUP where cuBLAS cannot be loaded, GFN_EINVAL for bad sizes.
 * The first call on a queue makes its cuBLAS handle (allocates).
 */
gfn_status gfn_cuda_sgemm(gfn_bqueue *q, int trans_a, int trans_b, int m, int n,
                          int k, float alpha, const gfn_bmem *a, int lda,
                          const gfn_bmem *b, int ldb, float beta,
                          const gfn_bmem *c, int ldc);

/* ---- pinned host memory (cuda.c) ------------------------------------------- */

/*
 * A hostmem provider whose slabs are cuMemHostAlloc(PORTABLE) memory of
 * dev's context, known to dev as registered (copies from it need no
 * staging). dev must outlive every pool made with it. The backend's own
 * staging pool is one of these.
 */
void gfn_cuda_host_provider(gfn_bdev *dev, gfn_hostmem_provider *out);

#endif /* GFN_CUDA_CUDA_BACKEND_H */
