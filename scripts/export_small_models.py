#!/usr/bin/env python3
"""Make the small test models and their numpy reference outputs.

Writes, under tests/models/ (all small, committed; tests only read them):
  cnn/    conv2d, relu, maxpool2d, conv2d, gelu, avgpool2d, flatten, matmul,
          bias_add, softmax and argmax over 8x8 digits images; weights in
          F32, F16 and BF16
  embed/  embedding, layernorm, tanh, flatten, matmul (transpose_b),
          bias_add, sigmoid and argmax over token ids
Each directory has model.json, model.safetensors, input.bin (f32 or i32,
little-endian, batch first) and ref_<output>.bin: the outputs numpy
computes in float64 with its own straightforward code (explicit loops over
windows, not im2col), from the weights as gfn reads them (F16/BF16 values
rounded the way the file stores them). Seeded: reruns give the same files.
"""
import json
import os
import struct
import sys

import numpy as np

SEED = 11
DT = {"F32": "<f4", "F16": "<f2"}


def bf16_bits(a):
    """float32 -> bfloat16 bits, round to nearest even."""
    u = np.ascontiguousarray(a, dtype="<f4").view("<u4").astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype("<u2")


def stored(a, dtype):
    """The values a file of dtype holds for a, as float64."""
    if dtype == "BF16":
        return (bf16_bits(a).astype("<u4") << 16).view("<f4").astype(np.float64)
    return a.astype(DT[dtype]).astype(np.float64)


def safetensors_write(path, tensors):
    header, blobs, off = {}, [], 0
    for name, (arr, dtype) in tensors.items():
        raw = (bf16_bits(arr) if dtype == "BF16"
               else np.ascontiguousarray(arr, dtype=DT[dtype])).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hdr = json.dumps(header, separators=(",", ":")).encode()
    hdr += b" " * (-len(hdr) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr + b"".join(blobs))


def write_model(out, manifest, tensors, inp, refs):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "model.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    safetensors_write(os.path.join(out, "model.safetensors"), tensors)
    inp.tofile(os.path.join(out, "input.bin"))
    for name, arr in refs.items():
        arr.tofile(os.path.join(out, f"ref_{name}.bin"))


# ---- numpy references: direct loops, float64 ----------------------------

def conv2d(x, w, b, stride, pad):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    y = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            y[:, :, i, j] = np.tensordot(win, w, axes=([1, 2, 3], [1, 2, 3]))
    return y + b[None, :, None, None]


def pool(x, k, stride, fn):
    n, c, h, w = x.shape
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            y[:, :, i, j] = fn(x[:, :, i * stride:i * stride + k,
                                 j * stride:j * stride + k], axis=(2, 3))
    return y


def gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def layernorm(x, g, b, eps):
    m = x.mean(axis=-1, keepdims=True)
    v = ((x - m) ** 2).mean(axis=-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


def cnn(out, rng):
    from sklearn.datasets import load_digits  # only for realistic inputs
    x = (load_digits().images[:32] / 16.0).astype(np.float32)[:, None]
    t = {"c1.w": (rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32), "F32"),
         "c1.b": (rng.normal(0, 0.1, 4).astype(np.float32), "F32"),
         "c2.w": (rng.normal(0, 0.3, (6, 4, 3, 3)).astype(np.float32), "F16"),
         "c2.b": (rng.normal(0, 0.1, 6).astype(np.float32), "BF16"),
         "fc.w": (rng.normal(0, 0.4, (24, 10)).astype(np.float32), "BF16"),
         "fc.b": (rng.normal(0, 0.1, 10).astype(np.float32), "F32")}
    v = {k: stored(a, d) for k, (a, d) in t.items()}
    h = np.maximum(conv2d(x.astype(np.float64), v["c1.w"], v["c1.b"], 1, 1), 0)
    h = pool(h, 2, 2, np.max)                     # 4 x 4 x 4
    h = gelu(conv2d(h, v["c2.w"], v["c2.b"], 1, 1))
    h = pool(h, 2, 2, np.mean)                    # 6 x 2 x 2
    h = h.reshape(len(x), -1) @ v["fc.w"] + v["fc.b"]
    probs = softmax(h)
    nodes = [
        {"op": "conv2d", "inputs": ["img", "c1.w", "c1.b"], "pad": 1,
         "output": "c1"},
        {"op": "relu", "inputs": ["c1"], "output": "r1"},
        {"op": "maxpool2d", "inputs": ["r1"], "kernel": 2, "output": "p1"},
        {"op": "conv2d", "inputs": ["p1", "c2.w"], "pad": 1, "stride": 1,
         "output": "c2"},
        {"op": "bias_add", "inputs": ["c2", "c2.b"], "axis": 0,
         "output": "c2b"},
        {"op": "gelu", "inputs": ["c2b"], "output": "g2"},
        {"op": "avgpool2d", "inputs": ["g2"], "kernel": 2, "stride": 2,
         "output": "p2"},
        {"op": "flatten", "inputs": ["p2"], "output": "f"},
        {"op": "matmul", "inputs": ["f", "fc.w"], "output": "mm"},
        {"op": "bias_add", "inputs": ["mm", "fc.b"], "output": "logits"},
        {"op": "softmax", "inputs": ["logits"], "output": "probs"},
        {"op": "argmax", "inputs": ["probs"], "output": "label"}]
    man = {"format": "gfn-model/1", "weights": "model.safetensors",
           "inputs": [{"name": "img", "dtype": "f32",
                       "shape": ["batch", 1, 8, 8]}],
           "outputs": ["probs", "label"], "nodes": nodes}
    write_model(out, man, t, x.astype("<f4"),
                {"probs": probs.astype("<f4"),
                 "label": probs.argmax(axis=1).astype("<i4")})


def embed(out, rng):
    ids = rng.integers(0, 16, (20, 4)).astype("<i4")
    t = {"tok": (rng.normal(0, 1, (16, 8)).astype(np.float32), "F16"),
         "ln.g": (rng.normal(1, 0.1, 8).astype(np.float32), "F32"),
         "ln.b": (rng.normal(0, 0.1, 8).astype(np.float32), "F32"),
         "head.w": (rng.normal(0, 0.3, (3, 32)).astype(np.float32), "F32"),
         "head.b": (rng.normal(0, 0.1, 3).astype(np.float32), "F32")}
    v = {k: stored(a, d) for k, (a, d) in t.items()}
    h = np.tanh(layernorm(v["tok"][ids], v["ln.g"], v["ln.b"], 1e-5))
    h = h.reshape(len(ids), -1) @ v["head.w"].T + v["head.b"]
    score = 1 / (1 + np.exp(-h))
    nodes = [
        {"op": "embedding", "inputs": ["ids", "tok"], "output": "e"},
        {"op": "layernorm", "inputs": ["e", "ln.g", "ln.b"], "eps": 1e-5,
         "output": "n"},
        {"op": "tanh", "inputs": ["n"], "output": "t"},
        {"op": "flatten", "inputs": ["t"], "output": "f"},
        {"op": "matmul", "inputs": ["f", "head.w"], "transpose_b": True,
         "output": "mm"},
        {"op": "bias_add", "inputs": ["mm", "head.b"], "output": "z"},
        {"op": "sigmoid", "inputs": ["z"], "output": "score"},
        {"op": "argmax", "inputs": ["score"], "output": "best"}]
    man = {"format": "gfn-model/1", "weights": "model.safetensors",
           "inputs": [{"name": "ids", "dtype": "i32", "shape": ["batch", 4]}],
           "outputs": ["score", "best"], "nodes": nodes}
    write_model(out, man, t, ids,
                {"score": score.astype("<f4"),
                 "best": score.argmax(axis=1).astype("<i4")})


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "tests", "models")
    rng = np.random.default_rng(SEED)
    cnn(os.path.join(root, "cnn"), rng)
    embed(os.path.join(root, "embed"), rng)
    print(f"small models -> {root}")


if __name__ == "__main__":
    main()
