/*
 * store_server.c - the store's listener for client processes (see
 * store_server.h, store_proto.h and docs/store.md).
 *
 * One thread polls the listening socket, an eventfd that stops it, and
 * every connection. It never blocks on a client: sockets are non-blocking,
 * a connection gets at most one request served per round (so a busy one
 * cannot starve the others), and a client that does not read its replies
 * is dropped when its socket buffer is full. Each request is one short
 * store call.
 *
 * Who a client is comes from the kernel (SO_PEERCRED at accept): its
 * tenant is its uid + 1, so no client is ever tenant 0, the engine. What
 * it holds is written down per connection in a ledger (object -> number
 * of references): a client may only release references it holds, and
 * when its socket closes (exit, crash, SIGKILL) the server gives back
 * every reference in the ledger. Unsealed objects it created go with
 * their last reference, so nothing it reserved outlives it.
 */
#include "engine/store_server.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine/store.h"
#include "engine/store_proto.h"
#include "runtime/util.h"

#define MAX_CONNS 256         /* client connections at once */
#define TENANT_CONNS 64       /* of them from one tenant (one uid) */
#define LEDGER_MAX (1u << 20) /* distinct objects one client holds */
#define CMSG_FDS 8            /* descriptors we make room to receive */

typedef struct lentry {
	uint64_t hi, lo; /* object id; hi == 0: empty */
	uint32_t refs;   /* references the client holds */
} lentry;

typedef struct conn {
	int fd;          /* the connection */
	uint32_t tenant; /* uid + 1, from SO_PEERCRED */
	pid_t pid;       /* the client process, for messages */
	int attached;    /* ATTACH seen */
	uint64_t since;  /* accepted at (gfn__now_ns) */
	lentry *tab;     /* ledger, open addressing, linear probing */
	uint32_t cap;    /* its size (a power of two), 0 when none */
	uint32_t n;      /* entries used */
} conn;

struct gfn_store_server {
	gfn_store *st;          /* the store served */
	char path[108];         /* socket file */
	int lfd;                /* listening socket */
	int efd;                /* eventfd: written to stop */
	pthread_t thread;       /* the serving thread */
	int started;            /* thread was created */
	conn *conns[MAX_CONNS]; /* connections; NULL: free */
	int nconns;             /* connections open */
	uint64_t attach_ns;     /* an unattached connection lives this long */
};

/* ---- ledger ---------------------------------------------------------------- */

static uint32_t hash_id(uint64_t lo, uint32_t mask)
{
	return (uint32_t)((lo * 0x9e3779b97f4a7c15ull) >> 32) & mask;
}

/* Index of id in the ledger, or -1. */
static long ledger_find(const conn *c, gfn_object id)
{
	if (!c->cap)
		return -1;
	for (uint32_t i = hash_id(id.lo, c->cap - 1);;
	     i = (i + 1) & (c->cap - 1)) {
		if (!c->tab[i].hi)
			return -1;
		if (c->tab[i].hi == id.hi && c->tab[i].lo == id.lo)
			return i;
	}
}

static void ledger_put(lentry *tab, uint32_t cap, lentry e)
{
	uint32_t i = hash_id(e.lo, cap - 1);

	while (tab[i].hi)
		i = (i + 1) & (cap - 1);
	tab[i] = e;
}

/* Room for one more entry (at most 3/4 full), growing when needed. */
static gfn_status ledger_reserve(conn *c)
{
	uint32_t cap = c->cap ? c->cap : 64;
	lentry *tab;

	if ((uint64_t)(c->n + 1) * 4 <= (uint64_t)c->cap * 3)
		return GFN_OK;
	if (c->n >= LEDGER_MAX)
		return gfn__fail(GFN_ENOMEM,
		                 "this client holds references to %u objects, "
		                 "the most one client may",
		                 c->n);
	while ((uint64_t)(c->n + 1) * 4 > (uint64_t)cap * 3)
		cap *= 2;
	tab = calloc(cap, sizeof(*tab));
	if (!tab)
		return gfn__fail(GFN_ENOMEM, "no memory for a client ledger");
	for (uint32_t i = 0; i < c->cap; i++)
		if (c->tab[i].hi)
			ledger_put(tab, cap, c->tab[i]);
	free(c->tab);
	c->tab = tab;
	c->cap = cap;
	return GFN_OK;
}

