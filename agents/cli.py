"""The ``ncp`` console command: ``train``, ``evaluate``, ``record``, ``audit``, ``list``.

Every user mistake (unknown env id, preset, cell, mismatched spaces, missing files) ends in one
line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from .algos import CELLS
from .errors import UsageError


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` (one line) instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _positive(text: str) -> int:
    try:
        value = int(float(text)) if "e" in text.lower() else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """:return: the ``ncp`` argument parser."""
    parser = _Parser(prog="ncp", description="Train, evaluate, record and audit Neural Circuit Policy agents.")
    parser.add_argument("--threads", type=_positive, default=1, help="torch CPU threads (default 1)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train an agent (default: RecurrentPPO + AutoNCP-wired CfC)")
    t.add_argument("--env", help="Gymnasium id, e.g. ncp/CartPoleNoVel-v1 or CartPole-v1")
    t.add_argument("--preset", help="preset name (see `ncp list`) or path to a .yaml; default: chosen from --env")
    t.add_argument("--cell", choices=CELLS, help="NCP cell (overrides the preset's)")
    t.add_argument("--steps", type=_positive, help="training budget in env steps (with --resume: the total)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    t.add_argument("--out", help="run directory (default runs/<preset>_<env>_<cell>_seed<seed>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from model_last.zip")
    t.add_argument("--force", action="store_true", help="overwrite an existing run directory")
    t.add_argument("--eval-freq", type=_positive, help="evaluate every N env steps (overrides the preset)")
    t.add_argument("--eval-episodes", type=_positive, help="episodes per evaluation (overrides the preset)")
    t.add_argument("--no-progress-bar", action="store_true")
    t.add_argument("--verbose", type=int, default=0, help="SB3 verbosity")

    for name, text in (("evaluate", "mean ± std return of a trained model"),
                       ("record", "video (mp4/gif) of a trained model"),
                       ("audit", "audit folder of a trained model (neurons, wiring, attributions)")):
        p = sub.add_parser(name, help=text)
        p.add_argument("run", metavar="RUN_DIR|MODEL")
        p.add_argument("--env", help="use this env instead of the training one (same spaces)")
        p.add_argument("--episodes", type=_positive, default={"evaluate": 10, "record": 1, "audit": 3}[name])
        p.add_argument("--seed", type=int, default={"audit": 0}.get(name, 12345))
        p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
        if name != "audit":
            p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                           help="which checkpoint of a run directory (default best)")
            p.add_argument("--stochastic", action="store_true", help="sample actions (default: deterministic)")
        if name in ("record", "audit"):
            p.add_argument("--out", help="record: FILE.mp4|.gif (default RUN_DIR/video.mp4); "
                                         "audit: folder (default RUN_DIR/audit)")

    sub.add_parser("list", help="presets and environments")
    return parser


def _cmd_list() -> None:
    from .build import ncp_env_ids
    from .presets import all_presets

    print("presets:")
    for p in all_presets():
        print(f"  {p.name:<34} {p.algo:<13} {p.env or '(any env)':<34} {p.description}")
    print("environments (plus any registered Gymnasium id, e.g. CartPole-v1):")
    try:
        import envs

        tasks = getattr(envs, "TASKS", {})
    except ImportError:  # pragma: no cover
        tasks = {}
    for env_id in ncp_env_ids():
        desc = getattr(tasks.get(env_id), "description", "")
        print(f"  {env_id:<44} {desc}")


def _dispatch(args: argparse.Namespace) -> None:
    if args.command == "list":
        _cmd_list()
    elif args.command == "train":
        from .train import train

        run_dir = train(env_id=args.env, preset=args.preset, cell=args.cell, steps=args.steps, seed=args.seed,
                        device=args.device, out=args.out, resume=args.resume, force=args.force,
                        progress_bar=not args.no_progress_bar, eval_freq=args.eval_freq,
                        eval_episodes=args.eval_episodes, verbose=args.verbose)
        import json

        metrics = json.loads((run_dir / "metrics.json").read_text())
        last = metrics.get("last") or {}
        print(f"run directory: {run_dir}")
        print(f"steps: {metrics['num_timesteps']}  final eval: {last.get('mean', float('nan')):.1f} ± "
              f"{last.get('std', float('nan')):.1f}  best: {metrics['best']['mean']:.1f}  "
              f"({metrics['steps_per_s']} steps/s)")
    elif args.command == "evaluate":
        from .evaluate import evaluate

        res = evaluate(args.run, episodes=args.episodes, env_id=args.env, stochastic=args.stochastic,
                       seed=args.seed, device=args.device, which=args.checkpoint)
        mode = "stochastic" if args.stochastic else "deterministic"
        print(f"{res.env}: {res.mean:.2f} ± {res.std:.2f} over {len(res.returns)} episodes ({mode}, {res.checkpoint})")
    elif args.command == "record":
        from .record import record

        out = record(args.run, out=args.out, episodes=args.episodes, env_id=args.env, stochastic=args.stochastic,
                     seed=args.seed, device=args.device, which=args.checkpoint)
        print(f"video: {out}")
    elif args.command == "audit":
        from .audit import run_audit

        out = run_audit(args.run, env_id=args.env, episodes=args.episodes, out=args.out, seed=args.seed,
                        device=args.device)
        print(f"audit folder: {out}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ncp`` console script.

    :param argv: arguments without the program name; ``sys.argv[1:]`` when None
    :return: exit code (0 ok, 2 usage error, 130 interrupted)
    """
    # Headless rendering (rgb_array): keep SDL from looking for a display or sound device.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    try:
        args = build_parser().parse_args(argv)
        import torch

        torch.set_num_threads(args.threads)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            _dispatch(args)
    except UsageError as err:
        print(f"ncp: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ncp: interrupted; the last checkpoint is in the run directory (continue with --resume)",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
