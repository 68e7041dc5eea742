/*
 * test_cl_compile.c - the built-in OpenCL kernels (the kernels/cl/ files,
 * as embedded in the library) with the real OpenCL compiler, on every device
 * of every platform, without the engine:
 *
 *  1. each source builds (the build log is printed when it does not);
 *  2. each kernel's argument list is gfn.h's convention for its function:
 *     one __global pointer per input (const) and per output, the params
 *     with their declared types, then the ulong sizes of work.pass_sizes;
 *  3. each kernel, launched as its work rule says, agrees with the CPU
 *     reference (the function's cpu_fn) on random data, n = 1 .. 100003.
 *
 * Exits 77 (ctest: skipped) when there is no OpenCL platform or device.
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include "test.h"

#include <math.h>

#include "kernels/builtins.h"

#define LOCAL_ELEMENTS 64 /* work-group size for GFN_WORK_ELEMENTS */

static const size_t sizes[] = {1, 3, 255, 256, 257, 4099, 100003};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static uint64_t rng = 0xbb67ae8584caa73bull;

#define CL_OK(call)                                                            \
	do {                                                                   \
		cl_int err_ = (call);                                          \
		if (err_ != CL_SUCCESS)                                        \
			test_fail(__FILE__, __LINE__, "%s: OpenCL error %d",   \
			          #call, (int)err_);                           \
	} while (0)

/* ------------------------------------------------------------- building */

static char *build_log(cl_program prog, cl_device_id dev)
{
	size_t len = 0;
	char *log;

	clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &len);
	log = calloc(len + 1, 1);
	ASSERT_NOT_NULL(log);
	clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, len, log, NULL);
	return log;
}

/* Build b's source for dev; NULL (and the log printed) when it fails. */
static cl_program build(cl_context ctx, cl_device_id dev, const gfn_builtin *b)
{
	const gfn_opencl_kernel *k = b->desc.opencl;
	char opts[512];
	cl_program prog;
	cl_int err;

	/* Argument info is optional unless asked for; the checks need it. */
	snprintf(opts, sizeof opts, "%s -cl-kernel-arg-info",
	         k->options ? k->options : "");
	const char *src = k->source;

	prog = clCreateProgramWithSource(ctx, 1, &src, NULL, &err);
	CL_OK(err);
	err = clBuildProgram(prog, 1, &dev, opts, NULL, NULL);
	if (err != CL_SUCCESS) {
		char *log = build_log(prog, dev);

		fprintf(stderr, "%s (%s): clBuildProgram: %d\n%s\n",
		        b->desc.name, b->cl_file, (int)err, log);
		free(log);
		clReleaseProgram(prog);
		return NULL;
	}
	return prog;
}

/* ------------------------------------------------------ argument lists */

static const char *param_cl_type(gfn_param_type t)
{
	switch (t) {
	case GFN_PARAM_F64:
		return "double";
	case GFN_PARAM_I64:
		return "long";
	case GFN_PARAM_F32:
		return "float";
	case GFN_PARAM_I32:
		break;
	}
	return "int";
}

static int n_sizes(const gfn_work_rule *w)
{
	if (!w->pass_sizes)
		return 0;
	return w->kind == GFN_WORK_MATRIX ? 2 : 1;
}

/* Argument i's type name without blanks ("float *" -> "float*"). */
static void arg_type(cl_kernel k, cl_uint i, char *buf, size_t cap)
{
	char raw[128] = {0};
	size_t o = 0;

	CL_OK(clGetKernelArgInfo(k, i, CL_KERNEL_ARG_TYPE_NAME, sizeof raw, raw,
	                         NULL));
	for (size_t r = 0; raw[r] && o + 1 < cap; r++)
		if (raw[r] != ' ')
			buf[o++] = raw[r];
	buf[o] = '\0';
}

static void check_arg(const gfn_builtin *b, cl_kernel k, cl_uint i,
                      const char *want_type, int global, int konst)
{
	cl_kernel_arg_address_qualifier aq = 0;
	cl_kernel_arg_type_qualifier tq = 0;
	char type[128];

	arg_type(k, i, type, sizeof type);
	CL_OK(clGetKernelArgInfo(k, i, CL_KERNEL_ARG_ADDRESS_QUALIFIER,
	                         sizeof aq, &aq, NULL));
	CL_OK(clGetKernelArgInfo(k, i, CL_KERNEL_ARG_TYPE_QUALIFIER, sizeof tq,
	                         &tq, NULL));
	if (strcmp(type, want_type) ||
	    (global && aq != CL_KERNEL_ARG_ADDRESS_GLOBAL) ||
	    (global && !(tq & CL_KERNEL_ARG_TYPE_CONST) != !konst))
		test_fail(__FILE__, __LINE__,
		          "%s: argument %u is %s%s%s, the convention wants "
		          "%s%s%s",
		          b->desc.name, i,
		          aq == CL_KERNEL_ARG_ADDRESS_GLOBAL ? "__global " : "",
		          tq & CL_KERNEL_ARG_TYPE_CONST ? "const " : "", type,
		          global ? "__global " : "", konst ? "const " : "",
		          want_type);
}

