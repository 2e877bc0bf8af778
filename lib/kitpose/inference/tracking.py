"""Top-down tracking through a video: boxes from the previous frame's keypoints, ids kept.

For each frame, in order (`tools/infer.py --track`):

1. every track seen in the previous frame is cropped at the box of its confident keypoints
   (heatmap maximum > TEST.IN_VIS_THRE) there, made as the DeepLabCut/SLEAP import makes boxes
   (`kitpose.codecs.keypoint_box`), and predicted in it; when two tracks' poses come within
   `duplicate_oks` OKS (their crops drifted onto one animal) the better one stays;
2. the box source is asked again only when there is no such track, when one of them scores
   below `score_threshold` or was a duplicate, or every `redetect_every` frames (when set). The box source is the
   detector, the --boxes file, or else the whole frame. A tracked instance's score here is the
   mean heatmap maximum over all its keypoints (times its box score): the instance score of
   `PosePredictor` averages only the confident keypoints, which rates a crop where one keypoint
   is found as highly as one where all are. The tracked instances carry this score (results.json
   ``score``);
3. the new poses are matched to tracks: a pose within `duplicate_oks` OKS of a confidently
   tracked one is the same animal and dropped; the others continue the track whose last pose
   they are closest to (OKS >= `match_oks`, greedy, best pair first; the track keeps whichever
   of its tracked and re-found pose scores higher), or start a new track while fewer than
   `max_animals` (0: any number) tracks are alive. With `max_animals` 1 the single track takes the
   best pose whatever the OKS. A tracked pose below the threshold that no new pose confirms is
   dropped: its track counts as unseen in this frame;
4. a track not seen for more than `max_lost` frames ends; ids are never reused.

OKS uses the metainfo's sigmas and the area of the track's last box.
"""
import argparse
import logging
from dataclasses import dataclass

import numpy as np

from kitpose.codecs.keypoint_box import DEFAULT_BOX_MARGIN, keypoint_box
from kitpose.evaluation.nms import oks_iou

from .predictor import PoseInstances
from .smoothing import SMOOTHERS

logger = logging.getLogger(__name__)

__all__ = ["TrackerSettings", "PoseTracker", "add_tracking_arguments", "tracker_settings_from_args"]


@dataclass
class TrackerSettings:
    score_threshold: float = 0.3
    box_margin: float = DEFAULT_BOX_MARGIN
    match_oks: float = 0.3
    duplicate_oks: float = 0.5
    max_animals: int = 0
    max_lost: int = 10
    redetect_every: int = 0


@dataclass
class _Track:
    id: int
    keypoints: np.ndarray     # [K,3] last pose
    box: np.ndarray           # [4] box it was predicted in
    box_score: float
    category: int
    lost: int = 0


