/*
 * test_shm_client - client processes attached to the store over its unix
 * socket: the whole lifecycle in place, zero-copy handoff into an
 * invocation and back, reclaim when a client exits holding things, and a
 * client SIGKILLed in the middle of a write.
 */
#include "test_shm_util.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static gfn_store_client *attach(const char *sock)
{
	gfn_store_client *c = NULL;

	ASSERT_OK(gfn_store_client_attach(sock, &c));
	ASSERT_NOT_NULL(c);
	ASSERT_EQ(gfn_store_client_tenant(c), (uint32_t)getuid() + 1);
	return c;
}

/* A sealed object of n bytes of seed's pattern, made by client c. */
static gfn_object client_make(gfn_store_client *c, size_t n, uint64_t seed)
{
	int64_t shape[1] = {(int64_t)n};
	gfn_object o;
	void *p;
	size_t sz;

	ASSERT_OK(gfn_store_client_create(c, GFN_U8, 1, shape, &o));
	ASSERT_OK(gfn_store_client_map(c, o, &p, &sz));
	ASSERT_EQ(sz, n);
	shm_fill(p, n, seed);
	ASSERT_OK(gfn_store_client_seal(c, o));
	return o;
}

/* ------------------------------------------------------------- lifecycle */

/* argv: socket, pipe to the parent. */
static int child_lifecycle(int argc, char **argv)
{
	gfn_store_client *c = attach(argv[0]);
	int64_t shape[2] = {64, 256};
	size_t n = 64 * 256 * sizeof(float);
	int out = atoi(argv[1]);
	gfn_object o, o2, o3;
	gfn_object_view v, v2;
	char buf[2 * 40];
	float *f, tail[4] = {1, 2, 3, 4};
	void *p;
	size_t sz;

	ASSERT_EQ(argc, 2);
	ASSERT_OK(gfn_store_client_create(c, GFN_F32, 2, shape, &o));
	ASSERT_OK(gfn_store_client_map(c, o, &p, &sz));
	ASSERT_EQ(sz, n);
	f = p;
	for (size_t i = 0; i < n / sizeof(float); i++)
		f[i] = (float)i;
	ASSERT_OK(gfn_store_client_write(c, o, n - sizeof tail, tail,
	                                 sizeof tail));
	ASSERT_FAILS(gfn_store_client_get(c, o, &v), GFN_ESTATE);
	ASSERT_OK(gfn_store_client_seal(c, o));
	ASSERT_FAILS(gfn_store_client_map(c, o, &p, &sz), GFN_ESTATE);
	ASSERT_OK(gfn_store_client_get(c, o, &v));
	/* In place: the view is the memory the client filled. */
	ASSERT(v.data == (const void *)f);
	ASSERT_EQ(v.size, n);
	ASSERT_EQ(v.dtype, GFN_F32);
	ASSERT_EQ(v.ndim, 2);
	ASSERT_EQ(v.shape[0], 64);
	ASSERT_EQ(v.shape[1], 256);
	ASSERT_DBL_EQ(((const float *)v.data)[7], 7);
	ASSERT_DBL_EQ(((const float *)v.data)[n / sizeof(float) - 1], 4);
	ASSERT_OK(gfn_store_client_get(c, o, &v2));
	ASSERT_OK(gfn_store_client_release(c, o));
	ASSERT_OK(gfn_store_client_release(c, o));
	ASSERT_OK(gfn_store_client_release(c, o)); /* the create's */
	ASSERT_FAILS(gfn_store_client_release(c, o), GFN_ESTATE);
	/* Sealed and unreferenced: cached, may be got again. */
	ASSERT_OK(gfn_store_client_get(c, o, &v));
	ASSERT_OK(gfn_store_client_release(c, o));
	ASSERT_OK(gfn_store_client_delete(c, o));
	ASSERT_FAILS(gfn_store_client_get(c, o, &v), GFN_ESTALE);

	/* Kept: o2 sealed (for the parent), o3 unsealed (reclaimed). */
	o2 = client_make(c, 100000, 42);
	ASSERT_OK(gfn_store_client_create(c, GFN_U8, 1, shape, &o3));
	shm_id_arg(o2, buf);
	shm_id_arg(o3, buf + 40);
	shm_send(out, buf, sizeof buf);
	gfn_store_client_detach(c);
	return 0;
}

