/*
 * cuda_api.h - the CUDA driver API and NVRTC as tables of entry points
 * loaded at run time with dlopen/dlsym. Internal: not API.
 *
 * gfn never links libcuda, libnvrtc or libcublas: one binary must run on a
 * machine without them (zero CUDA devices, not an error). Every driver
 * call the backend makes goes through gfn_cuda_api, one named member per
 * entry point, so a test can replace any entry point, or all of them, with
 * its own function (SQLite's aSyscall[] in os_unix.c is the model):
 *
 *	gfn_cuda_api *cu = gfn_cuda_api_get();
 *	cu->cuMemAlloc = fail_third_alloc;	// override one entry
 *	gfn_cuda_api_install(&my_fake);		// or a whole table, without
 *						// loading the library at all
 *	... create engines, test ...
 *	gfn_cuda_api_reset();			// back to the real library
 *
 * Members are named after the entry points as cuda.h spells them. cuda.h
 * maps several names to versioned symbols (cuMemAlloc -> cuMemAlloc_v2);
 * the same macros rename the members, so `cu->cuMemAlloc` has the type of
 * the versioned function and the loader asks dlsym for the versioned
 * symbol. Code that includes this header uses the names as written.
 *
 * A table may be changed only while no engine (and no other thread using
 * the CUDA backend) exists: the backend reads it without a lock.
 */
#ifndef GFN_CUDA_CUDA_API_H
#define GFN_CUDA_CUDA_API_H

#include <cuda.h>
#include <nvrtc.h>

/*
 * Every driver entry point gfn uses: X(name, required). A library that
 * lacks a required one is treated as absent (zero devices); an optional
 * one that is missing disables what needs it (graphs, PCI bus ids, error
 * names, per-kernel block limits).
 */
#define GFN_CUDA_DRIVER_ENTRIES(X)                                             \
	X(cuInit, 1)                                                           \
	X(cuDriverGetVersion, 1)                                               \
	X(cuDeviceGetCount, 1)                                                 \
	X(cuDeviceGet, 1)                                                      \
	X(cuDeviceGetName, 1)                                                  \
	X(cuDeviceTotalMem, 1)                                                 \
	X(cuDeviceGetAttribute, 1)                                             \
	X(cuDeviceGetPCIBusId, 0)                                              \
	X(cuDevicePrimaryCtxRetain, 1)                                         \
	X(cuDevicePrimaryCtxRelease, 1)                                        \
	X(cuDevicePrimaryCtxReset, 1)                                          \
	X(cuCtxSetCurrent, 1)                                                  \
	X(cuStreamCreate, 1)                                                   \
	X(cuStreamDestroy, 1)                                                  \
	X(cuStreamSynchronize, 1)                                              \
	X(cuEventCreate, 0)                                                    \
	X(cuEventRecord, 0)                                                    \
	X(cuEventSynchronize, 0)                                               \
	X(cuEventDestroy, 0)                                                   \
	X(cuMemAlloc, 1)                                                       \
	X(cuMemFree, 1)                                                        \
	X(cuMemHostAlloc, 0)                                                   \
	X(cuMemFreeHost, 0)                                                    \
	X(cuMemHostRegister, 0)                                                \
	X(cuMemHostUnregister, 0)                                              \
	X(cuMemcpyHtoDAsync, 1)                                                \
	X(cuMemcpyDtoHAsync, 1)                                                \
	X(cuModuleLoadData, 1)                                                 \
	X(cuModuleUnload, 1)                                                   \
	X(cuModuleGetFunction, 1)                                              \
	X(cuFuncGetAttribute, 0)                                               \
	X(cuLaunchKernel, 1)                                                   \
	X(cuGetErrorName, 0)                                                   \
	X(cuGetErrorString, 0)                                                 \
	X(cuStreamBeginCapture, 0)                                             \
	X(cuStreamEndCapture, 0)                                               \
	X(cuGraphInstantiate, 0)                                               \
	X(cuGraphLaunch, 0)                                                    \
	X(cuGraphExecDestroy, 0)                                               \
	X(cuGraphDestroy, 0)

/* The driver table: a pointer per entry point, NULL when absent. */
typedef struct gfn_cuda_api {
#define GFN_CUDA_MEMBER_(name, required) __typeof__(name) *name;
	GFN_CUDA_DRIVER_ENTRIES(GFN_CUDA_MEMBER_)
#undef GFN_CUDA_MEMBER_
} gfn_cuda_api;

/*
 * The live driver table. The first call dlopens libcuda.so.1 and fills
 * it; without the library every member stays NULL. Never NULL. Thread-
 * safe; after the first call it costs one atomic load.
 */
gfn_cuda_api *gfn_cuda_api_get(void);

/* Forget every override: the next get() fills the table from the
   library again. Only while nothing uses the backend. */
void gfn_cuda_api_reset(void);

/* Make *t the live table without loading the library (a whole fake
   driver). Only while nothing uses the backend. */
void gfn_cuda_api_install(const gfn_cuda_api *t);

/* Nonzero when every required entry point of api is present. */
int gfn_cuda_api_usable(const gfn_cuda_api *api);

/* NVRTC entry points: X(name, required). */
#define GFN_NVRTC_ENTRIES(X)                                                   \
	X(nvrtcVersion, 1)                                                     \
	X(nvrtcGetErrorString, 1)                                              \
	X(nvrtcGetNumSupportedArchs, 0)                                        \
	X(nvrtcGetSupportedArchs, 0)                                           \
	X(nvrtcCreateProgram, 1)                                               \
	X(nvrtcDestroyProgram, 1)                                              \
	X(nvrtcCompileProgram, 1)                                              \
	X(nvrtcGetProgramLogSize, 1)                                           \
	X(nvrtcGetProgramLog, 1)                                               \
	X(nvrtcGetPTXSize, 1)                                                  \
	X(nvrtcGetPTX, 1)                                                      \
	X(nvrtcGetCUBINSize, 0)                                                \
	X(nvrtcGetCUBIN, 0)

/* The NVRTC table, loaded on the first CUDA C kernel (the library is
   ~100 MiB: a process that never compiles never maps it). */
typedef struct gfn_nvrtc_api {
#define GFN_NVRTC_MEMBER_(name, required) __typeof__(name) *name;
	GFN_NVRTC_ENTRIES(GFN_NVRTC_MEMBER_)
#undef GFN_NVRTC_MEMBER_
} gfn_nvrtc_api;

/* As gfn_cuda_api_get/_reset/_install/_usable, for libnvrtc (versioned
   names are tried too: libnvrtc.so.13, .12, .11.2, ...). */
gfn_nvrtc_api *gfn_nvrtc_api_get(void);
void gfn_nvrtc_api_reset(void);
void gfn_nvrtc_api_install(const gfn_nvrtc_api *t);
int gfn_nvrtc_api_usable(const gfn_nvrtc_api *api);

/*
 * Unless *lib is already open, dlopen the first of names[] (NULL-
 * terminated) that loads into *lib; then fill ptrs[0..n-1] from syms[]
 * (NULL when missing, all NULL without a library). Shared by the three
 * loaders (driver, NVRTC, cuBLAS), which keep their handle for the life
 * of the process, so a reset re-reads the same library.
 */
void gfn__cuda_dlopen_table(const char *const *names, const char *const *syms,
                            void **ptrs, int n, void **lib);

#endif /* GFN_CUDA_CUDA_API_H */
