/*
 * bench_peer.c - the baseline peer process (bench_peer.h): started with
 * two pipes, driven one line at a time.
 */
#include "bench_peer.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096 /* longest line a peer sends */

static void absent(bench_peer *p, const char *why)
{
	size_t n = strlen(why);

	/* Truncated on purpose: a reason is a line for people. */
	if (n >= sizeof p->why)
		n = sizeof p->why - 1;
	p->up = 0;
	memcpy(p->why, why, n);
	p->why[n] = '\0';
}

/* The number after "key": in a one-line JSON object, or NAN-like -1. */
static double json_number(const char *line, const char *key)
{
	char pat[64];
	const char *at;
	char *end;
	double v;

	snprintf(pat, sizeof pat, "\"%s\":", key);
	at = strstr(line, pat);
	if (!at)
		return -1.0;
	v = strtod(at + strlen(pat), &end);
	return end == at + strlen(pat) ? -1.0 : v;
}

/* The string after "key": (no escapes expected) into out. */
static void json_string(const char *line, const char *key, char *out,
                        size_t cap)
{
	char pat[64];
	const char *at, *end;

	snprintf(pat, sizeof pat, "\"%s\": \"", key);
	out[0] = '\0';
	at = strstr(line, pat);
	if (!at)
		return;
	at += strlen(pat);
	end = strchr(at, '"');
	if (end && (size_t)(end - at) < cap) {
		memcpy(out, at, (size_t)(end - at));
		out[end - at] = '\0';
	}
}

/* The child's side: its stdin and stdout are the pipes, then exec. */
static void child(int in_fd, int out_fd, char *const argv[])
{
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0)
		_exit(127);
	execvp(argv[0], argv);
	/* The parent sees end of file instead of a ready line. */
	_exit(127);
}

static int spawn(bench_peer *p, char *const argv[])
{
	int to[2], from[2];

	if (pipe(to) < 0)
		return -1;
	if (pipe(from) < 0) {
		close(to[0]);
		close(to[1]);
		return -1;
	}
	p->pid = fork();
	if (p->pid == 0) {
		close(to[1]);
		close(from[0]);
		child(to[0], from[1], argv);
	}
	close(to[0]);
	close(from[1]);
	if (p->pid < 0) {
		p->pid = 0;
		close(to[1]);
		close(from[0]);
		return -1;
	}
	p->to = fdopen(to[1], "w");
	p->from = fdopen(from[0], "r");
	return p->to && p->from ? 0 : -1;
}

int bench_peer_start(bench_peer *p, const char *python, const char *script,
                     const char *models, int threads)
{
	char nthreads[16], line[LINE_MAX_BYTES];
	char *argv[] = {
	        (char *)python, (char *)script, "--models", (char *)models,
	        "--threads",    nthreads,       NULL};

	memset(p, 0, sizeof *p);
	/* A peer that dies must not take gfn-bench with it on a write. */
	signal(SIGPIPE, SIG_IGN);
	snprintf(nthreads, sizeof nthreads, "%d", threads);
	if (spawn(p, argv) < 0) {
		absent(p, strerror(errno));
		return -1;
	}
	if (!fgets(line, sizeof line, p->from)) {
		absent(p, "the peer did not start (no python there?)");
		return -1;
	}
	if (!strstr(line, "\"ready\": true")) {
		line[strcspn(line, "\n")] = '\0';
		absent(p, line);
		return -1;
	}
	json_string(line, "onnxruntime", p->version, sizeof p->version);
	p->up = 1;
	return 0;
}

int bench_peer_run(bench_peer *p, const char *model, int batch, double seconds,
                   bench_peer_result *r)
{
	char line[LINE_MAX_BYTES];

	if (!p->up)
		return -1;
	if (fprintf(p->to, "run %s %d %.6f\n", model, batch, seconds) < 0 ||
	    fflush(p->to) != 0 || !fgets(line, sizeof line, p->from)) {
		absent(p, "the peer went away");
		return -1;
	}
	r->inv_per_s = json_number(line, "inv_per_s");
	r->samples_per_s = json_number(line, "samples_per_s");
	r->p50_us = json_number(line, "p50_us");
	r->p99_us = json_number(line, "p99_us");
	if (r->inv_per_s <= 0 || r->samples_per_s <= 0 || r->p50_us <= 0 ||
	    r->p99_us <= 0) {
		line[strcspn(line, "\n")] = '\0';
		absent(p, line);
		return -1;
	}
	return 0;
}

void bench_peer_stop(bench_peer *p)
{
	int st;

	if (p->to) {
		fprintf(p->to, "quit\n");
		fclose(p->to);
	}
	if (p->from)
		fclose(p->from);
	if (p->pid > 0)
		while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
			;
	p->to = p->from = NULL;
	p->pid = 0;
}
