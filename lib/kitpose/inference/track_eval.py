"""Predictions on a video scored against its labels: `tools/eval_tracks.py`.

    python tools/eval_tracks.py --labels LABELS --predictions PREDICTIONS [--out eval.json]
        [--sigma 0.05 | --metainfo meta.json] [--match-oks 0.1] [--pck-thr 0.1]
        [--retrack [--max-animals N] [--visibility 0.2]]

LABELS: the labelled video's file (SLEAP .slp with tracks, DeepLabCut multi-animal csv/h5, any file
sleap-io reads); PREDICTIONS: a `tools/infer.py` run's results.json or --format file (.slp, .nwb,
.sleap.csv, DeepLabCut _kitpose.h5/csv), or any file of those kinds (`kitpose.interop.tracks_io`).
Keypoints are matched by name; every labelled keypoint name must be predicted.

Only labelled frames count (--frames: only some of them; --tracks: only the animals of some
tracks). In each, the labelled animals (those with a labelled keypoint) and the predicted ones are
paired by one Hungarian matching on OKS (the label's labelled keypoints, its area the area of their
bounding box, the sigmas of --metainfo or --sigma for every keypoint);
a pair below --match-oks is no pair. Then:

- found: the share of labelled animals that got a predicted one;
- keypoint error: pixel distance of each labelled keypoint of a paired animal to its prediction
  (median and root mean square), and the median of each distance over its animal's size (the
  normaliser of PCK below) to compare animals of different sizes;
- PCK: the share of labelled keypoints (of every labelled animal: an unpaired one's count as
  misses) predicted within --pck-thr times the animal's size, the longer side of the bounding box
  of its labelled keypoints (`kitpose.evaluation.pck_counts`);
- OKS AP/AR: COCO keypoint AP of every prediction on the labelled frames, scored by its instance
  score (`kitpose.evaluation.oks_metrics`, xtcocotools);
- MOT figures (when every label has a track and every prediction has one): MOTA, IDF1, ID
  switches, misses, false positives from `motmetrics`, fed with each frame's labelled and
  predicted track ids and the distance 1 - OKS of their pairs (pairs below --match-oks: none);
  and which predicted track follows each labelled one longest (how names such as male/female
  carry over to the tracker's ``track_<id>``).

--retrack throws the predictions' ids away and assigns them again with the tracker's global
matching (`kitpose.inference.identities.IdentityTracker`, frames in order): the identity stage
alone, measured on given poses (ground truth with noise, or another tool's untracked output).
"""
import argparse
import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from kitpose.console import add_console_handler
from kitpose.datasets.metainfo import MetainfoError, load_metainfo, metainfo_from_dict
from kitpose.evaluation import oks_iou, oks_metrics, pck_counts
from kitpose.evaluation.oks import load_coco
from kitpose.interop import InteropError
from kitpose.interop.cli import frame_range_argument
from kitpose.interop.tracks_io import Animal, read_tracked_poses
from kitpose.jsonio import write_json

from .identities import IdentityTracker, pose_area
from .tracking import TrackerSettings

logger = logging.getLogger(__name__)

__all__ = ["TrackEvalSettings", "evaluate_tracks", "format_track_table", "eval_tracks_main"]

DEFAULT_SIGMA = 0.05           # as tools/import_labels.py writes for every keypoint
MOT_METRICS = ("mota", "idf1", "num_switches", "num_misses", "num_false_positives", "num_fragmentations",
               "mostly_tracked", "mostly_lost")


class TrackEvalError(ValueError):
    """Labels and predictions that cannot be compared: the message names the file and the reason."""


@dataclass
class TrackEvalSettings:
    sigma: float = DEFAULT_SIGMA   # OKS sigma of every keypoint, unless `sigmas` names them
    sigmas: dict = None            # keypoint name -> OKS sigma (a metainfo's)
    match_oks: float = 0.1
    pck_threshold: float = 0.1
    retrack: bool = False
    max_animals: int = 0
    visibility: float = 0.2        # --retrack: a predicted keypoint counts when its score is above it
    frame_range: tuple = None      # (start, stop, step): only these labelled frames count (e.g. the held-out part)
    tracks: tuple = None           # only the labelled animals of these track names count (None: all)


