/*
 * cli.c - the gfn command-line tool: gfnd from a shell.
 *
 *   gfn [--url URL] devices | functions | stats
 *   gfn [--url URL] register NAME --builtin
 *   gfn [--url URL] register NAME --model DIR
 *   gfn [--url URL] register NAME --opencl FILE.cl --kernel K
 *                   --inputs SPEC[,SPEC..] --outputs SPEC[,..] [--params T,..]
 *   gfn [--url URL] invoke NAME [-p VALUE].. IN.npy.. [-o OUT.npy]..
 *   gfn [--url URL] put FILE.npy          (prints the object id)
 *   gfn [--url URL] get ID FILE.npy
 *
 * URL defaults to $GFN_URL, then ipc:///run/gfn/gfnd.sock. A SPEC is
 * dtype:dims with dims split by 'x', each an extent, '*' (any) or a
 * letter naming a size variable: "f32:n", "f32:mxk", "f32:1".
 */
#include "npy.h"

#include <gfn/gfn_client.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(const char *what, gfn_status s)
{
	fprintf(stderr, "gfn: %s: %s (%s)\n", what, gfn_client_error_detail(),
	        gfn_status_name(s));
	return 1;
}

static void print_id(gfn_object o)
{
	printf("%016llx%016llx\n", (unsigned long long)o.hi,
	       (unsigned long long)o.lo);
}

static int parse_id(const char *s, gfn_object *o)
{
	char hi[17];

	if (strlen(s) != 32)
		return -1;
	memcpy(hi, s, 16);
	hi[16] = '\0';
	o->hi = strtoull(hi, NULL, 16);
	o->lo = strtoull(s + 16, NULL, 16);
	return 0;
}

static const char *backend(unsigned b)
{
	return b == GFN_BACKEND_CPU      ? "cpu"
	       : b == GFN_BACKEND_OPENCL ? "opencl"
	       : b == GFN_BACKEND_CUDA   ? "cuda"
	                                 : "?";
}

static int cmd_devices(gfn_client *c)
{
	gfn_device_info d[64];
	size_t n;
	gfn_status s = gfn_client_devices(c, d, 64, &n);

	if (s != GFN_OK)
		return die("devices", s);
	for (size_t i = 0; i < n && i < 64; i++)
		printf("%zu\t%s\t%s\t%llu MiB\t%u units\tnuma %d\n", i,
		       backend(d[i].backend), d[i].name,
		       (unsigned long long)(d[i].memory_bytes >> 20),
		       d[i].compute_units, d[i].numa_node);
	return 0;
}

static int cmd_functions(gfn_client *c)
{
	static gfn_client_function_info f[256];
	size_t n;
	gfn_status s = gfn_client_functions(c, f, 256, &n);

	if (s != GFN_OK)
		return die("functions", s);
	for (size_t i = 0; i < n && i < 256; i++)
		printf("%s\t%s\tinputs %u\toutputs %u\tparams %u\n", f[i].name,
		       f[i].kind, f[i].n_inputs, f[i].n_outputs, f[i].n_params);
	return 0;
}

static int cmd_stats(gfn_client *c)
{
	gfn_client_daemon_stats d;
	gfn_stats e;
	gfn_status s = gfn_client_stats(c, &e, &d);

	if (s != GFN_OK)
		return die("stats", s);
	printf("submitted %llu\ncompleted %llu\nfailed %llu\ncanceled %llu\n"
	       "queued %llu\nrunning %llu\nstore_objects %llu\n"
	       "store_bytes %llu\nrequests %llu\nbad_requests %llu\n"
	       "sessions %llu\ninflight %lld\n",
	       (unsigned long long)e.submitted, (unsigned long long)e.completed,
	       (unsigned long long)e.failed, (unsigned long long)e.canceled,
	       (unsigned long long)e.queued, (unsigned long long)e.running,
	       (unsigned long long)e.store_objects,
	       (unsigned long long)e.store_bytes,
	       (unsigned long long)d.requests,
	       (unsigned long long)d.bad_requests,
	       (unsigned long long)d.sessions, (long long)d.inflight);
	return 0;
}

