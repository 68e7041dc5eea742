/*
 * test_shm_badinput - what a client process can get wrong, on purpose or
 * not: unknown, stale and other-tenant ids, calls in the wrong state,
 * writes past the end, scribbled slot and segment headers, garbage on
 * the socket, a client that never reads its replies. Each gets a clear
 * error, and the store stays consistent and serves everyone else.
 */
#include "test_shm_util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/shm_segment.h"
#include "engine/store_proto.h"

#define OTHER_TENANT 77 /* a tenant no client process has */

static gfn_store_client *attach(const char *sock)
{
	gfn_store_client *c = NULL;

	ASSERT_OK(gfn_store_client_attach(sock, &c));
	return c;
}

/* --------------------------------------------------------- client calls */

static void bad_ids(gfn_store_client *c, gfn_object other)
{
	gfn_object unknown = {0x5eed5eed5eed5eedull, 0x0000000100000007ull};
	gfn_object o, zero = GFN_OBJECT_NONE;
	int64_t shape[1] = {16};
	gfn_object_view v;
	void *p;
	size_t sz;

	ASSERT_FAILS(gfn_store_client_get(c, unknown, &v), GFN_ENOENT);
	ASSERT_FAILS(gfn_store_client_get(c, zero, &v), GFN_ENOENT);
	ASSERT_FAILS(gfn_store_client_release(c, unknown), GFN_ENOENT);
	ASSERT_FAILS(gfn_store_client_delete(c, unknown), GFN_ENOENT);
	/* Stale: deleted, and its slot maybe reused since. */
	ASSERT_OK(gfn_store_client_create(c, GFN_U8, 1, shape, &o));
	ASSERT_OK(gfn_store_client_seal(c, o));
	ASSERT_OK(gfn_store_client_release(c, o));
	ASSERT_OK(gfn_store_client_delete(c, o));
	ASSERT_FAILS(gfn_store_client_get(c, o, &v), GFN_ESTALE);
	ASSERT_FAILS(gfn_store_client_seal(c, o), GFN_ESTALE);
	ASSERT_FAILS(gfn_store_client_map(c, o, &p, &sz), GFN_ESTALE);
	ASSERT_FAILS(gfn_store_client_release(c, o), GFN_ESTALE);
	/* Another tenant's, with its real id. */
	ASSERT_FAILS(gfn_store_client_get(c, other, &v), GFN_EACCES);
	ASSERT_FAILS(gfn_store_client_release(c, other), GFN_EACCES);
	ASSERT_FAILS(gfn_store_client_delete(c, other), GFN_EACCES);
}

static void bad_states(gfn_store_client *c)
{
	int64_t shape[1] = {64};
	unsigned char buf[128] = {0};
	gfn_object_view v;
	gfn_object o;

	ASSERT_OK(gfn_store_client_create(c, GFN_U8, 1, shape, &o));
	ASSERT_FAILS(gfn_store_client_get(c, o, &v), GFN_ESTATE);
	ASSERT_FAILS(gfn_store_client_write(c, o, 0, buf, 65), GFN_ERANGE);
	ASSERT_FAILS(gfn_store_client_write(c, o, 64, buf, 1), GFN_ERANGE);
	ASSERT_FAILS(gfn_store_client_write(c, o, SIZE_MAX, buf, 2),
	             GFN_ERANGE);
	ASSERT_FAILS(gfn_store_client_write(c, o, 8, buf, SIZE_MAX - 4),
	             GFN_ERANGE);
	ASSERT_OK(gfn_store_client_write(c, o, 0, buf, 64));
	ASSERT_OK(gfn_store_client_seal(c, o));
	ASSERT_FAILS(gfn_store_client_seal(c, o), GFN_ESTATE);
	ASSERT_FAILS(gfn_store_client_write(c, o, 0, buf, 1), GFN_ESTATE);
	ASSERT_OK(gfn_store_client_release(c, o));
	/* Release without get: cached, this client holds nothing. */
	ASSERT_FAILS(gfn_store_client_release(c, o), GFN_ESTATE);
	ASSERT_OK(gfn_store_client_get(c, o, &v));
	ASSERT_OK(gfn_store_client_release(c, o));
	ASSERT_FAILS(gfn_store_client_release(c, o), GFN_ESTATE);
	ASSERT_OK(gfn_store_client_delete(c, o));
}

