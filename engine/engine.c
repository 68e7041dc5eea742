/*
 * engine.c - the public engine calls: create/destroy, devices, objects,
 * invocation and statistics. The work itself is in sched.c, future.c,
 * registry.c and store.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

#define SUBMIT_CHUNK 256 /* invocations prepared and queued per round */

void gfn_config_init(gfn_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->backends = GFN_BACKEND_ALL;
	cfg->cpu_devices = 1;
	cfg->workers_per_device = 1;
	cfg->queue_capacity = 65536;
	cfg->store_capacity = (size_t)1 << 30;
	cfg->max_objects = (size_t)1 << 20;
	cfg->max_futures = (size_t)1 << 20;
	cfg->shutdown = GFN_SHUTDOWN_DRAIN;
	cfg->spin_us = 50;
	cfg->device_pool_chunk = (size_t)64 << 20;
	cfg->numa_link_gbs = 20;
	cfg->tenant_max_inflight = -1;
	cfg->tenant_device_bytes = -1;
	cfg->batch_delay_us = 200;
	cfg->segment_size = (size_t)64 << 20;
}

/* Copy cfg, putting defaults where a field is zero; reject nonsense. */
static gfn_status take_config(gfn_engine *e, const gfn_config *cfg)
{
	gfn_config d;

	gfn_config_init(&d);
	e->cfg = cfg ? *cfg : d;
	if (!e->cfg.cpu_devices)
		e->cfg.cpu_devices = d.cpu_devices;
	if (!e->cfg.workers_per_device)
		e->cfg.workers_per_device = d.workers_per_device;
	if (!e->cfg.queue_capacity)
		e->cfg.queue_capacity = d.queue_capacity;
	if (!e->cfg.store_capacity)
		e->cfg.store_capacity = d.store_capacity;
	if (!e->cfg.max_objects)
		e->cfg.max_objects = d.max_objects;
	if (!e->cfg.max_futures)
		e->cfg.max_futures = d.max_futures;
	if (e->cfg.tenant_max_inflight == 0 ||
	    e->cfg.tenant_max_inflight < -1 ||
	    e->cfg.tenant_device_bytes == 0 || e->cfg.tenant_device_bytes < -1)
		return gfn__fail(GFN_EINVAL,
		                 "tenant limits must be -1 (none) or positive "
		                 "(max_inflight %lld, device_bytes %lld)",
		                 (long long)e->cfg.tenant_max_inflight,
		                 (long long)e->cfg.tenant_device_bytes);
	if (!e->cfg.batch_delay_us)
		e->cfg.batch_delay_us = d.batch_delay_us;
	if (!e->cfg.numa_link_gbs)
		e->cfg.numa_link_gbs = d.numa_link_gbs;
	if (!e->cfg.device_pool_chunk)
		e->cfg.device_pool_chunk = d.device_pool_chunk;
	if (!e->cfg.segment_size)
		e->cfg.segment_size = d.segment_size;
	if (e->cfg.shutdown != GFN_SHUTDOWN_DRAIN &&
	    e->cfg.shutdown != GFN_SHUTDOWN_CANCEL)
		return gfn__fail(GFN_EINVAL, "unknown shutdown mode %d",
		                 (int)e->cfg.shutdown);
	if (e->cfg.workers_per_device > 256 || e->cfg.cpu_devices > 64 ||
	    e->cfg.queue_capacity > ((size_t)1 << 26) ||
	    e->cfg.max_futures > ((size_t)1 << 31) ||
	    e->cfg.max_objects > ((size_t)1 << 31))
		return gfn__fail(GFN_EINVAL,
		                 "config out of range (workers <= 256, cpu "
		                 "devices <= 64, queue <= 2^26, objects and "
		                 "futures <= 2^31)");
	return GFN_OK;
}

/* Record a registration for unregistering at destroy. reg_lock held. */
static gfn_status remember_region(gfn_engine *e, int dev, void *handle,
                                  void *base, size_t len)
{
	if (e->nregs == e->capregs) {
		size_t cap = e->capregs ? 2 * e->capregs : 16;
		gfn_reg *r = realloc(e->regs, cap * sizeof(*r));
		if (!r)
			return gfn__fail(GFN_ENOMEM, "no memory for regions");
		e->regs = r;
		e->capregs = cap;
		atomic_fetch_add(&e->host_allocs, 1);
	}
	e->regs[e->nregs++] = (gfn_reg){dev, handle, base, len};
	return GFN_OK;
}

