/*
 * gfnd_metrics.c - Prometheus text format over HTTP (libmicrohttpd) on a
 * loopback port: request and invocation counters, latency histograms per
 * function, queue depth and completions per device, store use.
 *
 * Latency is measured by gfnd from acceptance to completion callback, so
 * it includes queueing: what a client waits for. It is one histogram per
 * function and device (gfn_future_device says where an invocation ran;
 * device="none" for those that ran nowhere); sum by function for a
 * function's. Devices also have their own counters (completed, queued).
 */
#include "gfnd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Upper bounds of the latency buckets, seconds (then +Inf). */
static const double bounds[GFND_LAT_BUCKETS] = {1e-5, 1e-4, 1e-3, 1e-2,
                                                0.1,  1.0,  10.0};

uint64_t gfnd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void gfnd_metrics_record(gfnd *d, unsigned fn_index, size_t device,
                         uint64_t t0_ns, gfn_status s)
{
	gfnd_latency *m;
	uint64_t ns = gfnd_now_ns() - t0_ns;
	double sec = (double)ns / 1e9;
	int b = 0;

	if (fn_index >= GFND_MAX_FUNCTIONS)
		return;
	if (device > GFND_MAX_DEVICES)
		device = GFND_MAX_DEVICES;
	m = &d->fn_metrics[fn_index].lat[device];
	while (b < GFND_LAT_BUCKETS && sec > bounds[b])
		b++;
	atomic_fetch_add(&m->count, 1);
	atomic_fetch_add(&m->sum_ns, ns);
	atomic_fetch_add(&m->buckets[b], 1);
	if (s != GFN_OK)
		atomic_fetch_add(&d->fn_metrics[fn_index].errors, 1);
}

/* A growing text buffer; on allocation failure it stays truncated. */
typedef struct text {
	char *p;    /* malloc'ed */
	size_t n;   /* used */
	size_t cap; /* allocated */
} text;

__attribute__((format(printf, 2, 3))) static void put(text *t, const char *fmt,
                                                      ...)
{
	va_list ap;
	int need;

	for (;;) {
		va_start(ap, fmt);
		need = vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
		va_end(ap);
		if (need < 0)
			return;
		if ((size_t)need < t->cap - t->n) {
			t->n += (size_t)need;
			return;
		}
		char *np = realloc(t->p, t->cap * 2 + (size_t)need);
		if (!np)
			return;
		t->p = np;
		t->cap = t->cap * 2 + (size_t)need;
	}
}

static void engine_metrics(gfnd *d, text *t)
{
	gfn_stats s;

	if (gfn_engine_stats(d->e, &s) != GFN_OK)
		return;
	put(t,
	    "# TYPE gfn_invocations_submitted_total counter\n"
	    "gfn_invocations_submitted_total %llu\n",
	    (unsigned long long)s.submitted);
	put(t,
	    "# TYPE gfn_invocations_completed_total counter\n"
	    "gfn_invocations_completed_total %llu\n",
	    (unsigned long long)s.completed);
	put(t,
	    "# TYPE gfn_invocations_failed_total counter\n"
	    "gfn_invocations_failed_total %llu\n",
	    (unsigned long long)s.failed);
	put(t,
	    "# TYPE gfn_invocations_canceled_total counter\n"
	    "gfn_invocations_canceled_total %llu\n",
	    (unsigned long long)s.canceled);
	put(t,
	    "# TYPE gfn_invocations_rejected_busy_total counter\n"
	    "gfn_invocations_rejected_busy_total %llu\n",
	    (unsigned long long)s.rejected_busy);
	put(t, "# TYPE gfn_queue_depth gauge\ngfn_queue_depth %llu\n",
	    (unsigned long long)s.queued);
	put(t, "# TYPE gfn_running gauge\ngfn_running %llu\n",
	    (unsigned long long)s.running);
	put(t, "# TYPE gfn_store_bytes gauge\ngfn_store_bytes %llu\n",
	    (unsigned long long)s.store_bytes);
	put(t, "# TYPE gfn_store_objects gauge\ngfn_store_objects %llu\n",
	    (unsigned long long)s.store_objects);
	put(t,
	    "# TYPE gfn_store_evictions_total counter\n"
	    "gfn_store_evictions_total %llu\n",
	    (unsigned long long)s.store_evictions);
	put(t, "# TYPE gfn_pinnings_total counter\ngfn_pinnings_total %llu\n",
	    (unsigned long long)s.pinnings);
	put(t,
	    "# TYPE gfn_pinned_pool_bytes gauge\ngfn_pinned_pool_bytes %llu\n",
	    (unsigned long long)s.pinned_bytes);
	put(t,
	    "# TYPE gfn_host_allocs_total counter\n"
	    "gfn_host_allocs_total %llu\n",
	    (unsigned long long)s.host_allocs);
}

static void device_metrics(gfnd *d, text *t)
{
	gfn_device_info di;
	gfn_device_stats ds;
	size_t n = 0;

	gfn_device_count(d->e, &n);
	put(t, "# TYPE gfn_device_queue_depth gauge\n"
	       "# TYPE gfn_device_completed_total counter\n");
	for (size_t i = 0; i < n; i++) {
		if (gfn_device_get_info(d->e, i, &di) != GFN_OK ||
		    gfn_device_get_stats(d->e, i, &ds) != GFN_OK)
			continue;
		put(t,
		    "gfn_device_queue_depth{device=\"%zu\",name=\"%s\"} "
		    "%llu\n",
		    i, di.name, (unsigned long long)ds.queued);
		put(t,
		    "gfn_device_completed_total{device=\"%zu\",name=\"%s\"} "
		    "%llu\n",
		    i, di.name, (unsigned long long)ds.completed);
	}
}

