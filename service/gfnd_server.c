/*
 * gfnd_server.c - the NNG side: a REP socket, one context per worker
 * thread (so many requests of one connection are served at once), pipe
 * events for sessions and the peer check, and the drain on SIGTERM.
 */
#include "gfnd.h"

#include <nng/protocol/reqrep0/rep.h>
#include <nng/transport/ipc/ipc.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void *worker_main(void *arg)
{
	gfnd_worker *w = arg;
	nng_msg *msg, *rep;

	for (;;) {
		nng_ctx_recv(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		int rv = nng_aio_result(w->aio);
		if (rv != 0 &&
		    (rv == NNG_ECLOSED || atomic_load(&w->d->stopping)))
			break;
		if (rv != 0)
			continue;
		msg = nng_aio_get_msg(w->aio);
		rep = gfnd_handle(w->d, msg);
		if (!rep)
			continue; /* out of memory: the client times out */
		nng_aio_set_msg(w->aio, rep);
		nng_ctx_send(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		if (nng_aio_result(w->aio) != 0)
			nng_msg_free(rep); /* the client went away */
	}
	return NULL;
}

/*
 * Only the daemon's own user (or root) may talk to it over ipc://: the
 * kernel's word for the peer's uid, not anything the peer says. Pipes
 * without a peer uid (tcp://) are checked by token instead.
 */
static void pipe_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	gfnd *d = arg;
	uint64_t uid;

	bool ipc;

	(void)ev;
	ipc = nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid) == 0;
	if (ipc && uid != (uint64_t)geteuid() && uid != 0) {
		gfnd_log(GFND_LOG_WARN, "refused a connection from uid %llu",
		         (unsigned long long)uid);
		atomic_fetch_add(&d->refused_peers, 1);
		nng_pipe_close(p);
		return;
	}
	atomic_fetch_add(&d->connections, 1);
	/* Invocations run as the peer's store tenant (uid + 1), so their
	   outputs are its own and it maps them in place. A tcp peer has no
	   uid the kernel vouches for: it runs as the daemon's user's tenant
	   (it cannot map the store from afar; get copies). */
	if (!ipc)
		uid = (uint64_t)geteuid();
	gfnd_session_open(d, nng_pipe_id(p), ipc, (uint32_t)uid + 1);
	gfnd_log(GFND_LOG_DEBUG, "connection %u opened", nng_pipe_id(p));
}

static void pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)ev;
	gfnd_log(GFND_LOG_DEBUG, "connection %u closed", nng_pipe_id(p));
	gfnd_session_close(arg, nng_pipe_id(p));
}

/* The socket's directory: created 0700, and refused if others can enter. */
int gfnd_socket_dir(const char *url)
{
	char dir[GFND_PATH_MAX], *slash;
	struct stat st;

	snprintf(dir, sizeof dir, "%s", url + strlen("ipc://"));
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		gfnd_log(GFND_LOG_ERROR, "mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) != 0 || st.st_uid != geteuid() ||
	    (st.st_mode & 077)) {
		gfnd_log(GFND_LOG_ERROR,
		         "%s must be a directory of this user with mode 0700",
		         dir);
		return -1;
	}
	return 0;
}

static int start_workers(gfnd *d)
{
	d->workers = calloc(d->cfg.workers, sizeof *d->workers);
	if (!d->workers)
		return NNG_ENOMEM;
	for (unsigned i = 0; i < d->cfg.workers; i++) {
		gfnd_worker *w = &d->workers[i];
		int rv;

		w->d = d;
		if ((rv = nng_ctx_open(&w->ctx, d->sock)) != 0)
			return rv;
		if ((rv = nng_aio_alloc(&w->aio, NULL, NULL)) != 0) {
			nng_ctx_close(w->ctx);
			return rv;
		}
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			nng_aio_free(w->aio);
			nng_ctx_close(w->ctx);
			return NNG_ENOMEM;
		}
		d->n_workers++;
	}
	return 0;
}

