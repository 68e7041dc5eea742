/*
 * gfnd_session.c - what each connection owns.
 *
 * A client's references (objects it put or took as outputs, futures it
 * made) are recorded against its NNG pipe. When the pipe goes (the client
 * closed, crashed or was killed) gfnd gives them all back, so a dead
 * client cannot pin store memory. The records are small arrays searched
 * linearly: a client holds few handles at a time, and a list keeps the
 * code obviously right.
 */
#include "gfnd.h"

#include <stdlib.h>
#include <string.h>

struct gfnd_session {
	uint32_t pipe;      /* NNG pipe id: the connection */
	bool trusted;       /* ipc peer of our uid, or sent the token */
	uint32_t tenant;    /* what its invocations run as (store tenant) */
	gfn_object *objs;   /* one entry per reference held */
	size_t n_objs;      /* used */
	size_t cap_objs;    /* allocated */
	gfn_future *futs;   /* futures owned */
	size_t n_futs;      /* used */
	size_t cap_futs;    /* allocated */
	gfnd_session *next; /* hash chain */
};

static gfnd_session **bucket(gfnd *d, uint32_t pipe)
{
	return &d->sessions[pipe % 64];
}

/* Under d->lock. */
static gfnd_session *find(gfnd *d, uint32_t pipe)
{
	for (gfnd_session *s = *bucket(d, pipe); s; s = s->next)
		if (s->pipe == pipe)
			return s;
	return NULL;
}

void gfnd_session_open(gfnd *d, uint32_t pipe, bool trusted, uint32_t tenant)
{
	gfnd_session *s = calloc(1, sizeof *s);

	if (!s)
		return; /* requests from it then fail with GFN_ENOMEM */
	s->pipe = pipe;
	s->trusted = trusted;
	s->tenant = tenant;
	pthread_mutex_lock(&d->lock);
	s->next = *bucket(d, pipe);
	*bucket(d, pipe) = s;
	pthread_mutex_unlock(&d->lock);
}

/* Give back what s holds; s is already unlinked, so no lock is needed. */
static void session_free(gfnd *d, gfnd_session *s)
{
	for (size_t i = 0; i < s->n_futs; i++)
		gfn_future_release(d->e, s->futs[i]);
	for (size_t i = 0; i < s->n_objs; i++)
		gfn_object_release(d->e, s->objs[i]);
	if (s->n_objs || s->n_futs)
		gfnd_log(GFND_LOG_INFO,
		         "connection %u gone: gave back %zu object "
		         "references and %zu futures",
		         s->pipe, s->n_objs, s->n_futs);
	free(s->objs);
	free(s->futs);
	free(s);
}

void gfnd_session_close(gfnd *d, uint32_t pipe)
{
	gfnd_session **pp, *s = NULL;

	pthread_mutex_lock(&d->lock);
	for (pp = bucket(d, pipe); *pp; pp = &(*pp)->next)
		if ((*pp)->pipe == pipe) {
			s = *pp;
			*pp = s->next;
			break;
		}
	pthread_mutex_unlock(&d->lock);
	if (s)
		session_free(d, s);
}

void gfnd_sessions_close_all(gfnd *d)
{
	for (int b = 0; b < 64; b++) {
		gfnd_session *s;

		pthread_mutex_lock(&d->lock);
		s = d->sessions[b];
		d->sessions[b] = NULL;
		pthread_mutex_unlock(&d->lock);
		while (s) {
			gfnd_session *next = s->next;

			session_free(d, s);
			s = next;
		}
	}
}

size_t gfnd_session_count(gfnd *d)
{
	size_t n = 0;

	pthread_mutex_lock(&d->lock);
	for (int b = 0; b < 64; b++)
		for (gfnd_session *s = d->sessions[b]; s; s = s->next)
			n++;
	pthread_mutex_unlock(&d->lock);
	return n;
}

/* Make room for one more element of size sz in *arr. */
static int grow(void **arr, size_t n, size_t *cap, size_t sz)
{
	void *p;
	size_t nc;

	if (n < *cap)
		return 0;
	nc = *cap ? *cap * 2 : 16;
	p = realloc(*arr, nc * sz);
	if (!p)
		return -1;
	*arr = p;
	*cap = nc;
	return 0;
}

/*
 * Append item to the session's objects (futs 0) or futures (futs 1):
 * GFN_ENOENT without a session, GFN_ENOMEM when the array cannot grow.
 */
