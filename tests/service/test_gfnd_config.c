/*
 * test_gfnd_config.c - gfnd's settings and who may talk to it: a bad
 * config file or flag stops it with exit status 2; tcp:// needs the
 * token on every request; SIGHUP reloads the file (a bad one is ignored)
 * while clients keep being served.
 */
#include "svc_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/gfnd-cfg-XXXXXX";

/* Run gfnd with one extra flag pair; its exit status (bounded: alarm). */
static int gfnd_exit(const char *flag, const char *value)
{
	char url[512];
	int st;
	pid_t pid;

	snprintf(url, sizeof url, "ipc://%s/run/gfnd.sock", dir);
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		alarm(20); /* a daemon that does not refuse is killed */
		execl(GFND_PATH, "gfnd", "--listen", url, "--backends", "cpu",
		      flag, value, (char *)NULL);
		_exit(127);
	}
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ASSERT_NOT_NULL(f);
	fputs(text, f);
	fclose(f);
}

static void test_bad_settings(void)
{
	char conf[512];

	snprintf(conf, sizeof conf, "%s/bad.conf", dir);
	write_file(conf, "workers = 4\nbogus_key = 1\n");
	ASSERT_EQ(gfnd_exit("--config", conf), 2);
	write_file(conf, "workers = 0\n");
	ASSERT_EQ(gfnd_exit("--config", conf), 2);
	write_file(conf, "just some words\n");
	ASSERT_EQ(gfnd_exit("--config", conf), 2);
	ASSERT_EQ(gfnd_exit("--config", "/nonexistent/gfnd.conf"), 2);
	ASSERT_EQ(gfnd_exit("--store_capacity", "lots"), 2);
	ASSERT_EQ(gfnd_exit("--listen", "tcp://127.0.0.1:1"), 2);
	/* tcp:// without a token, or on a public address. */
	ASSERT_EQ(gfnd_exit("--tcp_listen", "tcp://127.0.0.1:7070"), 2);
	write_file(conf, "token = 0123456789abcdef\n"
	                 "tcp_listen = tcp://0.0.0.0:7070\n");
	ASSERT_EQ(gfnd_exit("--config", conf), 2);
	write_file(conf, "token = short\ntcp_listen = tcp://127.0.0.1:7070\n");
	ASSERT_EQ(gfnd_exit("--config", conf), 2);
}

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

static void test_tcp_token(void)
{
	static const char token[] = "0123456789abcdef-secret";
	char tcp[64];
	const char *const flags[] = {"--tcp_listen", tcp, "--token", token,
	                             NULL};
	svc_daemon d = {0};
	gfn_client *c;
	gfn_client_info info;
	float x[3] = {1, 2, 3};
	gfn_object o;
	int64_t n = 3;

	snprintf(tcp, sizeof tcp, "tcp://127.0.0.1:%u", free_port());
	svc_start(&d, flags);
	/* No token: refused, whatever the op. */
	unsetenv("GFN_TOKEN");
	SVC_OK(gfn_client_connect(tcp, &c));
	SVC_STATUS(gfn_client_hello(c, &info), GFN_EACCES);
	SVC_STATUS(gfn_client_put(c, GFN_F32, 1, &n, x, sizeof x, &o),
	           GFN_EACCES);
	gfn_client_close(c);
	/* A wrong one of the same length: refused too. */
	setenv("GFN_TOKEN", "0123456789abcdef-secreT", 1);
	SVC_OK(gfn_client_connect(tcp, &c));
	SVC_STATUS(gfn_client_hello(c, &info), GFN_EACCES);
	gfn_client_close(c);
	setenv("GFN_TOKEN", token, 1);
	SVC_OK(gfn_client_connect(tcp, &c));
	SVC_OK(gfn_client_hello(c, &info));
	o = svc_put_f32(c, x, 3);
	gfn_object_view v;
	SVC_OK(gfn_client_object_get(c, o, &v));
	ASSERT_EQ(memcmp(v.data, x, sizeof x), 0);
	gfn_client_view_free(&v);
	gfn_client_close(c);
	unsetenv("GFN_TOKEN");
	/* ipc:// clients of our uid need no token. */
	c = svc_connect(&d);
	SVC_OK(gfn_client_hello(c, &info));
	gfn_client_close(c);
	ASSERT_EQ(svc_stop(&d, SIGTERM), 0);
	svc_cleanup(&d);
}

