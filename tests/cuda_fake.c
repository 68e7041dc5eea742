/*
 * cuda_fake.c - the fake CUDA driver of cuda_fake.h. Emulates devices in
 * host memory so gfn's CUDA backend runs end to end on any machine; it
 * checks the rules a real driver enforces that gfn could get wrong (a
 * current context, handles of that context, no use after a reset) and
 * injects the failures a test asks for.
 */
#include "cuda_fake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

fake_state fake = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The fake's handle types: cuda.h declares them opaque. */
struct CUctx_st {
	int dev; /* device index */
};

struct CUstream_st {
	int dev;                /* device of its context */
	unsigned gen;           /* context generation it was made in */
	struct CUgraph_st *cap; /* graph being recorded, or NULL */
};

struct CUevent_st {
	struct CUstream_st *stream; /* where it was last recorded */
};

struct CUmod_st {
	int dev;      /* device of its context */
	unsigned gen; /* context generation */
};

#define MAX_KERNELS 48
#define MAX_NODES 64
#define MAX_PARAM_BYTES 512

struct CUfunc_st {
	char name[64];     /* kernel name */
	fake_kernel_fn fn; /* what it runs */
	int nparams;       /* parameters */
	size_t sizes[24];  /* bytes of each */
};

typedef struct node {
	struct CUfunc_st *f;                  /* kernel */
	unsigned grid[3], block[3];           /* geometry */
	unsigned char bytes[MAX_PARAM_BYTES]; /* copied parameter values */
	void *params[24];                     /* pointers into bytes */
} node;

struct CUgraph_st {
	int dev;               /* device */
	int nnodes;            /* launches recorded */
	int invalid;           /* a recorded call failed */
	node nodes[MAX_NODES]; /* the launches */
};

struct CUgraphExec_st {
	struct CUgraph_st g; /* a copy of the graph */
};

static struct CUctx_st ctxs[FAKE_MAX_DEV];
static struct CUfunc_st kernels[MAX_KERNELS];
static int nkernels;
static _Thread_local struct CUctx_st *cur; /* this thread's context */

/* ---- helpers -------------------------------------------------------------- */

/* One resource-taking call: fails when it is number fail_at. Locked. */
static int take_fails(void)
{
	if (++fake.takes != fake.fail_at || !fake.fail_at)
		return 0;
	fake.failed++;
	return 1;
}

/* The current context's error state: success, no context, or sticky.
   Locked. */
static CUresult ctx_check(void)
{
	if (!cur)
		return CUDA_ERROR_INVALID_CONTEXT;
	if (fake.dev[cur->dev].refs <= 0)
		return CUDA_ERROR_CONTEXT_IS_DESTROYED;
	if (fake.dev[cur->dev].poisoned)
		return CUDA_ERROR_ILLEGAL_ADDRESS;
	return CUDA_SUCCESS;
}

/* A stream usable from the current context. Locked. */
static CUresult stream_check(struct CUstream_st *s)
{
	CUresult r = ctx_check();

	if (r != CUDA_SUCCESS)
		return r;
	if (!s || s->dev != cur->dev || s->gen != fake.dev[s->dev].gen)
		return CUDA_ERROR_INVALID_HANDLE;
	return CUDA_SUCCESS;
}

#define LOCKED(expr)                                                           \
	do {                                                                   \
		CUresult r_;                                                   \
		pthread_mutex_lock(&fake.lock);                                \
		r_ = (expr);                                                   \
		pthread_mutex_unlock(&fake.lock);                              \
		return r_;                                                     \
	} while (0)

/* ---- init and devices -------------------------------------------------------- */

static CUresult f_init(unsigned flags)
{
	(void)flags;
	return fake.init_result;
}

static CUresult f_driver_version(int *v)
{
	*v = 13000;
	return CUDA_SUCCESS;
}

static CUresult f_count(int *n)
{
	*n = fake.ndev;
	return CUDA_SUCCESS;
}

static CUresult f_get(CUdevice *d, int i)
{
	if (i < 0 || i >= fake.ndev)
		return CUDA_ERROR_INVALID_DEVICE;
	*d = i;
	return CUDA_SUCCESS;
}

