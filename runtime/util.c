/*
 * util.c - status names, error detail, version, dtypes, clocks, futexes.
 */
#include "runtime/util.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- status -------------------------------------------------------------- */

const char *gfn_status_name(gfn_status s)
{
	switch (s) {
#define GFN_STATUS_NAME_(name, code, text)                                     \
	case GFN_##name:                                                       \
		return "GFN_" #name;
		GFN_STATUS_MAP(GFN_STATUS_NAME_)
#undef GFN_STATUS_NAME_
	}
	return "GFN_UNKNOWN";
}

const char *gfn_status_str(gfn_status s)
{
	switch (s) {
#define GFN_STATUS_STR_(name, code, text)                                      \
	case GFN_##name:                                                       \
		return text;
		GFN_STATUS_MAP(GFN_STATUS_STR_)
#undef GFN_STATUS_STR_
	}
	return "unknown status";
}

/* Big enough for an id, a shape and a backend's message. */
static _Thread_local char detail_buf[512];

const char *gfn_error_detail(void)
{
	return detail_buf;
}

gfn_status gfn__fail(gfn_status s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail_buf, sizeof(detail_buf), fmt, ap);
	va_end(ap);
	return s;
}

/* ---- version and dtypes --------------------------------------------------- */

#define GFN_STR2_(x) #x
#define GFN_STR_(x) GFN_STR2_(x)

unsigned gfn_version(void)
{
	return GFN_VERSION_HEX;
}

const char *gfn_version_string(void)
{
	return GFN_STR_(GFN_VERSION_MAJOR) "." GFN_STR_(
	        GFN_VERSION_MINOR) "." GFN_STR_(GFN_VERSION_PATCH);
}

size_t gfn_dtype_size(gfn_dtype t)
{
	switch (t) {
	case GFN_F64:
	case GFN_I64:
		return 8;
	case GFN_F32:
	case GFN_I32:
		return 4;
	case GFN_F16:
	case GFN_BF16:
		return 2;
	case GFN_I8:
	case GFN_U8:
		return 1;
	case GFN_DTYPE_INVALID:
		break;
	}
	return 0;
}

const char *gfn_dtype_name(gfn_dtype t)
{
	static const char *const names[] = {
	        [GFN_F32] = "f32",   [GFN_F64] = "f64", [GFN_F16] = "f16",
	        [GFN_BF16] = "bf16", [GFN_I8] = "i8",   [GFN_U8] = "u8",
	        [GFN_I32] = "i32",   [GFN_I64] = "i64",
	};
	if ((unsigned)t >= sizeof(names) / sizeof(names[0]) || !names[t])
		return "invalid";
	return names[t];
}

/* ---- clocks and futexes ----------------------------------------------------- */

uint64_t gfn__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void gfn__futex_wait(_Atomic uint32_t *word, uint32_t expected,
                     int64_t timeout_ns)
{
	struct timespec ts, *tsp = NULL;

	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		tsp = &ts;
	}
	/* Private futex: every waiter is in this process. */
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, tsp,
	        NULL, 0);
}

void gfn__futex_wake(_Atomic uint32_t *word, int n)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL,
	        0);
}

/* ---- logging and randomness ------------------------------------------------- */

static int log_threshold(void)
{
	static _Atomic int level = -1;
	int l = atomic_load_explicit(&level, memory_order_relaxed);
	const char *env;

	if (l >= 0)
		return l;
	env = getenv("GFN_LOG");
	l = GFN_LOG_WARN;
	if (env && !strcmp(env, "error"))
		l = GFN_LOG_ERROR;
	else if (env && !strcmp(env, "info"))
		l = GFN_LOG_INFO;
	else if (env && !strcmp(env, "debug"))
		l = GFN_LOG_DEBUG;
	atomic_store_explicit(&level, l, memory_order_relaxed);
	return l;
}

void gfn__log(gfn_log_level level, const char *fmt, ...)
{
	static const char *const tag[] = {"error", "warn", "info", "debug"};
	char line[512];
	va_list ap;

	if ((int)level > log_threshold())
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "gfn %s: %s\n", tag[level], line);
}

uint64_t gfn__random_seed(void)
{
	uint64_t v = 0;
	ssize_t n;

	do {
		n = getrandom(&v, sizeof(v), 0);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(v)) /* no entropy source: still unique */
		v = gfn__now_ns() ^ ((uint64_t)getpid() << 32);
	return v;
}
