"""FashionNet in PyTorch: the reference our C++ engine is checked against (docs/parity.md).

Written from docs/fashionnet.md and from the contracts in our headers, not from our kernels:
  graph            fashionnet/model/fashionnet.{h,cpp}     (same module and parameter names as our checkpoints:
                                                       trunk.conv1_1.weight, conv5_global.conv5_1.bias, ...)
  backbones        vgg16 here; resnet50 and efficientnet_lite0 from backbones_ref.py's modules (Bottleneck, MBConv,
                   their stage tables and forward code), arranged under FashionNet's names: trunk, conv5_global,
                   conv5_pose (each branch its own copy of the last stages), at the network's width
  landmark_pool    kernels/landmark_pool.h, kernels/landmark_pool_body.h
  the five losses  nn/losses.h and kernels/{landmark_l2,softmax_xent,attr_bce,triplet}.h (normalisers included)
Safetensors files are read by parsing the header here, with numpy only (no `safetensors` package).
"""
import json
import os
import re
import struct
import sys
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import backbones_ref as bb  # noqa: E402

SLOTS = 8  # fixed landmark slots (docs/fashionnet.md sec. 1)

# ----------------------------------------------------------------------------------------------- safetensors

_DTYPES = {"F32": np.float32, "F64": np.float64}


