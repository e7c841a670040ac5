"""Reference preprocessing pipelines, in Pillow + NumPy, for inferctl's preset tests.

    python reference_preprocess.py OUT_DIR IMAGE...

For each image and each convention writes OUT_DIR/<image stem>.<preset>.npy (float32, NCHW [1,3,224,224]),
<stem>.torchvision-nearest.npy and -bicubic.npy (the same with those kernels),
and <stem>.torchvision.f16.npy (float16) and <stem>.raw.u8.npy (uint8) for the other input dtypes:
  torchvision  transforms.Resize(256) (bilinear, on the shorter side, longer side int(256 * long / short)),
               CenterCrop(224) (offsets int(round((size - 224) / 2.0))), ToTensor (/255), Normalize(ImageNet)
  keras-caffe  imagenet_utils.preprocess_input(x, mode="caffe"): RGB -> BGR, minus [103.939, 116.779, 123.68]
  keras-tf     mode="tf": x / 127.5 - 1
  keras-torch  mode="torch": x / 255, minus ImageNet mean, over ImageNet std
  raw, unit    x, x / 255
The Keras modes take the image resized (stretched) to 224x224 with bilinear, as
keras.utils.load_img(path, target_size=(224, 224), interpolation="bilinear") does, in channels-last layout;
they are transposed to NCHW here so every file has one layout. Also prints the photo paths it found
when called as `python reference_preprocess.py --photos`.
"""
import json
import os
import sys

import numpy as np
from PIL import Image

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def torchvision(img: Image.Image, resample=Image.BILINEAR) -> np.ndarray:
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = 256, int(256 * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    img = img.resize((new_w, new_h), resample)
    top = int(round((new_h - 224) / 2.0))
    left = int(round((new_w - 224) / 2.0))
    img = img.crop((left, top, left + 224, top + 224))
    x = np.asarray(img, dtype=np.float32) / 255.0  # HWC, RGB
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return x.transpose(2, 0, 1)


def keras(img: Image.Image, mode: str) -> np.ndarray:
    x = np.asarray(img.resize((224, 224), Image.BILINEAR), dtype=np.float32)  # HWC, RGB
    if mode == "caffe":
        x = x[..., ::-1]
        x = x - np.array([103.939, 116.779, 123.68], dtype=np.float32)
    elif mode == "tf":
        x = x / 127.5
        x = x - 1.0
    elif mode == "torch":
        x = x / 255.0
        x = (x - IMAGENET_MEAN) / IMAGENET_STD
    elif mode == "raw":
        pass
    elif mode == "unit":
        x = x / 255.0
    return x.transpose(2, 0, 1)


def photos() -> list:
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    data = os.path.join(os.path.dirname(spec.origin), "data")
    return [os.path.join(data, name) for name in ("chelsea.png", "coffee.png")]


def main() -> None:
    if sys.argv[1:] == ["--photos"]:
        print(json.dumps(photos()))
        return
    out, images = sys.argv[1], sys.argv[2:]
    for path in images:
        img = Image.open(path).convert("RGB")
        stem = os.path.splitext(os.path.basename(path))[0]
        tensors = {"torchvision": torchvision(img)}
        # transforms.Resize(256, interpolation=InterpolationMode.NEAREST / BICUBIC)
        tensors["torchvision-nearest"] = torchvision(img, Image.NEAREST)
        tensors["torchvision-bicubic"] = torchvision(img, Image.BICUBIC)
        for mode in ("caffe", "tf", "torch"):
            tensors[f"keras-{mode}"] = keras(img, mode)
        tensors["raw"] = keras(img, "raw")
        tensors["unit"] = keras(img, "unit")
        for preset, x in tensors.items():
            np.save(os.path.join(out, f"{stem}.{preset}.npy"), np.ascontiguousarray(x[None], dtype=np.float32))
        # The same tensors in the other input dtypes, converted the way NumPy does (round to nearest even).
        np.save(os.path.join(out, f"{stem}.torchvision.f16.npy"), np.ascontiguousarray(tensors["torchvision"][None]).astype(np.float16))
        np.save(os.path.join(out, f"{stem}.raw.u8.npy"), np.ascontiguousarray(tensors["raw"][None]).astype(np.uint8))


if __name__ == "__main__":
    main()
