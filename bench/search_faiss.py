#!/usr/bin/python3
"""The FAISS baseline of bench_search: exact inner-product search (IndexFlatIP) of the same .npy data.

Run by bench_search --faiss with Debian's /usr/bin/python3 (apt-get install python3-faiss). Loads the query
and gallery matrices (float32, rows already L2-normalised), warms up, times `repeats` full searches, and
writes the neighbour ids of the last search as float32 .npy (ids < 2^24 are exact in float32, so our
float32-only .npy reader can take them) and the timings as JSON.
"""
import argparse
import json
import sys
import time

import numpy as np

try:
    import faiss
except ImportError:
    sys.exit("search_faiss.py: faiss is not installed for %s (apt-get install python3-faiss)" % sys.executable)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--query", required=True)
    ap.add_argument("--gallery", required=True)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--ids-out", required=True)
    ap.add_argument("--json-out", required=True)
    a = ap.parse_args()

    q = np.load(a.query)
    g = np.load(a.gallery)
    assert q.dtype == np.float32 and g.dtype == np.float32 and q.shape[1] == g.shape[1], (q.shape, g.shape)
    assert g.shape[0] < 2 ** 24, "ids must be exact in float32"
    faiss.omp_set_num_threads(a.threads)
    index = faiss.IndexFlatIP(g.shape[1])
    index.add(g)

    for _ in range(a.warmup):
        index.search(q, a.k)
    times = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        _, ids = index.search(q, a.k)
        times.append(time.perf_counter() - t0)

    np.save(a.ids_out, ids.astype(np.float32))
    with open(a.json_out, "w") as f:
        json.dump({"faiss_version": faiss.__version__, "numpy_version": np.__version__, "threads": a.threads,
                   "times_s": times, "median_s": float(np.median(times))}, f)


if __name__ == "__main__":
    main()