static gfn_status put_npy(gfn_client *c, const char *path, gfn_object *o)
{
	char err[256];
	npy_array a;
	gfn_status s;

	if (npy_read(path, &a, err) != 0) {
		fprintf(stderr, "gfn: %s\n", err);
		return GFN_EINVAL;
	}
	s = gfn_client_put(c, a.dtype, a.ndim, a.shape, a.data, a.nbytes, o);
	free(a.data);
	return s;
}

/* A large output is written to the file straight from the store. */
static int get_npy(gfn_client *c, gfn_object o, const char *path)
{
	char err[256];
	gfn_client_view cv;
	const gfn_object_view *v = &cv.view;
	npy_array a;
	gfn_status s = gfn_client_object_read(c, o, &cv);

	if (s != GFN_OK)
		return die("get", s);
	a = (npy_array){.dtype = v->dtype,
	                .ndim = v->ndim,
	                .data = (void *)v->data,
	                .nbytes = v->size};
	memcpy(a.shape, v->shape, sizeof a.shape);
	int rc = npy_write(path, &a, err);
	gfn_client_view_release(c, &cv);
	if (rc != 0)
		fprintf(stderr, "gfn: %s\n", err);
	return rc ? 1 : 0;
}

static int cmd_put(gfn_client *c, int argc, char **argv)
{
	gfn_object o;
	gfn_status s;

	if (argc != 1) {
		fprintf(stderr, "usage: gfn put FILE.npy\n");
		return 2;
	}
	if ((s = put_npy(c, argv[0], &o)) != GFN_OK)
		return die("put", s);
	print_id(o);
	return 0;
}

static int cmd_get(gfn_client *c, int argc, char **argv)
{
	gfn_object o;

	if (argc != 2 || parse_id(argv[0], &o) != 0) {
		fprintf(stderr, "usage: gfn get ID FILE.npy\n");
		return 2;
	}
	return get_npy(c, o, argv[1]);
}

static gfn_status find_fn(gfn_client *c, const char *name,
                          gfn_client_function_info *out)
{
	static gfn_client_function_info f[256];
	size_t n;
	gfn_status s = gfn_client_functions(c, f, 256, &n);

	for (size_t i = 0; s == GFN_OK && i < n && i < 256; i++)
		if (strcmp(f[i].name, name) == 0) {
			*out = f[i];
			return GFN_OK;
		}
	return s == GFN_OK ? GFN_ENOENT : s;
}

static gfn_scalar scalar(gfn_param_type t, const char *v)
{
	gfn_scalar x;

	if (t == GFN_PARAM_I64)
		x.i64 = strtoll(v, NULL, 0);
	else if (t == GFN_PARAM_I32)
		x.i32 = (int32_t)strtol(v, NULL, 0);
	else if (t == GFN_PARAM_F32)
		x.f32 = strtof(v, NULL);
	else
		x.f64 = strtod(v, NULL);
	return x;
}

/* Run the invocation and write its outputs to outs[]. */
static int run_invoke(gfn_client *c, gfn_invocation *inv, char **outs,
                      int n_outs)
{
	gfn_object res[GFN_MAX_OUTPUTS];
	gfn_future f;
	size_t n = 0;
	int rc = 0;
	gfn_status s = gfn_client_invoke(c, inv, &f);

	if (s != GFN_OK)
		return die("invoke", s);
	s = gfn_client_future_wait(c, f, -1);
	if (s == GFN_OK)
		s = gfn_client_future_outputs(c, f, res, GFN_MAX_OUTPUTS, &n);
	if (s != GFN_OK)
		rc = die("invocation", s);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if ((int)i < n_outs)
			rc = get_npy(c, res[i], outs[i]);
		else
			print_id(res[i]);
	}
	gfn_client_future_release(c, f);
	return rc;
}

