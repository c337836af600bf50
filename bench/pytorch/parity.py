#!/usr/bin/env python3
"""Does our engine compute what PyTorch computes, for the whole FashionNet? (docs/parity.md)

A case folder, written by our side (bench/parity/parity_case.h: the ctest test_pytorch_parity or
the `parity_dump` executable), holds model.safetensors (weights + TrainConfig), inputs.safetensors (the batch) and
outputs.safetensors (our outputs, loss terms and per-parameter gradients after one backward of the total loss, the
batch norm running statistics after that step, and the same batch's outputs in eval mode after it).
This script rebuilds the network in PyTorch (fashionnet_ref.py: VGG16, ResNet-50 or EfficientNet-Lite0), replays
the batch, and compares every output, every loss term, the gradient of every parameter, every running statistic
and every eval-mode output with the project's one rule
    |x - ref| <= atol + rtol * |ref|
printing the worst element of each tensor. Exit 0 when everything passes, 1 on any failure, 2 on bad input.

    parity.py --case DIR [--case DIR ...] [--device cpu|cuda] [--ref-dtype float64|float32] [--probes K]
    parity.py --build BUILD --out OUT [--device cuda] [--cases all|vgg|resnet|lite0|full]
        # writes the standard cases with BUILD/bin/parity_dump first
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashionnet_ref as ref  # noqa: E402

# Our side runs in float32; the reference runs in float64 by default, so the error measured is ours alone.
# rtol: float32 carries ~6e-8 relative error per operation; 15 conv/fc layers forward and back, with sums of up to
#   ~10^5 terms, grow that to ~1e-5 .. 1e-4 in the worst elements; 1e-3 leaves an order of magnitude of headroom
#   while any real bug (wrong index, wrong normaliser, a missed term) gives errors of order 1e-1 .. 1.
# atol: relative to the tensor's scale, ATOL_SCALE * max|ref| of that tensor. An element that is small because
#   large terms cancel (most gradient entries) carries an absolute error set by those terms, not by its own size;
#   a fixed atol would be meaningless across tensors whose scales differ by 10^6 (conv1 vs head gradients).
RTOL = 1e-3
ATOL_SCALE = 1e-4
# The batch-norm backbones' conditioning probe: train-mode batch norm makes many gradients small differences of
#   large terms (its backward removes the per-channel mean and the xhat-component of the upstream gradient; a
#   bias feeding a train-mode BN has a gradient of exactly 0). There float32 itself, PyTorch's included, is off
#   by up to ~1e-1 of the tensor's scale (measured, docs/parity.md), and no fixed rtol can tell rounding from a
#   bug. So the reference is also computed in float32, and each tensor's atol grows by COND_FACTOR times PyTorch
#   float32's own max error on it: ours may be at most COND_FACTOR times as far from float64 as PyTorch's float32
#   is. Off for VGG16 (no batch norm: the plain rule alone holds there).
#   At the real sizes (Lite0 at 192 px, ResNet-50 at 224) float32's error on the worst-conditioned gradients is
#   chaotic: PyTorch's own float32 moves its worst element 10x between 1 and 2 threads, or when the images move
#   by one rounding step (docs/parity.md). One probe then samples that spread once; --probes K takes the largest
#   error over K float32 runs, the first on the case's images, the others on images moved by one float32
#   rounding step at random.
COND_FACTOR = 4.0
OUTPUTS = ["embedding", "category", "attributes", "landmark_loc", "landmark_vis"]
LOSSES = ["lm", "vis", "cat", "attr", "tri", "total"]


def compare(name, got, want, rtol, atol_scale, probe_err=None, cond_factor=0.0):
    """One tensor: returns (ok, line). NaN must match NaN. probe_err: max|probe - want| over the float32 probes;
    when given, atol grows by cond_factor * probe_err (the case's own conditioning, see COND_FACTOR)."""
    got = np.asarray(got, dtype=np.float64).reshape(-1)
    want = np.asarray(want, dtype=np.float64).reshape(-1)
    if got.shape != want.shape:
        return False, f"FAIL {name}: {got.size} values vs reference {want.size}"
    scale = float(np.nanmax(np.abs(want))) if want.size else 0.0
    atol = atol_scale * scale
    cond = ""
    if probe_err is not None and want.size:
        f32 = probe_err
        atol += cond_factor * f32
        cond = f", torch f32 {f32 / scale if scale > 0 else f32:.1e}"
    err = np.abs(got - want)
    excess = err - (atol + rtol * np.abs(want))
    excess[np.isnan(got) != np.isnan(want)] = np.inf
    excess[np.isnan(got) & np.isnan(want)] = -np.inf
    ok = bool(excess.size == 0 or excess.max() <= 0)
    # The worst element: the one closest to (or furthest past) its tolerance.
    ratio = np.where(np.isnan(got) != np.isnan(want), np.inf, np.nan_to_num(err) / (atol + rtol * np.abs(want) + 1e-300))
    i = int(np.argmax(ratio)) if ratio.size else 0
    rel = float(np.nanmax(err) / scale) if scale > 0 else float(np.nanmax(err, initial=0.0))
    line = (f"{'ok  ' if ok else 'FAIL'} {name:44s} n={got.size:<8d} max|err|/max|ref| {rel:9.2e}  worst [{i}] "
            f"got {got[i]: .8e} ref {want[i]: .8e} (atol {atol:.2e}, rtol {rtol:.0e}{cond})" if got.size else f"ok   {name} (empty)")
    return ok, line


def replay(cfg, weights, inputs, margin, mining, device, dtype, path):
    """The twin on one case: {name: numpy} with the names of outputs.safetensors (out.*, loss.*, grad.*, buffer.*,
    eval.*), computed in `dtype`."""
    torch.manual_seed(0)
    model = ref.FashionNetRef(cfg)
    model.load_weights(weights, path)
    model = model.to(device=device, dtype=dtype).train()  # the training path; dropout p = 0
    t = {k: torch.from_numpy(v).to(device=device, dtype=dtype) for k, v in inputs.items()}
    o = model(t["images"], t["landmarks"], t["visible"])
    b = dict(t)
    for k in ("category", "vis_label", "item"):
        b[k] = t[k].long()
    total, terms = ref.fashionnet_loss(o, b, (1, 1, 1, 1, 1), margin, mining)
    total.backward()
    terms["total"] = total
    np_ = lambda x: x.detach().cpu().double().numpy()  # noqa: E731
    r = {f"out.{k}": np_(v) for k, v in o.items()}
    r.update({f"loss.{k}": np_(v) for k, v in terms.items()})
    for name, p in model.checkpoint_parameters():
        r[f"grad.{name}"] = np_(p.grad) if p.grad is not None else np.zeros(tuple(p.shape))
    # Batch norm's running statistics after the training forward (momentum 0.1; running_var from the unbiased
    # batch variance, as PyTorch's).
    r.update({f"buffer.{name}": np_(b) for name, b in model.checkpoint_buffers()})
    # The same batch in eval mode after the step: batch norm on the running statistics above.
    model.eval()
    with torch.no_grad():
        e = model(t["images"], t["landmarks"], t["visible"])
    r.update({f"eval.{k}": np_(v) for k, v in e.items()})
    return r


def moved_by_rounding(inputs, seed):
    """The case's inputs with each image value moved by one float32 rounding step up, down or not, at random."""
    rng = np.random.RandomState(seed)
    x = np.asarray(inputs["images"], dtype=np.float32)
    step = rng.choice(np.array([-1, 0, 1], dtype=np.float32), size=x.shape) * np.float32(np.finfo(np.float32).eps)
    return dict(inputs, images=(x * (np.float32(1) + step)).astype(np.float32))


def probe_errors(cfg, weights, inputs, margin, mining, device, path, want, probes):
    """Per tensor, the largest max|torch float32 - want| over `probes` float32 runs (see COND_FACTOR)."""
    err = {}
    for j in range(probes):
        p = replay(cfg, weights, inputs if j == 0 else moved_by_rounding(inputs, j), margin, mining, device,
                   torch.float32, path)
        for k, v in p.items():
            if k in want and np.size(want[k]):
                e = float(np.nanmax(np.abs(np.asarray(v, dtype=np.float64).reshape(-1) - want[k].reshape(-1))))
                err[k] = max(err.get(k, 0.0), e)
    return err


def run_case(case, device, dtype, rtol, atol_scale, quiet=False, cond_factor=None, probes=1):
    """Replays one case folder; returns (ok, report dict)."""
    paths = {k: os.path.join(case, f"{k}.safetensors") for k in ("model", "inputs", "outputs")}
    for p in paths.values():
        if not os.path.isfile(p):
            raise FileNotFoundError(f"parity case {case}: missing {p}")
    weights, meta = ref.read_safetensors(paths["model"])
    inputs, in_meta = ref.read_safetensors(paths["inputs"])
    ours, out_meta = ref.read_safetensors(paths["outputs"])
    if "config" not in meta:
        raise ValueError(f"{paths['model']}: no 'config' in its metadata (not a FashionNet checkpoint)")
    tcfg = json.loads(meta["config"])
    cfg = ref.NetConfig.from_json(tcfg["net"])
    if cfg.dropout != 0:
        raise ValueError(f"{paths['model']}: dropout {cfg.dropout}; parity needs 0 (masks differ)")
    margin = float(in_meta.get("triplet_margin", tcfg.get("triplet_margin", 0.2)))
    mining = in_meta.get("triplet_mining", tcfg.get("triplet_mining", "batch_hard"))
    n = inputs["images"].shape[0]
    want = replay(cfg, weights, inputs, margin, mining, device, dtype, paths["model"])
    if cond_factor is None:
        cond_factor = COND_FACTOR if cfg.backbone != "vgg16" else 0.0
    probe = None
    if cond_factor > 0 and dtype == torch.float64:
        probe = probe_errors(cfg, weights, inputs, margin, mining, device, paths["model"], want, probes)

    results = []
    groups = (("out.", OUTPUTS), ("loss.", LOSSES), ("grad.", None), ("buffer.", None), ("eval.", OUTPUTS))
    for prefix, names in groups:
        if prefix == "eval." and not any(k.startswith("eval.") for k in ours):
            continue  # a case written before eval outputs were
        keys = [prefix + k for k in names] if names else sorted(k for k in want if k.startswith(prefix))
        if prefix == "out.":
            keys = [k for k in keys if k in ours or k in want]
        for key in keys:
            if key not in ours or key not in want:
                results.append((False, f"FAIL {key}: present on one side only"))
                continue
            results.append(compare(key, ours[key], want[key], rtol, atol_scale, probe and probe.get(key), cond_factor))
        if not names:
            for k in sorted(k for k in ours if k.startswith(prefix) and k not in want):
                results.append((False, f"FAIL {k}: our side has a tensor the reference lacks"))

    ok = all(r[0] for r in results)
    print(f"== parity case {case}: {cfg.backbone}, N={n}, input {cfg.input}, width {cfg.width}, pool {cfg.pool_mode}, "
          f"mining {mining}, ours on {out_meta.get('device', '?')}, reference torch {torch.__version__} "
          f"{device} {str(dtype).replace('torch.', '')}" + (f", conditioning probe x{cond_factor:g}" if probe else "")
          + (f" over {probes} float32 runs" if probe and probes > 1 else ""))
    for r_ok, line in results:
        if not (quiet and r_ok):
            print("  " + line)
    fails = sum(1 for r in results if not r[0])
    print(f"== {case}: {len(results) - fails}/{len(results)} tensors within tolerance" + ("" if ok else f", {fails} FAILED"))
    return ok, {"case": case, "probes": probes if probe else 0, "tensors": len(results), "failed": fails,
                "lines": [r[1] for r in results]}


# The standard cases (the ctest tests/test_pytorch_parity.cpp runs the same shapes on the CPU).
STANDARD_CASES = {
    "vgg": [("tiny", ["--preset", "tiny"]),
            ("w8_in64_zero_all", ["--preset", "tiny", "--width", "0.125", "--input", "64", "--pool-mode", "zero",
                                  "--mining", "all"])],
    # ResNet-50 at width 1/16 (channels 4 .. 128), 64x64: trunk map 4x4, layer4's 2x2.
    "resnet": [("resnet_tiny", ["--preset", "resnet-tiny", "--seed", "5"])],
    # EfficientNet-Lite0 at width 1/4 (channels 4 .. 80, head 320), 96x96: trunk map 6x6, the last stage's 3x3.
    "lite0": [("lite0_w4_in96_zero_all", ["--preset", "tiny", "--backbone", "efficientnet_lite0", "--width", "0.25",
                                          "--input", "96", "--pool-mode", "zero", "--mining", "all", "--P", "3",
                                          "--K", "3", "--seed", "7"])],
    # The real sizes, batch 8 (P 2 x K 4): ResNet-50 at 224, EfficientNet-Lite0 at 192, every kernel path the
    # presets train on. Not in "all" (a few minutes on 2 CPU cores); float32's spread sampled by PROBES_FULL runs.
    "full": [("resnet50_224", ["--preset", "resnet50", "--P", "2", "--K", "4", "--seed", "5"]),
             ("lite0_192", ["--preset", "lite0", "--P", "2", "--K", "4", "--seed", "5"])],
}
PROBES_FULL = 8


def dump_cases(build, out, device, which="all"):
    """Writes the standard cases with our binary (used on the GPU machine by bench/device_check.sh)."""
    exe = os.path.join(build, "bin", "parity_dump")
    if not os.access(exe, os.X_OK):
        raise FileNotFoundError(f"no executable {exe} (build the 'parity_dump' target first)")
    cases = []
    groups = [g for g in STANDARD_CASES if g != "full"] if which == "all" else [which]
    for name, args in [c for g in groups for c in STANDARD_CASES[g]]:
        d = os.path.join(out, "parity", f"{name}_{device}")
        cmd = [exe, "--out", d, "--device", device] + args
        print("$ " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        cases.append(d)
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", action="append", default=[], help="a case folder written by our side (repeatable)")
    ap.add_argument("--build", help="build folder: write the standard cases with BUILD/bin/parity_dump")
    ap.add_argument("--out", help="with --build: where the cases and parity.json go")
    ap.add_argument("--cases", default="all", choices=["all"] + list(STANDARD_CASES),
                    help="with --build: which standard cases to write")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where PyTorch (and, with --build, ours) runs")
    ap.add_argument("--ref-dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--probes", type=int, default=None,
                    help=f"float32 runs sampling the case's conditioning (default 1; {PROBES_FULL} with --cases full)")
    ap.add_argument("--rtol", type=float, default=RTOL)
    ap.add_argument("--quiet", action="store_true", help="print only the failing tensors and the summary")
    ap.add_argument("--atol-scale", type=float, default=ATOL_SCALE, help="atol = this * max|ref| per tensor")
    ap.add_argument("--cond-factor", type=float, default=None,
                    help=f"atol += this * max|torch f32 - f64| per tensor (default {COND_FACTOR:g} for batch-norm "
                         "backbones, 0 for vgg16; only with --ref-dtype float64)")
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        print("parity.py: --device cuda but torch sees no GPU", file=sys.stderr)
        return 2
    # The float32 conditioning probe must be true float32: cuDNN's convolutions default to TF32 on Ampere and later
    # (10-bit mantissa), which would widen the allowance ~1000x.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        cases = list(a.case)
        if a.build:
            if not a.out:
                ap.error("--build needs --out")
            cases += dump_cases(a.build, a.out, a.device, a.cases)
        if not cases:
            ap.error("give --case DIR or --build BUILD --out OUT")
        dtype = torch.float64 if a.ref_dtype == "float64" else torch.float32
        reports, ok = [], True
        for c in cases:
            probes = a.probes or (PROBES_FULL if a.build and a.cases == "full" else 1)
            c_ok, rep = run_case(c, a.device, dtype, a.rtol, a.atol_scale, a.quiet, a.cond_factor, probes)
            ok &= c_ok
            reports.append(rep)
    except (FileNotFoundError, ValueError, subprocess.CalledProcessError) as e:
        print(f"parity.py: {e}", file=sys.stderr)
        return 2
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "parity.json"), "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "torch": torch.__version__,
                       "device": a.device, "ref_dtype": a.ref_dtype, "rtol": a.rtol, "atol_scale": a.atol_scale, "cond_factor": a.cond_factor,
                       "ok": ok, "cases": reports}, f, indent=1)
    print("parity: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
