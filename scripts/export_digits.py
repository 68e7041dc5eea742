#!/usr/bin/env python3
"""Train the digits MLP with scikit-learn and export it as a gfn model.

Writes tests/models/digits/ (all small, committed):
  model.json          the graph manifest gfn_function_register_model() reads
  model.safetensors   the weights (f32), written by safetensors_write() below
  test_x.f32          the held-out split, n x 64 little-endian f32
  test_y.i32          its labels, n little-endian i32
  ref_proba.f32       scikit-learn's predict_proba on test_x, n x 10 f32
  meta.json           sizes, accuracy and versions, for the test and people

Run once by hand (needs numpy and scikit-learn); tests only read the files.
The split and the training are seeded, so a rerun with the same library
versions gives the same files.
"""
import json
import os
import struct
import sys

import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

SEED = 7


def safetensors_write(path, tensors):
    """The safetensors layout, written here so the reader is checked
    against the format rather than against a library we also read with."""
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr, dtype="<f4")
        raw = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"source": "scripts/export_digits.py"}
    hdr = json.dumps(header, separators=(",", ":")).encode()
    hdr += b" " * (-len(hdr) % 8)  # spec: pad with spaces to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)))
        f.write(hdr)
        for b in blobs:
            f.write(b)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "tests", "models", "digits")
    os.makedirs(out, exist_ok=True)
    digits = load_digits()
    # Pixels 0..16 scaled to 0..1; float32 so gfn sees the same inputs.
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25,
                                          random_state=SEED, stratify=y)
    clf = MLPClassifier(hidden_layer_sizes=(64, 32), activation="relu",
                        max_iter=400, random_state=SEED)
    clf.fit(xtr, ytr)
    proba = clf.predict_proba(xte)
    acc = float((clf.predict(xte) == yte).mean())

    tensors, nodes, cur = {}, [], "x"
    nl = len(clf.coefs_)
    for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        tensors[f"coefs_{i}"] = w      # [in, out]: x @ W
        tensors[f"intercepts_{i}"] = b
        nodes.append({"op": "matmul", "inputs": [cur, f"coefs_{i}"],
                      "output": f"mm{i}"})
        nodes.append({"op": "bias_add", "inputs": [f"mm{i}", f"intercepts_{i}"],
                      "output": f"z{i}"})
        act = "relu" if i < nl - 1 else "softmax"
        cur = f"a{i}" if i < nl - 1 else "probs"
        nodes.append({"op": act, "inputs": [f"z{i}"], "output": cur})
    manifest = {"format": "gfn-model/1", "weights": "model.safetensors",
                "inputs": [{"name": "x", "dtype": "f32",
                            "shape": ["batch", 64]}],
                "outputs": ["probs"], "nodes": nodes}
    with open(os.path.join(out, "model.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    safetensors_write(os.path.join(out, "model.safetensors"), tensors)
    xte.astype("<f4").tofile(os.path.join(out, "test_x.f32"))
    yte.astype("<i4").tofile(os.path.join(out, "test_y.i32"))
    proba.astype("<f4").tofile(os.path.join(out, "ref_proba.f32"))
    meta = {"n_test": int(len(yte)), "n_features": 64, "n_classes": 10,
            "sklearn_accuracy": acc, "seed": SEED,
            "sklearn": sklearn.__version__, "numpy": np.__version__}
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"digits: {len(yte)} held out, accuracy {acc:.4f} -> {out}")


if __name__ == "__main__":
    main()
