/*
 * test_gfnd.c - a real gfnd on a real ipc:// socket, through the C
 * client: hello, devices, functions, put/get, invoke/wait/outputs with
 * the built-ins, errors, stats, and many clients at once.
 */
#include "svc_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static svc_daemon D;

static void test_hello_lists(void)
{
	gfn_client *c = svc_connect(&D);
	gfn_client_info info;
	gfn_device_info dev[8];
	gfn_client_function_info fi[64];
	gfn_function fn;
	size_t n;

	SVC_OK(gfn_client_hello(c, &info));
	ASSERT_STR_EQ(info.server, "gfnd");
	ASSERT_EQ(info.protocol, 1u);
	ASSERT_STR_EQ(info.version, gfn_version_string());
	ASSERT(strstr(info.store_socket, "store.sock") != NULL);
	SVC_OK(gfn_client_devices(c, dev, 8, &n));
	ASSERT_EQ(n, (size_t)2);
	ASSERT_EQ(dev[0].backend, (unsigned)GFN_BACKEND_CPU);
	SVC_OK(gfn_client_functions(c, fi, 64, &n));
	ASSERT_GE(n, (size_t)7);
	SVC_OK(gfn_client_function_find(c, "gfn.saxpy", &fn));
	ASSERT_NE(fn.id, 0u);
	SVC_STATUS(gfn_client_function_find(c, "nope", &fn), GFN_ENOENT);
	/* Registering a built-in again is harmless: same id. */
	gfn_function again;
	SVC_OK(gfn_client_register_builtin(c, "gfn.saxpy", &again));
	ASSERT_EQ(again.id, fn.id);
	SVC_STATUS(gfn_client_register_builtin(c, "gfn.nope", &again),
	           GFN_ENOENT);
	SVC_STATUS(gfn_client_register_model(c, "m", "/nonexistent", &again),
	           GFN_ENOENT);
	ASSERT(strstr(gfn_client_error_detail(), "cannot be opened"));
	gfn_client_close(c);
}

static void test_put_get(void)
{
	gfn_client *c = svc_connect(&D);
	int64_t shape[2] = {2, 3};
	double v[6] = {1, 2, 3, 4, 5, 6};
	gfn_object_view view;
	gfn_object o;

	SVC_OK(gfn_client_put(c, GFN_F64, 2, shape, v, sizeof v, &o));
	SVC_OK(gfn_client_object_get(c, o, &view));
	ASSERT_EQ(view.dtype, GFN_F64);
	ASSERT_EQ(view.ndim, 2);
	ASSERT_EQ(view.shape[1], 3);
	ASSERT_EQ(view.size, sizeof v);
	ASSERT_EQ(memcmp(view.data, v, sizeof v), 0);
	gfn_client_view_free(&view);
	/* Wrong size, unknown dtype, bad shape: refused, with a reason. */
	SVC_STATUS(gfn_client_put(c, GFN_F64, 2, shape, v, 8, &o), GFN_ERANGE);
	SVC_STATUS(gfn_client_put(c, (gfn_dtype)99, 2, shape, v, 8, &o),
	           GFN_EINVAL);
	ASSERT(gfn_client_error_detail()[0] != '\0');
	SVC_OK(gfn_client_object_release(c, o));
	/* Only references this connection holds can be released. */
	SVC_STATUS(gfn_client_object_release(c, o), GFN_ESTATE);
	gfn_object forged = {o.hi ^ 1, o.lo};
	gfn_status s = gfn_client_object_get(c, forged, &view);
	ASSERT(s == GFN_ENOENT || s == GFN_ESTALE);
	gfn_client_close(c);
}

