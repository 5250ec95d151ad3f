"""Time ncp-policies' LTC / CfC layers against ncps 1.0.1 in the same run (one torch thread).

Training step: forward + backward of a (B=32, T=64, F=8) batch through
  LTC on AutoNCP(32, 4), wired CfC on AutoNCP(32, 4), dense CfC (64 units), and nn.LSTM(8, 64)
  as a reference point.
Rollout step: one time step at batch 1 and 8 under torch.no_grad(), for each network: the cell
  ``cell(x, h)`` and the layer's ``run`` / ``forward`` on a (B, 1, 8) input (the path a policy
  takes per environment step); ncps' LTC cell and layer, and nn.LSTMCell(8, 64) as the reference
  point of the "within 2x" targets. Each target is printed as PASS or MISS.

Before timing, every pair is checked: ncps' state_dict is loaded into ours (strict) and the
outputs and final states must agree within 1e-5; the script exits with status 1 otherwise.
Times are the minimum over --repeats runs; ours and ncps alternate so both see the same machine
load. Compare ratios, not absolute times, across machines.

    python scripts/bench_networks.py [--repeats 5] [--quick]

Needs ncps==1.0.1 (a test dependency of this project).
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor, nn

try:
    import ncps.torch as ncps_torch
    import ncps.wirings as ncps_wirings
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("bench_networks.py compares against ncps 1.0.1: pip install ncps==1.0.1")

from ncp_policies import CfC, LTC
from ncp_policies import wirings as our_wirings
from ncp_policies.cells.ltc_kernel import extension_available

BATCH, STEPS, FEATURES = 32, 64, 8
UNITS, MOTOR, DENSE_UNITS, WIRING_SEED = 32, 4, 64, 1
TOLERANCE = 1e-5


def best_time(fn: Callable[[], object], repeats: int, inner: int = 1) -> float:
    """Minimum over ``repeats`` of the mean seconds per call of ``inner`` calls (after one warm-up)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - start) / inner)
    return best


def interleaved(fns: List[Callable[[], object]], repeats: int, inner: int = 1) -> List[float]:
    """best_time of several functions, one repeat of each in turn."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], best_time(fn, 1, inner))
    return best


def train_step(module: nn.Module, x: Tensor) -> Callable[[], None]:
    """Forward + backward of the whole output sequence and final state."""

    def run() -> None:
        module.zero_grad(set_to_none=True)
        out, h = module(x)
        h = h[0] if isinstance(h, tuple) else h
        (out.sum() + h.sum()).backward()

    return run


def check_pair(name: str, ours: nn.Module, ref: nn.Module, x: Tensor) -> Optional[str]:
    """Load ref's weights into ours and compare outputs; returns an error message or None."""
    ours.load_state_dict(ref.state_dict(), strict=True)
    with torch.no_grad():
        out_o, h_o = ours(x)
        out_r, h_r = ref(x)
    err = max(float((out_o - out_r).abs().max()), float((h_o - h_r).abs().max()))
    print(f"  check {name:<34} max |ours - ncps| = {err:.2e}")
    if not err <= TOLERANCE:
        return f"{name}: outputs differ from ncps by {err:.3g} > {TOLERANCE}"
    return None


def wiring_pair() -> Tuple[object, object]:
    """The same AutoNCP wiring from ncp_policies and from ncps."""
    ours = our_wirings.AutoNCP(UNITS, MOTOR, seed=WIRING_SEED)
    ref = ncps_wirings.AutoNCP(UNITS, MOTOR, seed=WIRING_SEED)
    return ours, ref


