/*
 * registry.c - registered functions.
 *
 * Invocations take a reference to their function with one compare-and-swap
 * on the slot word (generation, dead bit, reference count), so the invoke
 * path takes no lock here. The registry lock guards names, the free list
 * and the freeing of a function whose last reference went.
 *
 * Function ids: generation << 12 | slot, generations 1 .. 2^20-1.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

#define SLOT_BITS 12
#define GEN_MAX ((1u << 20) - 1)

_Static_assert(GFN_MAX_FUNCTIONS == 1u << SLOT_BITS, "slot bits");

static uint32_t id_slot(gfn_function id)
{
	return id.id & (GFN_MAX_FUNCTIONS - 1);
}

static uint32_t id_gen(gfn_function id)
{
	return id.id >> SLOT_BITS;
}

gfn_status gfn__registry_init(gfn_engine *e)
{
	e->fn_slots = calloc(GFN_MAX_FUNCTIONS, sizeof(*e->fn_slots));
	if (!e->fn_slots)
		return gfn__fail(GFN_ENOMEM, "no memory for the registry");
	pthread_mutex_init(&e->fn_lock, NULL);
	for (uint32_t i = GFN_MAX_FUNCTIONS; i-- > 0;) {
		atomic_init(&e->fn_slots[i].word, (uint64_t)1 << 32);
		e->fn_slots[i].next_free = e->fn_free;
		e->fn_free = i;
	}
	return GFN_OK;
}

/* The copies fn owns of its kernels' sources, images and options. */
static void fn_free_copies(gfn_fn *fn)
{
	free(fn->ocl_source);
	free(fn->ocl_options);
	free(fn->cuda_image);
	free(fn->cuda_source);
	free(fn->cuda_options);
}

void gfn__devctx(const gfn_engine *e, int i, gfn_devctx *out)
{
	out->ops = e->devs[i].ops;
	out->bdev = e->devs[i].bdev;
	out->device = i;
	out->kcache = e->kcache;
}

/* Unload the kernels, release the device program's state, hand the
   user's data back, free fn. Caller holds fn_lock or is alone. */
static void fn_free(gfn_engine *e, gfn_fn *fn)
{
	gfn_devctx c;

	fn_free_copies(fn);
	for (int d = 0; d < e->ndev; d++) {
		if (fn->kernel[d])
			e->devs[d].ops->kernel_unload(e->devs[d].bdev,
			                              fn->kernel[d]);
		if (fn->dx_on >> d & 1) {
			gfn__devctx(e, d, &c);
			fn->dx.release(fn->cpu_user, &c);
		}
	}
	if (fn->user_free)
		fn->user_free(fn->cpu_user);
	free(fn);
}

void gfn__registry_fini(gfn_engine *e)
{
	if (!e->fn_slots)
		return;
	for (uint32_t i = 0; i < GFN_MAX_FUNCTIONS; i++)
		if (e->fn_slots[i].fn)
			fn_free(e, e->fn_slots[i].fn);
	free(e->fn_slots);
	pthread_mutex_destroy(&e->fn_lock);
}

/* ---- signature checks ------------------------------------------------------- */

static gfn_status check_spec(const gfn_tensor_spec *t, const char *what,
                             size_t k, int is_output, unsigned *bound)
{
	if (!gfn_dtype_size(t->dtype))
		return gfn__fail(GFN_EINVAL, "%s %zu has unknown dtype %d",
		                 what, k, (int)t->dtype);
	if (t->ndim < 0 || t->ndim > GFN_MAX_DIMS)
		return gfn__fail(GFN_EINVAL, "%s %zu: ndim %d outside 0..%d",
		                 what, k, t->ndim, GFN_MAX_DIMS);
	for (int d = 0; d < t->ndim; d++) {
		int64_t x = t->dims[d];
		int64_t var = -2 - x;

		if (x >= 0)
			continue;
		if (x == GFN_DIM_ANY && !is_output)
			continue;
		if (x == GFN_DIM_ANY)
			return gfn__fail(GFN_EINVAL,
			                 "output %zu dim %d is GFN_DIM_ANY: an "
			                 "output extent must be known",
			                 k, d);
		if (var < 0 || var >= GFN_MAX_DIM_VARS)
			return gfn__fail(GFN_EINVAL,
			                 "%s %zu dim %d: bad extent %" PRId64,
			                 what, k, d, x);
		if (!is_output)
			*bound |= 1u << var;
		else if (!(*bound & (1u << var)))
			return gfn__fail(
			        GFN_EINVAL,
			        "output %zu dim %d uses size variable %" PRId64
			        " that no input binds",
			        k, d, var);
	}
	return GFN_OK;
}