def _in_label_order(labels, predictions):
    missing = [name for name in labels.keypoint_names if name not in predictions.keypoint_names]
    if missing:
        raise TrackEvalError(f"{predictions.path}: keypoint(s) {missing} of {labels.path} are not predicted "
                             f"(predicted: {predictions.keypoint_names})")
    order = [predictions.keypoint_names.index(name) for name in labels.keypoint_names]
    for animals in predictions.frames.values():
        animals[:] = [Animal(a.track, a.keypoints[order], a.score) for a in animals]
    predictions.keypoint_names = list(labels.keypoint_names)


def _retracked(predictions, sigmas, settings):
    defaults = TrackerSettings()
    tracker = IdentityTracker(sigmas, settings.visibility, defaults.match_oks, settings.max_animals, defaults.max_lost,
                              defaults.match_distance)
    # every frame from the first to the last predicted one: a frame without poses is a frame unseen
    for frame in range(min(predictions.frames, default=0), max(predictions.frames, default=-1) + 1):
        animals = predictions.frames.get(frame, [])
        ids = tracker.assign(np.array([a.keypoints for a in animals]).reshape(len(animals), len(sigmas), 3),
                             [a.score for a in animals])
        if animals:
            predictions.frames[frame] = [Animal(f"track_{i}", a.keypoints, a.score)
                                         for i, a in zip(ids, animals) if i >= 0]
    logger.info("--retrack: %d track id(s) assigned", tracker.next_id)


def _keep_tracks(labels, frames, tracks, labels_path):
    """Leave only the labelled animals of the track names `tracks` in `labels`' `frames` (in place)."""
    present = {a.track for animals in labels.frames.values() for a in animals}
    unknown = [name for name in tracks if name not in present]
    if unknown:
        raise TrackEvalError(f"--tracks {unknown}: no such track in {labels_path} (it has "
                             f"{sorted(str(name) for name in present)})")
    left_out = 0
    for frame in frames:
        animals = labels.frames[frame]
        labels.frames[frame] = [a for a in animals if a.track in tracks]
        left_out += len(animals) - len(labels.frames[frame])
    logger.info("--tracks: %d labelled animal(s) of other tracks in the %d frame(s) left out", left_out, len(frames))


def _box(keypoints):
    """[x, y, w, h] of the labelled keypoints."""
    xy = keypoints[keypoints[:, 2] > 0, :2]
    low, high = xy.min(axis=0), xy.max(axis=0)
    return [float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1])]


def _similarity(labelled, predicted, sigmas):
    """[G, P] OKS of each predicted animal against each labelled one, over the labelled keypoints."""
    table = np.zeros((len(labelled), len(predicted)))
    if not len(predicted):
        return table
    poses = np.array([a.keypoints for a in predicted])
    poses[:, :, 2] = 1.0                          # every labelled keypoint counts, whatever its score
    for g, animal in enumerate(labelled):
        area = pose_area(animal.keypoints, 0.0)
        table[g] = oks_iou(animal.keypoints, poses, area, np.full(len(poses), area), sigmas, in_vis_thre=0.0)
    return table


def _pairs(similarity, match_oks):
    if not similarity.size:
        return []
    allowed = similarity >= match_oks
    rows, cols = linear_sum_assignment(np.where(allowed, 1.0 - similarity, 1e6))
    return [(int(g), int(p)) for g, p in zip(rows, cols) if allowed[g, p]]


