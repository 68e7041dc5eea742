/*
 * fuzz_gfnd.c - a fuzz target for gfnd's request decoder and dispatch:
 * any bytes, handed to gfnd_handle as a request from one connection of
 * an in-process daemon (CPU engine, built-ins), must give a well-formed
 * reply map with a status, and never crash or leak.
 *
 * Built two ways: with -DGFN_LIBFUZZER under clang's -fsanitize=fuzzer,
 * and (always) with the main() below, which replays a corpus directory
 * so that ctest checks it on every build, sanitizers included.
 */
#include "gfnd.h"

#include <dirent.h>
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
	gfnd_log_level = GFND_LOG_ERROR;
	pthread_mutex_init(&D.lock, NULL);
	pthread_cond_init(&D.idle, NULL);
	gfn_config_init(&ec);
	ec.backends = GFN_BACKEND_CPU;
	ec.store_capacity = 16 << 20;
	ec.kcache_dir = "";
	if (gfn_engine_create(&ec, &D.e) != GFN_OK ||
	    gfnd_fns_add_builtins(&D) != GFN_OK)
		abort(); /* a test harness, not library code */
	/* A message that never came through a socket has pipe id 0. */
	nng_msg_alloc(&m, 0);
	pipe_id = (uint32_t)nng_pipe_id(nng_msg_get_pipe(m));
	nng_msg_free(m);
	gfnd_session_open(&D, pipe_id);
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
	free(buf);
	return 1;
}

int main(int argc, char **argv)
{
	int n = 0;

	for (int i = 1; i < argc; i++) {
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
	printf("fuzz_gfnd_replay: %d inputs\n", n);
	return n > 0 ? 0 : 1; /* a missing corpus is a failure */
}
#endif