static gfn_status check_work(const gfn_function_desc *d, const gfn_work_rule *w)
{
	if (w->kind < GFN_WORK_ELEMENTS || w->kind > GFN_WORK_FIXED)
		return gfn__fail(GFN_EINVAL, "%s: unknown work kind %d",
		                 d->name, (int)w->kind);
	if (w->tensor < 0 || (size_t)w->tensor >= d->n_inputs + d->n_outputs)
		return gfn__fail(
		        GFN_EINVAL, "%s: work rule names tensor %d of %zu",
		        d->name, w->tensor, d->n_inputs + d->n_outputs);
	if (w->kind == GFN_WORK_FIXED && !w->global[0])
		return gfn__fail(GFN_EINVAL, "%s: fixed work size is 0",
		                 d->name);
	return GFN_OK;
}

static gfn_status check_opencl(const gfn_function_desc *d)
{
	const gfn_opencl_kernel *k = d->opencl;

	if (!k->source || !k->name || !k->name[0] || strlen(k->name) > 63)
		return gfn__fail(GFN_EINVAL,
		                 "%s: OpenCL source and a kernel name of 1..63 "
		                 "chars are required",
		                 d->name);
	return check_work(d, &k->work);
}

static int same_work(const gfn_work_rule *a, const gfn_work_rule *b)
{
	return a->kind == b->kind && a->tensor == b->tensor &&
	       !memcmp(a->global, b->global, sizeof(a->global)) &&
	       !memcmp(a->local, b->local, sizeof(a->local)) &&
	       !a->pass_sizes == !b->pass_sizes;
}

static gfn_status check_cuda(const gfn_function_desc *d)
{
	const gfn_cuda_kernel *k = d->cuda;

	if (!k->image == !k->source || !k->name || !k->name[0] ||
	    strlen(k->name) > 63)
		return gfn__fail(GFN_EINVAL,
		                 "%s: CUDA needs an image or source (one of "
		                 "them) and a kernel name of 1..63 chars",
		                 d->name);
	/* The engine keeps one work rule per function (fn->work). */
	if (d->opencl && !same_work(&d->opencl->work, &k->work))
		return gfn__fail(GFN_EINVAL,
		                 "%s: the OpenCL and CUDA work rules differ",
		                 d->name);
	return check_work(d, &k->work);
}

/* A batching function joins every tensor along dimension 0. */
static gfn_status check_batch(const gfn_function_desc *d)
{
	if (d->batch_max <= 1)
		return GFN_OK;
	for (size_t k = 0; k < d->n_inputs + d->n_outputs; k++) {
		const gfn_tensor_spec *t =
		        k < d->n_inputs ? &d->inputs[k]
		                        : &d->outputs[k - d->n_inputs];
		if (t->ndim < 1 || t->dims[0] != GFN_DIM_VAR(0))
			return gfn__fail(
			        GFN_EINVAL,
			        "%s: batch_max %u needs GFN_DIM_VAR(0) "
			        "as the first extent of every tensor "
			        "(tensor %zu)",
			        d->name, d->batch_max, k);
	}
	if (!d->n_inputs && !d->n_outputs)
		return gfn__fail(GFN_EINVAL, "%s: batching needs tensors",
		                 d->name);
	return GFN_OK;
}

