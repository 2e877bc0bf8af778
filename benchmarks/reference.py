"""Side-by-side comparisons with the published implementation's reference outputs.

The reference files (``tests/data/reference``; ``tests/data/README.md`` says how each was
made) hold what the published code computes for a tiny model, its clustering and losses,
and for its data pipeline: training samples from scripted random draws, affine matrices,
CutMix from given draws, flip-test decoding and the rescoring + OKS-NMS results.

Each ``compare_*`` function runs this project's code on the same inputs and returns a
``Comparison``: the largest differences per quantity and the tolerance each must meet.
``main`` (tools/check_reference.py) prints them; the tests assert them.
"""
import argparse
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from kitpose.codecs import HeatmapCodec, fuse_flip_heatmaps, get_affine_transform, get_max_preds
from kitpose.codecs.decode import dark_refine
from kitpose.config import load_config
from kitpose.datasets import load_metainfo
from kitpose.datasets.cutmix import CutMixDraws, cutmix_batch, published_box
from kitpose.datasets.topdown import TopDownCocoDataset, build_augmentation
from kitpose.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD
from kitpose.evaluation import evaluate_topdown, evaluation_settings, instance_scores
from kitpose.models import build_model, count_parameters

from . import REPO_ROOT

__all__ = ["Comparison", "ScriptedDraws", "compare_train_cases", "compare_affine_cases", "compare_cutmix_cases",
           "compare_decode_cases", "compare_results_cases", "compare_dataset_filter", "compare_model_outputs",
           "compare_kmedoids", "compare_losses", "compare_official_keys", "check_renamed_key_refused",
           "pipeline_comparisons", "compare_all", "default_reference_dir", "main"]


@dataclass
class Comparison:
    """Largest differences (``values``) against their ``tolerances``; ``notes`` for the printout."""
    family: str
    cases: int = 0
    values: dict = field(default_factory=dict)
    tolerances: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def record(self, name, value, tolerance):
        self.values[name] = max(self.values.get(name, 0.0), float(value))
        self.tolerances[name] = tolerance

    @property
    def failed(self):
        return [name for name, value in self.values.items() if not value <= self.tolerances[name]]

    def lines(self):
        head = f"{self.family}: {self.cases} case(s)"
        body = [f"  {name:<40} {value:.3e}  (tolerance {self.tolerances[name]:.0e})"
                + ("  FAILED" if name in self.failed else "") for name, value in self.values.items()]
        return [head] + body + [f"  {note}" for note in self.notes]


class ScriptedDraws:
    """A random source that replays recorded draws (``random()``: uniforms, ``standard_normal()``:
    normals) and can tell whether every draw was consumed."""

    def __init__(self, uniforms, normals):
        self.uniforms = [float(value) for value in uniforms]
        self.normals = [float(value) for value in normals]

    def random(self):
        return self.uniforms.pop(0)

    def standard_normal(self):
        return self.normals.pop(0)

    @property
    def exhausted(self):
        return not self.uniforms and not self.normals


def _config(config_yaml, folder):
    path = Path(folder) / "published.yaml"
    path.write_text(config_yaml)
    return load_config(str(path))


def _one_annotation_dataset(case, categories, samples_dir, folder):
    """The project's training dataset on a file holding only the case's annotation (as the reference was made)."""
    cfg = _config(case["config_yaml"], folder)
    meta = load_metainfo(case["dataset"])
    ann_file = Path(folder) / "one.json"
    ann_file.write_text(json.dumps({"images": [case["image_info"]], "annotations": [case["annotation"]],
                                    "categories": categories}))
    # the image under the annotation's file_name (which may carry sub-folders), linked to the sample
    image_dir = Path(folder) / "images"
    linked = image_dir / case["image_info"]["file_name"]
    linked.parent.mkdir(parents=True, exist_ok=True)
    linked.symlink_to(Path(samples_dir, case["image"]).resolve())
    codec = HeatmapCodec.from_config(cfg)
    dataset = TopDownCocoDataset(ann_file, image_dir, meta, codec,
                                 is_train=True, augmentation=build_augmentation(cfg, meta, codec.aspect_ratio),
                                 color_rgb=cfg.DATASET.COLOR_RGB,
                                 use_joint_weights=cfg.LOSS.USE_DIFFERENT_JOINTS_WEIGHT)
    return dataset