def read_safetensors(path):
    """Returns ({name: numpy array}, metadata dict). Refuses what it does not understand, naming the file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file ({len(raw)} bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} runs past the end of the file ({len(raw)} bytes)")
    try:
        header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: header is not valid JSON: {e}") from None
    meta = header.pop("__metadata__", {}) or {}
    data = memoryview(raw)[8 + n :]
    out = {}
    for name, e in header.items():
        if e.get("dtype") not in _DTYPES:
            raise ValueError(f"{path}: tensor '{name}' has dtype {e.get('dtype')}, only F32/F64 are read")
        dt = np.dtype(_DTYPES[e["dtype"]]).newbyteorder("<")
        begin, end = e["data_offsets"]
        shape = tuple(int(s) for s in e["shape"])
        if end - begin != int(np.prod(shape, dtype=np.int64)) * dt.itemsize or end > len(data):
            raise ValueError(f"{path}: tensor '{name}' has offsets [{begin}, {end}] that do not fit shape {shape}")
        out[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(shape).astype(dt.newbyteorder("="))
    return out, meta


# ----------------------------------------------------------------------------------------------- config


@dataclass
class NetConfig:  # fashionnet/model/config.h, NetConfig (the same JSON keys)
    backbone: str = "vgg16"
    width: float = 1.0
    input: int = 224
    fc6_global: int = 4096
    fc6_pose: int = 1024
    fc7_pose: int = 1024
    fc6_local: int = 1024
    fc7_fusion: int = 4096
    categories: int = 23
    attributes: int = 463
    pool_radius: int = 1
    pool_mode: str = "corner"
    local_branch: bool = True
    local_at: str = "landmarks"  # "layout": GARMENT_LAYOUT in training and evaluation alike; "absent": no slot
    local_scale: float = 1.0  # multiplies the pooled features before fc6_local
    dropout: float = 0.5

    @classmethod
    def from_json(cls, j):
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in j.items() if k in names})

    def scaled(self, base):  # scaled_channels() (fashionnet/model/vgg16.h): round half away from zero, at least 4
        return max(4, int(np.floor(base * self.width + 0.5)))

    def channels(self):  # vgg_channels()
        return [self.scaled(b) for b in (64, 128, 256, 512, 512)]


# fashionnet/model/config.cpp's presets, network part only (train_step.py builds from these).
PRESETS = {
    "paper": NetConfig(),
    "cpu-small": NetConfig(width=0.25, input=112, fc6_global=1024, fc6_pose=256, fc7_pose=256, fc6_local=256,
                           fc7_fusion=1024),
    "tiny": NetConfig(width=1.0 / 16, input=32, fc6_global=32, fc6_pose=16, fc7_pose=16, fc6_local=16, fc7_fusion=32,
                      dropout=0.0),
    "lite0": NetConfig(backbone="efficientnet_lite0", input=192, fc6_global=1024, fc6_pose=256, fc7_pose=256,
                       fc6_local=256, fc7_fusion=1024, dropout=0.2, local_scale=0.1),
    "resnet50": NetConfig(backbone="resnet50"),
    "resnet-tiny": NetConfig(backbone="resnet50", width=1.0 / 16, input=64, fc6_global=32, fc6_pose=16, fc7_pose=16,
                             fc6_local=16, fc7_fusion=32, dropout=0.0),
}

# ----------------------------------------------------------------------------------------------- the graph

# net.local_at = "layout": the fixed pooling positions, (x, y) in [0, 1] per slot (fashionnet/model/fashionnet.h,
# kGarmentLayout), in pixel-centre coordinates times (input - 1).
GARMENT_LAYOUT = [(0.40, 0.28), (0.60, 0.28), (0.25, 0.50), (0.75, 0.50),
                  (0.38, 0.62), (0.62, 0.62), (0.38, 0.86), (0.62, 0.86)]


class _Stage(nn.Module):
    """A named sequence of 3x3 conv + ReLU layers (attribute names = our module names)."""

    def __init__(self, names, cin, cout):
        super().__init__()
        self.names = names
        for i, name in enumerate(names):
            setattr(self, name, nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1))

    def run(self, x, names):
        for name in names:
            x = F.relu(getattr(self, name)(x))
        return x


class Trunk(_Stage):  # conv1_1 .. conv4_3, max pooling after conv1_2, conv2_2, conv3_3
    def __init__(self, ch):
        nn.Module.__init__(self)
        self.stages = []
        cin = 3
        for s, n in enumerate((2, 2, 3, 3)):
            names = [f"conv{s + 1}_{k + 1}" for k in range(n)]
            for k, name in enumerate(names):
                setattr(self, name, nn.Conv2d(cin if k == 0 else ch[s], ch[s], 3, padding=1))
            self.stages.append(names)
            cin = ch[s]

    def forward(self, x):
        for s, names in enumerate(self.stages):
            if s > 0:
                x = F.max_pool2d(x, 2, 2)
            x = self.run(x, names)
        return x


class Conv5(_Stage):  # conv5_1 .. conv5_3 then pool5
    def __init__(self, cin, ch):
        super().__init__(["conv5_1", "conv5_2", "conv5_3"], cin, ch)

    def forward(self, x):
        return F.max_pool2d(self.run(x, self.names), 2, 2)


# ResNet-50 v1.5 (fashionnet/model/resnet50.h): backbones_ref's Bottleneck and forward code, our names
# (trunk.conv1, trunk.bn1, trunk.layerL.B.*, conv5_X.layer4.B.*), channels at the network's width.


def _resnet_layer(cfg, cin, layer):
    width, blocks, stride = layer
    w = cfg.scaled(width)
    mods = []
    for i in range(blocks):
        mods.append(bb.Bottleneck(cin, w, stride if i == 0 else 1))
        cin = w * 4
    return nn.Sequential(*mods), cin


class ResNetTrunk(nn.Module):  # conv1 .. layer3
    forward = bb.ResNet50.trunk

    def __init__(self, cfg):
        super().__init__()
        cin = cfg.scaled(64)
        self.conv1 = nn.Conv2d(3, cin, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        for li, layer in enumerate(bb.RESNET50_LAYERS[:3]):
            mod, cin = _resnet_layer(cfg, cin, layer)
            setattr(self, f"layer{li + 1}", mod)
        self.channels, self.stride = cin, 16


class ResNetBranch(nn.Module):  # layer4, global average pooling
    forward = bb.ResNet50.branch

    def __init__(self, cfg, cin):
        super().__init__()
        self.layer4, self.features = _resnet_layer(cfg, cin, bb.RESNET50_LAYERS[3])


# EfficientNet-Lite0 (fashionnet/model/efficientnet_lite0.h): backbones_ref's MBConv (the package's module names
# inside a block), its stage table and BN (eps 1e-3, momentum 0.1); our names for the rest: trunk.stem.{conv,bn},
# trunk.blocks.N.*, conv5_X.blocks.N.* (the package's global block index), conv5_X.head_conv / head_bn.
# Inside a block our checkpoint names the package's modules as below (the import's table, fashionnet import).
LITE0_BLOCK_NAMES = {"_expand_conv": "expand_conv", "_bn0": "expand_bn", "_depthwise_conv": "depthwise_conv",
                     "_bn1": "depthwise_bn", "_project_conv": "project_conv", "_bn2": "project_bn"}


def lite0_checkpoint_name(name):
    """The twin's parameter / buffer name -> our checkpoint's."""
    return re.sub(r"(blocks\.\d+\.)(_\w+?)\.", lambda m: m.group(1) + LITE0_BLOCK_NAMES[m.group(2)] + ".", name)


def _lite0_blocks(cfg):
    """The 16 blocks' (cin, e, k, s, cout) at the network's width, in the package's order."""
    specs, cin = [], cfg.scaled(32)
    for e, k, s, c, n in bb.LITE0_STAGES:
        for i in range(n):
            specs.append((cin, e, k, s if i == 0 else 1, cfg.scaled(c)))
            cin = cfg.scaled(c)
    return specs