static void shm_client_lifecycle(void)
{
	struct shm_env env;
	gfn_store_stats s0, s1;
	gfn_object o2, o3;
	gfn_object_view v;
	char buf[2 * 40], a[16];
	int fds[2];
	unsigned char *want = malloc(100000);
	void *p;
	size_t sz;
	pid_t pid;

	ASSERT_NOT_NULL(want);
	shm_env_start(&env, NULL);
	s0 = shm_stats(&env);
	shm_pipe(fds);
	pid = shm_spawn("lifecycle", env.sock, shm_fd_arg(fds[1], a), NULL);
	close(fds[1]);
	shm_recv(fds[0], buf, sizeof buf);
	ASSERT_EQ(shm_wait(pid, 30), 0);
	shm_wait_clients(&env, 0);
	o2 = shm_id_parse(buf);
	o3 = shm_id_parse(buf + 40);
	/* The engine (tenant 0) reads what the client wrote. */
	ASSERT_OK(gfn_object_get(env.e, o2, &v));
	shm_fill(want, 100000, 42);
	ASSERT_EQ(v.size, 100000);
	ASSERT(memcmp(v.data, want, 100000) == 0);
	ASSERT_OK(gfn_object_release(env.e, o2));
	/* Its reference went with the client; the sealed object stays. */
	ASSERT_FAILS(gfn_object_release(env.e, o2), GFN_ESTATE);
	/* The unsealed reservation went with the client. */
	ASSERT_FAILS_ID(gfn_object_map(env.e, o3, &p, &sz));
	s1 = shm_stats(&env);
	ASSERT_EQ(s1.objects, s0.objects + 1);
	ASSERT_EQ(s1.bytes, s0.bytes + 100000);
	shm_check(&env);
	ASSERT_OK(gfn_object_delete(env.e, o2));
	close(fds[0]);
	free(want);
	shm_env_stop(&env);
}

/* ------------------------------------------------------- zero-copy invoke */

#define ZN (1 << 16) /* f32 elements per input */

/* argv: socket, write end to the parent, read end from it. */
static int child_producer(int argc, char **argv)
{
	gfn_store_client *c = attach(argv[0]);
	int out = atoi(argv[1]), in = atoi(argv[2]);
	int64_t shape[1] = {ZN};
	gfn_object a, b, r;
	gfn_object_view v;
	float *pa, *pb;
	const float *pr;
	char buf[2 * 40], go;
	void *p;
	size_t sz;

	ASSERT_EQ(argc, 3);
	ASSERT_OK(gfn_store_client_create(c, GFN_F32, 1, shape, &a));
	ASSERT_OK(gfn_store_client_create(c, GFN_F32, 1, shape, &b));
	ASSERT_OK(gfn_store_client_map(c, a, &p, &sz));
	pa = p;
	ASSERT_OK(gfn_store_client_map(c, b, &p, &sz));
	pb = p;
	for (int i = 0; i < ZN; i++) {
		pa[i] = (float)i;
		pb[i] = (float)(2 * i + 1);
	}
	shm_send(out, shm_id_arg(a, buf), 40);
	shm_send(out, shm_id_arg(b, buf), 40);
	/* The engine writes into a while it is ours and unsealed. */
	shm_recv(in, &go, 1);
	ASSERT_DBL_EQ(pa[ZN - 1], 12345);
	pa[ZN - 1] = (float)(ZN - 1);
	ASSERT_OK(gfn_store_client_seal(c, a));
	ASSERT_OK(gfn_store_client_seal(c, b));
	shm_send(out, "s", 1);
	/* The output: made by the engine for our tenant, read in place. */
	shm_recv(in, buf, 40);
	r = shm_id_parse(buf);
	ASSERT_OK(gfn_store_client_get(c, r, &v));
	ASSERT_EQ(v.size, ZN * sizeof(float));
	pr = v.data;
	for (int i = 0; i < ZN; i++)
		if (pr[i] != (float)(3 * i + 1))
			test_fail(__FILE__, __LINE__, "c[%d] = %g", i,
			          (double)pr[i]);
	ASSERT_OK(gfn_store_client_release(c, r));
	shm_send(out, "d", 1);
	gfn_store_client_detach(c);
	return 0;
}

