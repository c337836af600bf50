#!/usr/bin/env python3
"""PyTorch fine-tunes the same FashionNet the same way, for the same time: the side-by-side of docs/RESULTS.md's
real-photo measure (issue: FashionNet on EfficientNet-Lite0, real photos learned).

It reads the config.json that `fashionnet train` wrote in its run folder, so the network (fashionnet_ref.py, the
parity twin), the stages (loss weights, learning rates, cosine schedule, warm-up), the batch and its sampler
(shuffle, or P items x K images when the triplet term is on), SGD (momentum, weight decay), gradient clipping and
"each stage starts from the previous stage's best smoothed loss, momentum zeroed" are ours. The data are ours too:
an ImageFolder, its classes the sorted folder names, the hold-out the same FNV-1a hash of "class/file" that
data/split.cpp uses, each image resized to the input side (PIL bilinear, as the engine's resize agrees with within
3 levels), flipped with p = 0.5, with the config's random crop (crop_scale < 1: data/transform.cpp's
random_crop, the same rule with other random numbers), normalised by ImageNet's mean and std.

The budget is wall-clock time, stage by stage: each stage gets the time our run's stage took (`--log`, our
run's output). After a few steps of a stage the script sizes the stage's step count to what fits in its time,
and re-sizes it at a third and at two thirds of the stage, so that its learning-rate schedule ends when the
time does (StepBudget); it stops at the deadline in any case.

    /usr/bin/python3 bench/pytorch/finetune_imagefolder.py --run RUN/config.json --log RUN.log \
        --init INIT.safetensors --data .../inshop_firstview/train --holdout 0.1 --out pt_run [--threads 2 --workers 2]

Prints a progress line, then the held-out category top-1/3/5, and writes them to OUT/eval.json.
Parameters that INIT does not hold (the fully connected layers) start from PyTorch's default initialisation.
"""
import argparse
import copy
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashionnet_ref as ref  # noqa: E402
from holdout import held_out  # noqa: E402

WARM = 3  # steps of a stage left out of its rate: the loader's workers start, the allocator warms up
MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # data/transform.cpp's ImageNet normalisation
STD = np.array([0.229, 0.224, 0.225], np.float32)


def read_imagefolder(root):
    """[(relative path, class index, item id)] in data/imagefolder.cpp's order, and the class names."""
    if not os.path.isdir(root):
        sys.exit(f"{root}: not a folder (an ImageFolder holds one folder of photos per class)")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    samples = []
    for c, name in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(root, name))):
            if os.path.splitext(f)[1].lower() in (".jpg", ".jpeg", ".png"):
                samples.append((f"{name}/{f}", c, os.path.splitext(f)[0]))
    return samples, classes


def split(samples, holdout):
    held = [i for i, s in enumerate(samples) if held_out(s[0], holdout)]
    hs = set(held)
    return [i for i in range(len(samples)) if i not in hs], held


CROP_RATIO = (3 / 4, 4 / 3)  # data/transform.h kCropRatioLo, kCropRatioHi


def random_crop(w, h, area, log_ratio, fx, fy):
    """data/transform.cpp random_crop of the whole image: (x0, y0, x1, y1)."""
    ratio = math.exp(log_ratio)
    cw = min(max(int(math.floor(w * math.sqrt(area * ratio) + 0.5)), 1), w)
    ch = min(max(int(math.floor(h * math.sqrt(area / ratio) + 0.5)), 1), h)
    x0 = min(w - cw, int(math.floor(fx * (w - cw + 1))))
    y0 = min(h - ch, int(math.floor(fy * (h - ch + 1))))
    return x0, y0, x0 + cw, y0 + ch


def load_image(root, rel, side, flip, crop=None):
    with Image.open(os.path.join(root, rel)) as im:
        im = im.convert("RGB")
        box = random_crop(im.width, im.height, *crop) if crop else None
        im = im.resize((side, side), Image.BILINEAR, box=box)
    a = (np.asarray(im, np.float32) / 255.0 - MEAN) / STD
    if flip:
        a = a[:, ::-1]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