class PoseTracker:
    """Track animals through frames with a PosePredictor (see module docstring).

    `box_source(frame)` -> (boxes [N,4] x y w h, scores [N], category_ids [N]), or None for the
    whole frame; `smoother`: a `KeypointSmoother` or None. `step(image, frame_index, frame)`
    returns PoseInstances with `track_ids`, in track-id order.
    """

    def __init__(self, predictor, box_source=None, settings=TrackerSettings(), smoother=None):
        self.predictor = predictor
        self.box_source = box_source
        self.settings = settings
        self.smoother = smoother
        self.visibility = float(predictor.cfg.TEST.IN_VIS_THRE)
        self.sigmas = predictor.meta.sigmas
        self.tracks = []
        self.next_id = 0
        self.box_source_frames = 0

    # ------------------------------------------------------------ pieces
    def _quality(self, keypoints, box_score):
        return float(np.mean(keypoints[:, 2])) * float(box_score)

    def _box(self, keypoints, image):
        height, width = image.shape[:2]
        return keypoint_box(keypoints[:, :2], keypoints[:, 2] > self.visibility, self.settings.box_margin,
                            (width, height))

    def _oks(self, keypoints, reference, box):
        """OKS of pose `keypoints` against pose `reference`, at the area of `box`."""
        area = float(box[2] * box[3])
        return float(oks_iou(reference, keypoints[None], area, [area], self.sigmas)[0])

    def _propagate(self, image):
        """{track index: (keypoints, box, box_score, category)} for the tracks seen last frame that have a box."""
        live = [(i, track, self._box(track.keypoints, image)) for i, track in enumerate(self.tracks) if track.lost == 0]
        live = [(i, track, box) for i, track, box in live if box is not None]
        requests = [(image, box[None], [track.box_score], [track.category]) for _, track, box in live]
        found = {}
        for (i, track, box), instances in zip(live, self.predictor.predict_many(requests)):
            found[i] = (instances.keypoints[0], box, track.box_score, track.category)
        return found

    def _without_duplicates(self, poses):
        """`poses` less those within `duplicate_oks` of a better one: two tracks whose crops drifted onto
        one animal keep the better pose; the other track is unseen in this frame."""
        kept = {}
        for i in sorted(poses, key=lambda i: -self._quality(poses[i][0], poses[i][2])):
            if not any(self._oks(poses[i][0], kept[j][0], kept[j][1]) >= self.settings.duplicate_oks for j in kept):
                kept[i] = poses[i]
        return kept

    def _detect(self, image, frame):
        boxes = scores = categories = None
        if self.box_source is not None:
            result = self.box_source(frame)
            if result is not None:
                boxes, scores, categories = result
                if not len(boxes):
                    return []
        self.box_source_frames += 1
        instances = self.predictor.predict(image, boxes, scores, categories)
        return [(instances.keypoints[j], instances.boxes[j], float(instances.box_scores[j]),
                 int(instances.category_ids[j])) for j in range(len(instances))]

    def _alive(self):
        return sum(track.lost <= self.settings.max_lost for track in self.tracks)

    # ------------------------------------------------------------ one frame
    def step(self, image, frame_index, frame=None):
        settings = self.settings
        propagated = self._propagate(image)
        chosen = self._without_duplicates(propagated)
        confident = {i for i, (kps, _, box_score, _) in chosen.items()
                     if self._quality(kps, box_score) >= settings.score_threshold}
        periodic = settings.redetect_every > 0 and frame_index % settings.redetect_every == 0
        if not chosen or len(confident) < len(propagated) or periodic:
            found = self._match(self._detect(image, frame), chosen, confident)
            chosen = {**{i: chosen[i] for i in confident}, **found}

        for i, track in enumerate(self.tracks):
            if i in chosen:
                keypoints, box, box_score, category = chosen[i]
                if track.lost and self.smoother is not None:
                    self.smoother.reset(track.id)
                track.keypoints, track.box, track.box_score, track.category, track.lost = (
                    keypoints, box, box_score, category, 0)
            else:
                track.lost += 1
        ended = [track.id for track in self.tracks if track.lost > settings.max_lost]
        if ended:
            logger.debug("frame %d: track(s) %s ended", frame_index, ended)
        seen = sorted((self.tracks[i].id, i) for i in chosen)
        self.tracks = [track for track in self.tracks if track.lost <= settings.max_lost]
        return self._instances([(track_id, chosen[i]) for track_id, i in seen], frame_index)

    def _match(self, detected, chosen, confident):
        """{track index: pose} for the tracks the new poses continue or start (existing tracks that no new
        pose confirms are left out: unseen this frame)."""
        settings = self.settings
        fresh = [pose for pose in detected
                 if not any(self._oks(pose[0], chosen[i][0], chosen[i][1]) >= settings.duplicate_oks for i in confident)]
        open_tracks = [i for i in range(len(self.tracks)) if i not in confident]
        pairs = []
        for d, pose in enumerate(fresh):
            for i in open_tracks:
                similarity = self._oks(pose[0], self.tracks[i].keypoints, self.tracks[i].box)
                if similarity >= settings.match_oks or settings.max_animals == 1:
                    pairs.append((similarity, self._quality(pose[0], pose[2]), d, i))
        found, used_poses = {}, set()
        for _, _, d, i in sorted(pairs, key=lambda p: (-p[0], -p[1])):
            if d in used_poses or i in found:
                continue
            used_poses.add(d)
            pose = fresh[d]
            tracked = chosen.get(i)
            better = tracked is None or self._quality(pose[0], pose[2]) > self._quality(tracked[0], tracked[2])
            found[i] = pose if better else tracked
        limit = settings.max_animals or np.inf
        for d in sorted(set(range(len(fresh))) - used_poses, key=lambda d: -self._quality(fresh[d][0], fresh[d][2])):
            if self._alive() >= limit:
                break
            keypoints, box, box_score, category = fresh[d]
            self.tracks.append(_Track(self.next_id, keypoints, box, box_score, category))
            found[len(self.tracks) - 1] = fresh[d]
            self.next_id += 1
        return found

    def _instances(self, seen, frame_index):
        num_keypoints = self.predictor.meta.num_keypoints
        if not seen:
            empty = PoseInstances.empty(num_keypoints)
            empty.track_ids = np.zeros(0, np.int64)
            return empty
        keypoints, boxes, box_scores, categories, ids = [], [], [], [], []
        for track_id, (kps, box, box_score, category) in seen:
            if self.smoother is not None:
                kps = self.smoother(track_id, frame_index, kps)
            keypoints.append(kps)
            boxes.append(box)
            box_scores.append(box_score)
            categories.append(category)
            ids.append(track_id)
        keypoints = np.stack(keypoints).astype(np.float32)
        box_scores = np.asarray(box_scores, np.float32)
        scores = np.array([self._quality(k, s) for k, s in zip(keypoints, box_scores)], np.float32)
        return PoseInstances(keypoints, np.stack(boxes).astype(np.float64), box_scores, scores,
                             np.asarray(categories, np.int64), np.asarray(ids, np.int64))