static void test_invoke(void)
{
	gfn_client *c = svc_connect(&D);
	enum { N = 1000 };
	static float x[N], y[N];
	gfn_function saxpy, sum;
	gfn_object in[2], out;
	gfn_object_view v;
	gfn_scalar a = {.f32 = 2.0f};

	for (int i = 0; i < N; i++)
		x[i] = (float)i, y[i] = 1.0f;
	SVC_OK(gfn_client_function_find(c, "gfn.saxpy", &saxpy));
	SVC_OK(gfn_client_function_find(c, "gfn.sum", &sum));
	in[0] = svc_put_f32(c, x, N);
	in[1] = svc_put_f32(c, y, N);
	SVC_OK(svc_run1(c, saxpy, in, 2, &a, 1, &out));
	SVC_OK(gfn_client_object_get(c, out, &v));
	ASSERT_EQ(v.size, sizeof x);
	for (int i = 0; i < N; i++)
		ASSERT_EQ(((const float *)v.data)[i], 2.0f * x[i] + 1.0f);
	gfn_client_view_free(&v);
	SVC_OK(gfn_client_object_release(c, out));
	SVC_OK(svc_run1(c, sum, &in[1], 1, NULL, 0, &out));
	SVC_OK(gfn_client_object_get(c, out, &v));
	ASSERT_EQ(((const float *)v.data)[0], (float)N);
	gfn_client_view_free(&v);
	/* Engine errors come back as the engine's status and detail. */
	SVC_STATUS(svc_run1(c, saxpy, in, 1, &a, 1, &out), GFN_EINVAL);
	gfn_function bogus = {12345};
	SVC_STATUS(svc_run1(c, bogus, in, 2, &a, 1, &out), GFN_ENOENT);
	/* A future of nobody: unknown. */
	gfn_future f = {42};
	SVC_STATUS(gfn_client_future_wait(c, f, 0), GFN_ENOENT);
	SVC_STATUS(gfn_client_future_release(c, f), GFN_ENOENT);
	gfn_client_close(c);
}

/* Outputs and a second take, cancel after the end, wait with timeout. */
static void test_future_calls(void)
{
	gfn_client *c = svc_connect(&D);
	float x[4] = {-1, 2, -3, 4};
	gfn_function relu;
	gfn_object in, outs[2];
	gfn_future f;
	size_t n;

	SVC_OK(gfn_client_function_find(c, "gfn.relu", &relu));
	in = svc_put_f32(c, x, 4);
	gfn_invocation inv = {.fn = relu, .n_inputs = 1, .inputs = &in};
	SVC_OK(gfn_client_invoke(c, &inv, &f));
	SVC_OK(gfn_client_future_wait(c, f, 10 * 1000000000LL));
	SVC_STATUS(gfn_client_future_cancel(c, f), GFN_ESTATE);
	SVC_OK(gfn_client_future_outputs(c, f, outs, 2, &n));
	ASSERT_EQ(n, (size_t)1);
	SVC_STATUS(gfn_client_future_outputs(c, f, outs, 2, &n), GFN_ESTATE);
	SVC_OK(gfn_client_future_release(c, f));
	/* A callback cannot cross processes. */
	inv.callback = (gfn_callback)1;
	SVC_STATUS(gfn_client_invoke(c, &inv, &f), GFN_EINVAL);
	gfn_client_close(c);
}

/* Many clients, and many threads on one client (contexts). */
typedef struct worker_arg {
	gfn_client *c; /* shared or own */
	int iters;     /* invocations to run */
	int seed;      /* distinguishes inputs */
	int bad;       /* wrong results seen */
} worker_arg;

static void *worker(void *p)
{
	worker_arg *w = p;
	gfn_function vadd;
	enum { N = 64 };
	float a[N], b[N];

	if (gfn_client_function_find(w->c, "gfn.vadd", &vadd) != GFN_OK) {
		fprintf(stderr, "worker %d: find: %s\n", w->seed,
		        gfn_client_error_detail());
		return w->bad = 1, NULL;
	}
	for (int it = 0; it < w->iters; it++) {
		gfn_object in[2], out;
		gfn_object_view v;

		for (int i = 0; i < N; i++)
			a[i] = (float)(w->seed + i), b[i] = (float)it;
		in[0] = svc_put_f32(w->c, a, N);
		in[1] = svc_put_f32(w->c, b, N);
		SVC_OK(svc_run1(w->c, vadd, in, 2, NULL, 0, &out));
		SVC_OK(gfn_client_object_get(w->c, out, &v));
		for (int i = 0; i < N; i++)
			if (((const float *)v.data)[i] != a[i] + b[i]) {
				fprintf(stderr,
				        "worker %d it %d [%d]: %g != %g\n",
				        w->seed, it, i,
				        ((const float *)v.data)[i],
				        a[i] + b[i]);
				w->bad = 1;
				break;
			}
		gfn_client_view_free(&v);
		SVC_OK(gfn_client_object_release(w->c, out));
		SVC_OK(gfn_client_object_release(w->c, in[0]));
		SVC_OK(gfn_client_object_release(w->c, in[1]));
	}
	return NULL;
}

