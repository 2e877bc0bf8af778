"""Heatmap overlays and image grids for looking at network inputs and targets."""
import cv2
import numpy as np

from kitpose.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["denormalize_image", "heatmap_overlay", "image_grid"]


def denormalize_image(image):
    """Normalised float [3, H, W] (numpy or torch) -> uint8 [H, W, 3] in the same channel order."""
    image = np.asarray(image, dtype=np.float32).transpose(1, 2, 0)
    return np.clip((image * IMAGENET_STD + IMAGENET_MEAN) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def heatmap_overlay(image, heatmaps, alpha=0.5, rgb=True):
    """``image`` uint8 [H, W, 3] blended with the per-pixel maximum of ``heatmaps`` [K, h, w] (JET colours)."""
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    strongest = heatmaps.max(axis=0) if len(heatmaps) else np.zeros(heatmaps.shape[1:], np.float32)
    strongest = cv2.resize(np.clip(strongest, 0.0, 1.0), (image.shape[1], image.shape[0]),
                           interpolation=cv2.INTER_LINEAR)
    colored = cv2.applyColorMap((strongest * 255).astype(np.uint8), cv2.COLORMAP_JET)
    if rgb:
        colored = cv2.cvtColor(colored, cv2.COLOR_BGR2RGB)
    # blend only where there is heat, so the image stays readable elsewhere
    weight = (alpha * strongest)[:, :, None]
    return (image * (1.0 - weight) + colored * weight).astype(np.uint8)


def image_grid(tiles, columns, pad=4, fill=32):
    """Same-sized uint8 tiles [H, W, 3] arranged row-major in ``columns`` columns with ``pad`` px gaps."""
    if not tiles:
        raise ValueError("image_grid: no tiles")
    height, width = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    grid = np.full((rows * (height + pad) + pad, columns * (width + pad) + pad, 3), fill, dtype=np.uint8)
    for position, tile in enumerate(tiles):
        row, column = divmod(position, columns)
        top, left = pad + row * (height + pad), pad + column * (width + pad)
        grid[top:top + height, left:left + width] = tile
    return grid