class Batches(torch.utils.data.Dataset):
    """Item b of this dataset is batch b of the plan: decoding runs in the DataLoader's worker processes."""

    def __init__(self, root, samples, plan, side, seed, crop_scale=1.0):
        self.root, self.samples, self.plan, self.side, self.seed = root, samples, plan, side, seed
        self.crop_scale = crop_scale

    def __len__(self):
        return len(self.plan)

    def __getitem__(self, b):
        rng = np.random.default_rng([self.seed, b])
        idx = self.plan[b]
        flips = rng.random(len(idx)) < 0.5
        crops = [None] * len(idx)
        if self.crop_scale < 1:
            lo, hi = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
            crops = [(rng.uniform(self.crop_scale, 1), rng.uniform(lo, hi), rng.random(), rng.random()) for _ in idx]
        images = torch.stack([load_image(self.root, self.samples[i][0], self.side, f, c)
                              for i, f, c in zip(idx, flips, crops)])
        return images, torch.tensor([self.samples[i][1] for i in idx]), torch.tensor(idx)


def plan_batches(samples, train, cfg, pk, steps, rng):
    """`steps` batches: shuffled epochs of the training images, or P items x K images (data/sampler.cpp's rule:
    an item with fewer than K images repeats some)."""
    plan = []
    if not pk:
        while len(plan) < steps:
            order = rng.permutation(train)
            plan += [order[i:i + cfg["batch"]].tolist() for i in range(0, len(order) - cfg["batch"] + 1, cfg["batch"])]
        return plan[:steps]
    by_item = {}
    for i in train:
        by_item.setdefault(samples[i][2], []).append(i)
    items = sorted(by_item)
    P, K = cfg["P"], cfg["K"]
    while len(plan) < steps:
        order = rng.permutation(len(items))
        for s in range(0, len(order) - P + 1, P):
            batch = []
            for k in order[s:s + P]:
                imgs = rng.permutation(by_item[items[k]]).tolist()
                batch += [imgs[j] if j < len(imgs) else imgs[rng.integers(len(imgs))] for j in range(K)]
            plan.append(batch)
    return plan[:steps]


