/*
 * util.h - small pieces every layer uses: error detail, clocks, futexes,
 * logging. Internal: not API.
 */
#ifndef GFN_RUNTIME_UTIL_H
#define GFN_RUNTIME_UTIL_H

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "gfn/gfn.h"

/*
 * Record a detail message for this thread and return s, so that a failure
 * reads `return gfn__fail(GFN_ESTATE, "object %s is not sealed", id);`.
 */
gfn_status gfn__fail(gfn_status s, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Monotonic clock in nanoseconds. */
uint64_t gfn__now_ns(void);

/*
 * Sleep while *word == expected, at most timeout_ns (negative: no limit).
 * Returns early on a wake, a signal or a spurious wake-up: callers re-check.
 */
void gfn__futex_wait(_Atomic uint32_t *word, uint32_t expected,
                     int64_t timeout_ns);
/* Wake up to n threads sleeping on word (INT32_MAX for all). */
void gfn__futex_wake(_Atomic uint32_t *word, int n);

/* A hint to the CPU inside a spin loop. */
static inline void gfn__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/*
 * One step of a bounded spin-wait: a pause, and every 64 steps a yield of
 * the core and a look at the clock. The yield matters when the thread we
 * wait for shares our core (2 cores under load): without it every hand-off
 * waits out the whole spin. Nonzero once end (gfn__now_ns) has passed.
 */
static inline int gfn__spin_step(unsigned i, uint64_t end)
{
	gfn__cpu_relax();
	if ((i & 63) != 63)
		return 0;
	sched_yield();
	return gfn__now_ns() >= end;
}

typedef enum gfn_log_level {
	GFN_LOG_ERROR = 0,
	GFN_LOG_WARN = 1,
	GFN_LOG_INFO = 2,
	GFN_LOG_DEBUG = 3,
} gfn_log_level;

/*
 * Log to stderr when level <= the level in $GFN_LOG (error, warn, info,
 * debug; default warn).
 */
void gfn__log(gfn_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* 64-bit seed from the kernel's random source (getrandom). */
uint64_t gfn__random_seed(void);

#endif /* GFN_RUNTIME_UTIL_H */
