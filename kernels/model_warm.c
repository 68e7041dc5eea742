/*
 * model_warm.c - warm instances of models: each device gets its own copy
 * of a model's weights the first time an invocation of the model runs
 * there, and every later invocation on that device shares it. Under the
 * per-device limit the least recently used idle copies of the engine's
 * other models are evicted first. Also the list of registered models
 * (gfn_model_unregister finds them there) and the public reports.
 *
 * One lock guards the list and every model's warm state. It is held while
 * a copy is made: on the CPU backend a memcpy of the host weights, on a
 * device an upload that is waited for (kilobytes to megabytes, once per
 * model and device: a warm model never takes this path again).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gfn/gfn_model.h"
#include "kernels/model.h"
#include "runtime/backend.h"
#include "runtime/util.h"

/* Engines with a limit set by gfn_model_set_warm_limit. A fixed table:
   nothing to free when an engine goes without saying so. */
#define MAX_LIMITS 32

typedef struct warm_limit {
	gfn_engine *e; /* NULL: a free entry */
	size_t bytes;  /* weight bytes per device */
} warm_limit;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static gfn_model *models; /* every registered model, newest first */
static warm_limit limits[MAX_LIMITS];
static uint64_t tick; /* LRU clock: one step per acquire */

/* ---- the list ------------------------------------------------------------ */

void gfn__models_add(gfn_model *m)
{
	pthread_mutex_lock(&lock);
	m->next = models;
	models = m;
	pthread_mutex_unlock(&lock);
}

/* Forget e's limit when its last model goes; lock held. */
static void forget_limit(gfn_engine *e)
{
	for (gfn_model *m = models; m; m = m->next)
		if (m->engine == e)
			return;
	for (int i = 0; i < MAX_LIMITS; i++)
		if (limits[i].e == e)
			limits[i].e = NULL;
}

static gfn_model *unlink_where(gfn_engine *e, gfn_function fn, gfn_model *p)
{
	gfn_model **pp, *m = NULL;

	pthread_mutex_lock(&lock);
	for (pp = &models; *pp; pp = &(*pp)->next)
		if (*pp == p ||
		    (!p && (*pp)->engine == e && (*pp)->fn.id == fn.id)) {
			m = *pp;
			*pp = m->next;
			forget_limit(m->engine);
			break;
		}
	pthread_mutex_unlock(&lock);
	return m;
}

gfn_model *gfn__models_unlink(gfn_engine *e, gfn_function fn)
{
	return unlink_where(e, fn, NULL);
}

void gfn__models_remove(gfn_model *m)
{
	unlink_where(NULL, (gfn_function){0}, m);
}

/* ---- warming and eviction ------------------------------------------------ */

static size_t bytes_of(const gfn_model *m)
{
	return m->n_weights * sizeof(float);
}

/* The limit on dev for m's engine; lock held. */
static size_t limit_of(const gfn_model *m, int dev)
{
	for (int i = 0; i < MAX_LIMITS; i++)
		if (limits[i].e == m->engine)
			return limits[i].bytes;
	return m->dev_memory[dev] / 2; /* default: half the device */
}

static int is_warm(const gfn_model_warm *w)
{
	return w->weights || w->ops;
}

/* Bytes of weights warm on dev for engine e; lock held. */
static size_t used_on(gfn_engine *e, int dev)
{
	size_t used = 0;

	for (gfn_model *m = models; m; m = m->next)
		if (m->engine == e && is_warm(&m->warm[dev]))
			used += bytes_of(m);
	return used;
}

/* Free w's copy, host or device. */
static void drop_copy(gfn_model_warm *w)
{
	free(w->weights);
	w->weights = NULL;
	if (w->ops)
		gfn_backend_mem_free(w->ops, w->bdev, &w->mem);
	w->ops = NULL;
	w->bdev = NULL;
}

/* The least recently used idle warm model of e on dev, other than self. */
static gfn_model *victim(gfn_engine *e, int dev, const gfn_model *self)
{
	gfn_model *best = NULL;

	for (gfn_model *m = models; m; m = m->next) {
		const gfn_model_warm *w = &m->warm[dev];

		if (m == self || m->engine != e || !is_warm(w) || w->users)
			continue;
		if (!best || w->last_use < best->warm[dev].last_use)
			best = m;
	}
	return best;
}