class Lite0Stem(nn.Module):
    def __init__(self, cout):
        super().__init__()
        self.conv = nn.Conv2d(3, cout, 3, stride=2, padding=1, bias=False)
        self.bn = bb._bn(cout)

    def forward(self, x):
        return F.relu6(self.bn(self.conv(x)))


class Lite0Trunk(nn.Module):  # the stem, blocks 0..10
    def __init__(self, cfg):
        super().__init__()
        specs = _lite0_blocks(cfg)
        self.stem = Lite0Stem(specs[0][0])
        self.blocks = nn.ModuleDict({str(i): bb.MBConv(*specs[i]) for i in range(bb.LITE0_TRUNK_BLOCKS)})
        self.channels, self.stride = specs[bb.LITE0_TRUNK_BLOCKS - 1][4], 16

    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks.values():
            x = b(x)
        return x


class Lite0Branch(nn.Module):  # blocks 11..15, the head, global average pooling
    def __init__(self, cfg):
        super().__init__()
        specs = _lite0_blocks(cfg)
        self.blocks = nn.ModuleDict({str(i): bb.MBConv(*specs[i]) for i in range(bb.LITE0_TRUNK_BLOCKS, len(specs))})
        self.features = cfg.scaled(1280)
        self.head_conv = nn.Conv2d(specs[-1][4], self.features, 1, bias=False)
        self.head_bn = bb._bn(self.features)

    def forward(self, x):
        for b in self.blocks.values():
            x = b(x)
        return F.relu6(self.head_bn(self.head_conv(x))).mean(dim=(2, 3))


def landmark_pool(feat, landmarks, visibility, stride=8, radius=1, mode="corner"):
    """kernels/landmark_pool_body.h in tensor ops. feat (N,C,H,W); landmarks (N,L,2) x,y input pixels;
    visibility (N,L). Returns (N, L*C) slot-major. Gradient to feat only (through gather + max)."""
    N, C, H, W = feat.shape
    L = landmarks.shape[1]
    lm = landmarks.detach().to(torch.float32)  # the cell is computed in float32, as the kernel does
    vis = visibility.detach()
    lim = float(1 << 20)
    c = torch.nan_to_num(lm / float(stride) + 0.5, nan=-lim).clamp(-lim, lim)
    cell = torch.floor(c).to(torch.int64)  # round half up
    cx, cy = cell[..., 0], cell[..., 1]
    finite = torch.isfinite(lm).all(-1)
    # A window [c-r, c+r] clipped to the map is empty when the landmark is more than r cells outside.
    nonempty = (cx + radius >= 0) & (cx - radius <= W - 1) & (cy + radius >= 0) & (cy - radius <= H - 1)
    usable = (vis > 0.5) & finite & nonempty
    # Unusable slots (mode corner) pool [0, min(2r, H-1)] x [0, min(2r, W-1)]: the window centred at (r, r).
    cx = torch.where(usable, cx, torch.full_like(cx, radius))
    cy = torch.where(usable, cy, torch.full_like(cy, radius))
    # Clamping each window index into the map gives exactly the clipped window (cells repeat; max is unchanged).
    off = torch.arange(-radius, radius + 1, device=feat.device)
    hh = (cy[..., None] + off).clamp(0, H - 1)  # (N, L, k)
    ww = (cx[..., None] + off).clamp(0, W - 1)
    k = off.numel()
    flat = (hh[..., :, None] * W + ww[..., None, :]).reshape(N, 1, L * k * k).expand(N, C, L * k * k)
    win = torch.gather(feat.reshape(N, C, H * W), 2, flat).reshape(N, C, L, k * k)
    out = win.max(dim=3).values  # (N, C, L)
    if mode == "zero":
        out = out * usable.to(out.dtype)[:, None, :]
    elif mode != "corner":
        raise ValueError(f"pool_mode '{mode}' (expected corner or zero)")
    return out.permute(0, 2, 1).reshape(N, L * C)


