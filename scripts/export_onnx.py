#!/usr/bin/env python3
"""Export gfn model directories to ONNX, for the onnxruntime baseline of
`gfn-bench model` (bench/ort_peer.py imports build() from here).

  export_onnx.py [--models DIR] [--out DIR] [NAME ...]

For each model directory (default: digits and cnn under tests/models/) it
reads model.json and model.safetensors exactly as gfn does (F16 and BF16
weights widened to f32), builds the same graph with the onnx package's
helper functions, runs it with onnxruntime on the committed input fixture
and checks the outputs against the committed reference outputs (which
scikit-learn or numpy made, not gfn). Only a graph that matches is
written, as OUT/NAME.onnx (default OUT: build/onnx).

Needs numpy, onnx and onnxruntime: `make bench-model` makes a venv with
the pinned versions of bench/ort-requirements.txt.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 20  # Gelu (with approximate="tanh") needs 20
IR_VERSION = 9  # read by every onnxruntime from 1.15 on
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MAX_ERR = 1e-4  # |onnxruntime - reference| allowed per output element


# ---- reading a gfn model directory ---------------------------------------

def read_safetensors(path):
    """name -> float32 array, widening F16 and BF16 like gfn's reader."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    data = raw[8 + hlen:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        lo, hi = t["data_offsets"]
        buf = data[lo:hi]
        if t["dtype"] == "F32":
            a = np.frombuffer(buf, dtype="<f4")
        elif t["dtype"] == "F16":
            a = np.frombuffer(buf, dtype="<f2").astype(np.float32)
        elif t["dtype"] == "BF16":
            bits = np.frombuffer(buf, dtype="<u2").astype("<u4") << 16
            a = bits.view("<f4")
        else:
            raise ValueError(f"{path}: dtype {t['dtype']} not supported")
        out[name] = a.reshape(t["shape"]).astype(np.float32)
    return out


# ---- the graph -------------------------------------------------------------

class Graph:
    """Nodes, initializers and the per-row shapes of the values made."""

    def __init__(self, weights):
        self.weights = weights
        self.nodes, self.inits, self.shape = [], {}, {}

    def weight(self, name, array=None):
        """An initializer: a weight as stored, or a reshaped/transposed
        copy of it under a new name."""
        if array is None:
            array = self.weights[name]
        if name not in self.inits:
            self.inits[name] = numpy_helper.from_array(
                np.ascontiguousarray(array, dtype=np.float32), name)
        return name

    def arg(self, name):
        return self.weight(name) if name in self.weights else name

    def add(self, op, inputs, output, **attrs):
        self.nodes.append(helper.make_node(op, inputs, [output], **attrs))


def conv_out(h, k, stride, pad):
    return (h + 2 * pad - k) // stride + 1


def add_matmul(g, n, x, out):
    w = g.weights[n["inputs"][1]]
    if n.get("transpose_b"):
        name = g.weight(n["inputs"][1] + ".T", w.T)
    else:
        name = g.weight(n["inputs"][1])
    g.add("MatMul", [x, name], out)
    g.shape[out] = g.shape[x][:-1] + [w.shape[0 if n.get("transpose_b")
                                              else 1]]


def add_bias(g, n, x, out):
    b = g.weights[n["inputs"][1]]
    row = g.shape[x]
    axis = n.get("axis", -1) % len(row)
    # Broadcast b over the row's axes after `axis`, as gfn's bias_add does.
    shaped = b.reshape([b.size] + [1] * (len(row) - axis - 1))
    g.add("Add", [x, g.weight(n["inputs"][1] + ".bias", shaped)], out)
    g.shape[out] = row


def add_conv(g, n, x, out):
    w = g.weights[n["inputs"][1]]
    stride, pad = n.get("stride", 1), n.get("pad", 0)
    ins = [x, g.weight(n["inputs"][1])]
    if len(n["inputs"]) > 2:
        ins.append(g.weight(n["inputs"][2]))
    g.add("Conv", ins, out, strides=[stride, stride], pads=[pad] * 4,
          kernel_shape=list(w.shape[2:]))
    _, h, wd = g.shape[x]
    g.shape[out] = [w.shape[0], conv_out(h, w.shape[2], stride, pad),
                    conv_out(wd, w.shape[3], stride, pad)]


def add_pool(g, n, x, out):
    k = n["kernel"]
    stride, pad = n.get("stride", k), n.get("pad", 0)
    attrs = dict(kernel_shape=[k, k], strides=[stride, stride],
                 pads=[pad] * 4)
    if n["op"] == "avgpool2d":
        # gfn divides by the whole window, padding included.
        g.add("AveragePool", [x], out, count_include_pad=1, **attrs)
    else:
        g.add("MaxPool", [x], out, **attrs)
    c, h, w = g.shape[x]
    g.shape[out] = [c, conv_out(h, k, stride, pad), conv_out(w, k, stride, pad)]


def add_argmax(g, n, x, out):
    g.add("ArgMax", [x], out + ".i64", axis=-1, keepdims=0,
          select_last_index=0)
    g.add("Cast", [out + ".i64"], out, to=TensorProto.INT32)
    g.shape[out] = g.shape[x][:-1]


