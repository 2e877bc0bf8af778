"""Coordinate codecs: box/affine geometry, heatmap targets and heatmap decoding."""
from .affine import (PIXEL_STD, affine_transform_points, box_to_center_scale, fliplr_joints,
                     get_affine_transform, transform_preds)
from .decode import (dark_refine, flip_back, fuse_flip_heatmaps, get_final_preds, get_max_preds,
                     heatmap_to_image_coords)
from .targets import generate_gaussian_targets

__all__ = ["PIXEL_STD", "affine_transform_points", "box_to_center_scale", "fliplr_joints",
           "get_affine_transform", "transform_preds", "generate_gaussian_targets", "dark_refine",
           "flip_back", "fuse_flip_heatmaps", "get_final_preds", "get_max_preds", "heatmap_to_image_coords"]