static gfn_status make_store(gfn_engine *e)
{
	gfn_store_config sc;

	memset(&sc, 0, sizeof(sc));
	sc.capacity = e->cfg.store_capacity;
	sc.max_objects = e->cfg.max_objects;
	sc.segment_size = e->cfg.segment_size;
	sc.tenant_quota = e->cfg.tenant_quota_bytes;
	sc.socket_path = e->cfg.store_socket;
	/* Segments per NUMA node of the machine, real or described. */
	sc.numa_nodes = gfn_topology_nodes(e->topo);
	/* Every segment is registered with every device once, and dropped
	   when the store gives the segment back. */
	sc.on_region = gfn__region_register;
	sc.on_region_gone = gfn__region_gone;
	sc.region_ctx = e;
	return gfn_store_create(&sc, &e->store);
}

/* The kernel cache: on disk unless kcache_dir is "". */
static gfn_status open_kcache(gfn_engine *e)
{
	const char *dir = e->cfg.kcache_dir;

	return gfn_kcache_open(dir && dir[0] ? dir : NULL, !dir || dir[0],
	                       &e->kcache);
}

gfn_status gfn__region_register(void *engine, void *base, size_t len)
{
	gfn_engine *e = engine;
	gfn_status s = GFN_OK;

	pthread_mutex_lock(&e->reg_lock);
	for (int i = 0; i < e->ndev && s == GFN_OK; i++) {
		gfn_dev *d = &e->devs[i];
		void *h = NULL;

		if (gfn_backend_host_register(d->ops, d->bdev, base, len, &h) !=
		    GFN_OK) {
			gfn__log(GFN_LOG_INFO, "%s: region not registered: %s",
			         d->info.name, gfn_error_detail());
			continue; /* copies read host memory directly */
		}
		if (!h)
			continue; /* the device is the host */
		s = remember_region(e, i, h, base, len);
		if (s != GFN_OK)
			gfn_backend_host_unregister(d->ops, d->bdev, h);
		else
			atomic_fetch_add(&e->pinnings, 1);
	}
	pthread_mutex_unlock(&e->reg_lock);
	return s;
}

void gfn__region_gone(void *engine, void *base, size_t len)
{
	gfn_engine *e = engine;

	(void)len;
	pthread_mutex_lock(&e->reg_lock);
	for (size_t k = 0; k < e->nregs;) {
		gfn_reg *r = &e->regs[k];
		gfn_dev *d = &e->devs[r->dev];

		if (r->base != base) {
			k++;
			continue;
		}
		if (r->handle)
			gfn_backend_host_unregister(d->ops, d->bdev, r->handle);
		*r = e->regs[--e->nregs]; /* order does not matter */
	}
	pthread_mutex_unlock(&e->reg_lock);
}

void gfn__regions_unregister(gfn_engine *e)
{
	for (size_t k = 0; k < e->nregs; k++) {
		gfn_dev *d = &e->devs[e->regs[k].dev];
		if (e->regs[k].handle)
			gfn_backend_host_unregister(d->ops, d->bdev,
			                            e->regs[k].handle);
	}
	free(e->regs);
	e->regs = NULL;
	e->nregs = e->capregs = 0;
}

/* Config first, then the environment: tests describe other machines. */
static const char *cfg_or_env(const char *v, const char *env)
{
	return v ? v : getenv(env);
}

/* The bus id of device i in a comma-separated mapping, or "". */
static void mapped_busid(const char *map, int i, char *out, size_t len)
{
	const char *p = map;

	out[0] = '\0';
	for (int k = 0; p && k < i; k++) {
		p = strchr(p, ',');
		p = p ? p + 1 : NULL;
	}
	if (p) {
		size_t n = strcspn(p, ",");
		snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), p);
	}
}

static int count_entries(const char *map)
{
	int n = 1;

	for (; *map; map++)
		n += *map == ',';
	return n;
}