def evaluate_tracks(labels_path, predictions_path, settings=TrackEvalSettings()):
    """The figures of the module docstring as a dict (JSON-ready)."""
    import motmetrics

    labels, predictions = read_tracked_poses(labels_path), read_tracked_poses(predictions_path)
    _in_label_order(labels, predictions)
    names = labels.keypoint_names
    if settings.sigmas is None:
        if settings.sigma <= 0:
            raise TrackEvalError(f"--sigma must be > 0, got {settings.sigma}")
        sigmas = np.full(len(names), float(settings.sigma))
    else:
        unknown = [name for name in names if name not in settings.sigmas]
        if unknown:
            raise TrackEvalError(f"no OKS sigma for keypoint(s) {unknown} of {labels_path} in the metainfo")
        sigmas = np.array([settings.sigmas[name] for name in names], np.float64)
    if settings.retrack:
        _retracked(predictions, sigmas, settings)

    kept = range(*settings.frame_range) if settings.frame_range else None
    frames = sorted(f for f in labels.frames if kept is None or f in kept)
    if not frames:
        raise TrackEvalError(f"{labels_path}: no labelled frame in --frames {settings.frame_range}")
    if settings.tracks is not None:
        _keep_tracks(labels, frames, settings.tracks, labels_path)
    compared = [f for f in frames if f in predictions.frames]
    if not compared:
        raise TrackEvalError(f"{predictions_path}: no prediction on any of the {len(frames)} labelled frame(s) of "
                             f"{labels_path} (predicted frames {min(predictions.frames, default='-')}.."
                             f"{max(predictions.frames, default='-')})")
    tracked = (all(a.track is not None for f in frames for a in labels.frames[f])
               and all(a.track is not None for f in compared for a in predictions.frames[f]))
    accumulator = motmetrics.MOTAccumulator(auto_id=False) if tracked else None
    label_ids, track_ids = {}, {}      # track name -> number (motmetrics takes numbers)

    images, annotations, results, matched_results = [], [], [], []
    errors, relative_errors, followed = [], [], {}
    num_labelled = num_found = num_predicted = 0
    extent = np.zeros(2)
    for frame in frames:
        labelled = [a for a in labels.frames[frame] if (a.keypoints[:, 2] > 0).any()]
        predicted = predictions.frames.get(frame, [])
        num_labelled += len(labelled)
        num_predicted += len(predicted)
        similarity = _similarity(labelled, predicted, sigmas)
        pairs = _pairs(similarity, settings.match_oks)
        num_found += len(pairs)
        images.append({"id": frame, "file_name": str(frame)})
        for g, animal in enumerate(labelled):
            ann_id = len(annotations) + 1
            box = _box(animal.keypoints)
            keypoints = animal.keypoints.copy()
            keypoints[:, 2] = np.where(keypoints[:, 2] > 0, 2.0, 0.0)
            extent = np.maximum(extent, keypoints[:, :2].max(axis=0))
            annotations.append({"id": ann_id, "image_id": frame, "category_id": 1, "bbox": box,
                                "area": max(box[2] * box[3], 1.0), "iscrowd": 0,
                                "num_keypoints": int((keypoints[:, 2] > 0).sum()),
                                "keypoints": keypoints.reshape(-1).tolist()})
            for pair_g, p in pairs:
                if pair_g == g:
                    seen = animal.keypoints[:, 2] > 0
                    distances = np.linalg.norm(predicted[p].keypoints[seen, :2] - animal.keypoints[seen, :2], axis=1)
                    errors += distances.tolist()
                    relative_errors += (distances / max(box[2], box[3], 1.0)).tolist()
                    matched_results.append({"ann_id": ann_id, "keypoints": predicted[p].keypoints.reshape(-1).tolist()})
                    if tracked:
                        followed.setdefault(animal.track, {}).setdefault(predicted[p].track, 0)
                        followed[animal.track][predicted[p].track] += 1
        for animal in predicted:
            results.append({"image_id": frame, "category_id": 1, "score": float(animal.score),
                            "keypoints": animal.keypoints.reshape(-1).tolist()})
        if tracked and frame in predictions.frames:
            distances = np.full(similarity.shape, np.nan)
            for g, p in pairs:
                distances[g, p] = 1.0 - similarity[g, p]
            accumulator.update([label_ids.setdefault(a.track, len(label_ids)) for a in labelled],
                               [track_ids.setdefault(a.track, len(track_ids)) for a in predicted], distances,
                               frameid=frame)
        elif tracked:
            accumulator.update([label_ids.setdefault(a.track, len(label_ids)) for a in labelled], [],
                               np.zeros((len(labelled), 0)), frameid=frame)
    width, height = (math.ceil(v) + 2 for v in extent)
    for image in images:
        image.update(width=width, height=height)
    ground_truth = load_coco({"images": images, "annotations": annotations,
                              "categories": [{"id": 1, "name": "animal", "keypoints": names, "skeleton": []}]})

    figures = {
        "labels": labels_path, "predictions": predictions_path, "retracked": settings.retrack,
        "labelled_frames": len(frames), "frames_compared": len(compared),
        "labelled_animals": num_labelled, "predicted_animals": num_predicted, "found": num_found,
        "share_found": num_found / num_labelled if num_labelled else float("nan"),
        "match_oks": settings.match_oks,
        "keypoint_error_px": {"count": len(errors),
                              "median": float(np.median(errors)) if errors else float("nan"),
                              "rmse": float(np.sqrt(np.mean(np.square(errors)))) if errors else float("nan"),
                              "median_of_size": float(np.median(relative_errors)) if errors else float("nan")},
    }
    meta = metainfo_from_dict({"keypoints": names, "flip_pairs": [], "upper_body_ids": [], "lower_body_ids": [],
                               "skeleton": [], "joint_weights": [1.0] * len(names), "sigmas": sigmas.tolist(),
                               # the normaliser is the box's w or h itself (x2 - x1, not x2 - x1 - 1)
                               "loader": {"box_size_plus_one": True}}, "labels")
    correct, visible = pck_counts(ground_truth, matched_results, meta, settings.pck_threshold)
    figures["pck"] = {"threshold": settings.pck_threshold, "normaliser": "longer side of the labelled keypoints' box",
                      "value": float(correct.sum() / visible.sum()) if visible.sum() else float("nan")}
    oks = oks_metrics(ground_truth, results, sigmas)
    figures["oks"] = {"sigmas": sigmas.tolist(), **{name: oks[name] for name in ("AP", "AP50", "AP75", "AR")}}
    if tracked:
        summary = motmetrics.metrics.create().compute(accumulator, metrics=list(MOT_METRICS), name="video")
        figures["mot"] = {name: _plain(summary[name].iloc[0]) for name in MOT_METRICS}
        figures["mot"]["followed_by"] = {label: max(counts, key=counts.get)
                                         for label, counts in sorted(followed.items())}
    else:
        figures["mot"] = None
        logger.warning("MOT figures need a track for every labelled and predicted animal: %s",
                       "labels untracked" if not all(a.track is not None for f in frames for a in labels.frames[f])
                       else "predictions untracked (tools/infer.py --track, or --retrack here)")
    return figures


