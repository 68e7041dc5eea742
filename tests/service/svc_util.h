/*
 * svc_util.h - helpers of the gfnd suites: a real gfnd started in a fresh
 * temporary directory on a real ipc:// socket, and assertions that print
 * the client's detail message.
 */
#ifndef GFN_TESTS_SVC_UTIL_H
#define GFN_TESTS_SVC_UTIL_H

#include "test.h"

#include <gfn/gfn_client.h>

#include <sys/types.h>

typedef struct svc_daemon {
	char dir[256]; /* temporary directory, removed by svc_cleanup */
	char url[320]; /* ipc:// URL of the daemon's socket */
	pid_t pid;     /* the running gfnd, 0 when none */
} svc_daemon;

/*
 * Start gfnd (CPU backend, two devices) with extra flags (NULL-ended, may
 * be NULL) and wait until it says it is listening (a pipe, no sleeping).
 * The first call makes the directory; later calls reuse it and its URL.
 */
void svc_start(svc_daemon *d, const char *const *extra);
/* Send sig and reap; returns the exit status (128+n for a signal). */
int svc_stop(svc_daemon *d, int sig);
/* Remove the temporary directory. */
void svc_cleanup(svc_daemon *d);

/* A connected client; fails the test when that does not work. */
gfn_client *svc_connect(const svc_daemon *d);

/* An f32 vector object holding v[0..n-1]. */
gfn_object svc_put_f32(gfn_client *c, const float *v, int64_t n);
/* Invoke fn, wait, take its single output; the invocation's status. */
gfn_status svc_run1(gfn_client *c, gfn_function fn, const gfn_object *in,
                    size_t n_in, const gfn_scalar *par, size_t n_par,
                    gfn_object *out);

/* The daemon's counters (engine's into *es when not NULL). */
gfn_client_daemon_stats svc_stats(gfn_client *c, gfn_stats *es);

#define SVC_STATUS(expr, want)                                                 \
	do {                                                                   \
		gfn_status sgot_ = (expr);                                     \
		if (sgot_ != (want))                                           \
			test_fail(__FILE__, __LINE__,                          \
			          "%s: got %s, want %s\n  detail: \"%s\"",     \
			          #expr, gfn_status_name(sgot_), #want,        \
			          gfn_client_error_detail());                  \
	} while (0)
#define SVC_OK(expr) SVC_STATUS(expr, GFN_OK)

#endif /* GFN_TESTS_SVC_UTIL_H */
