"""Does a FashionNet checkpoint's pose branch know which landmarks are visible? (docs/RESULTS.md, "Visibility,
slot by slot"). On an In-shop layout dataset (real or `fashionnet synth`), through the PyTorch twin:
  - the visibility head's accuracy per slot on the images outside the train partition, with the running
    statistics (as `fashionnet eval`) and with each batch's (training mode, dropout off);
  - a linear probe per slot (logistic regression, L-BFGS) on the frozen fc7_pose features, fitted on the train
    partition and scored on the rest: what the features carry, whatever the head learnt of them;
  - the rule that calls visible each slot the garment type has (fashionnet/eval/eval_metrics.h).
Images are cut to their bbox, widened by the checkpoint's bbox_margin, and resized to the network's input, as
evaluation does.

    python3 bench/pytorch/visibility_probe.py RUN/final.safetensors DATA_ROOT
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashionnet_ref as ref  # noqa: E402
from PIL import Image  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # data/transform.cpp's ImageNet normalisation
STD = np.array([0.229, 0.224, 0.225], np.float32)
TYPE_SLOTS = {1: [0, 1, 2, 3, 6, 7], 2: [4, 5, 6, 7], 3: list(range(8))}  # data/annotations_common.h slots_of_type


def table(root, name):
    lines = open(os.path.join(root, name)).read().split("\n")[2:]  # a count, a header, then records
    return [line.split() for line in lines if line.strip()]


def crop_box(box, w, h, margin):
    """The bbox widened by margin x its size on each side, rounded outwards and clipped (data::crop_rect)."""
    x1, y1, x2, y2 = box
    mx, my, eps = margin * (x2 - x1), margin * (y2 - y1), 1e-3
    return (max(0, math.floor(x1 - mx + eps)), max(0, math.floor(y1 - my + eps)),
            min(w, math.ceil(x2 + mx - eps)), min(h, math.ceil(y2 + my - eps)))


def load(root, input_size, margin):
    part = {r[0]: r[2] for r in table(root, "Eval/list_eval_partition.txt")}
    bbox = {r[0]: tuple(map(int, r[3:7])) for r in table(root, "Anno/list_bbox_inshop.txt")}
    images, truth, rule, train = [], [], [], []
    for r in table(root, "Anno/list_landmarks_inshop.txt"):
        with Image.open(os.path.join(root, r[0])) as im:
            box = crop_box(bbox[r[0]], im.width, im.height, margin)
            im = im.convert("RGB").resize((input_size, input_size), Image.BILINEAR, box=box)
        a = (np.asarray(im, np.float32) / 255 - MEAN) / STD
        images.append(torch.from_numpy(a.transpose(2, 0, 1).copy()))
        slots = TYPE_SLOTS[int(r[1])]
        vis = [0.0] * 8
        for s, v in zip(slots, r[3::3]):
            vis[s] = float(v == "0")  # visibility code 0: visible
        truth.append(vis)
        rule.append([float(s in slots) for s in range(8)])
        train.append(part[r[0]] == "train")
    return torch.stack(images), torch.tensor(truth), torch.tensor(rule), torch.tensor(train)


def run(model, x, training):
    """(P(visible) per slot, fc7_pose after its ReLU) in batches of 50."""
    model.train(training)
    saved = {k: v.clone() for k, v in model.state_dict().items()}  # training mode moves the running statistics
    feat, probs, feats = {}, [], []
    hook = model.fc7_pose.register_forward_hook(lambda m, i, o: feat.__setitem__("f", torch.relu(o)))
    with torch.no_grad():
        for b in range(0, len(x), 50):
            o = model(x[b:b + 50])
            probs.append(torch.softmax(o["landmark_vis"], 1)[:, 0].reshape(-1, 8))
            feats.append(feat["f"])
    hook.remove()
    model.load_state_dict(saved)
    return torch.cat(probs), torch.cat(feats)


def probe(f, y, train):
    """Per-slot logistic regression on standardised features; the test images' predictions."""
    mu, sd = f[train].mean(0), f[train].std(0) + 1e-6
    z = (f - mu) / sd
    w = torch.zeros(f.shape[1], 8, requires_grad=True)
    b = torch.zeros(8, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z[train] @ w + b, y[train]) + 1e-3 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return (z @ w + b > 0).float()


def line(name, pred, y, test):
    acc = (pred[test] == y[test]).float().mean(0)
    print(f"{name:44s}" + " ".join(f"{100 * a:5.1f}" for a in acc) + f"   all {100 * acc.mean():.2f}%")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ck, root = sys.argv[1], sys.argv[2]
    weights, meta = ref.read_safetensors(ck)
    run_cfg = json.loads(meta["config"])
    cfg = ref.NetConfig.from_json(run_cfg["net"])
    cfg.dropout = 0.0
    model = ref.FashionNetRef(cfg)
    model.load_weights(weights, ck)
    x, y, rule, train = load(root, cfg.input, run_cfg.get("bbox_margin", 0.0))
    test = ~train
    print(f"{int(test.sum())} images outside the train partition; per slot: L/R collar, L/R sleeve, L/R waistline, L/R hem")
    p_eval, f = run(model, x, training=False)
    p_train, _ = run(model, x, training=True)
    line("the head, running statistics (as eval)", (p_eval > 0.5).float(), y, test)
    line("the head, each batch's statistics", (p_train > 0.5).float(), y, test)
    line("a linear probe on fc7_pose", probe(f, y, train), y, test)
    line("the garment type's slots alone", rule, y, test)


if __name__ == "__main__":
    main()