/* On this machine, put a device's staging pool on the device's node. */
static void pin_staging(gfn_engine *e, gfn_dev *d)
{
	if (d->info.numa_node < 0 || !gfn_topology_is_real(e->topo) ||
	    !d->ops->set_numa_node)
		return;
	if (d->ops->set_numa_node(d->bdev, d->info.numa_node) != GFN_OK)
		gfn__log(GFN_LOG_WARN, "%s: staging pool not on node %d: %s",
		         d->info.name, d->info.numa_node, gfn_error_detail());
}

/*
 * Load the topology and give every device its NUMA node: from the
 * mapping when one is given, else from its own PCI bus id.
 */
static gfn_status apply_topology(gfn_engine *e)
{
	const char *xml = cfg_or_env(e->cfg.topology_xml, "GFN_TOPOLOGY_XML");
	const char *map =
	        cfg_or_env(e->cfg.topology_devices, "GFN_TOPOLOGY_DEVICES");
	gfn_status s = gfn_topology_load(xml, &e->topo);
	char id[32];

	if (s != GFN_OK)
		return s;
	if (map && map[0] && count_entries(map) > e->ndev)
		return gfn__fail(GFN_EINVAL,
		                 "topology_devices maps %d devices, the engine "
		                 "has %d",
		                 count_entries(map), e->ndev);
	for (int i = 0; i < e->ndev; i++) {
		gfn_device_info *info = &e->devs[i].info;

		mapped_busid(map && map[0] ? map : NULL, i, id, sizeof(id));
		if (id[0] && !gfn_topology_has_pci(e->topo, id))
			return gfn__fail(GFN_EINVAL,
			                 "topology_devices names %s for device "
			                 "%d; the topology has no such device",
			                 id, i);
		info->numa_node = gfn_topology_pci_node(
		        e->topo, id[0] ? id : info->pci_bus_id);
		pin_staging(e, &e->devs[i]);
	}
	return GFN_OK;
}

static gfn_status probe(gfn_engine *e)
{
	gfn_status s = gfn_backends_probe(e->cfg.backends, e->cfg.cpu_devices,
	                                  e->backends, &e->nbackends);

	if (s != GFN_OK)
		return s;
	if (!e->nbackends)
		return gfn__fail(
		        GFN_ENODEV,
		        "no backend selected by mask 0x%x has a device",
		        e->cfg.backends);
	return GFN_OK;
}

gfn_status gfn_engine_create(const gfn_config *cfg, gfn_engine **out)
{
	gfn_engine *e;
	gfn_status s;

	if (!out)
		return gfn__fail(GFN_EINVAL, "out is NULL");
	*out = NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return gfn__fail(GFN_ENOMEM, "no memory for an engine");
	pthread_mutex_init(&e->reg_lock, NULL);
	/* Devices before the store: its regions get registered with them. */
	if ((s = take_config(e, cfg)) != GFN_OK ||
	    (s = gfn__registry_init(e)) != GFN_OK ||
	    (s = gfn__jobs_init(e)) != GFN_OK ||
	    (s = gfn__tenants_init(e)) != GFN_OK || (s = probe(e)) != GFN_OK ||
	    (s = gfn__devices_open(e)) != GFN_OK ||
	    (s = apply_topology(e)) != GFN_OK ||
	    (s = open_kcache(e)) != GFN_OK || (s = make_store(e)) != GFN_OK ||
	    (s = gfn__workers_start(e)) != GFN_OK) {
		char why[512];
		strcpy(why, gfn_error_detail()); /* destroy may overwrite it */
		gfn_engine_destroy(e);
		return gfn__fail(s, "%s", why);
	}
	*out = e;
	return GFN_OK;
}

void gfn_engine_destroy(gfn_engine *e)
{
	if (!e)
		return;
	gfn_store_shutdown(e->store); /* no client, no new region */
	if (e->devs)
		gfn__workers_stop(e);
	gfn__registry_fini(e);      /* unloads kernels: before the devices */
	gfn__regions_unregister(e); /* before the store unmaps them */
	gfn_store_destroy(e->store);
	gfn__devices_close(e);
	gfn__jobs_fini(e);
	gfn_kcache_close(e->kcache);
	gfn_topology_free(e->topo);
	gfn__tenants_fini(e);
	pthread_mutex_destroy(&e->reg_lock);
	free(e);
}

