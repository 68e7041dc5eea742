/*
 * cuda_fake.h - a fake CUDA driver for tests of gfn's own CUDA logic, on
 * machines with or without a GPU. It fills gfn's driver table
 * (runtime/backends/cuda/cuda_api.h) with functions that emulate one or
 * more devices in host memory:
 *
 *  - device memory is aligned host memory (a CUdeviceptr is a host
 *    address), copies are memcpy, streams run everything at once;
 *  - cuLaunchKernel calls a C function registered under the kernel's name
 *    (fake_kernel_add) with the launch's parameters, grid and block;
 *  - every call that takes a resource is counted and can be made to fail
 *    with CUDA_ERROR_OUT_OF_MEMORY (fake.fail_at), and live resources
 *    are counted so a test can prove nothing leaked;
 *  - a kernel can poison its context (sticky error): every later call on
 *    it fails with CUDA_ERROR_ILLEGAL_ADDRESS until cuDevicePrimaryCtxReset;
 *  - calls check that a context is current and that streams and modules
 *    belong to it, so a missing cuCtxSetCurrent shows up as a failure.
 *
 * It tests what gfn does with the driver's answers, not the driver.
 */
#ifndef GFN_TESTS_CUDA_FAKE_H
#define GFN_TESTS_CUDA_FAKE_H

#include <pthread.h>
#include <stddef.h>

#include "runtime/backends/cuda/cuda_api.h"

#define FAKE_MAX_DEV 4
#define FAKE_MAX_REG 64

/* A fake kernel: gets cuLaunchKernel's parameters, grid and block. */
typedef CUresult (*fake_kernel_fn)(void **params, const unsigned grid[3],
                                   const unsigned block[3]);

/* One recorded cuMemHostRegister or cuMemHostUnregister call. */
typedef struct fake_reg_call {
	char *p;        /* address */
	size_t len;     /* bytes (0 for unregister) */
	unsigned flags; /* flags given */
} fake_reg_call;

typedef struct fake_dev {
	int poisoned;     /* sticky error pending until reset */
	unsigned gen;     /* bumped by every reset */
	int refs;         /* primary context retains outstanding */
	int retain_calls; /* cuDevicePrimaryCtxRetain calls that succeeded */
	int reset_calls;  /* cuDevicePrimaryCtxReset calls */
} fake_dev;

/* Everything the fake knows; read and written under lock. */
typedef struct fake_state {
	pthread_mutex_t lock;       /* guards all below */
	int ndev;                   /* devices it reports */
	CUresult init_result;       /* what cuInit returns */
	CUresult reset_result;      /* what cuDevicePrimaryCtxReset returns */
	CUresult sync_result;       /* one-shot: next cuStreamSynchronize */
	CUresult launch_result;     /* one-shot: next cuLaunchKernel */
	fake_dev dev[FAKE_MAX_DEV]; /* per device */
	long takes;                 /* resource-taking calls made */
	long fail_at;               /* take number that fails; 0 none */
	long failed;                /* takes failed on purpose */
	long mem_allocs;            /* cuMemAlloc successes */
	long mem_live;              /* device blocks not freed */
	long host_allocs;           /* cuMemHostAlloc successes */
	long host_live;             /* pinned blocks not freed */
	long streams_live;          /* streams not destroyed */
	long streams_made;          /* cuStreamCreate successes */
	long modules_live;          /* modules not unloaded */
	long module_loads;          /* cuModuleLoadData successes */
	long regs_live;             /* registrations not undone */
	long graphs_live;           /* graphs + instances not destroyed */
	long launches;              /* kernels run (not recorded) */
	long syncs;                 /* stream syncs (direct or by event) */
	long event_syncs;           /* cuEventSynchronize calls */
	long events_live;           /* events not destroyed */
	int nreg;                   /* register calls recorded */
	fake_reg_call reg[FAKE_MAX_REG];      /* cuMemHostRegister calls */
	int nunreg;                           /* unregister calls recorded */
	fake_reg_call unreg[FAKE_MAX_REG];    /* cuMemHostUnregister calls */
	unsigned last_grid[3], last_block[3]; /* of the last launch */
	char last_image[8];                   /* first bytes of last module */
} fake_state;

extern fake_state fake;

/* Install the fake driver with ndev devices (state reset). */
void fake_install(int ndev);
/* Back to the real library (gfn_cuda_api_reset). */
void fake_uninstall(void);
/* Register a kernel: name, function, and the size of each parameter (for
   graph capture, which copies them). Up to 48 kernels. */
void fake_kernel_add(const char *name, fake_kernel_fn fn, int nparams,
                     const size_t *sizes);
/* Launch the kernel registered as name on s over n blocks of one
   thread, as cuLaunchKernel would (recorded while s is captured): how a
   fake library call (cuBLAS) becomes stream work. */
CUresult fake_launch_named(const char *name, unsigned n, CUstream s,
                           void **params);
/* Poison the context of the device current on this thread (for fake
   kernels that "fault"). */
void fake_poison_current(void);

/* Snapshot of the counters (under the lock). */
fake_state fake_snapshot(void);
/* Assert (via the caller) that nothing is alive: returns 0 when clean,
   else prints what leaked and returns 1. */
int fake_leaks(void);

#endif /* GFN_TESTS_CUDA_FAKE_H */
