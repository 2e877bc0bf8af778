"""ONNX export of KITPose: a traceable body-part clustering and the export/parity helpers.

The eager `kmedoids_cosine` stops early (a data-dependent branch) and processes the batch in
Python chunks, which a trace would freeze at the example's batch size and iteration count. Its
fixed-iteration mode (`kmedoids_cosine(..., fixed_iterations=True)`) computes the same clusters
with pure tensor operations on a batch of any size; `exportable_clustering(model)` makes the
KIT head of `model` use it (by overriding its `cluster` method on that instance) for as long as
the context is open.

Precision. The clustering runs in float64 (a Cast after the input): the published clustering's
near-ties are then thousands of rounding steps apart, so onnxruntime's own GEMM, norm and
reduction orders reach the same clusters as PyTorch on any CPU.
"""
import contextlib
import logging

import numpy as np
import torch
from torch import nn

from kitpose.models import kmedoids_cosine

logger = logging.getLogger(__name__)

__all__ = ["exportable_clustering", "ExportWrapper", "KMedoidsModule", "export_module_onnx", "export_model_onnx",
           "export_kmedoids_onnx", "run_onnx", "onnx_parity", "DEFAULT_OPSET"]

DEFAULT_OPSET = 17


def _kit_head(model):
    model = getattr(model, "module", model)
    return getattr(model, "channelformer", None)


@contextlib.contextmanager
def exportable_clustering(model, record=None):
    """Within the context the KIT head of `model` clusters in `kmedoids_cosine`'s fixed-iteration mode.

    With `record` (a list) every clustering result (assign, medoids) is appended to it, so an
    export wrapper can return the part assignment without clustering twice. Models without
    part prompts (NUM_BP 0, pose_hrnet) are left alone.
    """
    head = _kit_head(model)
    if head is None or not getattr(head, "num_parts", 0):
        yield model
        return

    def cluster(keypoint_maps):
        result = kmedoids_cosine(keypoint_maps.flatten(2), head.num_parts, head.kmedoids_iters, head.kmedoids_chunk,
                                 fixed_iterations=True)
        if record is not None:
            record.append(result)
        return result

    head.cluster = cluster  # instance attribute shadows KITHead.cluster
    try:
        yield model
    finally:
        del head.cluster


