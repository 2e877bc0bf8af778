"""Identities through a video: each frame's poses assigned to tracks by one global matching.

`IdentityTracker.assign(keypoints)` is called once per frame, in order, with that frame's poses
(any source: the top-down tracker of `kitpose.inference.tracking`, or the poses of a prediction
file re-tracked by `tools/eval_tracks.py --retrack`), and returns a track id per pose:

1. every track's pose is predicted into this frame at constant velocity: its last seen pose moved
   by the track's velocity (the mean displacement per frame of the keypoints seen in two successive
   sightings, smoothed over sightings) times the frames since it was seen;
2. the similarity of pose d to track t is the OKS of d against t's predicted pose, over the
   keypoints seen in both (score > `visibility`), at the mean of their areas (the area of the
   bounding box of a pose's seen keypoints); pairs below `match_oks` are not allowed (the gate);
3. one assignment of poses to tracks maximises the summed similarity of the allowed pairs
   (`scipy.optimize.linear_sum_assignment`, the Hungarian method): a track gets at most one pose
   per frame and a pose at most one track, and no greedy best-pair-first choice can take a pose
   that a second track needs more;
4. the poses and tracks left over are matched once more (Hungarian again), on the distance of a
   pose's centre (the mean of its seen keypoints) from the track's predicted centre, in units of
   the track's size (the longer side of the box of its predicted pose's seen keypoints), up to
   `match_distance`: an animal that turns round or rears changes its pose (and its box) more from
   one frame to the next than OKS allows, but stays where it was;
5. a pose left over starts a new track. Without a limit (`max_animals` 0) a new track takes a new id
   and a track unseen for more than `max_lost` frames ends: ids are never reused, so one id never
   names two animals. With `max_animals` N the ids are 0..N-1 only: while fewer than N exist a
   left-over pose takes the next one; once all N exist, left-over poses take over the ids that
   found no pose in this frame (a second Hungarian matching, on the distance from the pose's centre
   to each such track's predicted centre), since in a cage with N animals a pose that matches none
   is one of the N, seen again after a gap or a fast move; poses beyond N in one frame are dropped
   (the lowest `scores` first) and get id -1.

The tracker knows nothing about names: track names in a labels file (SLEAP tracks such as
``male``/``female``) are not read by it, and its tracks are named ``track_<id>`` in the files
`tools/infer.py --format` writes. `tools/eval_tracks.py` matches its ids to the labelled names
(whichever track follows an animal longest, as IDF1 does), which is how names carry over.
"""
import numpy as np
from scipy.optimize import linear_sum_assignment

from kitpose.evaluation.nms import oks_iou

__all__ = ["IdentityTracker", "pose_area"]

# weight of the newest displacement in a track's velocity (the rest: the velocity before)
VELOCITY_SMOOTHING = 0.5
_FORBIDDEN = 1e6                 # cost of a pair below the gate: never chosen over an allowed one


def _seen_extent(keypoints, visibility):
    """(width, height) of the box of the keypoints seen (score > visibility), or None below two."""
    seen = keypoints[keypoints[:, 2] > visibility, :2]
    return seen.max(axis=0) - seen.min(axis=0) if len(seen) >= 2 else None


def pose_area(keypoints, visibility):
    """Area of the bounding box of the keypoints seen (score > visibility); at least 1 px^2."""
    extent = _seen_extent(keypoints, visibility)
    return 1.0 if extent is None else float(max(extent[0] * extent[1], 1.0))


class _Track:
    def __init__(self, track_id, keypoints, area):
        self.id = track_id
        self.keypoints = keypoints       # [K,3] last seen pose
        self.area = area
        self.velocity = np.zeros(2)      # px per frame
        self.sightings = 1
        self.lost = 0                    # frames since last seen


