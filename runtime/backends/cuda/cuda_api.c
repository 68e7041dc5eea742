/*
 * cuda_api.c - loading the driver API and NVRTC into their tables (see
 * cuda_api.h). A missing library leaves a table of NULLs: the backend then
 * reports zero devices (driver) or fails CUDA C kernels with a message
 * (NVRTC); neither is an error of the engine.
 */
#include "runtime/backends/cuda/cuda_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "runtime/util.h"

/* The versioned symbol a name maps to: STR(cuMemAlloc) is
   "cuMemAlloc_v2", because cuda.h defines cuMemAlloc as that. */
#define STR_(x) #x
#define STR(x) STR_(x)

void gfn__cuda_dlopen_table(const char *const *names, const char *const *syms,
                            void **ptrs, int n, void **lib)
{
	for (int i = 0; names[i] && !*lib; i++)
		*lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	for (int i = 0; i < n; i++)
		ptrs[i] = *lib ? dlsym(*lib, syms[i]) : NULL;
}

/* ---- the driver ----------------------------------------------------------- */

static const char *const cu_names[] = {"libcuda.so.1", "libcuda.so", NULL};

static const char *const cu_syms[] = {
#define SYM_(name, required) STR(name),
        GFN_CUDA_DRIVER_ENTRIES(SYM_)
#undef SYM_
};

static const int cu_required[] = {
#define REQ_(name, required) required,
        GFN_CUDA_DRIVER_ENTRIES(REQ_)
#undef REQ_
};

#define CU_N ((int)(sizeof(cu_syms) / sizeof(cu_syms[0])))
_Static_assert(sizeof(gfn_cuda_api) == CU_N * sizeof(void *),
               "gfn_cuda_api is one pointer per entry point");

static gfn_cuda_api cu_table; /* the live table */
static void *cu_lib;          /* dlopen handle or NULL; never closed: libcuda
                        does not support being unloaded and reloaded */
static _Atomic int cu_loaded; /* cu_table has been filled */
static pthread_mutex_t cu_lock = PTHREAD_MUTEX_INITIALIZER; /* loading */

/*
 * Function and data pointers have one size and representation on every
 * platform gfn runs on (POSIX requires it for dlsym), so the table is
 * filled as an array of void *, through memcpy to keep that explicit.
 */
static void fill(void *table, const void *const *ptrs, int n)
{
	memcpy(table, ptrs, (size_t)n * sizeof(void *));
}

gfn_cuda_api *gfn_cuda_api_get(void)
{
	void *ptrs[CU_N];

	if (atomic_load_explicit(&cu_loaded, memory_order_acquire))
		return &cu_table;
	pthread_mutex_lock(&cu_lock);
	if (!atomic_load_explicit(&cu_loaded, memory_order_relaxed)) {
		gfn__cuda_dlopen_table(cu_names, cu_syms, ptrs, CU_N, &cu_lib);
		fill(&cu_table, (const void *const *)ptrs, CU_N);
		gfn__log(GFN_LOG_DEBUG, "cuda: driver library %s",
		         cu_lib ? "loaded" : "not found");
		atomic_store_explicit(&cu_loaded, 1, memory_order_release);
	}
	pthread_mutex_unlock(&cu_lock);
	return &cu_table;
}

void gfn_cuda_api_reset(void)
{
	pthread_mutex_lock(&cu_lock);
	memset(&cu_table, 0, sizeof(cu_table));
	atomic_store_explicit(&cu_loaded, 0, memory_order_release);
	pthread_mutex_unlock(&cu_lock);
}

/* Nonzero when every required pointer of table is set. */
static int usable(const void *table, const int *required, int n)
{
	void *ptrs[64];

	memcpy(ptrs, table, (size_t)n * sizeof(void *));
	for (int i = 0; i < n; i++)
		if (required[i] && !ptrs[i])
			return 0;
	return 1;
}

void gfn_cuda_api_install(const gfn_cuda_api *t)
{
	pthread_mutex_lock(&cu_lock);
	cu_table = *t;
	atomic_store_explicit(&cu_loaded, 1, memory_order_release);
	pthread_mutex_unlock(&cu_lock);
}

int gfn_cuda_api_usable(const gfn_cuda_api *api)
{
	_Static_assert(CU_N <= 64, "usable() holds 64 entries");
	return usable(api, cu_required, CU_N);
}

/* ---- NVRTC ------------------------------------------------------------------ */

/* The unversioned name exists only with the development package, so the
   versioned sonames of every toolkit since NVRTC was split out follow. */
static const char *const nvrtc_names[] = {"libnvrtc.so",
                                          "libnvrtc.so.13",
                                          "libnvrtc.so.12",
                                          "libnvrtc.so.11.2",
                                          "libnvrtc.so.11.1",
                                          "libnvrtc.so.11.0",
                                          NULL};

static const char *const nvrtc_syms[] = {
#define SYM_(name, required) STR(name),
        GFN_NVRTC_ENTRIES(SYM_)
#undef SYM_
};

static const int nvrtc_required[] = {
#define REQ_(name, required) required,
        GFN_NVRTC_ENTRIES(REQ_)
#undef REQ_
};

#define NVRTC_N ((int)(sizeof(nvrtc_syms) / sizeof(nvrtc_syms[0])))
_Static_assert(sizeof(gfn_nvrtc_api) == NVRTC_N * sizeof(void *),
               "gfn_nvrtc_api is one pointer per entry point");

static gfn_nvrtc_api nvrtc_table; /* the live table */
static void *nvrtc_lib;           /* dlopen handle or NULL; kept */
static _Atomic int nvrtc_loaded;  /* nvrtc_table has been filled */
static pthread_mutex_t nvrtc_lock = PTHREAD_MUTEX_INITIALIZER; /* loading */

gfn_nvrtc_api *gfn_nvrtc_api_get(void)
{
	void *ptrs[NVRTC_N];

	if (atomic_load_explicit(&nvrtc_loaded, memory_order_acquire))
		return &nvrtc_table;
	pthread_mutex_lock(&nvrtc_lock);
	if (!atomic_load_explicit(&nvrtc_loaded, memory_order_relaxed)) {
		gfn__cuda_dlopen_table(nvrtc_names, nvrtc_syms, ptrs, NVRTC_N,
		                       &nvrtc_lib);
		fill(&nvrtc_table, (const void *const *)ptrs, NVRTC_N);
		atomic_store_explicit(&nvrtc_loaded, 1, memory_order_release);
	}
	pthread_mutex_unlock(&nvrtc_lock);
	return &nvrtc_table;
}

void gfn_nvrtc_api_reset(void)
{
	pthread_mutex_lock(&nvrtc_lock);
	memset(&nvrtc_table, 0, sizeof(nvrtc_table));
	atomic_store_explicit(&nvrtc_loaded, 0, memory_order_release);
	pthread_mutex_unlock(&nvrtc_lock);
}

void gfn_nvrtc_api_install(const gfn_nvrtc_api *t)
{
	pthread_mutex_lock(&nvrtc_lock);
	nvrtc_table = *t;
	atomic_store_explicit(&nvrtc_loaded, 1, memory_order_release);
	pthread_mutex_unlock(&nvrtc_lock);
}

int gfn_nvrtc_api_usable(const gfn_nvrtc_api *api)
{
	return usable(api, nvrtc_required, NVRTC_N);
}