def _plain(value):
    value = float(value)
    return int(value) if value.is_integer() else value


def format_track_table(figures):
    error, mot = figures["keypoint_error_px"], figures["mot"]
    rows = [("labelled frames", f"{figures['labelled_frames']} ({figures['frames_compared']} predicted)"),
            ("labelled animals found", f"{figures['found']}/{figures['labelled_animals']} = "
             f"{figures['share_found']:.4f} (OKS >= {figures['match_oks']}); {figures['predicted_animals']} predicted"),
            ("keypoint error px",
             f"median {error['median']:.3f}, RMSE {error['rmse']:.3f} ({error['count']} keypoints); "
             f"median {error['median_of_size']:.2%} of the animal's size"),
            (f"PCK@{figures['pck']['threshold']:g} of the size", f"{figures['pck']['value']:.4f}"),
            ("OKS AP / AP50 / AP75 / AR",
             " / ".join(f"{figures['oks'][name]:.4f}" for name in ("AP", "AP50", "AP75", "AR")))]
    if mot is None:
        rows.append(("MOT", "- (untracked)"))
    else:
        rows += [("MOTA / IDF1", f"{mot['mota']:.4f} / {mot['idf1']:.4f}"),
                 ("ID switches", f"{mot['num_switches']} (misses {mot['num_misses']}, false positives "
                  f"{mot['num_false_positives']}, fragmentations {mot['num_fragmentations']})"),
                 ("followed by", ", ".join(f"{label} -> {track}" for label, track in mot["followed_by"].items()))]
    title = f"{figures['labels']} vs {figures['predictions']}{' (re-tracked)' if figures['retracked'] else ''}"
    return "\n".join([title] + [f"  {label:<27}{value}" for label, value in rows])


