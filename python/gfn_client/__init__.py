"""Python client of gfnd: numpy arrays in and out (ctypes over libgfn_client).

Mirrors include/gfn/gfn_client.h. Every call raises GfnError on failure
with the status name and the daemon's detail message.
"""
import ctypes
import ctypes.util
import os
import threading

import numpy as np

__all__ = ["Client", "Future", "GfnError", "ObjectId"]

MAX_DIMS, MAX_INPUTS, MAX_OUTPUTS, MAX_PARAMS = 8, 16, 8, 16

# gfn_dtype <-> numpy
_DTYPES = {1: np.float32, 2: np.float64, 3: np.float16, 5: np.int8,
           6: np.uint8, 7: np.int32, 8: np.int64}
_FROM_NP = {np.dtype(v): k for k, v in _DTYPES.items()}
# gfn_param_type
_F64, _I64, _F32, _I32 = 1, 2, 3, 4


class _Object(ctypes.Structure):
    _fields_ = [("hi", ctypes.c_uint64), ("lo", ctypes.c_uint64)]


class _Function(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32)]


class _Future(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64)]


class _Scalar(ctypes.Union):
    _fields_ = [("f64", ctypes.c_double), ("i64", ctypes.c_int64),
                ("f32", ctypes.c_float), ("i32", ctypes.c_int32)]


class _View(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("size", ctypes.c_size_t),
                ("dtype", ctypes.c_int), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int64 * MAX_DIMS)]


class _Invocation(ctypes.Structure):
    _fields_ = [("fn", _Function), ("n_inputs", ctypes.c_size_t),
                ("inputs", ctypes.POINTER(_Object)),
                ("n_params", ctypes.c_size_t),
                ("params", ctypes.POINTER(_Scalar)),
                ("callback", ctypes.c_void_p),
                ("callback_arg", ctypes.c_void_p),
                ("devices", ctypes.c_uint64), ("priority", ctypes.c_int32),
                ("deadline_ns", ctypes.c_uint64),
                ("tenant", ctypes.c_uint32)]


class _ClientView(ctypes.Structure):
    _fields_ = [("view", _View), ("obj", _Object), ("mapped", ctypes.c_int)]


class _Info(ctypes.Structure):
    _fields_ = [("server", ctypes.c_char * 32), ("version", ctypes.c_char * 32),
                ("protocol", ctypes.c_uint),
                ("store_socket", ctypes.c_char * 256),
                ("inline_max", ctypes.c_uint64),
                ("max_message", ctypes.c_uint64)]


class _Device(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 128), ("backend", ctypes.c_uint),
                ("backend_index", ctypes.c_int),
                ("memory_bytes", ctypes.c_uint64),
                ("compute_units", ctypes.c_uint),
                ("pci_bus_id", ctypes.c_char * 32), ("numa_node", ctypes.c_int)]


class _FnInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 64), ("kind", ctypes.c_char * 16),
                ("fn", _Function), ("n_inputs", ctypes.c_uint),
                ("n_outputs", ctypes.c_uint), ("n_params", ctypes.c_uint),
                ("param_types", ctypes.c_int * MAX_PARAMS)]


_STAT_NAMES = ["submitted", "completed", "failed", "canceled",
               "rejected_busy", "queued", "running", "host_allocs",
               "context_creates", "kernel_compiles", "pinnings",
               "input_copies", "store_objects", "store_bytes",
               "store_evictions", "kernel_cache_hits", "device_allocs",
               "device_resets", "devices_retired"]


class _Stats(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in _STAT_NAMES]


class _DaemonStats(ctypes.Structure):
    _fields_ = [("requests", ctypes.c_uint64),
                ("bad_requests", ctypes.c_uint64),
                ("connections", ctypes.c_uint64),
                ("sessions", ctypes.c_uint64), ("inflight", ctypes.c_int64),
                ("draining", ctypes.c_uint64),
                ("held_objects", ctypes.c_uint64),
                ("held_futures", ctypes.c_uint64)]


def _load():
    path = os.environ.get("GFN_CLIENT_LIB") or \
        ctypes.util.find_library("gfn_client")
    if not path:
        raise OSError("libgfn_client not found: set GFN_CLIENT_LIB")
    lib = ctypes.CDLL(path)
    lib.gfn_client_error_detail.restype = ctypes.c_char_p
    lib.gfn_status_name.restype = ctypes.c_char_p
    lib.gfn_status_name.argtypes = [ctypes.c_int]
    lib.gfn_client_close.argtypes = [ctypes.c_void_p]
    lib.gfn_client_close.restype = None
    lib.gfn_client_view_free.argtypes = [ctypes.POINTER(_View)]
    lib.gfn_client_view_free.restype = None
    lib.gfn_client_view_release.argtypes = [ctypes.c_void_p,
                                            ctypes.POINTER(_ClientView)]
    lib.gfn_client_view_release.restype = None
    return lib


