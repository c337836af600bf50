"""What the side-by-side PyTorch op scripts share: their common options, interleaved timing (as
bench/bench_util.h's time_interleaved), and the row of one shape timed against a copy of its bytes."""
import json
import statistics
import time

import torch


def add_common_arguments(ap):
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="PyTorch's threads (0: its default)")
    ap.add_argument("--json", required=True)


def start(a, **fields):
    """Sets the threads and the seed; returns the output's header with an empty "results"."""
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), **fields, "results": []}


def write_json(path, out):
    with open(path, "w") as f:
        json.dump(out, f, indent=2)


def interleaved_median_ms(fns, repeats):
    """One warm-up round, then `repeats` rounds that run every function once in turn; each one's median in ms.
    Interleaving keeps a baseline (a copy) and the ops it is compared with under the same load."""
    times = [[] for _ in fns]
    for r in range(repeats + 1):
        for i, f in enumerate(fns):
            t0 = time.perf_counter()
            f()
            if r > 0:
                times[i].append(time.perf_counter() - t0)
    return [1e3 * statistics.median(t) for t in times]


def copy_forward_backward_row(shape, forward, forward_backward, repeats):
    """One shape's medians, interleaved with a copy of a tensor of that shape (the bandwidth baseline)."""
    src, dst = torch.randn(*shape), torch.empty(*shape)
    ms = interleaved_median_ms([lambda: dst.copy_(src), forward, forward_backward], repeats)
    return {"shape": list(shape), "copy_ms": ms[0], "forward_ms": ms[1], "fwd_bwd_ms": ms[2]}