/* ---- devices -------------------------------------------------------------- */

gfn_status gfn_device_count(gfn_engine *e, size_t *count)
{
	if (!e || !count)
		return gfn__fail(GFN_EINVAL, "engine and count are required");
	*count = (size_t)e->ndev;
	return GFN_OK;
}

static gfn_status device_at(gfn_engine *e, size_t index, const void *out)
{
	if (!e || !out)
		return gfn__fail(GFN_EINVAL, "engine and out are required");
	if (index >= (size_t)e->ndev)
		return gfn__fail(GFN_ERANGE, "device %zu of %d", index,
		                 e->ndev);
	return GFN_OK;
}

gfn_status gfn_device_get_info(gfn_engine *e, size_t index,
                               gfn_device_info *info)
{
	gfn_status s = device_at(e, index, info);

	if (s == GFN_OK)
		*info = e->devs[index].info;
	return s;
}

gfn_status gfn_device_get_stats(gfn_engine *e, size_t index,
                                gfn_device_stats *out)
{
	gfn_status s = device_at(e, index, out);

	if (s != GFN_OK)
		return s;
	out->completed = atomic_load(&e->devs[index].completed) +
	                 atomic_load(&e->devs[index].failed);
	out->queued = atomic_load(&e->devs[index].count);
	out->bound_workers = atomic_load(&e->devs[index].bound_workers);
	return GFN_OK;
}

/* ---- objects ---------------------------------------------------------------- */

gfn_status gfn_object_create(gfn_engine *e, gfn_dtype dtype, int ndim,
                             const int64_t *shape, gfn_object *out)
{
	if (!e || !out)
		return gfn__fail(GFN_EINVAL, "engine and out are required");
	return gfn_store_create_object(e->store, dtype, ndim, shape, out, NULL);
}

gfn_status gfn_object_create_on(gfn_engine *e, gfn_dtype dtype, int ndim,
                                const int64_t *shape, int numa_node,
                                gfn_object *out)
{
	if (!e || !out)
		return gfn__fail(GFN_EINVAL, "engine and out are required");
	return gfn_store_create_object_on(e->store, dtype, ndim, shape,
	                                  numa_node, out, NULL);
}

gfn_status gfn_object_create_for(gfn_engine *e, uint32_t tenant,
                                 gfn_dtype dtype, int ndim,
                                 const int64_t *shape, gfn_object *out)
{
	if (!e || !out)
		return gfn__fail(GFN_EINVAL, "engine and out are required");
	return gfn_store_create_at(e->store, tenant, -1, GFN_STORE_NODE_HERE,
	                           dtype, ndim, shape, out, NULL);
}

gfn_status gfn_object_write(gfn_engine *e, gfn_object obj, size_t off,
                            const void *src, size_t len)
{
	if (!e || (!src && len))
		return gfn__fail(GFN_EINVAL, "engine and src are required");
	return gfn_store_write(e->store, obj, off, src, len);
}

gfn_status gfn_object_map(gfn_engine *e, gfn_object obj, void **data,
                          size_t *size)
{
	if (!e || !data || !size)
		return gfn__fail(GFN_EINVAL,
		                 "engine, data and size are required");
	return gfn_store_map(e->store, obj, data, size);
}

gfn_status gfn_object_seal(gfn_engine *e, gfn_object obj)
{
	if (!e)
		return gfn__fail(GFN_EINVAL, "engine is NULL");
	return gfn_store_seal(e->store, obj);
}

gfn_status gfn_object_get(gfn_engine *e, gfn_object obj, gfn_object_view *view)
{
	if (!e || !view)
		return gfn__fail(GFN_EINVAL, "engine and view are required");
	return gfn_store_get(e->store, obj, view);
}

gfn_status gfn_object_release(gfn_engine *e, gfn_object obj)
{
	if (!e)
		return gfn__fail(GFN_EINVAL, "engine is NULL");
	return gfn_store_release(e->store, obj);
}