/* Evict idle copies of other models until m fits on dev; 0 or 3. */
static int make_room(gfn_model *m, int dev)
{
	size_t need = bytes_of(m), limit = limit_of(m, dev);
	gfn_model *v;

	if (need > limit)
		return 3;
	while (used_on(m->engine, dev) + need > limit) {
		v = victim(m->engine, dev, m);
		if (!v)
			return 3; /* the rest is in use right now */
		drop_copy(&v->warm[dev]);
		v->warm[dev].evictions++;
	}
	return 0;
}

/* Make room for m on dev, then its copy; 0, or 1/3 as acquire says. */
static int warm_up(gfn_model *m, int dev)
{
	size_t need = bytes_of(m);
	int rc = make_room(m, dev);
	float *copy;

	if (rc)
		return rc;
	copy = malloc(need ? need : 1);
	if (!copy)
		return 1;
	memcpy(copy, m->weights, need);
	m->warm[dev].weights = copy;
	m->warm[dev].uploads++;
	return 0;
}

const float *gfn__warm_acquire(gfn_model *m, int dev, int *rc)
{
	gfn_model_warm *w;
	const float *p = NULL;

	if (dev < 0 || dev >= GFN_MODEL_MAX_DEVICES) {
		*rc = 3;
		return NULL;
	}
	w = &m->warm[dev];
	pthread_mutex_lock(&lock);
	*rc = w->weights ? 0 : warm_up(m, dev);
	if (*rc == 0) {
		w->users++;
		w->last_use = ++tick;
		p = w->weights;
	}
	pthread_mutex_unlock(&lock);
	return p;
}

void gfn__warm_release(gfn_model *m, int dev)
{
	pthread_mutex_lock(&lock);
	m->warm[dev].users--;
	pthread_mutex_unlock(&lock);
}

void gfn__warm_drop(gfn_model *m)
{
	pthread_mutex_lock(&lock);
	for (int d = 0; d < GFN_MODEL_MAX_DEVICES; d++)
		drop_copy(&m->warm[d]);
	pthread_mutex_unlock(&lock);
}

void gfn__warm_drop_dev(gfn_model *m, int dev)
{
	pthread_mutex_lock(&lock);
	drop_copy(&m->warm[dev]);
	pthread_mutex_unlock(&lock);
}

/* m's weights into c's device memory: allocated, uploaded on q, and q
   synced, so the copy is whole before any invocation reads it. Under
   the lock: kilobytes to megabytes, once per model and device. */
static int upload(gfn_model *m, const gfn_devctx *c, gfn_bqueue *q)
{
	gfn_model_warm *w = &m->warm[c->device];
	size_t need = bytes_of(m);
	int rc = make_room(m, c->device);

	if (rc)
		return rc;
	if (gfn_backend_mem_alloc(c->ops, c->bdev, need ? need : 4, &w->mem) !=
	    GFN_OK)
		return 1;
	if (gfn_backend_copy_h2d(c->ops, q, &w->mem, 0, m->weights, need) !=
	            GFN_OK ||
	    c->ops->sync(q) != GFN_OK) {
		gfn_backend_mem_free(c->ops, c->bdev, &w->mem);
		return 1;
	}
	w->ops = c->ops;
	w->bdev = c->bdev;
	w->uploads++;
	return 0;
}

const gfn_bmem *gfn__warm_acquire_dev(gfn_model *m, const gfn_devctx *c,
                                      gfn_bqueue *q, int *rc)
{
	gfn_model_warm *w;
	const gfn_bmem *p = NULL;

	if (c->device < 0 || c->device >= GFN_MODEL_MAX_DEVICES) {
		*rc = 3;
		return NULL;
	}
	w = &m->warm[c->device];
	pthread_mutex_lock(&lock);
	*rc = w->ops ? 0 : upload(m, c, q);
	if (*rc == 0) {
		w->users++;
		w->last_use = ++tick;
		p = &w->mem;
	}
	pthread_mutex_unlock(&lock);
	return p;
}

struct gfn_model_dk *gfn__warm_set_dk(gfn_model *m, int dev,
                                      struct gfn_model_dk *dk)
{
	struct gfn_model_dk *old;