static gfn_status check_desc(const gfn_function_desc *d)
{
	size_t len = d->name ? strlen(d->name) : 0;
	unsigned bound = 0;
	gfn_status s;

	if (len == 0 || len > 63)
		return gfn__fail(GFN_EINVAL,
		                 "function name must be 1..63 chars");
	if (d->n_inputs > GFN_MAX_INPUTS || d->n_outputs > GFN_MAX_OUTPUTS ||
	    d->n_params > GFN_MAX_PARAMS)
		return gfn__fail(GFN_EINVAL,
		                 "%s: too many inputs, outputs or params (max "
		                 "%d/%d/%d)",
		                 d->name, GFN_MAX_INPUTS, GFN_MAX_OUTPUTS,
		                 GFN_MAX_PARAMS);
	if ((d->n_inputs && !d->inputs) || (d->n_outputs && !d->outputs) ||
	    (d->n_params && !d->params))
		return gfn__fail(GFN_EINVAL, "%s: a signature array is NULL",
		                 d->name);
	if (!d->cpu_fn && !d->opencl && !d->cuda)
		return gfn__fail(
		        GFN_EINVAL,
		        "%s: no implementation (cpu_fn, opencl or cuda)",
		        d->name);
	if (d->opencl && (s = check_opencl(d)) != GFN_OK)
		return s;
	if ((s = check_batch(d)) != GFN_OK)
		return s;
	if (d->cuda && (s = check_cuda(d)) != GFN_OK)
		return s;
	for (size_t k = 0; k < d->n_inputs; k++)
		if ((s = check_spec(&d->inputs[k], "input", k, 0, &bound)))
			return s;
	for (size_t k = 0; k < d->n_outputs; k++)
		if ((s = check_spec(&d->outputs[k], "output", k, 1, &bound)))
			return s;
	for (size_t k = 0; k < d->n_params; k++)
		if (d->params[k].type < GFN_PARAM_F64 ||
		    d->params[k].type > GFN_PARAM_I32)
			return gfn__fail(GFN_EINVAL,
			                 "%s: param %zu has bad type", d->name,
			                 k);
	return GFN_OK;
}

/* ---- register ------------------------------------------------------------------ */

static void copy_specs(gfn_tensor_spec *dst, const gfn_tensor_spec *src,
                       size_t n)
{
	for (size_t k = 0; k < n; k++) {
		dst[k] = src[k];
		dst[k].name = NULL; /* not owned; messages use the index */
	}
}

/* The kernel source of fn for dev's backend; 0 when it has none. */
int gfn__fn_source(gfn_engine *e, const gfn_fn *fn, const gfn_dev *dev,
                   gfn_ksrc *src)
{
	memset(src, 0, sizeof(*src));
	if (dev->ops->kind == GFN_BACKEND_CPU && fn->cpu_fn) {
		src->kind = GFN_KSRC_CPU_FN;
		src->cpu_fn = fn->cpu_fn;
		src->user = fn->cpu_user;
		return 1;
	}
	if (dev->ops->kind == GFN_BACKEND_OPENCL && fn->has_ocl) {
		src->kind = GFN_KSRC_OPENCL_C;
		src->text = fn->ocl_source;
		src->options = fn->ocl_options;
		src->entry = fn->ocl_name;
		src->kcache = e->kcache;
		return 1;
	}
	if (dev->ops->kind == GFN_BACKEND_CUDA && fn->has_cuda) {
		src->kind =
		        fn->cuda_image ? GFN_KSRC_CUDA_PTX : GFN_KSRC_CUDA_C;
		src->text = fn->cuda_image ? fn->cuda_image : fn->cuda_source;
		src->len = fn->cuda_image ? fn->cuda_image_len
		                          : strlen(fn->cuda_source);
		src->options = fn->cuda_options;
		src->entry = fn->cuda_name;
		src->kcache = e->kcache;
		return 1;
	}
	return 0;
}