static int listen_on(gfnd *d, const char *url)
{
	nng_listener l;
	int rv = nng_listener_create(&l, d->sock, url);

	if (rv == 0 && strncmp(url, "ipc://", 6) == 0)
		/* The directory guards it too; this is belt and braces. */
		nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0600);
	if (rv == 0)
		rv = nng_listener_start(l, 0);
	if (rv != 0)
		gfnd_log(GFND_LOG_ERROR, "listen on %s: %s", url,
		         nng_strerror(rv));
	else
		gfnd_log(GFND_LOG_INFO, "listening on %s", url);
	return rv;
}

int gfnd_server_start(gfnd *d)
{
	int rv;

	if ((rv = nng_rep0_open(&d->sock)) != 0)
		return rv;
	nng_socket_set_size(d->sock, NNG_OPT_RECVMAXSZ, d->cfg.max_message);
	/* ADD_PRE: the session exists before the pipe's first message can
	   reach a worker, and a refused pipe never reaches the socket. */
	nng_pipe_notify(d->sock, NNG_PIPE_EV_ADD_PRE, pipe_added, d);
	nng_pipe_notify(d->sock, NNG_PIPE_EV_REM_POST, pipe_removed, d);
	if ((rv = start_workers(d)) != 0)
		return rv;
	if ((rv = listen_on(d, d->cfg.listen)) != 0)
		return rv;
	return d->cfg.tcp_listen[0] ? listen_on(d, d->cfg.tcp_listen) : 0;
}

/*
 * Workers stop before the socket closes: NNG 1.5 can panic when a
 * context's send races with nng_close. nng_aio_stop ends the operation
 * in progress and makes every later one fail at once, so each worker
 * sees `stopping` and leaves.
 */
void gfnd_server_stop(gfnd *d)
{
	atomic_store(&d->stopping, true);
	for (unsigned i = 0; i < d->n_workers; i++)
		nng_aio_stop(d->workers[i].aio);
	for (unsigned i = 0; i < d->n_workers; i++) {
		pthread_join(d->workers[i].thread, NULL);
		nng_ctx_close(d->workers[i].ctx);
		nng_aio_free(d->workers[i].aio);
	}
	nng_close(d->sock);
	free(d->workers);
	d->workers = NULL;
	d->n_workers = 0;
}

static void deadline_in(struct timespec *dl, unsigned ms)
{
	clock_gettime(CLOCK_REALTIME, dl);
	dl->tv_sec += ms / 1000;
	dl->tv_nsec += (long)(ms % 1000) * 1000000;
	if (dl->tv_nsec >= 1000000000) {
		dl->tv_sec++;
		dl->tv_nsec -= 1000000000;
	}
}

static bool passed(const struct timespec *dl)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec > dl->tv_sec ||
	       (now.tv_sec == dl->tv_sec && now.tv_nsec >= dl->tv_nsec);
}

/*
 * The drain: wait until every accepted invocation has ended, then until
 * clients have collected (released) their futures, all within
 * timeout_ms. What is still queued after that is canceled when the
 * engine is destroyed (gfnd runs it in GFN_SHUTDOWN_CANCEL mode), so
 * every invocation ends with an explicit status.
 */
void gfnd_drain(gfnd *d, unsigned timeout_ms)
{
	struct timespec dl;

	deadline_in(&dl, timeout_ms);
	pthread_mutex_lock(&d->lock);
	while (d->inflight > 0)
		if (pthread_cond_timedwait(&d->idle, &d->lock, &dl) ==
		    ETIMEDOUT)
			break;
	if (d->inflight > 0)
		gfnd_log(GFND_LOG_WARN,
		         "drain: %ld invocations still running after %u ms: "
		         "canceling them",
		         d->inflight, timeout_ms);
	pthread_mutex_unlock(&d->lock);
	/* Results are collected by clients' requests, which the workers
	   still serve: look every 10 ms, bounded by the same deadline. */
	while (gfnd_session_futures(d) > 0 && !passed(&dl)) {
		struct timespec ten = {0, 10000000};
		nanosleep(&ten, NULL);
	}
}
