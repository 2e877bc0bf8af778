"""Score a video's predicted poses and tracks against its labels (found, keypoint error, PCK, OKS AP,
MOTA / IDF1 / ID switches): `kitpose.inference.track_eval`.

    python tools/eval_tracks.py --labels video.slp --predictions run/video.predictions.slp --out eval.json
"""
import sys

from kitpose.inference.track_eval import eval_tracks_main

if __name__ == "__main__":
    sys.exit(eval_tracks_main())
