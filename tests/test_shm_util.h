/*
 * test_shm_util.h - helpers of the shared-memory store suites
 * (test_shm_*.c): an engine that listens on a store socket in a fresh
 * directory, real child processes, and pipes to talk to them.
 *
 * A child is this test binary run again (fork + exec of /proc/self/exe
 * with "--child ROLE args..."), not a bare fork: the engine's threads do
 * not follow it, and ASan and TSan watch it as the fresh process it is.
 * A child reports failure through its exit status (ASSERT exits 1).
 */
#ifndef GFN_TESTS_TEST_SHM_UTIL_H
#define GFN_TESTS_TEST_SHM_UTIL_H

#include <gfn/gfn.h>
#include <gfn/gfn_store_client.h>

#include <sys/types.h>

#include "engine/store.h"
#include "test.h"

struct shm_env {
	char dir[64];   /* fresh directory, mode 0755 */
	char sock[128]; /* the store socket in it */
	gfn_engine *e;  /* CPU engine listening there */
	gfn_store *st;  /* its store (white-box checks) */
};

/* Start an engine on a store socket; cfg may be NULL (CPU, defaults). */
void shm_env_start(struct shm_env *env, gfn_config *cfg);
/* Destroy the engine and remove the directory. */
void shm_env_stop(struct shm_env *env);
/* The store of an engine (internal; tests only). */
gfn_store *shm_store_of(gfn_engine *e);
/* Stats of the store behind env. */
gfn_store_stats shm_stats(struct shm_env *env);
/* Wait (up to 30 s) until exactly n clients are attached; asserts. */
void shm_wait_clients(struct shm_env *env, uint64_t n);
/* gfn_store_check passes. */
void shm_check(struct shm_env *env);

/* A child role: its arguments after "--child ROLE"; returns its status. */
typedef int (*shm_role_fn)(int argc, char **argv);
struct shm_role {
	const char *name; /* ROLE */
	shm_role_fn fn;   /* what it runs */
};

/*
 * In main(): when argv says this process is a child, run its role and
 * exit with what it returns; otherwise return.
 */
void shm_child_dispatch(int argc, char **argv, const struct shm_role *roles);
/* Start a child running role with the given arguments (NULL-terminated). */
pid_t shm_spawn(const char *role, ...) __attribute__((sentinel));
/*
 * Wait for child pid at most timeout_s seconds (it is killed after that
 * and the test fails). Its exit status, or 128 + signal when killed.
 */
int shm_wait(pid_t pid, int timeout_s);

/* A pipe whose ends children inherit; "%d" of an end for argv. */
void shm_pipe(int fds[2]);
const char *shm_fd_arg(int fd, char *buf);
/* Write all n bytes / read exactly n bytes (asserts, 30 s at most). */
void shm_send(int fd, const void *p, size_t n);
void shm_recv(int fd, void *p, size_t n);

/* An id as "hi:lo" in hex and back. */
const char *shm_id_arg(gfn_object id, char *buf /* 40 bytes */);
gfn_object shm_id_parse(const char *s);

/* FNV-1a of n bytes. */
uint64_t shm_hash(const void *p, size_t n);
/* Deterministic bytes from seed. */
void shm_fill(void *p, size_t n, uint64_t seed);

/* Descriptors open in this process (for leak checks). */
int shm_open_fds(void);

/* ---- the wire protocol by hand (engine/store_proto.h) ------------------ */

struct gfn_shm_req;
struct gfn_shm_rep;

/* A raw connection to the store socket (no ATTACH sent); asserts. */
int shm_raw_connect(const char *sock);
/* Send n bytes as one message; 0 or -errno. */
int shm_raw_send(int fd, const void *p, size_t n);
/*
 * Receive one message into rep (at most its size) within 10 s; its
 * length, 0 when the engine closed the connection, -1 on timeout. A
 * descriptor that came with it goes to *fd (or is closed when fd is NULL;
 * -1 when none came).
 */
long shm_raw_recv(int fd, struct gfn_shm_rep *rep, int *got_fd);
/*
 * A well-formed request (magic, version, seq) for op; the reply's
 * status, or 1 when the connection closed instead.
 */
int shm_raw_call(int fd, struct gfn_shm_req *req, struct gfn_shm_rep *rep,
                 int *got_fd);

#endif /* GFN_TESTS_TEST_SHM_UTIL_H */
