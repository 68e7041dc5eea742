/*
 * cl_util.h - shared pieces of the OpenCL backend: the OpenCL headers at
 * the version gfn targets and error translation. Internal.
 */
#ifndef GFN_OPENCL_CL_UTIL_H
#define GFN_OPENCL_CL_UTIL_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include "gfn/gfn.h"

/* "CL_INVALID_VALUE" for CL_INVALID_VALUE; "CL_UNKNOWN_ERROR" otherwise. */
const char *gfn_cl_error_name(cl_int err);

/*
 * Translate an OpenCL error from call into a gfn status with a detail
 * message naming the call and the error ("clBuildProgram:
 * CL_BUILD_PROGRAM_FAILURE (-11)").
 */
gfn_status gfn_cl_fail(cl_int err, const char *call);

#endif /* GFN_OPENCL_CL_UTIL_H */
