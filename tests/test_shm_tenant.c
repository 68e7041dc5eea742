/*
 * test_shm_tenant - a client's tenant comes from its uid (SO_PEERCRED),
 * and knowing another tenant's ids gets it nothing: a child that drops
 * root (setuid 65534) can neither read, write, seal, release nor delete
 * another tenant's objects, nor map its segments. Needs root (exit 77
 * otherwise).
 */
#include "test_shm_util.h"

#include <unistd.h>

#include "engine/store_proto.h"

#define NOBODY 65534

static gfn_store_client *attach(const char *sock)
{
	gfn_store_client *c = NULL;

	ASSERT_OK(gfn_store_client_attach(sock, &c));
	return c;
}

/* argv: socket, to parent, from parent. Root: tenant 1. */
static int child_owner(int argc, char **argv)
{
	gfn_store_client *c = attach(argv[0]);
	int out = atoi(argv[1]), in = atoi(argv[2]);
	int64_t shape[1] = {50000};
	gfn_object x, y;
	char buf[2 * 40], go;
	void *p;
	size_t sz;

	ASSERT_EQ(argc, 3);
	ASSERT_EQ(gfn_store_client_tenant(c), 1);
	ASSERT_OK(gfn_store_client_create(c, GFN_U8, 1, shape, &x));
	ASSERT_OK(gfn_store_client_map(c, x, &p, &sz));
	shm_fill(p, sz, 99);
	ASSERT_OK(gfn_store_client_seal(c, x));
	ASSERT_OK(gfn_store_client_create(c, GFN_U8, 1, shape, &y));
	shm_id_arg(x, buf);
	shm_id_arg(y, buf + 40);
	shm_send(out, buf, sizeof buf);
	shm_recv(in, &go, 1);
	/* Still ours, unchanged, and our references are intact. */
	ASSERT_OK(gfn_store_client_write(c, y, 0, "ok", 2));
	ASSERT_OK(gfn_store_client_seal(c, y));
	ASSERT_OK(gfn_store_client_release(c, y));
	ASSERT_OK(gfn_store_client_release(c, x));
	ASSERT_FAILS(gfn_store_client_release(c, x), GFN_ESTATE);
	gfn_store_client_detach(c);
	return 0;
}

/* Every call on another tenant's objects is refused. */
static void intrude(gfn_store_client *c, gfn_object x, gfn_object y)
{
	gfn_object forged = {x.hi ^ 1, x.lo};
	gfn_object_view v;
	void *p = NULL;
	size_t sz;

	ASSERT_FAILS(gfn_store_client_get(c, x, &v), GFN_EACCES);
	ASSERT_FAILS(gfn_store_client_map(c, x, &p, &sz), GFN_EACCES);
	ASSERT_FAILS(gfn_store_client_map(c, y, &p, &sz), GFN_EACCES);
	ASSERT_NULL(p);
	ASSERT_FAILS(gfn_store_client_write(c, y, 0, "zz", 2), GFN_EACCES);
	ASSERT_FAILS(gfn_store_client_seal(c, y), GFN_EACCES);
	ASSERT_FAILS(gfn_store_client_release(c, x), GFN_EACCES);
	ASSERT_FAILS(gfn_store_client_release(c, y), GFN_EACCES);
	ASSERT_FAILS(gfn_store_client_delete(c, x), GFN_EACCES);
	ASSERT_FAILS(gfn_store_client_delete(c, y), GFN_EACCES);
	/* A forged id is unknown, whoever asks. */
	ASSERT_FAILS(gfn_store_client_get(c, forged, &v), GFN_ENOENT);
}

/* The raw protocol: no descriptor of another tenant's segment. */
static void no_segment(const char *sock, uint32_t seg)
{
	struct gfn_shm_req rq = {.op = GFN_SHM_OP_ATTACH};
	struct gfn_shm_rep rp;
	int fd = shm_raw_connect(sock), got = -1;

	ASSERT_EQ(shm_raw_call(fd, &rq, &rp, NULL), GFN_OK);
	ASSERT_EQ(rp.tenant, NOBODY + 1);
	memset(&rq, 0, sizeof(rq));
	rq.op = GFN_SHM_OP_SEGMENT;
	rq.seg = seg;
	ASSERT_EQ(shm_raw_call(fd, &rq, &rp, &got), GFN_EACCES);
	ASSERT_EQ(got, -1);
	/* Nor for any other segment id it might guess. */
	for (uint32_t s = 1; s < 64; s++) {
		rq.seg = s;
		int st = shm_raw_call(fd, &rq, &rp, &got);

		ASSERT(st == GFN_EACCES || st == GFN_ENOENT || st == GFN_OK);
		if (st == GFN_OK) { /* one of its own */
			ASSERT_GE(got, 0);
			close(got);
		}
	}
	close(fd);
}