static void bad_arguments(gfn_store_client *c)
{
	int64_t shape[2] = {4, -1}, huge[2] = {1ll << 40, 1ll << 20};
	gfn_object o = GFN_OBJECT_NONE;
	gfn_store_client *c2 = NULL;
	void *p;
	size_t sz;

	ASSERT_FAILS(gfn_store_client_create(c, GFN_U8, 2, shape, &o),
	             GFN_EINVAL);
	ASSERT_FAILS(gfn_store_client_create(c, (gfn_dtype)99, 1, shape, &o),
	             GFN_EINVAL);
	ASSERT_FAILS(gfn_store_client_create(c, GFN_U8, 9, huge, &o),
	             GFN_EINVAL);
	ASSERT_FAILS(gfn_store_client_create(c, GFN_U8, -1, huge, &o),
	             GFN_EINVAL);
	ASSERT_FAILS(gfn_store_client_create(c, GFN_F64, 1, huge, &o),
	             GFN_ENOMEM);
	ASSERT_FAILS(gfn_store_client_create(c, GFN_F64, 2, huge, &o),
	             GFN_ERANGE);
	ASSERT_FAILS(gfn_store_client_create(NULL, GFN_U8, 1, huge, &o),
	             GFN_EINVAL);
	ASSERT_FAILS(gfn_store_client_create(c, GFN_U8, 1, NULL, &o),
	             GFN_EINVAL);
	ASSERT_FAILS(gfn_store_client_map(c, o, NULL, &sz), GFN_EINVAL);
	ASSERT_FAILS(gfn_store_client_map(NULL, o, &p, &sz), GFN_EINVAL);
	ASSERT_FAILS(gfn_store_client_get(c, o, NULL), GFN_EINVAL);
	ASSERT_FAILS(gfn_store_client_seal(NULL, o), GFN_EINVAL);
	ASSERT_FAILS(gfn_store_client_attach("/nonexistent/gfn.sock", &c2),
	             GFN_ESYS);
	ASSERT_NULL(c2);
	{
		char longp[200];

		memset(longp, 'a', sizeof(longp) - 1);
		longp[sizeof(longp) - 1] = '\0';
		ASSERT_FAILS(gfn_store_client_attach(longp, &c2), GFN_EINVAL);
	}
}

/* Scribble on slot headers through our own mapping. */
static void bad_headers(gfn_store_client *c, const char *sock)
{
	int64_t shape[1] = {1000};
	gfn_object_view v;
	gfn_store_client *c2;
	gfn_object o;
	uint64_t *w, saved;
	void *p;
	size_t sz;

	ASSERT_OK(gfn_store_client_create(c, GFN_U8, 1, shape, &o));
	ASSERT_OK(gfn_store_client_map(c, o, &p, &sz));
	w = (uint64_t *)((char *)p - GFN_SHM_GRANULE);
	saved = w[4];
	w[4] = 1 << 30; /* size: the block cannot hold it */
	ASSERT_FAILS(gfn_store_client_map(c, o, &p, &sz), GFN_EINVAL);
	ASSERT_FAILS(gfn_store_client_seal(c, o), GFN_EINVAL);
	ASSERT_U64_EQ(w[4], saved); /* the engine put it back */
	ASSERT_OK(gfn_store_client_seal(c, o));
	w[2] ^= 1; /* the id */
	ASSERT_FAILS(gfn_store_client_get(c, o, &v), GFN_EINVAL);
	ASSERT_OK(gfn_store_client_get(c, o, &v));
	ASSERT_OK(gfn_store_client_release(c, o));
	/* The segment header: whole again for the next client to map. */
	memset((char *)p - GFN_SHM_GRANULE - (size_t)w[5], 0xee, 48);
	c2 = attach(sock);
	ASSERT_OK(gfn_store_client_get(c2, o, &v));
	ASSERT_EQ(v.size, 1000);
	ASSERT_OK(gfn_store_client_release(c2, o));
	gfn_store_client_detach(c2);
	ASSERT_OK(gfn_store_client_release(c, o));
}

