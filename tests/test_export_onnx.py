"""ONNX export: the fixed-iteration clustering equals the published one, the exported graph
(dynamic batch) runs in onnxruntime and matches PyTorch.

Tests marked `onnx` need the optional install group (pip install -e '.[onnx]') and are
skipped, saying so, without it. The fixed-iteration clustering tests need only torch.
"""
import numpy as np
import pytest
import torch

from kitpose.config import load_config
from kitpose.models import build_model, kmedoids_cosine, load_checkpoint
from kitpose.runtime.onnx import KMedoidsModule, exportable_clustering

ONNX_MISSING = "needs the optional onnx install group: pip install -e '.[onnx]' (onnx, onnxruntime)"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def onnx_tools():
    pytest.importorskip("onnx", reason=ONNX_MISSING)
    pytest.importorskip("onnxruntime", reason=ONNX_MISSING)
    from kitpose.models import export
    return export


@pytest.fixture(scope="module")
def tiny(reference_model_files):
    """(cfg, eval model, config path, checkpoint path) of the reference fixture's tiny model."""
    config_path, checkpoint_path = reference_model_files
    cfg = load_config(config_path, [])
    model = build_model(cfg)
    load_checkpoint(model, checkpoint_path)
    return cfg, model.eval(), config_path, checkpoint_path


@pytest.fixture(scope="module")
def tiny_onnx(onnx_tools, tiny, tmp_path_factory):
    cfg, model, _, _ = tiny
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    names = onnx_tools.export_model_onnx(model, path, tuple(cfg.MODEL.IMAGE_SIZE))
    return path, names


# ------------------------------------------------------------------ fixed iterations == published (torch only)
def test_fixed_iters_reproduces_reference_case(reference_fixture):
    """Every sample, for the published chunk of 8, one sample per chunk, float64 maps and maps with
    1e-5 relative noise (the clustering runs in float64, so none of these moves a decision)."""
    case = reference_fixture["kmedoids_case"]
    maps = case["maps"]
    noise = torch.randn(maps.shape, generator=torch.Generator().manual_seed(0))
    for label, variant, chunk in (("float32", maps, 8), ("chunk 1", maps, 1), ("float64", maps.double(), 8),
                                  ("noise", maps * (1 + 1e-5 * noise), 8)):
        assign, medoids = kmedoids_cosine(variant, case["num_parts"], chunk_size=chunk, fixed_iterations=True)
        assert torch.equal(assign, case["assign"]), label
        assert torch.equal(medoids, case["medoids"]), label


@pytest.mark.parametrize("num_iters", [1, 2, 5, 40])
def test_fixed_iters_equals_early_stopping(num_iters):
    """Same clusters as kmedoids_cosine for batches that are not multiples of the chunk, iteration caps that
    stop some chunks before convergence, and duplicate maps (ties)."""
    generator = torch.Generator().manual_seed(num_iters)
    stopped_early = 0
    for batch, num_parts in ((1, 4), (5, 3), (13, 7), (19, 1)):
        maps = torch.rand(batch, 17, 64, generator=generator) ** 4
        maps[::2, 3] = maps[::2, 7]
        eager = kmedoids_cosine(maps, num_parts, num_iters)
        fixed = kmedoids_cosine(maps, num_parts, num_iters, fixed_iterations=True)
        assert torch.equal(eager[0], fixed[0]) and torch.equal(eager[1], fixed[1])
        stopped_early += not torch.equal(eager[0], kmedoids_cosine(maps, num_parts, 40)[0])
    if num_iters == 1:
        assert stopped_early  # the cap really bites, so the masking is exercised


def test_exportable_clustering_switch(tiny, reference_fixture):
    """Inside the context the head uses the fixed-iteration clustering (same outputs); afterwards the eager one."""
    _, model, _, _ = tiny
    head = model.channelformer
    images = reference_fixture["input"]
    record = []
    with torch.no_grad():
        expected = model(images)
        with exportable_clustering(model, record):
            assert head.cluster.__name__ == "cluster" and "cluster" in vars(head)
            switched = model(images)
        after = model(images)
    assert "cluster" not in vars(head)
    assert len(record) == 1 and torch.equal(record[0][0], reference_fixture["kmedoids"]["assign"])
    for name in ("intermediate", "parts", "heatmaps"):
        assert torch.equal(getattr(switched, name), getattr(expected, name))
        assert torch.equal(getattr(after, name), getattr(expected, name))