/* One more reference to id; ledger_reserve came first. */
static void ledger_add(conn *c, gfn_object id)
{
	long i = ledger_find(c, id);

	if (i >= 0) {
		c->tab[i].refs++;
		return;
	}
	ledger_put(c->tab, c->cap, (lentry){id.hi, id.lo, 1});
	c->n++;
}

/* Remove entry i, moving later entries of its run back (no tombstones). */
static void ledger_remove(conn *c, uint32_t i)
{
	uint32_t mask = c->cap - 1, j = i;

	c->tab[i].hi = 0;
	c->n--;
	for (;;) {
		uint32_t k;

		j = (j + 1) & mask;
		if (!c->tab[j].hi)
			return;
		k = hash_id(c->tab[j].lo, mask);
		/* Entry j may fill hole i when its home k is not in (i, j]. */
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		c->tab[i] = c->tab[j];
		c->tab[j].hi = 0;
		i = j;
	}
}

/* ---- replies -------------------------------------------------------------------- */

static void rep_init(gfn_store_server *srv, const gfn_shm_req *rq,
                     const conn *c, gfn_shm_rep *rp)
{
	memset(rp, 0, sizeof(*rp));
	rp->magic = GFN_SHM_PROTO_MAGIC;
	rp->version = GFN_SHM_PROTO_VERSION;
	rp->op = rq ? rq->op : 0;
	rp->seq = rq ? rq->seq : 0;
	rp->tenant = c->tenant;
	rp->epoch = gfn_store_epoch(srv->st);
}

static void rep_status(gfn_shm_rep *rp, gfn_status s)
{
	rp->status = s;
	if (s != GFN_OK)
		snprintf(rp->detail, sizeof(rp->detail), "%s",
		         gfn_error_detail());
}

static void rep_loc(gfn_shm_rep *rp, const gfn_store_loc *loc)
{
	rp->seg = loc->seg_id;
	rp->seg_size = loc->seg_size;
	rp->off = loc->off;
	rp->size = loc->size;
	rp->dtype = (uint32_t)loc->dtype;
	rp->ndim = loc->ndim;
	memcpy(rp->shape, loc->shape, sizeof(rp->shape));
	rp->node = loc->node;
}

/* Send rp (and fd when >= 0) without blocking; nonzero on failure. */
static int send_rep(conn *c, const gfn_shm_rep *rp, int fd)
{
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {(void *)rp, sizeof(*rp)};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(ctl, 0, sizeof(ctl));
		m.msg_control = ctl;
		m.msg_controllen = sizeof(ctl);
		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) !=
	       (ssize_t)sizeof(*rp);
}

/* ---- requests ----------------------------------------------------------------------- */

static gfn_object req_id(const gfn_shm_req *rq)
{
	return (gfn_object){rq->id_hi, rq->id_lo};
}

static gfn_status op_create(gfn_store_server *srv, conn *c,
                            const gfn_shm_req *rq, gfn_shm_rep *rp)
{
	gfn_store_loc loc;
	gfn_object id;
	gfn_status s = ledger_reserve(c);

	if (s == GFN_OK)
		s = gfn_store_create_at(
		        srv->st, c->tenant, rq->node,
		        rq->client_node >= 0 ? rq->client_node
		                             : GFN_STORE_NODE_UNKNOWN,
		        (gfn_dtype)rq->dtype, rq->ndim, rq->shape, &id, &loc);
	if (s != GFN_OK)
		return s;
	ledger_add(c, id);
	rp->id_hi = id.hi;
	rp->id_lo = id.lo;
	rep_loc(rp, &loc);
	return GFN_OK;
}