static CUresult f_name(char *name, int len, CUdevice d)
{
	snprintf(name, (size_t)len, "Fake H200 #%d", d);
	return CUDA_SUCCESS;
}

static CUresult f_total_mem(size_t *bytes, CUdevice d)
{
	(void)d;
	*bytes = (size_t)141 << 30;
	return CUDA_SUCCESS;
}

static CUresult f_attr(int *v, CUdevice_attribute a, CUdevice d)
{
	(void)d;
	*v = a == CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT       ? 132
	     : a == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR ? 9
	                                                         : 0;
	return CUDA_SUCCESS;
}

static CUresult f_pci(char *id, int len, CUdevice d)
{
	snprintf(id, (size_t)len, "0000:%02X:00.0", 0x3B + d);
	return CUDA_SUCCESS;
}

/* ---- contexts ------------------------------------------------------------------- */

static CUresult retain_locked(CUcontext *c, CUdevice d)
{
	if (d < 0 || d >= fake.ndev)
		return CUDA_ERROR_INVALID_DEVICE;
	if (take_fails())
		return CUDA_ERROR_OUT_OF_MEMORY;
	fake.dev[d].refs++;
	fake.dev[d].retain_calls++;
	ctxs[d].dev = d;
	*c = &ctxs[d];
	return CUDA_SUCCESS;
}

static CUresult f_retain(CUcontext *c, CUdevice d)
{
	LOCKED(retain_locked(c, d));
}

static CUresult release_locked(CUdevice d)
{
	if (fake.dev[d].refs <= 0)
		return CUDA_ERROR_INVALID_CONTEXT;
	fake.dev[d].refs--;
	return CUDA_SUCCESS;
}

static CUresult f_release(CUdevice d)
{
	LOCKED(release_locked(d));
}

static CUresult reset_locked(CUdevice d)
{
	fake.dev[d].reset_calls++;
	if (fake.reset_result != CUDA_SUCCESS)
		return fake.reset_result;
	fake.dev[d].poisoned = 0;
	fake.dev[d].gen++; /* every handle of the old context is gone */
	return CUDA_SUCCESS;
}

static CUresult f_reset(CUdevice d)
{
	LOCKED(reset_locked(d));
}

static CUresult f_set_current(CUcontext c)
{
	cur = c;
	return CUDA_SUCCESS;
}

void fake_poison_current(void)
{
	pthread_mutex_lock(&fake.lock);
	if (cur)
		fake.dev[cur->dev].poisoned = 1;
	pthread_mutex_unlock(&fake.lock);
}

/* ---- streams ----------------------------------------------------------------------- */

static CUresult stream_create_locked(CUstream *s)
{
	CUresult r = ctx_check();

	if (r != CUDA_SUCCESS)
		return r;
	if (take_fails())
		return CUDA_ERROR_OUT_OF_MEMORY;
	*s = calloc(1, sizeof(**s));
	(*s)->dev = cur->dev;
	(*s)->gen = fake.dev[cur->dev].gen;
	fake.streams_live++;
	fake.streams_made++;
	return CUDA_SUCCESS;
}

static CUresult f_stream_create(CUstream *s, unsigned flags)
{
	if (flags != CU_STREAM_NON_BLOCKING)
		return CUDA_ERROR_INVALID_VALUE; /* gfn asks for these */
	LOCKED(stream_create_locked(s));
}

static CUresult f_stream_destroy(CUstream s)
{
	pthread_mutex_lock(&fake.lock);
	fake.streams_live--;
	pthread_mutex_unlock(&fake.lock);
	free(s);
	return CUDA_SUCCESS;
}

static CUresult sync_locked(CUstream s)
{
	CUresult r = stream_check(s);

	fake.syncs++;
	if (r == CUDA_SUCCESS && s->cap)
		return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	if (r == CUDA_SUCCESS && fake.sync_result != CUDA_SUCCESS) {
		r = fake.sync_result;
		fake.sync_result = CUDA_SUCCESS;
		if (r == CUDA_ERROR_ILLEGAL_ADDRESS)
			fake.dev[cur->dev].poisoned = 1;
	}
	return r;
}

