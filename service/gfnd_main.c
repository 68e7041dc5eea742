/*
 * gfnd_main.c - the daemon's life: settings, engine, server, signals.
 *
 * Signals are blocked in every thread and taken here with sigwait, so the
 * handlers are ordinary code: SIGTERM/SIGINT drain and exit 0, SIGHUP
 * reloads the config file.
 */
#include "gfnd.h"

#include <gfn/gfn.h>

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
	gfnd_log_level = c.log_level;
	d->cfg.wait_slice_ms = c.wait_slice_ms;
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

/* Serve until SIGTERM or SIGINT. */
static void serve(gfnd *d, const sigset_t *set)
{
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(d);
			continue;
		}
		if (sig == SIGTERM || sig == SIGINT)
			break;
	}
	gfnd_log(GFND_LOG_INFO, "%s: draining (at most %u ms)",
	         sig == SIGTERM ? "SIGTERM" : "SIGINT",
	         d->cfg.drain_timeout_ms);
	atomic_store(&d->draining, true);
	gfnd_drain(d, d->cfg.drain_timeout_ms);
}

int main(int argc, char **argv)
{
	static gfnd d; /* large (function table): not on the stack */
	sigset_t set;
	char err[256];

	gfnd_config_defaults(&d.cfg);
	if (gfnd_config_args(&d.cfg, argc, argv, err) != 0) {
		fprintf(stderr, "gfnd: %s\n", err);
		usage();
		return 2;
	}
	gfnd_log_level = d.cfg.log_level;
	default_store_socket(&d.cfg);
	pthread_mutex_init(&d.lock, NULL);
	pthread_cond_init(&d.idle, NULL);
	/* Block before any thread starts, so all inherit the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
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
	gfn_engine_destroy(d.e);
	gfnd_log(GFND_LOG_INFO, "stopped");
	return 0;
}