static void check_args(const gfn_builtin *b, cl_kernel k)
{
	const gfn_function_desc *d = &b->desc;
	int ns = n_sizes(&d->opencl->work);
	cl_uint nargs = 0, i = 0;

	CL_OK(clGetKernelInfo(k, CL_KERNEL_NUM_ARGS, sizeof nargs, &nargs,
	                      NULL));
	ASSERT_EQ(nargs, d->n_inputs + d->n_outputs + d->n_params + ns);
	for (size_t j = 0; j < d->n_inputs; j++)
		check_arg(b, k, i++, "float*", 1, 1);
	for (size_t j = 0; j < d->n_outputs; j++)
		check_arg(b, k, i++, "float*", 1, 0);
	for (size_t j = 0; j < d->n_params; j++)
		check_arg(b, k, i++, param_cl_type(d->params[j].type), 0, 0);
	for (int j = 0; j < ns; j++)
		check_arg(b, k, i++, "ulong", 0, 0);
}

/* ------------------------------------------------------------- running */

/* The inputs, params and output of one run, on the host. */
struct run {
	size_t n;                       /* input length */
	size_t nout;                    /* output length */
	float *in[GFN_MAX_INPUTS];      /* inputs */
	gfn_scalar par[GFN_MAX_PARAMS]; /* params */
	float *ref;                     /* CPU reference output */
	float *dev;                     /* the device's output */
};

static float *vec(size_t n)
{
	float *v = malloc(n * sizeof *v);

	ASSERT_NOT_NULL(v);
	return v;
}

/* Random inputs and params, and the output of b's cpu_fn on them. */
static void run_prepare(const gfn_builtin *b, size_t n, struct run *r)
{
	const gfn_function_desc *d = &b->desc;
	gfn_tensor tin[GFN_MAX_INPUTS] = {{0}}, tout = {0};
	gfn_kernel_args args = {d->n_inputs, tin,    1, &tout,
	                        d->n_params, r->par, 0};

	memset(r, 0, sizeof *r);
	r->n = n;
	r->nout = d->outputs[0].dims[0] > 0 ? (size_t)d->outputs[0].dims[0] : n;
	for (size_t k = 0; k < d->n_inputs; k++) {
		r->in[k] = vec(n);
		for (size_t i = 0; i < n; i++)
			r->in[k][i] =
			        (float)((int64_t)(test_rand(&rng) % 20001) -
			                10000) /
			        1000.0f;
		tin[k] = (gfn_tensor){
		        r->in[k], GFN_F32, 1, {(int64_t)n}, n * sizeof(float)};
	}
	for (size_t k = 0; k < d->n_params; k++)
		r->par[k].f32 = 1.5f; /* the built-ins take f32 params only */
	r->ref = vec(r->nout);
	r->dev = vec(r->nout);
	tout = (gfn_tensor){r->ref,
	                    GFN_F32,
	                    1,
	                    {(int64_t)r->nout},
	                    r->nout * sizeof(float)};
	ASSERT_EQ(d->cpu_fn(&args, d->user), 0);
}

static void run_free(const gfn_builtin *b, struct run *r)
{
	for (size_t k = 0; k < b->desc.n_inputs; k++)
		free(r->in[k]);
	free(r->ref);
	free(r->dev);
}

/* Set the arguments of k in gfn.h's order; bufs[] receives the buffers. */
static void set_args(cl_context ctx, const gfn_builtin *b, cl_kernel k,
                     struct run *r, cl_mem *bufs)
{
	const gfn_function_desc *d = &b->desc;
	cl_uint a = 0;
	cl_ulong n = r->n;
	cl_int err;

	for (size_t j = 0; j < d->n_inputs; j++) {
		bufs[j] = clCreateBuffer(
		        ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
		        r->n * sizeof(float), r->in[j], &err);
		CL_OK(err);
		CL_OK(clSetKernelArg(k, a++, sizeof(cl_mem), &bufs[j]));
	}
	bufs[d->n_inputs] = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY,
	                                   r->nout * sizeof(float), NULL, &err);
	CL_OK(err);
	CL_OK(clSetKernelArg(k, a++, sizeof(cl_mem), &bufs[d->n_inputs]));
	for (size_t j = 0; j < d->n_params; j++)
		CL_OK(clSetKernelArg(k, a++, sizeof(float), &r->par[j].f32));
	if (n_sizes(&d->opencl->work))
		CL_OK(clSetKernelArg(k, a++, sizeof n, &n));
}

/* Launch as the work rule says (ELEMENTS or FIXED; the built-ins use no
   other) and read the output back. */
