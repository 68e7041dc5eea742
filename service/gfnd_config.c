/*
 * gfnd_config.c - the daemon's settings: defaults, then the config file,
 * then command-line flags (docs/gfnd.md lists every key). Every value is
 * checked; an unknown key or a bad value stops the daemon with the file
 * name and line, because a daemon that silently ignores a typo runs with
 * settings nobody chose.
 */
#include "gfnd.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gfnd_config_defaults(gfnd_config *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->listen, sizeof c->listen, "ipc:///run/gfn/gfnd.sock");
	c->workers = 16;
	c->log_level = GFND_LOG_INFO;
	c->backends = GFN_BACKEND_ALL;
	c->cpu_devices = 1;
	c->store_capacity = (size_t)1 << 30;
	c->max_message = (size_t)80 << 20;
	c->inline_max = (size_t)64 << 20;
	c->drain_timeout_ms = 30000;
	c->wait_slice_ms = 200;
	c->builtins = true;
	c->ready_fd = -1;
}

static int parse_u64(const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(v, &end, 0);
	if (errno || end == v || *v == '-')
		return -1;
	/* k/M/G suffixes for byte sizes. */
	if (*end == 'k' || *end == 'K')
		x <<= 10, end++;
	else if (*end == 'M')
		x <<= 20, end++;
	else if (*end == 'G')
		x <<= 30, end++;
	if (*end != '\0' || x < lo || x > hi)
		return -1;
	*out = x;
	return 0;
}

static int parse_backends(const char *v, unsigned *out)
{
	if (strcmp(v, "all") == 0)
		*out = GFN_BACKEND_ALL;
	else if (strcmp(v, "cpu") == 0)
		*out = GFN_BACKEND_CPU;
	else if (strcmp(v, "opencl") == 0)
		*out = GFN_BACKEND_OPENCL | GFN_BACKEND_CPU;
	else if (strcmp(v, "cuda") == 0)
		*out = GFN_BACKEND_CUDA | GFN_BACKEND_CPU;
	else
		return -1;
	return 0;
}

static int parse_level(const char *v, int *out)
{
	static const char *names[] = {"error", "warn", "info", "debug"};

	for (int i = 0; i < 4; i++)
		if (strcmp(v, names[i]) == 0) {
			*out = i;
			return 0;
		}
	return -1;
}

static int set_str(char *dst, size_t cap, const char *v)
{
	if (strlen(v) >= cap)
		return -1;
	strcpy(dst, v);
	return 0;
}

static int set_bool(bool *dst, const char *v)
{
	if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
		*dst = true;
	else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
		*dst = false;
	else
		return -1;
	return 0;
}

/* Numeric keys: name, where, range. */
static int set_number(gfnd_config *c, const char *k, const char *v, int *known)
{
	uint64_t x;

	*known = 1;
	if (!strcmp(k, "workers")) {
		if (parse_u64(v, 1, 256, &x))
			return -1;
		c->workers = (unsigned)x;
	} else if (!strcmp(k, "cpu_devices")) {
		if (parse_u64(v, 1, 64, &x))
			return -1;
		c->cpu_devices = (unsigned)x;
	} else if (!strcmp(k, "store_capacity")) {
		if (parse_u64(v, 1 << 20, (uint64_t)1 << 40, &x))
			return -1;
		c->store_capacity = x;
	} else if (!strcmp(k, "max_message")) {
		if (parse_u64(v, 4096, (uint64_t)1 << 31, &x))
			return -1;
		c->max_message = x;
	} else if (!strcmp(k, "inline_max")) {
		if (parse_u64(v, 0, (uint64_t)1 << 31, &x))
			return -1;
		c->inline_max = x;
	} else if (!strcmp(k, "drain_timeout_ms")) {
		if (parse_u64(v, 0, 3600000, &x))
			return -1;
		c->drain_timeout_ms = (unsigned)x;
	} else if (!strcmp(k, "metrics_port")) {
		if (parse_u64(v, 0, 65535, &x))
			return -1;
		c->metrics_port = (unsigned)x;
	} else if (!strcmp(k, "ready_fd")) {
		if (parse_u64(v, 0, 1 << 20, &x))
			return -1;
		c->ready_fd = (int)x;
	} else if (!strcmp(k, "wait_slice_ms")) {
		if (parse_u64(v, 1, 60000, &x))
			return -1;
		c->wait_slice_ms = (unsigned)x;
	} else {
		*known = 0;
	}
	return 0;
}

/* "model = NAME DIR": one more model to register; names are unique. */
static int add_model(gfnd_config *c, const char *v)
{
	size_t n = strcspn(v, " \t");
	const char *dir = v + n + strspn(v + n, " \t");
	gfnd_model_cfg *m;

	if (c->n_models == GFND_MAX_MODELS || !n || n >= sizeof m->name ||
	    !*dir || strlen(dir) >= GFND_PATH_MAX)
		return -1;
	for (unsigned i = 0; i < c->n_models; i++)
		if (strlen(c->models[i].name) == n &&
		    !strncmp(c->models[i].name, v, n))
			return -1;
	m = &c->models[c->n_models++];
	memcpy(m->name, v, n);
	m->name[n] = '\0';
	strcpy(m->dir, dir);
	return 0;
}

