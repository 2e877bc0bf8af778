"""Shared test fixtures.

Tests that compare against the published implementation read `../shared`
(beside the repository root). When it is absent they are skipped with a
message saying where it was looked for; under CI (CI=true) its absence fails.
"""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"


def _require(path):
    if path.exists():
        return path
    message = f"{path} not found: these tests need ../shared beside the repository root"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def reference_dir():
    return _require(SHARED_DIR / "reference")


@pytest.fixture(scope="session")
def samples_dir():
    return _require(SHARED_DIR / "data" / "samples")


@pytest.fixture(scope="session")
def reference_fixture(reference_dir):
    import torch
    return torch.load(reference_dir / "kitpose_tiny_ap10k_reference.pt", weights_only=False)


@pytest.fixture(scope="session")
def reference_model_files(reference_fixture, tmp_path_factory):
    """(config YAML path, official-format checkpoint path) of the reference fixture's tiny AP-10K model."""
    import torch
    folder = tmp_path_factory.mktemp("reference_model")
    (folder / "tiny.yaml").write_text(reference_fixture["config_yaml"])
    torch.save(reference_fixture["state_dict"], folder / "tiny.pth")
    return str(folder / "tiny.yaml"), str(folder / "tiny.pth")


@pytest.fixture
def one_torch_thread():
    """Tiny tensors on a shared 2-core machine: one intra-op thread avoids oversubscription stalls.
    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
