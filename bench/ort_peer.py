#!/usr/bin/env python3
"""onnxruntime's side of `gfn-bench model`: the same models, the same
inputs, the same batch sizes and thread count, timed the same way.

  ort_peer.py --models DIR --threads N [--check]

gfn-bench starts it and talks to it over stdin/stdout, one line each way,
so that the two are measured in turns within one run:

  -> {"ready": true, "onnxruntime": "1.32.0", ...}   first, once
  <- run MODEL BATCH SECONDS
  -> {"inv_per_s": ..., "samples_per_s": ..., "p50_us": ..., "p99_us": ...}
  <- quit   (or end of input)

When onnxruntime or onnx cannot be imported the first line is
{"ready": false, "error": "..."} and it exits 0: gfn-bench then reports
gfn alone. --check exports and checks the models, prints the ready line
and exits (what `make bench-model` runs first).

Each model is exported from its gfn directory by scripts/export_onnx.py
and checked against the committed reference outputs before it is timed.
One call is session.run_with_iobinding() with the input and the outputs
bound once beforehand: the cheapest way Python has to call onnxruntime,
so the baseline pays as little per call as it can.
"""
import argparse
import json
import math
import os
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def percentile(sorted_ns, p):
    """Nearest rank, as bench_percentile_sorted() in bench_util.c."""
    rank = max(1, min(len(sorted_ns), math.ceil(p / 100.0 * len(sorted_ns))))
    return sorted_ns[rank - 1]


class Peer:
    def __init__(self, ort, export, np, models, threads):
        self.ort, self.export, self.np = ort, export, np
        self.models, self.threads = models, threads
        self.sessions, self.bindings = {}, {}

    def session(self, name):
        """The checked model's session, made once."""
        if name not in self.sessions:
            d = os.path.join(self.models, name)
            model = self.export.build(d)
            self.export.check(model, d)
            so = self.ort.SessionOptions()
            so.intra_op_num_threads = self.threads
            so.inter_op_num_threads = 1
            so.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
            so.graph_optimization_level = \
                self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.sessions[name] = self.ort.InferenceSession(
                model.SerializeToString(), so,
                providers=["CPUExecutionProvider"])
        return self.sessions[name]

    def binding(self, name, batch):
        """Input rows 0..batch-1 of the fixture (repeated when it has
        fewer, as gfn-bench does) and outputs, bound once."""
        key = (name, batch)
        if key not in self.bindings:
            sess = self.session(name)
            in_name, x, _ = self.export.fixtures(
                os.path.join(self.models, name))
            rows = self.np.resize(x, (batch,) + x.shape[1:])
            rows = self.np.ascontiguousarray(rows)
            b = sess.io_binding()
            b.bind_cpu_input(in_name, rows)
            for o in sess.get_outputs():
                b.bind_output(o.name, "cpu")
            sess.run_with_iobinding(b)  # outputs allocated once, here
            for o, v in zip(sess.get_outputs(), b.get_outputs()):
                b.bind_ortvalue_output(o.name, v)
            self.bindings[key] = (rows, b)  # rows must outlive b
        return self.bindings[key][1]

    def run(self, name, batch, seconds):
        sess, b = self.session(name), self.binding(name, batch)
        for _ in range(20):  # warm-up, untimed
            sess.run_with_iobinding(b)
        times = []
        clock = time.perf_counter_ns
        t0 = clock()
        end = t0 + int(seconds * 1e9)
        now = t0
        while now < end:
            t = clock()
            sess.run_with_iobinding(b)
            now = clock()
            times.append(now - t)
        wall = (now - t0) / 1e9
        times.sort()
        return {"inv_per_s": len(times) / wall,
                "samples_per_s": len(times) * batch / wall,
                "p50_us": percentile(times, 50) / 1e3,
                "p99_us": percentile(times, 99) / 1e3,
                "calls": len(times)}


def serve(peer):
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        try:
            if words[0] != "run" or len(words) != 4:
                raise ValueError("want: run MODEL BATCH SECONDS")
            say(peer.run(words[1], int(words[2]), float(words[3])))
        except Exception as err:  # reported, and the next line still runs
            say({"error": f"{type(err).__name__}: {err}"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=os.path.join(ROOT, "tests", "models"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    try:
        import numpy as np
        import onnx
        import onnxruntime as ort
        sys.path.insert(0, os.path.join(ROOT, "scripts"))
        import export_onnx
    except ImportError as err:
        say({"ready": False, "error": str(err)})
        return 0
    ort.set_default_logger_severity(3)
    peer = Peer(ort, export_onnx, np, a.models, a.threads)
    try:
        for name in ("digits", "cnn"):
            peer.session(name)
    except Exception as err:
        say({"ready": False, "error": f"{type(err).__name__}: {err}"})
        return 1
    say({"ready": True, "onnxruntime": ort.__version__,
         "onnx": onnx.__version__, "numpy": np.__version__,
         "threads": a.threads})
    if not a.check:
        serve(peer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
