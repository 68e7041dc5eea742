/*
 * store_client.c - the object store from a client process (see
 * include/gfn/gfn_store_client.h, store_proto.h and docs/store.md).
 *
 * Each call is one request and one reply on the connection, under the
 * handle's lock. Object bytes never go through the socket: the engine
 * says where an object lies (segment id, offset), the client maps that
 * segment once (its memfd comes with a SEGMENT reply) and reads or writes
 * in place. The client trusts neither the engine's descriptors nor the
 * headers in the segments: it checks that a descriptor is a memfd sealed
 * against shrinking and of the size announced, parses the segment header,
 * and parses each object's slot header and compares it with the reply
 * before handing out a pointer.
 */
#include <gfn/gfn_store_client.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine/shm_segment.h"
#include "engine/store.h"
#include "engine/store_proto.h"
#include "runtime/numa.h"
#include "runtime/util.h"

#define TIMEOUT_S 30 /* longest wait for the engine's reply */

typedef struct cseg {
	uint32_t id;     /* the engine's segment id */
	int live;        /* scratch for pruning */
	gfn_shm_map map; /* our mapping (the descriptor is closed) */
} cseg;

struct gfn_store_client {
	pthread_mutex_t lock; /* one call at a time on the connection */
	int fd;               /* the connection */
	int dead;             /* it failed: every call says so */
	uint32_t seq;         /* of the last request */
	uint32_t tenant;      /* assigned by the engine */
	uint32_t epoch;       /* segment epoch last seen */
	cseg *segs;           /* mapped segments */
	size_t nsegs, cap;    /* used and allocated entries */
};

/* ---- one request, one reply -------------------------------------------------- */

static int known_status(int32_t s)
{
	return s < 0 &&
	       strcmp(gfn_status_name((gfn_status)s), "GFN_UNKNOWN") != 0;
}

/* The connection can no longer be trusted to be in step: stop using it. */
static gfn_status broken(gfn_store_client *c, gfn_status s, const char *why)
{
	c->dead = 1;
	return gfn__fail(s, "store connection: %s", why);
}

/* Take the descriptor that came with m (when want), close any other. */
static int take_fd(struct msghdr *m, int want)
{
	int got = -1;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(m); cm;
	     cm = CMSG_NXTHDR(m, cm)) {
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t k = 0; k < n; k++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int),
			       sizeof(fd));
			if (want && got < 0)
				got = fd;
			else
				close(fd);
		}
	}
	return got;
}

