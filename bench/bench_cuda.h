/*
 * bench_cuda.h - what the two files of the `cuda` scenario share
 * (bench_cuda.c: the driver-level baselines, overhead, H2D, cold start;
 * bench_cuda_model.c: the digits model). Internal to gfn-bench.
 */
#ifndef GFN_BENCH_CUDA_H
#define GFN_BENCH_CUDA_H

#include "bench.h"

#include <gfn/gfn.h>

/* State of one `gfn-bench cuda` run. */
typedef struct bcuda {
	const bench_opts *opts; /* command line */
	FILE *h;                /* notes for people (bench_human) */
	bench_report *rep;      /* results go here */
	gfn_engine *e;          /* the warm engine: CUDA backend only */
	size_t dev;             /* engine index of the CUDA device used */
	uint64_t mask;          /* 1 << dev: every invocation goes there */
	int ordinal;            /* its CUDA device ordinal */
	int repeats;            /* timed repeats of each case */
	double seconds;         /* length of one timed repeat */
	uint64_t graphs;        /* digits: CUDA graphs recorded */
	uint64_t replays;       /* digits: replays in the timed phase */
} bcuda;

/* Per-repeat percentiles of one timed case. */
typedef struct bcuda_rep {
	double *p50; /* per repeat: median sample */
	double *p99; /* per repeat: 99th percentile sample */
	double *val; /* per repeat: a rate (throughput cases) */
} bcuda_rep;

/* Print an API failure with its status and detail to stderr. */
void bcuda_api_error(const char *what, gfn_status st);

/*
 * Allocate r's arrays for n repeats; 0, or -1 with a message. Freed by
 * bcuda_rep_free (which accepts a zeroed or half-made r).
 */
int bcuda_rep_alloc(bcuda_rep *r, int n);
void bcuda_rep_free(bcuda_rep *r);

/* Sort us[0..n-1] and store its median and p99 as repeat i of r. */
void bcuda_rep_store(bcuda_rep *r, int i, double *us, size_t n);

/*
 * A latency result: value and p50 the median over n repeats of the
 * repeats' medians, p99 the median of their p99s, lo/hi the extreme
 * medians. NULL when the report is full. Sorts r's arrays.
 */
bench_result *bcuda_add_latency(bcuda *b, const char *case_name,
                                const char *metric, bcuda_rep *r, int n);

/* bench_cuda_model.c: the digits MLP on the CUDA device; 0 or -1. */
int bcuda_model(bcuda *b);

#endif /* GFN_BENCH_CUDA_H */