static void test_sighup_reload(void)
{
	char conf[512];
	const char *const flags[] = {"--config", conf, NULL};
	svc_daemon d = {0};
	gfn_client *c;
	gfn_client_info info;

	snprintf(conf, sizeof conf, "%s/hup.conf", dir);
	write_file(conf, "log_level = warn\nworkers = 4\n");
	svc_start(&d, flags);
	c = svc_connect(&d);
	SVC_OK(gfn_client_hello(c, &info));
	write_file(conf, "log_level = info\nwait_slice_ms = 50\n");
	kill(d.pid, SIGHUP);
	SVC_OK(gfn_client_hello(c, &info));
	/* A broken file: the old settings stay, the daemon stays up. */
	write_file(conf, "log_level = loud\n");
	kill(d.pid, SIGHUP);
	SVC_OK(gfn_client_hello(c, &info));
	gfn_client_close(c);
	ASSERT_EQ(svc_stop(&d, SIGTERM), 0);
	svc_cleanup(&d);
}

/* Wait (5 s at most) until the daemon has a function called name. */
static gfn_status find_soon(gfn_client *c, const char *name)
{
	gfn_function fn;
	gfn_status st = GFN_ENOENT;

	for (int i = 0; i < 500 && st != GFN_OK; i++) {
		st = gfn_client_function_find(c, name, &fn);
		if (st != GFN_OK)
			usleep(10000);
	}
	return st;
}

/* Models from the config at start, new ones on SIGHUP, and by request. */
static void test_models_from_config(void)
{
	char conf[512], text[2048];
	const char *const flags[] = {"--config", conf, NULL};
	const char *models = GFN_TEST_MODELS;
	svc_daemon d = {0};
	gfn_client_function_info info[16];
	gfn_function fn;
	gfn_client *c;
	size_t n;
	int found = 0;

	snprintf(conf, sizeof conf, "%s/models.conf", dir);
	snprintf(text, sizeof text, "model = digits %s/digits\n", models);
	write_file(conf, text);
	svc_start(&d, flags);
	c = svc_connect(&d);
	SVC_OK(gfn_client_function_find(c, "digits", &fn));
	SVC_STATUS(gfn_client_function_find(c, "cnn", &fn), GFN_ENOENT);
	snprintf(text, sizeof text,
	         "model = digits %s/digits\nmodel = cnn %s/cnn\n", models,
	         models);
	write_file(conf, text);
	kill(d.pid, SIGHUP);
	SVC_OK(find_soon(c, "cnn"));
	/* A model directory by request, and a missing one refused. */
	snprintf(text, sizeof text, "%s/embed", models);
	SVC_OK(gfn_client_register_model(c, "embed", text, &fn));
	SVC_STATUS(gfn_client_register_model(c, "nope", "/nonexistent", &fn),
	           GFN_ENOENT);
	SVC_OK(gfn_client_functions(c, info, 16, &n));
	for (size_t i = 0; i < n && i < 16; i++)
		if (!strcmp(info[i].kind, "model")) {
			ASSERT_GE(info[i].n_inputs, 1);
			ASSERT_GE(info[i].n_outputs, 1);
			found++;
		}
	ASSERT_EQ(found, 3);
	gfn_client_close(c);
	ASSERT_EQ(svc_stop(&d, SIGTERM), 0);
	svc_cleanup(&d);
}

int main(void)
{
	ASSERT_NOT_NULL(mkdtemp(dir));
	TEST_RUN(test_bad_settings);
	TEST_RUN(test_tcp_token);
	TEST_RUN(test_sighup_reload);
	TEST_RUN(test_models_from_config);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}