def eval_tracks_main(argv=None):
    parser = argparse.ArgumentParser(description="Score a video's predicted poses and tracks against its labels "
                                     "(found, keypoint error, PCK, OKS AP, MOTA/IDF1/ID switches).")
    parser.add_argument("--labels", required=True, help="labelled video: SLEAP .slp (tracks), DeepLabCut csv/h5, "
                        "or any file sleap-io reads")
    parser.add_argument("--predictions", required=True, help="tools/infer.py results.json or --format file "
                        "(.slp, .nwb, .sleap.csv, DeepLabCut _kitpose.h5/csv)")
    parser.add_argument("--out", default="", help="also write the figures to this JSON file")
    sigma = parser.add_mutually_exclusive_group()
    sigma.add_argument("--sigma", type=float, default=DEFAULT_SIGMA,
                       help=f"OKS sigma of every keypoint (default {DEFAULT_SIGMA}, as tools/import_labels.py)")
    sigma.add_argument("--metainfo", default="", help="metainfo JSON (or built-in name) whose sigmas to use, by "
                       "keypoint name")
    parser.add_argument("--match-oks", type=float, default=TrackEvalSettings.match_oks,
                        help=f"OKS a prediction needs to pair with a labelled animal (default "
                        f"{TrackEvalSettings.match_oks})")
    parser.add_argument("--pck-thr", type=float, default=TrackEvalSettings.pck_threshold,
                        help=f"PCK threshold, a fraction of the animal's size: the longer side of the box of its "
                        f"labelled keypoints (default {TrackEvalSettings.pck_threshold})")
    parser.add_argument("--retrack", action="store_true", help="assign the predictions' ids again with the "
                        "tracker (global matching), ignoring those in the file")
    parser.add_argument("--max-animals", type=int, default=0, help="--retrack: the number of animals N (ids 0..N-1; "
                        "default 0: no limit)")
    parser.add_argument("--visibility", type=float, default=TrackEvalSettings.visibility,
                        help=f"--retrack: a predicted keypoint counts when its score is above this "
                        f"(default {TrackEvalSettings.visibility}, TEST.IN_VIS_THRE)")
    parser.add_argument("--frames", type=frame_range_argument, default=None, metavar="START:STOP[:STEP]",
                        help="only these labelled frame numbers count, STOP excluded (e.g. the frames not trained on)")
    parser.add_argument("--tracks", nargs="+", default=None, metavar="NAME",
                        help="only the labelled animals of these tracks count (e.g. the animals of a file of "
                        "predictions used as labels, without its short spurious tracks)")
    args = parser.parse_args(argv)
    handler = add_console_handler()
    try:
        sigmas = None
        if args.metainfo:
            meta = load_metainfo(args.metainfo)
            sigmas = {name: float(sigma) for name, sigma in zip(meta.keypoints, meta.sigmas)}
        settings = TrackEvalSettings(sigma=args.sigma, sigmas=sigmas, match_oks=args.match_oks,
                                     pck_threshold=args.pck_thr, retrack=args.retrack, max_animals=args.max_animals,
                                     visibility=args.visibility, frame_range=args.frames,
                                     tracks=tuple(args.tracks) if args.tracks else None)
        figures = evaluate_tracks(args.labels, args.predictions, settings)
    except (TrackEvalError, InteropError, MetainfoError, OSError) as err:
        logger.error("%s", err)
        return 1
    finally:
        logging.getLogger().removeHandler(handler)
    print(format_track_table(figures), flush=True)
    if args.out:
        write_json(args.out, figures, indent=1)
        print(f"wrote {args.out}", flush=True)
    return 0
