#!/usr/bin/env python3
"""Retrieval by category on an ImageFolder of real photos (docs/RESULTS.md, "The mirror image at test time").

A folder of one photo per item has no item to retrieve, so this asks the next question a shop would: do a
held-out photo's nearest training photos show the same kind of garment? Queries are the images
`train --holdout F` left out, the gallery is every other image, and a neighbour is a hit when its class
folder is the query's. Reads the embedding set `fashionnet embed --data DIR --benchmark imagefolder --split all`
writes (P.npy, P.ids.txt; paths relative to DIR, "CLASS/FILE"), and prints, as JSON:
  top_k   the fraction of queries with a same-class photo among their k nearest (k = 1, 5, 10);
  p_at_10 the mean fraction of same-class photos among the 10 nearest;
  map     the mean average precision over the whole ranked gallery.
Nearest: Euclidean on L2-normalised embeddings, as `fashionnet metrics` and `search` rank.

The hold-out is the trainer's (data/split.cpp, restated in bench/pytorch/holdout.py). `--expect N` checks
the count against `fashionnet eval --holdout F`'s.

  python3 bench/realphotos/category_retrieval.py PREFIX [--holdout 0.1] [--expect 377]
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pytorch"))
from holdout import held_out  # noqa: E402  (the trainer's rule, shared with finetune_imagefolder.py)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("prefix", help="embedding set of `embed --split all` (PREFIX.npy, PREFIX.ids.txt)")
    ap.add_argument("--holdout", type=float, default=0.1, help="train's --holdout (default 0.1)")
    ap.add_argument("--expect", type=int, help="the number of held-out images `eval --holdout` scored")
    a = ap.parse_args()
    try:
        emb = np.load(a.prefix + ".npy").astype(np.float64)
        paths = [line.split()[0] for line in open(a.prefix + ".ids.txt") if line.strip()]
    except OSError as e:
        print(f"{e.filename}: {e.strerror} (write it with `fashionnet embed --split all --out {a.prefix}`)",
              file=sys.stderr)
        return 2
    if len(paths) != emb.shape[0]:
        print(f"{a.prefix}: {emb.shape[0]} embeddings but {len(paths)} ids lines", file=sys.stderr)
        return 2
    held = np.array([held_out(p, a.holdout) for p in paths])
    if a.expect is not None and int(held.sum()) != a.expect:
        print(f"{int(held.sum())} held-out images, expected {a.expect}: not the trainer's hold-out", file=sys.stderr)
        return 2
    cls = np.array([p.split("/")[0] for p in paths])
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    q, g = emb[held], emb[~held]
    same = cls[held][:, None] == cls[~held][None, :]
    order = np.argsort(-(q @ g.T), axis=1, kind="stable")  # the largest cosine: the smallest L2 distance
    hits = np.take_along_axis(same, order, axis=1)
    ranks = np.arange(1, hits.shape[1] + 1)
    ap_per_query = (np.cumsum(hits, axis=1) / ranks * hits).sum(axis=1) / np.maximum(hits.sum(axis=1), 1)
    out = {"queries": int(held.sum()), "gallery": int((~held).sum()),
           "top_k": {str(k): float(hits[:, :k].any(axis=1).mean()) for k in (1, 5, 10)},
           "p_at_10": float(hits[:, :10].mean()), "map": float(ap_per_query.mean())}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
