"""Coordinate codecs: box/affine geometry, heatmap targets and heatmap decoding."""
from .affine import (BOX_PADDING, PIXEL_STD, BoxConvention, affine_transform_points, box_area, box_corners,
                     box_to_center_scale, clean_boxes, fliplr_joints, get_affine_transform, transform_preds,
                     xywh_to_corners)
from .decode import dark_refine, flip_back, fuse_flip_heatmaps, get_final_preds, get_max_preds
from .heatmap import EncodedJoints, HeatmapCodec
from .targets import generate_gaussian_targets

__all__ = ["EncodedJoints", "HeatmapCodec", "PIXEL_STD", "BOX_PADDING", "BoxConvention", "affine_transform_points",
           "box_area", "box_corners", "box_to_center_scale", "xywh_to_corners", "clean_boxes", "get_affine_transform",
           "transform_preds", "generate_gaussian_targets", "dark_refine",
           "flip_back", "fliplr_joints", "fuse_flip_heatmaps", "get_final_preds", "get_max_preds"]
