/*
 * svc_util.c - see svc_util.h.
 */
#include "svc_util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void child_exec(const svc_daemon *d, int wfd, const char *const *extra)
{
	const char *argv[64];
	char fd[16];
	int n = 0;

	snprintf(fd, sizeof fd, "%d", wfd);
	argv[n++] = GFND_PATH;
	argv[n++] = "--listen";
	argv[n++] = d->url;
	argv[n++] = "--ready_fd";
	argv[n++] = fd;
	argv[n++] = "--backends";
	argv[n++] = "cpu";
	argv[n++] = "--cpu_devices";
	argv[n++] = "2";
	argv[n++] = "--store_capacity";
	argv[n++] = "256M";
	argv[n++] = "--log_level";
	argv[n++] = getenv("GFND_LOG") ? getenv("GFND_LOG") : "warn";
	for (int i = 0; extra && extra[i] && n < 62; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	execv(GFND_PATH, (char *const *)argv);
	_exit(127);
}

void svc_start(svc_daemon *d, const char *const *extra)
{
	char buf[16];
	struct pollfd p;
	int fds[2];
	ssize_t got;

	if (!d->dir[0]) {
		snprintf(d->dir, sizeof d->dir, "/tmp/gfnd-test-XXXXXX");
		ASSERT_NOT_NULL(mkdtemp(d->dir));
		snprintf(d->url, sizeof d->url, "ipc://%s/run/gfnd.sock",
		         d->dir);
	}
	ASSERT_EQ(pipe(fds), 0);
	d->pid = fork();
	ASSERT(d->pid >= 0);
	if (d->pid == 0) {
		/* A failed test exits at once: the daemon must not outlive
		   it (ctest would wait on its inherited stdout). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(fds[0]);
		child_exec(d, fds[1], extra);
	}
	close(fds[1]);
	p = (struct pollfd){.fd = fds[0], .events = POLLIN};
	/* Bounded: a daemon that never gets ready fails the test. */
	ASSERT_EQ(poll(&p, 1, 30000), 1);
	got = read(fds[0], buf, sizeof buf);
	close(fds[0]);
	if (got != 6)
		test_fail(__FILE__, __LINE__, "gfnd did not start (%zd)", got);
}

int svc_stop(svc_daemon *d, int sig)
{
	int st;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, sig);
	while (waitpid(d->pid, &st, 0) < 0 && errno == EINTR)
		;
	d->pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

void svc_cleanup(svc_daemon *d)
{
	if (d->pid > 0)
		svc_stop(d, SIGKILL);
	if (d->dir[0])
		nftw(d->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	d->dir[0] = '\0';
}

gfn_client *svc_connect(const svc_daemon *d)
{
	gfn_client *c = NULL;

	SVC_OK(gfn_client_connect(d->url, &c));
	return c;
}

gfn_object svc_put_f32(gfn_client *c, const float *v, int64_t n)
{
	gfn_object o = GFN_OBJECT_NONE;

	SVC_OK(gfn_client_put(c, GFN_F32, 1, &n, v, (size_t)n * sizeof *v, &o));
	return o;
}

gfn_status svc_run1(gfn_client *c, gfn_function fn, const gfn_object *in,
                    size_t n_in, const gfn_scalar *par, size_t n_par,
                    gfn_object *out)
{
	gfn_invocation inv = {.fn = fn,
	                      .n_inputs = n_in,
	                      .inputs = in,
	                      .n_params = n_par,
	                      .params = par};
	gfn_future f;
	size_t n;
	gfn_status s = gfn_client_invoke(c, &inv, &f);

	if (s != GFN_OK)
		return s;
	s = gfn_client_future_wait(c, f, -1);
	if (s == GFN_OK)
		s = gfn_client_future_outputs(c, f, out, 1, &n);
	SVC_OK(gfn_client_future_release(c, f));
	return s;
}

gfn_client_daemon_stats svc_stats(gfn_client *c, gfn_stats *es)
{
	gfn_client_daemon_stats ds;
	gfn_stats tmp;

	SVC_OK(gfn_client_stats(c, es ? es : &tmp, &ds));
	return ds;
}