def add_node(g, n):
    op, out = n["op"], n["output"]
    x = g.arg(n["inputs"][0])
    unary = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}
    if op == "matmul":
        add_matmul(g, n, x, out)
    elif op == "bias_add":
        add_bias(g, n, x, out)
    elif op in unary:
        g.add(unary[op], [x], out)
        g.shape[out] = g.shape[x]
    elif op == "gelu":
        g.add("Gelu", [x], out, approximate="tanh")  # gfn's form
        g.shape[out] = g.shape[x]
    elif op == "softmax":
        g.add("Softmax", [x], out, axis=-1)
        g.shape[out] = g.shape[x]
    elif op == "layernorm":
        ins = [x] + [g.weight(i) for i in n["inputs"][1:3]]
        g.add("LayerNormalization", ins, out, axis=-1,
              epsilon=float(n.get("eps", 1e-5)))
        g.shape[out] = g.shape[x]
    elif op == "conv2d":
        add_conv(g, n, x, out)
    elif op in ("maxpool2d", "avgpool2d"):
        add_pool(g, n, x, out)
    elif op == "flatten":
        g.add("Flatten", [x], out, axis=1)
        g.shape[out] = [int(np.prod(g.shape[x]))]
    elif op == "embedding":
        table = g.weights[n["inputs"][1]]
        g.add("Gather", [g.weight(n["inputs"][1]), x], out, axis=0)
        g.shape[out] = g.shape[x] + [table.shape[1]]
    elif op == "argmax":
        add_argmax(g, n, x, out)
    else:
        raise ValueError(f"op {op} has no ONNX export")


def onnx_type(dtype):
    return TensorProto.INT32 if dtype == "i32" else TensorProto.FLOAT


def build(model_dir):
    """The ONNX model of a gfn model directory (not yet checked)."""
    with open(os.path.join(model_dir, "model.json")) as f:
        man = json.load(f)
    g = Graph(read_safetensors(os.path.join(model_dir, man["weights"])))
    inputs = []
    for i in man["inputs"]:
        row = list(i["shape"][1:])
        g.shape[i["name"]] = row
        inputs.append(helper.make_tensor_value_info(
            i["name"], onnx_type(i.get("dtype", "f32")), ["batch"] + row))
    for n in man["nodes"]:
        add_node(g, n)
    outputs = []
    for name in man["outputs"]:
        is_int = any(n["output"] == name and n["op"] == "argmax"
                     for n in man["nodes"])
        outputs.append(helper.make_tensor_value_info(
            name, TensorProto.INT32 if is_int else TensorProto.FLOAT,
            ["batch"] + g.shape[name]))
    graph = helper.make_graph(g.nodes, os.path.basename(model_dir), inputs,
                              outputs, list(g.inits.values()))
    model = helper.make_model(graph, producer_name="gfn export_onnx.py",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


# ---- checking against the committed references ----------------------------

def fixtures(model_dir):
    """(input array, {output name: reference array}) of a model dir."""
    with open(os.path.join(model_dir, "model.json")) as f:
        man = json.load(f)
    inp = man["inputs"][0]
    row = [int(d) for d in inp["shape"][1:]]
    dt = "<i4" if inp.get("dtype") == "i32" else "<f4"
    if os.path.exists(os.path.join(model_dir, "test_x.f32")):  # digits
        x = np.fromfile(os.path.join(model_dir, "test_x.f32"), dt)
        refs = {man["outputs"][0]: "ref_proba.f32"}
    else:
        x = np.fromfile(os.path.join(model_dir, "input.bin"), dt)
        refs = {o: f"ref_{o}.bin" for o in man["outputs"]}
    x = x.reshape([-1] + row)
    out = {}
    for name, file in refs.items():
        raw = np.fromfile(os.path.join(model_dir, file), "<f4")
        if name in ("label", "best"):
            raw = raw.view("<i4")
        out[name] = raw.reshape(len(x), -1).squeeze(-1) \
            if raw.size == len(x) else raw.reshape(len(x), -1)
    return man["inputs"][0]["name"], x, out


def check(model, model_dir):
    """Raise unless onnxruntime's outputs match the references."""
    import onnxruntime as ort
    sess = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"])
    name, x, refs = fixtures(model_dir)
    got = dict(zip([o.name for o in sess.get_outputs()],
                   sess.run(None, {name: x})))
    worst = 0.0
    for out, ref in refs.items():
        err = np.abs(got[out].astype(np.float64).reshape(ref.shape) - ref)
        worst = max(worst, float(err.max()))
    if worst > MAX_ERR:
        raise ValueError(f"{model_dir}: onnxruntime differs from the "
                         f"references by {worst:.3g} (> {MAX_ERR})")
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=os.path.join(ROOT, "tests", "models"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "onnx"))
    ap.add_argument("names", nargs="*", default=["digits", "cnn"])
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for name in a.names:
        d = os.path.join(a.models, name)
        model = build(d)
        worst = check(model, d)
        path = os.path.join(a.out, name + ".onnx")
        onnx.save(model, path)
        print(f"{name}: matches the references within {worst:.2g} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