gfn_status gfn_object_tenant(gfn_engine *e, gfn_object obj, uint32_t *tenant)
{
	gfn_store_loc loc;
	gfn_status s;

	if (!e || !tenant)
		return gfn__fail(GFN_EINVAL, "engine and tenant are required");
	s = gfn_store_get_as(e->store, GFN_TENANT_ENGINE, obj, &loc);
	if (s != GFN_OK)
		return s;
	gfn_store_release_as(e->store, GFN_TENANT_ENGINE, obj);
	*tenant = loc.tenant;
	return GFN_OK;
}

gfn_status gfn_object_delete(gfn_engine *e, gfn_object obj)
{
	if (!e)
		return gfn__fail(GFN_EINVAL, "engine is NULL");
	return gfn_store_delete(e->store, obj);
}

/* ---- invocation ----------------------------------------------------------------- */

/* Bind size variables from one input; ESHAPE/EDTYPE on a mismatch. */
static gfn_status match_input(const gfn_tensor_spec *sp, const gfn_tensor *t,
                              size_t k, int64_t *vars)
{
	if (t->dtype != sp->dtype)
		return gfn__fail(GFN_EDTYPE, "input %zu is %s, expected %s", k,
		                 gfn_dtype_name(t->dtype),
		                 gfn_dtype_name(sp->dtype));
	if (t->ndim != sp->ndim)
		return gfn__fail(GFN_ESHAPE,
		                 "input %zu has %d dims, expected %d", k,
		                 t->ndim, sp->ndim);
	for (int d = 0; d < sp->ndim; d++) {
		int64_t want = sp->dims[d], got = t->shape[d];

		if (want >= 0 && got != want)
			return gfn__fail(GFN_ESHAPE,
			                 "input %zu dim %d is %" PRId64
			                 ", expected %" PRId64,
			                 k, d, got, want);
		if (want > GFN_DIM_ANY || want == GFN_DIM_ANY)
			continue;
		int64_t *v = &vars[-2 - want];
		if (*v >= 0 && *v != got)
			return gfn__fail(GFN_ESHAPE,
			                 "input %zu dim %d is %" PRId64
			                 " but size variable %" PRId64
			                 " is %" PRId64,
			                 k, d, got, -2 - want, *v);
		*v = got;
	}
	return GFN_OK;
}

/* Check inputs against the signature and shape the outputs. */
static gfn_status shape_job(const gfn_fn *fn, gfn_job *j)
{
	int64_t vars[GFN_MAX_DIM_VARS];
	gfn_status s;

	for (int v = 0; v < GFN_MAX_DIM_VARS; v++)
		vars[v] = -1;
	for (size_t k = 0; k < fn->n_in; k++)
		if ((s = match_input(&fn->in[k], &j->in[k], k, vars)))
			return s;
	for (size_t k = 0; k < fn->n_out; k++) {
		const gfn_tensor_spec *sp = &fn->out[k];
		gfn_tensor *t = &j->out[k];

		t->data = NULL;
		t->dtype = sp->dtype;
		t->ndim = sp->ndim;
		for (int d = 0; d < sp->ndim; d++)
			t->shape[d] = sp->dims[d] >= 0 ? sp->dims[d]
			                               : vars[-2 - sp->dims[d]];
	}
	return GFN_OK;
}

static gfn_status check_counts(const gfn_fn *fn, const gfn_invocation *inv)
{
	if (inv->n_inputs != fn->n_in || (inv->n_inputs && !inv->inputs))
		return gfn__fail(GFN_EINVAL, "%s takes %zu inputs, got %zu%s",
		                 fn->name, fn->n_in, inv->n_inputs,
		                 inv->inputs ? "" : " (NULL array)");
	if (inv->n_params != fn->n_par || (inv->n_params && !inv->params))
		return gfn__fail(GFN_EINVAL, "%s takes %zu params, got %zu%s",
		                 fn->name, fn->n_par, inv->n_params,
		                 inv->params ? "" : " (NULL array)");
	return GFN_OK;
}

/*
 * Where each input's bytes live, for placement. Only asked of the store
 * on a machine with several NUMA nodes: on one node nothing can cross.
 */
static void input_nodes(gfn_engine *e, gfn_job *j)
{
	int multi = gfn_topology_nodes(e->topo) > 1;

	for (int k = 0; k < j->n_in; k++)
		j->in_node[k] = (int8_t)(multi ? gfn_store_object_node(
		                                         e->store, j->in_id[k])
		                               : -1);
}

