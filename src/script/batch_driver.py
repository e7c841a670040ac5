"""inferctl's batch driver: calls a user's Azure ML batch scoring script for the TypeScript shard runner.

Why this file exists (docs/batch-scripts.md, "Why a driver of our own"): Azure ML's own batch driver
(ParallelRunStep, batch endpoints) is not on PyPI (azureml-pipeline-steps holds only the step's
configuration classes; the driver ships inside the service's run image), and azureml-inference-server-http
calls run() with a request body, not a list of files. So this is the least that can call run(mini_batch):
import the entry script, call init() once, then run(list_of_paths) per request, and answer over a pipe.
Everything else (batching, retries, timeouts, fencing, output) is TypeScript's (src/script/batch-process.ts).

Protocol: frames of a 4-byte big-endian length and UTF-8 JSON; requests on fd 3, answers on fd 4 (the
script's own prints go to stdout/stderr and cannot corrupt it).
  -> {"ready": true} | {"initError": "<last line>", "traceback": "..."}      once, after init()
  <- {"paths": ["/a.jpg", ...]}
  -> {"rows": [...]} | {"error": "<last line>", "traceback": "..."}          per request
"""

import ctypes
import importlib.util
import json
import os
import signal
import struct
import sys
import traceback


def die_with_parent():
    try:  # Linux: the worker's death (SIGKILL included) ends this process too
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - elsewhere, a closed fd 3 ends it at its next read
        pass


def read_frame(fd):
    head = read_exactly(fd, 4)
    return None if head is None else json.loads(read_exactly(fd, struct.unpack(">I", head)[0]) or b"null")


def read_exactly(fd, n):
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def write_frame(fd, message):
    body = json.dumps(message).encode("utf-8")
    data = struct.pack(">I", len(body)) + body
    while data:
        data = data[os.write(fd, data):]


def plain(value):
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


def rows_of(result):
    if hasattr(result, "to_json") and hasattr(result, "columns"):  # a pandas DataFrame, one row per input
        return json.loads(result.to_json(orient="records"))
    if isinstance(result, (list, tuple)):
        return [plain(row) for row in result]
    raise TypeError(f"run() returned {type(result).__name__}; return a list or a pandas DataFrame, one row per input")


def failure(exc, key):
    return {key: traceback.format_exception_only(type(exc), exc)[-1].strip(), "traceback": traceback.format_exc()}


def main():
    die_with_parent()
    entry = sys.argv[1]
    sys.path.insert(0, os.path.dirname(entry))
    try:
        spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(entry))[0], entry)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        if hasattr(module, "init"):
            module.init()
        run = module.run
    except BaseException as exc:  # noqa: BLE001 - the script's own failure, reported whole
        write_frame(4, failure(exc, "initError"))
        return
    write_frame(4, {"ready": True})
    while True:
        request = read_frame(3)
        if request is None:
            return
        try:
            answer = {"rows": rows_of(run(list(request["paths"])))}
        except Exception as exc:  # noqa: BLE001 - run() raising fails this mini-batch only
            answer = failure(exc, "error")
        write_frame(4, answer)


if __name__ == "__main__":
    main()
