#!/usr/bin/env python3
"""PyTorch's side of bench_batchnorm2d: torch.nn.functional.batch_norm in training mode (batch statistics,
running statistics updated, affine weight and bias), forward alone and forward + backward (gradients of x,
weight and bias), at each shape; and a copy of x's bytes (dst.copy_(src)) timed in the same rounds. Float32,
the thread count given. Median of the rounds after one warm-up round.

    /usr/bin/python3 bench/pytorch/batchnorm2d.py --shapes 32,32,112,112 16,96,80,80 --repeats 10 \
        --threads 2 --json FILE
"""
import argparse
import json

import torch
import torch.nn.functional as F

from timing import interleaved_median_ms  # bench/pytorch/timing.py (the script's folder is on sys.path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", nargs="+", required=True, help="N,C,H,W ...")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "results": []}
    for spec in a.shapes:
        N, C, H, W = (int(v) for v in spec.split(","))
        # forward and forward_backward each their own input, so neither finds it in cache from the other
        x1 = torch.randn(N, C, H, W)
        x = torch.randn(N, C, H, W).requires_grad_()
        w = torch.rand(C).add_(0.5).requires_grad_()
        b = torch.rand(C).sub_(0.5).requires_grad_()
        rm, rv = torch.zeros(C), torch.ones(C)
        gy = torch.randn(N, C, H, W)
        src, dst = torch.randn(N, C, H, W), torch.empty(N, C, H, W)

        def forward():
            with torch.no_grad():
                F.batch_norm(x1, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)

        def forward_backward():
            x.grad = w.grad = b.grad = None  # no accumulation pass
            y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)
            y.backward(gy)

        def copy():
            dst.copy_(src)

        ms = interleaved_median_ms([copy, forward, forward_backward], a.repeats)
        out["results"].append({"shape": [N, C, H, W], "copy_ms": ms[0], "forward_ms": ms[1], "fwd_bwd_ms": ms[2]})
    with open(a.json, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
