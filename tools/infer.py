"""Predict keypoints on images or a video and draw them (see kitpose.inference.cli, kitpose.inference.pipeline).

    python tools/infer.py --cfg X.yaml --checkpoint M.pth --input IMG|DIR|'GLOB'|VIDEO --out DIR \
        [--boxes detections.json | --centroid-cfg C.yaml --centroid-checkpoint C.pth] [KEY VALUE ...]

Writes DIR/results.json (COCO keypoint results plus keypoint names) and a picture per
image (or DIR/<video>.mp4) with the skeletons drawn. Without --boxes the whole image is
the box; --boxes takes COCO detection results or a COCO file with annotations (matching
rules in kitpose.inference.detections); --centroid-cfg / --centroid-checkpoint take the boxes
from the centroid stage trained on your labels (kitpose.inference.centroid).
"""
import sys

from kitpose.inference.cli import infer_main

if __name__ == "__main__":
    sys.exit(infer_main())
