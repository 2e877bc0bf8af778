"""Inference on arbitrary images and videos: `PosePredictor` (boxes -> keypoints), input
iteration (image, folder, glob, video), --boxes files, and the tools/infer.py pipeline."""
from .detections import BoxFileError, Detections, ImageBoxes, load_detections
from .inputs import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, Frame, InputSource, open_input
from .pipeline import RESULTS_NAME, InferenceSummary, run_on_source
from .predictor import PoseInstances, PosePredictor, crop_input, whole_image_box

__all__ = ["BoxFileError", "Detections", "ImageBoxes", "load_detections", "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS",
           "Frame", "InputSource", "open_input", "RESULTS_NAME", "InferenceSummary", "run_on_source",
           "PoseInstances", "PosePredictor", "crop_input", "whole_image_box"]
