"""scripts/compare_memory.py: it measures the shipped presets, and its tables say what the runs say."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.scripts.helpers import ROOT, load_script


@pytest.fixture(scope="module")
def cm():
    return load_script("compare_memory")


def test_every_task_trains_its_presets(cm) -> None:
    """The comparison's NCP runs use exactly the presets' settings, so its tables are the presets' scores."""
    from agents.presets import all_presets, load_preset

    for task_id, task in cm.TASKS.items():
        preset = load_preset(task["preset"])
        assert (preset.env, preset.algo, preset.cell) == (task_id, "RecurrentPPO", "cfc")
        assert preset.n_timesteps == task["n_timesteps"], task_id
        recurrent = [p for p in all_presets() if p.env == task_id and p.algo == "RecurrentPPO"]
        assert {p.cell for p in recurrent} == {"cfc", "ltc"}, task_id  # a preset per cell
        for p in recurrent:
            assert p.n_envs == task["n_envs"], p.name
            assert bool(p.normalize) == task["normalize"], p.name
            assert p.hyperparams == {**task["hyperparams"], **task.get("cell_hyperparams", {}).get(p.cell, {})}, p.name
            assert p.policy_kwargs == cm._ncp_defaults(task, p.cell), p.name
            assert p.freeze_normalization_after == cm._freeze_after(f"ncp-{p.cell}", task, {}), p.name
            assert p.freeze_reward_normalization == cm._freeze_rewards({}), p.name
            assert p.stop_when_solved == cm._stop_rule(f"ncp-{p.cell}", task, {}), p.name


def _result(policy: str, seed: int, final: float, curve: list[tuple[int, float]]) -> dict:
    return {"task": "ncp/CartPoleNoVel-v1", "policy": policy, "seed": seed, "budget": 1000, "final": final,
            "returns": [final] * 4, "params": 100, "steps": 1024, "train_wall_s": 2.0, "steps_per_s": 512.0,
            "curve": [list(p) for p in curve], "ncp_kwargs": {}, "ncp_hyper": {}}