	pthread_mutex_lock(&lock);
	old = m->dk[dev];
	m->dk[dev] = dk;
	pthread_mutex_unlock(&lock);
	return old;
}

/* ---- public reports and settings ----------------------------------------- */

gfn_status gfn_model_set_warm_limit(gfn_engine *e, size_t bytes)
{
	int i, free_i = -1;

	if (!e)
		return gfn__fail(GFN_EINVAL, "NULL engine");
	pthread_mutex_lock(&lock);
	for (i = 0; i < MAX_LIMITS && limits[i].e != e; i++)
		if (!limits[i].e && free_i < 0)
			free_i = i;
	if (i == MAX_LIMITS)
		i = free_i;
	if (i >= 0) {
		limits[i].e = bytes ? e : NULL;
		limits[i].bytes = bytes;
	}
	pthread_mutex_unlock(&lock);
	if (i < 0)
		return gfn__fail(GFN_ENOMEM,
		                 "limits set for %d engines "
		                 "already",
		                 MAX_LIMITS);
	return GFN_OK;
}

static gfn_model *find(gfn_engine *e, gfn_function fn)
{
	for (gfn_model *m = models; m; m = m->next)
		if (m->engine == e && m->fn.id == fn.id)
			return m;
	return NULL;
}

gfn_status gfn_model_get_device_info(gfn_engine *e, gfn_function fn,
                                     size_t device, gfn_model_device_info *out)
{
	gfn_model *m;

	if (!out || device >= GFN_MODEL_MAX_DEVICES)
		return gfn__fail(GFN_EINVAL, "bad device %zu or NULL out",
		                 device);
	pthread_mutex_lock(&lock);
	m = find(e, fn);
	if (m) {
		out->warm = is_warm(&m->warm[device]);
		out->bytes = bytes_of(m);
		out->users = (unsigned)m->warm[device].users;
		out->uploads = m->warm[device].uploads;
		out->evictions = m->warm[device].evictions;
		gfn__model_dk_counts(m->dk[device], &out->graphs,
		                     &out->replays);
	}
	pthread_mutex_unlock(&lock);
	if (!m)
		return gfn__fail(GFN_ENOENT,
		                 "function %u is not a model of "
		                 "this engine",
		                 fn.id);
	return GFN_OK;
}

/* Insert m into fns[0..*n) by last use, newest first, keeping cap. */
static void insert_by_use(gfn_model **v, size_t *n, size_t cap, gfn_model *m,
                          size_t dev)
{
	size_t i = *n;

	while (i > 0 && v[i - 1]->warm[dev].last_use < m->warm[dev].last_use)
		i--;
	if (i >= cap)
		return;
	memmove(v + i + 1, v + i, ((*n < cap ? *n : cap - 1) - i) * sizeof *v);
	v[i] = m;
	*n += *n < cap;
}

gfn_status gfn_model_warm_list(gfn_engine *e, size_t device, gfn_function *fns,
                               size_t cap, size_t *n)
{
	gfn_model *v[64];
	size_t got = 0, total = 0;

	if (!n || (cap && !fns) || device >= GFN_MODEL_MAX_DEVICES)
		return gfn__fail(GFN_EINVAL, "bad device %zu or NULL pointer",
		                 device);
	if (cap > 64)
		cap = 64;
	pthread_mutex_lock(&lock);
	for (gfn_model *m = models; m; m = m->next)
		if (m->engine == e && is_warm(&m->warm[device])) {
			total++;
			if (cap)
				insert_by_use(v, &got, cap, m, device);
		}
	for (size_t i = 0; i < got; i++)
		fns[i] = v[i]->fn;
	pthread_mutex_unlock(&lock);
	*n = total;
	return GFN_OK;
}

/* Weights are copied at about 10 GB/s (10 bytes per ns) when a device
   warms a model up: the cost placement weighs against a warm device. */
uint64_t gfn__warm_cost_ns(void *user, int dev)
{
	gfn_model *m = user;
	uint64_t cost = 0;

	if (dev < 0 || dev >= GFN_MODEL_MAX_DEVICES)
		return 0;
	pthread_mutex_lock(&lock);
	if (!is_warm(&m->warm[dev]))
		cost = bytes_of(m) / 10;
	pthread_mutex_unlock(&lock);
	return cost;
}
