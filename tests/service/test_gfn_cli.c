/*
 * test_gfn_cli.c - the gfn command-line tool against a real gfnd:
 * devices, functions, stats, register, invoke with .npy files in and
 * out, put and get.
 */
#include "svc_util.h"

#include "npy.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static svc_daemon D;

/* Run the CLI with args; its exit status. Output to out when not NULL. */
static int gfn_cli(const char *args, const char *out)
{
	char cmd[2048];
	int st;

	snprintf(cmd, sizeof cmd, "'%s' --url '%s' %s %s%s", GFN_CLI_PATH,
	         D.url, args, out ? "> " : "", out ? out : "");
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_f32(const char *path, const float *v, int64_t n)
{
	npy_array a = {.dtype = GFN_F32,
	               .ndim = 1,
	               .shape = {n},
	               .data = (void *)v,
	               .nbytes = (size_t)n * sizeof *v};
	char err[256];

	if (npy_write(path, &a, err) != 0)
		test_fail(__FILE__, __LINE__, "%s", err);
}

static npy_array read_npy(const char *path)
{
	npy_array a;
	char err[256];

	if (npy_read(path, &a, err) != 0)
		test_fail(__FILE__, __LINE__, "%s", err);
	return a;
}

static void path_in(char *buf, const char *name)
{
	snprintf(buf, 512, "%s/%s", D.dir, name);
}

static void test_listing(void)
{
	char out[512], line[256];
	FILE *f;
	int found = 0;

	path_in(out, "functions.txt");
	ASSERT_EQ(gfn_cli("devices", NULL), 0);
	ASSERT_EQ(gfn_cli("stats", NULL), 0);
	ASSERT_EQ(gfn_cli("functions", out), 0);
	f = fopen(out, "r");
	ASSERT_NOT_NULL(f);
	while (fgets(line, sizeof line, f))
		found |= strncmp(line, "gfn.saxpy\tbuiltin", 17) == 0;
	fclose(f);
	ASSERT(found);
	ASSERT_EQ(gfn_cli("register gfn.vadd --builtin", NULL), 0);
	ASSERT_EQ(gfn_cli("register m --model /nonexistent", NULL), 1);
	ASSERT_EQ(gfn_cli("frobnicate", NULL), 2);
}

static void test_invoke_npy(void)
{
	enum { N = 100 };
	float x[N], y[N];
	char px[512], py[512], po[512], args[2048];
	npy_array r;

	for (int i = 0; i < N; i++)
		x[i] = (float)i, y[i] = 0.5f;
	path_in(px, "x.npy");
	path_in(py, "y.npy");
	path_in(po, "out.npy");
	write_f32(px, x, N);
	write_f32(py, y, N);
	snprintf(args, sizeof args, "invoke gfn.saxpy -p 3 '%s' '%s' -o '%s'",
	         px, py, po);
	ASSERT_EQ(gfn_cli(args, NULL), 0);
	r = read_npy(po);
	ASSERT_EQ(r.dtype, GFN_F32);
	ASSERT_EQ(r.ndim, 1);
	ASSERT_EQ(r.shape[0], N);
	for (int i = 0; i < N; i++)
		ASSERT_EQ(((float *)r.data)[i], 3.0f * x[i] + 0.5f);
	free(r.data);
	/* Wrong input count: the engine's error, exit status 1. */
	snprintf(args, sizeof args, "invoke gfn.vadd '%s' -o '%s'", px, po);
	ASSERT_EQ(gfn_cli(args, NULL), 1);
}

static void test_put_get(void)
{
	float x[5] = {1, 2, 3, 4, 5};
	char px[512], pid[512], po[512], args[2048], id[64] = "";
	npy_array r;
	FILE *f;

	path_in(px, "p.npy");
	path_in(pid, "id.txt");
	path_in(po, "g.npy");
	write_f32(px, x, 5);
	snprintf(args, sizeof args, "put '%s'", px);
	ASSERT_EQ(gfn_cli(args, pid), 0);
	f = fopen(pid, "r");
	ASSERT_NOT_NULL(f);
	ASSERT_NOT_NULL(fgets(id, sizeof id, f));
	fclose(f);
	id[strcspn(id, "\n")] = '\0';
	ASSERT_EQ(strlen(id), (size_t)32);
	/* The put's connection is gone; the sealed object stays cached. */
	snprintf(args, sizeof args, "get %s '%s'", id, po);
	ASSERT_EQ(gfn_cli(args, NULL), 0);
	r = read_npy(po);
	ASSERT_EQ(r.nbytes, sizeof x);
	ASSERT_EQ(memcmp(r.data, x, sizeof x), 0);
	free(r.data);
}

int main(void)
{
	svc_start(&D, NULL);
	TEST_RUN(test_listing);
	TEST_RUN(test_invoke_npy);
	TEST_RUN(test_put_get);
	ASSERT_EQ(svc_stop(&D, SIGTERM), 0);
	svc_cleanup(&D);
	return 0;
}