class ExportWrapper(nn.Module):
    """images [B,3,H,W] -> heatmaps, plus intermediate maps, part maps and part assignment when the
    model has them (names in `output_names`)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        head = _kit_head(model)
        self.has_parts = head is not None and bool(getattr(head, "num_parts", 0))
        self.has_intermediate = head is not None
        self.output_names = ["heatmaps"]
        if self.has_intermediate:
            self.output_names.append("intermediate")
        if self.has_parts:
            self.output_names += ["parts", "part_assign"]

    def forward(self, images):
        record = []
        with exportable_clustering(self.model, record):
            output = self.model(images)
        outputs = [output.heatmaps]
        if self.has_intermediate:
            outputs.append(output.intermediate)
        if self.has_parts:
            outputs += [output.parts, record[-1][0]]
        return tuple(outputs)


class KMedoidsModule(nn.Module):
    """The clustering alone, maps [B,K,L] -> (assign [B,K], medoids [B,P]), for export and checks."""

    def __init__(self, num_parts, num_iters=40, chunk_size=8):
        super().__init__()
        self.num_parts, self.num_iters, self.chunk_size = num_parts, num_iters, chunk_size

    def forward(self, maps, similarity=None):
        return kmedoids_cosine(maps, self.num_parts, self.num_iters, self.chunk_size, fixed_iterations=True,
                               similarity=similarity)


def export_module_onnx(module, example_inputs, path, input_names, output_names, opset=DEFAULT_OPSET):
    """Trace `module` on `example_inputs` (a tuple) into an ONNX file whose axis 0 (batch) is dynamic
    for every input and output; checks the file with onnx.checker. Returns the output names."""
    import warnings
    import onnx
    dynamic_axes = {name: {0: "batch"} for name in list(input_names) + list(output_names)}
    with warnings.catch_warnings(), torch.no_grad():
        # the TorchScript exporter unrolls the fixed iteration loop and needs no onnxscript; its
        # deprecation notice and the tracer's notes on shape arithmetic are expected here
        warnings.simplefilter("ignore")
        torch.onnx.export(module, tuple(example_inputs), str(path), dynamo=False, input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes=dynamic_axes, opset_version=opset,
                          do_constant_folding=True)
    onnx.checker.check_model(str(path))
    logger.info("wrote %s (outputs %s, opset %d, dynamic batch)", path, ", ".join(output_names), opset)
    return list(output_names)


def export_model_onnx(model, path, image_size, batch_size=2, opset=DEFAULT_OPSET):
    """Export an eval-mode model to ONNX with a dynamic batch; `image_size` is (w, h).

    Returns the output names ('heatmaps', and for KITPose 'intermediate', plus 'parts' and
    'part_assign' when it has part prompts).
    """
    wrapper = ExportWrapper(model.eval()).eval()
    width, height = image_size
    example = torch.randn(batch_size, 3, height, width, generator=torch.Generator().manual_seed(0))
    return export_module_onnx(wrapper, (example,), path, ["images"], wrapper.output_names, opset)


def export_kmedoids_onnx(path, num_keypoints, map_size, num_parts, num_iters=40, chunk_size=8,
                         opset=DEFAULT_OPSET):
    """Export the clustering alone (input 'maps' [B,K,L]; outputs 'assign', 'medoids')."""
    example = torch.rand(2, num_keypoints, map_size, generator=torch.Generator().manual_seed(0))
    return export_module_onnx(KMedoidsModule(num_parts, num_iters, chunk_size).eval(), (example,), path, ["maps"],
                              ["assign", "medoids"], opset)


def run_onnx(path, inputs):
    """Run an exported file with onnxruntime (CPU): dict input name -> array -> dict output name -> array."""
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    feed = {name: np.ascontiguousarray(np.asarray(value)) for name, value in inputs.items()}
    return dict(zip(names, session.run(names, feed)))


@torch.no_grad()
def onnx_parity(model, path, images):
    """Compare an exported file with the eager model (published `kmedoids_cosine`) on `images`.

    Returns {'heatmaps': max |diff| over all samples, 'heatmaps_same_clusters': over the samples
    whose part clusters are identical in both, 'intermediate' / 'parts' (when exported),
    'clusters_equal': how many samples cluster identically, 'num_samples', 'text'}.
    """
    model = model.eval()
    outputs = model(images)
    onnx_outputs = run_onnx(path, {"images": images.numpy()})
    same = np.ones(len(images), dtype=bool)
    if "part_assign" in onnx_outputs:
        assign, _ = _kit_head(model).cluster(outputs.intermediate)
        same = (onnx_outputs["part_assign"] == assign.numpy()).all(axis=1)
    report = {"num_samples": len(images),
              "heatmaps": _max_diff(onnx_outputs["heatmaps"], outputs.heatmaps),
              "heatmaps_same_clusters": _max_diff(onnx_outputs["heatmaps"][same], outputs.heatmaps[same])}
    parts = [f"heatmaps max |diff| {report['heatmaps']:.3g}"]
    for name in ("intermediate", "parts"):
        if name in onnx_outputs:
            report[name] = _max_diff(onnx_outputs[name], getattr(outputs, name))
            parts.append(f"{name} {report[name]:.3g}")
    if "part_assign" in onnx_outputs:
        report["clusters_equal"] = int(same.sum())
        parts.append(f"part clusters identical in {same.sum()}/{len(images)} samples")
        if not same.all():
            parts.append(f"heatmaps max |diff| over those {report['heatmaps_same_clusters']:.3g}")
    report["text"] = "; ".join(parts)
    return report


def _max_diff(onnx_value, torch_value):
    torch_value = torch_value.float().numpy()
    return float(np.abs(onnx_value - torch_value).max()) if onnx_value.size else 0.0
