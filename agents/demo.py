"""``make demo``: train an NCP-CfC agent on ncp/CartPoleNoVel-v1, evaluate it, audit it, say where it all is.

Usage: ``python -m agents.demo [--steps N] [--out DIR] [--seed N]`` (defaults: the preset's 100k steps,
``runs/demo``, seed 0). Uses one torch thread.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

ENV = "ncp/CartPoleNoVel-v1"
PRESET = "cartpole_novel_cfc"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo.

    :param argv: command-line arguments without the program name
    :return: exit code
    """
    # Headless rendering (rgb_array): keep SDL from looking for a display or sound device.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    parser = argparse.ArgumentParser(prog="python -m agents.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="training budget (default: the preset's)")
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=20, help="evaluation episodes")
    args = parser.parse_args(argv)

    import torch

    from .audit import run_audit
    from .errors import UsageError
    from .evaluate import evaluate
    from .train import train

    torch.set_num_threads(1)
    try:
        print(f"[1/3] training RecurrentPPO + NCP (AutoNCP-wired CfC) on {ENV} (preset {PRESET}) ...", flush=True)
        run_dir = train(env_id=ENV, preset=PRESET, cell="cfc", steps=args.steps, seed=args.seed, out=args.out,
                        force=True)
        import yaml

        policy = yaml.safe_load((run_dir / "config.yaml").read_text())["policy"]["class"]
        print(f"      trained with {policy}; run directory {run_dir}")
        print(f"[2/3] evaluating over {args.episodes} episodes ...", flush=True)
        res = evaluate(run_dir, episodes=args.episodes)
        print(f"      mean return {res.mean:.1f} ± {res.std:.1f} (max 500) with {res.checkpoint.name}")
        print("[3/3] auditing ...", flush=True)
        try:
            audit_dir = run_audit(run_dir, episodes=3)
        except UsageError as err:
            audit_dir = None
            print(f"      audit skipped: {err}")
    except UsageError as err:
        print(f"demo: error: {err}", file=sys.stderr)
        return 2
    print("\nwhere everything is:")
    print(f"  run directory     {run_dir}/ (config.yaml, model_best.zip, model_last.zip, metrics.json)")
    print(f"  TensorBoard       tensorboard --logdir {run_dir / 'tb'}")
    if audit_dir is not None:
        print(f"  audit             {audit_dir}/summary.md (heatmap, wiring, attribution, ablation, video)")
    print(f"  evaluate again    ncp evaluate {run_dir} --episodes 20")
    print(f"  record a video    ncp record {run_dir} --out {run_dir / 'episode.mp4'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