/* Prepare fn's device program on device i: 1 when it will run there. */
static int prepare_dx(gfn_engine *e, gfn_fn *fn, int i, gfn_status *s)
{
	int loads = 0, hits = 0;
	gfn_devctx c;

	*s = GFN_OK;
	if (!fn->has_dx || !(fn->dx.backends & e->devs[i].ops->kind))
		return 0;
	gfn__devctx(e, i, &c);
	*s = fn->dx.prepare(fn->cpu_user, &c, &loads, &hits);
	atomic_fetch_add(&e->kernel_compiles, (uint64_t)loads);
	atomic_fetch_add(&e->kernel_cache_hits, (uint64_t)hits);
	if (*s == GFN_ENOTSUP) { /* not on this device: fine */
		*s = GFN_OK;
		return 0;
	}
	if (*s != GFN_OK)
		return 0;
	fn->dx_on |= 1ull << i; /* released in fn_free */
	return 1;
}

/* Load the kernel (or prepare the device program) on every device that
   can run fn. */
static gfn_status load_kernels(gfn_engine *e, gfn_fn *fn)
{
	int loaded = 0;

	for (int i = 0; i < e->ndev; i++) {
		gfn_dev *dev = &e->devs[i];
		int cached = 0;
		gfn_ksrc src;
		gfn_status s;

		if (!gfn__fn_source(e, fn, dev, &src)) {
			if (prepare_dx(e, fn, i, &s)) {
				fn->runs_on |= 1ull << i;
				loaded++;
			}
			if (s != GFN_OK)
				return s;
			continue;
		}
		s = dev->ops->kernel_load(dev->bdev, &src, &fn->kernel[i],
		                          &cached);
		if (s != GFN_OK)
			return s;
		atomic_fetch_add(cached ? &e->kernel_cache_hits
		                        : &e->kernel_compiles,
		                 1);
		fn->runs_on |= 1ull << i; /* fixed from now on */
		loaded++;
	}
	if (!loaded)
		return gfn__fail(GFN_ENODEV,
		                 "%s: no device of this engine has a backend "
		                 "it is implemented for",
		                 fn->name);
	return GFN_OK;
}

static gfn_status copy_opencl(gfn_fn *fn, const gfn_opencl_kernel *k)
{
	fn->has_ocl = 1;
	fn->work = k->work;
	strcpy(fn->ocl_name, k->name); /* length checked: < 64 */
	fn->ocl_source = strdup(k->source);
	fn->ocl_options = strdup(k->options ? k->options : "");
	return fn->ocl_source && fn->ocl_options ? GFN_OK : GFN_ENOMEM;
}

/* Own copies of k's image (NUL-padded; PTX text keeps its NUL in the
   length) or source, and its options. */
static gfn_status copy_cuda(gfn_fn *fn, const gfn_cuda_kernel *k)
{
	fn->has_cuda = 1;
	fn->work = k->work; /* the same as OpenCL's when both are given */
	strcpy(fn->cuda_name, k->name); /* length checked: < 64 */
	fn->cuda_options = strdup(k->options ? k->options : "");
	if (k->source) {
		fn->cuda_source = strdup(k->source);
		return fn->cuda_source && fn->cuda_options ? GFN_OK
		                                           : GFN_ENOMEM;
	}
	fn->cuda_image_len = k->image_len ? k->image_len : strlen(k->image) + 1;
	fn->cuda_image = calloc(1, fn->cuda_image_len + 1);
	if (!fn->cuda_image || !fn->cuda_options)
		return GFN_ENOMEM;
	memcpy(fn->cuda_image, k->image, fn->cuda_image_len);
	return GFN_OK;
}

static gfn_fn *fn_make(const gfn_function_desc *d)
{
	gfn_fn *fn = calloc(1, sizeof(*fn));

	if (!fn)
		return NULL;
	strcpy(fn->name, d->name); /* length checked: < 64 */
	fn->n_in = d->n_inputs;
	fn->n_out = d->n_outputs;
	fn->n_par = d->n_params;
	copy_specs(fn->in, d->inputs, d->n_inputs);
	copy_specs(fn->out, d->outputs, d->n_outputs);
	for (size_t k = 0; k < d->n_params; k++)
		fn->par[k] = d->params[k].type;
	fn->cpu_fn = d->cpu_fn;
	fn->batch_max = d->batch_max > 1 ? d->batch_max : 0;
	fn->load_cost = d->load_cost_ns;
	fn->cpu_user = d->user;
	if ((d->opencl && copy_opencl(fn, d->opencl) != GFN_OK) ||
	    (d->cuda && copy_cuda(fn, d->cuda) != GFN_OK)) {
		fn_free_copies(fn);
		free(fn);
		return NULL;
	}
	return fn;
}

