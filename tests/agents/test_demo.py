import json

from agents.demo import main


def test_demo_trains_evaluates_audits_and_says_where(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["--steps", "256", "--out", str(out), "--episodes", "2"]) == 0
    text = capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["num_timesteps"] == 256
    assert "mean return" in text and f"run directory     {out}/" in text
    assert f"ncp evaluate {out}" in text
    if "audit skipped" not in text:
        assert (out / "audit" / "summary.md").is_file()
