"""Loads a batch job's raw.npy with NumPy, as a user would, and reports what NumPy sees (for
test/interop/npy-numpy.test.ts): shape, dtype, layout, whether np.save would write the same bytes, and
each row's top-k class indices and values (argsort, stable: ties keep class order, like inferctl's top-k).

    python npy_check.py RAW_NPY K
"""
import io
import json
import sys

import numpy as np


def main() -> None:
    raw_path, k = sys.argv[1], int(sys.argv[2])
    raw = np.load(raw_path, allow_pickle=False)
    mapped = np.load(raw_path, mmap_mode="r", allow_pickle=False)
    resaved = io.BytesIO()
    np.save(resaved, raw)
    with open(raw_path, "rb") as f:
        on_disk = f.read()
    rows = []
    for row in raw:
        order = np.argsort(-row, kind="stable")[:k]
        rows.append({
            "argmax": int(np.argmax(row)),
            "max": float(row.max()) if row.size else None,
            "top": [[int(i), float(row[i])] for i in order],
        })
    json.dump({
        "numpy": np.__version__,
        "shape": list(raw.shape),
        "dtype": raw.dtype.str,
        "c_contiguous": bool(raw.flags["C_CONTIGUOUS"]),
        "mmap_equal": bool(np.array_equal(mapped, raw)),
        "resave_identical": resaved.getvalue() == on_disk,
        "finite": bool(np.isfinite(raw).all()),
        "rows": rows,
    }, sys.stdout)


if __name__ == "__main__":
    main()
