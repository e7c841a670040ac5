"""The Open Inference Protocol's real client against an inferctl replica.

Uses NVIDIA's tritonclient.http.InferenceServerClient (what Triton users run) with the deployment's
bearer key. Reads the request from SPEC (a JSON file written by triton-client.test.ts: the model name
and each input's name, datatype, shape and raw little-endian bytes file), then:
  - checks is_server_live / is_server_ready / is_model_ready, server and model metadata;
  - infers four times, binary (the client's default), JSON (binary_data=False for inputs and outputs),
    and binary compressed with gzip and with deflate (request_compression_algorithm), and writes each
    output tensor's bytes to OUT/<mode>/<name>.bin;
  - checks that a request without the key and one with an unknown input fail with the server's message.
Prints one JSON line: what it saw (metadata, each output's datatype and shape, the error messages).
"""

import json
import os
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException, triton_to_np_dtype


def main() -> None:
    url, key_file, spec_file, out_dir = sys.argv[1:5]
    with open(key_file, encoding="utf-8") as f:
        headers = {"Authorization": f"Bearer {f.read().strip()}"}
    with open(spec_file, encoding="utf-8") as f:
        spec = json.load(f)
    model = spec["model"]
    client = httpclient.InferenceServerClient(url=url)
    report = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model, headers=headers),
        "server": client.get_server_metadata(headers=headers),
        "metadata": client.get_model_metadata(model, headers=headers),
        "outputs": {},
    }
    arrays = {}
    for t in spec["inputs"]:
        dtype = triton_to_np_dtype(t["datatype"])
        arrays[t["name"]] = np.fromfile(t["file"], dtype=dtype).reshape(t["shape"])

    # gzip and deflate: binary requests compressed by the client (request_compression_algorithm).
    for mode in ("binary", "json", "gzip", "deflate"):
        binary = mode != "json"
        compression = mode if mode in ("gzip", "deflate") else None
        inputs = []
        for t in spec["inputs"]:
            tensor = httpclient.InferInput(t["name"], t["shape"], t["datatype"])
            tensor.set_data_from_numpy(arrays[t["name"]], binary_data=binary)
            inputs.append(tensor)
        # Binary: no outputs listed, so the client asks for all of them binary (binary_data_output).
        outputs = None if binary else [httpclient.InferRequestedOutput(o, binary_data=False) for o in spec["outputs"]]
        # A copy: the client writes Inference-Header-Content-Length into the dict it is given, and a stale
        # one would describe the next (JSON) request wrongly.
        result = client.infer(
            model,
            inputs,
            outputs=outputs,
            headers=dict(headers),
            request_id=f"interop-{mode}",
            request_compression_algorithm=compression,
        )
        response = result.get_response()
        os.makedirs(os.path.join(out_dir, mode), exist_ok=True)
        seen = {}
        for o in response["outputs"]:
            array = result.as_numpy(o["name"])
            array.tofile(os.path.join(out_dir, mode, o["name"] + ".bin"))
            seen[o["name"]] = {
                "datatype": o["datatype"],
                "shape": list(array.shape),
                "binary": "parameters" in o and "binary_data_size" in o["parameters"],
            }
        report["outputs"][mode] = {"id": response.get("id"), "model_name": response["model_name"], "tensors": seen}

    # One element is enough to be refused (the key is checked before the body is read).
    first = spec["inputs"][0]
    small = np.zeros([1], dtype=triton_to_np_dtype(first["datatype"]))
    try:
        tensor = httpclient.InferInput(first["name"], [1], first["datatype"])
        tensor.set_data_from_numpy(small)
        client.infer(model, [tensor])
        report["no_key_error"] = None
    except InferenceServerException as err:
        report["no_key_error"] = {"status": err.status(), "message": err.message()}
    try:
        tensor = httpclient.InferInput("nope", [1], first["datatype"])
        tensor.set_data_from_numpy(small)
        client.infer(model, [tensor], headers=dict(headers))
        report["bad_input_error"] = None
    except InferenceServerException as err:
        report["bad_input_error"] = {"status": err.status(), "message": err.message()}
    client.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
