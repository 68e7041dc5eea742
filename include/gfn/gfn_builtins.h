/*
 * gfn_builtins.h - the functions gfn ships with.
 *
 * gfn_builtins_register() registers every function below with an engine,
 * under the names given. Each has a CPU implementation (plain C, computed
 * in double and rounded once: the reference other backends are checked
 * against), an OpenCL one (a file in kernels/cl/, built into the library)
 * and, where gfn is built with CUDA, a CUDA one (kernels/cuda/, compiled
 * to a fatbin at build time); the engine runs a function on every device
 * whose backend has one.
 *
 * n is any length >= 0; every f32 vector of one call must have the same n
 * (a mismatch fails gfn_invoke with GFN_ESHAPE, a wrong dtype GFN_EDTYPE).
 *
 *   name         inputs           params    outputs      computes
 *   gfn.vadd     a[n], b[n] f32   -         c[n] f32     c = a + b
 *   gfn.saxpy    x[n], y[n] f32   a: f32    out[n] f32   out = a*x + y
 *   gfn.relu     x[n] f32         -         out[n] f32   max(x, 0)
 *   gfn.gelu     x[n] f32         -         out[n] f32   0.5 x (1 + tanh(
 *                                                         sqrt(2/pi) (x +
 *                                                         0.044715 x^3)))
 *   gfn.tanh     x[n] f32         -         out[n] f32   tanh(x)
 *   gfn.sigmoid  x[n] f32         -         out[n] f32   1 / (1 + exp(-x))
 *   gfn.sum      x[n] f32         -         out[1] f32   sum of x (0 if n=0)
 *
 * Accuracy, for finite inputs, on every backend, against the exact value
 * w (computed in double); |e| is the absolute error of each element. The
 * 1e-37 term allows devices that flush denormals to zero.
 *
 *   gfn.vadd     |e| <= 1.2e-7 (|a| + |b|) + 1e-37
 *   gfn.saxpy    |e| <= 2.4e-7 (|a x| + |y|) + 1e-37  (a device may fuse
 *                                                      a*x+y into one fma)
 *   gfn.relu     exact
 *   gfn.gelu     |e| <= 1e-6 |x| + 1e-37
 *   gfn.tanh     |e| <= 1e-6 |w| + 1e-37
 *   gfn.sigmoid  |e| <= 1e-6 |w| + 1e-37
 *   gfn.sum      |e| <= 1e-5 (|x_0| + ... + |x_n-1|) + 1e-37
 */
#ifndef GFN_GFN_BUILTINS_H
#define GFN_GFN_BUILTINS_H

#include "gfn.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Register every built-in function with e. All or nothing: on failure
 * those this call registered are unregistered again, and the status and
 * detail are those of the registration that failed (GFN_EEXIST when a
 * name is already taken, e.g. by a second call). Find them afterwards
 * with gfn_function_find(e, "gfn.vadd", ...).
 */
GFN_API gfn_status gfn_builtins_register(gfn_engine *e);

#ifdef __cplusplus
}
#endif
#endif /* GFN_GFN_BUILTINS_H */