/* Priority and deadline; a deadline already passed is refused. */
static gfn_status schedule_of(gfn_job *j, const gfn_invocation *inv)
{
	uint64_t now;

	j->prio = inv->priority;
	j->deadline = inv->deadline_ns ? inv->deadline_ns : UINT64_MAX;
	if (!inv->deadline_ns || inv->deadline_ns > (now = gfn__now_ns()))
		return GFN_OK;
	return gfn__fail(GFN_ETIMEDOUT,
	                 "deadline passed %llu ns before submission",
	                 (unsigned long long)(now - inv->deadline_ns));
}

uint64_t gfn_clock_ns(void)
{
	return gfn__now_ns();
}

/* Some allowed device must be able to run the function. */
static gfn_status check_devices(gfn_engine *e, const gfn_job *j)
{
	for (int i = 0; i < e->ndev; i++)
		if ((j->fn->runs_on & (1ull << i)) &&
		    atomic_load(&e->devs[i].state) != DEV_RETIRED &&
		    (!j->devmask || (j->devmask & (1ull << i))))
			return GFN_OK;
	return gfn__fail(GFN_ENODEV,
	                 "no allowed device (mask 0x%llx) can run %s",
	                 (unsigned long long)j->devmask, j->fn->name);
}

/* Fill job j from inv, taking references; undone by gfn__job_abort. */
static gfn_status prepare(gfn_engine *e, const gfn_invocation *inv, gfn_job *j)
{
	gfn_status s;

	j->fn = NULL;
	j->t_submit = 0; /* not counted in fn->pending yet */
	j->est_ns = 0;
	j->link_dst = -1;
	j->quota = NULL;
	j->inputs_held = 0;
	j->outputs_live = 0;
	j->cb = NULL;
	if ((s = gfn__fn_acquire(e, inv->fn, &j->fn)) != GFN_OK)
		return s;
	if ((s = check_counts(j->fn, inv)) != GFN_OK)
		return s;
	j->n_in = (uint8_t)inv->n_inputs;
	j->n_out = (uint8_t)j->fn->n_out;
	j->n_par = (uint8_t)inv->n_params;
	s = gfn_store_acquire(e->store, inv->tenant, j->n_in, inv->inputs,
	                      j->in, &j->tenant);
	if (s != GFN_OK)
		return s;
	j->inputs_held = 1;
	if (j->n_in)
		memcpy(j->in_id, inv->inputs, j->n_in * sizeof(*inv->inputs));
	if ((s = shape_job(j->fn, j)) != GFN_OK)
		return s;
	if (j->n_par)
		memcpy(j->par, inv->params, j->n_par * sizeof(*inv->params));
	j->cb = inv->callback;
	j->cb_arg = inv->callback_arg;
	j->devmask = inv->devices;
	if (j->fn->batch_max > 1) { /* job_drop_args counts it out */
		j->t_submit = gfn__now_ns();
		atomic_fetch_add(&j->fn->pending, 1);
	}
	input_nodes(e, j);
	if ((s = schedule_of(j, inv)) != GFN_OK)
		return s;
	if ((s = gfn__tenant_admit(e, inv->tenant, &j->quota)) != GFN_OK)
		return s;
	return check_devices(e, j);
}

/* Prepare and queue up to SUBMIT_CHUNK invocations; see invoke_many. */
static gfn_status submit_chunk(gfn_engine *e, const gfn_invocation *invs,
                               size_t n, gfn_future *out, size_t *accepted)
{
	gfn_job *jobs[SUBMIT_CHUNK];
	gfn_status s, s2;
	size_t ok, queued = 0;

	*accepted = 0;
	if ((s = gfn__jobs_alloc(e, n, jobs)) != GFN_OK)
		return s;
	for (ok = 0; ok < n; ok++) {
		if ((s = prepare(e, &invs[ok], jobs[ok])) != GFN_OK)
			break;
		out[ok].id = gfn__job_id(jobs[ok]);
	}
	if (ok) {
		s2 = gfn__submit(e, jobs, ok, &queued);
		if (s == GFN_OK)
			s = s2;
	}
	for (size_t k = queued; k < n; k++)
		gfn__job_abort(e, jobs[k]);
	for (size_t k = queued; k < ok; k++)
		out[k].id = 0;
	atomic_fetch_add_explicit(&e->submitted, queued, memory_order_relaxed);
	*accepted = queued;
	return s;
}