static gfn_status op_get(gfn_store_server *srv, conn *c, const gfn_shm_req *rq,
                         gfn_shm_rep *rp)
{
	gfn_store_loc loc;
	gfn_status s = ledger_reserve(c);

	if (s == GFN_OK)
		s = gfn_store_get_as(srv->st, c->tenant, req_id(rq), &loc);
	if (s != GFN_OK)
		return s;
	ledger_add(c, req_id(rq));
	rep_loc(rp, &loc);
	return GFN_OK;
}

static gfn_status op_map(gfn_store_server *srv, conn *c, const gfn_shm_req *rq,
                         gfn_shm_rep *rp)
{
	gfn_store_loc loc;
	gfn_status s = gfn_store_map_as(srv->st, c->tenant, req_id(rq), &loc);

	if (s == GFN_OK)
		rep_loc(rp, &loc);
	return s;
}

static gfn_status op_release(gfn_store_server *srv, conn *c,
                             const gfn_shm_req *rq)
{
	long i = ledger_find(c, req_id(rq));
	gfn_status s;
	char b[48];

	if (i < 0) {
		/* Ids the client does not hold still get the store's answer
		   (unknown, stale, another tenant's) when it has one. */
		s = gfn_store_map_as(srv->st, c->tenant, req_id(rq), NULL);
		if (s != GFN_OK && s != GFN_ESTATE)
			return s;
		return gfn__fail(GFN_ESTATE,
		                 "this client holds no reference to "
		                 "object %s",
		                 gfn_store_id_str(req_id(rq), b, sizeof(b)));
	}
	s = gfn_store_release_as(srv->st, c->tenant, req_id(rq));
	if (s == GFN_OK && --c->tab[i].refs == 0)
		ledger_remove(c, (uint32_t)i);
	return s;
}

static gfn_status op_seg_live(gfn_store_server *srv, conn *c,
                              const gfn_shm_req *rq, gfn_shm_rep *rp)
{
	if (rq->nsegs > GFN_SHM_LIVE_MAX)
		return gfn__fail(GFN_EINVAL,
		                 "%u segments asked about, at "
		                 "most %d",
		                 rq->nsegs, GFN_SHM_LIVE_MAX);
	rp->live = gfn_store_segments_live(srv->st, c->tenant, rq->nsegs,
	                                   rq->segs);
	return GFN_OK;
}

/* Serve a well-formed request; *fd gets a descriptor to send along. */
static gfn_status dispatch(gfn_store_server *srv, conn *c,
                           const gfn_shm_req *rq, gfn_shm_rep *rp, int *fd)
{
	gfn_store *st = srv->st;
	size_t size;
	gfn_status s;

	switch (rq->op) {
	case GFN_SHM_OP_ATTACH:
		return gfn__fail(GFN_ESTATE, "already attached");
	case GFN_SHM_OP_CREATE:
		return op_create(srv, c, rq, rp);
	case GFN_SHM_OP_MAP:
		return op_map(srv, c, rq, rp);
	case GFN_SHM_OP_SEAL:
		return gfn_store_seal_as(st, c->tenant, req_id(rq));
	case GFN_SHM_OP_GET:
		return op_get(srv, c, rq, rp);
	case GFN_SHM_OP_RELEASE:
		return op_release(srv, c, rq);
	case GFN_SHM_OP_DELETE:
		return gfn_store_delete_as(st, c->tenant, req_id(rq));
	case GFN_SHM_OP_SEGMENT:
		s = gfn_store_segment_fd(st, c->tenant, rq->seg, fd, &size);
		rp->seg = rq->seg;
		rp->seg_size = size;
		return s;
	case GFN_SHM_OP_SEG_LIVE:
		return op_seg_live(srv, c, rq, rp);
	}
	return gfn__fail(GFN_EINVAL, "unknown request %u", rq->op);
}