static void shm_client_zero_copy_invoke(void)
{
	struct shm_env env;
	int up[2], down[2];
	char buf[40], a1[16], a2[16], ack;
	gfn_object in[2], r;
	gfn_store_loc loc;
	gfn_invocation inv;
	gfn_function fn;
	gfn_future f;
	gfn_stats s0, s1;
	uint32_t tenant = (uint32_t)getuid() + 1;
	float *pa;
	void *p;
	size_t sz;
	pid_t pid;

	shm_env_start(&env, NULL);
	fn = test_register_vadd(env.e, "vadd");
	shm_pipe(up);
	shm_pipe(down);
	pid = shm_spawn("producer", env.sock, shm_fd_arg(up[1], a1),
	                shm_fd_arg(down[0], a2), NULL);
	close(up[1]);
	close(down[0]);
	shm_recv(up[0], buf, 40);
	in[0] = shm_id_parse(buf);
	shm_recv(up[0], buf, 40);
	in[1] = shm_id_parse(buf);
	/* Same memory on both sides: the client's bytes are here... */
	ASSERT_OK(gfn_object_map(env.e, in[0], &p, &sz));
	ASSERT_EQ(sz, ZN * sizeof(float));
	pa = p;
	ASSERT_DBL_EQ(pa[100], 100);
	ASSERT_DBL_EQ(pa[ZN - 1], ZN - 1);
	/* ...and ours are there. */
	pa[ZN - 1] = 12345;
	shm_send(down[1], "g", 1);
	shm_recv(up[0], &ack, 1);

	s0 = test_stats_idle(env.e);
	inv = test_inv(fn, 2, in, 0, NULL);
	ASSERT_OK(gfn_invoke(env.e, &inv, &f));
	r = test_take_output(env.e, f);
	ASSERT_OK(gfn_future_release(env.e, f));
	s1 = test_stats_idle(env.e);
	/* The kernel read the client's memory where it lies. */
	ASSERT_U64_EQ(s1.input_copies, s0.input_copies);
	ASSERT_U64_EQ(s1.input_copies, 0);
	/* The output belongs to the inputs' tenant, and only to it. */
	ASSERT_OK(gfn_store_get_as(env.st, tenant, r, &loc));
	ASSERT_EQ(loc.tenant, tenant);
	ASSERT_OK(gfn_store_release_as(env.st, tenant, r));
	ASSERT_FAILS(gfn_store_get_as(env.st, tenant + 1, r, &loc), GFN_EACCES);
	shm_send(down[1], shm_id_arg(r, buf), 40);
	shm_recv(up[0], &ack, 1);
	ASSERT_EQ(shm_wait(pid, 30), 0);
	shm_wait_clients(&env, 0);
	ASSERT_OK(gfn_object_release(env.e, r));
	shm_check(&env);
	close(up[0]);
	close(down[1]);
	shm_env_stop(&env);
}

/* ------------------------------------------------------ reclaim on exit */