static gfn_status recv_rep(gfn_store_client *c, gfn_shm_rep *rp, int *fd)
{
	char ctl[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = {rp, sizeof(*rp)};
	int got;
	struct msghdr m = {.msg_iov = &iov,
	                   .msg_iovlen = 1,
	                   .msg_control = ctl,
	                   .msg_controllen = sizeof(ctl)};
	ssize_t n;

	do
		n = recvmsg(c->fd, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return broken(c, GFN_ETIMEDOUT, "the engine did not answer");
	if (n <= 0)
		return broken(c, GFN_ESHUTDOWN, "the engine closed it");
	got = take_fd(&m, fd != NULL);
	if (fd)
		*fd = got;
	if (n != (ssize_t)sizeof(*rp) || (m.msg_flags & MSG_TRUNC))
		return broken(c, GFN_EINVAL, "a reply has the wrong size");
	return GFN_OK;
}

/* Send rq, wait for its reply; *fd gets a descriptor sent with it. */
static gfn_status rpc(gfn_store_client *c, gfn_shm_req *rq, gfn_shm_rep *rp,
                      int *fd)
{
	int got = -1;
	gfn_status s;

	if (c->dead)
		return gfn__fail(GFN_ESHUTDOWN,
		                 "the connection to the store is closed");
	rq->magic = GFN_SHM_PROTO_MAGIC;
	rq->version = GFN_SHM_PROTO_VERSION;
	rq->seq = ++c->seq;
	if (send(c->fd, rq, sizeof(*rq), MSG_NOSIGNAL) != sizeof(*rq))
		return broken(c,
		              errno == EAGAIN ? GFN_ETIMEDOUT : GFN_ESHUTDOWN,
		              strerror(errno));
	if ((s = recv_rep(c, rp, fd ? &got : NULL)) != GFN_OK)
		return s;
	if (rp->magic != GFN_SHM_PROTO_MAGIC ||
	    rp->version != GFN_SHM_PROTO_VERSION || rp->seq != rq->seq ||
	    rp->op != rq->op || (rp->status && !known_status(rp->status))) {
		if (got >= 0)
			close(got);
		return broken(c, GFN_EINVAL, "a malformed reply");
	}
	rp->detail[sizeof(rp->detail) - 1] = '\0';
	if (rp->status != GFN_OK) {
		if (got >= 0)
			close(got);
		return gfn__fail((gfn_status)rp->status, "%s", rp->detail);
	}
	if (fd)
		*fd = got;
	return GFN_OK;
}

/* ---- segments ------------------------------------------------------------------- */

/*
 * The engine retired segments since we last looked: unmap the ones it
 * no longer has, so their memory does not stay alive through us.
 */
static void prune(gfn_store_client *c, uint32_t epoch)
{
	size_t k, keep = 0;

	if (epoch == c->epoch)
		return;
	c->epoch = epoch;
	for (k = 0; k < c->nsegs; k++)
		c->segs[k].live = 1;
	for (k = 0; k < c->nsegs; k += GFN_SHM_LIVE_MAX) {
		gfn_shm_req rq = {.op = GFN_SHM_OP_SEG_LIVE};
		gfn_shm_rep rp;

		for (size_t j = k; j < c->nsegs && rq.nsegs < GFN_SHM_LIVE_MAX;
		     j++)
			rq.segs[rq.nsegs++] = c->segs[j].id;
		if (rpc(c, &rq, &rp, NULL) != GFN_OK)
			return; /* keep everything; try again next time */
		for (uint32_t j = 0; j < rq.nsegs; j++)
			c->segs[k + j].live = (int)((rp.live >> j) & 1);
	}
	for (k = 0; k < c->nsegs; k++) {
		if (c->segs[k].live)
			c->segs[keep++] = c->segs[k];
		else
			gfn__shm_close(&c->segs[k].map, 0);
	}
	c->nsegs = keep;
}

/* Map segment id from its descriptor and check its header. */
static gfn_status seg_attach(gfn_store_client *c, uint32_t id, uint64_t size,
                             gfn_shm_map *m)
{
	gfn_shm_req rq = {.op = GFN_SHM_OP_SEGMENT, .seg = id};
	gfn_shm_seg_info info;
	gfn_shm_rep rp;
	int fd = -1;
	gfn_status s = rpc(c, &rq, &rp, &fd);

	if (s != GFN_OK)
		return s;
	if (fd < 0 || rp.seg_size != size)
		s = gfn__fail(GFN_EINVAL,
		              "segment %u came without a descriptor or with "
		              "another size",
		              id);
	else if ((s = gfn__shm_attach(fd, size, m)) == GFN_OK) {
		fd = -1; /* the map owns it */
		s = gfn__shm_seg_parse(m->base, m->size, &info);
		if (s == GFN_OK &&
		    (info.seg_id != id || info.tenant != c->tenant))
			s = gfn__fail(GFN_EINVAL,
			              "segment %u says it is segment %u of "
			              "tenant %u",
			              id, info.seg_id, info.tenant);
		if (s != GFN_OK)
			gfn__shm_close(m, 0);
	}
	if (fd >= 0)
		close(fd);
	return s;
}

/* Our mapping of segment id (of size bytes), mapping it on first use. */
static gfn_status seg_get(gfn_store_client *c, uint32_t id, uint64_t size,
                          cseg **out)
{
	gfn_shm_map m;
	gfn_status s;

	for (size_t k = 0; k < c->nsegs; k++) {
		if (c->segs[k].id != id)
			continue;
		if (c->segs[k].map.size != size)
			return gfn__fail(GFN_EINVAL, "segment %u changed size",
			                 id);
		*out = &c->segs[k];
		return GFN_OK;
	}
	if (c->nsegs == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 16;
		cseg *p = realloc(c->segs, cap * sizeof(*p));

		if (!p)
			return gfn__fail(GFN_ENOMEM, "no memory for segments");
		c->segs = p;
		c->cap = cap;
	}
	if ((s = seg_attach(c, id, size, &m)) != GFN_OK)
		return s;
	close(m.fd); /* the mapping stays; no descriptor per segment */
	m.fd = -1;
	c->segs[c->nsegs] = (cseg){id, 1, m};
	*out = &c->segs[c->nsegs++];
	return GFN_OK;
}

/* The reply's object in our mapping, its slot header checked. */
static gfn_status locate(gfn_store_client *c, const gfn_shm_rep *rp,
                         gfn_object id, int sealed, void **data)
{
	cseg *sg = NULL;
	gfn_shm_slot sl;
	gfn_status s;
	char b[48];

	if ((s = seg_get(c, rp->seg, rp->seg_size, &sg)) != GFN_OK)
		return s;
	s = gfn__shm_slot_parse(sg->map.base, sg->map.size, rp->off, &sl);
	if (s != GFN_OK)
		return s;
	if (sl.id_hi != id.hi || sl.id_lo != id.lo || sl.tenant != c->tenant ||
	    sl.size != rp->size || sl.dtype != rp->dtype ||
	    sl.ndim != rp->ndim ||
	    memcmp(sl.shape, rp->shape, sizeof(sl.shape)) ||
	    (sealed && sl.state != GFN_SHM_SEALED))
		return gfn__fail(GFN_EINVAL,
		                 "the slot header of object %s does not match "
		                 "the engine's answer",
		                 gfn_store_id_str(id, b, sizeof(b)));
	*data = (char *)sg->map.base + rp->off + GFN_SHM_GRANULE;
	return GFN_OK;
}

/* ---- calls ------------------------------------------------------------------------- */

/* One request on behalf of a public call; the lock is held. */
static gfn_status call(gfn_store_client *c, gfn_shm_req *rq, gfn_shm_rep *rp)
{
	gfn_status s = rpc(c, rq, rp, NULL);

	if (!c->dead && rp->magic == GFN_SHM_PROTO_MAGIC)
		prune(c, rp->epoch);
	return s;
}

/* A request about object id, with no other argument. */
static gfn_status simple(gfn_store_client *c, uint16_t op, gfn_object id)
{
	gfn_shm_req rq = {.op = op, .id_hi = id.hi, .id_lo = id.lo};
	gfn_shm_rep rp = {0};
	gfn_status s;

	if (!c)
		return gfn__fail(GFN_EINVAL, "client is NULL");
	pthread_mutex_lock(&c->lock);
	s = call(c, &rq, &rp);
	pthread_mutex_unlock(&c->lock);
	return s;
}

/* Give back the reference a call just took, keeping its detail message. */
static gfn_status undo(gfn_store_client *c, gfn_object id, gfn_status s)
{
	gfn_shm_req rq = {
	        .op = GFN_SHM_OP_RELEASE, .id_hi = id.hi, .id_lo = id.lo};
	gfn_shm_rep rp;
	char why[512];

	snprintf(why, sizeof(why), "%s", gfn_error_detail());
	rpc(c, &rq, &rp, NULL);
	return gfn__fail(s, "%s", why);
}

gfn_status gfn_store_client_create_on(gfn_store_client *c, gfn_dtype dtype,
                                      int ndim, const int64_t *shape,
                                      int numa_node, gfn_object *out)
{
	gfn_shm_req rq = {.op = GFN_SHM_OP_CREATE,
	                  .dtype = (uint32_t)dtype,
	                  .ndim = ndim,
	                  .node = numa_node,
	                  .client_node = gfn__numa_current_node()};
	gfn_shm_rep rp = {0};
	gfn_status s;
	void *data;

	if (!c || !out || ndim < 0 || ndim > GFN_MAX_DIMS || (ndim && !shape))
		return gfn__fail(GFN_EINVAL,
		                 "client, out and a shape of 0..%d dims are "
		                 "required",
		                 GFN_MAX_DIMS);
	if (ndim)
		memcpy(rq.shape, shape, (size_t)ndim * sizeof(*shape));
	pthread_mutex_lock(&c->lock);
	s = call(c, &rq, &rp);
	if (s == GFN_OK) {
		*out = (gfn_object){rp.id_hi, rp.id_lo};
		s = locate(c, &rp, *out, 0, &data);
		if (s != GFN_OK)
			s = undo(c, *out, s);
	}
	pthread_mutex_unlock(&c->lock);
	return s;
}

gfn_status gfn_store_client_create(gfn_store_client *c, gfn_dtype dtype,
                                   int ndim, const int64_t *shape,
                                   gfn_object *out)
{
	return gfn_store_client_create_on(c, dtype, ndim, shape, -1, out);
}

gfn_status gfn_store_client_map(gfn_store_client *c, gfn_object obj,
                                void **data, size_t *size)
{
	gfn_shm_req rq = {
	        .op = GFN_SHM_OP_MAP, .id_hi = obj.hi, .id_lo = obj.lo};
	gfn_shm_rep rp = {0};
	gfn_status s;

	if (!c || !data || !size)
		return gfn__fail(GFN_EINVAL,
		                 "client, data and size are required");
	pthread_mutex_lock(&c->lock);
	s = call(c, &rq, &rp);
	if (s == GFN_OK)
		s = locate(c, &rp, obj, 0, data);
	if (s == GFN_OK)
		*size = (size_t)rp.size;
	pthread_mutex_unlock(&c->lock);
	return s;
}

gfn_status gfn_store_client_write(gfn_store_client *c, gfn_object obj,
                                  size_t off, const void *src, size_t len)
{
	size_t size;
	void *p;
	gfn_status s;

	if (!src && len)
		return gfn__fail(GFN_EINVAL, "src is NULL");
	if ((s = gfn_store_client_map(c, obj, &p, &size)) != GFN_OK)
		return s;
	if (off > size || len > size - off)
		return gfn__fail(
		        GFN_ERANGE,
		        "write of %zu bytes at %zu passes the end (%zu)", len,
		        off, size);
	if (len)
		memcpy((char *)p + off, src, len);
	return GFN_OK;
}

gfn_status gfn_store_client_seal(gfn_store_client *c, gfn_object obj)
{
	return simple(c, GFN_SHM_OP_SEAL, obj);
}

gfn_status gfn_store_client_get(gfn_store_client *c, gfn_object obj,
                                gfn_object_view *view)
{
	gfn_shm_req rq = {
	        .op = GFN_SHM_OP_GET, .id_hi = obj.hi, .id_lo = obj.lo};
	gfn_shm_rep rp = {0};
	gfn_status s;
	void *data;

	if (!c || !view)
		return gfn__fail(GFN_EINVAL, "client and view are required");
	pthread_mutex_lock(&c->lock);
	s = call(c, &rq, &rp);
	if (s == GFN_OK && (s = locate(c, &rp, obj, 1, &data)) != GFN_OK)
		s = undo(c, obj, s);
	if (s == GFN_OK) {
		view->data = data;
		view->size = (size_t)rp.size;
		view->dtype = (gfn_dtype)rp.dtype;
		view->ndim = rp.ndim;
		memcpy(view->shape, rp.shape, sizeof(view->shape));
	}
	pthread_mutex_unlock(&c->lock);
	return s;
}

gfn_status gfn_store_client_release(gfn_store_client *c, gfn_object obj)
{
	return simple(c, GFN_SHM_OP_RELEASE, obj);
}

gfn_status gfn_store_client_delete(gfn_store_client *c, gfn_object obj)
{
	return simple(c, GFN_SHM_OP_DELETE, obj);
}

uint32_t gfn_store_client_tenant(const gfn_store_client *c)
{
	return c ? c->tenant : 0;
}

/* ---- attach and detach ------------------------------------------------------------- */

static gfn_status connect_to(gfn_store_client *c, const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = TIMEOUT_S};

	if (strlen(path) >= sizeof(addr.sun_path))
		return gfn__fail(GFN_EINVAL, "socket path is too long");
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return gfn__fail(GFN_ESYS, "socket: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)))
		return gfn__fail(GFN_ESYS, "cannot reach the store at %s: %s",
		                 path, strerror(errno));
	/* Bounded waits: a stuck engine gives GFN_ETIMEDOUT, not a hang. */
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return GFN_OK;
}

gfn_status gfn_store_client_attach(const char *socket_path,
                                   gfn_store_client **out)
{
	gfn_shm_req rq = {.op = GFN_SHM_OP_ATTACH};
	gfn_shm_rep rp;
	gfn_store_client *c;
	gfn_status s;

	if (!socket_path || !out)
		return gfn__fail(GFN_EINVAL,
		                 "socket_path and out are required");
	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return gfn__fail(GFN_ENOMEM, "no memory for a store client");
	pthread_mutex_init(&c->lock, NULL);
	c->fd = -1;
	s = connect_to(c, socket_path);
	if (s == GFN_OK)
		s = rpc(c, &rq, &rp, NULL);
	if (s != GFN_OK) {
		char why[512];

		snprintf(why, sizeof(why), "%s", gfn_error_detail());
		gfn_store_client_detach(c);
		return gfn__fail(s, "%s", why);
	}
	c->tenant = rp.tenant;
	c->epoch = rp.epoch;
	*out = c;
	return GFN_OK;
}

void gfn_store_client_detach(gfn_store_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	for (size_t k = 0; k < c->nsegs; k++)
		gfn__shm_close(&c->segs[k].map, 0);
	free(c->segs);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
