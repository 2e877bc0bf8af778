"""Top-down tracking through a video: boxes from the tracks' predicted poses, ids by global matching.

For each frame, in order (`tools/infer.py --track`):

1. every track seen in the previous frame is cropped at the box of its pose predicted into this
   frame (`IdentityTracker.predicted`: its last pose moved at the track's velocity), the box of the
   confident keypoints (heatmap maximum > TEST.IN_VIS_THRE) made as the DeepLabCut/SLEAP import
   makes boxes (`kitpose.codecs.keypoint_box`), and predicted in it;
2. the box source is asked again only when there is no such track, when one of the tracked poses
   scores below `score_threshold` or two of them are duplicates (OKS >= `duplicate_oks`: their
   crops drifted onto one animal), while a track is missing (unseen in the previous frame and not
   yet ended; with `max_animals`, any of the N), or every `redetect_every` frames (when set). The
   box source is the detector, the --boxes file, or else the whole frame. A pose's score here is the mean
   heatmap maximum over all its keypoints (times its box score): the instance score of
   `PosePredictor` averages only the confident keypoints, which rates a crop where one keypoint
   is found as highly as one where all are. The tracked instances carry this score (results.json
   ``score``);
3. the frame's poses are the confident tracked ones and the box source's that find an animal no
   tracked pose covers (OKS below `duplicate_oks` against each); a tracked pose below the threshold
   stays only where a new pose finds the same animal. When a detector or --boxes file gave the boxes,
   each of its poses that finds an animal no tracked pose covers replaces the nearest confident
   tracked pose that none of its poses confirms: a crop that slid onto a neighbour while the animals
   touch (its pose between the two, or on the other one) gives way to the detection stage's pose of
   the animal it lost (`redetect_every` 1 checks every frame). Of poses within `duplicate_oks` OKS of
   each other the better one stays: one animal is never two poses;
4. the poses get their track ids from `kitpose.inference.identities.IdentityTracker`: one Hungarian
   matching on OKS against each track's motion-predicted pose, gated at `match_oks`, then one on the
   distance of centres for what is left (gated at `match_distance`); new tracks for the poses left
   over; at most `max_animals` ids when given (0..N-1; once all exist, a pose that matches no track
   takes over the id of one unseen in this frame); otherwise a track unseen for more than
   `max_lost` frames ends and ids are never reused.
"""
import argparse
import logging
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from kitpose.codecs.keypoint_box import DEFAULT_BOX_MARGIN, keypoint_box
from kitpose.evaluation.nms import oks_iou

from .identities import IdentityTracker
from .predictor import PoseInstances
from .smoothing import SMOOTHERS

logger = logging.getLogger(__name__)

__all__ = ["TrackerSettings", "PoseTracker", "add_tracking_arguments", "tracker_settings_from_args"]


@dataclass
class TrackerSettings:
    score_threshold: float = 0.3
    box_margin: float = DEFAULT_BOX_MARGIN
    match_oks: float = 0.3
    match_distance: float = 0.5
    duplicate_oks: float = 0.5
    max_animals: int = 0
    max_lost: int = 10
    redetect_every: int = 0