/* Why a message is not a request we serve, or NULL when it is one. */
static const char *malformed(const conn *c, const gfn_shm_req *rq, ssize_t n,
                             int flags)
{
	if (n != (ssize_t)sizeof(*rq) || (flags & MSG_TRUNC))
		return "a request has the wrong size";
	if (rq->magic != GFN_SHM_PROTO_MAGIC)
		return "a request has the wrong magic";
	if (rq->version != GFN_SHM_PROTO_VERSION)
		return "the client speaks another protocol version";
	if (rq->op == 0 || rq->op >= GFN_SHM_OP_END)
		return "unknown request";
	if (!c->attached && rq->op != GFN_SHM_OP_ATTACH)
		return "the first request must be ATTACH";
	if (flags & MSG_CTRUNC)
		return "a request came with descriptors";
	return NULL;
}

/* Close any descriptors that came with a message. */
static int close_fds(struct msghdr *m)
{
	int got = 0;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(m); cm;
	     cm = CMSG_NXTHDR(m, cm)) {
		int *fds = (int *)CMSG_DATA(cm);
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t k = 0; k < n; k++) {
			int fd;

			memcpy(&fd, &fds[k], sizeof(fd));
			close(fd);
			got = 1;
		}
	}
	return got;
}

/* Receive one message; its length, 0 on EOF, -1 on error, -2 if none. */
static ssize_t recv_req(conn *c, gfn_shm_req *rq, int *flags)
{
	char buf[sizeof(*rq) + 1];
	char ctl[CMSG_SPACE(CMSG_FDS * sizeof(int))];
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr m = {.msg_iov = &iov,
	                   .msg_iovlen = 1,
	                   .msg_control = ctl,
	                   .msg_controllen = sizeof(ctl)};
	ssize_t n = recvmsg(c->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -2 : -1;
	*flags = m.msg_flags | (close_fds(&m) ? MSG_CTRUNC : 0);
	memset(rq, 0, sizeof(*rq));
	memcpy(rq, buf, (size_t)n < sizeof(*rq) ? (size_t)n : sizeof(*rq));
	return n;
}

/* Serve one message of c; nonzero when c must be dropped. */
static int serve_one(gfn_store_server *srv, conn *c)
{
	gfn_shm_req rq;
	gfn_shm_rep rp;
	int flags = 0, fd = -1, drop;
	ssize_t n = recv_req(c, &rq, &flags);
	const char *bad;
	gfn_status s;

	if (n == -2)
		return 0;
	if (n <= 0)
		return 1;
	bad = malformed(c, &rq, n, flags);
	rep_init(srv, bad ? NULL : &rq, c, &rp);
	if (bad) {
		gfn__log(GFN_LOG_INFO, "store: dropping client pid %d: %s",
		         (int)c->pid, bad);
		rep_status(&rp, gfn__fail(GFN_EINVAL, "%s", bad));
		send_rep(c, &rp, -1);
		return 1;
	}
	if (rq.op == GFN_SHM_OP_ATTACH) {
		c->attached = 1;
		s = GFN_OK;
	} else {
		s = dispatch(srv, c, &rq, &rp, &fd);
	}
	rep_status(&rp, s);
	drop = send_rep(c, &rp, s == GFN_OK ? fd : -1);
	if (drop) /* its socket is full: it does not read its replies */
		gfn__log(GFN_LOG_INFO, "store: dropping client pid %d: %s",
		         (int)c->pid, "it does not take its replies");
	if (fd >= 0)
		close(fd);
	return drop;
}

/* ---- connections --------------------------------------------------------------------- */

/* Give back everything c held and close it. */
static void drop_conn(gfn_store_server *srv, int k)
{
	conn *c = srv->conns[k];

	for (uint32_t i = 0; i < c->cap; i++)
		if (c->tab[i].hi)
			gfn_store_release_count(
			        srv->st, c->tenant,
			        (gfn_object){c->tab[i].hi, c->tab[i].lo},
			        c->tab[i].refs);
	close(c->fd);
	free(c->tab);
	free(c);
	srv->conns[k] = NULL;
	srv->nconns--;
	gfn_store_count_client(srv->st, -1);
}

static int tenant_conns(const gfn_store_server *srv, uint32_t tenant)
{
	int n = 0;

	for (int k = 0; k < MAX_CONNS; k++)
		n += srv->conns[k] && srv->conns[k]->tenant == tenant;
	return n;
}

/*
 * Take a new connection; its tenant comes from the kernel. One uid may
 * not take every connection: the others must still get in.
 */
static void add_conn(gfn_store_server *srv, int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	conn *c;
	int k = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) ||
	    cr.uid == (uid_t)-1 || srv->nconns == MAX_CONNS ||
	    tenant_conns(srv, (uint32_t)cr.uid + 1) >= TENANT_CONNS ||
	    !(c = calloc(1, sizeof(*c)))) {
		gfn__log(GFN_LOG_WARN, "store: refusing a client (%d open)",
		         srv->nconns);
		close(fd);
		return;
	}
	while (srv->conns[k])
		k++;
	c->fd = fd;
	c->tenant = (uint32_t)cr.uid + 1; /* uid 0 is tenant 1, not 0 */
	c->pid = cr.pid;
	c->since = gfn__now_ns();
	srv->conns[k] = c;
	srv->nconns++;
	gfn_store_count_client(srv->st, 1);
}