static gfn_status push(gfnd *d, uint32_t pipe, int futs, const void *item)
{
	gfn_status st = GFN_ENOENT;
	gfnd_session *s;

	pthread_mutex_lock(&d->lock);
	s = find(d, pipe);
	if (s) {
		void **arr = futs ? (void **)&s->futs : (void **)&s->objs;
		size_t *n = futs ? &s->n_futs : &s->n_objs;
		size_t *cap = futs ? &s->cap_futs : &s->cap_objs;
		size_t sz = futs ? sizeof *s->futs : sizeof *s->objs;

		st = GFN_ENOMEM;
		if (grow(arr, *n, cap, sz) == 0) {
			memcpy((char *)*arr + *n * sz, item, sz);
			(*n)++;
			st = GFN_OK;
		}
	}
	pthread_mutex_unlock(&d->lock);
	return st;
}

gfn_status gfnd_session_add_object(gfnd *d, uint32_t pipe, gfn_object o)
{
	return push(d, pipe, 0, &o);
}

/* Index of o in s, or -1. Under d->lock. */
static long obj_index(gfnd_session *s, gfn_object o)
{
	for (size_t i = 0; s && i < s->n_objs; i++)
		if (gfn_object_equal(s->objs[i], o))
			return (long)i;
	return -1;
}

gfn_status gfnd_session_take_object(gfnd *d, uint32_t pipe, gfn_object o)
{
	gfn_status st = GFN_ESTATE;
	gfnd_session *s;

	long i;

	pthread_mutex_lock(&d->lock);
	s = find(d, pipe);
	i = obj_index(s, o);
	if (i >= 0) {
		s->objs[i] = s->objs[--s->n_objs];
		st = GFN_OK;
	}
	pthread_mutex_unlock(&d->lock);
	return st;
}

gfn_status gfnd_session_may_use(gfnd *d, uint32_t pipe, gfn_object o)
{
	uint32_t owner, tenant = gfnd_session_tenant(d, pipe);
	gfn_status st;
	int held;

	pthread_mutex_lock(&d->lock);
	held = obj_index(find(d, pipe), o) >= 0;
	pthread_mutex_unlock(&d->lock);
	if (held)
		return GFN_OK;
	/* Not one of its gfnd references: only its own store objects. An
	   unknown or stale id says so, as the engine would. */
	st = gfn_object_tenant(d->e, o, &owner);
	if (st != GFN_OK)
		return st;
	return tenant && owner == tenant ? GFN_OK : GFN_EACCES;
}

gfn_status gfnd_session_add_future(gfnd *d, uint32_t pipe, gfn_future f)
{
	return push(d, pipe, 1, &f);
}

/* Index of f in s, or -1. Under d->lock. */
static long fut_index(gfnd_session *s, gfn_future f)
{
	for (size_t i = 0; s && i < s->n_futs; i++)
		if (s->futs[i].id == f.id)
			return (long)i;
	return -1;
}

gfn_status gfnd_session_has_future(gfnd *d, uint32_t pipe, gfn_future f)
{
	long i;

	pthread_mutex_lock(&d->lock);
	i = fut_index(find(d, pipe), f);
	pthread_mutex_unlock(&d->lock);
	return i < 0 ? GFN_ENOENT : GFN_OK;
}

gfn_status gfnd_session_take_future(gfnd *d, uint32_t pipe, gfn_future f)
{
	gfnd_session *s;
	long i;

	pthread_mutex_lock(&d->lock);
	s = find(d, pipe);
	i = fut_index(s, f);
	if (i >= 0)
		s->futs[i] = s->futs[--s->n_futs];
	pthread_mutex_unlock(&d->lock);
	return i < 0 ? GFN_ENOENT : GFN_OK;
}

size_t gfnd_session_futures(gfnd *d)
{
	size_t n = 0;

	pthread_mutex_lock(&d->lock);
	for (int b = 0; b < 64; b++)
		for (gfnd_session *s = d->sessions[b]; s; s = s->next)
			n += s->n_futs;
	pthread_mutex_unlock(&d->lock);
	return n;
}

size_t gfnd_session_objects(gfnd *d)
{
	size_t n = 0;

	pthread_mutex_lock(&d->lock);
	for (int b = 0; b < 64; b++)
		for (gfnd_session *s = d->sessions[b]; s; s = s->next)
			n += s->n_objs;
	pthread_mutex_unlock(&d->lock);
	return n;
}

bool gfnd_session_trusted(gfnd *d, uint32_t pipe)
{
	gfnd_session *s;
	bool t;

	pthread_mutex_lock(&d->lock);
	s = find(d, pipe);
	t = s && s->trusted;
	pthread_mutex_unlock(&d->lock);
	return t;
}

uint32_t gfnd_session_tenant(gfnd *d, uint32_t pipe)
{
	gfnd_session *s;
	uint32_t t;

	pthread_mutex_lock(&d->lock);
	s = find(d, pipe);
	t = s ? s->tenant : 0;
	pthread_mutex_unlock(&d->lock);
	return t;
}
