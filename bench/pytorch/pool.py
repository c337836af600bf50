#!/usr/bin/env python3
"""PyTorch's side of bench_pool: global average pooling (F.adaptive_avg_pool2d(x, 1)) and max pooling 3x3
stride 2 pad 1 (F.max_pool2d(x, 3, 2, 1)), forward alone and forward + backward, at each shape; and a copy
of x's bytes (dst.copy_(src)) timed in the same rounds. Float32, CPU, the thread count given. Median of the
rounds after one warm-up round.

    /usr/bin/python3 bench/pytorch/pool.py --op gap --shapes 32,2048,7,7 --repeats 10 --threads 2 --json FILE
"""
import argparse
import json

import torch
import torch.nn.functional as F

from timing import interleaved_median_ms  # bench/pytorch/timing.py (the script's folder is on sys.path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--op", choices=["gap", "maxpool"], required=True)
    ap.add_argument("--shapes", nargs="+", required=True, help="N,C,H,W ...")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    pool = (lambda t: F.adaptive_avg_pool2d(t, 1)) if a.op == "gap" else (lambda t: F.max_pool2d(t, 3, 2, 1))
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "op": a.op, "results": []}
    for spec in a.shapes:
        N, C, H, W = (int(v) for v in spec.split(","))
        x = torch.randn(N, C, H, W).requires_grad_()
        with torch.no_grad():
            gy = torch.randn_like(pool(x))
        src, dst = torch.randn(N, C, H, W), torch.empty(N, C, H, W)

        def forward():
            with torch.no_grad():
                pool(x)

        def forward_backward():
            x.grad = None  # no accumulation pass
            pool(x).backward(gy)

        def copy():
            dst.copy_(src)

        ms = interleaved_median_ms([copy, forward, forward_backward], a.repeats)
        out["results"].append({"shape": [N, C, H, W], "copy_ms": ms[0], "forward_ms": ms[1], "fwd_bwd_ms": ms[2]})
    with open(a.json, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