static CUresult f_sync(CUstream s)
{
	LOCKED(sync_locked(s));
}

/* Events: a sync through one is a sync of the stream it was recorded on
   (with the same one-shot failures), counted apart. */
static CUresult event_create_locked(CUevent *e, unsigned flags)
{
	CUresult r = ctx_check();

	if (r != CUDA_SUCCESS)
		return r;
	if (!(flags & CU_EVENT_BLOCKING_SYNC))
		return CUDA_ERROR_INVALID_VALUE; /* gfn asks for these */
	if (take_fails())
		return CUDA_ERROR_OUT_OF_MEMORY;
	*e = calloc(1, sizeof(**e));
	fake.events_live++;
	return CUDA_SUCCESS;
}

static CUresult f_event_create(CUevent *e, unsigned flags)
{
	LOCKED(event_create_locked(e, flags));
}

static CUresult event_record_locked(CUevent e, CUstream s)
{
	CUresult r = stream_check(s);

	if (r == CUDA_SUCCESS)
		e->stream = s;
	return r;
}

static CUresult f_event_record(CUevent e, CUstream s)
{
	LOCKED(event_record_locked(e, s));
}

static CUresult event_sync_locked(CUevent e)
{
	fake.event_syncs++;
	return e->stream ? sync_locked(e->stream) : CUDA_SUCCESS;
}

static CUresult f_event_sync(CUevent e)
{
	LOCKED(event_sync_locked(e));
}

static CUresult f_event_destroy(CUevent e)
{
	pthread_mutex_lock(&fake.lock);
	fake.events_live--;
	pthread_mutex_unlock(&fake.lock);
	free(e);
	return CUDA_SUCCESS;
}

/* ---- memory --------------------------------------------------------------------------- */

static CUresult alloc_locked(CUdeviceptr *p, size_t n)
{
	CUresult r = ctx_check();
	void *m = NULL;

	if (r != CUDA_SUCCESS)
		return r;
	if (take_fails() || posix_memalign(&m, 256, n))
		return CUDA_ERROR_OUT_OF_MEMORY;
	memset(m, 0, n);
	*p = (CUdeviceptr)(uintptr_t)m;
	fake.mem_allocs++;
	fake.mem_live++;
	return CUDA_SUCCESS;
}

static CUresult f_alloc(CUdeviceptr *p, size_t n)
{
	LOCKED(alloc_locked(p, n));
}

static CUresult f_free(CUdeviceptr p)
{
	pthread_mutex_lock(&fake.lock);
	fake.mem_live--;
	pthread_mutex_unlock(&fake.lock);
	free((void *)(uintptr_t)p);
	return CUDA_SUCCESS;
}

static CUresult host_alloc_locked(void **p, size_t n, unsigned flags)
{
	CUresult r = ctx_check();

	if (r != CUDA_SUCCESS)
		return r;
	if (!(flags & CU_MEMHOSTALLOC_PORTABLE))
		return CUDA_ERROR_INVALID_VALUE; /* gfn shares them */
	if (take_fails() || !(*p = malloc(n)))
		return CUDA_ERROR_OUT_OF_MEMORY;
	fake.host_allocs++;
	fake.host_live++;
	return CUDA_SUCCESS;
}

static CUresult f_host_alloc(void **p, size_t n, unsigned flags)
{
	LOCKED(host_alloc_locked(p, n, flags));
}

static CUresult f_host_free(void *p)
{
	pthread_mutex_lock(&fake.lock);
	fake.host_live--;
	pthread_mutex_unlock(&fake.lock);
	free(p);
	return CUDA_SUCCESS;
}

#define MAX_LIVE 1024
static struct {
	char *p;    /* registered range */
	size_t len; /* its bytes */
} live[MAX_LIVE];   /* live registrations: process-wide, as in CUDA */

/* The live registration overlapping [p, p+n), or -1. Locked. */
static int live_find(const char *p, size_t n)
{
	for (int i = 0; i < MAX_LIVE; i++)
		if (live[i].p && p < live[i].p + live[i].len &&
		    live[i].p < p + n)
			return i;
	return -1;
}