def build_pairs() -> List[Tuple[str, nn.Module, nn.Module]]:
    """(name, ours, ncps) for every trained network."""
    torch.manual_seed(0)
    pairs = []
    ours_w, ref_w = wiring_pair()
    pairs.append((f"LTC  AutoNCP({UNITS}, {MOTOR})", LTC(FEATURES, ours_w), ncps_torch.LTC(FEATURES, ref_w)))
    ours_w, ref_w = wiring_pair()
    pairs.append((f"CfC  AutoNCP({UNITS}, {MOTOR}) (wired)", CfC(FEATURES, ours_w), ncps_torch.CfC(FEATURES, ref_w)))
    dense = (CfC(FEATURES, DENSE_UNITS), ncps_torch.CfC(FEATURES, DENSE_UNITS))
    pairs.append((f"CfC  dense ({DENSE_UNITS} units)", *dense))
    return pairs


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats (the minimum is kept)")
    parser.add_argument("--quick", action="store_true", help="2 repeats and fewer rollout steps (smoke run)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    repeats = 2 if args.quick else args.repeats
    step_calls = 100 if args.quick else 1000

    torch.set_num_threads(1)
    kernel = "yes" if extension_available() else "NO (pure torch)"
    print(f"torch {torch.__version__}, 1 thread; LTC C++ kernel: {kernel}")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, STEPS, FEATURES, generator=gen)

    pairs = build_pairs()
    print("Checking outputs against ncps on the same weights:")
    errors = [e for e in (check_pair(name, ours, ref, x) for name, ours, ref in pairs) if e]
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1

    rows = []
    print(f"\nTiming fwd+bwd, B={BATCH} T={STEPS} F={FEATURES}, min of {repeats} ...")
    for name, ours, ref in pairs:
        t_ours, t_ref = interleaved([train_step(ours, x), train_step(ref, x)], repeats)
        rows.append((f"train {name}", t_ours, t_ref))
    lstm = nn.LSTM(FEATURES, DENSE_UNITS, batch_first=True)
    t_lstm_train = best_time(train_step(lstm, x), repeats)
    rows.append((f"train nn.LSTM({FEATURES}, {DENSE_UNITS}) (reference)", t_lstm_train, None))

    ours_ltc, ref_ltc = pairs[0][1], pairs[0][2]
    x1 = torch.randn(1, 1, FEATURES, generator=gen)
    h1 = torch.zeros(1, UNITS)
    with torch.no_grad():
        out_o, h_o = ours_ltc(x1, h1)
        out_r, h_r = ref_ltc(x1, h1)
    step_err = max(float((out_o - out_r).abs().max()), float((h_o - h_r).abs().max()))
    if not step_err <= TOLERANCE:
        print(f"LTC step: outputs differ from ncps by {step_err:.3g}", file=sys.stderr)
        return 1

    targets = [  # (name, measured, target, higher is better)
        ("train LTC >= 5x ncps", rows[0][2] / rows[0][1], 5.0, True),
        ("train wired CfC >= 3x ncps", rows[1][2] / rows[1][1], 3.0, True),
        ("train dense CfC >= 2x ncps", rows[2][2] / rows[2][1], 2.0, True),
    ]
    for batch in (1, 8):
        print(f"Timing one rollout step at batch {batch}, no_grad, min of {repeats} x {step_calls} calls ...")
        step_rows, lstm_time = rollout_rows(pairs, batch, gen, repeats, step_calls)
        rows += step_rows
        for name, t_ours, _ in step_rows:
            if name.startswith("step LTC") and "ncps" not in name:
                targets.append((f"{name} <= 2x nn.LSTMCell", t_ours / lstm_time, 2.0, False))

    print()
    print(f"{'benchmark':<52} {'ours':>10} {'ncps':>10} {'ncps/ours':>10}")
    for name, t_ours, t_ref in rows:
        ref_col = f"{_fmt(t_ref):>10}" if t_ref is not None else f"{'-':>10}"
        ratio = f"{t_ref / t_ours:>9.1f}x" if t_ref is not None else f"{'-':>10}"
        print(f"{name:<52} {_fmt(t_ours):>10} {ref_col} {ratio}")
    print("\nTargets:")
    for name, value, target, higher in targets:
        ok = value >= target if higher else value <= target
        print(f"  {'PASS' if ok else 'MISS'}  {name:<60} {value:6.2f}x")
    return 0


def rollout_rows(
    pairs: List[Tuple[str, nn.Module, nn.Module]], batch: int, gen: torch.Generator, repeats: int, calls: int
) -> Tuple[List[Tuple[str, float, Optional[float]]], float]:
    """One no-grad step at ``batch``: cells ``cell(x, h)`` and layers ``run`` / ``forward`` on (B, 1, F).

    :return: (rows (name, ours, ncps or None), the nn.LSTMCell(F, 64) reference time).
    """
    x = torch.randn(batch, 1, FEATURES, generator=gen)
    x_step = x[:, 0]
    lstm_cell = nn.LSTMCell(FEATURES, DENSE_UNITS)
    hc = (torch.zeros(batch, DENSE_UNITS), torch.zeros(batch, DENSE_UNITS))
    names = ["LTC", "wired CfC", "dense CfC"]
    fns, labels, has_ref = [], [], []
    for short, (_, ours, ref) in zip(names, pairs):
        h = torch.zeros(batch, ours.state_size)
        fns += [
            lambda c=ours.rnn_cell, h=h: c(x_step, h),
            lambda m=ours, h=h: m.run(x, h),
            lambda m=ours, h=h: m(x, h),
        ]
        labels += [f"step {short} cell(x, h), B={batch}", f"step {short} layer.run, B={batch}",
                   f"step {short} layer(x, h), B={batch}"]
        if short == "LTC":
            fns += [lambda c=ref.rnn_cell, h=h: c(x_step, h), lambda m=ref, h=h: m(x, h)]
    fns.append(lambda: lstm_cell(x_step, hc))
    with torch.no_grad():
        times = interleaved(fns, repeats, inner=calls)
    ltc_ours, ltc_ref = times[:3], times[3:5]
    rest = times[5:-1]
    out: List[Tuple[str, float, Optional[float]]] = [
        (labels[0], ltc_ours[0], ltc_ref[0]),
        (labels[1], ltc_ours[1], None),
        (labels[2], ltc_ours[2], ltc_ref[1]),
    ]
    out += [(label, t, None) for label, t in zip(labels[3:], rest)]
    out.append((f"step nn.LSTMCell({FEATURES}, {DENSE_UNITS}), B={batch} (reference)", times[-1], None))
    return out, times[-1]


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f} us"


if __name__ == "__main__":
    sys.exit(main())
