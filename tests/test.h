/*
 * test.h - assertion macros and shared helpers for the gfn test suites.
 *
 * Modelled on libuv's test/task.h: a failed assertion prints file:line, the
 * expression and the values involved (for a gfn_status: its name, its
 * sentence and the thread's gfn_error_detail()), then exits with status 1.
 * Exiting from any thread is fine in a test.
 *
 * The helpers are defined once, in testutil.c, which every suite compiles
 * in (see tests/CMakeLists.txt).
 */
#ifndef GFN_TESTS_TEST_H
#define GFN_TESTS_TEST_H

#include <gfn/gfn.h>

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------- asserts */

/* Print the failure (with the thread's detail message) and exit(1). */
void test_fail(const char *file, int line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4), noreturn));
/* Report a status mismatch; detail is the copy taken right after the call. */
void test_status_fail(const char *file, int line, const char *expr,
                      const char *want, gfn_status got, const char *detail)
        __attribute__((noreturn));
/* Copy gfn_error_detail() into buf (always NUL-terminated). */
void test_copy_detail(char *buf, size_t cap);

#define ASSERT(expr)                                                           \
	do {                                                                   \
		if (!(expr))                                                   \
			test_fail(__FILE__, __LINE__, "assertion failed: %s",  \
			          #expr);                                      \
	} while (0)

#define ASSERT_CMP_(a, op, b)                                                  \
	do {                                                                   \
		long long ta_ = (long long)(a);                                \
		long long tb_ = (long long)(b);                                \
		if (!(ta_ op tb_))                                             \
			test_fail(__FILE__, __LINE__,                          \
			          "assertion failed: %s %s %s (%lld %s %lld)", \
			          #a, #op, #b, ta_, #op, tb_);                 \
	} while (0)

#define ASSERT_EQ(a, b) ASSERT_CMP_(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_CMP_(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_CMP_(a, <, b)
#define ASSERT_LE(a, b) ASSERT_CMP_(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_CMP_(a, >, b)
#define ASSERT_GE(a, b) ASSERT_CMP_(a, >=, b)

/* Unsigned 64-bit comparison (ids, counters past 2^63). */
#define ASSERT_U64_EQ(a, b)                                                    \
	do {                                                                   \
		unsigned long long ta_ = (unsigned long long)(a);              \
		unsigned long long tb_ = (unsigned long long)(b);              \
		if (ta_ != tb_)                                                \
			test_fail(__FILE__, __LINE__,                          \
			          "assertion failed: %s == %s (%llu == %llu)", \
			          #a, #b, ta_, tb_);                           \
	} while (0)

#define ASSERT_DBL_EQ(a, b)                                                    \
	do {                                                                   \
		double ta_ = (double)(a);                                      \
		double tb_ = (double)(b);                                      \
		if (!(ta_ == tb_))                                             \
			test_fail(__FILE__, __LINE__,                          \
			          "assertion failed: %s == %s (%.9g == %.9g)", \
			          #a, #b, ta_, tb_);                           \
	} while (0)

#define ASSERT_STR_EQ(a, b)                                                    \
	do {                                                                   \
		const char *ta_ = (a);                                         \
		const char *tb_ = (b);                                         \
		if (ta_ == NULL || tb_ == NULL || strcmp(ta_, tb_) != 0)       \
			test_fail(__FILE__, __LINE__,                          \
			          "assertion failed: %s == %s (\"%s\" == "     \
			          "\"%s\")",                                   \
			          #a, #b, ta_ ? ta_ : "(null)",                \
			          tb_ ? tb_ : "(null)");                       \
	} while (0)

#define ASSERT_NULL(p) ASSERT((p) == NULL)
#define ASSERT_NOT_NULL(p) ASSERT((p) != NULL)

/*
 * ASSERT_STATUS(expr, want): expr (evaluated once) returns exactly want.
 * The detail message is copied at once, before any other gfn call.
 */
#define ASSERT_STATUS(expr, want)                                              \
	do {                                                                   \
		gfn_status tgot_ = (expr);                                     \
		if (tgot_ != (want)) {                                         \
			char tdet_[512];                                       \
			test_copy_detail(tdet_, sizeof tdet_);                 \
			test_status_fail(__FILE__, __LINE__, #expr, #want,     \
			                 tgot_, tdet_);                        \
		}                                                              \
	} while (0)

#define ASSERT_OK(expr) ASSERT_STATUS(expr, GFN_OK)

/*
 * ASSERT_FAILS(expr, want): expr fails with exactly want (an error) and
 * leaves a non-empty detail message, as the header promises for every
 * failed call.
 */
#define ASSERT_FAILS(expr, want)                                               \
	do {                                                                   \
		gfn_status tgot_ = (expr);                                     \
		char tdet_[512];                                               \
		test_copy_detail(tdet_, sizeof tdet_);                         \
		if (tgot_ != (want))                                           \
			test_status_fail(__FILE__, __LINE__, #expr, #want,     \
			                 tgot_, tdet_);                        \
		if (tdet_[0] == '\0')                                          \
			test_fail(__FILE__, __LINE__,                          \
			          "%s failed with %s as expected but left an " \
			          "empty gfn_error_detail()",                  \
			          #expr, gfn_status_name(tgot_));              \
	} while (0)

/*
 * ASSERT_FAILS_ID(expr): expr rejects an unknown id. The header allows
 * either GFN_ENOENT or GFN_ESTALE ("A stale or unknown id is rejected with
 * GFN_ENOENT or GFN_ESTALE"); the detail must be non-empty.
 */
#define ASSERT_FAILS_ID(expr)                                                  \
	do {                                                                   \
		gfn_status tgot_ = (expr);                                     \
		char tdet_[512];                                               \
		test_copy_detail(tdet_, sizeof tdet_);                         \
		if (tgot_ != GFN_ENOENT && tgot_ != GFN_ESTALE)                \
			test_status_fail(__FILE__, __LINE__, #expr,            \
			                 "GFN_ENOENT or GFN_ESTALE", tgot_,    \
			                 tdet_);                               \
		if (tdet_[0] == '\0')                                          \
			test_fail(__FILE__, __LINE__,                          \
			          "%s failed with %s as expected but left an " \
			          "empty gfn_error_detail()",                  \
			          #expr, gfn_status_name(tgot_));              \
	} while (0)

/* Run one case and print one line for it. */
#define TEST_RUN(fn)                                                           \
	do {                                                                   \
		uint64_t tt0_ = test_now_ns();                                 \
		fn();                                                          \
		printf("ok - %-40s %8.1f ms\n", #fn,                           \
		       (double)(test_now_ns() - tt0_) / 1e6);                  \
		fflush(stdout);                                                \
	} while (0)

/* ------------------------------------------------------------------- scale */

/*
 * Multiplier for iteration counts: GFN_TEST_SCALE from the environment when
 * set (e.g. 0.1 or 4), otherwise 1, or smaller under a sanitizer that is
 * known to be several times slower.
 */
double test_scale(void);
/* n * test_scale(), at least min. */
size_t test_scaled(size_t n, size_t min);

/* A whole file (malloc'ed, NUL after its bytes); *bytes is its size.
   Fails the test when it cannot be read. */
void *test_slurp(const char *path, size_t *bytes);

/* -------------------------------------------------------------------- time */

uint64_t test_now_ns(void);
void test_sleep_us(unsigned us);

/* A small deterministic PRNG (xorshift64*), for reproducible data. */
uint64_t test_rand(uint64_t *state);

/* ----------------------------------------------------------------- engines */

/* An engine with gfn_config_init() defaults; asserts success. */
gfn_engine *test_engine(void);
/* An engine with the given config; asserts success. */
gfn_engine *test_engine_with(const gfn_config *cfg);
/*
 * A CPU-only engine with one device and one worker, so that a blocked
 * kernel holds the only worker and everything behind it stays queued.
 */
gfn_engine *test_engine_single(void);

gfn_stats test_stats(gfn_engine *e);
/*
 * Stats once nothing is queued or running (waits up to 10 s for the
 * engine's own bookkeeping to catch up with futures that have ended).
 */
gfn_stats test_stats_idle(gfn_engine *e);

/* ----------------------------------------------------------------- objects */

/* Number of elements in shape[0..ndim-1]. */
size_t test_numel(int ndim, const int64_t *shape);

/*
 * Create, fill (nbytes bytes from data, may be NULL when nbytes is 0) and
 * seal an object; the caller owns one reference.
 */
gfn_object test_make(gfn_engine *e, gfn_dtype dtype, int ndim,
                     const int64_t *shape, const void *data);
/* A sealed f32 object of the given shape filled from data. */
gfn_object test_make_f32(gfn_engine *e, const float *data, int ndim,
                         const int64_t *shape);
/* A sealed one-dimensional f32 object of n elements. */
gfn_object test_make_f32_1d(gfn_engine *e, const float *data, size_t n);
/*
 * Read a sealed f32 object of exactly n elements into dst (get, check
 * dtype and size, copy, release).
 */
void test_read_f32(gfn_engine *e, gfn_object obj, float *dst, size_t n);
/* Give back one reference and delete the object. */
void test_drop(gfn_engine *e, gfn_object obj);

/* ------------------------------------------------------------------- gates */

/*
 * A gate that kernels wait on until the test opens it, so a test can hold
 * a worker busy for as long as it needs.
 */
struct test_gate {
	atomic_int open;    /* 0: kernels wait; 1: they pass */
	atomic_int entered; /* kernels that reached the gate */
	atomic_int passed;  /* kernels that went through it */
};

void test_gate_init(struct test_gate *g);
void test_gate_open(struct test_gate *g);
/* Wait until at least n kernels entered the gate; asserts within 30 s. */
void test_gate_wait_entered(struct test_gate *g, int n);
/*
 * Called by a kernel: wait until the gate is open. Returns 0, or nonzero
 * when it waited for more than 60 s (so a broken test fails, not hangs).
 */
int test_gate_pass(struct test_gate *g);

/* --------------------------------------------------------------- functions */

/*
 * "vadd": c[i] = a[i] + b[i]; inputs a, b: f32 [GFN_DIM_VAR(0)], output
 * c: f32 [GFN_DIM_VAR(0)], no parameters. The kernel also checks the
 * tensors the engine hands it and returns 90..99 when they are wrong.
 */
gfn_function test_register_vadd(gfn_engine *e, const char *name);
/* The same, but every invocation first waits on gate. */
gfn_function test_register_vadd_gated(gfn_engine *e, const char *name,
                                      struct test_gate *gate);
/* No inputs, no outputs, no parameters: waits on gate, then returns 0. */
gfn_function test_register_gate(gfn_engine *e, const char *name,
                                struct test_gate *gate);

/* The kernels behind the two functions above (user: gate or NULL). */
int test_vadd_kernel(const gfn_kernel_args *args, void *user);
int test_gate_kernel(const gfn_kernel_args *args, void *user);

/* Fill the vadd signature into the caller's arrays (for descriptors). */
void test_vadd_signature(gfn_tensor_spec in[2], gfn_tensor_spec out[1]);

/* An invocation with no callback. */
gfn_invocation test_inv(gfn_function fn, size_t n_inputs,
                        const gfn_object *inputs, size_t n_params,
                        const gfn_scalar *params);

/*
 * Wait for f (forever), take its single output and return it; the caller
 * owns one reference to the returned object. Does not release f.
 */
gfn_object test_take_output(gfn_engine *e, gfn_future f);

/*
 * Run vadd fn once on n elements of input-dependent data, check every
 * element of the result, and give everything back.
 */
void test_vadd_roundtrip(gfn_engine *e, gfn_function fn, size_t n);
/* The same, allowed only on the devices in the mask (0: any). */
void test_vadd_roundtrip_on(gfn_engine *e, gfn_function fn, size_t n,
                            uint64_t devices);

/* --------------------------------------------------------------- callbacks */

/* Counts completion callbacks by status. */
struct test_cb_count {
	atomic_size_t calls;    /* every call */
	atomic_size_t ok;       /* GFN_OK */
	atomic_size_t canceled; /* GFN_ECANCELED */
	atomic_size_t other;    /* anything else */
};

void test_cb_count_init(struct test_cb_count *c);
/* A gfn_callback; arg is a struct test_cb_count *. */
void test_count_cb(gfn_engine *e, gfn_future f, gfn_status status, void *arg);
/* Wait until c->calls >= n; asserts within 30 s. */
void test_cb_wait(struct test_cb_count *c, size_t n);

#endif /* GFN_TESTS_TEST_H */
