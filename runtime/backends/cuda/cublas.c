/*
 * cublas.c - GEMM through cuBLAS, loaded with dlopen on the first call
 * (gfn_cublas_api, cuda_backend.h), so neither the library nor its
 * ~700 MiB of kernels is needed or mapped by a process that never
 * multiplies matrices on a GPU.
 *
 * A cuBLAS handle is not safe to use from two threads at once, and is
 * bound to one stream: each queue (one per worker) gets its own, made on
 * its first GEMM and destroyed with the queue.
 */
#include <pthread.h>
#include <string.h>

#include "runtime/backends/cuda/cuda_int.h"
#include "runtime/util.h"

#define STR_(x) #x
#define STR(x) STR_(x)

static const char *const blas_names[] = {"libcublas.so", "libcublas.so.13",
                                         "libcublas.so.12", "libcublas.so.11",
                                         NULL};

static const char *const blas_syms[] = {
#define SYM_(name) STR(name),
        GFN_CUBLAS_ENTRIES(SYM_)
#undef SYM_
};

#define BLAS_N ((int)(sizeof(blas_syms) / sizeof(blas_syms[0])))
_Static_assert(sizeof(gfn_cublas_api) == BLAS_N * sizeof(void *),
               "gfn_cublas_api is one pointer per entry point");

static gfn_cublas_api blas_table; /* the live table */
static void *blas_lib;            /* dlopen handle or NULL; kept */
static _Atomic int blas_loaded;   /* blas_table has been filled */
static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER; /* loading */

gfn_cublas_api *gfn_cublas_api_get(void)
{
	void *ptrs[BLAS_N];

	if (atomic_load_explicit(&blas_loaded, memory_order_acquire))
		return &blas_table;
	pthread_mutex_lock(&blas_lock);
	if (!atomic_load_explicit(&blas_loaded, memory_order_relaxed)) {
		gfn__cuda_dlopen_table(blas_names, blas_syms, ptrs, BLAS_N,
		                       &blas_lib);
		memcpy(&blas_table, ptrs, sizeof(blas_table));
		atomic_store_explicit(&blas_loaded, 1, memory_order_release);
	}
	pthread_mutex_unlock(&blas_lock);
	return &blas_table;
}

void gfn_cublas_api_reset(void)
{
	pthread_mutex_lock(&blas_lock);
	memset(&blas_table, 0, sizeof(blas_table));
	atomic_store_explicit(&blas_loaded, 0, memory_order_release);
	pthread_mutex_unlock(&blas_lock);
}

void gfn_cublas_api_install(const gfn_cublas_api *t)
{
	pthread_mutex_lock(&blas_lock);
	blas_table = *t;
	atomic_store_explicit(&blas_loaded, 1, memory_order_release);
	pthread_mutex_unlock(&blas_lock);
}

static int blas_usable(const gfn_cublas_api *b)
{
	return b->cublasCreate_v2 && b->cublasDestroy_v2 &&
	       b->cublasSetStream_v2 && b->cublasSgemm_v2;
}

static gfn_status blas_fail(const gfn_bqueue *q, cublasStatus_t st,
                            const char *call)
{
	/* 3 is CUBLAS_STATUS_ALLOC_FAILED; the rest are bad arguments
	   (7, INVALID_VALUE), a missing architecture or a device fault. */
	return gfn__fail(st == 3   ? GFN_ENOMEM
	                 : st == 7 ? GFN_EINVAL
	                           : GFN_EDEVICE,
	                 "%s: %s: cuBLAS status %d", q->dev->name, call,
	                 (int)st);
}

/* q's handle, made and bound to its stream on first use. */
static gfn_status blas_handle(gfn_bqueue *q, gfn_cublas_api *b)
{
	cublasStatus_t st;
	gfn_status s = gfn__cuda_stream(q); /* may drop a stale handle */

	if (s != GFN_OK || q->blas)
		return s;
	st = b->cublasCreate_v2((cublasHandle_t *)&q->blas);
	if (st != 0) {
		q->blas = NULL;
		return blas_fail(q, st, "cublasCreate");
	}
	st = b->cublasSetStream_v2(q->blas, q->stream);
	if (st != 0) {
		b->cublasDestroy_v2(q->blas);
		q->blas = NULL;
		return blas_fail(q, st, "cublasSetStream");
	}
	return GFN_OK;
}

void gfn__cuda_blas_release(gfn_bqueue *q)
{
	if (q->blas)
		gfn_cublas_api_get()->cublasDestroy_v2(q->blas);
	q->blas = NULL;
}

static const float *fptr(const gfn_bmem *m)
{
	return (const float *)m->ptr;
}

/*
 * Row-major C (m x n) is column-major C^T (n x m) in the same memory, and
 * C^T = op(B)^T op(A)^T: so cuBLAS gets B before A, n before m, and each
 * operand's own transpose flag (a row-major X read column-major is X^T,
 * which op() then transposes back exactly when the caller asked for X^T).
 */
gfn_status gfn_cuda_sgemm(gfn_bqueue *q, int trans_a, int trans_b, int m, int n,
                          int k, float alpha, const gfn_bmem *a, int lda,
                          const gfn_bmem *b, int ldb, float beta,
                          const gfn_bmem *c, int ldc)
{
	gfn_cublas_api *bl = gfn_cublas_api_get();
	cublasStatus_t st;
	gfn_status s;

	if (!blas_usable(bl))
		return gfn__fail(GFN_ENOTSUP,
		                 "cuBLAS (libcublas.so) is not available");
	if (m < 0 || n < 0 || k < 0 || ldc < (n ? n : 1) ||
	    lda < ((trans_a ? m : k) ? (trans_a ? m : k) : 1) ||
	    ldb < ((trans_b ? k : n) ? (trans_b ? k : n) : 1))
		return gfn__fail(GFN_EINVAL,
		                 "sgemm: bad sizes m=%d n=%d k=%d lda=%d "
		                 "ldb=%d ldc=%d",
		                 m, n, k, lda, ldb, ldc);
	if (!m || !n)
		return GFN_OK;
	s = blas_handle(q, bl);
	if (s != GFN_OK)
		return s;
	st = bl->cublasSgemm_v2(q->blas, trans_b ? 1 : 0, trans_a ? 1 : 0, n, m,
	                        k, &alpha, fptr(b), ldb, fptr(a), lda, &beta,
	                        (float *)c->ptr, ldc);
	return st == 0 ? GFN_OK : blas_fail(q, st, "cublasSgemm");
}
