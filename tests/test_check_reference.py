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
    assert "k-medoids clustering case: 40 case(s)" in out
    for family in ("training samples (scripted draws)", "affine matrices", "CutMix (published weights)",
                   "decoding (flip test, DARK, back-projection)", "rescoring + OKS-NMS results, PCK",
                   "annotation filter"):
        assert f"pipeline_reference.pt: {family}" in out, family
    assert "published_pipeline_extra.pt: training samples (scripted draws): 10 case(s)" in out
    assert "FAILED" not in out
    assert "72,647,257    68,447,833" in out
    assert "refused; the message names both keys: True" in out
    assert "all comparisons passed" in out


def test_check_reference_fails_on_a_wrong_reference(reference_dir, repo_root, tmp_path, capsys, monkeypatch):
    """A reference whose expected heatmaps are perturbed makes the tool fail and say where."""
    import shutil
    import torch
    for path in reference_dir.iterdir():
        shutil.copy(path, tmp_path / path.name)
    fixture = torch.load(reference_dir / "kitpose_tiny_ap10k_reference.pt", weights_only=False)
    fixture["outputs"]["heatmaps"] = fixture["outputs"]["heatmaps"] + 1e-3
    torch.save(fixture, tmp_path / "kitpose_tiny_ap10k_reference.pt")
    (tmp_path / "published_pipeline_extra.pt").unlink()
    monkeypatch.setattr(sys, "argv", ["check_reference.py", "--reference", str(tmp_path)])
    with pytest.raises(SystemExit) as status:
        runpy.run_path(str(repo_root / "tools" / "check_reference.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert status.value.code == 1
    assert "FAILED: tiny reference model outputs" in out


def test_default_reference_is_the_repository_copy(repo_root, monkeypatch):
    from benchmarks.reference import default_reference_dir
    monkeypatch.delenv("KITPOSE_REFERENCE_DIR", raising=False)
    assert default_reference_dir() == repo_root / "tests" / "data" / "reference"
    monkeypatch.setenv("KITPOSE_REFERENCE_DIR", "/elsewhere/reference")
    assert str(default_reference_dir()) == "/elsewhere/reference"
