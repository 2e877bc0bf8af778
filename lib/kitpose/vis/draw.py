"""Drawing keypoints and skeletons on images (OpenCV, uint8 HxWx3)."""
import cv2
import numpy as np

__all__ = ["limb_colors", "draw_pose", "draw_instances"]


def limb_colors(num_limbs):
    """Distinct bright colours (B, G, R tuples of int), one per limb, spread around the hue circle."""
    if num_limbs <= 0:
        return []
    hues = (np.arange(num_limbs) * 180 // num_limbs).astype(np.uint8)
    hsv = np.stack([hues, np.full_like(hues, 220), np.full_like(hues, 255)], axis=1)[None]
    return [tuple(int(c) for c in color) for color in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]]


def draw_pose(image, joints, visible, skeleton, radius=3, thickness=2, joint_color=(255, 255, 255)):
    """Copy of ``image`` with the visible joints [K, 2] as dots and the limbs between visible joints as lines.

    Colours are in the channel order of ``image``; limb colours come from `limb_colors`.
    """
    canvas = np.ascontiguousarray(image).copy()
    points = np.round(np.asarray(joints, dtype=np.float64)[:, :2]).astype(np.int64)
    visible = np.asarray(visible).reshape(-1) > 0
    limbs = np.asarray(skeleton, dtype=np.int64).reshape(-1, 2)
    drawn_limbs = limbs[visible[limbs[:, 0]] & visible[limbs[:, 1]]] if len(limbs) else limbs
    colors = limb_colors(len(limbs))
    color_of = {tuple(limb): color for limb, color in zip(limbs.tolist(), colors)}
    for a, b in drawn_limbs.tolist():
        cv2.line(canvas, tuple(points[a].tolist()), tuple(points[b].tolist()), color_of[(a, b)], thickness,
                 cv2.LINE_AA)
    for x, y in points[visible].tolist():
        cv2.circle(canvas, (x, y), radius + 1, (0, 0, 0), -1, cv2.LINE_AA)
        cv2.circle(canvas, (x, y), radius, joint_color, -1, cv2.LINE_AA)
    return canvas


def draw_instances(image, instances, skeleton, score_thr=0.2, boxes=None, box_color=(0, 255, 0)):
    """Copy of ``image`` with every instance's skeleton: ``instances`` [N, K, 3] (x, y, score);
    keypoints with score > ``score_thr`` are drawn. ``boxes`` [N, 4] (x1, y1, x2, y2) are drawn thin."""
    canvas = np.ascontiguousarray(image).copy()
    if boxes is not None:
        for x1, y1, x2, y2 in np.round(np.asarray(boxes, dtype=np.float64)).astype(np.int64).tolist():
            cv2.rectangle(canvas, (x1, y1), (x2, y2), box_color, 1, cv2.LINE_AA)
    radius = max(2, round(max(canvas.shape[:2]) / 200))
    for keypoints in np.asarray(instances, dtype=np.float64).reshape(-1, *np.shape(instances)[-2:]):
        canvas = draw_pose(canvas, keypoints[:, :2], keypoints[:, 2] > score_thr, skeleton,
                           radius=radius, thickness=max(1, radius // 2 + 1))
    return canvas
