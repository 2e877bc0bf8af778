"""A grid of augmented training samples: what the network is trained on (tools/browse_dataset.py)."""
import cv2

from .draw import draw_pose
from .heatmaps import denormalize_image, heatmap_overlay, image_grid


def sample_tiles(dataset, index, rgb):
    image, target, target_weight, meta = dataset[index]
    crop = denormalize_image(image.numpy())
    if not rgb:
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
    # a joint is drawn when it has a target (visible and on the crop)
    has_target = target_weight.numpy()[:, 0] > 0
    pose = draw_pose(crop, meta["joints"][:, :2], has_target, dataset.meta.skeleton)
    heat = heatmap_overlay(crop, target.numpy(), alpha=0.7, rgb=True)
    caption = f"img {meta['image_id']} ann {meta['ann_id']} rot {meta['rotation']:.0f}"
    cv2.putText(pose, caption, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return pose, heat


def training_samples_grid(dataset, num, columns, rgb):
    """RGB grid of `num` samples (cycling through `dataset`), two tiles each: the input with its
    visible keypoints and skeleton, and the input with its target heatmaps; `columns` samples a row."""
    if len(dataset) == 0:
        raise ValueError(f"{dataset.ann_file}: no training instances to show")
    tiles = []
    for position in range(num):
        tiles.extend(sample_tiles(dataset, position % len(dataset), rgb))
    return image_grid(tiles, columns=2 * columns)