class _Pose(NamedTuple):
    keypoints: np.ndarray     # [K,3]
    box: np.ndarray           # [4] the box it was predicted in
    box_score: float
    category: int


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
        self.identities = IdentityTracker(self.sigmas, self.visibility, settings.match_oks, settings.max_animals,
                                          settings.max_lost, settings.match_distance)
        self.box_of_track = {}       # track id -> (box score, category) of its last pose
        self.box_source_frames = 0

    @property
    def tracks(self):
        return self.identities.tracks

    @property
    def next_id(self):
        """Track ids started so far."""
        return self.identities.next_id

    # ------------------------------------------------------------ pieces
    def _quality(self, pose):
        return float(np.mean(pose.keypoints[:, 2])) * float(pose.box_score)

    def _box(self, keypoints, image):
        height, width = image.shape[:2]
        return keypoint_box(keypoints[:, :2], keypoints[:, 2] > self.visibility, self.settings.box_margin,
                            (width, height))

    def _oks(self, pose, reference):
        area = float(reference.box[2] * reference.box[3])
        return float(oks_iou(reference.keypoints, pose.keypoints[None], area, [area], self.sigmas)[0])

    def _duplicate(self, pose, reference):
        return self._oks(pose, reference) >= self.settings.duplicate_oks

    def _propagate(self, image):
        """Poses of the tracks seen last frame, each predicted in the box of its motion-predicted pose."""
        live = [(track, self._box(self.identities.predicted(track), image))
                for track in self.identities.tracks if track.lost == 0]
        live = [(track, box) for track, box in live if box is not None]
        requests = [(image, box[None], [self.box_of_track[track.id][0]], [self.box_of_track[track.id][1]])
                    for track, box in live]
        return [_Pose(instances.keypoints[0], box, *self.box_of_track[track.id])
                for (track, box), instances in zip(live, self.predictor.predict_many(requests))]

    def _without_duplicates(self, poses):
        """`poses` less those within `duplicate_oks` of a better one."""
        kept = []
        for pose in sorted(poses, key=lambda pose: -self._quality(pose)):
            if not any(self._duplicate(pose, other) for other in kept):
                kept.append(pose)
        return kept

    def _detect(self, image, frame):
        """(poses in the box source's boxes, whether a detector / box file gave them: False for the
        whole frame)."""
        boxes = scores = categories = None
        if self.box_source is not None:
            result = self.box_source(frame)
            if result is not None:
                boxes, scores, categories = result
                if not len(boxes):
                    return [], True
        self.box_source_frames += 1
        instances = self.predictor.predict(image, boxes, scores, categories)
        return [_Pose(instances.keypoints[j], instances.boxes[j], float(instances.box_scores[j]),
                      int(instances.category_ids[j])) for j in range(len(instances))], boxes is not None

    def _checked(self, confident, unsure, detected, from_boxes):
        """The frame's poses when the box source was asked (module docstring, step 3)."""
        uncovered = [found for found in detected if not any(self._duplicate(found, pose) for pose in confident)]
        kept = list(confident)
        if from_boxes:
            unconfirmed = [pose for pose in confident if not any(self._duplicate(found, pose) for found in detected)]
            # each pose of an animal no tracked pose covers replaces at most one unconfirmed tracked pose,
            # the one nearest to it (highest OKS): an animal the detection stage missed keeps its pose
            for found in sorted(uncovered, key=lambda pose: -self._quality(pose)):
                if unconfirmed:
                    nearest = max(unconfirmed, key=lambda pose: self._oks(pose, found))
                    unconfirmed = [pose for pose in unconfirmed if pose is not nearest]
                    kept = [pose for pose in kept if pose is not nearest]
        recovered = [pose for pose in unsure if any(self._duplicate(found, pose) for found in detected)]
        return self._without_duplicates(kept + uncovered + recovered)

    # ------------------------------------------------------------ one frame
    def step(self, image, frame_index, frame=None):
        settings = self.settings
        propagated = self._propagate(image)
        tracked = self._without_duplicates(propagated)
        confident = [pose for pose in tracked if self._quality(pose) >= settings.score_threshold]
        periodic = settings.redetect_every > 0 and frame_index % settings.redetect_every == 0
        missing = any(track.lost for track in self.identities.tracks)
        poses = confident
        if not tracked or len(confident) < len(propagated) or missing or periodic:
            unsure = [pose for pose in tracked if self._quality(pose) < settings.score_threshold]
            poses = self._checked(confident, unsure, *self._detect(image, frame))

        ids = self.identities.assign(np.array([pose.keypoints for pose in poses]).reshape(
            len(poses), self.predictor.meta.num_keypoints, 3), [self._quality(pose) for pose in poses])
        seen = sorted(((int(track_id), pose) for track_id, pose in zip(ids, poses) if track_id >= 0),
                      key=lambda item: item[0])
        for track_id, pose in seen:
            self.box_of_track[track_id] = (pose.box_score, pose.category)
            if track_id in self.identities.resumed and self.smoother is not None:
                self.smoother.reset(track_id)
        alive = {track.id for track in self.identities.tracks}
        ended = sorted(set(self.box_of_track) - alive)
        if ended:
            logger.debug("frame %d: track(s) %s ended", frame_index, ended)
        self.box_of_track = {track_id: value for track_id, value in self.box_of_track.items() if track_id in alive}
        return self._instances(seen, frame_index)

    def _instances(self, seen, frame_index):
        num_keypoints = self.predictor.meta.num_keypoints
        if not seen:
            empty = PoseInstances.empty(num_keypoints)
            empty.track_ids = np.zeros(0, np.int64)
            return empty
        keypoints, boxes, box_scores, categories, ids = [], [], [], [], []
        for track_id, pose in seen:
            kps = pose.keypoints
            if self.smoother is not None:
                kps = self.smoother(track_id, frame_index, kps)
            keypoints.append(kps)
            boxes.append(pose.box)
            box_scores.append(pose.box_score)
            categories.append(pose.category)
            ids.append(track_id)
        keypoints = np.stack(keypoints).astype(np.float32)
        box_scores = np.asarray(box_scores, np.float32)
        scores = np.array([float(np.mean(k[:, 2])) * float(s) for k, s in zip(keypoints, box_scores)], np.float32)
        return PoseInstances(keypoints, np.stack(boxes).astype(np.float64), box_scores, scores,
                             np.asarray(categories, np.int64), np.asarray(ids, np.int64))