static void accept_all(gfn_store_server *srv)
{
	int fd;

	while ((fd = accept4(srv->lfd, NULL, NULL,
	                     SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0)
		add_conn(srv, fd);
}

/* Poll set: the eventfd, the listener, then the connections. */
static int fill_poll(gfn_store_server *srv, struct pollfd *p, int *who)
{
	int n = 2;

	p[0] = (struct pollfd){.fd = srv->efd, .events = POLLIN};
	p[1] = (struct pollfd){.fd = srv->lfd, .events = POLLIN};
	for (int k = 0; k < MAX_CONNS; k++) {
		if (!srv->conns[k])
			continue;
		p[n] = (struct pollfd){.fd = srv->conns[k]->fd,
		                       .events = POLLIN};
		who[n++] = k;
	}
	return n;
}

/*
 * Drop connections that never attached in time (a connection that only
 * holds a slot must not keep it); the poll timeout (ms) until the next
 * one is due, -1 when none waits.
 */
static int expire(gfn_store_server *srv)
{
	uint64_t now = gfn__now_ns(), next = UINT64_MAX;

	for (int k = 0; k < MAX_CONNS; k++) {
		conn *c = srv->conns[k];

		if (!c || c->attached)
			continue;
		if (now - c->since >= srv->attach_ns) {
			gfn__log(GFN_LOG_INFO,
			         "store: dropping client pid %d: no ATTACH",
			         (int)c->pid);
			drop_conn(srv, k);
		} else if (c->since + srv->attach_ns - now < next) {
			next = c->since + srv->attach_ns - now;
		}
	}
	if (next == UINT64_MAX)
		return -1;
	return next / 1000000 < 60000 ? (int)(next / 1000000) + 1 : 60000;
}

static void *serve(void *arg)
{
	gfn_store_server *srv = arg;
	struct pollfd p[MAX_CONNS + 2];
	int who[MAX_CONNS + 2];

	pthread_setname_np(pthread_self(), "gfn-store");
	for (;;) {
		int wait = expire(srv), n = fill_poll(srv, p, who);

		if (poll(p, (nfds_t)n, wait) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		if (p[1].revents & POLLIN)
			accept_all(srv);
		for (int i = 2; i < n; i++) {
			conn *c = srv->conns[who[i]];

			if ((p[i].revents & POLLIN) ? serve_one(srv, c)
			                            : (p[i].revents != 0))
				drop_conn(srv, who[i]);
		}
	}
	for (int k = 0; k < MAX_CONNS; k++)
		if (srv->conns[k])
			drop_conn(srv, k);
	return NULL;
}

/* ---- start and stop ---------------------------------------------------------------------- */

/* A socket file nobody listens on: a dead engine's, safe to replace. */
static int stale(const struct sockaddr_un *addr)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct stat sb;
	int dead;

	if (fd < 0 || lstat(addr->sun_path, &sb) || !S_ISSOCK(sb.st_mode)) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	dead = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) &&
	       errno == ECONNREFUSED;
	close(fd);
	return dead;
}

static gfn_status bind_path(gfn_store_server *srv,
                            const struct sockaddr_un *addr)
{
	const struct sockaddr *sa = (const struct sockaddr *)addr;

	if (!bind(srv->lfd, sa, sizeof(*addr)))
		return GFN_OK;
	if (errno != EADDRINUSE)
		return gfn__fail(GFN_ESYS, "cannot bind %s: %s", addr->sun_path,
		                 strerror(errno));
	if (!stale(addr))
		return gfn__fail(GFN_EEXIST,
		                 "%s is in use (another engine listens there, "
		                 "or it is not a socket)",
		                 addr->sun_path);
	if (unlink(addr->sun_path) || bind(srv->lfd, sa, sizeof(*addr)))
		return gfn__fail(GFN_ESYS, "cannot bind %s: %s", addr->sun_path,
		                 strerror(errno));
	return GFN_OK;
}

static gfn_status listen_on(gfn_store_server *srv, const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	gfn_status s;

	if (!path[0] || strlen(path) >= sizeof(addr.sun_path))
		return gfn__fail(GFN_EINVAL,
		                 "store socket path \"%s\" is empty or longer "
		                 "than %zu bytes",
		                 path, sizeof(addr.sun_path) - 1);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	srv->lfd = socket(AF_UNIX,
	                  SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (srv->lfd < 0)
		return gfn__fail(GFN_ESYS, "socket: %s", strerror(errno));
	if ((s = bind_path(srv, &addr)) != GFN_OK)
		return s;
	snprintf(srv->path, sizeof(srv->path), "%s", path); /* ours now */
	/* Clients of every uid may connect: the tenant comes from the uid. */
	if (chmod(path, 0666) || listen(srv->lfd, 128))
		return gfn__fail(GFN_ESYS, "listening on %s: %s", path,
		                 strerror(errno));
	return GFN_OK;
}

gfn_status gfn__store_server_start(struct gfn_store *st, const char *path,
                                   unsigned attach_timeout_ms,
                                   gfn_store_server **out)
{
	gfn_store_server *srv = calloc(1, sizeof(*srv));
	gfn_status s;

	*out = NULL;
	if (!srv)
		return gfn__fail(GFN_ENOMEM, "no memory for the store server");
	srv->st = st;
	srv->lfd = srv->efd = -1;
	srv->attach_ns =
	        (uint64_t)(attach_timeout_ms ? attach_timeout_ms : 10000) *
	        1000000u;
	if ((s = listen_on(srv, path)) != GFN_OK)
		goto err;
	srv->efd = eventfd(0, EFD_CLOEXEC);
	if (srv->efd < 0) {
		s = gfn__fail(GFN_ESYS, "eventfd: %s", strerror(errno));
		goto err;
	}
	if (pthread_create(&srv->thread, NULL, serve, srv)) {
		s = gfn__fail(GFN_ESYS, "cannot start the store server thread");
		goto err;
	}
	srv->started = 1;
	*out = srv;
	return GFN_OK;
err:
	gfn__store_server_stop(srv);
	return s;
}

void gfn__store_server_stop(gfn_store_server *srv)
{
	uint64_t one = 1;

	if (!srv)
		return;
	if (srv->started) {
		if (write(srv->efd, &one, sizeof(one)) != sizeof(one))
			gfn__log(GFN_LOG_ERROR,
			         "store: cannot stop the server");
		pthread_join(srv->thread, NULL);
	}
	if (srv->lfd >= 0) {
		close(srv->lfd);
		if (srv->path[0])
			unlink(srv->path);
	}
	if (srv->efd >= 0)
		close(srv->efd);
	free(srv);
}
