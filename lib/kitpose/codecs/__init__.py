"""Coordinate codecs: box/affine geometry, heatmap targets and heatmap decoding."""
from .affine import (BOX_PADDING, PIXEL_STD, BoxConvention, affine_transform_points, box_to_center_scale,
                     clean_boxes, fliplr_joints, get_affine_transform, transform_preds)
from .decode import dark_refine, flip_back, fuse_flip_heatmaps, get_final_preds, get_max_preds
from .heatmap import HeatmapCodec
from .targets import generate_gaussian_targets

__all__ = ["HeatmapCodec", "PIXEL_STD", "BOX_PADDING", "BoxConvention", "affine_transform_points", "box_to_center_scale",
           "clean_boxes", "get_affine_transform", "transform_preds", "generate_gaussian_targets", "dark_refine",
           "flip_back", "fliplr_joints", "fuse_flip_heatmaps", "get_final_preds", "get_max_preds"]