class FashionNetRef(nn.Module):
    """fashionnet/model/fashionnet.cpp's graph; parameter names match our checkpoints one to one."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.backbone == "vgg16":
            ch = cfg.channels()
            flat5 = ch[4] * (cfg.input // 32) ** 2
            self.trunk = Trunk(ch)
            self.conv5_global = Conv5(ch[3], ch[4])
            self.conv5_pose = Conv5(ch[3], ch[4])
            self.map_channels, self.map_stride = ch[3], 8
        elif cfg.backbone == "resnet50":
            self.trunk = ResNetTrunk(cfg)
            self.conv5_global = ResNetBranch(cfg, self.trunk.channels)
            self.conv5_pose = ResNetBranch(cfg, self.trunk.channels)
            flat5 = self.conv5_global.features
        elif cfg.backbone == "efficientnet_lite0":
            self.trunk = Lite0Trunk(cfg)
            self.conv5_global = Lite0Branch(cfg)
            self.conv5_pose = Lite0Branch(cfg)
            flat5 = self.conv5_global.features
        else:
            raise ValueError(f"backbone '{cfg.backbone}' (expected vgg16, resnet50 or efficientnet_lite0)")
        if cfg.backbone != "vgg16":
            self.map_channels, self.map_stride = self.trunk.channels, self.trunk.stride
        self.fc6_global = nn.Linear(flat5, cfg.fc6_global)
        self.fc6_pose = nn.Linear(flat5, cfg.fc6_pose)
        self.fc7_pose = nn.Linear(cfg.fc6_pose, cfg.fc7_pose)
        self.landmark_loc = nn.Linear(cfg.fc7_pose, 2 * SLOTS)
        self.landmark_vis = nn.Linear(cfg.fc7_pose, 2 * SLOTS)
        fusion_in = cfg.fc6_global
        if cfg.local_branch:
            self.fc6_local = nn.Linear(SLOTS * self.map_channels, cfg.fc6_local)
            fusion_in += cfg.fc6_local
        self.fc7_fusion = nn.Linear(fusion_in, cfg.fc7_fusion)
        self.category = nn.Linear(cfg.fc7_fusion, cfg.categories)
        self.attributes = nn.Linear(cfg.fc7_fusion, cfg.attributes) if cfg.attributes > 0 else None

    def checkpoint_name(self, name):
        """A parameter's or buffer's name in our checkpoints (the same as here, but inside Lite0's blocks)."""
        return lite0_checkpoint_name(name) if self.cfg.backbone == "efficientnet_lite0" else name

    def checkpoint_parameters(self):
        """[(our checkpoint's name, parameter)]."""
        return [(self.checkpoint_name(n), p) for n, p in self.named_parameters()]

    def checkpoint_buffers(self):
        """[(our checkpoint's name, buffer)]: batch norm's running_mean and running_var (num_batches_tracked is
        PyTorch's own counter, unused at a fixed momentum, not in our checkpoints)."""
        return [(self.checkpoint_name(n), b) for n, b in self.named_buffers() if not n.endswith("num_batches_tracked")]

    def load_weights(self, tensors, path="checkpoint"):
        """Copies our checkpoint's tensors in by name; every parameter and buffer must be there with its shape."""
        own = dict(self.checkpoint_parameters() + self.checkpoint_buffers())
        missing = [n for n in own if n not in tensors]
        bad = [f"'{n}' {tuple(tensors[n].shape)} vs {tuple(p.shape)}" for n, p in own.items()
               if n in tensors and tuple(tensors[n].shape) != tuple(p.shape)]
        if missing or bad:
            raise ValueError(f"{path}: missing {missing[:5]} ({len(missing)}), shape mismatches {bad[:5]} ({len(bad)})")
        with torch.no_grad():
            for n, p in own.items():
                p.copy_(torch.from_numpy(tensors[n]))

    def forward(self, images, landmarks=None, visibility=None, pose=True):
        """Returns a dict like our Outputs. Pools at (landmarks, visibility) when given, else at the prediction.
        Dropout follows self.training with p = cfg.dropout. pose=False skips the pose branch (no landmark_loc,
        landmark_vis), as a training step does where no landmark term reads it (fashionnet/train/step.cpp)."""
        cfg, p, n = self.cfg, self.cfg.dropout, images.shape[0]
        drop = lambda x: F.dropout(x, p, self.training)  # noqa: E731
        o = {}
        conv4 = self.trunk(images)  # the trunk's map (VGG16: conv4_3)
        branch_in = F.max_pool2d(conv4, 2, 2) if cfg.backbone == "vgg16" else conv4  # VGG16's pool4
        fc6_global = drop(F.relu(self.fc6_global(self.conv5_global(branch_in).flatten(1))))
        if pose:
            q = self.conv5_pose(branch_in).flatten(1)
            fc7_pose = drop(F.relu(self.fc7_pose(drop(F.relu(self.fc6_pose(q))))))
            o["landmark_loc"] = self.landmark_loc(fc7_pose)
            o["landmark_vis"] = self.landmark_vis(fc7_pose).reshape(n * SLOTS, 2)
        fused = fc6_global
        if cfg.local_branch:
            if cfg.local_at == "layout":
                xy = (torch.tensor(GARMENT_LAYOUT, dtype=torch.float32) * float(cfg.input - 1)).to(conv4.dtype)
                landmarks = xy.to(conv4.device).expand(n, SLOTS, 2)
                visibility = torch.ones(n, SLOTS, dtype=conv4.dtype, device=conv4.device)
            elif cfg.local_at == "absent":  # no slot, in training and evaluation alike
                landmarks = torch.zeros(n, SLOTS, 2, dtype=conv4.dtype, device=conv4.device)
                visibility = torch.zeros(n, SLOTS, dtype=conv4.dtype, device=conv4.device)
            elif landmarks is None:
                landmarks, visibility = self.predicted_pool_at(o)
            pooled = landmark_pool(conv4, landmarks, visibility, self.map_stride, cfg.pool_radius, cfg.pool_mode)
            if cfg.local_scale != 1.0:
                pooled = pooled * cfg.local_scale
            fused = torch.cat([fc6_global, drop(F.relu(self.fc6_local(pooled)))], 1)
        o["embedding"] = self.fc7_fusion(fused)  # before the ReLU, as fashionnet.cpp
        h = drop(F.relu(o["embedding"]))
        o["category"] = self.category(h)
        if self.attributes is not None:
            o["attributes"] = self.attributes(h)
        return o

    @torch.no_grad()
    def predicted_pool_at(self, o):
        n = o["landmark_loc"].shape[0]
        lm = (o["landmark_loc"] * self.cfg.input).reshape(n, SLOTS, 2)
        prob = torch.softmax(o["landmark_vis"], 1)
        return lm, (prob[:, 0] >= prob[:, 1]).to(lm.dtype).reshape(n, SLOTS)


# ----------------------------------------------------------------------------------------------- the losses


def landmark_l2(pred, target, vis):
    """sum_j ||v_j (pred_j - target_j)||^2 / N; pred/target (N,L,2), vis (N,L)."""
    return ((vis[..., None] * (pred - target)) ** 2).sum() / pred.shape[0]


def softmax_cross_entropy(logits, labels, ignore_label=-1, smoothing=0.0):
    """Mean over rows whose label is not ignore_label; 0 when every row is ignored. smoothing e: the target is
    1 - e on the label and e / K on every class (torch's label_smoothing)."""
    keep = labels != ignore_label
    if not bool(keep.any()):
        return logits.sum() * 0
    lse = torch.logsumexp(logits[keep], 1)
    z_y = logits[keep].gather(1, labels[keep].long()[:, None])[:, 0]
    ce = lse - z_y
    if smoothing:
        ce = (1 - smoothing) * ce + smoothing * (lse - logits[keep].mean(1))
    return ce.sum() / keep.sum()


def attribute_bce(z, a, known, w_pos, w_neg):
    """(1/N) sum known [w_pos a softplus(-z) + w_neg (1-a) softplus(z)]; unknown labels add nothing."""
    term = w_pos * a * F.softplus(-z) + w_neg * (1 - a) * F.softplus(z)
    return torch.where(known != 0, known * term, torch.zeros_like(term)).sum() / z.shape[0]


def l2_normalize(x, eps=1e-12):
    return x / x.norm(dim=1, keepdim=True).clamp_min(eps)


def pairwise_distance(x, eps=1e-12):
    """d_ij = sqrt(max(D2_ij, 0) + eps), D2_ii = 0 exactly; no gradient where D2 <= 0 (the sqrt guard)."""
    sq = (x * x).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2 * x @ x.t()
    keep = (d2 > 0) & ~torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
    d2 = torch.where(keep, d2, torch.zeros_like(d2))
    return torch.sqrt(d2 + eps)


def triplet_loss(d, labels, margin=0.2, mode="batch_hard"):
    """On distances d (N,N). batch_hard: mean over valid anchors of max(0, m + d_ap - d_an) with the hardest
    positive / negative; batch_all: sum over all triplets divided by the number of active ones.
    Returns (loss, active_fraction)."""
    n = d.shape[0]
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(n, dtype=torch.bool, device=d.device)
    neg = ~same
    if mode == "batch_hard":
        inf = torch.tensor(float("inf"), dtype=d.dtype, device=d.device)
        p = torch.where(pos, d, -inf).argmax(1)
        q = torch.where(neg, d, inf).argmin(1)
        valid = pos.any(1) & neg.any(1)
        h = F.relu(margin + d.gather(1, p[:, None])[:, 0] - d.gather(1, q[:, None])[:, 0])
        h = torch.where(valid, h, torch.zeros_like(h))
        count = valid.sum()
        active = (h > 0).sum()
        denom = count
    elif mode in ("all", "batch_all"):
        mask = pos[:, :, None] & neg[:, None, :]
        h = F.relu(margin + d[:, :, None] - d[:, None, :])
        h = torch.where(mask, h, torch.zeros_like(h))
        count = mask.sum()
        active = (h > 0).sum()
        denom = active
    else:
        raise ValueError(f"triplet mining '{mode}' (expected batch_hard or all)")
    loss = h.sum() / denom if int(denom) > 0 else h.sum() * 0
    frac = float(active) / float(count) if int(count) > 0 else 0.0
    return loss, frac


def fashionnet_loss(o, b, weights=(1, 1, 1, 1, 1), margin=0.2, mining="batch_hard", label_smoothing=0.0):
    """fashionnet/model/losses.cpp: the weighted sum and the unweighted terms {lm, vis, cat, attr, tri}.
    b: dict with landmarks01 (N,16), visible (N,8), vis_label (N*8), category (N), item (N),
    and optionally attr, attr_known (N,A), w_pos, w_neg (A)."""
    w_lm, w_vis, w_cat, w_attr, w_tri = weights
    n = o["embedding"].shape[0]
    terms = {}
    has_landmarks = bool((b["vis_label"] >= 0).any())  # an annotated image (losses.cpp: BatchTensors::has_landmarks)
    if w_lm > 0 and has_landmarks:
        terms["lm"] = (w_lm, landmark_l2(o["landmark_loc"].reshape(n, SLOTS, 2), b["landmarks01"].reshape(n, SLOTS, 2),
                                         b["visible"]))
    if w_vis > 0 and has_landmarks:
        terms["vis"] = (w_vis, softmax_cross_entropy(o["landmark_vis"], b["vis_label"]))
    if w_cat > 0 and bool((b["category"] >= 0).any()):
        terms["cat"] = (w_cat, softmax_cross_entropy(o["category"], b["category"], smoothing=label_smoothing))
    if w_attr > 0 and "attr" in b and "attributes" in o:
        terms["attr"] = (w_attr, attribute_bce(o["attributes"], b["attr"], b["attr_known"], b["w_pos"], b["w_neg"]))
    if w_tri > 0:
        tri, _ = triplet_loss(pairwise_distance(l2_normalize(o["embedding"])), b["item"], margin, mining)
        terms["tri"] = (w_tri, tri)
    total = sum(w * t for w, t in terms.values())
    return total, {k: t for k, (w, t) in terms.items()}