static void run_workers(int n, int shared, int iters)
{
	pthread_t t[16];
	worker_arg w[16];
	gfn_client *one = shared ? svc_connect(&D) : NULL;

	for (int i = 0; i < n; i++) {
		w[i] = (worker_arg){one ? one : svc_connect(&D), iters, i * 7,
		                    0};
		ASSERT_EQ(pthread_create(&t[i], NULL, worker, &w[i]), 0);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		ASSERT_EQ(w[i].bad, 0);
		if (!one)
			gfn_client_close(w[i].c);
	}
	gfn_client_close(one);
}

static void test_concurrent_clients(void)
{
	int iters = (int)test_scaled(40, 5);

	run_workers(8, 0, iters);
	run_workers(8, 1, iters);
}

/* Everything given back: no objects, no futures, one session (ours). */
static void test_nothing_leaked(void)
{
	gfn_client *c = svc_connect(&D);
	gfn_client_daemon_stats ds;
	gfn_stats es;

	for (int i = 0; i < 500; i++) {
		ds = svc_stats(c, &es);
		/* Closed connections go asynchronously: look again. */
		if (ds.sessions == 1 && ds.held_objects == 0)
			break;
		test_sleep_us(10000);
	}
	ASSERT_U64_EQ(ds.sessions, 1);
	ASSERT_U64_EQ(ds.held_objects, 0);
	ASSERT_U64_EQ(ds.held_futures, 0);
	ASSERT_U64_EQ(es.queued + es.running, 0);
	ASSERT_EQ(ds.inflight, 0);
	ASSERT_GT(ds.requests, 100);
	gfn_client_close(c);
}

/*
 * Larger than inline_max: the client writes it into the shared store
 * itself (zero copy through the daemon), and invokes on it by id.
 */
static void test_large_put_through_store(void)
{
	static const char *const flags[] = {"--inline_max", "4096", NULL};
	enum { N = 64 * 1024 };
	static float x[N];
	svc_daemon d2 = {0};
	gfn_client *c;
	gfn_function relu;
	gfn_object in, out;
	gfn_object_view v;
	gfn_stats es;

	svc_start(&d2, flags);
	c = svc_connect(&d2);
	for (int i = 0; i < N; i++)
		x[i] = (float)(i % 7) - 3.0f;
	in = svc_put_f32(c, x, N);
	SVC_OK(gfn_client_function_find(c, "gfn.relu", &relu));
	SVC_OK(svc_run1(c, relu, &in, 1, NULL, 0, &out));
	SVC_OK(gfn_client_object_get(c, out, &v));
	ASSERT_EQ(v.size, sizeof x);
	for (int i = 0; i < N; i++)
		ASSERT_EQ(((const float *)v.data)[i], x[i] > 0 ? x[i] : 0.0f);
	gfn_client_view_free(&v);
	/* The input was never copied on the host by the engine either. */
	svc_stats(c, &es);
	ASSERT_U64_EQ(es.input_copies, 0);
	/* The daemon does not hold the store reference: the client's store
	   connection does, and gives it back. */
	SVC_OK(gfn_client_object_release(c, in));
	SVC_OK(gfn_client_object_release(c, out));
	gfn_client_close(c);
	ASSERT_EQ(svc_stop(&d2, SIGTERM), 0);
	svc_cleanup(&d2);
}

/* Does p lie in a shared memfd mapping (a store segment) of this process? */
static bool in_memfd_mapping(const void *p)
{
	char line[512];
	unsigned long lo, hi, at = (unsigned long)(uintptr_t)p;
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "r");

	ASSERT(f != NULL);
	while (!found && fgets(line, sizeof line, f))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && at >= lo &&
		    at < hi)
			found = strstr(line, "/memfd:") != NULL &&
			        strstr(line, " rw-s ") != NULL;
	fclose(f);
	return found;
}

/*
 * A large input put through the store, a large output read back by
 * reference: the invocation ran as the client's tenant, so the output is
 * its own and it maps it; neither the engine nor the daemon copied a byte.
 */