_lib = None


def _L():
    global _lib
    if _lib is None:
        _lib = _load()
    return _lib


class GfnError(Exception):
    """A gfn call failed: .status (int), .name ("GFN_EINVAL"), .detail."""

    def __init__(self, status, what):
        self.status = status
        self.name = _L().gfn_status_name(status).decode()
        self.detail = _L().gfn_client_error_detail().decode(errors="replace")
        super().__init__(f"{what}: {self.detail} ({self.name})")


def _check(status, what):
    if status != 0:
        raise GfnError(status, what)


class ObjectId(tuple):
    """An object id (hi, lo)."""

    def _c(self):
        return _Object(self[0], self[1])


class _Buffer:
    """Owns what the C client gave for arrays returned by get(): the store
    reference of a mapped object (zero copy) or the copy that arrived
    inline. Keeps the Client open while it lives."""

    def __init__(self, client, cview):
        self.client, self.cview = client, cview
        self.mapped = bool(cview.mapped)
        with client._lock:
            client._live += 1

    def __del__(self):
        if _lib is None or not self.cview.view.data:
            return
        _lib.gfn_client_view_release(self.client._h, ctypes.byref(self.cview))
        self.client._view_gone()


def _view_array(client, cview):
    view = cview.view
    dt = _DTYPES.get(view.dtype)
    shape = tuple(view.shape[i] for i in range(view.ndim))
    if dt is None or view.size == 0:
        _L().gfn_client_view_release(client._h, ctypes.byref(cview))
        if dt is None:
            raise TypeError(f"dtype {view.dtype} has no numpy equivalent")
        return np.zeros(shape, dtype=dt)
    raw = (ctypes.c_char * view.size).from_address(view.data)
    # numpy keeps raw alive as the array's base, and raw keeps the owner
    # that gives the bytes back (store reference or copy) when the last
    # view of them goes.
    raw._gfn_owner = _Buffer(client, cview)
    arr = np.frombuffer(raw, dtype=dt).reshape(shape)
    arr.flags.writeable = False
    return arr


def mapped(array):
    """True when array's bytes lie in the shared store (zero copy): the
    owner behind a get() result, found through its .base chain."""
    base = array
    while base is not None and not hasattr(base, "_gfn_owner"):
        base = getattr(base, "base", None)
    return base is not None and base._gfn_owner.mapped


class Future:
    """An invocation in flight; the connection owns it until release()."""

    def __init__(self, client, fut):
        self._c, self._f = client, fut

    def wait(self, timeout=None):
        """Wait (seconds, None: forever); raises GfnError if it failed."""
        ns = -1 if timeout is None else int(timeout * 1e9)
        _check(_L().gfn_client_future_wait(self._c._h, self._f,
                                           ctypes.c_int64(ns)), "wait")

    def outputs(self):
        outs = (_Object * MAX_OUTPUTS)()
        n = ctypes.c_size_t()
        _check(_L().gfn_client_future_outputs(self._c._h, self._f, outs,
                                              MAX_OUTPUTS, ctypes.byref(n)),
               "outputs")
        return [ObjectId((outs[i].hi, outs[i].lo)) for i in range(n.value)]

    def cancel(self):
        _check(_L().gfn_client_future_cancel(self._c._h, self._f), "cancel")

    def release(self):
        _check(_L().gfn_client_future_release(self._c._h, self._f),
               "future_release")


