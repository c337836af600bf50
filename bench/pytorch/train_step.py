#!/usr/bin/env python3
"""PyTorch twin of our training-step benchmark: the same FashionNet (fashionnet_ref.py) at a preset's shapes,
timed per full training step (forward in training mode with dropout, the five losses, backward, SGD momentum 0.9
and the preset's weight decay) and per embedding extraction (eval, no_grad). Median of the timed steps, after warm-up.
Every preset's network: VGG16 (paper, cpu-small, tiny), EfficientNet-Lite0 (lite0), ResNet-50 (resnet50, resnet-tiny).

    /usr/bin/python3 bench/pytorch/train_step.py --preset cpu-small --batch 16 --steps 10 --warmup 2 \
        --device cpu --json FILE [--threads N] [--clip 10] [--input 224] [--precision fp32|tf32|bf16-cl]
"""
import argparse
import contextlib
import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashionnet_ref as ref  # noqa: E402

PK = {"paper": (8, 4), "cpu-small": (4, 4), "tiny": (2, 4), "lite0": (8, 4), "resnet50": (8, 4),  # config.cpp
      "resnet-tiny": (2, 4)}


def fixed_batch(cfg, n, P, K, device, seed=0):
    """A random batch with P items x K images (n = P*K when it divides, else items cycle), every label present."""
    g = torch.Generator().manual_seed(seed)
    S, A = cfg.input, cfg.attributes
    lm = torch.rand(n, 8, 2, generator=g) * S
    vis = (torch.rand(n, 8, generator=g) < 0.75).float()
    b = {
        "images": torch.randn(n, 3, S, S, generator=g),
        "landmarks": lm, "visible": vis, "landmarks01": (lm / S).reshape(n, 16),
        "vis_label": (1 - vis).reshape(-1).long(),
        "category": torch.randint(0, cfg.categories, (n,), generator=g),
        "item": torch.arange(n) % P,
        "attr": (torch.rand(n, A, generator=g) < 0.3).float(), "attr_known": torch.ones(n, A),
        "w_pos": torch.full((A,), 1.5), "w_neg": torch.full((A,), 0.7),
    }
    return {k: v.to(device) for k, v in b.items()}


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, steps, warmup, device):
    for _ in range(warmup):
        fn()
    sync(device)
    if device == "cuda":  # the timed steps' peak, as bench_train_step measures ours: cudnn.benchmark's trials left out
        torch.cuda.reset_peak_memory_stats()
    times, cpu = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)  # CPU seconds of all threads: robust to a loaded machine
    return times, cpu


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu-small", choices=sorted(ref.PRESETS))
    ap.add_argument("--batch", type=int, default=0, help="images per step (default: the preset's P*K)")
    ap.add_argument("--input", type=int, default=0, help="input side in pixels (default: the preset's)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16-cl"],
                    help="cuda: fp32 (no TF32, as our engine), tf32 (TF32 matmuls and convolutions), or bf16-cl "
                         "(autocast bfloat16 with channels_last tensors): what a GPU user really runs")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    ap.add_argument("--clip", type=float, default=0.0,
                    help="clip the global gradient norm to this (0: off), as the trainer's preset does")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        print("train_step.py: --device cuda but torch sees no GPU", file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    if a.device == "cuda":
        # FP32 on both sides: our engine runs cuDNN with FMA math and cuBLAS without TF32, so PyTorch must too
        # (its cuDNN convolutions default to TF32). cudnn.benchmark: PyTorch's own algorithm search, as ours does.
        # --precision tf32 / bf16-cl measure what a GPU user runs instead, for the record.
        tf32 = a.precision != "fp32"
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True
    elif a.precision != "fp32":
        print("train_step.py: --precision tf32 / bf16-cl are GPU settings; use --device cuda", file=sys.stderr)
        return 2

    cfg = ref.PRESETS[a.preset]
    if a.input:
        cfg = dataclasses.replace(cfg, input=a.input)
    P, K = PK[a.preset]
    n = a.batch or P * K
    model = ref.FashionNetRef(cfg).to(a.device)
    bf16 = a.precision == "bf16-cl"
    if bf16:
        model = model.to(memory_format=torch.channels_last)
    wd = 5e-4 if cfg.backbone == "vgg16" else 1e-4  # the presets' weight decay (config.cpp)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=wd)
    b = fixed_batch(cfg, n, P, K, a.device)
    if bf16:
        b["images"] = b["images"].contiguous(memory_format=torch.channels_last)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    def train_step():
        model.train()
        opt.zero_grad(set_to_none=True)
        with autocast():
            o = model(b["images"], b["landmarks"], b["visible"])
            total, _ = ref.fashionnet_loss(o, b, (1, 1, 1, 1, 1), 0.2, "batch_hard")
        total.backward()
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()

    def embed():
        model.eval()
        with torch.no_grad(), autocast():
            model(b["images"])["embedding"]  # pools at the predicted landmarks, as evaluation does

    train, train_cpu = timed(train_step, a.steps, a.warmup, a.device)
    train_peak = torch.cuda.max_memory_allocated() if a.device == "cuda" else 0
    emb, emb_cpu = timed(embed, a.steps, a.warmup, a.device)
    peak = (max(train_peak, torch.cuda.max_memory_allocated()) if a.device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # Linux: ru_maxrss in KiB
    med_t, med_e = statistics.median(train), statistics.median(emb)
    res = {
        "benchmark": "pytorch_train_step", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": git_commit(), "machine": platform.node(), "cpu": platform.processor() or platform.machine(),
        "device": torch.cuda.get_device_name() if a.device == "cuda" else "cpu",
        "torch": torch.__version__, "threads": torch.get_num_threads(), "preset": a.preset, "batch": n,
        "P": P, "K": K, "input": cfg.input, "width": cfg.width, "dropout": cfg.dropout,
        "parameters": sum(p.numel() for p in model.parameters()), "steps": a.steps, "warmup": a.warmup,
        "train_step_s": {"median": med_t, "min": min(train), "max": max(train), "all": train},
        "train_images_per_s": n / med_t,
        "train_step_cpu_s_median": statistics.median(train_cpu),
        "load_average_1min": os.getloadavg()[0],
        "embed_s": {"median": med_e, "min": min(emb), "max": max(emb), "all": emb},
        "embed_images_per_s": n / med_e,
        "embed_cpu_s_median": statistics.median(emb_cpu),
        "peak_memory_bytes": int(peak),
        "peak_memory_kind": "torch.cuda.max_memory_allocated" if a.device == "cuda" else "max RSS of the process",
        "precision": a.precision, "tf32": (a.precision != "fp32") if a.device == "cuda" else None,
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark) if a.device == "cuda" else None,
    }
    print(f"pytorch {a.preset} batch {n} on {res['device']} ({res['threads']} threads): train step {med_t * 1e3:.1f} ms "
          f"({res['train_images_per_s']:.1f} images/s), embed {med_e * 1e3:.1f} ms ({res['embed_images_per_s']:.1f} "
          f"images/s), peak memory {peak / 2**20:.0f} MiB; CPU time per train step "
          f"{res['train_step_cpu_s_median']:.2f} s, load average {res['load_average_1min']:.1f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