static void test_large_output_by_reference(void)
{
	static const char *const flags[] = {"--inline_max", "4096", NULL};
	enum { N = 64 * 1024 };
	static float x[N];
	float small[4] = {-1, 2, -3, 4};
	svc_daemon d2 = {0};
	gfn_client *c;
	gfn_function relu;
	gfn_object in, out, sin, sout;
	gfn_client_view v;
	gfn_stats es;

	svc_start(&d2, flags);
	c = svc_connect(&d2);
	for (int i = 0; i < N; i++)
		x[i] = (float)(i % 5) - 2.0f;
	in = svc_put_f32(c, x, N);
	SVC_OK(gfn_client_function_find(c, "gfn.relu", &relu));
	SVC_OK(svc_run1(c, relu, &in, 1, NULL, 0, &out));
	SVC_OK(gfn_client_object_read(c, out, &v));
	ASSERT_EQ(v.mapped, 1);
	ASSERT(in_memfd_mapping(v.view.data));
	ASSERT_EQ(v.view.size, sizeof x);
	ASSERT_EQ(v.view.ndim, 1);
	ASSERT_EQ(v.view.shape[0], (int64_t)N);
	for (int i = 0; i < N; i++)
		ASSERT_EQ(((const float *)v.view.data)[i],
		          x[i] > 0 ? x[i] : 0.0f);
	/* The store connection's reference keeps it after the daemon's. */
	SVC_OK(gfn_client_object_release(c, out));
	ASSERT_EQ(((const float *)v.view.data)[3], 1.0f);
	gfn_client_view_release(c, &v);
	svc_stats(c, &es);
	ASSERT_U64_EQ(es.input_copies, 0);
	/* A small inline input (the daemon's own object) is still usable,
	   and its small output comes inline. */
	sin = svc_put_f32(c, small, 4);
	SVC_OK(svc_run1(c, relu, &sin, 1, NULL, 0, &sout));
	SVC_OK(gfn_client_object_read(c, sout, &v));
	ASSERT_EQ(v.mapped, 0);
	ASSERT_EQ(((const float *)v.view.data)[1], 2.0f);
	gfn_client_view_release(c, &v);
	SVC_OK(gfn_client_object_release(c, sout));
	SVC_OK(gfn_client_object_release(c, sin));
	SVC_OK(gfn_client_object_release(c, in));
	gfn_client_close(c);
	ASSERT_EQ(svc_stop(&d2, SIGTERM), 0);
	svc_cleanup(&d2);
}

/* An OpenCL C function registered over the protocol (PoCL in CI). */
static void test_register_opencl(void)
{
	static const char *const flags[] = {"--backends", "opencl", NULL};
	static const char src[] =
	        "__kernel void twice(__global const float *x,\n"
	        "                    __global float *y, ulong n)\n"
	        "{\n"
	        "\tsize_t i = get_global_id(0);\n"
	        "\tif (i < n)\n"
	        "\t\ty[i] = 2.0f * x[i];\n"
	        "}\n";
	gfn_tensor_spec vec = {"v", GFN_F32, 1, {GFN_DIM_VAR(0)}};
	gfn_opencl_kernel k = {
	        .source = src,
	        .name = "twice",
	        .work = {.kind = GFN_WORK_ELEMENTS, .pass_sizes = 1}};
	gfn_function_desc desc = {.name = "test.twice",
	                          .n_inputs = 1,
	                          .inputs = &vec,
	                          .n_outputs = 1,
	                          .outputs = &vec,
	                          .opencl = &k};
	svc_daemon d = {0};
	gfn_client *c;
	gfn_function fn, again;
	float x[100];
	gfn_object in, out;
	gfn_object_view v;
	gfn_status s;

	setenv("POCL_DEVICES", "pthread", 1);
	/* As for the project's other PoCL suites: LeakSanitizer's tracer
	   can crash on PoCL's threads at exit (the daemon inherits this). */
	setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
	svc_start(&d, flags);
	c = svc_connect(&d);
	s = gfn_client_register_opencl(c, &desc, &fn);
	if (s == GFN_ENODEV) {
		printf("# no OpenCL device: opencl registration not run\n");
	} else {
		SVC_OK(s);
		for (int i = 0; i < 100; i++)
			x[i] = (float)i - 50.0f;
		in = svc_put_f32(c, x, 100);
		SVC_OK(svc_run1(c, fn, &in, 1, NULL, 0, &out));
		SVC_OK(gfn_client_object_get(c, out, &v));
		for (int i = 0; i < 100; i++)
			ASSERT_EQ(((const float *)v.data)[i], 2.0f * x[i]);
		gfn_client_view_free(&v);
		SVC_STATUS(gfn_client_register_opencl(c, &desc, &again),
		           GFN_EEXIST);
		/* A build error comes back with the compiler's log. */
		k.source = "__kernel void twice(__global float *x)"
		           "{ x[0] = no_such_name; }";
		desc.name = "test.broken";
		SVC_STATUS(gfn_client_register_opencl(c, &desc, &again),
		           GFN_EKERNEL);
		ASSERT(strstr(gfn_client_error_detail(), "no_such_name"));
	}
	gfn_client_close(c);
	ASSERT_EQ(svc_stop(&d, SIGTERM), 0);
	svc_cleanup(&d);
}

