"""Shared test fixtures.

The reference outputs of the published implementation and the real sample
images live in the repository, under ``tests/data/`` (see
``tests/data/README.md`` for each file's source and licence), so every test
runs in a fresh clone.

``KITPOSE_REFERENCE_DIR``, when set, replaces ``tests/data/reference`` (to run
the same tests against a fuller reference set); it must name an existing folder.
"""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS_DATA_DIR = REPO_ROOT / "tests" / "data"


def _reference_dir():
    override = os.environ.get("KITPOSE_REFERENCE_DIR")
    if not override:
        return TESTS_DATA_DIR / "reference"
    path = Path(override).expanduser().resolve()
    if not path.is_dir():
        pytest.fail(f"KITPOSE_REFERENCE_DIR={override!r} is not a folder")
    return path


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def reference_dir():
    return _reference_dir()


@pytest.fixture(scope="session")
def samples_dir():
    return TESTS_DATA_DIR / "samples"


@pytest.fixture(scope="session")
def reference_fixture(reference_dir):
    import torch
    return torch.load(reference_dir / "kitpose_tiny_ap10k_reference.pt", weights_only=False)


@pytest.fixture(scope="session")
def pipeline_reference(reference_dir):
    """Outputs of the published data pipeline; its ``README`` key documents every field."""
    import torch
    return torch.load(reference_dir / "pipeline_reference.pt", weights_only=False)


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
