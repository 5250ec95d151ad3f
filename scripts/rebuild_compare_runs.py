"""One-off: recreate ``results/compare_memory/runs/*.json`` from the committed tables of ``compare_memory.py``.

``.gitignore``'s ``runs/`` once ignored ``results/compare_memory/runs/`` too, so the per-run JSONs that
``compare_memory.py --report-only`` rebuilds its tables from were never committed. The committed
``<Task>.csv`` (one row per run) and ``<Task>.md`` (one row per policy label) still hold the figures: this
writes one JSON per CSV row, with ``train_one``'s fields. What the tables do not hold is marked, not
invented: ``returns`` and ``curve`` are empty, ``final_std`` is the CSV's std of the final returns,
``peak`` the label's "lowest peak" of the md table (the lowest over seeds of each run's best evaluation,
stored on every run of the label so the table's min over seeds stays exact), ``ncp_kwargs`` /
``ncp_hyper`` / ``hyper`` are ``{}`` (unknown), and ``rebuilt`` says so. Where the CSV's rounded figure,
rounded again, misses an md cell by one in the last digit, the stored figure is moved inside the CSV's
rounding interval so that both tables come back, and ``rebuilt`` says that too (:func:`agree`). The JSONs
of a task are written only once the tables ``compare_memory.write_tables`` makes of them are the committed
ones, byte for byte; existing JSONs are never overwritten.

Usage::

    python scripts/rebuild_compare_runs.py                   # from the tables committed at HEAD
    python scripts/rebuild_compare_runs.py --rev a079daf --out results/compare_memory
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare_memory as cm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REBUILT = ("rebuilt from the committed results/compare_memory table (its JSON was never committed): the learning "
           "curve and the per-episode final returns were lost; final_std is the table's std of the final returns "
           "and peak is the lowest peak of the label (the lowest over seeds of each run's best evaluation), "
           "not this run's own")


def committed(path: str, rev: str) -> str:
    """:return: the text of ``path`` (relative to the repository root) at git revision ``rev``.

    :param path: file path inside the repository
    :param rev: git revision, e.g. ``HEAD``
    """
    return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout


def md_rows(md: str) -> tuple[int, list[str], dict[str, list[str]]]:
    """:return: the env steps of the md table's heading, its column names and each policy label's cells.

    :param md: a ``<Task>.md`` written by ``compare_memory.write_tables``
    """
    steps = int(re.search(r"\(([\d,]+) env steps\)", md).group(1).replace(",", ""))
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in md.splitlines()
            if line.startswith("| ")]
    return steps, rows[0], {row[0].strip("`"): row for row in rows[1:]}


def agree(runs: list[dict[str, Any]], key: str, shown: str, digits: int, half: float) -> None:
    """Make ``key``'s mean over ``runs``, at ``digits`` decimals, read as the md cell ``shown``.

    Each table rounded the run's own figure once, so the CSV's figure rounded again can miss the md's by one
    in the last digit (87.7475 → CSV 87.75 → 87.8, md 87.7). Then ``runs[0][key]`` is moved by under ``half``
    (half a unit of the CSV's last digit, so the CSV still reads the same) to the nearest value that gives
    ``shown``, and its ``rebuilt`` note says so.

    :param runs: the runs of one md cell (one run for a seed cell, the label's runs for a mean)
    :param key: the run field
    :param shown: the md cell
    :param digits: decimals of the md cell
    :param half: half a unit of the CSV's last digit
    """
    original = runs[0][key]
    for step in range(10):
        for sign in (-1, 1):
            runs[0][key] = round(original + sign * step * half / 10, 6)
            if f"{np.mean([r[key] for r in runs]):.{digits}f}" == shown:
                if step:
                    runs[0]["rebuilt"] += (f"; {key} is {runs[0][key]}, not the CSV's {original}, so that the md "
                                           f"table's {shown} comes back too (the run's unrounded value was rounded "
                                           f"once for each table)")
                return
    raise ValueError(f"{runs[0]['policy']}: no {key} near {original} gives the md's {shown}")


def rebuild(task_id: str, rev: str, out: Path) -> list[Path]:
    """Write the missing JSONs of one task's committed CSV rows, once they reproduce its committed tables.

    :param task_id: a key of ``compare_memory.TASKS``
    :param rev: git revision of the tables
    :param out: the comparison's output folder (``runs/`` is under it)
    :return: the JSONs written (existing ones are left alone)
    """
    task, budget = cm.TASKS[task_id], cm.TASKS[task_id]["n_timesteps"]
    table = f"results/compare_memory/{cm.short(task_id)}"
    md, csv_text = committed(f"{table}.md", rev), committed(f"{table}.csv", rev)
    steps, head, cells = md_rows(md)
    rollout = task["n_envs"] * task["hyperparams"]["n_steps"]
    assert steps == -(-budget // rollout) * rollout, f"{task_id}: {steps} env steps is not a {budget} budget"
    runs = [{"task": task_id, "policy": row["policy"], "seed": int(row["seed"]), "budget": budget,
             "final": float(row["final_mean_return"]), "returns": [], "params": int(row["params"]),
             "steps": int(row["env_steps"]), "train_wall_s": float(row["train_wall_s"]),
             "steps_per_s": float(row["steps_per_s"]), "curve": [], "ncp_kwargs": {}, "ncp_hyper": {}, "hyper": {},
             "final_std": float(row["final_std_return"]),
             "peak": float(cells[row["policy"]][head.index("lowest peak")]), "rebuilt": REBUILT}
            for row in csv.DictReader(io.StringIO(csv_text))]
    for label, row in cells.items():
        mine = [r for r in runs if r["policy"] == label]
        for r in mine:
            agree([r], "final", row[head.index(f"seed {r['seed']}")], 1, 0.005)
        agree(mine, "final", row[head.index("mean")], 1, 0.005)
        agree(mine, "train_wall_s", row[head.index("wall s (mean)")], 0, 0.05)
        agree(mine, "steps_per_s", row[head.index("steps/s (mean)")], 0, 0.05)
    with tempfile.TemporaryDirectory() as tmp:  # the tables these runs give must be the committed ones
        (Path(tmp) / "runs").mkdir()
        for r in runs:
            (Path(tmp) / "runs" / f"{cm.run_name(task_id, r['policy'], r['seed'], budget)}.json").write_text(
                json.dumps(r))
        cm.write_tables(cm.load_results(Path(tmp), task_id, budget), Path(tmp), task_id)
        for ext, text in (("md", md), ("csv", csv_text)):
            assert (Path(tmp) / f"{cm.short(task_id)}.{ext}").read_text() == text, f"{task_id}: {ext} differs"
    written = []
    for r in runs:
        path = out / "runs" / f"{cm.run_name(task_id, r['policy'], r['seed'], budget)}.json"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(r, indent=1))
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    """Rebuild the missing run JSONs of every task of ``compare_memory.TASKS``.

    :param argv: arguments (None: ``sys.argv[1:]``)
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="HEAD", help="git revision of the committed tables (default HEAD)")
    parser.add_argument("--out", default=str(ROOT / "results" / "compare_memory"), help="output folder")
    args = parser.parse_args(argv)
    for task_id in cm.TASKS:
        written = rebuild(task_id, args.rev, Path(args.out))
        print(f"{task_id}: {len(written)} JSONs written")


if __name__ == "__main__":
    main()