static int cmd_invoke(gfn_client *c, int argc, char **argv)
{
	gfn_object in[GFN_MAX_INPUTS];
	gfn_scalar par[GFN_MAX_PARAMS];
	char *outs[GFN_MAX_OUTPUTS];
	gfn_client_function_info fi;
	gfn_invocation inv = {0};
	int n_outs = 0;
	gfn_status s;

	if (argc < 1) {
		fprintf(stderr, "usage: gfn invoke NAME [-p V].. IN.npy.. "
		                "[-o OUT.npy]..\n");
		return 2;
	}
	if ((s = find_fn(c, argv[0], &fi)) != GFN_OK)
		return die(argv[0], s);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-p") && i + 1 < argc &&
		    inv.n_params < GFN_MAX_PARAMS) {
			par[inv.n_params] = scalar(fi.param_types[inv.n_params],
			                           argv[i + 1]);
			inv.n_params++, i++;
		} else if (!strcmp(argv[i], "-o") && i + 1 < argc &&
		           n_outs < GFN_MAX_OUTPUTS) {
			outs[n_outs++] = argv[++i];
		} else if (inv.n_inputs < GFN_MAX_INPUTS) {
			s = put_npy(c, argv[i], &in[inv.n_inputs++]);
			if (s != GFN_OK)
				return die(argv[i], s);
		}
	}
	inv.fn = fi.fn;
	inv.inputs = in;
	inv.params = par;
	return run_invoke(c, &inv, outs, n_outs);
}

/* "f32:mxn" into a tensor spec; letters are size variables. */
static int parse_spec(const char *s, gfn_tensor_spec *t, char *vars)
{
	static const char *names[] = {"",   "f32", "f64", "f16", "bf16",
	                              "i8", "u8",  "i32", "i64"};
	const char *colon = strchr(s, ':');

	memset(t, 0, sizeof *t);
	if (!colon)
		return -1;
	for (int i = 1; i < 9; i++)
		if ((size_t)(colon - s) == strlen(names[i]) &&
		    !strncmp(s, names[i], strlen(names[i])))
			t->dtype = (gfn_dtype)i;
	for (const char *p = colon + 1; *p && t->ndim < GFN_MAX_DIMS;) {
		if (*p == '*') {
			t->dims[t->ndim++] = GFN_DIM_ANY, p++;
		} else if (*p >= 'a' && *p <= 'z' && *p != 'x') {
			char *v = strchr(vars, *p);
			size_t nv = strlen(vars);

			if (!v && nv < GFN_MAX_DIM_VARS) {
				vars[nv] = *p, vars[nv + 1] = '\0';
				v = &vars[nv];
			}
			if (!v)
				return -1;
			t->dims[t->ndim++] = GFN_DIM_VAR(v - vars), p++;
		} else {
			char *end;
			t->dims[t->ndim++] = strtoll(p, &end, 10);
			if (end == p)
				return -1;
			p = end;
		}
		if (*p == 'x')
			p++;
	}
	return t->dtype ? 0 : -1;
}

static int parse_specs(char *list, gfn_tensor_spec *t, size_t *n, size_t cap,
                       char *vars)
{
	*n = 0;
	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ","))
		if (*n >= cap || parse_spec(tok, &t[(*n)++], vars) != 0)
			return -1;
	return 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n)
		buf[n] = '\0';
	else
		free(buf), buf = NULL;
	fclose(f);
	return buf;
}

typedef struct reg_args {
	const char *opencl, *kernel, *model; /* flag values or NULL */
	char *inputs, *outputs, *params;     /* lists or NULL */
	int builtin;                         /* --builtin given */
} reg_args;

static int reg_opencl(gfn_client *c, const char *name, reg_args *a)
{
	gfn_tensor_spec ins[GFN_MAX_INPUTS], outs[GFN_MAX_OUTPUTS];
	gfn_param_spec pars[GFN_MAX_PARAMS] = {0};
	gfn_opencl_kernel k = {.name = a->kernel};
	gfn_function_desc d = {.name = name,
	                       .inputs = ins,
	                       .outputs = outs,
	                       .params = pars,
	                       .opencl = &k};
	char vars[GFN_MAX_DIM_VARS + 1] = "";
	gfn_function fn;
	gfn_status s;

	if (!a->kernel || !a->inputs || !a->outputs ||
	    parse_specs(a->inputs, ins, &d.n_inputs, GFN_MAX_INPUTS, vars) ||
	    parse_specs(a->outputs, outs, &d.n_outputs, GFN_MAX_OUTPUTS,
	                vars)) {
		fprintf(stderr, "gfn: --opencl needs --kernel, --inputs and "
		                "--outputs (SPEC: f32:n, f32:mxk, ...)\n");
		return 2;
	}
	for (char *t = a->params ? strtok(a->params, ",") : NULL;
	     t && d.n_params < GFN_MAX_PARAMS; t = strtok(NULL, ","))
		pars[d.n_params++].type = !strcmp(t, "f64")   ? GFN_PARAM_F64
		                          : !strcmp(t, "i64") ? GFN_PARAM_I64
		                          : !strcmp(t, "i32") ? GFN_PARAM_I32
		                                              : GFN_PARAM_F32;
	if (!(k.source = slurp(a->opencl))) {
		perror(a->opencl);
		return 1;
	}
	s = gfn_client_register_opencl(c, &d, &fn);
	free((void *)k.source);
	return s == GFN_OK ? 0 : die("register", s);
}

