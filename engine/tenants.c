/*
 * tenants.c - per-tenant limits: invocations in flight and device memory
 * in use, counted in a fixed table allocated with the engine (so the
 * invoke path allocates nothing). Tenant 0, the engine's own, has none.
 */
#include <stdlib.h>

#include "engine/engine.h"

gfn_status gfn__tenants_init(gfn_engine *e)
{
	e->tenants = calloc(GFN_MAX_TENANTS, sizeof(*e->tenants));
	if (!e->tenants)
		return gfn__fail(GFN_ENOMEM, "no memory for tenant limits");
	return GFN_OK;
}

void gfn__tenants_fini(gfn_engine *e)
{
	free(e->tenants);
	e->tenants = NULL;
}

/* The record of tenant t (> 0), made on first use; NULL when full. */
static gfn_tenant_rec *lookup(gfn_engine *e, uint32_t t)
{
	uint32_t h = (t * 2654435761u) % GFN_MAX_TENANTS;

	for (uint32_t k = 0; k < GFN_MAX_TENANTS; k++) {
		gfn_tenant_rec *r = &e->tenants[(h + k) % GFN_MAX_TENANTS];
		uint32_t id = atomic_load(&r->id);

		if (id == t)
			return r;
		if (!id && atomic_compare_exchange_strong(&r->id, &id, t))
			return r;
		if (id == t) /* another thread claimed it for t */
			return r;
	}
	return NULL;
}

/* Add delta to *v unless the result passes limit; 1 when added. */
static int add_within(_Atomic int64_t *v, int64_t delta, int64_t limit)
{
	int64_t cur = atomic_load(v);

	do {
		if (cur + delta > limit)
			return 0;
	} while (!atomic_compare_exchange_weak(v, &cur, cur + delta));
	return 1;
}

gfn_status gfn__tenant_admit(gfn_engine *e, uint32_t t, gfn_tenant_rec **out)
{
	gfn_tenant_rec *r;

	*out = NULL;
	if (!t ||
	    (e->cfg.tenant_max_inflight < 0 && e->cfg.tenant_device_bytes < 0))
		return GFN_OK;
	r = lookup(e, t);
	if (!r)
		return gfn__fail(GFN_EQUOTA, "more than %d tenants at once",
		                 GFN_MAX_TENANTS);
	if (e->cfg.tenant_max_inflight >= 0 &&
	    !add_within(&r->inflight, 1, e->cfg.tenant_max_inflight))
		return gfn__fail(GFN_EQUOTA,
		                 "tenant %u has %lld invocations in flight "
		                 "(limit %lld)",
		                 t, (long long)atomic_load(&r->inflight),
		                 (long long)e->cfg.tenant_max_inflight);
	if (e->cfg.tenant_max_inflight < 0)
		atomic_fetch_add(&r->inflight, 1);
	*out = r;
	return GFN_OK;
}

void gfn__tenant_leave(gfn_tenant_rec *r)
{
	if (r)
		atomic_fetch_sub(&r->inflight, 1);
}

gfn_status gfn__tenant_take_device(gfn_engine *e, gfn_tenant_rec *r, int dev,
                                   int64_t bytes)
{
	if (!r || e->cfg.tenant_device_bytes < 0)
		return GFN_OK;
	if (!add_within(&r->dev_bytes[dev], bytes, e->cfg.tenant_device_bytes))
		return gfn__fail(
		        GFN_EQUOTA,
		        "tenant %u would use %lld bytes of device %d "
		        "(limit %lld)",
		        atomic_load(&r->id),
		        (long long)(atomic_load(&r->dev_bytes[dev]) + bytes),
		        dev, (long long)e->cfg.tenant_device_bytes);
	return GFN_OK;
}

void gfn__tenant_give_device(gfn_engine *e, gfn_tenant_rec *r, int dev,
                             int64_t bytes)
{
	if (r && e->cfg.tenant_device_bytes >= 0)
		atomic_fetch_sub(&r->dev_bytes[dev], bytes);
}
