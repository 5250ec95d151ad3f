"""audit(): one call writes every artefact and a summary naming neurons."""
from __future__ import annotations

import numpy as np

from ncp_policies.audit import audit

from .conftest import ENV_ID, make_layer


def test_audit_writes_everything(tmp_path) -> None:
    report = audit(make_layer(), ENV_ID, episodes=1, out_dir=tmp_path, seed=0, max_steps=10, video="gif", max_frames=4)
    expected = {"npz", "csv", "json", "heatmap", "motor_traces", "wiring", "video", "attribution_csv",
                "attribution_png", "ablation_csv", "ablation_png", "summary"}
    assert expected <= set(report.files)
    for path in report.files.values():
        assert path.exists() and path.stat().st_size > 0
    most_active = int(np.argmax(np.abs(report.recording.activity).mean(0)))
    text = (tmp_path / "summary.md").read_text()
    assert text == report.summary
    assert f"neuron {most_active} ({report.recording.roles[most_active]})" in text.split("## Most active")[1].splitlines()[1]
    assert "## Most influential" in text and "motor 0:" in text
    again = audit(make_layer(), ENV_ID, episodes=1, out_dir=tmp_path / "b", seed=0, max_steps=10, video=None)
    np.testing.assert_array_equal(again.recording.activity, report.recording.activity)
    np.testing.assert_array_equal(again.ablation.returns, report.ablation.returns)