def learning_rate(cfg, stage, t, steps):  # fashionnet/train/trainer.cpp learning_rate()
    lr = stage["lr"]
    if cfg.get("warmup", 0) > 0 and t < cfg["warmup"]:
        return lr * (t + 1) / cfg["warmup"]
    if cfg.get("schedule", "cosine") == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * t / max(steps, 1)))
    if cfg.get("schedule") == "step" and cfg.get("step_every", 0) > 0:
        return lr * cfg.get("step_gamma", 0.1) ** (t // cfg["step_every"])
    return lr


class StepBudget:
    """A stage's step count sized to its wall-clock budget, so that its learning-rate schedule ends when the time
    does: the rate is timed over `calibrate` steps after the first WARM, and the count re-sized at a third and at
    two thirds of the stage."""

    def __init__(self, name, planned, seconds, calibrate, note=""):
        self.name, self.note, self.planned, self.seconds = name, note, planned, seconds
        self.deadline = time.perf_counter() + seconds
        self.first = WARM + calibrate
        self.at, self.t_warm = {self.first}, None

    def open(self, t):
        return t < self.planned and time.perf_counter() < self.deadline

    def after_step(self, t):
        """Call with the number of steps done; says so when it re-sizes the stage."""
        now = time.perf_counter()
        if t == WARM:
            self.t_warm = now
        if t not in self.at:
            return
        rate = (now - self.t_warm) / (t - WARM)
        self.planned = max(t + 1, t + int((self.deadline - now) / rate))
        self.at = ({self.planned // 3, 2 * self.planned // 3} if t == self.first else self.at) - set(range(t + 1))
        print(f"[{self.name}] calibration at step {t}: {rate:.2f} s a step -> {self.planned} steps in "
              f"{self.seconds:.0f} s{self.note}", flush=True)


def stage_seconds(log, names):
    """Each stage's wall-clock time in our run, from its '[name] done in 1m52s' line."""
    got = {}
    with open(log) as f:
        for line in f:
            m = re.match(r"\[(\S+)\] done in (?:(\d+)h)?(?:(\d+)m)?(?:([\d.]+)s)?", line.strip())
            if m:
                h, mi, sec = (float(x) if x else 0.0 for x in m.groups()[1:])
                got[m.group(1)] = 3600 * h + 60 * mi + sec
    missing = [n for n in names if n not in got]
    if missing:
        sys.exit(f"{log}: no '[name] done in ...' line for stage(s) {', '.join(missing)}")
    return [got[n] for n in names]


def weights_of(stage):
    w = stage["weights"]
    return (w["landmarks"], w["visibility"], w["category"], w["attributes"], w["triplet"])


def evaluate(model, root, samples, held, side, batch=64):
    model.eval()
    correct = np.zeros(3)
    ks = (1, 3, 5)
    with torch.no_grad():
        for s in range(0, len(held), batch):
            idx = held[s:s + batch]
            x = torch.stack([load_image(root, samples[i][0], side, False) for i in idx])
            logits = model(x)["category"]
            y = torch.tensor([samples[i][1] for i in idx])
            top = logits.topk(max(ks), 1).indices
            for j, k in enumerate(ks):
                correct[j] += (top[:, :k] == y[:, None]).any(1).sum().item()
    model.train()
    return {f"top{k}": 100.0 * correct[j] / len(held) for j, k in enumerate(ks)}


def score(model, a, samples, held, side, record):
    """The held-out top-1/3/5, printed and written with `record` and the run's set-up to A.out/eval.json."""
    res = evaluate(model, a.data, samples, held, side)
    res.update(record, held_out=len(held), torch=torch.__version__, threads=a.threads, workers=a.workers)
    with open(os.path.join(a.out, "eval.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"held-out category ({len(held)} images): top-1 {res['top1']:.2f}%  top-3 {res['top3']:.2f}%  "
          f"top-5 {res['top5']:.2f}%")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="config.json of our training run")
    ap.add_argument("--init", required=True, help="the weights our run started from (fashionnet import's output)")
    ap.add_argument("--data", required=True, help="ImageFolder root")
    ap.add_argument("--log", required=True, help="our run's output (the stages' '[name] done in 1m52s' lines)")
    ap.add_argument("--holdout", type=float, default=0.1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="image decoding processes (ours: 2 loader threads)")
    ap.add_argument("--calibrate", type=int, default=10,
                    help="steps of each stage timed to size its schedule (re-sized at a third and two thirds)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)

    with open(a.run) as f:
        cfg = json.load(f)
    net = ref.NetConfig.from_json(cfg["net"])
    samples, classes = read_imagefolder(a.data)
    net.categories, net.attributes = len(classes), 0
    train, held = split(samples, a.holdout)
    torch.manual_seed(cfg.get("seed", 1))
    model = ref.FashionNetRef(net)
    tensors, _ = ref.read_safetensors(a.init)
    own = dict(model.checkpoint_parameters() + model.checkpoint_buffers())
    loaded = [n for n in own if n in tensors]
    with torch.no_grad():
        for n in loaded:
            own[n].copy_(torch.from_numpy(tensors[n]))
    print(f"init: {len(loaded)} tensors from {a.init}, {len(own) - len(loaded)} left at PyTorch's initialisation")
    print(f"PyTorch {torch.__version__}, {a.threads} threads, {a.workers} workers: {len(train)} training and "
          f"{len(held)} held-out images, {len(classes)} classes")

    stages = cfg["stages"]
    budget = stage_seconds(a.log, [st["name"] for st in stages])
    print("budget: " + ", ".join(f"{st['name']} {b:.0f} s" for st, b in zip(stages, budget)) + f" (our run, {a.log})")
    # a parameter group per tensor, so that a stage's lr_mult can give each its multiple of the rate
    opt = torch.optim.SGD([{"params": [p], "name": n, "lr_mult": 1.0} for n, p in model.checkpoint_parameters()],
                          lr=stages[0]["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    rng = np.random.default_rng(cfg.get("seed", 1))
    null = lambda n: {"landmarks01": torch.zeros(n, 16), "visible": torch.zeros(n, 8),  # noqa: E731
                      "vis_label": torch.full((n * 8,), -1, dtype=torch.long)}

    def step(images, category, items, stage, lr):
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_mult"]
        b = dict(null(images.shape[0]), category=category, item=items)
        o = model(images, pose=False)  # no landmark labels: as our step, no pose branch
        loss, terms = ref.fashionnet_loss(o, b, weights_of(stage), cfg.get("triplet_margin", 0.2),
                                          cfg.get("triplet_mining", "batch_hard"), cfg.get("label_smoothing", 0.0))
        if not torch.isfinite(loss):
            sys.exit(f"loss is {loss.item()} at a step of stage {stage['name']}: stopping")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.get("clip_grad_norm", 0) > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip_grad_norm"])
        opt.step()
        return loss.item(), {k: v.item() for k, v in terms.items()}

    t0 = time.perf_counter()
    done_steps, images = 0, 0
    if len({samples[i][2] for i in train}) == len(train):
        # trainer.cpp: one photo per item, so the triplets (and P x K batches) take the class as the identity
        samples = [(rel, c, str(c)) for rel, c, _ in samples]
        if any(weights_of(st)[4] > 0 for st in cfg["stages"]):
            print("imagefolder: one photo per item, so triplet batches take P classes x K photos")
    item_index = {}
    for s in samples:
        item_index.setdefault(s[2], len(item_index))
    item_of = lambda idx: torch.tensor([item_index[samples[i][2]] for i in idx])  # noqa: E731
    history = []
    for si, stage in enumerate(stages):
        if si > 0:  # trainer.cpp enter_stage(): the previous stage's best weights, momentum zeroed
            model.load_state_dict(best_state)
            opt.state.clear()
        # the stage's marks (trainer.cpp apply_stage_marks): frozen names get no gradient and no update; held
        # statistics (every batch norm, or those under a hold_statistics name): the batch norm normalises by its
        # running statistics and leaves them alone; lr_mult: a parameter's multiple of the rate
        covers = lambda name, full: name == "" or full == name or full.startswith(name + ".")  # noqa: E731
        frozen = 0
        for n, p in model.checkpoint_parameters():
            p.requires_grad_(not any(covers(f, n) for f in stage.get("freeze", [])))
            frozen += not p.requires_grad
        for g in opt.param_groups:
            g["lr_mult"] = next((k for name, k in stage.get("lr_mult", {}).items() if covers(name, g["name"])), 1.0)
        hold_all = stage.get("bn_statistics", "train") == "frozen"
        held = [m for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d) and (
            hold_all or any(covers(h, model.checkpoint_name(n + ".weight")) for h in stage.get("hold_statistics", [])))]
        if frozen or held:
            print(f"{stage['name']}: {frozen} parameter tensors frozen"
                  + (f", the statistics of {len(held)} batch norms held" if held else ""))
        set_mode = lambda: [m.train(not any(m is h for h in held)) for m in model.modules()  # noqa: E731
                            if isinstance(m, torch.nn.BatchNorm2d)]
        set_mode()
        pk = weights_of(stage)[4] > 0 and cfg["P"] * cfg["K"] == cfg["batch"]
        ts = time.perf_counter()
        sb = StepBudget(stage["name"], stage["steps"], budget[si], a.calibrate, f" (ours: {stage['steps']})")
        ema, best, best_state = -1.0, None, copy.deepcopy(model.state_dict())
        t, part = 0, 0
        while sb.open(t):
            # a plan for the rest of the stage; the calibration may lengthen the stage past it
            plan = plan_batches(samples, train, cfg, pk, sb.planned - t, rng)
            part += 1
            loader = torch.utils.data.DataLoader(
                Batches(a.data, samples, plan, net.input, cfg.get("seed", 1) * 1000 + si * 100 + part,
                        cfg.get("crop_scale", 1.0)),
                batch_size=None, shuffle=False, num_workers=a.workers, prefetch_factor=2)
            for images_b, category, idx in loader:
                if not sb.open(t):
                    break
                lr = learning_rate(cfg, stage, t, sb.planned)
                loss, terms = step(images_b, category, item_of(idx.tolist()), stage, lr)
                ema = loss if ema < 0 else 0.98 * ema + 0.02 * loss
                t += 1
                done_steps += 1
                images += images_b.shape[0]
                sb.after_step(t)
                if t % cfg.get("checkpoint_every", 500) == 0 and (best is None or ema < best):
                    best, best_state = ema, copy.deepcopy(model.state_dict())
                if t % cfg.get("log_every", 10) == 0:
                    now = time.perf_counter()
                    print(f"[{stage['name']}] {t}/{sb.planned}  {images / (now - t0):.1f} img/s  "
                          f"ETA {max(0, sb.deadline - now):.0f}s"
                          f"  loss {loss:.4f}  " + " ".join(f"{k} {v:.4f}" for k, v in terms.items()), flush=True)
                    history.append({"stage": stage["name"], "step": t, "loss": loss, "ema": ema, "lr": lr})
        if best is None or ema < best:  # the stage's end is a checkpoint too
            best, best_state = ema, copy.deepcopy(model.state_dict())
        print(f"[{stage['name']}] done: {t} steps in {time.perf_counter() - ts:.0f} s, loss ema {ema:.4f}", flush=True)
    train_s = time.perf_counter() - t0
    print(f"trained {done_steps} steps in {train_s:.1f} s ({images / train_s:.1f} img/s)")
    score(model, a, samples, held, net.input, {"train_seconds": train_s, "steps": done_steps, "images": images,
                                                "history": history})


if __name__ == "__main__":
    main()
