"""The data pipeline equals the published implementation's, family by family (benchmarks.reference).

pipeline_reference.pt holds AP-10K cases made by scripted runs of the published code;
published_pipeline_extra.pt the same kinds of cases for its COCO, AnimalPose and AnimalKingdom
loaders (tests/data/README.md says how each was made). Tolerances are at least the published
code's own movement between numpy 1 and numpy 2 (the reference files' 'crosscheck').
"""
import logging

import torch

from benchmarks import reference


def run_comparisons(pipeline, samples_dir, caplog):
    with caplog.at_level(logging.ERROR, logger="kitpose.datasets"):
        comparisons = reference.pipeline_comparisons(pipeline, samples_dir)
    for comparison in comparisons:
        assert comparison.cases > 0 and comparison.values, comparison.family
        assert not comparison.failed, "\n".join(comparison.lines())
    return {comparison.family for comparison in comparisons}


def test_ap10k_pipeline_equals_published(pipeline_reference, samples_dir, caplog):
    families = run_comparisons(pipeline_reference, samples_dir, caplog)
    assert len(families) == 6


def test_coco_animalpose_ak_pipelines_equal_published(reference_dir, samples_dir, caplog):
    extra = torch.load(reference_dir / "published_pipeline_extra.pt", weights_only=False)
    assert {case["dataset"] for case in extra["train_cases"]} == {"coco", "animalpose", "ak"}
    families = run_comparisons(extra, samples_dir, caplog)
    assert {"training samples (scripted draws)", "rescoring + OKS-NMS results, PCK", "annotation filter"} <= families


def test_a_different_draw_is_detected(pipeline_reference, samples_dir):
    """The comparison can fail: replaying a scaled case with the opposite scale draw changes the sample."""
    case = next(c for c in pipeline_reference["train_cases"] if c["name"] == "scale x1.25")
    case = dict(case, normals=[-value for value in case["normals"]])
    comparison = reference.compare_train_cases(dict(pipeline_reference, train_cases=[case]), samples_dir)
    assert {"centre, scale, rotation", "warped: max grey levels", "joints (px)", "targets"} <= set(comparison.failed)
