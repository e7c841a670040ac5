"""The Python peers for `npm run bench`: batch scoring as a user of Azure ML batch endpoints would write
it (onnxruntime + Pillow + numpy in a plain loop over mini-batches), on the same model, the same JPEGs
and the same preprocessing as inferctl (resize to the model's input, RGB, (x * scale - mean) / std).
Two ways to open an image:
  naive  Image.open -> convert("RGB") -> resize: the whole JPEG is decoded at full size first;
  draft  Image.draft("RGB", size) first, so libjpeg decodes at 1/2, 1/4 or 1/8 scale (DCT scaling)
         while staying at least the model's size: what a careful user writes for camera-sized photos.

  script the benchmark's batch scoring script (batch_score.py: init(), run(mini_batch)) called in a plain
         loop, as its author would test it by hand; --model is then the folder holding the model
         (AZUREML_MODEL_DIR).

With --processes N (N > 1), N worker processes open and preprocess the images (multiprocessing, in order,
as a torch DataLoader with num_workers=N does) while the main process runs inference.

With --decode-only, no inference and no output: each image is opened and preprocessed in turn, in this one
process, and the line also gives decode_core_ms_per_image (process CPU time per image): Pillow's D, which
bounds a peer with N decode processes at N / D images a second.

    python peer_score.py --model M.onnx --images DIR --batch-size 32 --output predictions.jsonl [--mode draft] [--processes 2]
    python peer_score.py --model M.onnx --images DIR --mode draft --decode-only --output unused
    python peer_score.py --mode script --script batch_score.py --model DIR --images DIR --batch-size 32 --output F
Prints one JSON line: {"items": N, "seconds": S, "items_per_second": R, "peak_rss_mb": M}.
"""
import argparse
import functools
import importlib.util
import json
import multiprocessing
import os
import resource
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image


def preprocess_spec(session):
    props = session.get_modelmeta().custom_metadata_map
    spec = json.loads(props["inferctl.preprocess"])
    labels = json.loads(props["inferctl.labels"])
    return spec, labels


def load(path, spec, draft):
    with Image.open(path) as img:
        if draft:
            img.draft("RGB", (spec["width"], spec["height"]))
        img = img.convert("RGB").resize((spec["width"], spec["height"]), Image.BILINEAR)
        x = np.asarray(img, dtype=np.float32) * spec["scale"]
    x = (x - np.array(spec["mean"], dtype=np.float32)) / np.array(spec["std"], dtype=np.float32)
    return x.transpose(2, 0, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--output", required=True)
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--mode", choices=["naive", "draft", "script"], default="naive")
    ap.add_argument("--script")
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--decode-only", action="store_true")
    args = ap.parse_args()
    if args.mode == "script":
        return script_loop(args)

    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    spec, labels = preprocess_spec(session)
    files = sorted(
        os.path.join(args.images, f) for f in os.listdir(args.images) if not f.startswith(".")
    )
    input_name = session.get_inputs()[0].name

    opener = functools.partial(load, spec=spec, draft=args.mode == "draft")
    if args.decode_only:
        return decode_only(files, opener)
    pool = multiprocessing.Pool(args.processes) if args.processes > 1 else None
    started = time.perf_counter()
    # Decoded images, in order: in the worker processes (ahead of inference) or here, one by one.
    decoded = pool.imap(opener, files, chunksize=4) if pool else map(opener, files)
    with open(args.output, "w") as out:
        for i in range(0, len(files), args.batch_size):
            chunk = files[i : i + args.batch_size]
            batch = np.stack([next(decoded) for _ in chunk])
            probs = session.run(None, {input_name: batch})[0]
            for j, p in enumerate(probs):
                top = np.argsort(-p)[: args.top_k]
                row = {"index": i + j, "path": chunk[j], "predictions": [{"label": labels[k], "score": float(p[k])} for k in top]}
                out.write(json.dumps(row) + "\n")
    seconds = time.perf_counter() - started
    if pool:
        pool.close()
        pool.join()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"items": len(files), "seconds": seconds, "items_per_second": len(files) / seconds, "peak_rss_mb": peak_kb / 1024}))


def decode_only(files, opener):
    opener(files[0])  # warm-up: libraries loaded, as the other cases load them before timing
    cpu = time.process_time()
    started = time.perf_counter()
    for f in files:
        opener(f)
    seconds = time.perf_counter() - started
    core_ms = (time.process_time() - cpu) * 1000 / len(files)
    print(json.dumps({"items": len(files), "seconds": seconds, "items_per_second": len(files) / seconds, "decode_core_ms_per_image": core_ms, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def script_loop(args):
    os.environ["AZUREML_MODEL_DIR"] = args.model
    spec = importlib.util.spec_from_file_location("batch_score", args.script)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    files = sorted(os.path.join(args.images, f) for f in os.listdir(args.images) if not f.startswith("."))
    script.init()  # before timing, as inferctl's warm-up job starts its process before the timed job
    started = time.perf_counter()
    cpu_started = time.process_time()
    with open(args.output, "w") as out:
        for i in range(0, len(files), args.batch_size):
            chunk = files[i : i + args.batch_size]
            for j, row in enumerate(script.run(chunk)):
                out.write(json.dumps({"index": i + j, "path": chunk[j], "result": row}) + "\n")
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started  # every thread of this process: what the loop costs
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"items": len(files), "seconds": seconds, "items_per_second": len(files) / seconds, "peak_rss_mb": peak_kb / 1024, "cpu_seconds": cpu_seconds}))


if __name__ == "__main__":
    sys.exit(main())
