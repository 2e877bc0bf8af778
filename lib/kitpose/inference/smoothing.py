"""Optional temporal smoothing of tracked keypoints: the One-Euro filter (Casiez, Roussel and
Vogel, CHI 2012), off by default (`tools/infer.py --smooth one-euro`).

Each coordinate is low-pass filtered with a cutoff frequency that rises with its speed,
``cutoff = min_cutoff + beta * |speed|`` (Hz, speed in pixels per second; the speed itself is
low-pass filtered at ``derivative_cutoff``): a resting keypoint is smoothed strongly (little
jitter), a moving one lightly (little lag). The filter is causal, so frame t uses frames <= t
only. It runs per track and keypoint; a keypoint whose heatmap maximum is at most the
visibility threshold is passed through and does not update the filter, and a track that was
lost restarts its filter. Smoothing changes the written coordinates only: the tracker crops
the next frame around the unsmoothed keypoints.
"""
import math

import numpy as np

__all__ = ["OneEuroFilter", "KeypointSmoother", "SMOOTHERS"]

SMOOTHERS = ("none", "one-euro")


def _alpha(cutoff, dt):
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter of an array of values sampled at times t (seconds)."""

    def __init__(self, min_cutoff=1.0, beta=0.01, derivative_cutoff=1.0):
        if min_cutoff <= 0 or derivative_cutoff <= 0 or beta < 0:
            raise ValueError(f"One-Euro filter: min_cutoff ({min_cutoff}) and derivative_cutoff "
                             f"({derivative_cutoff}) must be > 0, beta ({beta}) >= 0")
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.derivative_cutoff = float(derivative_cutoff)
        self.value = None
        self.speed = None
        self.time = None

    def __call__(self, value, time):
        value = np.asarray(value, dtype=np.float64)
        if self.value is None or time <= self.time:
            self.value, self.speed, self.time = value.copy(), np.zeros_like(value), time
            return value.copy()
        dt = time - self.time
        speed = (value - self.value) / dt
        a_speed = _alpha(self.derivative_cutoff, dt)
        self.speed = a_speed * speed + (1.0 - a_speed) * self.speed
        cutoff = self.min_cutoff + self.beta * np.abs(self.speed)
        tau = 1.0 / (2.0 * np.pi * cutoff)
        a_value = 1.0 / (1.0 + tau / dt)
        self.value = a_value * value + (1.0 - a_value) * self.value
        self.time = time
        return self.value.copy()


class KeypointSmoother:
    """One One-Euro filter per (track, keypoint) over the x, y of tracked instances."""

    def __init__(self, fps, visibility_threshold, min_cutoff=1.0, beta=0.01, derivative_cutoff=1.0):
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.visibility_threshold = float(visibility_threshold)
        self.settings = (min_cutoff, beta, derivative_cutoff)
        OneEuroFilter(*self.settings)  # reject bad settings before the first frame
        self.filters = {}

    def reset(self, track_id):
        self.filters = {key: f for key, f in self.filters.items() if key[0] != track_id}

    def __call__(self, track_id, frame_index, keypoints):
        """Smoothed copy of keypoints [K,3] (x, y, score) of track `track_id` at `frame_index`."""
        out = np.array(keypoints, dtype=np.float32, copy=True)
        time = frame_index / self.fps
        for k in np.flatnonzero(out[:, 2] > self.visibility_threshold):
            key = (track_id, int(k))
            if key not in self.filters:
                self.filters[key] = OneEuroFilter(*self.settings)
            out[k, :2] = self.filters[key](out[k, :2], time)
        return out
