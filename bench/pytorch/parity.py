#!/usr/bin/env python3
"""Does our engine compute what PyTorch computes, for the whole FashionNet? (docs/parity.md)

A case folder, written by our side (bench/parity/parity_case.h: the ctest test_pytorch_parity or
the `parity_dump` executable), holds model.safetensors (weights + TrainConfig), inputs.safetensors (the batch) and
outputs.safetensors (our outputs, loss terms and per-parameter gradients after one backward of the total loss).
This script rebuilds the network in PyTorch (fashionnet_ref.py), replays the batch, and compares every output,
every loss term and the gradient of every parameter with the project's one rule
    |x - ref| <= atol + rtol * |ref|
printing the worst element of each tensor. Exit 0 when everything passes, 1 on any failure, 2 on bad input.

    parity.py --case DIR [--case DIR ...] [--device cpu|cuda] [--ref-dtype float64|float32]
    parity.py --build BUILD --out OUT [--device cuda]   # writes the cases with BUILD/bin/parity_dump first
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
OUTPUTS = ["embedding", "category", "attributes", "landmark_loc", "landmark_vis"]
LOSSES = ["lm", "vis", "cat", "attr", "tri", "total"]


def compare(name, got, want, rtol, atol_scale):
    """One tensor: returns (ok, line). NaN must match NaN."""
    got = np.asarray(got, dtype=np.float64).reshape(-1)
    want = np.asarray(want, dtype=np.float64).reshape(-1)
    if got.shape != want.shape:
        return False, f"FAIL {name}: {got.size} values vs reference {want.size}"
    scale = float(np.nanmax(np.abs(want))) if want.size else 0.0
    atol = atol_scale * scale
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
            f"got {got[i]: .8e} ref {want[i]: .8e} (atol {atol:.2e}, rtol {rtol:.0e})" if got.size else f"ok   {name} (empty)")
    return ok, line


def run_case(case, device, dtype, rtol, atol_scale, quiet=False):
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

    torch.manual_seed(0)
    model = ref.FashionNetRef(cfg)
    model.load_weights(weights, paths["model"])
    model = model.to(device=device, dtype=dtype).train()  # the training path; dropout p = 0
    t = {k: torch.from_numpy(v).to(device=device, dtype=dtype) for k, v in inputs.items()}
    n = t["images"].shape[0]
    o = model(t["images"], t["landmarks"], t["visible"])
    b = dict(t)
    b["category"] = t["category"].long()
    b["vis_label"] = t["vis_label"].long()
    b["item"] = t["item"].long()
    margin = float(in_meta.get("triplet_margin", tcfg.get("triplet_margin", 0.2)))
    mining = in_meta.get("triplet_mining", tcfg.get("triplet_mining", "batch_hard"))
    total, terms = ref.fashionnet_loss(o, b, (1, 1, 1, 1, 1), margin, mining)
    total.backward()

    results = []
    for k in OUTPUTS:
        if f"out.{k}" in ours or k in o:
            if f"out.{k}" not in ours or k not in o:
                results.append((False, f"FAIL out.{k}: present on one side only"))
                continue
            results.append(compare(f"out.{k}", ours[f"out.{k}"], o[k].detach().cpu().numpy(), rtol, atol_scale))
    terms["total"] = total
    for k in LOSSES:
        if f"loss.{k}" not in ours or k not in terms:
            results.append((False, f"FAIL loss.{k}: present on one side only"))
            continue
        results.append(compare(f"loss.{k}", ours[f"loss.{k}"], terms[k].detach().cpu().numpy(), rtol, atol_scale))
    for name, p in model.named_parameters():
        key = f"grad.{name}"
        if key not in ours:
            results.append((False, f"FAIL {key}: not in {paths['outputs']}"))
            continue
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        results.append(compare(key, ours[key], g.detach().cpu().numpy(), rtol, atol_scale))
    extra = sorted(k[5:] for k in ours if k.startswith("grad.") and k[5:] not in dict(model.named_parameters()))
    for k in extra:
        results.append((False, f"FAIL grad.{k}: our side has a parameter the reference lacks"))

    ok = all(r[0] for r in results)
    print(f"== parity case {case}: N={n}, input {cfg.input}, width {cfg.width}, pool {cfg.pool_mode}, "
          f"mining {mining}, ours on {out_meta.get('device', '?')}, reference torch {torch.__version__} "
          f"{device} {str(dtype).replace('torch.', '')}")
    for r_ok, line in results:
        if not (quiet and r_ok):
            print("  " + line)
    fails = sum(1 for r in results if not r[0])
    print(f"== {case}: {len(results) - fails}/{len(results)} tensors within tolerance" + ("" if ok else f", {fails} FAILED"))
    return ok, {"case": case, "tensors": len(results), "failed": fails, "lines": [r[1] for r in results]}


def dump_cases(build, out, device):
    """Writes the standard cases with our binary (used on the GPU machine by bench/device_check.sh)."""
    exe = os.path.join(build, "bin", "parity_dump")
    if not os.access(exe, os.X_OK):
        raise FileNotFoundError(f"no executable {exe} (build the 'parity_dump' target first)")
    cases = []
    for name, args in (("tiny", ["--preset", "tiny"]),
                       ("w8_in64_zero_all", ["--preset", "tiny", "--width", "0.125", "--input", "64",
                                             "--pool-mode", "zero", "--mining", "all"])):
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
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where PyTorch (and, with --build, ours) runs")
    ap.add_argument("--ref-dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--rtol", type=float, default=RTOL)
    ap.add_argument("--quiet", action="store_true", help="print only the failing tensors and the summary")
    ap.add_argument("--atol-scale", type=float, default=ATOL_SCALE, help="atol = this * max|ref| per tensor")
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        print("parity.py: --device cuda but torch sees no GPU", file=sys.stderr)
        return 2
    try:
        cases = list(a.case)
        if a.build:
            if not a.out:
                ap.error("--build needs --out")
            cases += dump_cases(a.build, a.out, a.device)
        if not cases:
            ap.error("give --case DIR or --build BUILD --out OUT")
        dtype = torch.float64 if a.ref_dtype == "float64" else torch.float32
        reports, ok = [], True
        for c in cases:
            c_ok, rep = run_case(c, a.device, dtype, a.rtol, a.atol_scale, a.quiet)
            ok &= c_ok
            reports.append(rep)
    except (FileNotFoundError, ValueError, subprocess.CalledProcessError) as e:
        print(f"parity.py: {e}", file=sys.stderr)
        return 2
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "parity.json"), "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "torch": torch.__version__,
                       "device": a.device, "ref_dtype": a.ref_dtype, "rtol": a.rtol, "atol_scale": a.atol_scale,
                       "ok": ok, "cases": reports}, f, indent=1)
    print("parity: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
