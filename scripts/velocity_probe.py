"""Can a network infer a task's hidden velocities? A supervised probe of NCP cells, no RL involved.

On a ``ncp/<Base>NoVel`` task the policy sees only part of the base task's observation; what it must
remember is what the hidden part (the velocities) would have told it. This probe separates that
ability from policy learning: it records episodes of the *base* task under a random policy that holds
each action for a few steps, then trains a sequence layer (``CfC`` or ``LTC`` on ``AutoNCP(units, k)``,
``k`` = number of hidden entries, motor neurons read out as the estimates) to predict the hidden entries
from the visible ones, with Adam at the learning rate the policies' actors use (CfC 1e-3, LTC 3e-3 =
the algorithm's 1e-3 × the LTC actor's default scale). Inputs and targets are standardised over the
training episodes, so a validation MSE of 1.0 is what predicting the mean scores and 0.0 is perfect;
the first ``--warmup`` steps of every sequence are not scored (nothing can be inferred from one frame).

The random policy does not show its actions to the network, so some error is irreducible (the last
action changed the velocity); the figure is for comparing cells and settings on the same data.

Usage::

    python scripts/velocity_probe.py --task ncp/LunarLanderNoVel-v3 --cells cfc ltc --seeds 0 1 2
    python scripts/velocity_probe.py --task ncp/CartPoleNoVel-v1 --cells ltc \\
        --init-ranges '{"sensory_mu": [-0.5, 0.5], "sensory_sigma": [0.5, 1.5]}'
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from envs.registration import TASKS  # noqa: E402
from ncp_policies.sb3.networks import build_layer  # noqa: E402
from ncp_policies.wirings import AutoNCP  # noqa: E402

LEARNING_RATES = {"cfc": 1e-3, "ltc": 3e-3}


@dataclass
class ProbeData:
    """Standardised sequences of one task.

    :param inputs: visible entries, shape (episodes, length, n_visible)
    :param targets: hidden entries, shape (episodes, length, n_hidden)
    """

    inputs: torch.Tensor
    targets: torch.Tensor


def collect(task_id: str, episodes: int, length: int, seed: int = 0, hold: float = 0.5) -> ProbeData:
    """Record ``episodes`` sequences of ``length`` steps of the task's base environment.

    Episodes that end before ``length`` steps are dropped. Actions are random, each held on to with
    probability ``hold`` at every step (so the system moves in one direction for a while).

    :param task_id: a registered ``ncp/...NoVel`` id (its base task and visible indices are used)
    :param episodes: sequences to keep
    :param length: steps per sequence
    :param seed: seed of the episodes and the random policy
    :param hold: probability of repeating the previous action
    :return: standardised inputs and targets
    """
    if task_id not in TASKS:
        raise ValueError(f"unknown task {task_id!r}; choose one of: {', '.join(sorted(TASKS))}")
    task = TASKS[task_id]
    if task.irregular:
        raise ValueError(f"{task_id} has irregular time steps; probe its regular counterpart instead")
    env = gym.make(task.base_id)
    size = env.observation_space.shape[0]
    hidden = [i for i in range(size) if i not in task.keep]
    rng = np.random.default_rng(seed)
    env.action_space.seed(seed)
    xs, ys = [], []
    tries = 0
    while len(xs) < episodes:
        tries += 1
        if tries > 200 * episodes:
            raise RuntimeError(
                f"{task_id}: fewer than {episodes} random episodes last {length} steps; use a smaller --length"
            )
        obs, _ = env.reset(seed=int(rng.integers(2**31)))
        action = env.action_space.sample()
        seq = []
        for _ in range(length):
            seq.append(obs)
            if rng.random() > hold:
                action = env.action_space.sample()
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
        if len(seq) == length:
            arr = np.asarray(seq, dtype=np.float32)
            xs.append(arr[:, list(task.keep)])
            ys.append(arr[:, hidden])
    env.close()
    return ProbeData(_standardise(np.asarray(xs)), _standardise(np.asarray(ys)))


def _standardise(a: np.ndarray) -> torch.Tensor:
    flat = a.reshape(-1, a.shape[-1])
    return torch.as_tensor((a - flat.mean(0)) / (flat.std(0) + 1e-8), dtype=torch.float32)


def probe(
    data: ProbeData,
    cell: str,
    *,
    seed: int = 0,
    units: int = 16,
    steps: int = 800,
    batch: int = 32,
    lr: float | None = None,
    warmup: int = 4,
    train_fraction: float = 0.8,
    init_ranges: dict | None = None,
    ode_unfolds: int = 6,
) -> float:
    """Train one layer to predict the hidden entries and return its validation MSE (1.0 = the mean).

    :param data: the task's sequences (`collect`)
    :param cell: ``"cfc"`` or ``"ltc"``
    :param seed: seed of the wiring, the weights and the batches
    :param units: neurons of the ``AutoNCP`` wiring
    :param steps: Adam steps
    :param batch: sequences per step
    :param lr: learning rate (None: `LEARNING_RATES` of the cell)
    :param warmup: first steps of each sequence left out of the loss and the score
    :param train_fraction: share of the sequences trained on (the rest score)
    :param init_ranges: LTC initialisation ranges (``cell="ltc"`` only)
    :param ode_unfolds: LTC solver steps per time step
    :return: validation mean squared error over the hidden entries
    """
    if cell not in LEARNING_RATES:
        raise ValueError(f"cell must be one of {', '.join(LEARNING_RATES)}, got {cell!r}")
    n_train = int(len(data.inputs) * train_fraction)
    if not 0 < n_train < len(data.inputs):
        raise ValueError(f"train_fraction {train_fraction} leaves no training or no validation sequence")
    torch.manual_seed(seed)
    wiring = AutoNCP(units, data.targets.shape[-1], seed=seed)
    n_in = data.inputs.shape[-1]
    layer = build_layer(cell, n_in, wiring, ode_unfolds=ode_unfolds, init_ranges=init_ranges)
    opt = torch.optim.Adam(layer.parameters(), lr=LEARNING_RATES[cell] if lr is None else lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, n_train, (batch,), generator=gen)
        out, _ = layer(data.inputs[idx])
        loss = ((out[:, warmup:] - data.targets[idx, warmup:]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out, _ = layer(data.inputs[n_train:])
        return float(((out[:, warmup:] - data.targets[n_train:, warmup:]) ** 2).mean())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="ncp/LunarLanderNoVel-v3")
    parser.add_argument("--cells", nargs="+", default=["cfc", "ltc"], choices=list(LEARNING_RATES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=300, help="sequences recorded (default 300)")
    parser.add_argument("--length", type=int, default=32, help="steps per sequence (default 32)")
    parser.add_argument("--steps", type=int, default=800, help="Adam steps per probe (default 800)")
    parser.add_argument("--units", type=int, default=16)
    parser.add_argument("--init-ranges", type=json.loads, default=None, help="LTC init ranges, JSON")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: CfC 1e-3, LTC 3e-3)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data = collect(args.task, args.episodes, args.length)
    print(f"{args.task}: {len(data.inputs)} sequences x {args.length} steps, "
          f"{data.inputs.shape[-1]} visible -> {data.targets.shape[-1]} hidden entries")
    for cell in args.cells:
        ranges = args.init_ranges if cell == "ltc" else None
        scores = [probe(data, cell, seed=s, units=args.units, steps=args.steps, lr=args.lr, init_ranges=ranges)
                  for s in args.seeds]
        per_seed = " ".join(f"{s}: {v:.3f}" for s, v in zip(args.seeds, scores))
        print(f"{cell}: validation MSE {np.mean(scores):.3f} (worst {max(scores):.3f}; {per_seed})")


if __name__ == "__main__":
    main()
