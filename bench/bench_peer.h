/*
 * bench_peer.h - a baseline measured by another process (a "peer"), in
 * turns with gfn in the same run: gfn-bench starts it once, sends one
 * line per measurement and reads one JSON line back (bench/ort_peer.py
 * documents the protocol). A peer that cannot start is "absent": the
 * scenario goes on with gfn's numbers alone.
 */
#ifndef GFN_BENCH_PEER_H
#define GFN_BENCH_PEER_H

#include <stdio.h>
#include <sys/types.h>

typedef struct bench_peer {
	pid_t pid;        /* the child; 0 when none was started */
	FILE *to;         /* its stdin */
	FILE *from;       /* its stdout */
	int up;           /* it said it is ready */
	char version[64]; /* what it measures with, e.g. "1.32.0" */
	char why[256];    /* why it is absent, for the report */
} bench_peer;

/* What one measurement of the peer gave. */
typedef struct bench_peer_result {
	double inv_per_s;     /* calls per second */
	double samples_per_s; /* rows per second */
	double p50_us;        /* median call time */
	double p99_us;        /* 99th percentile call time */
} bench_peer_result;

/*
 * Start `python script --models DIR --threads N` and read its ready line.
 * 0 when it is up; -1 when it is absent (p->why says why). Either way
 * bench_peer_stop must be called.
 */
int bench_peer_start(bench_peer *p, const char *python, const char *script,
                     const char *models, int threads);

/* One measurement: "run MODEL BATCH SECONDS". -1 (and the peer marked
   absent) when it failed or answered with an error. */
int bench_peer_run(bench_peer *p, const char *model, int batch, double seconds,
                   bench_peer_result *r);

/* Tell the peer to quit and reap it. */
void bench_peer_stop(bench_peer *p);

#endif /* GFN_BENCH_PEER_H */
