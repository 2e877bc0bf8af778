"""Look inside a KITPose model: heatmaps and k-medoids body parts of one image as a PNG.

    python tools/visualize.py --cfg X.yaml --checkpoint M.pth --image IMG --out parts.png \
        [--box X Y W H | --boxes detections.json [--instance I]] [KEY VALUE ...]

The picture shows the crop with every keypoint coloured by the body part (part prompt)
the clustering put it in, the model's part maps, the keypoint names of each part, and one
heatmap per keypoint; the part lists are also printed.
"""
import sys

from kitpose.inference.cli import visualize_main

if __name__ == "__main__":
    sys.exit(visualize_main())
