"""Training throughput of RecurrentPPO with NCP policies against sb3-contrib's LSTM policy.

Runs, in one process and on the same task and hyperparameters (CartPole-v1, 8 envs, n_steps 128,
batch 256, 4 epochs, one torch thread), a fixed number of environment steps of:

- RecurrentPPO + ``NCPActorCriticPolicy`` (CfC), its defaults: actor CfC on AutoNCP(16, 2), critic CfC
  on AutoNCP(16, 1);
- RecurrentPPO + ``NCPActorCriticPolicy`` (LTC): actor LTC on AutoNCP(16, 2), critic CfC (the default);
- RecurrentPPO + sb3-contrib's ``MlpLstmPolicy`` (its defaults: LSTM 256, actor and critic LSTMs);
- PPO + ``MlpPolicy`` for reference (no recurrence);

and prints env steps per second and the ratio of each to the LSTM policy. The timed part is
``model.learn(steps)`` (rollouts and updates); model construction and one-time kernel compilation
are excluded.

Usage: ``python scripts/bench_rl.py [--steps 16384] [--seed 0] [--device cpu]``
"""
from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from ncp_policies.sb3 import NCPActorCriticPolicy

HYPERPARAMETERS = dict(n_steps=128, batch_size=256, n_epochs=4)
N_ENVS = 8


def _recurrent(policy: Any, **policy_kwargs: Any) -> Callable[[Any, int, str], Any]:
    def make(env: Any, seed: int, device: str) -> Any:
        return RecurrentPPO(policy, env, seed=seed, device=device, policy_kwargs=policy_kwargs, **HYPERPARAMETERS)

    return make


def _ppo(env: Any, seed: int, device: str) -> Any:
    return PPO("MlpPolicy", env, seed=seed, device=device, **HYPERPARAMETERS)


POLICIES: dict[str, Callable[[Any, int, str], Any]] = {
    "NCP-CfC (RecurrentPPO)": _recurrent(NCPActorCriticPolicy, cell="cfc"),
    "NCP-LTC (RecurrentPPO)": _recurrent(NCPActorCriticPolicy, cell="ltc"),
    "MlpLstmPolicy (RecurrentPPO)": _recurrent("MlpLstmPolicy"),
    "MlpPolicy (PPO, no memory)": _ppo,
}
REFERENCE = "MlpLstmPolicy (RecurrentPPO)"


def measure(make: Callable[[Any, int, str], Any], steps: int, seed: int, device: str) -> tuple[float, int]:
    """Env steps per second of ``model.learn(steps)``.

    :param make: builds the model from (vec env, seed, device).
    :param steps: environment steps to train for (rounded up to whole rollouts by SB3).
    :param seed: seed of the model and the environments.
    :param device: torch device.
    :return: (steps per second, trainable parameter count).
    """
    env = make_vec_env("CartPole-v1", n_envs=N_ENVS, seed=seed)
    model = make(env, seed, device)
    params = sum(p.numel() for p in model.policy.parameters() if p.requires_grad)
    start = time.perf_counter()
    model.learn(steps)
    elapsed = time.perf_counter() - start
    env.close()
    return model.num_timesteps / elapsed, params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=16384, help="environment steps per policy (default 16384)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    # one-time costs (compiling the C++ kernels, first allocations) are not part of the timing
    for make in POLICIES.values():
        measure(make, N_ENVS * HYPERPARAMETERS["n_steps"], args.seed, args.device)

    results = {name: measure(make, args.steps, args.seed, args.device) for name, make in POLICIES.items()}
    reference = results[REFERENCE][0]
    print(f"CartPole-v1, {N_ENVS} envs, n_steps {HYPERPARAMETERS['n_steps']}, batch {HYPERPARAMETERS['batch_size']}, "
          f"{HYPERPARAMETERS['n_epochs']} epochs, {args.steps} steps, {args.threads} torch thread(s), {args.device}")
    print(f"| {'policy':<30} | {'params':>8} | {'steps/s':>8} | {'vs LSTM':>7} |")
    print(f"|{'-' * 32}|{'-' * 10}|{'-' * 10}|{'-' * 9}|")
    for name, (rate, params) in results.items():
        print(f"| {name:<30} | {params:>8,} | {rate:>8.0f} | {rate / reference:>6.2f}x |")


if __name__ == "__main__":
    main()