/* Slot index of the live function called name, or -1. fn_lock held. */
static int find_name(gfn_engine *e, const char *name)
{
	for (int i = 0; i < GFN_MAX_FUNCTIONS; i++) {
		gfn_fn_slot *s = &e->fn_slots[i];
		uint64_t w = atomic_load(&s->word);
		if (s->fn && !(w & FN_DEAD) && (w & FN_REFS) &&
		    !strcmp(s->fn->name, name))
			return i;
	}
	return -1;
}

/* Put fn in a free slot under its name; fn_lock held. */
static gfn_status publish(gfn_engine *e, gfn_fn *fn, gfn_function *out)
{
	gfn_fn_slot *s;
	uint32_t i, gen;

	if (find_name(e, fn->name) >= 0)
		return gfn__fail(GFN_EEXIST,
		                 "function %s is already registered", fn->name);
	if (e->fn_free == UINT32_MAX)
		return gfn__fail(GFN_ENOMEM, "registry full (%d functions)",
		                 GFN_MAX_FUNCTIONS);
	i = e->fn_free;
	s = &e->fn_slots[i];
	e->fn_free = s->next_free;
	gen = (uint32_t)(atomic_load(&s->word) >> 32);
	fn->slot = i;
	s->fn = fn;
	atomic_store(&s->word, (uint64_t)gen << 32 | 1); /* registry's ref */
	out->id = gen << SLOT_BITS | i;
	return GFN_OK;
}

static gfn_status register_fn(gfn_engine *e, const gfn_function_desc *desc,
                              const gfn_devfn *x, gfn_function *out)
{
	gfn_status s;
	gfn_fn *fn;

	if (!e || !desc || !out)
		return gfn__fail(GFN_EINVAL,
		                 "engine, desc and out are required");
	if (atomic_load(&e->stopping))
		return gfn__fail(GFN_ESHUTDOWN, "engine is shutting down");
	if ((s = check_desc(desc)) != GFN_OK)
		return s;
	fn = fn_make(desc);
	if (!fn)
		return gfn__fail(GFN_ENOMEM, "no memory for function %s",
		                 desc->name);
	if (x) {
		fn->dx = *x;
		fn->has_dx = 1;
	}
	atomic_fetch_add(&e->host_allocs, 1);
	s = load_kernels(e, fn);
	if (s == GFN_OK) {
		pthread_mutex_lock(&e->fn_lock);
		s = publish(e, fn, out);
		if (s == GFN_OK) /* from now on the engine frees user */
			fn->user_free = desc->user_free;
		pthread_mutex_unlock(&e->fn_lock);
	}
	if (s != GFN_OK)
		fn_free(e, fn);
	return s;
}

gfn_status gfn_function_register(gfn_engine *e, const gfn_function_desc *desc,
                                 gfn_function *out)
{
	return register_fn(e, desc, NULL, out);
}

gfn_status gfn__function_register_dev(gfn_engine *e,
                                      const gfn_function_desc *desc,
                                      const gfn_devfn *x, gfn_function *out)
{
	if (!x || !x->run || !x->prepare || !x->release)
		return gfn__fail(GFN_EINVAL, "incomplete device program");
	return register_fn(e, desc, x, out);
}

gfn_status gfn_function_find(gfn_engine *e, const char *name, gfn_function *out)
{
	int i;

	if (!e || !name || !out)
		return gfn__fail(GFN_EINVAL,
		                 "engine, name and out are required");
	pthread_mutex_lock(&e->fn_lock);
	i = find_name(e, name);
	if (i >= 0)
		out->id = (uint32_t)(atomic_load(&e->fn_slots[i].word) >> 32)
		                  << SLOT_BITS |
		          (uint32_t)i;
	pthread_mutex_unlock(&e->fn_lock);
	if (i < 0)
		return gfn__fail(GFN_ENOENT, "no function named %s", name);
	return GFN_OK;
}

