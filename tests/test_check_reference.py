"""tools/check_reference.py: the printed comparison with the published implementation."""
import runpy
import sys

import pytest


def test_check_reference_passes_and_prints(reference_dir, repo_root, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["check_reference.py", "--reference", str(reference_dir)])
    with pytest.raises(SystemExit) as status:
        runpy.run_path(str(repo_root / "tools" / "check_reference.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert status.value.code == 0, out
    assert "heatmaps      max |diff|" in out
    assert "40/40 samples" in out
    assert "72,647,257    68,447,833" in out
    assert "refused, message names both keys: True" in out
    assert "all comparisons passed" in out