/* argv: socket, to parent, from parent, the parent's object. */
static int child_hoarder(int argc, char **argv)
{
	gfn_store_client *c = attach(argv[0]);
	int out = atoi(argv[1]), in = atoi(argv[2]);
	gfn_object p = shm_id_parse(argv[3]), u, s;
	int64_t shape[1] = {4096};
	gfn_object_view v;
	char buf[2 * 40], go;

	ASSERT_EQ(argc, 4);
	for (int i = 0; i < 3; i++)
		ASSERT_OK(gfn_store_client_get(c, p, &v));
	ASSERT_OK(gfn_store_client_create(c, GFN_U8, 1, shape, &u));
	ASSERT_OK(gfn_store_client_write(c, u, 0, "abc", 3));
	s = client_make(c, 4096, 7);
	shm_id_arg(u, buf);
	shm_id_arg(s, buf + 40);
	shm_send(out, buf, sizeof buf);
	shm_recv(in, &go, 1);
	_exit(0); /* no detach, no release: the engine must clean up */
}

static void shm_client_reclaim_on_exit(void)
{
	struct shm_env env;
	uint32_t tenant = (uint32_t)getuid() + 1;
	int up[2], down[2];
	char buf[2 * 40], arg[40], a1[16], a2[16];
	int64_t shape[1] = {1000};
	gfn_object p, u, s;
	gfn_store_loc loc;
	gfn_store_stats s0;
	gfn_object_view v;
	void *ptr;
	size_t sz;
	pid_t pid;
	int fds0;

	shm_env_start(&env, NULL);
	ASSERT_OK(gfn_store_create_as(env.st, tenant, GFN_U8, 1, shape, &p,
	                              &loc));
	shm_fill(loc.data, 1000, 3);
	ASSERT_OK(gfn_object_seal(env.e, p));
	s0 = shm_stats(&env);
	fds0 = shm_open_fds();
	shm_pipe(up);
	shm_pipe(down);
	pid = shm_spawn("hoarder", env.sock, shm_fd_arg(up[1], a1),
	                shm_fd_arg(down[0], a2), shm_id_arg(p, arg), NULL);
	close(up[1]);
	close(down[0]);
	shm_recv(up[0], buf, sizeof buf);
	u = shm_id_parse(buf);
	s = shm_id_parse(buf + 40);
	ASSERT_EQ(shm_stats(&env).objects, s0.objects + 2);
	shm_send(down[1], "x", 1);
	ASSERT_EQ(shm_wait(pid, 30), 0);
	shm_wait_clients(&env, 0);
	/* The unsealed reservation is gone... */
	ASSERT_FAILS_ID(gfn_object_map(env.e, u, &ptr, &sz));
	/* ...the sealed one stays, with no reference left... */
	ASSERT_OK(gfn_object_get(env.e, s, &v));
	ASSERT_OK(gfn_object_release(env.e, s));
	ASSERT_FAILS(gfn_object_release(env.e, s), GFN_ESTATE);
	/* ...and the three gets of p were given back: only ours is left. */
	ASSERT_OK(gfn_object_release(env.e, p));
	ASSERT_FAILS(gfn_object_release(env.e, p), GFN_ESTATE);
	ASSERT_EQ(shm_stats(&env).objects, s0.objects + 1);
	ASSERT_EQ(shm_open_fds(), fds0 + 2); /* our two pipe ends */
	shm_check(&env);
	close(up[0]);
	close(down[1]);
	shm_env_stop(&env);
}

/* ------------------------------------------------- SIGKILL in a write */

#define BIG ((size_t)8 << 20) /* the object being written when killed */