/* Records the call; touches no memory, so a test can "register" more
   than the machine has. Registration is process-wide (UVA): a range
   registered already, through any context, cannot be again. */
static CUresult register_locked(void *p, size_t n, unsigned flags)
{
	CUresult r = ctx_check();
	int i;

	if (r != CUDA_SUCCESS)
		return r;
	if (live_find(p, n) >= 0)
		return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
	if (take_fails())
		return CUDA_ERROR_OUT_OF_MEMORY;
	if ((i = live_find(NULL, 0)) < 0) /* a free entry */
		for (i = 0; i < MAX_LIVE && live[i].p; i++)
			;
	if (i == MAX_LIVE)
		return CUDA_ERROR_OUT_OF_MEMORY;
	live[i].p = p;
	live[i].len = n;
	if (fake.nreg < FAKE_MAX_REG)
		fake.reg[fake.nreg++] = (fake_reg_call){p, n, flags};
	fake.regs_live++;
	return CUDA_SUCCESS;
}

static CUresult f_register(void *p, size_t n, unsigned flags)
{
	LOCKED(register_locked(p, n, flags));
}

/* On a poisoned context the call fails and the pages stay registered,
   through the reset too (the worst case gfn must live with). */
static CUresult unregister_locked(void *p)
{
	int i = live_find(p, 1);

	if (cur && fake.dev[cur->dev].poisoned)
		return CUDA_ERROR_ILLEGAL_ADDRESS;
	if (i < 0 || live[i].p != p)
		return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
	live[i].p = NULL;
	if (fake.nunreg < FAKE_MAX_REG)
		fake.unreg[fake.nunreg++] = (fake_reg_call){p, 0, 0};
	fake.regs_live--;
	return CUDA_SUCCESS;
}

static CUresult f_unregister(void *p)
{
	LOCKED(unregister_locked(p));
}

static CUresult f_h2d(CUdeviceptr dst, const void *src, size_t n, CUstream s)
{
	CUresult r;

	pthread_mutex_lock(&fake.lock);
	r = stream_check(s);
	if (r == CUDA_SUCCESS && s->cap)
		r = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; /* not emulated */
	pthread_mutex_unlock(&fake.lock);
	if (r == CUDA_SUCCESS)
		memcpy((void *)(uintptr_t)dst, src, n);
	return r;
}

static CUresult f_d2h(void *dst, CUdeviceptr src, size_t n, CUstream s)
{
	CUresult r;

	pthread_mutex_lock(&fake.lock);
	r = stream_check(s);
	pthread_mutex_unlock(&fake.lock);
	if (r == CUDA_SUCCESS)
		memcpy(dst, (const void *)(uintptr_t)src, n);
	return r;
}

/* ---- modules and kernels ----------------------------------------------------------------- */

/* Images gfn may hand over: a fatbin, an ELF cubin or PTX text. */
static int image_ok(const unsigned char *b)
{
	static const unsigned char fatbin[4] = {0x50, 0xed, 0x55, 0xba};

	return !memcmp(b, fatbin, 4) || !memcmp(b, "\177ELF", 4) ||
	       !memcmp(b, "//", 2) || !memcmp(b, ".version", 8);
}

static CUresult load_locked(CUmodule *m, const void *image)
{
	CUresult r = ctx_check();

	if (r != CUDA_SUCCESS)
		return r;
	memcpy(fake.last_image, image, sizeof(fake.last_image));
	if (!image_ok(image))
		return CUDA_ERROR_INVALID_IMAGE;
	if (take_fails())
		return CUDA_ERROR_OUT_OF_MEMORY;
	*m = calloc(1, sizeof(**m));
	(*m)->dev = cur->dev;
	(*m)->gen = fake.dev[cur->dev].gen;
	fake.modules_live++;
	fake.module_loads++;
	return CUDA_SUCCESS;
}

static CUresult f_load(CUmodule *m, const void *image)
{
	LOCKED(load_locked(m, image));
}