/* gfn_invoke_many without the argument checks. */
static gfn_status invoke_n(gfn_engine *e, const gfn_invocation *invs, size_t n,
                           gfn_future *out, size_t *accepted)
{
	gfn_status s = GFN_OK;
	size_t done = 0, got;

	atomic_fetch_add(&e->submitting, 1);
	if (atomic_load(&e->stopping))
		s = gfn__fail(GFN_ESHUTDOWN, "engine is shutting down");
	while (s == GFN_OK && done < n) {
		size_t m = n - done < SUBMIT_CHUNK ? n - done : SUBMIT_CHUNK;

		s = submit_chunk(e, invs + done, m, out + done, &got);
		done += got;
	}
	atomic_fetch_sub(&e->submitting, 1);
	*accepted = done;
	return s;
}

gfn_status gfn_invoke_many(gfn_engine *e, const gfn_invocation *invs, size_t n,
                           gfn_future *out, size_t *accepted)
{
	if (accepted)
		*accepted = 0;
	if (!e || !accepted || (n && (!invs || !out)))
		return gfn__fail(GFN_EINVAL,
		                 "engine, invs, out and accepted are required");
	return invoke_n(e, invs, n, out, accepted);
}

gfn_status gfn_invoke(gfn_engine *e, const gfn_invocation *inv, gfn_future *out)
{
	size_t accepted;

	if (!e || !inv || !out)
		return gfn__fail(GFN_EINVAL,
		                 "engine, inv and out are required");
	return invoke_n(e, inv, 1, out, &accepted);
}

/* ---- statistics ------------------------------------------------------------------ */

gfn_status gfn_engine_stats(gfn_engine *e, gfn_stats *out)
{
	gfn_store_stats ss;

	if (!e || !out)
		return gfn__fail(GFN_EINVAL, "engine and out are required");
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < e->ndev; i++) {
		gfn_dev *d = &e->devs[i];
		out->completed += atomic_load(&d->completed);
		out->failed += atomic_load(&d->failed);
		out->queued += atomic_load(&d->count);
		out->running += atomic_load(&d->running);
	}
	gfn_store_get_stats(e->store, &ss);
	out->submitted = atomic_load(&e->submitted);
	out->canceled = atomic_load(&e->canceled);
	out->rejected_busy = atomic_load(&e->rejected_busy);
	out->host_allocs = atomic_load(&e->host_allocs) + ss.host_allocs;
	out->context_creates = atomic_load(&e->context_creates);
	out->kernel_compiles = atomic_load(&e->kernel_compiles);
	out->kernel_cache_hits = atomic_load(&e->kernel_cache_hits);
	out->device_resets = atomic_load(&e->device_resets);
	out->devices_retired = atomic_load(&e->devices_retired);
	out->batches = atomic_load(&e->batches);
	out->batched = atomic_load(&e->batched);
	out->stolen = atomic_load(&e->stolen);
	/* reg_lock: a device recovery replaces pools under it. */
	pthread_mutex_lock(&e->reg_lock);
	out->device_allocs = atomic_load(&e->dead_device_allocs);
	for (int i = 0; i < e->ndev; i++)
		if (e->devs[i].pool)
			out->device_allocs +=
			        gfn_devmem_driver_allocs(e->devs[i].pool);
	pthread_mutex_unlock(&e->reg_lock);
	out->pinnings = atomic_load(&e->pinnings);
	out->input_copies = atomic_load(&e->input_copies);
	for (int i = 0; i < e->ndev; i++)
		if (e->devs[i].ops->pinned_bytes)
			out->pinned_bytes +=
			        e->devs[i].ops->pinned_bytes(e->devs[i].bdev);
	for (int i = 0; i < e->ndev; i++)
		if (e->devs[i].ops->staged_bytes)
			out->input_copies +=
			        e->devs[i].ops->staged_bytes(e->devs[i].bdev);
	out->store_objects = ss.objects;
	out->store_bytes = ss.bytes;
	out->store_evictions = ss.evictions;
	return GFN_OK;
}
