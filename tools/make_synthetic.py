"""Generate the synthetic AP-10K-schema quadruped set (the embedded default data for `make demo`),
or a synthetic video of several animals with exact identities.

    python tools/make_synthetic.py --out data/synthetic_ap10k --train 2000 --val 200 --seed 0
    python tools/make_synthetic.py --video data/synthetic_video/walkers.mp4 --frames 60 --animals 3

Writes <out>/annotations/ap10k-{train,val,test}-split1.json and <out>/data/*.jpg. A rerun with
the same parameters finds the manifest and returns at once; --force regenerates.
--video writes the video and its ground truth next to it as SLEAP labels (<stem>.slp, one track
per animal: animal_0, animal_1, ...; needs the interop install group), which
tools/eval_tracks.py reads.
"""
import argparse
import logging
import os
import sys

from kitpose.demo.synthetic import generate_synthetic_dataset
from kitpose.demo.video import render_multi_animal_video, write_video


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="data/synthetic_ap10k", help="output folder (AP-10K layout)")
    parser.add_argument("--train", type=int, default=2000, help="training images")
    parser.add_argument("--val", type=int, default=200, help="validation images")
    parser.add_argument("--test", type=int, default=None, help="test images (default: as many as --val)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical files")
    parser.add_argument("--force", action="store_true", help="regenerate even when the same set exists")
    # sched_getaffinity (the CPUs this process may use, e.g. under taskset) exists on Linux only
    usable_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    parser.add_argument("--workers", type=int, default=usable_cpus,
                        help="rendering processes (default: the CPUs this process may use); the files do not "
                             "depend on it")
    video = parser.add_argument_group("a video of several animals (instead of the image set)")
    video.add_argument("--video", default="", help="write this .mp4 and its labels <stem>.slp")
    video.add_argument("--frames", type=int, default=60, help="frames of the video (default 60)")
    video.add_argument("--animals", type=int, default=3, help="animals in the video (default 3)")
    video.add_argument("--size", type=int, nargs=2, default=(384, 256), metavar=("W", "H"),
                       help="frame size (default 384 256)")
    return parser.parse_args(argv)


def make_video(args):
    from kitpose.datasets import load_metainfo
    from kitpose.interop.tracks_io import save_tracked_labels
    if not args.video.endswith(".mp4"):
        raise ValueError(f"--video {args.video}: give an .mp4 path")
    made = render_multi_animal_video(args.frames, args.animals, tuple(args.size), args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.video)), exist_ok=True)
    write_video(args.video, made.frames, made.fps)
    meta = load_metainfo("ap10k")
    labels = save_tracked_labels(os.path.splitext(args.video)[0] + ".slp", args.video, made.keypoints,
                                 made.track_names, meta.keypoints, meta.skeleton)
    print(f"wrote {args.video} ({args.frames} frames, {args.animals} animals) and its labels {labels}", flush=True)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    test = args.val if args.test is None else args.test
    try:
        if args.video:
            make_video(args)
            return 0
        generate_synthetic_dataset(args.out, args.train, args.val, test, seed=args.seed, force=args.force,
                                   workers=args.workers)
    except (FileExistsError, ValueError, OSError) as err:
        logging.getLogger("make_synthetic").error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