/* ---- references --------------------------------------------------------------- */

static gfn_status bad_id(gfn_function id, uint64_t w)
{
	uint32_t gen = (uint32_t)(w >> 32);

	if (!id.id || id_gen(id) > gen || (gen == 1 && !(w & FN_REFS)))
		return gfn__fail(GFN_ENOENT, "no function with id %" PRIu32,
		                 id.id);
	return gfn__fail(GFN_ESTALE, "function %" PRIu32 " was unregistered",
	                 id.id);
}

gfn_status gfn__fn_acquire(gfn_engine *e, gfn_function id, gfn_fn **out)
{
	gfn_fn_slot *s = &e->fn_slots[id_slot(id)];
	uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);

	for (;;) {
		if ((uint32_t)(w >> 32) != id_gen(id) || (w & FN_DEAD) ||
		    !(w & FN_REFS) || !id.id)
			return bad_id(id, w);
		if (atomic_compare_exchange_weak_explicit(&s->word, &w, w + 1,
		                                          memory_order_acquire,
		                                          memory_order_acquire))
			break;
	}
	*out = s->fn;
	return GFN_OK;
}

/* Last reference gone: free the function, recycle the slot. */
static void slot_retire(gfn_engine *e, uint32_t i, uint64_t w)
{
	gfn_fn_slot *s = &e->fn_slots[i];
	uint32_t gen = (uint32_t)(w >> 32) + 1;

	pthread_mutex_lock(&e->fn_lock);
	fn_free(e, s->fn);
	s->fn = NULL;
	atomic_store(&s->word, (uint64_t)(gen > GEN_MAX ? 1 : gen) << 32);
	s->next_free = e->fn_free;
	e->fn_free = i;
	pthread_mutex_unlock(&e->fn_lock);
}

void gfn__fn_release(gfn_engine *e, gfn_fn *fn)
{
	gfn_fn_slot *s = &e->fn_slots[fn->slot];
	uint64_t w =
	        atomic_fetch_sub_explicit(&s->word, 1, memory_order_acq_rel) -
	        1;

	if (!(w & FN_REFS))
		slot_retire(e, fn->slot, w);
}

gfn_status gfn_function_unregister(gfn_engine *e, gfn_function id)
{
	gfn_fn_slot *s;
	uint64_t w, nw;

	if (!e)
		return gfn__fail(GFN_EINVAL, "engine is NULL");
	s = &e->fn_slots[id_slot(id)];
	w = atomic_load(&s->word);
	do {
		if ((uint32_t)(w >> 32) != id_gen(id) || (w & FN_DEAD) ||
		    !(w & FN_REFS) || !id.id)
			return bad_id(id, w);
		nw = (w | FN_DEAD) - 1; /* drop the registry's reference */
	} while (!atomic_compare_exchange_weak(&s->word, &w, nw));
	if (!(nw & FN_REFS))
		slot_retire(e, id_slot(id), nw);
	return GFN_OK;
}

gfn_status gfn_function_get_info(gfn_engine *e, gfn_function id,
                                 gfn_function_info *out)
{
	gfn_status s;
	gfn_fn *fn = NULL;

	if (!e || !out)
		return gfn__fail(GFN_EINVAL, "engine and out are required");
	if ((s = gfn__fn_acquire(e, id, &fn)) != GFN_OK)
		return s;
	memset(out, 0, sizeof(*out));
	strcpy(out->name, fn->name); /* both 64 bytes */
	out->n_inputs = fn->n_in;
	out->n_outputs = fn->n_out;
	out->n_params = fn->n_par;
	memcpy(out->param_types, fn->par, sizeof(out->param_types));
	out->batch_max = fn->batch_max;
	gfn__fn_release(e, fn);
	return GFN_OK;
}