class IdentityTracker:
    """Assign track ids to each frame's poses (see module docstring).

    sigmas [K]: OKS sigmas; visibility: a keypoint counts as seen when its score is above it (0 for
    labels whose unlabelled keypoints have visibility 0); match_oks: the gate; max_animals: N (0: no
    limit); max_lost: frames a track may go unseen before it ends (without N) or stops moving in the
    prediction (with N); match_distance: the gate of the second matching, on the distance of centres.
    """

    def __init__(self, sigmas, visibility=0.0, match_oks=0.3, max_animals=0, max_lost=10, match_distance=0.5):
        self.sigmas = np.asarray(sigmas, np.float64)
        self.visibility = float(visibility)
        self.match_oks = float(match_oks)
        self.match_distance = float(match_distance)
        self.max_animals = int(max_animals)
        self.max_lost = int(max_lost)
        self.tracks = []
        self.next_id = 0
        self.resumed = set()             # ids seen in the last frame after a gap, or taken over

    def predicted(self, track):
        """The track's pose moved into the current frame at constant velocity."""
        steps = min(track.lost, self.max_lost) + 1
        pose = track.keypoints.astype(np.float64).copy()
        pose[:, :2] += steps * track.velocity
        return pose

    def similarity(self, poses, areas):
        """[N, T] OKS of each pose against each track's predicted pose."""
        table = np.zeros((len(poses), len(self.tracks)))
        if len(poses):
            for t, track in enumerate(self.tracks):
                table[:, t] = oks_iou(self.predicted(track), poses, track.area, areas, self.sigmas,
                                      in_vis_thre=self.visibility)
        return table

    def assign(self, keypoints, scores=None):
        """Track ids [N] (int64; -1: dropped, more poses than `max_animals`) of this frame's poses [N,K,3]."""
        poses = np.asarray(keypoints, np.float64).reshape(-1, len(self.sigmas), 3)
        scores = np.ones(len(poses)) if scores is None else np.asarray(scores, np.float64)
        areas = [pose_area(pose, self.visibility) for pose in poses]
        similarity = self.similarity(poses, areas)
        assigned = np.full(len(poses), -1, np.int64)
        matched = {}                                     # track index -> pose index
        if similarity.size:
            allowed = similarity >= self.match_oks
            rows, cols = linear_sum_assignment(np.where(allowed, 1.0 - similarity, _FORBIDDEN))
            matched = {int(t): int(d) for d, t in zip(rows, cols) if allowed[d, t]}
        left = sorted(set(range(len(poses))) - set(matched.values()), key=lambda d: -scores[d])
        if left and len(matched) < len(self.tracks):
            matched.update(self._by_place(poses, left, matched))
            left = [d for d in left if d not in matched.values()]
        self.resumed = {self.tracks[t].id for t in matched if self.tracks[t].lost}
        births = []
        while left and (not self.max_animals or self.next_id + len(births) < self.max_animals):
            births.append(left.pop(0))
        taken = {}
        if left and self.max_animals:
            taken = self._take_over(poses, left, matched)
            matched.update(taken)
            taken = {self.tracks[t].id for t in taken}
        for t, d in matched.items():
            self._update(self.tracks[t], poses[d], areas[d], taken_over=self.tracks[t].id in taken)
            assigned[d] = self.tracks[t].id
        for t, track in enumerate(self.tracks):
            if t not in matched:
                track.lost += 1
        for d in births:
            self.tracks.append(_Track(self.next_id, poses[d], areas[d]))
            assigned[d] = self.next_id
            self.next_id += 1
        if not self.max_animals:
            self.tracks = [track for track in self.tracks if track.lost <= self.max_lost]
        return assigned

    def _by_place(self, poses, left, matched):
        """{track index: pose index}: the second matching, of the poses and tracks the first left over, on
        the distance of a pose's centre from the track's predicted centre in units of the track's size
        (the longer side of the box of its seen keypoints), gated at `match_distance`."""
        free = [t for t in range(len(self.tracks)) if t not in matched]
        centres = np.array([self._centre(poses[d]) for d in left])
        predicted = [self.predicted(self.tracks[t]) for t in free]
        sizes = np.array([self._size(pose) for pose in predicted])
        distance = np.linalg.norm(centres[:, None] - np.array([self._centre(p) for p in predicted])[None], axis=-1)
        distance = distance / sizes[None]
        allowed = distance <= self.match_distance
        rows, cols = linear_sum_assignment(np.where(allowed, distance, _FORBIDDEN))
        return {free[c]: left[r] for r, c in zip(rows, cols) if allowed[r, c]}

    def _size(self, pose):
        extent = _seen_extent(pose, self.visibility)
        return 1.0 if extent is None else float(max(extent.max(), 1.0))

    def _take_over(self, poses, left, matched):
        """{track index: pose index}: the left-over poses take the ids that found no pose (limit N reached)."""
        free = [t for t in range(len(self.tracks)) if t not in matched]
        left = left[:len(free)]                          # by score, best first
        if not left:
            return {}
        centres = np.array([self._centre(poses[d]) for d in left])
        predicted = np.array([self._centre(self.predicted(self.tracks[t])) for t in free])
        distance = np.linalg.norm(centres[:, None] - predicted[None], axis=-1)
        rows, cols = linear_sum_assignment(distance)
        taken = {free[c]: left[r] for r, c in zip(rows, cols)}
        self.resumed |= {self.tracks[t].id for t in taken}
        return taken

    def _centre(self, pose):
        seen = pose[:, 2] > self.visibility
        return pose[seen, :2].mean(axis=0) if seen.any() else pose[:, :2].mean(axis=0)

    def _update(self, track, pose, area, taken_over):
        """The track's pose becomes `pose`; its velocity learns the move, except for an id taken over
        (another animal, or the same one after an unpredicted move: the move says nothing)."""
        both = (track.keypoints[:, 2] > self.visibility) & (pose[:, 2] > self.visibility)
        if taken_over:
            track.velocity, track.sightings = np.zeros(2), 0
        elif both.any():
            step = (pose[both, :2] - track.keypoints[both, :2]).mean(axis=0) / (track.lost + 1)
            track.velocity = step if track.sightings == 1 else (
                VELOCITY_SMOOTHING * step + (1 - VELOCITY_SMOOTHING) * track.velocity)
        track.keypoints, track.area, track.lost = pose, area, 0
        track.sightings += 1
