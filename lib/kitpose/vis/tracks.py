"""Tracked keypoints on a few video frames, side by side: `tools/draw_tracks.py`.

Each panel is one frame with every tracked animal's keypoints (one colour per keypoint, drawn
when its heatmap maximum exceeds the threshold), its limbs, its box, its track id, and the path
of its keypoints' mean over the previous `trail` frames.
"""
import cv2
import numpy as np

from .draw import draw_pose, limb_colors

__all__ = ["tracked_frames_figure", "read_frames"]


def read_frames(video_path, frame_numbers):
    """{frame number: BGR image} of the requested frames (sequential read; OpenCV seeking is not exact)."""
    wanted, found = set(frame_numbers), {}
    capture = cv2.VideoCapture(str(video_path))
    try:
        if not capture.isOpened():
            raise OSError(f"cannot open video {video_path}")
        index = 0
        while len(found) < len(wanted):
            ok, image = capture.read()
            if not ok:
                break
            if index in wanted:
                found[index] = image
            index += 1
    finally:
        capture.release()
    missing = sorted(wanted - set(found))
    if missing:
        raise OSError(f"{video_path}: frame(s) {missing} not readable (the video has {index} frames)")
    return found


def _panel(image, records, history, names, skeleton, threshold, frame_number, trail):
    canvas = image.copy()
    colours = limb_colors(len(names))
    for track_id, path in history.items():
        points = np.array([p for f, p in path if frame_number - trail <= f <= frame_number])
        if len(points) > 1:
            cv2.polylines(canvas, [np.round(points).astype(np.int32)], False, (0, 215, 255), 1, cv2.LINE_AA)
    for record in records:
        keypoints = np.asarray(record["keypoints"], np.float64).reshape(-1, 3)
        visible = keypoints[:, 2] > threshold
        canvas = draw_pose(canvas, keypoints[:, :2], visible, skeleton, radius=3)
        for k in np.flatnonzero(visible):
            cv2.circle(canvas, tuple(np.round(keypoints[k, :2]).astype(int).tolist()), 3, colours[k], -1, cv2.LINE_AA)
        x, y, w, h = record["bbox"]
        cv2.rectangle(canvas, (int(x), int(y)), (int(x + w), int(y + h)), (0, 255, 0), 1)
        label = f"id {record.get('track_id', '-')}  {record['score']:.2f}"
        cv2.putText(canvas, label, (int(x), max(int(y) - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 0), 1,
                    cv2.LINE_AA)
    cv2.putText(canvas, f"frame {frame_number}", (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                cv2.LINE_AA)
    return canvas


def _legend(names, width):
    colours = limb_colors(len(names))
    strip = np.full((22, width, 3), 255, np.uint8)
    x = 6
    for name, colour in zip(names, colours):
        cv2.circle(strip, (x + 4, 11), 4, colour, -1, cv2.LINE_AA)
        cv2.putText(strip, name, (x + 12, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        x += 20 + 7 * len(name)
    return strip


def tracked_frames_figure(video_path, results, frame_numbers, skeleton, threshold=0.2, trail=30, columns=2,
                          panel_width=320):
    """One BGR image: the frames `frame_numbers` of the video with the tracked results drawn.

    results: records of tools/infer.py's results.json (with 'frame' and, under --track, 'track_id').
    """
    if not results:
        raise ValueError("no predictions to draw")
    names = results[0]["keypoint_names"]
    by_frame, history = {}, {}
    for record in results:
        by_frame.setdefault(record["frame"], []).append(record)
        keypoints = np.asarray(record["keypoints"], np.float64).reshape(-1, 3)
        visible = keypoints[:, 2] > threshold
        if visible.any():
            history.setdefault(record.get("track_id", -1), []).append(
                (record["frame"], keypoints[visible, :2].mean(axis=0)))
    images = read_frames(video_path, frame_numbers)
    panels = []
    for number in frame_numbers:
        panel = _panel(images[number], by_frame.get(number, []), history, names, skeleton, threshold, number, trail)
        scale = panel_width / panel.shape[1]
        panels.append(cv2.resize(panel, (panel_width, int(round(panel.shape[0] * scale))), interpolation=cv2.INTER_AREA))
    height = max(p.shape[0] for p in panels)
    blank = np.full((height, panel_width, 3), 255, np.uint8)
    rows = []
    for start in range(0, len(panels), columns):
        row = [np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0)), constant_values=255)
               for p in panels[start:start + columns]]
        row += [blank] * (columns - len(row))
        rows.append(np.concatenate(row, axis=1))
    grid = np.concatenate(rows, axis=0)
    return np.concatenate([grid, _legend(names, grid.shape[1])], axis=0)
