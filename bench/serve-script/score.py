# bench:serve's realistic script: the how-to's score.py (seed-azureml-gpu-deploy.md) as a user moving it would
# run it today: @rawhttp run(request) takes a POSTed JPEG, Pillow decodes it and resizes it to 224x224,
# onnxruntime scores the ResNet-50-shaped model found by Model.get_model_path, the answer is JSON (ujson).
import io

import numpy as np
import onnxruntime as ort
import ujson
from PIL import Image
from azureml.core.model import Model
from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def init():
    global session
    global input_name

    model_path = Model.get_model_path("resnet50")
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name


@rawhttp
def run(request):
    if request.method == "POST":
        reqBody = request.get_data(False)
        resp = score(reqBody)
        return AMLResponse(resp, 200)
    if request.method == "GET":
        respBody = str.encode("GET is not supported")
        return AMLResponse(respBody, 405)
    return AMLResponse("bad request", 500)


def score(data):
    image = Image.open(io.BytesIO(data)).convert("RGB").resize((224, 224), Image.BILINEAR)
    x = (np.asarray(image, dtype=np.float32) / 255.0 - MEAN) / STD
    x = x.transpose(2, 0, 1)[np.newaxis]
    probs = session.run(None, {input_name: x})[0][0]
    top = np.argsort(probs)[::-1][:5]
    return ujson.dumps({"predictions": [{"class": int(i), "score": float(probs[i])} for i in top]})