/* argv: socket, another tenant's object. */
static int child_calls(int argc, char **argv)
{
	gfn_store_client *c = attach(argv[0]);

	ASSERT_EQ(argc, 2);
	bad_ids(c, shm_id_parse(argv[1]));
	bad_states(c);
	bad_arguments(c);
	bad_headers(c, argv[0]);
	gfn_store_client_detach(c);
	return 0;
}

static void shm_bad_client_calls(void)
{
	struct shm_env env;
	int64_t shape[1] = {100};
	gfn_store_stats s0;
	gfn_object other;
	gfn_object_view v;
	char arg[40];

	shm_env_start(&env, NULL);
	ASSERT_OK(gfn_store_create_as(env.st, OTHER_TENANT, GFN_U8, 1, shape,
	                              &other, NULL));
	ASSERT_OK(gfn_object_seal(env.e, other));
	s0 = shm_stats(&env);
	ASSERT_EQ(shm_wait(shm_spawn("calls", env.sock, shm_id_arg(other, arg),
	                             NULL),
	                   60),
	          0);
	shm_wait_clients(&env, 0);
	shm_check(&env);
	/* The other tenant's object kept its one reference. */
	ASSERT_OK(gfn_object_get(env.e, other, &v));
	ASSERT_OK(gfn_object_release(env.e, other));
	ASSERT_OK(gfn_object_release(env.e, other));
	ASSERT_FAILS(gfn_object_release(env.e, other), GFN_ESTATE);
	/* What the child left is sealed and cached, nothing more. */
	ASSERT_LE(shm_stats(&env).objects, s0.objects + 1);
	shm_env_stop(&env);
}

/* ------------------------------------------------------ engine goes away */

/* argv: socket, to parent, from parent. */
static int child_orphan(int argc, char **argv)
{
	gfn_store_client *c = attach(argv[0]);
	int64_t shape[1] = {100};
	gfn_object o;
	char go;

	ASSERT_EQ(argc, 3);
	ASSERT_OK(gfn_store_client_create(c, GFN_U8, 1, shape, &o));
	shm_send(atoi(argv[1]), "r", 1);
	shm_recv(atoi(argv[2]), &go, 1);
	ASSERT_FAILS(gfn_store_client_seal(c, o), GFN_ESHUTDOWN);
	ASSERT_FAILS(gfn_store_client_create(c, GFN_U8, 1, shape, &o),
	             GFN_ESHUTDOWN);
	gfn_store_client_detach(c);
	return 0;
}

static void shm_bad_engine_gone(void)
{
	struct shm_env env;
	int up[2], down[2];
	char a1[16], a2[16], r;
	pid_t pid;

	shm_env_start(&env, NULL);
	shm_pipe(up);
	shm_pipe(down);
	pid = shm_spawn("orphan", env.sock, shm_fd_arg(up[1], a1),
	                shm_fd_arg(down[0], a2), NULL);
	close(up[1]);
	close(down[0]);
	shm_recv(up[0], &r, 1);
	shm_env_stop(&env); /* with the client still attached */
	shm_send(down[1], "g", 1);
	ASSERT_EQ(shm_wait(pid, 30), 0);
	close(up[0]);
	close(down[1]);
}

/* ----------------------------------------------------- garbage on the wire */

/* One message on a fresh connection: the engine answers EINVAL, hangs up. */
static void garbage(const char *sock, const void *msg, size_t n, int attach)
{
	struct gfn_shm_req rq = {.op = GFN_SHM_OP_ATTACH};
	struct gfn_shm_rep rp;
	int fd = shm_raw_connect(sock);
	long got;

	if (attach)
		ASSERT_EQ(shm_raw_call(fd, &rq, &rp, NULL), GFN_OK);
	ASSERT_EQ(shm_raw_send(fd, msg, n), 0);
	got = shm_raw_recv(fd, &rp, NULL);
	if (n) { /* an empty message reads as a hang-up: nothing to say */
		ASSERT_EQ(got, (long)sizeof(rp));
		ASSERT_EQ(rp.status, GFN_EINVAL);
		ASSERT(rp.detail[0] != '\0');
		got = shm_raw_recv(fd, &rp, NULL);
	}
	ASSERT_EQ(got, 0); /* closed */
	close(fd);
}