# ------------------------------------------------------------------ onnxruntime
@pytest.mark.onnx
def test_onnx_clustering_logic_is_exact(onnx_tools, reference_fixture, tmp_path):
    """Given PyTorch's (float64) similarity matrix, the exported clustering (fixed iterations, masks,
    chunk-of-8 maxima) reproduces every sample of the reference case, at any batch size."""
    case = reference_fixture["kmedoids_case"]
    maps = case["maps"]
    path = tmp_path / "kmedoids_similarity.onnx"
    example = (maps[:2], torch.rand(2, maps.shape[1], maps.shape[1], dtype=torch.float64))
    onnx_tools.export_module_onnx(KMedoidsModule(case["num_parts"]), example, path, ["maps", "similarity"],
                                  ["assign", "medoids"])
    unit = maps.double() / (maps.double().norm(dim=-1, keepdim=True) + 1e-6)
    unit = unit / (unit.norm(dim=-1, keepdim=True) + 1e-6)
    similarity = unit @ unit.transpose(1, 2)
    for rows in (slice(None), slice(3, 8), slice(0, 11)):
        out = onnx_tools.run_onnx(path, {"maps": maps[rows].numpy(), "similarity": similarity[rows].numpy()})
        expected = kmedoids_cosine(maps[rows], case["num_parts"])
        np.testing.assert_array_equal(out["assign"], expected[0].numpy())
        np.testing.assert_array_equal(out["medoids"], expected[1].numpy())
    np.testing.assert_array_equal(out["assign"], case["assign"][:11].numpy())
    np.testing.assert_array_equal(out["medoids"], case["medoids"][:11].numpy())


@pytest.mark.onnx
def test_onnx_clustering_end_to_end(onnx_tools, reference_fixture, tmp_path):
    """The clustering alone as ONNX (maps in). The graph clusters in float64, where the reference
    case's closest decisions (two-keypoint parts, >= 3e-13 apart) are hundreds of rounding steps wide,
    so onnxruntime's own GEMM and reductions reach the published clusters for every sample."""
    case = reference_fixture["kmedoids_case"]
    path = tmp_path / "kmedoids.onnx"
    assert onnx_tools.export_kmedoids_onnx(path, case["maps"].shape[1], case["maps"].shape[2],
                                           case["num_parts"]) == ["assign", "medoids"]
    for rows in (slice(None), slice(5, 12)):
        out = onnx_tools.run_onnx(path, {"maps": case["maps"][rows].numpy()})
        np.testing.assert_array_equal(out["assign"], case["assign"][rows].numpy())
        np.testing.assert_array_equal(out["medoids"], case["medoids"][rows].numpy())


@pytest.mark.onnx
def test_model_export_parity(onnx_tools, tiny, tiny_onnx, reference_fixture):
    """Dynamic batch; onnxruntime's outputs equal PyTorch's (eager, published clustering) to 1e-4."""
    import onnx
    path, names = tiny_onnx
    _, model, _, _ = tiny
    assert names == ["heatmaps", "intermediate", "parts", "part_assign"]
    graph = onnx.load(str(path)).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    images = reference_fixture["input"]
    for batch in (images, images[:3], images[7:8]):
        report = onnx_tools.onnx_parity(model, path, batch)
        assert report["heatmaps"] <= 1e-4, report["text"]
        assert report["intermediate"] <= 1e-4 and report["parts"] <= 1e-4, report["text"]
        assert report["clusters_equal"] == len(batch), report["text"]
    out = onnx_tools.run_onnx(path, {"images": images.numpy()})
    np.testing.assert_array_equal(out["part_assign"], reference_fixture["kmedoids"]["assign"].numpy())
    np.testing.assert_allclose(out["heatmaps"], reference_fixture["outputs"]["heatmaps"].numpy(), atol=1e-4)


@pytest.mark.onnx
def test_export_cli(onnx_tools, tiny, tmp_path, capsys):
    from kitpose.inference.cli import export_main
    _, _, cfg_path, checkpoint = tiny
    out = tmp_path / "cli" / "tiny.onnx"
    assert export_main(["--cfg", cfg_path, "--checkpoint", checkpoint, "--out", str(out), "--check-batch", "3"]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and "parity on random batch of 3: heatmaps max |diff|" in printed
    assert "part clusters identical in 3/3" in printed


@pytest.mark.onnx
def test_pose_hrnet_export(onnx_tools, tiny, tmp_path):
    """The baseline has no KIT head: heatmaps only."""
    cfg, _, _, _ = tiny
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.NAME = "pose_hrnet"
    model = build_model(cfg).eval()
    path = tmp_path / "hrnet.onnx"
    assert onnx_tools.export_model_onnx(model, path, tuple(cfg.MODEL.IMAGE_SIZE)) == ["heatmaps"]
    report = onnx_tools.onnx_parity(model, path, torch.randn(5, 3, 64, 64))
    assert report["heatmaps"] <= 1e-4 and "clusters_equal" not in report