/* A loopback port free right now (the daemon binds it next). */
static unsigned free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	ASSERT_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* GET path from 127.0.0.1:port into buf (NUL-terminated). */
static void http_get(unsigned port, const char *path, char *buf, size_t cap)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char req[256];
	size_t n = 0;
	ssize_t got;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
	ASSERT_EQ(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while (n + 1 < cap && (got = read(fd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)got;
	buf[n] = '\0';
	close(fd);
}

/* vadd on engine device dev only; its output into *out. */
static gfn_status run_on(gfn_client *c, gfn_function fn, const gfn_object *in,
                         unsigned dev, gfn_object *out)
{
	gfn_invocation inv = {
	        .fn = fn, .n_inputs = 2, .inputs = in, .devices = 1u << dev};
	gfn_future f;
	size_t n;
	gfn_status s = gfn_client_invoke(c, &inv, &f);

	if (s != GFN_OK)
		return s;
	s = gfn_client_future_wait(c, f, -1);
	if (s == GFN_OK)
		s = gfn_client_future_outputs(c, f, out, 1, &n);
	if (s == GFN_OK)
		s = gfn_client_object_release(c, *out);
	SVC_OK(gfn_client_future_release(c, f));
	return s;
}

static void test_metrics(void)
{
	static char page[1 << 16];
	unsigned port = free_port();
	char flag[16], want[128];
	const char *const flags[] = {"--metrics_port", flag, NULL};
	svc_daemon d3 = {0};
	gfn_client *c;
	gfn_function vadd;
	float x[8] = {1};
	gfn_object in[2], out;

	snprintf(flag, sizeof flag, "%u", port);
	svc_start(&d3, flags);
	c = svc_connect(&d3);
	SVC_OK(gfn_client_function_find(c, "gfn.vadd", &vadd));
	in[0] = svc_put_f32(c, x, 8);
	in[1] = svc_put_f32(c, x, 8);
	/* Three on device 0, two on device 1: a series for each. */
	for (int i = 0; i < 5; i++)
		SVC_OK(run_on(c, vadd, in, i < 3 ? 0 : 1, &out));
	http_get(port, "/metrics", page, sizeof page);
	ASSERT(strstr(page, "200 OK") != NULL);
	snprintf(want, sizeof want,
	         "gfn_invocation_latency_seconds_count{function=\"gfn.vadd\","
	         "device=\"0\"} 3\n");
	ASSERT(strstr(page, want) != NULL);
	snprintf(want, sizeof want,
	         "gfn_invocation_latency_seconds_count{function=\"gfn.vadd\","
	         "device=\"1\"} 2\n");
	ASSERT(strstr(page, want) != NULL);
	ASSERT(strstr(page, "device=\"0\",le=\"+Inf\"} 3") != NULL);
	ASSERT(strstr(page, "device=\"1\",le=\"+Inf\"} 2") != NULL);
	ASSERT(strstr(page, "gfn_function_errors_total{function=\"gfn.vadd\"} "
	                    "0\n") != NULL);
	ASSERT(strstr(page, "gfn_device_queue_depth{device=\"1\"") != NULL);
	ASSERT(strstr(page, "gfn_store_bytes ") != NULL);
	ASSERT(strstr(page, "gfn_pinned_pool_bytes ") != NULL);
	ASSERT(strstr(page, "gfnd_sessions 1") != NULL);
	http_get(port, "/other", page, sizeof page);
	ASSERT(strstr(page, "404") != NULL);
	gfn_client_close(c);
	ASSERT_EQ(svc_stop(&d3, SIGTERM), 0);
	svc_cleanup(&d3);
}

int main(void)
{
	svc_start(&D, NULL);
	TEST_RUN(test_hello_lists);
	TEST_RUN(test_put_get);
	TEST_RUN(test_invoke);
	TEST_RUN(test_future_calls);
	TEST_RUN(test_concurrent_clients);
	TEST_RUN(test_nothing_leaked);
	TEST_RUN(test_large_put_through_store);
	TEST_RUN(test_large_output_by_reference);
	TEST_RUN(test_metrics);
	TEST_RUN(test_register_opencl);
	ASSERT_EQ(svc_stop(&D, SIGTERM), 0);
	svc_cleanup(&D);
	return 0;
}
