/*
 * nvrtc.c - CUDA C to a module image with NVRTC, loaded at run time
 * (gfn_nvrtc_api, cuda_api.h). Called by kernel_load on a kernel-cache
 * miss only: a process with a warm cache never loads NVRTC.
 *
 * The target is a cubin for the device's own architecture (no JIT at
 * load time) where NVRTC supports it; otherwise PTX for the newest
 * architecture NVRTC knows below the device's, which the driver JIT-
 * compiles (a device newer than the toolkit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/backends/cuda/cuda_int.h"
#include "runtime/util.h"

#define MAX_OPTS 64 /* options of one compile, the arch included */

/* Newest architecture NVRTC supports that is at most want (e.g. 90);
   want itself when NVRTC cannot list them. */
static int pick_arch(gfn_nvrtc_api *nv, int want)
{
	int n = 0, best = 0, archs[128];

	if (!nv->nvrtcGetNumSupportedArchs || !nv->nvrtcGetSupportedArchs ||
	    nv->nvrtcGetNumSupportedArchs(&n) != NVRTC_SUCCESS || n <= 0 ||
	    n > 128 || nv->nvrtcGetSupportedArchs(archs) != NVRTC_SUCCESS)
		return want;
	for (int i = 0; i < n; i++)
		if (archs[i] <= want && archs[i] > best)
			best = archs[i];
	return best ? best : want;
}

/* Split options at white space into opts (from index *n on), in buf. */
static gfn_status split_options(const char *options, char *buf,
                                const char **opts, int *n)
{
	char *save = NULL;

	if (!options)
		return GFN_OK;
	strcpy(buf, options);
	for (char *t = strtok_r(buf, " \t\n", &save); t;
	     t = strtok_r(NULL, " \t\n", &save)) {
		if (*n == MAX_OPTS)
			return gfn__fail(GFN_EINVAL,
			                 "more than %d NVRTC options",
			                 MAX_OPTS);
		opts[(*n)++] = t;
	}
	return GFN_OK;
}

/* Compile failed: the start of the log goes into the detail. */
static gfn_status compile_error(gfn_nvrtc_api *nv, nvrtcProgram prog,
                                nvrtcResult r, const char *arch)
{
	char log[600] = "";
	size_t len = 0;

	if (nv->nvrtcGetProgramLogSize(prog, &len) == NVRTC_SUCCESS && len) {
		char *full = malloc(len);

		if (full && nv->nvrtcGetProgramLog(prog, full) == NVRTC_SUCCESS)
			snprintf(log, sizeof(log), "%s", full);
		free(full);
	}
	return gfn__fail(GFN_EKERNEL, "nvrtcCompileProgram (%s): %s; log: %s",
	                 arch, nv->nvrtcGetErrorString(r), log);
}

/* The compiled image: cubin when cubin, else PTX (with its NUL). */
static gfn_status take_image(gfn_nvrtc_api *nv, nvrtcProgram prog, int cubin,
                             void **bin, size_t *blen)
{
	nvrtcResult r;
	size_t len = 0;
	char *p;

	r = cubin ? nv->nvrtcGetCUBINSize(prog, &len)
	          : nv->nvrtcGetPTXSize(prog, &len);
	if (r != NVRTC_SUCCESS || !len)
		return gfn__fail(GFN_EKERNEL, "NVRTC gave no image: %s",
		                 nv->nvrtcGetErrorString(r));
	p = malloc(len);
	if (!p)
		return gfn__fail(GFN_ENOMEM, "no memory for a %zu-byte image",
		                 len);
	r = cubin ? nv->nvrtcGetCUBIN(prog, p) : nv->nvrtcGetPTX(prog, p);
	if (r != NVRTC_SUCCESS) {
		free(p);
		return gfn__fail(GFN_EKERNEL, "NVRTC image: %s",
		                 nv->nvrtcGetErrorString(r));
	}
	*bin = p;
	*blen = len;
	return GFN_OK;
}

/* Create, compile with opts, take the image, destroy. */
static gfn_status compile(gfn_nvrtc_api *nv, const char *text,
                          const char **opts, int nopts, int cubin, void **bin,
                          size_t *blen)
{
	nvrtcProgram prog = NULL;
	nvrtcResult r;
	gfn_status s;

	r = nv->nvrtcCreateProgram(&prog, text, "gfn_kernel.cu", 0, NULL, NULL);
	if (r != NVRTC_SUCCESS)
		return gfn__fail(r == NVRTC_ERROR_OUT_OF_MEMORY ? GFN_ENOMEM
		                                                : GFN_EKERNEL,
		                 "nvrtcCreateProgram: %s",
		                 nv->nvrtcGetErrorString(r));
	r = nv->nvrtcCompileProgram(prog, nopts, opts);
	if (r != NVRTC_SUCCESS)
		s = compile_error(nv, prog, r, opts[0]);
	else
		s = take_image(nv, prog, cubin, bin, blen);
	nv->nvrtcDestroyProgram(&prog);
	return s;
}

gfn_status gfn__cuda_nvrtc_build(const gfn_bdev *d, const char *src, size_t len,
                                 const char *options, void **bin, size_t *blen)
{
	gfn_nvrtc_api *nv = gfn_nvrtc_api_get();
	const char *opts[MAX_OPTS];
	char arch[40], *buf, *text;
	int want = d->cc_major * 10 + d->cc_minor, got, cubin, n = 0;
	gfn_status s;

	if (!gfn_nvrtc_api_usable(nv))
		return gfn__fail(GFN_ENOTSUP,
		                 "%s: NVRTC (libnvrtc.so) is not available: "
		                 "CUDA C cannot be compiled; give a PTX or "
		                 "cubin image instead",
		                 d->name);
	got = pick_arch(nv, want);
	cubin = got == want && nv->nvrtcGetCUBINSize && nv->nvrtcGetCUBIN;
	snprintf(arch, sizeof(arch), "--gpu-architecture=%s_%d",
	         cubin ? "sm" : "compute", got);
	opts[n++] = arch;
	text = malloc(len + 1); /* NVRTC wants a NUL-terminated source */
	buf = malloc(options ? strlen(options) + 1 : 1);
	s = text && buf ? GFN_OK
	                : gfn__fail(GFN_ENOMEM, "no memory for a compile");
	if (s == GFN_OK)
		s = split_options(options, buf, opts, &n);
	if (s == GFN_OK) {
		memcpy(text, src, len);
		text[len] = '\0';
		s = compile(nv, text, opts, n, cubin, bin, blen);
	}
	free(buf);
	free(text);
	return s;
}
