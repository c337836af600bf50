#!/usr/bin/env python3
"""PyTorch's side of bench_batchnorm2d: torch.nn.functional.batch_norm in training mode (batch statistics,
running statistics updated, affine weight and bias), forward alone and forward + backward (gradients of x,
weight and bias), at each shape; and a copy of x's bytes (dst.copy_(src)) timed in the same rounds. Float32,
the thread count given. Median of the rounds after one warm-up round.

    /usr/bin/python3 bench/pytorch/batchnorm2d.py --shapes 32,32,112,112 16,96,80,80 --repeats 10 \
        --threads 2 --json FILE
"""
import argparse

import torch
import torch.nn.functional as F

import timing  # bench/pytorch/timing.py (the script's folder is on sys.path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", nargs="+", required=True, help="N,C,H,W ...")
    timing.add_common_arguments(ap)
    a = ap.parse_args()
    out = timing.start(a)
    for spec in a.shapes:
        N, C, H, W = (int(v) for v in spec.split(","))
        # forward and forward_backward each their own input, so neither finds it in cache from the other
        x1 = torch.randn(N, C, H, W)
        x = torch.randn(N, C, H, W).requires_grad_()
        w = torch.rand(C).add_(0.5).requires_grad_()
        b = torch.rand(C).sub_(0.5).requires_grad_()
        rm, rv = torch.zeros(C), torch.ones(C)
        gy = torch.randn(N, C, H, W)

        def forward():
            with torch.no_grad():
                F.batch_norm(x1, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)

        def forward_backward():
            x.grad = w.grad = b.grad = None  # no accumulation pass
            y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)
            y.backward(gy)

        out["results"].append(timing.copy_forward_backward_row((N, C, H, W), forward, forward_backward, a.repeats))
    timing.write_json(a.json, out)


if __name__ == "__main__":
    main()
