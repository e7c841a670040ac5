"""The benchmark's batch scoring script (Azure ML's contract): what inferctl's ONNX path does, written as a
user would: onnxruntime + Pillow (draft mode, as the careful Python peer) + numpy, the preprocessing and
labels read from the model's metadata, top-5 per file. `npm run bench` runs it two ways, side by side:
through `inferctl score --entry-script` (case s) and in a plain Python loop (case l, peer_score.py --mode
script), so the difference is what inferctl costs around the same script. Its own folder is the --source-dir.
"""
import glob
import json
import os

import numpy as np
import onnxruntime as ort
from PIL import Image


def init():
    global session, input_name, spec, labels, mean, std
    (model,) = glob.glob(os.path.join(os.environ["AZUREML_MODEL_DIR"], "*.onnx"))
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    props = session.get_modelmeta().custom_metadata_map
    spec = json.loads(props["inferctl.preprocess"])
    labels = json.loads(props["inferctl.labels"])
    mean = np.array(spec["mean"], dtype=np.float32)
    std = np.array(spec["std"], dtype=np.float32)


def load(path):
    with Image.open(path) as img:
        img.draft("RGB", (spec["width"], spec["height"]))
        img = img.convert("RGB").resize((spec["width"], spec["height"]), Image.BILINEAR)
        x = np.asarray(img, dtype=np.float32) * spec["scale"]
    return ((x - mean) / std).transpose(2, 0, 1)


def run(mini_batch):
    probs = session.run(None, {input_name: np.stack([load(p) for p in mini_batch])})[0]
    rows = []
    for p in probs:
        top = np.argsort(-p)[:5]
        rows.append([{"label": labels[k], "score": float(p[k])} for k in top])
    return rows
