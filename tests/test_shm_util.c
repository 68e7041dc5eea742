/*
 * test_shm_util.c - helpers of the shared-memory store suites (see
 * test_shm_util.h).
 */
#include "test_shm_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/store_proto.h"

gfn_store *shm_store_of(gfn_engine *e)
{
	return e->store;
}

void shm_env_start(struct shm_env *env, gfn_config *cfg)
{
	gfn_config d;

	memset(env, 0, sizeof(*env));
	snprintf(env->dir, sizeof(env->dir), "/tmp/gfn-shm-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(env->dir));
	/* Children that drop root must reach the socket. */
	ASSERT_EQ(chmod(env->dir, 0755), 0);
	snprintf(env->sock, sizeof(env->sock), "%s/store.sock", env->dir);
	if (!cfg) {
		gfn_config_init(&d);
		d.backends = GFN_BACKEND_CPU;
		cfg = &d;
	}
	cfg->store_socket = env->sock;
	env->e = test_engine_with(cfg);
	env->st = shm_store_of(env->e);
}

void shm_env_stop(struct shm_env *env)
{
	gfn_engine_destroy(env->e);
	env->e = NULL;
	unlink(env->sock); /* gone already when the engine removed it */
	ASSERT_EQ(rmdir(env->dir), 0);
}

gfn_store_stats shm_stats(struct shm_env *env)
{
	gfn_store_stats s;

	gfn_store_get_stats(env->st, &s);
	return s;
}

void shm_wait_clients(struct shm_env *env, uint64_t n)
{
	uint64_t t0 = test_now_ns();

	while (shm_stats(env).clients != n) {
		if (test_now_ns() - t0 > 30000000000ull)
			test_fail(__FILE__, __LINE__,
			          "%llu clients attached, waited for %llu",
			          (unsigned long long)shm_stats(env).clients,
			          (unsigned long long)n);
		test_sleep_us(1000);
	}
}

void shm_check(struct shm_env *env)
{
	ASSERT_OK(gfn_store_check(env->st));
}

/* ---- children ---------------------------------------------------------------- */

void shm_child_dispatch(int argc, char **argv, const struct shm_role *roles)
{
	if (argc < 3 || strcmp(argv[1], "--child") != 0)
		return;
	for (const struct shm_role *r = roles; r->name; r++)
		if (!strcmp(r->name, argv[2]))
			exit(r->fn(argc - 3, argv + 3));
	fprintf(stderr, "unknown child role %s\n", argv[2]);
	exit(2);
}

pid_t shm_spawn(const char *role, ...)
{
	char *argv[32];
	int n = 0;
	va_list ap;
	pid_t pid;

	argv[n++] = "/proc/self/exe";
	argv[n++] = "--child";
	argv[n++] = (char *)role;
	va_start(ap, role);
	while (n < 31 && (argv[n] = va_arg(ap, char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	fflush(NULL);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	return pid;
}

int shm_wait(pid_t pid, int timeout_s)
{
	uint64_t end = test_now_ns() + (uint64_t)timeout_s * 1000000000ull;
	int st = 0;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		ASSERT_GE(r, 0);
		if (r == pid)
			break;
		if (test_now_ns() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			test_fail(__FILE__, __LINE__,
			          "child %d still ran after %d s", (int)pid,
			          timeout_s);
		}
		test_sleep_us(2000);
	}
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

/* ---- pipes ------------------------------------------------------------------------ */

void shm_pipe(int fds[2])
{
	ASSERT_EQ(pipe(fds), 0);
}

const char *shm_fd_arg(int fd, char *buf)
{
	sprintf(buf, "%d", fd);
	return buf;
}

void shm_send(int fd, const void *p, size_t n)
{
	const char *b = p;

	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		ASSERT_GT(w, 0);
		b += w;
		n -= (size_t)w;
	}
}

void shm_recv(int fd, void *p, size_t n)
{
	char *b = p;

	while (n) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		ssize_t r;

		if (poll(&pf, 1, 30000) == 0)
			test_fail(__FILE__, __LINE__, "no message in 30 s");
		r = read(fd, b, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			test_fail(__FILE__, __LINE__,
			          "pipe closed with %zu bytes missing", n);
		b += r;
		n -= (size_t)r;
	}
}

const char *shm_id_arg(gfn_object id, char *buf)
{
	sprintf(buf, "%016" PRIx64 ":%016" PRIx64, id.hi, id.lo);
	return buf;
}

gfn_object shm_id_parse(const char *s)
{
	gfn_object id;

	ASSERT_EQ(sscanf(s, "%" SCNx64 ":%" SCNx64, &id.hi, &id.lo), 2);
	return id;
}

uint64_t shm_hash(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

void shm_fill(void *p, size_t n, uint64_t seed)
{
	unsigned char *b = p;
	uint64_t state = seed | 1, x = 0;

	for (size_t i = 0; i < n; i++) {
		if ((i & 7) == 0)
			x = test_rand(&state);
		b[i] = (unsigned char)(x >> (8 * (i & 7)));
	}
}

int shm_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	ASSERT_NOT_NULL(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

/* ---- the wire protocol by hand ------------------------------------------------------ */

int shm_raw_connect(const char *sock)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	ASSERT_GE(fd, 0);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock);
	ASSERT_EQ(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return fd;
}

int shm_raw_send(int fd, const void *p, size_t n)
{
	return send(fd, p, n, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

long shm_raw_recv(int fd, struct gfn_shm_rep *rep, int *got_fd)
{
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {rep, sizeof(*rep)};
	struct msghdr m = {.msg_iov = &iov,
	                   .msg_iovlen = 1,
	                   .msg_control = ctl,
	                   .msg_controllen = sizeof(ctl)};
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	struct cmsghdr *cm;
	ssize_t n;
	int got = -1;

	if (poll(&pf, 1, 10000) == 0)
		return -1;
	memset(rep, 0, sizeof(*rep));
	n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == ECONNRESET ? 0 : -1;
	cm = CMSG_FIRSTHDR(&m);
	if (cm && cm->cmsg_type == SCM_RIGHTS)
		memcpy(&got, CMSG_DATA(cm), sizeof(got));
	if (got_fd)
		*got_fd = got;
	else if (got >= 0)
		close(got);
	return (long)n;
}

int shm_raw_call(int fd, struct gfn_shm_req *req, struct gfn_shm_rep *rep,
                 int *got_fd)
{
	static uint32_t seq;
	long n;

	req->magic = GFN_SHM_PROTO_MAGIC;
	req->version = GFN_SHM_PROTO_VERSION;
	req->seq = ++seq;
	if (shm_raw_send(fd, req, sizeof(*req)) < 0)
		return 1;
	n = shm_raw_recv(fd, rep, got_fd);
	ASSERT(n != -1); /* an answer or a close, never silence */
	if (n == 0)
		return 1;
	ASSERT_EQ(n, (long)sizeof(*rep));
	ASSERT_EQ(rep->seq, req->seq);
	return rep->status;
}
