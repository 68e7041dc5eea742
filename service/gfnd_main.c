/*
 * gfnd_main.c - the daemon's life: settings, engine, server, signals.
 *
 * Signals are blocked in every thread gfnd starts and taken by the main
 * thread (sigtimedwait), so their work is ordinary code: SIGTERM/SIGINT
 * drain and exit 0, SIGHUP reloads the config file. A handler writing to
 * a pipe catches the ones the kernel gives to threads that libraries
 * started before main (OpenBLAS's), which gfnd cannot mask.
 */
#include "gfnd.h"

#include <gfn/gfn.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(stderr, "usage: gfnd [--config FILE] [--listen ipc:///path] "
	                "[--key value ...]\n"
	                "every setting of the config file is also a flag; see "
	                "docs/gfnd.md\n");
}

/* The engine's store socket defaults to the ipc socket's directory. */
static void default_store_socket(gfnd_config *c)
{
	const char *path = c->listen + strlen("ipc://");
	const char *slash = strrchr(path, '/');

	if (c->store_socket[0] || !slash)
		return;
	snprintf(c->store_socket, sizeof c->store_socket, "%.*s/store.sock",
	         (int)(slash - path), path);
}

static gfn_status engine_start(gfnd *d)
{
	gfn_config ec;
	gfn_status st;

	gfn_config_init(&ec);
	ec.backends = d->cfg.backends;
	ec.cpu_devices = d->cfg.cpu_devices;
	ec.store_capacity = d->cfg.store_capacity;
	ec.store_socket = d->cfg.store_socket[0] ? d->cfg.store_socket : NULL;
	/* After the drain's deadline, queued work ends as canceled. */
	ec.shutdown = GFN_SHUTDOWN_CANCEL;
	st = gfn_engine_create(&ec, &d->e);
	if (st != GFN_OK) {
		gfnd_log(GFND_LOG_ERROR, "engine: %s (%s)", gfn_error_detail(),
		         gfn_status_name(st));
		return st;
	}
	if (d->cfg.builtins && (st = gfnd_fns_add_builtins(d)) != GFN_OK)
		gfnd_log(GFND_LOG_ERROR, "built-ins: %s", gfn_error_detail());
	if (st == GFN_OK)
		st = gfnd_models_sync(d, &d->cfg);
	return st;
}

static void reload(gfnd *d)
{
	gfnd_config c;
	char err[256];

	if (!d->cfg.config_path[0]) {
		gfnd_log(GFND_LOG_INFO, "SIGHUP: no config file to reload");
		return;
	}
	gfnd_config_defaults(&c);
	if (gfnd_config_load(&c, d->cfg.config_path, err) != 0) {
		gfnd_log(GFND_LOG_ERROR, "SIGHUP: keeping old settings: %s",
		         err);
		return;
	}
	/* Only what can change under running clients is applied. */
	atomic_store(&gfnd_log_level, c.log_level);
	atomic_store(&d->wait_slice_ms, c.wait_slice_ms);
	/* Models new in the file are registered; one removed from it stays
	   until restart (running invocations read its weights). */
	gfnd_models_sync(d, &c);
	gfnd_log(GFND_LOG_INFO, "SIGHUP: reloaded %s", d->cfg.config_path);
}

static void announce_ready(gfnd *d)
{
	if (d->cfg.ready_fd < 0)
		return;
	if (write(d->cfg.ready_fd, "ready\n", 6) != 6)
		gfnd_log(GFND_LOG_WARN, "could not write to ready_fd");
	close(d->cfg.ready_fd);
}

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	unsigned char b = (unsigned char)sig;
	int saved = errno;

	/* Async-signal-safe; a full pipe drops it (one is enough). */
	if (write(sig_pipe[1], &b, 1) < 0)
		(void)0;
	errno = saved;
}

static int signals_init(void)
{
	struct sigaction sa;

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/*
 * The next signal: taken with sigtimedwait in this thread (every thread
 * gfnd starts has them blocked), or, when the kernel gave one to a
 * thread a library started before main, through the handler's pipe,
 * looked at every 100 ms.
 */
static int next_signal(const sigset_t *set)
{
	struct timespec tick = {0, 100000000};
	unsigned char b;

	for (;;) {
		int sig = sigtimedwait(set, NULL, &tick);

		if (sig > 0)
			return sig;
		if (read(sig_pipe[0], &b, 1) == 1)
			return b;
	}
}

/* Serve until SIGTERM or SIGINT. */
static void serve(gfnd *d, const sigset_t *set)
{
	int sig;

	while ((sig = next_signal(set)) == SIGHUP)
		reload(d);
	gfnd_log(GFND_LOG_INFO, "%s: draining (at most %u ms)",
	         sig == SIGINT ? "SIGINT" : "SIGTERM", d->cfg.drain_timeout_ms);
	atomic_store(&d->draining, true);
	gfnd_drain(d, d->cfg.drain_timeout_ms);
}

int main(int argc, char **argv)
{
	static gfnd d; /* large (function table): not on the stack */
	sigset_t set;
	char err[256];

	gfnd_config_defaults(&d.cfg);
	if (gfnd_config_args(&d.cfg, argc, argv, err) != 0 ||
	    gfnd_config_check(&d.cfg, err) != 0) {
		fprintf(stderr, "gfnd: %s\n", err);
		usage();
		return 2;
	}
	atomic_store(&gfnd_log_level, d.cfg.log_level);
	atomic_store(&d.wait_slice_ms, d.cfg.wait_slice_ms);
	default_store_socket(&d.cfg);
	pthread_mutex_init(&d.lock, NULL);
	pthread_cond_init(&d.idle, NULL);
	if (signals_init() != 0) {
		gfnd_log(GFND_LOG_ERROR, "signal pipe: %s", strerror(errno));
		return 1;
	}
	/* Blocked here, so in every thread started from now on (engine,
	   NNG, HTTP); the main thread takes them with sigtimedwait. A
	   handler alone is not enough: ThreadSanitizer defers handlers, and
	   one owed to a thread in a raw futex wait would never run. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (gfnd_socket_dir(d.cfg.listen) != 0 || engine_start(&d) != GFN_OK)
		return 1;
	if (gfnd_server_start(&d) != 0 || gfnd_metrics_start(&d) != 0) {
		gfnd_server_stop(&d);
		gfn_engine_destroy(d.e);
		return 1;
	}
	announce_ready(&d);
	serve(&d, &set);
	gfnd_metrics_stop(&d);
	gfnd_server_stop(&d);
	gfnd_sessions_close_all(&d);
	gfnd_models_drop(&d); /* drained: no invocation reads them now */
	gfn_engine_destroy(d.e);
	gfnd_log(GFND_LOG_INFO, "stopped");
	return 0;
}