static void malformed_messages(const char *sock)
{
	struct gfn_shm_req rq;
	char big[65536];

	memset(big, 0x41, sizeof(big));
	garbage(sock, "hello", 5, 0);
	garbage(sock, "", 0, 0);
	garbage(sock, big, sizeof(big), 0);
	garbage(sock, big, sizeof(rq), 1);
	memset(&rq, 0, sizeof(rq));
	rq.magic = GFN_SHM_PROTO_MAGIC;
	rq.version = GFN_SHM_PROTO_VERSION + 1;
	rq.op = GFN_SHM_OP_ATTACH;
	garbage(sock, &rq, sizeof(rq), 0); /* another version */
	rq.version = GFN_SHM_PROTO_VERSION;
	rq.op = GFN_SHM_OP_GET;
	garbage(sock, &rq, sizeof(rq), 0); /* before ATTACH */
	rq.op = 0;
	garbage(sock, &rq, sizeof(rq), 1);
	rq.op = 999;
	garbage(sock, &rq, sizeof(rq), 1);
	rq.op = GFN_SHM_OP_ATTACH;
	garbage(sock, &rq, sizeof(rq) - 1, 0);
}

/* A request that comes with descriptors: refused, and they are closed. */
static void fds_attached(struct shm_env *env)
{
	struct gfn_shm_req rq = {.magic = GFN_SHM_PROTO_MAGIC,
	                         .version = GFN_SHM_PROTO_VERSION,
	                         .op = GFN_SHM_OP_ATTACH};
	char ctl[CMSG_SPACE(3 * sizeof(int))];
	struct iovec iov = {&rq, sizeof(rq)};
	struct msghdr m = {.msg_iov = &iov,
	                   .msg_iovlen = 1,
	                   .msg_control = ctl,
	                   .msg_controllen = sizeof(ctl)};
	struct gfn_shm_rep rp;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	int before = shm_open_fds(); /* no connection of ours open */
	int fds[3], fd = shm_raw_connect(env->sock);

	for (int i = 0; i < 3; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	ASSERT_EQ(sendmsg(fd, &m, 0), (ssize_t)sizeof(rq));
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	ASSERT_EQ(shm_raw_recv(fd, &rp, NULL), (long)sizeof(rp));
	ASSERT_EQ(rp.status, GFN_EINVAL);
	ASSERT_EQ(shm_raw_recv(fd, &rp, NULL), 0);
	close(fd);
	shm_wait_clients(env, 0);
	ASSERT_EQ(shm_open_fds(), before); /* the three were closed too */
}

/* Well-formed requests with random fields: answers, never a crash. */
static void random_requests(struct shm_env *env)
{
	struct gfn_shm_req rq = {.op = GFN_SHM_OP_ATTACH};
	struct gfn_shm_rep rp;
	int fd = shm_raw_connect(env->sock), got;
	size_t n = test_scaled(4000, 500);
	uint64_t rng = 99;

	ASSERT_EQ(shm_raw_call(fd, &rq, &rp, NULL), GFN_OK);
	for (size_t i = 0; i < n; i++) {
		uint64_t *w = (uint64_t *)&rq;
		int st;

		for (size_t k = 0; k < sizeof(rq) / 8; k++)
			w[k] = test_rand(&rng);
		rq.op = (uint16_t)(2 + test_rand(&rng) % (GFN_SHM_OP_END - 2));
		rq.ndim = (int32_t)(test_rand(&rng) % 11) - 1;
		rq.dtype = (uint32_t)(test_rand(&rng) % 10);
		for (int d = 0; d < GFN_MAX_DIMS; d++)
			rq.shape[d] = (int64_t)(test_rand(&rng) % 40) - 2;
		if (test_rand(&rng) % 2)
			rq.nsegs %= 40;
		got = -1;
		st = shm_raw_call(fd, &rq, &rp, &got);
		ASSERT(st <= 0); /* an answer every time */
		if (got >= 0)
			close(got);
	}
	close(fd);
	shm_wait_clients(env, 0);
}

/* A client that sends without reading is dropped; others go on. */
static void flooder(struct shm_env *env)
{
	struct gfn_shm_req rq = {.magic = GFN_SHM_PROTO_MAGIC,
	                         .version = GFN_SHM_PROTO_VERSION,
	                         .op = GFN_SHM_OP_ATTACH};
	int fd = shm_raw_connect(env->sock), idle = shm_raw_connect(env->sock);
	gfn_store_client *c;
	gfn_object o;
	int64_t shape[1] = {10};
	uint64_t t0 = test_now_ns();

	ASSERT_EQ(shm_raw_send(fd, &rq, sizeof(rq)), 0);
	rq.op = GFN_SHM_OP_SEG_LIVE;
	/* Until the engine hangs up on us (EPIPE): its replies pile up. */
	for (;;) {
		ssize_t r =
		        send(fd, &rq, sizeof(rq), MSG_DONTWAIT | MSG_NOSIGNAL);

		ASSERT_LT(test_now_ns() - t0, 20000000000ull);
		if (r < 0 && errno == EAGAIN)
			test_sleep_us(1000);
		else if (r < 0)
			break;
	}
	ASSERT(errno == EPIPE || errno == ECONNRESET);
	/* Meanwhile a real client, beside an idle connection, is served. */
	c = attach(env->sock);
	ASSERT_OK(gfn_store_client_create(c, GFN_U8, 1, shape, &o));
	ASSERT_OK(gfn_store_client_seal(c, o));
	gfn_store_client_detach(c);
	close(idle);
	close(fd);
	shm_wait_clients(env, 0);
}

static void shm_bad_wire(void)
{
	struct shm_env env;
	gfn_store_stats s0;

	shm_env_start(&env, NULL);
	s0 = shm_stats(&env);
	malformed_messages(env.sock);
	fds_attached(&env);
	random_requests(&env);
	flooder(&env);
	shm_wait_clients(&env, 0);
	shm_check(&env);
	/* Random creates were reclaimed with their connection; only the
	   flooder's helper left one sealed object. */
	ASSERT_LE(shm_stats(&env).objects, s0.objects + 1);
	shm_env_stop(&env);
}

/* ------------------------------------------------ connections as a resource */

/*
 * A connection that never attaches is dropped after the attach timeout;
 * one uid cannot take every connection; both leave the store serving.
 */
static void shm_bad_idle_and_many_connections(void)
{
	gfn_store_config cfg = {.capacity = 1 << 20,
	                        .max_objects = 64,
	                        .attach_timeout_ms = 200};
	char dir[64] = "/tmp/gfn-shm-XXXXXX", sock[128];
	struct gfn_shm_req rq = {.op = GFN_SHM_OP_ATTACH};
	struct gfn_shm_rep rp;
	int fds[64], idle, extra;
	gfn_store_client *c;
	gfn_store *st;
	uint64_t t0;

	ASSERT_NOT_NULL(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/s", dir);
	cfg.socket_path = sock;
	ASSERT_OK(gfn_store_create(&cfg, &st));
	t0 = test_now_ns();
	idle = shm_raw_connect(sock);
	ASSERT_EQ(shm_raw_recv(idle, &rp, NULL), 0); /* hung up on */
	ASSERT_GE(test_now_ns() - t0, 150000000ull);
	close(idle);
	for (int i = 0; i < 64; i++) {
		fds[i] = shm_raw_connect(sock);
		ASSERT_EQ(shm_raw_call(fds[i], &rq, &rp, NULL), GFN_OK);
	}
	extra = shm_raw_connect(sock);
	ASSERT_EQ(shm_raw_call(extra, &rq, &rp, NULL), 1); /* refused */
	close(extra);
	for (int i = 0; i < 64; i++)
		close(fds[i]);
	for (gfn_store_stats s = {.clients = 1}; s.clients;
	     gfn_store_get_stats(st, &s)) {
		ASSERT_LT(test_now_ns() - t0, 30000000000ull);
		test_sleep_us(1000);
	}
	c = attach(sock);
	ASSERT_FAILS(gfn_store_client_seal(c, GFN_OBJECT_NONE), GFN_ENOENT);
	gfn_store_client_detach(c);
	gfn_store_destroy(st);
	ASSERT_EQ(rmdir(dir), 0);
}

/* ------------------------------------------------------------ parsers */

/* A segment image with one live object, for flipping bits in. */
static void image(char **seg, size_t *len, uint64_t *off)
{
	gfn_store_config cfg = {.capacity = 1 << 20, .max_objects = 16};
	int64_t shape[2] = {3, 5};
	gfn_store_loc l;
	gfn_store *st;
	gfn_object o;

	ASSERT_OK(gfn_store_create(&cfg, &st));
	ASSERT_OK(gfn_store_create_as(st, 3, GFN_I32, 2, shape, &o, &l));
	ASSERT_OK(gfn_store_seal_as(st, 3, o));
	*len = (size_t)l.seg_size;
	*off = l.off;
	*seg = aligned_alloc(64, *len);
	ASSERT_NOT_NULL(*seg);
	memcpy(*seg, (char *)l.data - GFN_SHM_GRANULE - l.off, *len);
	gfn_store_destroy(st);
}

static void shm_bad_header_bits(void)
{
	char *seg;
	size_t len;
	uint64_t off;
	gfn_shm_slot sl;
	gfn_shm_seg_info si;

	image(&seg, &len, &off);
	ASSERT_OK(gfn__shm_seg_parse(seg, len, &si));
	ASSERT_OK(gfn__shm_slot_parse(seg, len, off, &sl));
	for (size_t b = 0; b < GFN_SHM_GRANULE * 8; b++) {
		char *p = seg + off + b / 8;
		size_t word = b / 64, in_word = b % 64;
		/* State (bits 32-39 of word 0) and references (bits 32-63
		   of word 3) change while the object lives: they are not in
		   the checksum. */
		int free_bits = (word == 0 && in_word >= 32 && in_word < 40) ||
		                (word == 3 && in_word >= 32);
		gfn_status s;

		*p ^= (char)(1 << (b % 8));
		s = gfn__shm_slot_parse(seg, len, off, &sl);
		*p ^= (char)(1 << (b % 8));
		if (!free_bits)
			ASSERT_STATUS(s, GFN_EINVAL);
		else if (s == GFN_OK && word == 0)
			ASSERT_EQ(sl.state, GFN_SHM_OPEN); /* 2 -> 1 */
	}
	for (size_t b = 0; b < GFN_SHM_GRANULE * 8; b++) {
		seg[b / 8] ^= (char)(1 << (b % 8));
		ASSERT_STATUS(gfn__shm_seg_parse(seg, len, &si), GFN_EINVAL);
		seg[b / 8] ^= (char)(1 << (b % 8));
	}
	/* Places that are not a block at all. */
	ASSERT_FAILS(gfn__shm_slot_parse(seg, len, 0, &sl), GFN_EINVAL);
	ASSERT_FAILS(gfn__shm_slot_parse(seg, len, off + 1, &sl), GFN_EINVAL);
	ASSERT_FAILS(gfn__shm_slot_parse(seg, len, len, &sl), GFN_EINVAL);
	ASSERT_FAILS(gfn__shm_slot_parse(seg, len, UINT64_MAX - 127, &sl),
	             GFN_EINVAL);
	ASSERT_FAILS(gfn__shm_slot_parse(seg + 1, len - 8, off, &sl),
	             GFN_EINVAL);
	/* A mapping shorter than the segment says. */
	ASSERT_FAILS(gfn__shm_seg_parse(seg, len - 4096, &si), GFN_EINVAL);
	ASSERT_FAILS(gfn__shm_slot_parse(seg, off + GFN_SHM_GRANULE, off, &sl),
	             GFN_EINVAL);
	ASSERT_OK(gfn__shm_slot_parse(seg, len, off, &sl));
	free(seg);
}

static const struct shm_role roles[] = {
        {"calls", child_calls},
        {"orphan", child_orphan},
        {NULL, NULL},
};

int main(int argc, char **argv)
{
	shm_child_dispatch(argc, argv, roles);
	printf("# test_shm_badinput\n");
	TEST_RUN(shm_bad_client_calls);
	TEST_RUN(shm_bad_engine_gone);
	TEST_RUN(shm_bad_wire);
	TEST_RUN(shm_bad_idle_and_many_connections);
	TEST_RUN(shm_bad_header_bits);
	return 0;
}