static void launch(cl_command_queue q, const gfn_builtin *b, cl_kernel k,
                   cl_mem out, struct run *r)
{
	const gfn_work_rule *w = &b->desc.opencl->work;
	size_t global = w->global[0], local = w->local[0];

	if (w->kind == GFN_WORK_ELEMENTS) {
		local = LOCAL_ELEMENTS;
		global = (r->n + local - 1) / local * local;
	}
	ASSERT(w->kind == GFN_WORK_ELEMENTS || w->kind == GFN_WORK_FIXED);
	CL_OK(clEnqueueNDRangeKernel(q, k, 1, NULL, &global,
	                             local ? &local : NULL, 0, NULL, NULL));
	CL_OK(clEnqueueReadBuffer(q, out, CL_TRUE, 0, r->nout * sizeof(float),
	                          r->dev, 0, NULL, NULL));
}

/* Device against CPU: 1e-5 of the magnitudes involved. */
static void compare(const gfn_builtin *b, const struct run *r)
{
	double total = 0;

	for (size_t k = 0; k < b->desc.n_inputs; k++)
		for (size_t i = 0; i < r->n; i++)
			total += fabs(r->in[k][i]);
	for (size_t i = 0; i < r->nout; i++) {
		double scale = fabs(r->ref[i]);

		if (r->nout == r->n)
			for (size_t k = 0; k < b->desc.n_inputs; k++)
				scale += 2.5 * fabs(r->in[k][i]);
		else
			scale += total; /* a reduction */
		if (fabs((double)r->dev[i] - r->ref[i]) > 1e-5 * scale + 1e-37)
			test_fail(__FILE__, __LINE__,
			          "%s n=%zu [%zu]: device %.9g, CPU %.9g",
			          b->desc.name, r->n, i, r->dev[i], r->ref[i]);
	}
}

static void run_sizes(cl_context ctx, cl_command_queue q, const gfn_builtin *b,
                      cl_kernel k)
{
	for (size_t s = 0; s < NSIZES; s++) {
		cl_mem bufs[GFN_MAX_INPUTS + 1];
		struct run r;

		run_prepare(b, sizes[s], &r);
		set_args(ctx, b, k, &r, bufs);
		launch(q, b, k, bufs[b->desc.n_inputs], &r);
		compare(b, &r);
		for (size_t j = 0; j <= b->desc.n_inputs; j++)
			clReleaseMemObject(bufs[j]);
		run_free(b, &r);
	}
}

/* ------------------------------------------------------------- devices */

/* Every built-in on dev; the number whose source did not build. */
static int test_device(cl_device_id dev)
{
	cl_int err;
	cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
	cl_command_queue q;
	size_t n;
	const gfn_builtin *tab = gfn__builtins(&n);
	int failed = 0;

	CL_OK(err);
	q = clCreateCommandQueue(ctx, dev, 0, &err);
	CL_OK(err);
	for (size_t i = 0; i < n; i++) {
		cl_program prog = build(ctx, dev, &tab[i]);
		cl_kernel k;

		if (!prog) {
			failed++;
			continue;
		}
		k = clCreateKernel(prog, tab[i].desc.opencl->name, &err);
		CL_OK(err);
		check_args(&tab[i], k);
		run_sizes(ctx, q, &tab[i], k);
		printf("#   %-12s %-14s builds, arguments match, runs\n",
		       tab[i].desc.name, tab[i].cl_file);
		clReleaseKernel(k);
		clReleaseProgram(prog);
	}
	clReleaseCommandQueue(q);
	clReleaseContext(ctx);
	return failed;
}

static int platform_devices(cl_platform_id p, cl_device_id *devs, cl_uint cap)
{
	cl_uint n = 0;
	cl_int err = clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, cap, devs, &n);

	return err == CL_SUCCESS ? (int)(n < cap ? n : cap) : 0;
}

int main(void)
{
	cl_platform_id plats[8];
	cl_uint nplat = 0;
	int devices = 0, failed = 0;

	if (clGetPlatformIDs(8, plats, &nplat) != CL_SUCCESS || nplat == 0) {
		printf("# no OpenCL platform: skipped\n");
		return 77;
	}
	for (cl_uint p = 0; p < nplat && p < 8; p++) {
		cl_device_id devs[16];
		int nd = platform_devices(plats[p], devs, 16);

		for (int d = 0; d < nd; d++) {
			char name[256] = "?";

			clGetDeviceInfo(devs[d], CL_DEVICE_NAME, sizeof name,
			                name, NULL);
			printf("# device %s\n", name);
			failed += test_device(devs[d]);
			devices++;
		}
	}
	if (devices == 0) {
		printf("# no OpenCL device: skipped\n");
		return 77;
	}
	if (failed)
		test_fail(__FILE__, __LINE__, "%d built-in(s) did not build",
		          failed);
	printf("ok - every built-in on %d device(s)\n", devices);
	return 0;
}
