"""Per-module learning rates under SB3's single learning-rate schedule.

SB3 sets one learning rate on every parameter group of a policy's optimizer before each update
(``update_learning_rate``). To give, say, an LTC actor ten times the critic's rate, each parameter group
carries an ``"lr_scale"`` and step hooks multiply the group's rate by it for the duration of ``step()``:
the schedule stays SB3's, the ratio between modules stays fixed.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


def param_groups(scaled: Iterable[tuple[Iterable[nn.Parameter], float]], module: nn.Module) -> list[dict]:
    """Parameter groups with learning-rate scales; every other parameter of ``module`` gets scale 1.

    :param scaled: (parameters, scale) pairs; a parameter must appear in one pair at most.
    :param module: the module whose remaining parameters form the scale-1 group.
    :return: optimizer parameter groups ``{"params": [...], "lr_scale": s}`` (empty groups left out).
    """
    groups, seen = [], set()
    for params, scale in scaled:
        params = [p for p in params if id(p) not in seen]
        seen.update(id(p) for p in params)
        if params:
            groups.append({"params": params, "lr_scale": float(scale)})
    rest = [p for p in module.parameters() if id(p) not in seen]
    if rest:
        groups.append({"params": rest, "lr_scale": 1.0})
    return groups


def install_lr_scales(optimizer: torch.optim.Optimizer) -> None:
    """Make ``optimizer.step()`` use ``lr * group["lr_scale"]`` for each group (restored afterwards).

    :param optimizer: an optimizer whose groups may carry ``"lr_scale"``.
    """

    def scale(opt: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        for group in opt.param_groups:
            group["base_lr"] = group["lr"]
            group["lr"] = group["lr"] * group.get("lr_scale", 1.0)

    def restore(opt: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        for group in opt.param_groups:
            group["lr"] = group.pop("base_lr", group["lr"])

    optimizer.register_step_pre_hook(scale)
    optimizer.register_step_post_hook(restore)
