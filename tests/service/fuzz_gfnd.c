/*
 * fuzz_gfnd.c - a fuzz target for gfnd's request decoder and dispatch:
 * any bytes, handed to gfnd_handle as a request from one connection of
 * an in-process daemon (CPU engine, built-ins), must give a well-formed
 * reply map with a status, and never crash or leak.
 *
 * Built two ways: with -DGFN_LIBFUZZER under clang's -fsanitize=fuzzer,
 * and (always) with the main() below, which replays a corpus directory
 * so that ctest checks it on every build, sanitizers included. With
 * "--mutate N" first, the driver also feeds N deterministic mutations of
 * each input (bytes flipped, set to msgpack type bytes, cut, repeated),
 * a small fuzzer of its own that needs no libFuzzer.
 */
#include "gfnd.h"

#include <dirent.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gfnd D;
static uint32_t pipe_id; /* the session requests are charged to */

static void fuzz_init(void)
{
	gfn_config ec;
	nng_msg *m;

	gfnd_config_defaults(&D.cfg);
	D.cfg.max_message = 1 << 20;
	D.cfg.inline_max = 1 << 16;
	D.cfg.wait_slice_ms = 1;
	atomic_store(&D.wait_slice_ms, 1);
	atomic_store(&gfnd_log_level, GFND_LOG_ERROR);
	pthread_mutex_init(&D.lock, NULL);
	pthread_cond_init(&D.idle, NULL);
	gfn_config_init(&ec);
	ec.backends = GFN_BACKEND_CPU;
	ec.store_capacity = 16 << 20;
	ec.kcache_dir = "";
	if (gfn_engine_create(&ec, &D.e) != GFN_OK ||
	    gfnd_fns_add_builtins(&D) != GFN_OK) {
		fprintf(stderr, "fuzz_gfnd: engine: %s\n", gfn_error_detail());
		abort(); /* a test harness, not library code */
	}
	/* A message that never came through a socket has pipe id 0. */
	nng_msg_alloc(&m, 0);
	pipe_id = (uint32_t)nng_pipe_id(nng_msg_get_pipe(m));
	nng_msg_free(m);
	gfnd_session_open(&D, pipe_id, true, (uint32_t)geteuid() + 1);
}

static void check_reply(nng_msg *rep)
{
	char err[GFN_WIRE_DETAIL_MAX];
	wire_in in;
	int64_t st;

	if (!rep)
		return; /* out of memory: allowed */
	if (wire_in_decode(&in, nng_msg_body(rep), nng_msg_len(rep), err) !=
	            GFN_OK ||
	    wire_get_i64(in.root, "status", &st, err) != GFN_OK)
		abort(); /* every reply must be a map with a status */
	wire_in_fini(&in);
	nng_msg_free(rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nng_msg *m;

	if (!D.e)
		fuzz_init();
	if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, data, size) != 0)
		abort();
	check_reply(gfnd_handle(&D, m));
	return 0;
}

#ifndef GFN_LIBFUZZER
static uint64_t rng = 0x9e3779b97f4a7c15u; /* fixed: runs repeat */
static unsigned mutations;                 /* per input, from --mutate */

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* One mutation of in (n bytes) into out (room for 2n + 16). */
static size_t mutate(const uint8_t *in, size_t n, uint8_t *out)
{
	static const uint8_t interesting[] = {0xc0, 0xc1, 0xc4, 0xc6, 0xcf,
	                                      0xd3, 0xd9, 0xdb, 0xdc, 0xdd,
	                                      0xde, 0xdf, 0x80, 0x90, 0xff};
	size_t len = n, at = n ? next_rand() % n : 0;

	memcpy(out, in, n);
	switch (next_rand() % 5) {
	case 0: /* flip a bit */
		if (n)
			out[at] ^= (uint8_t)(1u << (next_rand() % 8));
		break;
	case 1: /* a type byte msgpack gives meaning to */
		if (n)
			out[at] = interesting[next_rand() % sizeof interesting];
		break;
	case 2: /* cut short */
		len = at;
		break;
	case 3: /* a run repeated */
		memcpy(out + n, in + at, n - at);
		len = n + (n - at);
		break;
	default: /* random bytes at the end */
		for (int i = 0; i < 16; i++)
			out[n + i] = (uint8_t)next_rand();
		len = n + 16;
		break;
	}
	return len;
}

static void run_mutations(const uint8_t *buf, size_t n)
{
	uint8_t *m = malloc(2 * n + 16);

	if (!m)
		abort();
	for (unsigned i = 0; i < mutations; i++)
		LLVMFuzzerTestOneInput(m, mutate(buf, n, m));
	free(m);
}

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f)
		return 0;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc(n > 0 ? (size_t)n : 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		abort();
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	run_mutations(buf, (size_t)n);
	free(buf);
	return 1;
}

int main(int argc, char **argv)
{
	int n = 0, first = 1;

	if (argc > 2 && strcmp(argv[1], "--mutate") == 0) {
		mutations = (unsigned)atoi(argv[2]);
		first = 3;
	}
	for (int i = first; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *de;
		char full[4096];

		while (d && (de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(full, sizeof full, "%s/%s", argv[i],
			         de->d_name);
			n += run_file(full);
		}
		if (d)
			closedir(d);
	}
	if (D.e) {
		gfnd_sessions_close_all(&D);
		gfn_engine_destroy(D.e);
	}
	printf("fuzz_gfnd_replay: %d inputs, %u mutations of each\n", n,
	       mutations);
	return n > 0 ? 0 : 1; /* a missing corpus is a failure */
}
#endif
