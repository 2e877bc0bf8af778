"""Draw tracked keypoints on a few frames of a video as one PNG.

    python tools/draw_tracks.py --video V.mp4 --results OUT/results.json --frames 0 400 800 1200 \
        --out figures/tracks.png [--meta META.json] [--threshold 0.2] [--trail 30] [--columns 2]

--results is what `tools/infer.py --input V.mp4 --track` wrote; --meta (a metainfo JSON or a
built-in name) adds the limbs. Drawing: kitpose.vis.tracks.
"""
import argparse
import json
import os
import sys

import cv2


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", required=True)
    parser.add_argument("--results", required=True, help="results.json of tools/infer.py on that video")
    parser.add_argument("--frames", type=int, nargs="+", required=True, help="frame numbers (0-based)")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--meta", default="", help="metainfo for the limbs (default: points only)")
    parser.add_argument("--threshold", type=float, default=0.2, help="draw keypoints with maximum above this")
    parser.add_argument("--trail", type=int, default=30, help="frames of path drawn behind each track")
    parser.add_argument("--columns", type=int, default=2)
    parser.add_argument("--panel-width", type=int, default=320)
    args = parser.parse_args(argv)

    from kitpose.datasets import load_metainfo
    from kitpose.vis.tracks import tracked_frames_figure

    with open(args.results) as f:
        results = json.load(f)
    skeleton = load_metainfo(args.meta).skeleton if args.meta else []
    try:
        figure = tracked_frames_figure(args.video, results, args.frames, skeleton, args.threshold, args.trail,
                                       args.columns, args.panel_width)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if not cv2.imwrite(args.out, figure, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        print(f"error: cannot write {args.out}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({figure.shape[1]}x{figure.shape[0]}, {os.path.getsize(args.out) // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