/* The series of one function on one device; labels are
   function="...",device="...". */
static void lat_histogram(text *t, const char *labels, gfnd_latency *m)
{
	uint64_t cum = 0;
	char le[16];

	for (int b = 0; b <= GFND_LAT_BUCKETS; b++) {
		cum += atomic_load(&m->buckets[b]);
		if (b < GFND_LAT_BUCKETS)
			snprintf(le, sizeof le, "%g", bounds[b]);
		else
			snprintf(le, sizeof le, "+Inf");
		put(t,
		    "gfn_invocation_latency_seconds_bucket{%s,le=\"%s\"} "
		    "%llu\n",
		    labels, le, (unsigned long long)cum);
	}
	put(t, "gfn_invocation_latency_seconds_sum{%s} %.9f\n", labels,
	    (double)atomic_load(&m->sum_ns) / 1e9);
	put(t, "gfn_invocation_latency_seconds_count{%s} %llu\n", labels,
	    (unsigned long long)atomic_load(&m->count));
}

/* Every device the function ran on (others have no series). */
static void fn_histogram(text *t, const char *name, gfnd_fn_metrics *m)
{
	char labels[160];

	for (int dev = 0; dev <= GFND_MAX_DEVICES; dev++) {
		if (!atomic_load(&m->lat[dev].count))
			continue;
		if (dev < GFND_MAX_DEVICES)
			snprintf(labels, sizeof labels,
			         "function=\"%.63s\",device=\"%d\"", name, dev);
		else
			snprintf(labels, sizeof labels,
			         "function=\"%.63s\",device=\"none\"", name);
		lat_histogram(t, labels, &m->lat[dev]);
	}
	put(t, "gfn_function_errors_total{function=\"%s\"} %llu\n", name,
	    (unsigned long long)atomic_load(&m->errors));
}

static void function_metrics(gfnd *d, text *t)
{
	char names[GFND_MAX_FUNCTIONS][64];
	unsigned n;

	pthread_mutex_lock(&d->lock);
	n = d->n_fns;
	for (unsigned i = 0; i < n; i++)
		memcpy(names[i], d->fns[i].name, 64);
	pthread_mutex_unlock(&d->lock);
	put(t, "# TYPE gfn_invocation_latency_seconds histogram\n"
	       "# TYPE gfn_function_errors_total counter\n");
	for (unsigned i = 0; i < n; i++)
		fn_histogram(t, names[i], &d->fn_metrics[i]);
}

char *gfnd_metrics_text(gfnd *d, size_t *len)
{
	text t = {malloc(8192), 0, 8192};

	if (!t.p)
		return NULL;
	t.p[0] = '\0';
	put(&t,
	    "# TYPE gfnd_requests_total counter\ngfnd_requests_total "
	    "%llu\n",
	    (unsigned long long)atomic_load(&d->requests));
	put(&t,
	    "# TYPE gfnd_bad_requests_total counter\n"
	    "gfnd_bad_requests_total %llu\n",
	    (unsigned long long)atomic_load(&d->bad_requests));
	put(&t,
	    "# TYPE gfnd_connections_total counter\n"
	    "gfnd_connections_total %llu\n",
	    (unsigned long long)atomic_load(&d->connections));
	put(&t, "# TYPE gfnd_sessions gauge\ngfnd_sessions %zu\n",
	    gfnd_session_count(d));
	engine_metrics(d, &t);
	device_metrics(d, &t);
	function_metrics(d, &t);
	*len = t.n;
	return t.p;
}

#ifdef GFND_HAVE_MHD
#include <arpa/inet.h>
#include <microhttpd.h>

static enum MHD_Result serve(void *cls, struct MHD_Connection *conn,
                             const char *url, const char *method,
                             const char *version, const char *upload,
                             size_t *upload_size, void **con_cls)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	size_t len = 0;
	char *body;
	unsigned code = MHD_HTTP_OK;

	(void)version, (void)upload, (void)upload_size, (void)con_cls;
	if (strcmp(method, "GET") != 0 || strcmp(url, "/metrics") != 0) {
		body = strdup("not found: GET /metrics\n");
		len = body ? strlen(body) : 0;
		code = MHD_HTTP_NOT_FOUND;
	} else {
		body = gfnd_metrics_text(cls, &len);
	}
	if (!body)
		return MHD_NO;
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

int gfnd_metrics_start(gfnd *d)
{
	struct sockaddr_in a = {.sin_family = AF_INET};

	if (d->cfg.metrics_port == 0)
		return 0;
	a.sin_port = htons((uint16_t)d->cfg.metrics_port);
	/* Loopback only: the numbers say what runs on this node. */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d->mhd = MHD_start_daemon(
	        MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)d->cfg.metrics_port,
	        NULL, NULL, serve, d, MHD_OPTION_SOCK_ADDR, &a, MHD_OPTION_END);
	if (!d->mhd) {
		gfnd_log(GFND_LOG_ERROR,
		         "metrics: cannot listen on "
		         "127.0.0.1:%u",
		         d->cfg.metrics_port);
		return -1;
	}
	gfnd_log(GFND_LOG_INFO, "metrics on http://127.0.0.1:%u/metrics",
	         d->cfg.metrics_port);
	return 0;
}

void gfnd_metrics_stop(gfnd *d)
{
	if (d->mhd)
		MHD_stop_daemon(d->mhd);
	d->mhd = NULL;
}
#else
int gfnd_metrics_start(gfnd *d)
{
	if (d->cfg.metrics_port == 0)
		return 0;
	gfnd_log(GFND_LOG_ERROR, "metrics: gfnd was built without "
	                         "libmicrohttpd");
	return -1;
}

void gfnd_metrics_stop(gfnd *d)
{
	(void)d;
}
#endif
