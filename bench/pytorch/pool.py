#!/usr/bin/env python3
"""PyTorch's side of bench_pool: global average pooling (F.adaptive_avg_pool2d(x, 1)) and max pooling 3x3
stride 2 pad 1 (F.max_pool2d(x, 3, 2, 1)), forward alone and forward + backward, at each shape; and a copy
of x's bytes (dst.copy_(src)) timed in the same rounds. Float32, CPU, the thread count given. Median of the
rounds after one warm-up round.

    /usr/bin/python3 bench/pytorch/pool.py --op gap --shapes 32,2048,7,7 --repeats 10 --threads 2 --json FILE
"""
import argparse

import torch
import torch.nn.functional as F

import timing  # bench/pytorch/timing.py (the script's folder is on sys.path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--op", choices=["gap", "maxpool"], required=True)
    ap.add_argument("--shapes", nargs="+", required=True, help="N,C,H,W ...")
    timing.add_common_arguments(ap)
    a = ap.parse_args()
    out = timing.start(a, op=a.op)
    pool = (lambda t: F.adaptive_avg_pool2d(t, 1)) if a.op == "gap" else (lambda t: F.max_pool2d(t, 3, 2, 1))
    for spec in a.shapes:
        N, C, H, W = (int(v) for v in spec.split(","))
        x = torch.randn(N, C, H, W).requires_grad_()
        with torch.no_grad():
            gy = torch.randn_like(pool(x))

        def forward():
            with torch.no_grad():
                pool(x)

        def forward_backward():
            x.grad = None  # no accumulation pass
            pool(x).backward(gy)

        out["results"].append(timing.copy_forward_backward_row((N, C, H, W), forward, forward_backward, a.repeats))
    timing.write_json(a.json, out)


if __name__ == "__main__":
    main()