static CUresult f_unload(CUmodule m)
{
	pthread_mutex_lock(&fake.lock);
	fake.modules_live--;
	pthread_mutex_unlock(&fake.lock);
	free(m);
	return CUDA_SUCCESS;
}

static CUresult get_function_locked(CUfunction *f, CUmodule m, const char *name)
{
	CUresult r = ctx_check();

	if (r != CUDA_SUCCESS)
		return r;
	if (!m || m->dev != cur->dev || m->gen != fake.dev[m->dev].gen)
		return CUDA_ERROR_INVALID_HANDLE;
	for (int i = 0; i < nkernels; i++)
		if (!strcmp(kernels[i].name, name)) {
			*f = &kernels[i];
			return CUDA_SUCCESS;
		}
	return CUDA_ERROR_NOT_FOUND;
}

static CUresult f_get_function(CUfunction *f, CUmodule m, const char *name)
{
	LOCKED(get_function_locked(f, m, name));
}

static CUresult f_func_attr(int *v, CUfunction_attribute a, CUfunction f)
{
	(void)f;
	*v = a == CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK ? 1024 : 0;
	return CUDA_SUCCESS;
}

/* Copy a launch into a graph node. */
static void record(struct CUgraph_st *g, CUfunction f, const unsigned grid[3],
                   const unsigned block[3], void **params)
{
	node *n;
	size_t off = 0;

	if (g->nnodes == MAX_NODES) {
		g->invalid = 1;
		return;
	}
	n = &g->nodes[g->nnodes++];
	n->f = f;
	memcpy(n->grid, grid, sizeof(n->grid));
	memcpy(n->block, block, sizeof(n->block));
	for (int i = 0; i < f->nparams; i++) {
		memcpy(n->bytes + off, params[i], f->sizes[i]);
		n->params[i] = n->bytes + off;
		off += (f->sizes[i] + 7) & ~(size_t)7;
	}
}

/* What a launch does now: record it, fail it, or run it (*run). */
static CUresult launch_locked(CUfunction f, const unsigned grid[3],
                              const unsigned block[3], CUstream s,
                              void **params, int *run)
{
	CUresult r = stream_check(s);

	*run = 0;
	if (r != CUDA_SUCCESS)
		return r;
	if (fake.launch_result != CUDA_SUCCESS) {
		r = fake.launch_result;
		fake.launch_result = CUDA_SUCCESS;
		if (s->cap) /* as CUDA does: the capture is broken */
			s->cap->invalid = 1;
		return r;
	}
	memcpy(fake.last_grid, grid, sizeof(fake.last_grid));
	memcpy(fake.last_block, block, sizeof(fake.last_block));
	if (s->cap) {
		record(s->cap, f, grid, block, params);
		return CUDA_SUCCESS;
	}
	fake.launches++;
	*run = 1;
	return CUDA_SUCCESS;
}

static CUresult f_launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                         unsigned bx, unsigned by, unsigned bz, unsigned shmem,
                         CUstream s, void **params, void **extra)
{
	const unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
	CUresult r;
	int run;

	if (shmem || extra || !params || bx * by * bz > 1024 || !gx || !gy ||
	    !gz)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&fake.lock);
	r = launch_locked(f, grid, block, s, params, &run);
	pthread_mutex_unlock(&fake.lock);
	/* Run outside the lock: a kernel may poison its context. */
	return run ? f->fn(params, grid, block) : r;
}

void fake_kernel_add(const char *name, fake_kernel_fn fn, int nparams,
                     const size_t *sizes)
{
	struct CUfunc_st *k = &kernels[nkernels++];

	snprintf(k->name, sizeof(k->name), "%s", name);
	k->fn = fn;
	k->nparams = nparams;
	memcpy(k->sizes, sizes, (size_t)nparams * sizeof(size_t));
}

CUresult fake_launch_named(const char *name, unsigned n, CUstream s,
                           void **params)
{
	for (int i = 0; i < nkernels; i++)
		if (!strcmp(kernels[i].name, name))
			return f_launch(&kernels[i], n, 1, 1, 1, 1, 1, 0, s,
			                params, NULL);
	return CUDA_ERROR_NOT_FOUND;
}