/* argv: socket, x, y, x's segment id, to parent. Drops root first. */
static int child_intruder(int argc, char **argv)
{
	gfn_object x = shm_id_parse(argv[1]), y = shm_id_parse(argv[2]);
	int out = atoi(argv[4]);
	gfn_store_client *c;
	gfn_object_view v;
	int64_t shape[1] = {10};
	gfn_object own;

	ASSERT_EQ(argc, 5);
	ASSERT_EQ(setgid(NOBODY), 0);
	ASSERT_EQ(setuid(NOBODY), 0);
	ASSERT_EQ(getuid(), NOBODY);
	c = attach(argv[0]);
	ASSERT_EQ(gfn_store_client_tenant(c), NOBODY + 1);
	intrude(c, x, y);
	no_segment(argv[0], (uint32_t)atoi(argv[3]));
	/* Its own objects work as usual. */
	ASSERT_OK(gfn_store_client_create(c, GFN_U8, 1, shape, &own));
	ASSERT_OK(gfn_store_client_write(c, own, 0, "0123456789", 10));
	ASSERT_OK(gfn_store_client_seal(c, own));
	ASSERT_OK(gfn_store_client_get(c, own, &v));
	ASSERT(memcmp(v.data, "0123456789", 10) == 0);
	ASSERT_OK(gfn_store_client_release(c, own));
	shm_send(out, shm_id_arg(own, (char[40]){0}), 40);
	gfn_store_client_detach(c);
	return 0;
}

static void shm_tenant_other_uid_is_refused(void)
{
	struct shm_env env;
	int up[2], down[2], up2[2];
	char buf[2 * 40], a1[16], a2[16], a3[16], ax[40], ay[40], aseg[16];
	gfn_object x, y, own;
	gfn_store_loc lx, lown;
	uint64_t hx;
	pid_t owner, intruder;

	shm_env_start(&env, NULL);
	shm_pipe(up);
	shm_pipe(down);
	shm_pipe(up2);
	owner = shm_spawn("owner", env.sock, shm_fd_arg(up[1], a1),
	                  shm_fd_arg(down[0], a2), NULL);
	close(up[1]); /* a child that dies closes the pipe: no long wait */
	close(down[0]);
	shm_recv(up[0], buf, sizeof buf);
	x = shm_id_parse(buf);
	y = shm_id_parse(buf + 40);
	ASSERT_OK(gfn_store_get_as(env.st, GFN_TENANT_ENGINE, x, &lx));
	ASSERT_EQ(lx.tenant, 1);
	hx = shm_hash(lx.data, lx.size);
	snprintf(aseg, sizeof(aseg), "%u", lx.seg_id);
	intruder = shm_spawn("intruder", env.sock, shm_id_arg(x, ax),
	                     shm_id_arg(y, ay), aseg, shm_fd_arg(up2[1], a3),
	                     NULL);
	close(up2[1]);
	shm_recv(up2[0], buf, 40);
	ASSERT_EQ(shm_wait(intruder, 30), 0);
	own = shm_id_parse(buf);
	/* Its object is its tenant's, in a segment of its own. */
	ASSERT_OK(gfn_store_get_as(env.st, GFN_TENANT_ENGINE, own, &lown));
	ASSERT_EQ(lown.tenant, NOBODY + 1);
	ASSERT_NE(lown.seg_id, lx.seg_id);
	ASSERT_OK(gfn_store_release_as(env.st, NOBODY + 1, own));
	/* x is untouched and the owner still holds what it held. */
	ASSERT_U64_EQ(shm_hash(lx.data, lx.size), hx);
	shm_send(down[1], "g", 1);
	ASSERT_EQ(shm_wait(owner, 30), 0);
	ASSERT_OK(gfn_store_release_as(env.st, GFN_TENANT_ENGINE, x));
	shm_wait_clients(&env, 0);
	shm_check(&env);
	close(up[0]);
	close(down[1]);
	close(up2[0]);
	shm_env_stop(&env);
}

static const struct shm_role roles[] = {
        {"owner", child_owner},
        {"intruder", child_intruder},
        {NULL, NULL},
};

int main(int argc, char **argv)
{
	shm_child_dispatch(argc, argv, roles);
	printf("# test_shm_tenant\n");
	if (geteuid() != 0) {
		printf("# skipped: needs root to start a child as uid %d\n",
		       NOBODY);
		return 77;
	}
	TEST_RUN(shm_tenant_other_uid_is_refused);
	return 0;
}
