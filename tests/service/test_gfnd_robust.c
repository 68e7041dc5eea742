/*
 * test_gfnd_robust.c - gfnd under abuse, all against a real daemon:
 * the malformed-message corpus over a raw NNG REQ socket, a client killed
 * in the middle of its work, the daemon killed and restarted under a
 * connected client, and the SIGTERM drain.
 *
 * usage: test_gfnd_robust CORPUS_DIR
 */
#include "svc_util.h"

#include <dirent.h>
#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static svc_daemon D;
static const char *corpus;

/* Send raw bytes on a plain REQ socket; the reply's "status". */
static int64_t raw_request(nng_socket s, const void *buf, size_t len)
{
	msgpack_unpacked und;
	nng_msg *m;
	size_t off = 0;
	int64_t st = 1;

	ASSERT_EQ(nng_msg_alloc(&m, 0), 0);
	ASSERT_EQ(nng_msg_append(m, buf, len), 0);
	ASSERT_EQ(nng_sendmsg(s, m, 0), 0);
	ASSERT_EQ(nng_recvmsg(s, &m, 0), 0);
	msgpack_unpacked_init(&und);
	ASSERT_EQ(msgpack_unpack_next(&und, nng_msg_body(m), nng_msg_len(m),
	                              &off),
	          MSGPACK_UNPACK_SUCCESS);
	ASSERT_EQ(und.data.type, MSGPACK_OBJECT_MAP);
	for (uint32_t i = 0; i < und.data.via.map.size; i++) {
		msgpack_object_kv *kv = &und.data.via.map.ptr[i];
		if (kv->key.via.str.size == 6 &&
		    !memcmp(kv->key.via.str.ptr, "status", 6))
			st = kv->val.type == MSGPACK_OBJECT_NEGATIVE_INTEGER
			             ? kv->val.via.i64
			             : (int64_t)kv->val.via.u64;
	}
	msgpack_unpacked_destroy(&und);
	nng_msg_free(m);
	return st;
}

static void *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;

	ASSERT_NOT_NULL(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	buf = malloc(*len + 1);
	ASSERT_EQ(fread(buf, 1, *len, f), *len);
	fclose(f);
	return buf;
}

/* Every corpus message gets an error reply; the daemon stays up. */
static void test_malformed_corpus(void)
{
	DIR *dir = opendir(corpus);
	struct dirent *de;
	nng_socket s;
	int n = 0;

	ASSERT_NOT_NULL(dir);
	ASSERT_EQ(nng_req0_open(&s), 0);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000);
	ASSERT_EQ(nng_dial(s, D.url, NULL, 0), 0);
	while ((de = readdir(dir)) != NULL) {
		char path[1024];
		size_t len;
		void *buf;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", corpus, de->d_name);
		buf = read_file(path, &len);
		int64_t st = raw_request(s, buf, len);
		if (st >= 0)
			test_fail(__FILE__, __LINE__,
			          "%s: status %lld, want "
			          "an error",
			          de->d_name, (long long)st);
		free(buf);
		n++;
	}
	closedir(dir);
	nng_close(s);
	ASSERT_GE(n, 30);
	gfn_client *c = svc_connect(&D);
	gfn_client_info info;
	SVC_OK(gfn_client_hello(c, &info));
	/* Most are malformed; the rest name ids that do not exist. */
	ASSERT_GE(svc_stats(c, NULL).bad_requests, (uint64_t)n / 2);
	gfn_client_close(c);
}

/* Poll (bounded): the daemon sees closed connections asynchronously. */
static gfn_client_daemon_stats settled(gfn_client *c, uint64_t sessions)
{
	gfn_client_daemon_stats ds = {0};

	for (int i = 0; i < 500; i++) {
		ds = svc_stats(c, NULL);
		if (ds.sessions == sessions && ds.held_objects == 0 &&
		    ds.held_futures == 0)
			break;
		test_sleep_us(10000);
	}
	return ds;
}

/*
 * The child (a fresh exec of this program: NNG's threads do not survive
 * fork): put, invoke, then die without cleaning up.
 */
static void doomed_client(const char *url)
{
	gfn_client *c = NULL;
	float x[256] = {0};
	gfn_function relu;
	gfn_object in;
	gfn_future f;

	if (gfn_client_connect(url, &c) != GFN_OK ||
	    gfn_client_function_find(c, "gfn.relu", &relu) != GFN_OK)
		_exit(3);
	int64_t n = 256;
	for (int i = 0; i < 20; i++)
		if (gfn_client_put(c, GFN_F32, 1, &n, x, sizeof x, &in) !=
		    GFN_OK)
			_exit(4);
	gfn_invocation inv = {.fn = relu, .n_inputs = 1, .inputs = &in};
	for (int i = 0; i < 10; i++)
		if (gfn_client_invoke(c, &inv, &f) != GFN_OK)
			_exit(5);
	raise(SIGKILL);
}