/* ---- graphs -------------------------------------------------------------------------------- */

static CUresult begin_locked(CUstream s, CUstreamCaptureMode mode)
{
	CUresult r = stream_check(s);

	if (r != CUDA_SUCCESS)
		return r;
	if (mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL || s->cap)
		return CUDA_ERROR_INVALID_VALUE;
	s->cap = calloc(1, sizeof(*s->cap));
	s->cap->dev = s->dev;
	fake.graphs_live++;
	return CUDA_SUCCESS;
}

static CUresult f_begin(CUstream s, CUstreamCaptureMode mode)
{
	LOCKED(begin_locked(s, mode));
}

static CUresult end_locked(CUstream s, CUgraph *g)
{
	CUresult r = stream_check(s);

	if (r != CUDA_SUCCESS)
		return r;
	if (!s->cap)
		return CUDA_ERROR_ILLEGAL_STATE;
	*g = s->cap;
	s->cap = NULL;
	if ((*g)->invalid) {
		free(*g);
		fake.graphs_live--;
		return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
	}
	return CUDA_SUCCESS;
}

static CUresult f_end(CUstream s, CUgraph *g)
{
	LOCKED(end_locked(s, g));
}

static CUresult instantiate_locked(CUgraphExec *e, CUgraph g)
{
	CUresult r = ctx_check();

	if (r != CUDA_SUCCESS)
		return r;
	if (take_fails())
		return CUDA_ERROR_OUT_OF_MEMORY;
	*e = malloc(sizeof(**e));
	(*e)->g = *g;
	for (int i = 0; i < g->nnodes; i++) { /* repoint into the copy */
		node *n = &(*e)->g.nodes[i];
		for (int p = 0; p < n->f->nparams; p++)
			n->params[p] = n->bytes +
			               ((unsigned char *)g->nodes[i].params[p] -
			                g->nodes[i].bytes);
	}
	fake.graphs_live++;
	return CUDA_SUCCESS;
}

static CUresult f_instantiate(CUgraphExec *e, CUgraph g,
                              unsigned long long flags)
{
	(void)flags;
	LOCKED(instantiate_locked(e, g));
}

static CUresult f_graph_launch(CUgraphExec e, CUstream s)
{
	CUresult r;

	pthread_mutex_lock(&fake.lock);
	r = stream_check(s);
	if (r == CUDA_SUCCESS && e->g.dev != s->dev)
		r = CUDA_ERROR_INVALID_HANDLE;
	if (r == CUDA_SUCCESS)
		fake.launches += e->g.nnodes;
	pthread_mutex_unlock(&fake.lock);
	for (int i = 0; i < e->g.nnodes && r == CUDA_SUCCESS; i++) {
		node *n = &e->g.nodes[i];
		r = n->f->fn(n->params, n->grid, n->block);
	}
	return r;
}

static CUresult f_exec_destroy(CUgraphExec e)
{
	pthread_mutex_lock(&fake.lock);
	fake.graphs_live--;
	pthread_mutex_unlock(&fake.lock);
	free(e);
	return CUDA_SUCCESS;
}

static CUresult f_graph_destroy(CUgraph g)
{
	pthread_mutex_lock(&fake.lock);
	fake.graphs_live--;
	pthread_mutex_unlock(&fake.lock);
	free(g);
	return CUDA_SUCCESS;
}

/* ---- errors ---------------------------------------------------------------------------------- */

static CUresult f_error_name(CUresult e, const char **s)
{
	switch (e) {
	case CUDA_ERROR_OUT_OF_MEMORY:
		*s = "CUDA_ERROR_OUT_OF_MEMORY";
		break;
	case CUDA_ERROR_ILLEGAL_ADDRESS:
		*s = "CUDA_ERROR_ILLEGAL_ADDRESS";
		break;
	case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES:
		*s = "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
		break;
	case CUDA_ERROR_NOT_FOUND:
		*s = "CUDA_ERROR_NOT_FOUND";
		break;
	default:
		*s = "CUDA_ERROR_(fake)";
	}
	return CUDA_SUCCESS;
}

