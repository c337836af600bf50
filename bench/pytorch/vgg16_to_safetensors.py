#!/usr/bin/env python3
"""Convert torchvision's ImageNet VGG16 weights to .safetensors, for `fashionnet import-vgg16`.

Needs only PyTorch (no `safetensors` package: the header is written here, see docs/checkpoint.md).

  # from the .pth file torchvision downloads (https://download.pytorch.org/models/vgg16-397923af.pth):
  python3 vgg16_to_safetensors.py vgg16-397923af.pth vgg16.safetensors
  # or let torchvision fetch it (needs torchvision and a network connection):
  python3 vgg16_to_safetensors.py --torchvision vgg16.safetensors

  fashionnet import-vgg16 --from vgg16.safetensors --out fashionnet_init.safetensors

Use torchvision.models.vgg16, not vgg16_bn (whose layer numbering differs). Every floating-point tensor is
written as little-endian float32 (F32) in C order, under its state_dict name, in state_dict order.
"""
import argparse
import json
import os
import struct
import sys

import torch


def save_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} in the safetensors format: u64 header length, JSON header, raw data."""
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
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:  # write aside, then rename: a failure never leaves half a file at `path`
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", nargs="?", help="torchvision vgg16 state_dict (.pth)")
    ap.add_argument("out", help="output .safetensors")
    ap.add_argument("--torchvision", action="store_true", help="take the weights from torchvision.models.vgg16")
    a = ap.parse_args()
    if a.torchvision:
        import torchvision  # noqa: only needed for this path
        try:
            model = torchvision.models.vgg16(weights="IMAGENET1K_V1")
        except TypeError:  # torchvision < 0.13
            model = torchvision.models.vgg16(pretrained=True)
        sd, source = model.state_dict(), "torchvision.models.vgg16 IMAGENET1K_V1"
    else:
        if not a.src:
            ap.error("give the .pth file, or --torchvision")
        sd, source = torch.load(a.src, map_location="cpu"), os.path.basename(a.src)
        for key in ("state_dict", "model"):  # training checkpoints often wrap the state_dict
            if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
                sd = sd[key]
    tensors = {k: v for k, v in sd.items() if torch.is_tensor(v) and v.is_floating_point()}
    if "features.0.weight" not in tensors and "module.features.0.weight" not in tensors:
        sys.exit(f"{a.src}: no 'features.0.weight': not a torchvision VGG16 state_dict")
    save_safetensors(a.out, tensors, {"source": source, "format": "torchvision-vgg16"})
    n = sum(t.numel() for t in tensors.values())
    print(f"wrote {len(tensors)} tensors ({n / 1e6:.1f} M values) to {a.out}")


if __name__ == "__main__":
    main()