/* Apply one key = value; -1 with err set when bad. */
static int config_set(gfnd_config *c, const char *k, const char *v, char *err)
{
	int known, rc = 0;

	if (set_number(c, k, v, &known) != 0)
		rc = -1;
	else if (known)
		rc = 0;
	else if (!strcmp(k, "listen"))
		rc = strncmp(v, "ipc://", 6)
		             ? -1
		             : set_str(c->listen, GFND_PATH_MAX, v);
	else if (!strcmp(k, "tcp_listen"))
		rc = strncmp(v, "tcp://", 6)
		             ? -1
		             : set_str(c->tcp_listen, GFND_PATH_MAX, v);
	else if (!strcmp(k, "token"))
		rc = set_str(c->token, sizeof c->token, v);
	else if (!strcmp(k, "store_socket"))
		rc = set_str(c->store_socket, GFND_PATH_MAX, v);
	else if (!strcmp(k, "log_level"))
		rc = parse_level(v, &c->log_level);
	else if (!strcmp(k, "backends"))
		rc = parse_backends(v, &c->backends);
	else if (!strcmp(k, "builtins"))
		rc = set_bool(&c->builtins, v);
	else if (!strcmp(k, "model"))
		rc = add_model(c, v);
	else if (!strcmp(k, "tcp_allow_remote"))
		rc = set_bool(&c->tcp_allow_remote, v);
	else {
		snprintf(err, 160, "unknown setting \"%.64s\"", k);
		return -1;
	}
	if (rc != 0)
		snprintf(err, 160, "bad value \"%.64s\" for %.64s", v, k);
	return rc;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* One line of the file: blank, "# comment" or "key = value". */
static int config_line(gfnd_config *c, char *line, char *err)
{
	char *eq, *k, *v;

	line[strcspn(line, "#")] = '\0';
	k = trim(line);
	if (*k == '\0')
		return 0;
	eq = strchr(k, '=');
	if (!eq) {
		snprintf(err, 160, "expected key = value");
		return -1;
	}
	*eq = '\0';
	v = trim(eq + 1);
	return config_set(c, trim(k), v, err);
}

int gfnd_config_load(gfnd_config *c, const char *path, char *err)
{
	char line[1024], why[160];
	FILE *f = fopen(path, "r");
	int n = 0;

	if (!f) {
		snprintf(err, 256, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		n++;
		if (config_line(c, line, why) != 0) {
			snprintf(err, 256, "%s:%d: %s", path, n, why);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return set_str(c->config_path, GFND_PATH_MAX, path);
}

/*
 * Flags: --config FILE first (anywhere on the line), then --key value or
 * --key=value for every setting, which override the file.
 */
int gfnd_config_args(gfnd_config *c, int argc, char **argv, char *err)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--config") && i + 1 < argc &&
		    gfnd_config_load(c, argv[i + 1], err) != 0)
			return -1;
	for (int i = 1; i < argc; i++) {
		char key[64], *a = argv[i], *v, *eq;

		if (strncmp(a, "--", 2) != 0) {
			snprintf(err, 256, "unexpected argument \"%s\"", a);
			return -1;
		}
		a += 2;
		eq = strchr(a, '=');
		if (eq) {
			snprintf(key, sizeof key, "%.*s", (int)(eq - a), a);
			v = eq + 1;
		} else if (i + 1 < argc) {
			snprintf(key, sizeof key, "%s", a);
			v = argv[++i];
		} else {
			snprintf(err, 256, "--%s needs a value", a);
			return -1;
		}
		for (char *p = key; *p; p++)
			if (*p == '-')
				*p = '_';
		if (!strcmp(key, "config"))
			continue;
		if (config_set(c, key, v, err) != 0)
			return -1;
	}
	return 0;
}

/* Settings that are only wrong together. 0 or -1 with err. */
int gfnd_config_check(const gfnd_config *c, char *err)
{
	const char *host = c->tcp_listen + strlen("tcp://");

	if (!c->tcp_listen[0])
		return 0;
	if (!c->token[0]) {
		snprintf(err, 256, "tcp_listen needs a token");
		return -1;
	}
	if (strlen(c->token) < 16) {
		snprintf(err, 256, "the token must be at least 16 characters");
		return -1;
	}
	/* Loopback unless asked otherwise: the token is sent in clear. */
	if (!c->tcp_allow_remote && strncmp(host, "127.", 4) != 0 &&
	    strncmp(host, "localhost:", 10) != 0 &&
	    strncmp(host, "[::1]:", 6) != 0) {
		snprintf(err, 256,
		         "tcp_listen %.128s is not a loopback address (set "
		         "tcp_allow_remote = true to allow it)",
		         c->tcp_listen);
		return -1;
	}
	return 0;
}
