"""What the side-by-side PyTorch scripts share: interleaved timing, as bench/bench_util.h's time_interleaved."""
import statistics
import time


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