# ---------------------------------------------------------------- command line
def add_tracking_arguments(parser):
    defaults = TrackerSettings()
    group = parser.add_argument_group("tracking (videos, or image sequences in name order)")
    group.add_argument("--track", action="store_true", help="crop each frame at the tracks' poses predicted from "
                       "the previous frames (constant velocity) and give ids by one Hungarian matching on OKS; ask the "
                       "detector / --boxes / whole frame only when needed")
    group.add_argument("--track-thr", type=_non_negative(float), default=defaults.score_threshold,
                       help=f"ask for new boxes when a tracked pose's mean keypoint maximum is below this "
                       f"(default {defaults.score_threshold})")
    group.add_argument("--max-animals", type=_non_negative(int), default=defaults.max_animals,
                       help="the number of animals N: ids 0..N-1 only, a pose that matches no track takes over "
                       "the id of one unseen in that frame once all N exist, at most N poses per frame (default 0: "
                       "no limit, new ids for new tracks, never reused; 1 for one animal)")
    group.add_argument("--track-margin", type=_non_negative(float), default=defaults.box_margin,
                       help=f"box around the keypoints: margin x its longer side on each side "
                       f"(default {defaults.box_margin}, as import_labels)")
    group.add_argument("--match-oks", type=_non_negative(float), default=defaults.match_oks,
                       help=f"gate: the OKS a pose needs against a track's predicted pose to continue it (default "
                       f"{defaults.match_oks})")
    group.add_argument("--match-distance", type=_non_negative(float), default=defaults.match_distance,
                       help=f"gate of the second matching, of the poses and tracks the OKS one left over (an animal "
                       f"turning round): the distance of a pose's centre from a track's predicted centre, in units "
                       f"of the track's size (default {defaults.match_distance})")
    group.add_argument("--max-lost", type=_non_negative(int), default=defaults.max_lost,
                       help=f"frames a track may go unseen before its id ends; with --max-animals, before its "
                       f"predicted pose stops moving (default {defaults.max_lost})")
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
                           match_distance=args.match_distance,
                           max_animals=args.max_animals, max_lost=args.max_lost, redetect_every=args.redetect_every)