static CUresult f_error_string(CUresult e, const char **s)
{
	*s = e == CUDA_ERROR_ILLEGAL_ADDRESS
	             ? "an illegal memory access was encountered"
	             : "fake driver error";
	return CUDA_SUCCESS;
}

/* ---- install ------------------------------------------------------------------------------------ */

void fake_install(int ndev)
{
	gfn_cuda_api t, *cu = &t;

	pthread_mutex_lock(&fake.lock);
	memset((char *)&fake + sizeof(fake.lock), 0,
	       sizeof(fake) - sizeof(fake.lock));
	fake.ndev = ndev;
	memset(live, 0, sizeof(live));
	pthread_mutex_unlock(&fake.lock);
	memset(cu, 0, sizeof(*cu)); /* nothing of a real driver stays */
	cu->cuInit = f_init;
	cu->cuDriverGetVersion = f_driver_version;
	cu->cuDeviceGetCount = f_count;
	cu->cuDeviceGet = f_get;
	cu->cuDeviceGetName = f_name;
	cu->cuDeviceTotalMem = f_total_mem;
	cu->cuDeviceGetAttribute = f_attr;
	cu->cuDeviceGetPCIBusId = f_pci;
	cu->cuDevicePrimaryCtxRetain = f_retain;
	cu->cuDevicePrimaryCtxRelease = f_release;
	cu->cuDevicePrimaryCtxReset = f_reset;
	cu->cuCtxSetCurrent = f_set_current;
	cu->cuStreamCreate = f_stream_create;
	cu->cuStreamDestroy = f_stream_destroy;
	cu->cuStreamSynchronize = f_sync;
	cu->cuEventCreate = f_event_create;
	cu->cuEventRecord = f_event_record;
	cu->cuEventSynchronize = f_event_sync;
	cu->cuEventDestroy = f_event_destroy;
	cu->cuMemAlloc = f_alloc;
	cu->cuMemFree = f_free;
	cu->cuMemHostAlloc = f_host_alloc;
	cu->cuMemFreeHost = f_host_free;
	cu->cuMemHostRegister = f_register;
	cu->cuMemHostUnregister = f_unregister;
	cu->cuMemcpyHtoDAsync = f_h2d;
	cu->cuMemcpyDtoHAsync = f_d2h;
	cu->cuModuleLoadData = f_load;
	cu->cuModuleUnload = f_unload;
	cu->cuModuleGetFunction = f_get_function;
	cu->cuFuncGetAttribute = f_func_attr;
	cu->cuLaunchKernel = f_launch;
	cu->cuGetErrorName = f_error_name;
	cu->cuGetErrorString = f_error_string;
	cu->cuStreamBeginCapture = f_begin;
	cu->cuStreamEndCapture = f_end;
	cu->cuGraphInstantiate = f_instantiate;
	cu->cuGraphLaunch = f_graph_launch;
	cu->cuGraphExecDestroy = f_exec_destroy;
	cu->cuGraphDestroy = f_graph_destroy;
	gfn_cuda_api_install(&t);
}

void fake_uninstall(void)
{
	gfn_cuda_api_reset();
}

fake_state fake_snapshot(void)
{
	fake_state s;

	pthread_mutex_lock(&fake.lock);
	s = fake;
	pthread_mutex_unlock(&fake.lock);
	return s;
}

int fake_leaks(void)
{
	fake_state s = fake_snapshot();
	int refs = 0;

	for (int d = 0; d < FAKE_MAX_DEV; d++)
		refs += s.dev[d].refs;
	if (!s.mem_live && !s.host_live && !s.streams_live && !s.modules_live &&
	    !s.regs_live && !s.graphs_live && !s.events_live && !refs)
		return 0;
	fprintf(stderr,
	        "fake driver leaks: mem %ld host %ld streams %ld modules %ld "
	        "registrations %ld graphs %ld events %ld context refs %d\n",
	        s.mem_live, s.host_live, s.streams_live, s.modules_live,
	        s.regs_live, s.graphs_live, s.events_live, refs);
	return 1;
}