def compare_train_cases(reference, samples_dir):
    """Training samples from scripted draws: record centre/scale, warped input, joints, targets, weights."""
    result = Comparison("training samples (scripted draws)")
    for case in reference["train_cases"]:
        with tempfile.TemporaryDirectory() as folder:
            dataset = _one_annotation_dataset(case, reference["categories"].get(case["dataset"], []),
                                              samples_dir, folder)
            draws = ScriptedDraws(case["uniforms"], case["normals"])
            dataset.set_random_source(draws)
            image, target, target_weight, meta = dataset[0]
        result.cases += 1
        result.record("draws left unconsumed", 0 if draws.exhausted else 1, 0)
        result.record("record centre, scale", max(np.abs(dataset.centers[0] - case["record_center"].numpy()).max(),
                                                  np.abs(dataset.scales[0] - case["record_scale"].numpy()).max()), 0)
        result.record("centre, scale, rotation", max(np.abs(meta["center"] - case["center"].numpy()).max(),
                                                     np.abs(meta["scale"] - case["scale"].numpy()).max(),
                                                     abs(meta["rotation"] - case["rotation"]),
                                                     float(meta["flipped"] != case["flipped"])), 1e-6)
        # the published input is warped / 255 normalised in float32: compare in grey levels
        warped = case["warped"].numpy().astype(np.float32)
        expected = ((warped / np.float32(255) - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
        grey_levels = np.abs(image.numpy() - expected) * (IMAGENET_STD[:, None, None] * 255)
        result.record("warped: max grey levels", grey_levels.max(), 1.0 + 1e-3)
        result.record("warped: fraction off", (grey_levels > 0.5).mean(), 1e-3)
        joints = case["joints"].numpy()
        result.record("joints (px)", np.abs(meta["joints"][:, :2] - joints[:, :2]).max(), 1e-4)
        result.record("heatmap joints (px)", np.abs(meta["heatmap_joints"] - case["joints_heatmap"].numpy()[:, :2]).max(),
                      1e-4)
        result.record("visibility", np.abs(meta["joints"][:, 2] - joints[:, 2]).max(), 0)
        result.record("targets", (target - case["target"]).abs().max(), 1e-5)
        result.record("target weights", (target_weight[:, 0] - case["target_weight"]).abs().max(), 0)
    return result


def compare_affine_cases(reference):
    """get_affine_transform and its inverse against the published matrices."""
    result = Comparison("affine matrices")
    for case in reference["affine_cases"]:
        args = (case["center"].numpy(), case["scale"].numpy(), case["rotation"], case["output_size"])
        result.cases += 1
        result.record("matrix", np.abs(get_affine_transform(*args) - case["matrix"].numpy()).max(), 1e-9)
        result.record("inverse", np.abs(get_affine_transform(*args, inverse=True) - case["matrix_inv"].numpy()).max(),
                      1e-9)
    return result


def compare_cutmix_cases(reference):
    """Published-mode CutMix from the recorded draws: pasted boxes, mixed batch, weights A / B, lam."""
    result = Comparison("CutMix (published weights)")
    for case in reference["cutmix_cases"]:
        images, targets, weights = case["images"], case["targets"], case["target_weight"]
        draws = CutMixDraws(case["r"], case["lam_draw"], case["permutation"], case["cx"], case["cy"])
        mixed_images, mixed_targets, mix = cutmix_batch(images, targets, weights, weights="published",
                                                        prob=case["cutmix_prob"], draws=draws)
        result.cases += 1
        if not case["applied"]:
            result.record("not applied: batch changed", float(mix is not None or mixed_images is not images), 0)
            continue
        box = published_box(images.shape[2:], targets.shape[2:], case["lam_draw"], case["cx"], case["cy"])
        same_box = ([list(box.image_rows), list(box.image_cols), list(box.heatmap_rows), list(box.heatmap_cols)]
                    == [case["image_rows"], case["image_cols"], case["heatmap_rows"], case["heatmap_cols"]])
        result.record("pasted boxes differ", float(not same_box), 0)
        result.record("mixed images sum", abs(mixed_images.double().sum().item() - case["input_mix_sum"]), 0)
        result.record("weights A", (mix.weight_a.double() - case["weight_a"]).abs().max(), 0)
        result.record("weights B", (mix.weight_b.double() - case["weight_b"]).abs().max(), 0)
        result.record("lam", abs(mix.lam - case["lam"]), 0)
    return result


def compare_decode_cases(reference):
    """Flip-test fusion and decoding (arg-max, DARK, back-projection) of given heatmaps."""
    result = Comparison("decoding (flip test, DARK, back-projection)")
    for case in reference["decode_cases"]:
        cfg_text = case["config_yaml"]
        with tempfile.TemporaryDirectory() as folder:
            codec = HeatmapCodec.from_config(_config(cfg_text, folder))
        fused = fuse_flip_heatmaps(case["heatmaps"], case["heatmaps_flipped_raw"], case["flip_pairs"])
        result.cases += 1
        result.record("fused heatmaps", (fused - case["heatmaps_fused"]).abs().max(), 0)
        heatmaps = case["heatmaps_fused"].numpy()
        argmax, _ = get_max_preds(heatmaps)
        result.record("arg-max (px)", np.abs(argmax - case["argmax"].numpy()).max(), 0)
        refined = dark_refine(heatmaps, argmax, case["blur_kernel"])
        result.record("DARK heatmap coords (px)", np.abs(refined - case["preds_heatmap"].numpy()).max(), 1e-4)
        preds, maxvals = codec.decode(heatmaps, case["center"].numpy(), case["scale"].numpy())
        result.record("image coords (px)", np.abs(preds - case["preds"].numpy()).max(), 1e-4)
        result.record("maxima", np.abs(maxvals - case["maxvals"].numpy()).max(), 0)
    return result


def compare_results_cases(reference):
    """Rescoring, per-image OKS-NMS and the written results file (COCO evaluation itself not compared);
    PCK tables for datasets evaluated by PCK."""
    result = Comparison("rescoring + OKS-NMS results, PCK")
    for case in reference["results_case"]:
        meta = load_metainfo(case["dataset"])
        preds, boxes = case["preds"].numpy(), case["all_boxes"].numpy()
        categories = reference["categories"].get(case["dataset"]) or [{"id": 1, "name": "person"}]
        gt_boxes = case.get("use_gt_bbox", True)
        ann_ids = np.array([ann_id if gt_boxes and ann_id is not None else -1 for ann_id in case["matched_gt"]],
                           dtype=np.int64)
        image_ids = case.get("image_ids") or [ann["image_id"] for ann in _by_id(case["gt_annotations"], ann_ids)]
        with tempfile.TemporaryDirectory() as folder:
            ann_file = Path(folder) / "gt.json"
            ann_file.write_text(json.dumps({"images": case["gt_images"], "annotations": case["gt_annotations"],
                                            "categories": categories}))
            settings = evaluation_settings(_config(case["config_yaml"], folder).TEST, meta)
            names, _ = evaluate_topdown(meta, str(ann_file), preds, boxes, image_ids, ann_ids, folder,
                                        set_name=case["image_set"], bbox_ids=case["bbox_ids"].numpy(), **settings)
            written = json.loads((Path(folder) / "results" / f"keypoints_{case['image_set']}_results.json").read_text())
        result.cases += 1
        if case.get("kept") is None:
            # the published PCK table is in percent
            published = dict(case["pck_name_value"])
            result.record("PCK table (percent)", max(abs(100 * names[row] - value) for row, value in published.items()),
                          1e-9)
            result.notes.append(f"{case['dataset']}: PCK Mean {100 * names['Mean']:.3f} "
                                f"(published {published['Mean']:.3f})")
            continue
        scores = instance_scores(preds[:, :, 2], boxes[:, 5], case["in_vis_thre"])
        rescored = case["rescored_score"].numpy()
        counted = ~np.isnan(rescored)
        result.record("rescored scores", np.abs(scores[counted] - rescored[counted]).max(), 1e-7)
        expected = case["kept"]
        same = (len(written) == len(expected) and all(
            (w["image_id"], w["category_id"]) == (e["image_id"], e["category_id"]) for w, e in zip(written, expected)))
        result.record("kept set or order differs", float(not same), 0)
        if same:
            result.record("kept keypoints", max(np.abs(np.subtract(w["keypoints"], e["keypoints"])).max()
                                                for w, e in zip(written, expected)), 1e-6)
            result.record("kept scores", max(abs(w["score"] - e["score"]) for w, e in zip(written, expected)), 1e-7)
        result.notes.append(f"{case['dataset']}: {len(written)} of {len(preds)} instances kept "
                            f"({len(expected)} published)")
    return result


def _by_id(annotations, ann_ids):
    index = {ann["id"]: ann for ann in annotations}
    return [index[int(ann_id)] for ann_id in ann_ids]


def compare_dataset_filter(reference, samples_dir):
    """Which edge-case annotations the loader keeps, and their centre/scale.

    Documented exceptions: a box under 1 px, kept with scale 0 by the published loaders, is
    skipped here; an annotation without 'bbox' or 'keypoints', which crashes the published COCO
    loader, is skipped here as the other published loaders skip it.
    """
    cases = reference.get("dataset_filter_case")
    result = Comparison("annotation filter")
    if not cases:
        return result
    for case in (cases.values() if "annotations" not in cases else [cases]):
        with tempfile.TemporaryDirectory() as folder:
            cfg = _config(case["config_yaml"], folder)
        categories = case.get("categories") or reference["categories"].get(cfg.DATASET.DATASET, [])
        images = {image["id"]: image for image in case.get("images") or [c["image_info"]
                                                                         for c in reference["train_cases"]]}
        for entry in case["annotations"]:
            annotation = {key: value for key, value in entry["annotation"].items() if key != "_note"}
            note = entry["annotation"].get("_note") or "base annotation"
            if entry.get("error") and "KeyError" in entry["error"] and annotation.get("category_id") not in {
                    category["id"] for category in categories}:
                result.notes.append(f"{cfg.DATASET.DATASET}: not compared (the published loader raises "
                                    f"{entry['error']}): {note}")
                continue
            with tempfile.TemporaryDirectory() as folder:
                ann_file = Path(folder) / "one.json"
                ann_file.write_text(json.dumps({"images": [images[annotation["image_id"]]],
                                                "annotations": [annotation], "categories": categories}))
                dataset = TopDownCocoDataset(ann_file, str(samples_dir), load_metainfo(cfg.DATASET.DATASET),
                                             HeatmapCodec.from_config(cfg), is_train=False)
            result.cases += 1
            expected_kept = entry["kept"] and bool((entry["scale"] > 0).any())
            result.record("kept differs", float((len(dataset) == 1) != expected_kept), 0)
            if entry["kept"] and not expected_kept:
                result.notes.append(f"{cfg.DATASET.DATASET}: skipped here, kept with scale 0 by the published "
                                    f"loader: {note}")
            if len(dataset) == 1 and expected_kept:
                result.record("centre, scale", max(np.abs(dataset.centers[0] - entry["center"].numpy()).max(),
                                                   np.abs(dataset.scales[0] - entry["scale"].numpy()).max()), 0)
    return result


def pipeline_comparisons(reference, samples_dir):
    """Every data-pipeline family a reference file holds (files made for other datasets may lack some)."""
    families = [("train_cases", lambda: compare_train_cases(reference, samples_dir)),
                ("affine_cases", lambda: compare_affine_cases(reference)),
                ("cutmix_cases", lambda: compare_cutmix_cases(reference)),
                ("decode_cases", lambda: compare_decode_cases(reference)),
                ("results_case", lambda: compare_results_cases(reference)),
                ("dataset_filter_case", lambda: compare_dataset_filter(reference, samples_dir))]
    return [compare() for key, compare in families if reference.get(key)]


# ---------------------------------------------------------------- model, clustering, losses, checkpoints
def compare_model_outputs(fixture, device="cpu"):
    """The tiny reference model (published-format YAML and state dict) in eval mode on the fixture batch,
    run on `device` (its outputs are compared on the CPU)."""
    from kitpose.models import build_model, load_checkpoint
    result = Comparison("tiny reference model outputs")
    with tempfile.TemporaryDirectory() as folder:
        model = build_model(_config(fixture["config_yaml"], folder)).eval()
        torch.save(fixture["state_dict"], Path(folder) / "tiny.pth")
        load_checkpoint(model, Path(folder) / "tiny.pth")
    model.to(device)
    with torch.no_grad():
        outputs = model(fixture["input"].to(device))
        assign, medoids = (value.cpu() for value in model.channelformer.cluster(outputs.intermediate))
    result.cases = len(fixture["input"])
    for name in outputs._fields:
        result.record(name, (getattr(outputs, name).cpu() - fixture["outputs"][name]).abs().max(), 1e-5)
    same = torch.equal(assign, fixture["kmedoids"]["assign"]) and torch.equal(medoids, fixture["kmedoids"]["medoids"])
    result.record("k-medoids parts differ", float(not same), 0)
    return result


def compare_kmedoids(case, device="cpu"):
    """``kmedoids_cosine`` on the clustering case, on `device`, in chunks of 8 and of 1 and in float64: exact."""
    from kitpose.models import kmedoids_cosine
    result = Comparison("k-medoids clustering case")
    result.cases = len(case["maps"])
    maps32 = case["maps"].to(device)
    for label, maps, chunk in (("float32, chunks of 8", maps32, 8), ("float32, alone", maps32, 1),
                               ("float64", maps32.double(), 8)):
        assign, medoids = (value.cpu() for value in kmedoids_cosine(maps, case["num_parts"], chunk_size=chunk))
        differ = ~((assign == case["assign"]).all(1) & (medoids == case["medoids"]).all(1))
        result.record(f"samples differ ({label})", int(differ.sum()), 0)
    return result


def compare_losses(case):
    """Adaptive-weight MSE and GHRL: relative differences of value and gradient."""
    from kitpose.losses import AdaptiveWeightMSELoss, GHRLoss
    result = Comparison("losses (relative differences)")
    for name, loss, input_key, value_key, grad_key in (
            ("adaptive MSE", AdaptiveWeightMSELoss(), "pred", "adaptive_mse", "grad_pred"),
            ("GHRL", GHRLoss(), "intermediate", "ghrl", "grad_intermediate")):
        prediction = case[input_key].clone().requires_grad_()
        value = loss(prediction, case["target"], case["target_weight"])
        value.backward()
        result.cases += 1
        result.record(f"{name} value", _relative(value.detach(), case[value_key]), 1e-6)
        result.record(f"{name} gradient", _relative(prediction.grad, case[grad_key]), 1e-6)
    return result


def _relative(value, reference):
    return ((value - reference).abs().max() / reference.abs().max().clamp_min(1e-30)).item()


def compare_official_keys(key_list, cfg):
    """The model built from ``cfg`` against the official checkpoint's (name, shape) list."""
    from kitpose.models import build_model
    with torch.device("meta"):
        ours = sorted((key, list(tensor.shape)) for key, tensor in build_model(cfg).state_dict().items())
    official = sorted((key, list(shape)) for key, shape in key_list)
    result = Comparison("official checkpoint keys", cases=len(official))
    result.record("keys or shapes differ", len(set(map(str, official)) ^ set(map(str, ours))), 0)
    result.notes.append(f"official: {len(official)} keys, model: {len(ours)}")
    return result


def check_renamed_key_refused(fixture):
    """A published-format checkpoint with one key renamed must be refused by a message naming both keys."""
    from kitpose.models import CheckpointError, build_model, load_checkpoint
    result = Comparison("strict loading", cases=1)
    state = dict(fixture["state_dict"])
    old_key, new_key = "channelformer.kpt_to_embedding.weight", "channelformer.kpt_to_embeding.weight"
    state[new_key] = state.pop(old_key)
    with tempfile.TemporaryDirectory() as folder:
        model = build_model(_config(fixture["config_yaml"], folder))
        torch.save({"state_dict": state}, Path(folder) / "renamed.pth")
        try:
            load_checkpoint(model, Path(folder) / "renamed.pth")
            named = False
            result.notes.append("a checkpoint with a renamed key was ACCEPTED")
        except CheckpointError as err:
            named = old_key in str(err) and new_key in str(err)
            result.notes.append(f"renamed {old_key} -> {new_key}: refused; the message names both keys: {named}")
    result.record("renamed key not named", float(not named), 0)
    return result


PIPELINE_FILES = ("pipeline_reference.pt", "published_pipeline_extra.pt")


def compare_all(reference_dir, samples_dir, official_cfg):
    """Every comparison the reference folder allows: the tiny model's outputs and clusters, the
    k-medoids case, the losses, the official checkpoint keys (against the model of `official_cfg`),
    strict loading, and each pipeline file's families (named after the file)."""
    reference_dir = Path(reference_dir)
    fixture = torch.load(reference_dir / "kitpose_tiny_ap10k_reference.pt", weights_only=False)
    key_list = json.loads((reference_dir / "official_state_dict_ap10k_w32_256x256.json").read_text())
    comparisons = [compare_model_outputs(fixture), compare_kmedoids(fixture["kmedoids_case"]),
                   compare_losses(fixture["loss_case"]), compare_official_keys(key_list, official_cfg),
                   check_renamed_key_refused(fixture)]
    for name in PIPELINE_FILES:
        if (reference_dir / name).is_file():
            for comparison in pipeline_comparisons(torch.load(reference_dir / name, weights_only=False),
                                                   samples_dir):
                comparison.family = f"{name}: {comparison.family}"
                comparisons.append(comparison)
    return comparisons


# ---------------------------------------------------------------------------- tools/check_reference.py
TESTS_DATA = REPO_ROOT / "tests" / "data"
OFFICIAL_CFG = REPO_ROOT / "experiments" / "ap10k" / "kitpose" / "kitpose_w32_256x256.yaml"


def default_reference_dir():
    """$KITPOSE_REFERENCE_DIR if set, else the checkout's tests/data/reference."""
    if os.environ.get("KITPOSE_REFERENCE_DIR"):
        return Path(os.environ["KITPOSE_REFERENCE_DIR"])
    return TESTS_DATA / "reference"


def print_parameter_counts(experiments_dir):
    print("parameter counts of the published configurations (all / used):")
    for path in sorted(Path(experiments_dir).glob("*/kitpose/*.yaml")):
        cfg = load_config(str(path), ["MODEL.INIT_WEIGHTS", "False"])
        with torch.device("meta"):
            num_all, num_used = count_parameters(build_model(cfg))
        print(f"  {str(path.relative_to(experiments_dir)):<45} {num_all:>13,} {num_used:>13,}")


def main(argv=None):
    """Compare this implementation with the outputs of the published one and print the largest differences.

    python tools/check_reference.py [--reference DIR] [--samples DIR]

    DIR defaults to $KITPOSE_REFERENCE_DIR, else the checkout's tests/data/reference (samples:
    tests/data/samples). Every family above is compared: the tiny model's outputs and clusters,
    the k-medoids case, the losses, the official checkpoint keys, strict loading, and for each
    pipeline file (pipeline_reference.pt, published_pipeline_extra.pt when present) training
    samples from scripted draws, affine matrices, CutMix, decoding, rescoring + OKS-NMS and the
    annotation filter. Parameter counts of experiments/ are printed. Exits 1 when a comparison fails.
    """
    parser = argparse.ArgumentParser(description=main.__doc__.split("\n")[0])
    parser.add_argument("--reference", default=None,
                        help="reference folder (default $KITPOSE_REFERENCE_DIR, else tests/data/reference)")
    parser.add_argument("--samples", default=str(TESTS_DATA / "samples"),
                        help="sample images folder (default tests/data/samples)")
    args = parser.parse_args(argv)
    reference_dir = Path(args.reference) if args.reference else default_reference_dir()
    if not (reference_dir / "kitpose_tiny_ap10k_reference.pt").is_file():
        print(f"error: {reference_dir / 'kitpose_tiny_ap10k_reference.pt'} not found (pass --reference DIR)",
              file=sys.stderr)
        return 1
    # the annotation-filter cases skip annotations on purpose: keep their warnings out of the printout
    logging.getLogger("kitpose.datasets").setLevel(logging.ERROR)
    official_cfg = load_config(str(OFFICIAL_CFG), ["MODEL.INIT_WEIGHTS", "False"])
    comparisons = compare_all(reference_dir, Path(args.samples), official_cfg)
    for comparison in comparisons:
        print("\n".join(comparison.lines()))
    print_parameter_counts(REPO_ROOT / "experiments")
    failed = [c.family for c in comparisons if c.failed]
    print("all comparisons passed" if not failed else "FAILED: " + "; ".join(failed))
    return 1 if failed else 0