def test_tables_report_per_seed_mean_worst_and_peak(cm, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    data = [("ncp-cfc", 3, 500.0, [(512, 200.0), (1024, 500.0)]),
            ("ncp-cfc", 4, 100.0, [(512, 300.0), (1024, 100.0)]),
            ("lstm", 3, 50.0, [(512, 20.0), (1024, 50.0)])]
    for policy, seed, final, curve in data:
        name = cm.run_name("ncp/CartPoleNoVel-v1", policy, seed, 1000)
        (runs / f"{name}.json").write_text(json.dumps(_result(policy, seed, final, curve)))
    rows = cm.load_results(tmp_path, "ncp/CartPoleNoVel-v1", 1000)
    assert [(r["policy"], r["seed"]) for r in rows] == [("ncp-cfc", 3), ("ncp-cfc", 4), ("lstm", 3)]
    table = cm.write_tables(rows, tmp_path, "ncp/CartPoleNoVel-v1").splitlines()
    ncp = [c.strip() for c in table[2].strip("|").split("|")]
    # policy, params, seed 3, seed 4, mean, worst, lowest peak (seed 4 peaked at 300), steps, wall, steps/s
    assert ncp == ["`ncp-cfc`", "100", "500.0", "100.0", "300.0", "100.0", "300.0", "1,024", "2", "512"]
    lstm = [c.strip() for c in table[3].strip("|").split("|")]
    assert lstm[2:5] == ["50.0", "—", "50.0"]
    assert (tmp_path / "CartPoleNoVel-v1__1000.csv").read_text().count("\n") == 4
    assert cm.plot_curves(rows, tmp_path, "ncp/CartPoleNoVel-v1").stat().st_size > 1000


def test_one_short_run_writes_its_result(cm, tmp_path: Path) -> None:
    result = cm.train_one("ncp/CartPoleNoVel-v1", "ncp-cfc", 0, 512, 256, 1, 2, {}, {}, str(tmp_path))
    stored = json.loads((tmp_path / "runs" / "CartPoleNoVel-v1__ncp-cfc__s0__512.json").read_text())
    assert stored == json.loads(json.dumps(result))
    assert stored["steps"] >= 512 and len(stored["returns"]) == 2
    assert stored["final"] == pytest.approx(np.mean(stored["returns"]))
    assert [p[0] for p in stored["curve"]][-1] == stored["steps"]
    assert 1000 < stored["params"] < 4300  # under a tenth of the LSTM policy's 43,331


def test_overrides_reach_the_algorithm_and_vecnormalize(cm) -> None:
    task = cm.TASKS["ncp/CartPoleNoVel-v1"]
    lstm = cm._hyperparams("lstm", task, {"gamma": 0.9, "n_epochs": 3}, {"gamma": 0.95})
    ncp = cm._hyperparams("ncp-cfc", task, {"gamma": 0.9, "n_epochs": 3}, {"gamma": 0.95})
    assert lstm["gamma"] == 0.95 and lstm["n_epochs"] == task["hyperparams"]["n_epochs"]
    assert ncp["gamma"] == 0.9 and ncp["n_epochs"] == 3
    assert task["hyperparams"]["gamma"] not in (0.9, 0.95)  # the table itself is untouched
    venv = cm._make_venv("ncp/CartPoleNoVel-v1", task, "ncp-cfc", ncp, 2, 0, training=True)
    try:
        assert venv.gamma == 0.9  # VecNormalize discounts rewards with the run's own gamma
    finally:
        venv.close()


def test_freezing_normalization_follows_the_task_the_cell_and_the_override(cm) -> None:
    task = {"normalize": True, cm.FREEZE: 50_000, "cell_freeze": {"ltc": None}}
    assert cm._freeze_after("ncp-cfc", task, {}) == 50_000 and cm._freeze_after("lstm", task, {}) == 50_000
    assert cm._freeze_after("ncp-ltc", task, {}) is None  # the cell's own setting: never
    assert cm._freeze_after("ncp-ltc", task, {cm.FREEZE: 7}) == 7  # the command line wins
    assert cm._freeze_after("lstm", task, {cm.FREEZE: None}) is None
    assert cm._freeze_after("mlp4", {"normalize": True}, {}) is None
    venv = cm._make_venv("ncp/CartPoleNoVel-v1", task, "lstm", {"gamma": 0.9}, 1, 0, training=True,
                         normalize={cm.FREEZE: 7, "clip_obs": 3.0})
    try:
        assert venv.clip_obs == 3.0  # the freezing step is no VecNormalize kwarg: not passed on
    finally:
        venv.close()


def test_the_stop_rule_follows_the_task_the_cell_and_the_override(cm) -> None:
    rule = {"reward": 500, "episodes": 20}
    task = {cm.STOP: rule, "cell_stop": {"ltc": None}}
    assert cm._stop_rule("ncp-cfc", task, {}) == rule and cm._stop_rule("lstm", task, {}) == rule
    assert cm._stop_rule("ncp-ltc", task, {}) is None  # the cell's own setting: never
    assert cm._stop_rule("ncp-ltc", task, {cm.STOP: {"reward": 1, "episodes": 2}}) == {"reward": 1, "episodes": 2}
    assert cm._stop_rule("lstm", task, {cm.STOP: None}) is None  # the command line wins
    assert cm._stop_rule("mlp4", {}, {}) is None


def test_a_run_stops_once_its_training_episodes_reach_the_return(cm, tmp_path: Path) -> None:
    """Easy rule (every one of the last 2 episodes at 5 or more): the run ends long before its budget, is
    evaluated there, and its JSON says where and by which rule."""
    rule = {"reward": 5, "episodes": 2}
    result = cm.train_one("ncp/CartPoleNoVel-v1", "ncp-cfc+stop", 0, 4096, 0, 1, 2, {}, {}, str(tmp_path),
                          stop={cm.STOP: rule})
    assert result[cm.STOP] == rule and result["stopped_at"] == result["steps"] < 4096
    assert [list(point) for point in result["curve"]] == [[result["steps"], result["final"]]]
    never = cm.train_one("ncp/CartPoleNoVel-v1", "ncp-cfc+nostop", 0, 512, 0, 1, 2, {}, {}, str(tmp_path),
                         stop={cm.STOP: None})
    assert cm.STOP not in never and "stopped_at" not in never and never["steps"] >= 512


def test_a_run_stops_once_an_evaluation_of_its_own_reaches_the_return(cm, tmp_path: Path) -> None:
    """Rule on evaluation: checked at the curve's steps, on start states apart from the final evaluation's."""
    rule = {"reward": 5, "episodes": 2, "on": "evaluation"}
    result = cm.train_one("ncp/CartPoleNoVel-v1", "ncp-cfc+evs", 0, 4096, 512, 1, 2, {}, {}, str(tmp_path),
                          stop={cm.STOP: rule})
    assert result[cm.STOP] == rule and result["stopped_at"] == result["steps"] == 512  # the first check passes
    assert cm.STOP_EVAL_SEED != cm.EVAL_SEED and "restored_from" not in result
    best = {"reward": 10_000, "episodes": 2, "on": "evaluation", "restore_best": True}  # never met: keeps the best
    result = cm.train_one("ncp/CartPoleNoVel-v1", "ncp-cfc+evsbest", 0, 1024, 512, 1, 2, {}, {}, str(tmp_path),
                          stop={cm.STOP: best})
    assert result["stopped_at"] is None and result["restored_from"] in (None, 512, 1024) and result["steps"] == 1024
    with pytest.raises(ValueError, match="--eval-freq"):
        cm.train_one("ncp/CartPoleNoVel-v1", "ncp-cfc+evs", 0, 512, 0, 1, 2, {}, {}, str(tmp_path),
                     stop={cm.STOP: rule})
    own = {**rule, "eval_freq": 256}  # checks on a period of their own, with no curve points at all
    result = cm.train_one("ncp/CartPoleNoVel-v1", "ncp-cfc+evs256", 0, 4096, 0, 1, 2, {}, {}, str(tmp_path),
                          stop={cm.STOP: own})
    assert result[cm.STOP] == own and result["stopped_at"] == result["steps"] == 256
    assert [point[0] for point in result["curve"]] == [256]  # only the final evaluation


def test_the_stop_option_is_checked_and_needs_a_tag(cm) -> None:
    assert cm._json_stop('{"reward": 500, "episodes": 20}') == ({"reward": 500, "episodes": 20},)
    assert cm._json_stop("null") == (None,)
    import argparse

    assert cm._json_stop('{"reward": 500, "episodes": 10, "on": "evaluation"}')[0]["on"] == "evaluation"
    for bad in ('{"reward": 500}', '{"reward": 500, "episodes": 0}', "[500, 20]", "{reward: 500}",
                '{"reward": 500, "episodes": 10, "on": "eval"}', '{"reward": 500, "episodes": 10, "restore_best": true}',
                '{"reward": 500, "episodes": 10, "on": "evaluation", "eval_freq": -5}'):
        with pytest.raises(argparse.ArgumentTypeError, match="stop|JSON"):
            cm._json_stop(bad)
    with pytest.raises(SystemExit):
        cm.main(["--stop", '{"reward": 500, "episodes": 20}', "--report-only"])  # no --tag


def test_a_cells_own_hyperparameters_apply_to_that_cell_only(cm) -> None:
    task = cm.TASKS["ncp/PendulumNoVel-v1"]
    own = task["cell_hyperparams"]["ltc"]["n_epochs"]
    assert own != task["hyperparams"]["n_epochs"]
    assert cm._hyperparams("ncp-ltc", task, {}, {})["n_epochs"] == own
    for policy in ("ncp-cfc", "lstm", "mlp4"):
        assert cm._hyperparams(policy, task, {}, {})["n_epochs"] == task["hyperparams"]["n_epochs"], policy
    # explicit overrides still win over the cell's own settings
    assert cm._hyperparams("ncp-ltc", task, {"n_epochs": 5}, {})["n_epochs"] == 5
    assert cm._hyperparams("ncp-ltc", task, {}, {"n_epochs": 7})["n_epochs"] == 7


def test_a_cells_own_policy_kwargs_apply_to_that_cell_only(cm) -> None:
    task = cm.TASKS["ncp/LunarLanderNoVel-v3"]
    own = task["cell_policy_kwargs"]["ltc"]
    assert own == {"actor_lr_scale": 8.0, "memory_lr_scale": 1.0, "mixed_memory": True, "critic_mixed_memory": False}
    assert cm._ncp_defaults(task, "ltc")["actor_lr_scale"] == 8.0
    assert "actor_lr_scale" not in cm._ncp_defaults(task, "cfc")  # the CfC keeps the library default
    assert "mixed_memory" not in cm._ncp_defaults(task, "cfc")
    assert "memory_lr_scale" not in cm._ncp_defaults(task, "cfc")
    assert cm._ncp_defaults(task, "ltc")["cell"] == "ltc"


def _rebuilt(policy: str, seed: int, final: float, final_std: float, peak: float) -> dict:
    """A run as ``scripts/rebuild_compare_runs.py`` writes it: no curve, no per-episode returns."""
    return {**_result(policy, seed, final, []), "returns": [], "final_std": final_std, "peak": peak,
            "rebuilt": "rebuilt from the committed table"}


def test_rebuilt_runs_give_their_std_and_peak_and_are_not_plotted(cm, tmp_path: Path, monkeypatch) -> None:
    """A run without curve or returns reports its stored final_std and peak; the plot draws curves only."""
    import matplotlib.axes

    runs = tmp_path / "runs"
    runs.mkdir()
    results = [{**_result("ncp-cfc", 3, 500.0, [(512, 300.0), (1024, 290.0)]), "returns": [490.0, 510.0]},
               _rebuilt("ncp-cfc", 4, 100.0, 12.34, 450.0),  # the normal run's 300 is the lower peak
               _rebuilt("lstm", 3, 50.0, 0.5, 60.0),  # a label with no curve at all
               _result("mlp4", 3, 20.0, [(512, 10.0), (1024, 20.0)])]
    for r in results:
        (runs / f"{cm.run_name(r['task'], r['policy'], r['seed'], 1000)}.json").write_text(json.dumps(r))
    rows = cm.load_results(tmp_path, "ncp/CartPoleNoVel-v1", 1000)
    table = cm.write_tables(rows, tmp_path, "ncp/CartPoleNoVel-v1").splitlines()
    cells = {row[0]: row for row in ([c.strip() for c in line.strip("|").split("|")] for line in table[2:])}
    # policy, params, seed 3, seed 4, mean, worst, lowest peak, ...
    assert cells["`ncp-cfc`"][2:7] == ["500.0", "100.0", "300.0", "100.0", "300.0"]
    assert cells["`lstm`"][2:7] == ["50.0", "—", "50.0", "50.0", "60.0"]
    assert cells["`mlp4`"][6] == "20.0"
    stds = [line.split(",")[4] for line in (tmp_path / "CartPoleNoVel-v1__1000.csv").read_text().splitlines()[1:]]
    assert stds == ["10.00", "12.34", "0.50", "0.00"]  # np.std of the returns, else the stored final_std

    drawn: list[str] = []
    plot = matplotlib.axes.Axes.plot
    monkeypatch.setattr(matplotlib.axes.Axes, "plot",
                        lambda ax, *a, **kw: drawn.append(kw["label"]) or plot(ax, *a, **kw))
    assert cm.plot_curves(rows, tmp_path, "ncp/CartPoleNoVel-v1").stat().st_size > 1000
    assert drawn == ["ncp-cfc (1 seeds)", "mlp4 (1 seeds)"]  # the rebuilt run and the curveless label left out
    drawn.clear()
    cm.plot_curves([r for r in rows if r["policy"] == "lstm"], tmp_path, "ncp/CartPoleNoVel-v1")
    assert drawn == []


@pytest.mark.parametrize("task_id", ["ncp/CartPoleNoVel-v1", "ncp/PendulumNoVel-v1",
                                     "ncp/MountainCarContinuousNoVel-v0", "ncp/LunarLanderNoVel-v3"])
def test_stored_runs_rebuild_the_committed_tables(cm, task_id: str, tmp_path: Path) -> None:
    """The repository's tables are exactly what ``--report-only`` makes of its run JSONs (a missing one shows)."""
    out = ROOT / "results" / "compare_memory"
    rows = cm.load_results(out, task_id, cm.TASKS[task_id]["n_timesteps"])
    assert rows, f"no run JSONs of {task_id} in {out / 'runs'}"
    cm.write_tables(rows, tmp_path, task_id)
    for ext in ("md", "csv"):
        name = f"{cm.short(task_id)}.{ext}"
        assert (tmp_path / name).read_text() == (out / name).read_text(), name


def test_tables_of_another_budget_get_their_own_files(cm) -> None:
    # the task's own budget keeps the plain name (the README and docs link it); another budget must not
    # overwrite it
    assert cm.table_stem("ncp/MountainCarContinuousNoVel-v0", 100_000) == "MountainCarContinuousNoVel-v0"
    assert cm.table_stem("ncp/MountainCarContinuousNoVel-v0", 300_000) == "MountainCarContinuousNoVel-v0__300000"


def test_doc_tables_are_rebuilt_from_the_stored_runs(cm, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    for policy, seed, final in (("ncp-cfc", 3, 500.0), ("ncp-cfc", 4, 300.0), ("lstm", 3, 50.0)):
        name = cm.run_name("ncp/CartPoleNoVel-v1", policy, seed, 1000)
        (runs / f"{name}.json").write_text(json.dumps(_result(policy, seed, final, [(1024, final)])))
    page = ("# page\n\n<!-- TABLE ncp/CartPoleNoVel-v1 lstm,ncp-cfc 1000 -->\n| stale | table |\n|---|---|\n"
            "| `ncp-cfc` | 1 |\n\ntext after\n")
    filled = cm.fill_doc_tables(page, tmp_path)
    lines = filled.splitlines()
    assert lines[2] == "<!-- TABLE ncp/CartPoleNoVel-v1 lstm,ncp-cfc 1000 -->"
    assert lines[3].startswith("| policy | params | seed 3 | seed 4 | mean")
    assert [line.split("|")[1].strip() for line in lines[5:7]] == ["`lstm`", "`ncp-cfc`"]  # the marker's order
    assert [c.strip() for c in lines[6].split("|")[3:7]] == ["500.0", "300.0", "400.0", "300.0"]
    assert filled.endswith("\n\ntext after\n") and "stale" not in filled
    with pytest.raises(ValueError, match="no stored runs for \\['mlp4'\\]"):
        cm.fill_doc_tables("<!-- TABLE ncp/CartPoleNoVel-v1 mlp4 1000 -->\n", tmp_path)


def test_the_learning_page_shows_the_stored_runs(cm) -> None:
    """docs/learning.md's tables are what ``--fill-docs`` makes of the run JSONs (an edited figure shows)."""
    page = ROOT / "docs" / "learning.md"
    text = page.read_text()
    assert text.count("<!-- TABLE ") >= 8
    assert cm.fill_doc_tables(text, ROOT / "results" / "compare_memory") == text


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie left for an init that does not reap counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_workers_end_when_the_main_process_is_killed() -> None:
    """A killed main process does not leave a worker training the remaining runs."""
    import subprocess
    import time

    program = f"""
import os, signal, sys, time
sys.path.insert(0, {str(ROOT / "scripts")!r})
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from compare_memory import exit_with_parent
pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=exit_with_parent,
                           initargs=(os.getpid(), 0.1))
print(pool.submit(os.getpid).result(), flush=True)
pool.submit(time.sleep, 60)  # the worker is busy: only its watcher can end it
time.sleep(0.5)
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    worker = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker), "the pool worker outlived the killed main process"


def test_a_run_records_what_decides_its_numbers(cm) -> None:
    """Package versions and the CPU instruction set torch dispatches to: the same seed gives other numbers
    under AVX2 than under AVX512, so a stored run says which it ran on."""
    import stable_baselines3
    import torch

    versions = cm._versions()
    assert versions["cpu_capability"] == torch.backends.cpu.get_cpu_capability() != ""
    assert versions["stable_baselines3"] == stable_baselines3.__version__
    assert versions["cpu"] and "model" in versions["cpu"] or sys.platform != "linux"