/* argv: socket, to parent. Writes BIG forever after telling the parent. */
static int child_writer(int argc, char **argv)
{
	gfn_store_client *c = attach(argv[0]);
	int out = atoi(argv[1]);
	int64_t shape[1] = {(int64_t)BIG};
	gfn_object n2, w;
	char buf[2 * 40];
	void *p;
	size_t sz;

	ASSERT_EQ(argc, 2);
	n2 = client_make(c, 5000, 22);
	ASSERT_OK(gfn_store_client_create(c, GFN_U8, 1, shape, &w));
	ASSERT_OK(gfn_store_client_map(c, w, &p, &sz));
	shm_id_arg(n2, buf);
	shm_id_arg(w, buf + 40);
	for (uint64_t pass = 0;; pass++) {
		for (size_t off = 0; off < BIG; off += 4096)
			shm_fill((char *)p + off, 4096, pass * BIG + off);
		if (pass == 0)
			shm_send(out, buf, sizeof buf);
	}
}

static uint64_t hash_of(gfn_engine *e, gfn_object o)
{
	gfn_object_view v;
	uint64_t h;

	ASSERT_OK(gfn_object_get(e, o, &v));
	h = shm_hash(v.data, v.size);
	ASSERT_OK(gfn_object_release(e, o));
	return h;
}

static void shm_client_sigkill_mid_write(void)
{
	struct shm_env env;
	gfn_config cfg;
	uint32_t tenant = (uint32_t)getuid() + 1;
	int64_t shape[1] = {3000};
	char buf[2 * 40], a1[16];
	gfn_object n1, n2, w, o[2];
	gfn_store_client *c;
	gfn_store_loc loc;
	gfn_store_stats s0, s1;
	uint64_t h1, h2;
	int up[2], fds0;
	void *p;
	size_t sz;
	pid_t pid;

	gfn_config_init(&cfg);
	cfg.backends = GFN_BACKEND_CPU;
	cfg.store_capacity = 3 * BIG;
	shm_env_start(&env, &cfg);
	/* A neighbour of the client's tenant, held by the engine. */
	ASSERT_OK(gfn_store_create_as(env.st, tenant, GFN_U8, 1, shape, &n1,
	                              &loc));
	shm_fill(loc.data, 3000, 11);
	ASSERT_OK(gfn_object_seal(env.e, n1));
	h1 = hash_of(env.e, n1);
	s0 = shm_stats(&env);
	fds0 = shm_open_fds();
	shm_pipe(up);
	pid = shm_spawn("writer", env.sock, shm_fd_arg(up[1], a1), NULL);
	close(up[1]);
	shm_recv(up[0], buf, sizeof buf);
	n2 = shm_id_parse(buf);
	w = shm_id_parse(buf + 40);
	h2 = hash_of(env.e, n2);
	test_sleep_us(3000); /* well inside the next pass */
	ASSERT_EQ(kill(pid, SIGKILL), 0);
	ASSERT_EQ(shm_wait(pid, 30), 128 + SIGKILL);
	shm_wait_clients(&env, 0);

	/* The half-written object is gone; nothing else changed. */
	ASSERT_FAILS_ID(gfn_object_map(env.e, w, &p, &sz));
	ASSERT_U64_EQ(hash_of(env.e, n1), h1);
	ASSERT_U64_EQ(hash_of(env.e, n2), h2);
	s1 = shm_stats(&env);
	ASSERT_EQ(s1.objects, s0.objects + 1); /* n2, now cached */
	ASSERT_EQ(s1.bytes, s0.bytes + 5000);
	ASSERT_EQ(s1.segments, s0.segments);
	ASSERT_EQ(shm_open_fds(), fds0 + 1);
	shm_check(&env);
	/* Its space is back: two objects as big fit beside the others. */
	c = attach(env.sock);
	shape[0] = (int64_t)BIG;
	for (int i = 0; i < 2; i++) {
		ASSERT_OK(gfn_store_client_create(c, GFN_U8, 1, shape, &o[i]));
		ASSERT_OK(gfn_store_client_seal(c, o[i]));
	}
	ASSERT_U64_EQ(hash_of(env.e, n1), h1);
	gfn_store_client_detach(c);
	shm_wait_clients(&env, 0);
	ASSERT_OK(gfn_object_release(env.e, n1));
	shm_check(&env);
	close(up[0]);
	shm_env_stop(&env);
}