static void test_client_killed(void)
{
	gfn_client *c = svc_connect(&D);
	gfn_client_daemon_stats ds;
	int st;

	for (int round = 0; round < 3; round++) {
		pid_t pid = fork();

		ASSERT(pid >= 0);
		if (pid == 0) {
			execl("/proc/self/exe", "test_gfnd_robust", "--doomed",
			      D.url, (char *)NULL);
			_exit(127);
		}
		ASSERT_EQ(waitpid(pid, &st, 0), pid);
		ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		ds = settled(c, 1);
		ASSERT_U64_EQ(ds.sessions, 1);
		ASSERT_U64_EQ(ds.held_objects, 0);
		ASSERT_U64_EQ(ds.held_futures, 0);
	}
	gfn_client_info info;
	SVC_OK(gfn_client_hello(c, &info));
	gfn_client_close(c);
}

static void test_daemon_restart(void)
{
	gfn_client *c = svc_connect(&D);
	gfn_client_info info;
	float x[4] = {1, 2, 3, 4};
	gfn_object o = svc_put_f32(c, x, 4);
	gfn_object_view v;

	ASSERT_EQ(svc_stop(&D, SIGKILL), 128 + SIGKILL);
	/* A clear error, not a hang. */
	SVC_STATUS(gfn_client_hello(c, &info), GFN_ESHUTDOWN);
	ASSERT(strstr(gfn_client_error_detail(), "not reachable") ||
	       strstr(gfn_client_error_detail(), "lost"));
	svc_start(&D, NULL);
	/* The same handle reconnects by itself. */
	SVC_OK(gfn_client_hello(c, &info));
	gfn_status s = gfn_client_object_get(c, o, &v);
	ASSERT(s == GFN_ENOENT || s == GFN_ESTALE);
	o = svc_put_f32(c, x, 4);
	SVC_OK(gfn_client_object_get(c, o, &v));
	ASSERT_EQ(memcmp(v.data, x, sizeof x), 0);
	gfn_client_view_free(&v);
	gfn_client_close(c);
}

/*
 * SIGTERM: work accepted before it ends with an explicit status, work
 * after it is refused with GFN_ESHUTDOWN, and gfnd exits 0 once the
 * clients have collected their futures.
 */
static void test_sigterm_drain(void)
{
	enum { MAX = 2000 };
	static gfn_future futs[MAX];
	gfn_client *c = svc_connect(&D);
	float x[1024] = {0};
	gfn_function relu;
	gfn_object in = svc_put_f32(c, x, 1024), out[1];
	gfn_status s = GFN_OK;
	size_t n = 0, no;
	int ok = 0, canceled = 0;

	SVC_OK(gfn_client_function_find(c, "gfn.relu", &relu));
	gfn_invocation inv = {.fn = relu, .n_inputs = 1, .inputs = &in};
	for (int i = 0; i < 50; i++)
		SVC_OK(gfn_client_invoke(c, &inv, &futs[n++]));
	kill(D.pid, SIGTERM);
	while (n < MAX && (s = gfn_client_invoke(c, &inv, &futs[n])) == GFN_OK)
		n++;
	SVC_STATUS(s, GFN_ESHUTDOWN);
	for (size_t i = 0; i < n; i++) {
		s = gfn_client_future_wait(c, futs[i], -1);
		ASSERT(s == GFN_OK || s == GFN_ECANCELED);
		ok += s == GFN_OK;
		canceled += s == GFN_ECANCELED;
		if (s == GFN_OK)
			SVC_OK(gfn_client_future_outputs(c, futs[i], out, 1,
			                                 &no));
		SVC_OK(gfn_client_future_release(c, futs[i]));
	}
	ASSERT_EQ(ok + canceled, (int)n);
	ASSERT_EQ(svc_stop(&D, 0), 0); /* signal 0: just reap */
	gfn_client_close(c);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	if (strcmp(argv[1], "--doomed") == 0 && argc == 3)
		doomed_client(argv[2]);
	corpus = argv[1];
	svc_start(&D, NULL);
	TEST_RUN(test_malformed_corpus);
	TEST_RUN(test_client_killed);
	TEST_RUN(test_daemon_restart);
	TEST_RUN(test_sigterm_drain);
	svc_cleanup(&D);
	return 0;
}
