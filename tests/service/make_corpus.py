#!/usr/bin/env python3
"""Writes the malformed-message corpus of gfnd's decoder (corpus/).

Each file is one request as it would arrive on the wire. All of them are
wrong in some way, and gfnd must answer every one with an error reply
(test_gfnd_robust replays them against a real daemon; fuzz_gfnd_replay
runs them through the decoder in-process). A tiny msgpack packer is
inlined so that the corpus needs nothing beyond Python itself.
"""
import os
import struct
import sys


def pk(v):
    if v is None:
        return b"\xc0"
    if isinstance(v, bool):
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        return b"\xd9" + bytes([len(b)]) + b if len(b) < 256 else \
            b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(v, bytes):
        return b"\xc6" + struct.pack(">I", len(v)) + v
    if isinstance(v, list):
        return b"\xdd" + struct.pack(">I", len(v)) + b"".join(map(pk, v))
    if isinstance(v, dict):
        return b"\xdf" + struct.pack(">I", len(v)) + b"".join(
            pk(k) + pk(x) for k, x in v.items())
    raise TypeError(v)


def req(op, **kw):
    d = {"v": 1, "op": op}
    d.update(kw)
    return pk(d)


CASES = {
    "empty": b"",
    "never_used_byte": b"\xc1",
    "garbage": bytes(range(256)) * 3,
    "array_not_map": pk([1, "hello"]),
    "int_not_map": pk(7),
    "two_maps": req("hello") + req("hello"),
    "truncated_map": req("hello")[:-2],
    "map_claims_4g": b"\xdf\xff\xff\xff\xff",
    "array_claims_4g": (b"\x83\xa1v\x01\xa2op\xa6invoke"
                        b"\xa6inputs\xdd\xff\xff\xff\xff"),
    "str_claims_4g": b"\x81\xdb\xff\xff\xff\xffv",
    "bin_claims_4g": b"\x81\xa1v\xc6\xff\xff\xff\xff",
    "deep_nesting": b"\x91" * 5000 + b"\xc0",
    "no_version": pk({"op": "hello"}),
    "version_2": pk({"v": 2, "op": "hello"}),
    "version_str": pk({"v": "1", "op": "hello"}),
    "op_int": pk({"v": 1, "op": 5}),
    "op_missing": pk({"v": 1}),
    "op_unknown": req("frobnicate"),
    "op_long": req("x" * 300),
    "put_no_data": req("put", dtype=1, shape=[4]),
    "put_bad_dtype": req("put", dtype=99, shape=[1], data=b"\0" * 4),
    "put_neg_shape": req("put", dtype=1, shape=[-1], data=b""),
    "put_overflow": req("put", dtype=1, shape=[2**62, 2**62], data=b""),
    "put_ndim_9": req("put", dtype=1, shape=[1] * 9, data=b"\0" * 4),
    "put_short": req("put", dtype=1, shape=[4], data=b"\0" * 3),
    "put_shape_str": req("put", dtype=1, shape="4", data=b"\0" * 16),
    "get_bad_obj": req("get", obj=[1]),
    "get_obj_str": req("get", obj="x"),
    "get_unknown": req("get", obj=[1, 2]),
    "release_unknown": req("release", obj=[3, 4]),
    "invoke_no_fn": req("invoke", inputs=[]),
    "invoke_bad_fn": req("invoke", fn=2**40, inputs=[]),
    "invoke_inputs_map": req("invoke", fn=1, inputs={"a": 1}),
    "invoke_17_inputs": req("invoke", fn=1, inputs=[[1, 2]] * 17),
    "invoke_bad_param": req("invoke", fn=1, inputs=[], params=["x"]),
    "wait_unknown": req("wait", future=77, timeout_ms=0),
    "wait_bad_timeout": req("wait", future=77, timeout_ms="x"),
    "cancel_unknown": req("cancel", future=1),
    "register_no_kind": req("register", name="f"),
    "register_bad_kind": req("register", name="f", kind="wasm"),
    "register_opencl_empty": req("register", name="f", kind="opencl"),
    "register_long_name": req("register", name="n" * 200, kind="builtin"),
    "ext_type": b"\x82\xa1v\x01\xa2op\xd4\x01\x00",
}

# Well-formed requests: seeds for the fuzzer (corpus_valid/), so that it
# starts from messages that reach every handler.
VALID = {
    "hello": req("hello"),
    "devices": req("devices"),
    "functions": req("functions"),
    "stats": req("stats"),
    "put_f32": req("put", dtype=1, shape=[4], data=b"\0" * 16),
    "put_scalar": req("put", dtype=2, shape=[], data=b"\0" * 8),
    "get": req("get", obj=[1, 1]),
    "release": req("release", obj=[1, 1]),
    "delete": req("delete", obj=[1, 1]),
    "invoke": req("invoke", fn=1, inputs=[[1, 1], [2, 2]]),
    "invoke_params": req("invoke", fn=2, inputs=[[1, 1]], params=[2.0]),
    "wait": req("wait", future=1, timeout_ms=0),
    "outputs": req("outputs", future=1),
    "cancel": req("cancel", future=1),
    "future_release": req("future_release", future=1),
    "register_builtin": req("register", name="gfn.vadd", kind="builtin"),
    "register_model": req("register", name="m", kind="model", dir="/x"),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in CASES.items():
        with open(os.path.join(out, name + ".msgpack"), "wb") as f:
            f.write(data)
    valid = os.path.join(os.path.dirname(out), "corpus_valid")
    os.makedirs(valid, exist_ok=True)
    for name, data in VALID.items():
        with open(os.path.join(valid, name + ".msgpack"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