# ---------------------------------------------------------------- command line
def add_tracking_arguments(parser):
    defaults = TrackerSettings()
    group = parser.add_argument_group("tracking (videos, or image sequences in name order)")
    group.add_argument("--track", action="store_true", help="crop each frame at the previous frame's keypoints "
                       "and keep ids; ask the detector / --boxes / whole frame only when needed")
    group.add_argument("--track-thr", type=_non_negative(float), default=defaults.score_threshold,
                       help=f"ask for new boxes when a tracked pose's mean keypoint maximum is below this "
                       f"(default {defaults.score_threshold})")
    group.add_argument("--max-animals", type=_non_negative(int), default=defaults.max_animals,
                       help="most tracks alive at once (default 0: no limit; 1 for one animal)")
    group.add_argument("--track-margin", type=_non_negative(float), default=defaults.box_margin,
                       help=f"box around the keypoints: margin x its longer side on each side "
                       f"(default {defaults.box_margin}, as import_labels)")
    group.add_argument("--match-oks", type=_non_negative(float), default=defaults.match_oks,
                       help=f"OKS a new pose needs to continue a track (default {defaults.match_oks})")
    group.add_argument("--max-lost", type=_non_negative(int), default=defaults.max_lost,
                       help=f"frames a track may go unseen before its id ends (default {defaults.max_lost})")
    group.add_argument("--redetect-every", type=_non_negative(int), default=defaults.redetect_every,
                       help="also ask for new boxes every N frames, to find animals that enter (default 0: never)")
    group.add_argument("--smooth", default="none", choices=SMOOTHERS,
                       help="temporal smoothing of tracked keypoints (default none)")
    group.add_argument("--smooth-min-cutoff", type=float, default=1.0,
                       help="One-Euro cutoff at rest, Hz (default 1.0; lower: smoother, more lag)")
    group.add_argument("--smooth-beta", type=float, default=0.01,
                       help="One-Euro cutoff increase per pixel/s of speed (default 0.01; higher: less lag)")


def _non_negative(kind):
    def parse(text):
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        return value
    return parse


def tracker_settings_from_args(args):
    return TrackerSettings(score_threshold=args.track_thr, box_margin=args.track_margin, match_oks=args.match_oks,
                           max_animals=args.max_animals, max_lost=args.max_lost, redetect_every=args.redetect_every)