class Client:
    """A connection to gfnd. Usable as a context manager."""

    def __init__(self, url=None):
        url = url or os.environ.get("GFN_URL", "ipc:///run/gfn/gfnd.sock")
        h = ctypes.c_void_p()
        _check(_L().gfn_client_connect(url.encode(), ctypes.byref(h)), url)
        self._h = h
        self._fns = None
        self._live = 0          # arrays from get() not yet collected
        self._closing = False
        self._lock = threading.RLock()  # (a __del__ may run inside)

    def close(self):
        """Close the connection; with arrays from get() still alive, once
        the last of them goes (closing unmaps the store they may lie in)."""
        with self._lock:
            self._closing = True
            if self._h and self._live == 0:
                _L().gfn_client_close(self._h)
                self._h = None

    def _view_gone(self):
        with self._lock:
            self._live -= 1
            if self._closing and self._live == 0:
                self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def hello(self):
        i = _Info()
        _check(_L().gfn_client_hello(self._h, ctypes.byref(i)), "hello")
        return {"server": i.server.decode(), "version": i.version.decode(),
                "protocol": i.protocol,
                "store_socket": i.store_socket.decode(),
                "inline_max": i.inline_max, "max_message": i.max_message}

    def devices(self):
        d = (_Device * 64)()
        n = ctypes.c_size_t()
        _check(_L().gfn_client_devices(self._h, d, 64, ctypes.byref(n)),
               "devices")
        back = {1: "cpu", 2: "opencl", 4: "cuda"}
        return [{"name": d[i].name.decode(),
                 "backend": back.get(d[i].backend, "?"),
                 "memory_bytes": d[i].memory_bytes,
                 "compute_units": d[i].compute_units}
                for i in range(min(n.value, 64))]

    def functions(self):
        f = (_FnInfo * 256)()
        n = ctypes.c_size_t()
        _check(_L().gfn_client_functions(self._h, f, 256, ctypes.byref(n)),
               "functions")
        self._fns = {f[i].name.decode(): f[i] for i in range(min(n.value, 256))}
        return [{"name": k, "kind": v.kind.decode(), "id": v.fn.id,
                 "n_inputs": v.n_inputs, "n_outputs": v.n_outputs,
                 "n_params": v.n_params} for k, v in self._fns.items()]

    def register_builtin(self, name):
        fn = _Function()
        _check(_L().gfn_client_register_builtin(self._h, name.encode(),
                                                ctypes.byref(fn)), "register")
        self._fns = None
        return fn.id

    def put(self, array):
        """Store a numpy array; the connection owns the reference."""
        a = np.ascontiguousarray(array)
        dt = _FROM_NP.get(a.dtype)
        if dt is None:
            raise TypeError(f"dtype {a.dtype} is not supported by gfn")
        shape = (ctypes.c_int64 * MAX_DIMS)(*a.shape)
        o = _Object()
        _check(_L().gfn_client_put(
            self._h, dt, a.ndim, shape, a.ctypes.data_as(ctypes.c_void_p),
            ctypes.c_size_t(a.nbytes), ctypes.byref(o)), "put")
        return ObjectId((o.hi, o.lo))

    def get(self, obj):
        """A read-only numpy view of the object's bytes. An object larger
        than the daemon's inline_max that is this process's (outputs of its
        invocations) is a view straight into the shared store mapping: no
        copy at all (gfn_client.mapped(array) says so). Smaller ones are
        one copy, made by the C client when they arrive."""
        v = _ClientView()
        _check(_L().gfn_client_object_read(self._h, obj._c(),
                                           ctypes.byref(v)), "get")
        return _view_array(self, v)

    def release(self, obj):
        _check(_L().gfn_client_object_release(self._h, obj._c()), "release")

    def _fn(self, name):
        if self._fns is None or name not in self._fns:
            self.functions()
        if name not in self._fns:
            raise GfnError(-4, f"no function named {name!r}")
        return self._fns[name]

    def invoke(self, name, inputs, params=(), devices=0):
        """Start name on inputs (arrays or ObjectIds); returns a Future."""
        info = self._fn(name)
        ids = [x if isinstance(x, ObjectId) else self.put(x) for x in inputs]
        objs = (_Object * max(1, len(ids)))(*[i._c() for i in ids])
        pars = (_Scalar * MAX_PARAMS)()
        for i, p in enumerate(params):
            t = info.param_types[i] if i < info.n_params else _F64
            if t == _F32:
                pars[i].f32 = p
            elif t == _I64:
                pars[i].i64 = int(p)
            elif t == _I32:
                pars[i].i32 = int(p)
            else:
                pars[i].f64 = p
        inv = _Invocation(info.fn, len(ids), objs, len(params), pars, None,
                          None, devices)
        f = _Future()
        _check(_L().gfn_client_invoke(self._h, ctypes.byref(inv),
                                      ctypes.byref(f)), "invoke")
        return Future(self, f)

    def call(self, name, *inputs, params=()):
        """Invoke, wait, return the outputs as numpy arrays."""
        fut = self.invoke(name, inputs, params)
        try:
            fut.wait()
            outs = fut.outputs()
        finally:
            fut.release()
        arrays = [self.get(o) for o in outs]
        for o in outs:
            self.release(o)
        return arrays

    def stats(self):
        s, d = _Stats(), _DaemonStats()
        _check(_L().gfn_client_stats(self._h, ctypes.byref(s),
                                     ctypes.byref(d)), "stats")
        out = {n: getattr(s, n) for n in _STAT_NAMES}
        out.update({n: getattr(d, n) for n, _ in _DaemonStats._fields_})
        return out
