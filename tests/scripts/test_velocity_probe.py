"""scripts/velocity_probe.py: the data are the task's hidden entries, and a trained probe beats an untrained one."""
from __future__ import annotations

import pytest
import torch

from tests.scripts.helpers import load_script


@pytest.fixture(scope="module")
def vp():
    return load_script("velocity_probe")


@pytest.fixture(scope="module")
def cartpole(vp):
    return vp.collect("ncp/CartPoleNoVel-v1", episodes=40, length=16, seed=0)


def test_collect_splits_visible_and_hidden_entries(cartpole) -> None:
    # CartPole keeps cart position and pole angle; the two velocities are the targets.
    assert cartpole.inputs.shape == (40, 16, 2)
    assert cartpole.targets.shape == (40, 16, 2)
    for t in (cartpole.inputs, cartpole.targets):  # standardised over all steps
        flat = t.reshape(-1, t.shape[-1])
        torch.testing.assert_close(flat.mean(0), torch.zeros(2), atol=1e-4, rtol=0)
        torch.testing.assert_close(flat.std(0, correction=0), torch.ones(2), atol=1e-3, rtol=0)


def test_collect_is_reproducible(vp, cartpole) -> None:
    again = vp.collect("ncp/CartPoleNoVel-v1", episodes=40, length=16, seed=0)
    torch.testing.assert_close(again.inputs, cartpole.inputs, atol=0, rtol=0)
    other = vp.collect("ncp/CartPoleNoVel-v1", episodes=40, length=16, seed=1)
    assert not torch.equal(other.inputs, cartpole.inputs)


@pytest.mark.parametrize("cell", ["cfc", "ltc"])
def test_training_lowers_the_error(vp, cell) -> None:
    data = vp.collect("ncp/CartPoleNoVel-v1", episodes=100, length=24, seed=0)
    untrained = vp.probe(data, cell, steps=0, warmup=2)
    trained = vp.probe(data, cell, steps=500, warmup=2)
    assert untrained > 0.9  # an untrained layer does no better than the mean (1.0)
    assert trained < 0.8  # measured: CfC 0.50, LTC 0.69


def test_bad_arguments_are_named(vp, cartpole) -> None:
    with pytest.raises(ValueError, match="unknown task"):
        vp.collect("CartPole-v1", episodes=2, length=4)
    with pytest.raises(ValueError, match="irregular"):
        vp.collect("ncp/CartPoleNoVelIrregular-v1", episodes=2, length=4)
    with pytest.raises(RuntimeError, match="smaller --length"):
        vp.collect("ncp/CartPoleNoVel-v1", episodes=2, length=2000)
    with pytest.raises(ValueError, match="cell must be"):
        vp.probe(cartpole, "lstm")
    with pytest.raises(ValueError, match="init_ranges"):
        vp.probe(cartpole, "cfc", init_ranges={"cm": (0.1, 0.2)})
    with pytest.raises(ValueError, match="no training or no validation"):
        vp.probe(cartpole, "cfc", train_fraction=1.0)


def test_main_prints_one_line_per_cell(vp, capsys) -> None:
    vp.main(["--task", "ncp/CartPoleNoVel-v1", "--episodes", "20", "--length", "8", "--steps", "2", "--seeds", "0"])
    out = capsys.readouterr().out
    assert "2 visible -> 2 hidden entries" in out
    assert out.count("validation MSE") == 2