/* ------------------------------------------- retired segments let go */

/* Segments of tenant t this process maps now. */
static int mapped_segments(uint32_t t)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512], pat[48];
	int n = 0;

	ASSERT_NOT_NULL(f);
	snprintf(pat, sizeof(pat), "/memfd:gfn-store-t%u-", t);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, pat) != NULL;
	fclose(f);
	return n;
}

/* argv: socket, to parent, from parent. */
static int child_mapper(int argc, char **argv)
{
	gfn_store_client *c = attach(argv[0]);
	int out = atoi(argv[1]), in = atoi(argv[2]);
	uint32_t t = gfn_store_client_tenant(c);
	gfn_object o;
	char go, n;

	ASSERT_EQ(argc, 3);
	for (int i = 0; i < 4; i++) {
		o = client_make(c, 480 << 10, (uint64_t)i);
		ASSERT_OK(gfn_store_client_release(c, o)); /* evictable */
	}
	ASSERT_EQ(mapped_segments(t), 4);
	shm_send(out, "r", 1);
	shm_recv(in, &go, 1);
	/* The next call learns that two of them are gone, and unmaps them. */
	o = client_make(c, 1000, 9);
	n = (char)mapped_segments(t);
	shm_send(out, &n, 1);
	gfn_store_client_detach(c);
	return 0;
}

/*
 * A bare store (no engine, so nothing registered: it may retire) whose
 * segments a client maps; another tenant's pressure retires two of them.
 */
static void shm_client_drops_retired_segments(void)
{
	gfn_store_config cfg = {.capacity = 2 << 20,
	                        .max_objects = 1024,
	                        .segment_size = 512 << 10};
	char dir[64] = "/tmp/gfn-shm-XXXXXX", sock[128], a1[16], a2[16], r;
	int64_t shape[1] = {480 << 10};
	int up[2], down[2];
	gfn_store *st;
	gfn_object o;
	pid_t pid;

	ASSERT_NOT_NULL(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/s", dir);
	cfg.socket_path = sock;
	ASSERT_OK(gfn_store_create(&cfg, &st));
	shm_pipe(up);
	shm_pipe(down);
	pid = shm_spawn("mapper", sock, shm_fd_arg(up[1], a1),
	                shm_fd_arg(down[0], a2), NULL);
	close(up[1]);
	close(down[0]);
	shm_recv(up[0], &r, 1);
	for (int i = 0; i < 4; i++) /* held: each needs its own room */
		ASSERT_OK(gfn_store_create_as(st, 77, GFN_U8, 1, shape, &o,
		                              NULL));
	{
		gfn_store_stats s;

		gfn_store_get_stats(st, &s);
		ASSERT_EQ(s.retired, 2);
	}
	shm_send(down[1], "g", 1);
	shm_recv(up[0], &r, 1);
	ASSERT_EQ(r, 2);
	ASSERT_EQ(shm_wait(pid, 30), 0);
	ASSERT_OK(gfn_store_check(st));
	gfn_store_destroy(st);
	close(up[0]);
	close(down[1]);
	ASSERT_EQ(rmdir(dir), 0);
}

static const struct shm_role roles[] = {
        {"lifecycle", child_lifecycle}, {"producer", child_producer},
        {"hoarder", child_hoarder},     {"writer", child_writer},
        {"mapper", child_mapper},       {NULL, NULL},
};

int main(int argc, char **argv)
{
	shm_child_dispatch(argc, argv, roles);
	printf("# test_shm_client\n");
	TEST_RUN(shm_client_lifecycle);
	TEST_RUN(shm_client_zero_copy_invoke);
	TEST_RUN(shm_client_reclaim_on_exit);
	TEST_RUN(shm_client_sigkill_mid_write);
	TEST_RUN(shm_client_drops_retired_segments);
	return 0;
}
