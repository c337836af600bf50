#!/usr/bin/env python3
"""PyTorch side of bench_depthwise_conv2d: torch.nn.functional.conv2d with groups = C (no bias), per shape the
median forward time and the median forward + backward (data and filter gradients, torch.autograd.grad) time,
after a warm-up, on the CPU with a fixed thread count.

    /usr/bin/python3 bench/pytorch/depthwise_conv2d.py --shapes '[[N, C, H, W, k, stride], ...]' \
        --threads 2 --repeats 10 --json FILE
"""
import argparse
import json
import statistics
import time

import torch

import timing  # bench/pytorch/timing.py (the script's folder is on sys.path)


def median_ms(fn, repeats, warmup_s=0.5, warmup_calls=10):
    # Warm-up: 2 calls, then more until warmup_calls calls or warmup_s seconds, whichever comes first (the
    # slow backward paths take seconds per call).
    t0, n = time.perf_counter(), 0
    while n < 2 or (n < warmup_calls and time.perf_counter() - t0 < warmup_s):
        fn()
        n += 1
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(t)


def time_shape(shape, repeats):
    n, c, h, w, k, s = shape
    x = torch.randn(n, c, h, w, requires_grad=True)
    wt = torch.randn(c, 1, k, k, requires_grad=True)
    conv = lambda: torch.nn.functional.conv2d(x, wt, None, s, k // 2, 1, c)  # noqa: E731
    with torch.no_grad():
        gy = torch.randn_like(conv())

    def fwd():
        with torch.no_grad():
            conv()

    def fwd_bwd():
        torch.autograd.grad(conv(), (x, wt), gy)

    return {"shape": shape, "forward_ms": median_ms(fwd, repeats), "fwd_bwd_ms": median_ms(fwd_bwd, repeats)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", required=True)
    timing.add_common_arguments(ap)
    a = ap.parse_args()
    out = timing.start(a)
    shapes = json.loads(a.shapes)
    # A fresh process timed its first shape 3-10x slower than the same shape timed after a larger one: glibc
    # serves allocations above its mmap threshold (128 KB at start) with fresh mmaps, page faults on every
    # call, until freeing a large mmapped block raises the threshold to that block's size (for blocks up to
    # 32 MB). A training process is long past that; freeing one 24 MB block first puts this one in the same
    # state (1152 channels at 5x5: f+b 4.9 ms before, 1.0 ms after).
    big = torch.empty(6 << 20)  # 24 MB of float32
    del big
    out["results"] = [time_shape(shape, a.repeats) for shape in shapes]
    timing.write_json(a.json, out)


if __name__ == "__main__":
    main()