static int cmd_register(gfn_client *c, int argc, char **argv)
{
	reg_args a = {0};
	gfn_function fn;
	gfn_status s;

	for (int i = 1; i < argc; i++) {
		const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(f, "--builtin"))
			a.builtin = 1;
		else if (v && !strcmp(f, "--opencl"))
			a.opencl = v, i++;
		else if (v && !strcmp(f, "--kernel"))
			a.kernel = v, i++;
		else if (v && !strcmp(f, "--model"))
			a.model = v, i++;
		else if (v && !strcmp(f, "--inputs"))
			a.inputs = argv[++i];
		else if (v && !strcmp(f, "--outputs"))
			a.outputs = argv[++i];
		else if (v && !strcmp(f, "--params"))
			a.params = argv[++i];
	}
	if (argc < 1 || (!a.builtin && !a.opencl && !a.model)) {
		fprintf(stderr, "usage: gfn register NAME --builtin | --model "
		                "DIR | --opencl FILE --kernel K --inputs .. "
		                "--outputs ..\n");
		return 2;
	}
	if (a.opencl)
		return reg_opencl(c, argv[0], &a);
	s = a.builtin ? gfn_client_register_builtin(c, argv[0], &fn)
	              : gfn_client_register_model(c, argv[0], a.model, &fn);
	return s == GFN_OK ? 0 : die("register", s);
}

static int usage(void)
{
	fprintf(stderr, "usage: gfn [--url URL] COMMAND ...\n"
	                "  devices | functions | stats\n"
	                "  register NAME --builtin | --model DIR |\n"
	                "           --opencl FILE --kernel K --inputs SPECS "
	                "--outputs SPECS [--params TYPES]\n"
	                "  invoke NAME [-p VALUE].. IN.npy.. [-o OUT.npy]..\n"
	                "  put FILE.npy\n"
	                "  get ID FILE.npy\n");
	return 2;
}

static int known_command(const char *cmd)
{
	static const char *cmds[] = {"devices",  "functions", "stats",
	                             "register", "invoke",    "put",
	                             "get"};

	for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
		if (!strcmp(cmd, cmds[i]))
			return 1;
	return 0;
}

static int dispatch(gfn_client *c, const char *cmd, int argc, char **argv)
{
	if (!strcmp(cmd, "devices"))
		return cmd_devices(c);
	if (!strcmp(cmd, "functions"))
		return cmd_functions(c);
	if (!strcmp(cmd, "stats"))
		return cmd_stats(c);
	if (!strcmp(cmd, "register"))
		return cmd_register(c, argc, argv);
	if (!strcmp(cmd, "invoke"))
		return cmd_invoke(c, argc, argv);
	if (!strcmp(cmd, "put"))
		return cmd_put(c, argc, argv);
	if (!strcmp(cmd, "get"))
		return cmd_get(c, argc, argv);
	return usage();
}

int main(int argc, char **argv)
{
	const char *url = getenv("GFN_URL");
	gfn_client *c;
	gfn_status s;
	int i = 1, rc;

	if (i + 1 < argc && !strcmp(argv[i], "--url"))
		url = argv[i + 1], i += 2;
	if (!url)
		url = "ipc:///run/gfn/gfnd.sock";
	/* A usage error needs no daemon: say so before connecting. */
	if (i >= argc || !known_command(argv[i]))
		return usage();
	if ((s = gfn_client_connect(url, &c)) != GFN_OK)
		return die(url, s);
	rc = dispatch(c, argv[i], argc - i - 1, argv + i + 1);
	gfn_client_close(c);
	return rc;
}
