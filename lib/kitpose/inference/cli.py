"""Command lines of tools/infer.py, tools/visualize.py and tools/export_onnx.py.

    python tools/infer.py --cfg X.yaml --checkpoint M.pth --input IMG|DIR|GLOB|VIDEO --out DIR
        [--boxes B.json | --detector NAME ... | --centroid-cfg C.yaml --centroid-checkpoint C.pth]
        [--track ...] [--max-animals N] [--format coco dlc slp nwb csv]
        [--allow-short-video] [KEY VALUE ...]
    python tools/visualize.py --cfg X.yaml --checkpoint M.pth --image IMG --out parts.png
        [--box X Y W H | --boxes B.json [--instance I]]
    python tools/export_onnx.py --cfg X.yaml --checkpoint M.pth --out model.onnx [--opset 17]
        [--check-images IMG ...]

Problems a user can fix (configuration, checkpoint, input, boxes file) end with one
error line and exit status 1; so does a video shorter than its header says (after writing
the results of the frames it has), unless --allow-short-video.
"""
import argparse
import logging
import os

import cv2
import numpy as np
import torch

from kitpose.codecs import HeatmapCodec
from kitpose.config import is_centroid_model, load_config
from kitpose.console import USER_ERRORS, add_console_handler
from kitpose.interop import InteropError
from kitpose.interop.cli import frame_range_argument
from kitpose.interop.predictions_out import EXPORT_FORMATS
from kitpose.models import build_model, load_model_file
from kitpose.runtime.onnx import DEFAULT_OPSET, export_model_onnx, onnx_parity

from .centroid import add_centroid_arguments, centroid_detector_from_args
from .detections import BoxFileError, load_detections
from .detector import DetectorError, add_detector_arguments, detector_from_args
from .inputs import InputError, open_input
from .pipeline import run_on_source
from .predictor import PosePredictor, crop_input, whole_image_box
from .smoothing import KeypointSmoother
from .tracking import PoseTracker, add_tracking_arguments, tracker_settings_from_args

logger = logging.getLogger(__name__)

__all__ = ["infer_main", "visualize_main", "export_main"]

ERRORS = USER_ERRORS + (BoxFileError, DetectorError, InputError, InteropError, OSError)
PARITY_TOLERANCE = 1e-4


def _common_arguments(parser):
    parser.add_argument("--cfg", required=True, help="experiment YAML the checkpoint was trained with")
    parser.add_argument("--checkpoint", required=True, help="model weights (.pth; published or this project's)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")


def _run(action, args):
    handler = add_console_handler()
    try:
        return action(args)
    except ERRORS as err:
        logger.error("%s", err)
        return 1
    finally:
        logging.getLogger().removeHandler(handler)


# ---------------------------------------------------------------- infer
def infer_main(argv=None):
    parser = argparse.ArgumentParser(description="Predict keypoints on images or a video and draw them.")
    _common_arguments(parser)
    parser.add_argument("--input", required=True, help="an image, a folder of images, a quoted glob pattern or a video")
    parser.add_argument("--out", required=True, help="output folder (results.json, pictures or video)")
    parser.add_argument("--boxes", default="", help="boxes: COCO detection results or a COCO file with annotations "
                        "(default: the whole image is the box)")
    parser.add_argument("--box-thr", type=float, default=None, help="keep boxes with score >= this "
                        "(default TEST.IMAGE_THRE)")
    parser.add_argument("--category-ids", type=int, nargs="+", default=None, help="keep boxes of these categories")
    parser.add_argument("--no-draw", action="store_true", help="write results.json only")
    parser.add_argument("--format", nargs="+", default=["coco"], choices=("coco",) + EXPORT_FORMATS,
                        help="prediction files: coco (results.json, always written), dlc (DeepLabCut h5 + csv), "
                        "slp (SLEAP), nwb (NWB ndx-pose), csv (SLEAP csv); dlc/slp/nwb/csv need the interop "
                        "install group")
    parser.add_argument("--frames", type=frame_range_argument, default=None, metavar="START:STOP[:STEP]",
                        help="only these frame numbers of a video (or positions in an image list), STOP excluded; "
                        "the results keep the numbers (e.g. 900:1100)")
    parser.add_argument("--allow-short-video", action="store_true", help="exit 0 when a video ends before the "
                        "frame count its header announces (default: the results are written, exit status 1)")
    add_detector_arguments(parser)
    add_centroid_arguments(parser)
    add_tracking_arguments(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    args = parser.parse_args(argv)
    box_options = [name for name, given in (("--boxes", args.boxes), ("--detector", args.detector),
                                            ("--centroid-cfg/--centroid-checkpoint",
                                             args.centroid_cfg or args.centroid_checkpoint)) if given]
    if len(box_options) > 1:
        parser.error(f"{' and '.join(box_options)} all give boxes: choose one")
    if args.smooth != "none" and not args.track:
        parser.error("--smooth filters tracks over time: add --track")
    return _run(_infer, args)


def _infer(args):
    cfg = load_config(args.cfg, args.opts)
    if is_centroid_model(cfg):
        raise DetectorError(f"--cfg {args.cfg} is a centroid detection stage (MODEL.NAME {cfg.MODEL.NAME}): give the "
                            f"pose YAML as --cfg and this one as --centroid-cfg")
    source = open_input(args.input, args.frames)
    detections = None
    if args.boxes:
        threshold = cfg.TEST.IMAGE_THRE if args.box_thr is None else args.box_thr
        detections = load_detections(args.boxes, threshold, set(args.category_ids) if args.category_ids else None)
    predictor = PosePredictor(cfg, args.checkpoint, args.device)
    detector = detector_from_args(args, predictor.device) or centroid_detector_from_args(args, predictor.device)
    tracker = None
    if args.track:
        smoother = (KeypointSmoother(source.fps, cfg.TEST.IN_VIS_THRE, args.smooth_min_cutoff, args.smooth_beta)
                    if args.smooth == "one-euro" else None)
        tracker = PoseTracker(predictor, settings=tracker_settings_from_args(args), smoother=smoother)
    count = f"{source.total} image(s)" if source.kind == "images" else f"video, {source.total or '?'} frames"
    logger.info("%s on %s: %s (%s)", args.checkpoint, predictor.device, args.input, count)
    summary = run_on_source(predictor, source, args.out, detections, draw=not args.no_draw, detector=detector,
                            tracker=tracker, formats=args.format)
    print(summary.describe(), flush=True)
    if summary.missing_frames and not args.allow_short_video:
        logger.error("%s: %s; the frames read are in %s (--allow-short-video accepts a short video)", args.input,
                     summary.short_video(), summary.results_file)
        return 1
    return 0 if summary.num_inputs else 1


# ---------------------------------------------------------------- visualize
def visualize_main(argv=None):
    parser = argparse.ArgumentParser(description="Draw the heatmaps and k-medoids body parts of one image as a PNG.")
    _common_arguments(parser)
    parser.add_argument("--image", required=True, help="the image")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--box", type=float, nargs=4, metavar=("X", "Y", "W", "H"), default=None,
                        help="the animal's box (default: the whole image, or --boxes)")
    parser.add_argument("--boxes", default="", help="boxes file as for infer.py; the image's boxes are looked up")
    parser.add_argument("--instance", type=int, default=0, help="which of the image's boxes (by score, default 0)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    args = parser.parse_args(argv)
    return _run(_visualize, args)


def _choose_box(args, image):
    if args.box is not None:
        return np.asarray(args.box, np.float64)
    if not args.boxes:
        return whole_image_box(image)
    found = load_detections(args.boxes).for_image(args.image)
    if not len(found.boxes):
        raise BoxFileError(f"{args.boxes}: no box for image {args.image}")
    order = np.argsort(-found.scores, kind="stable")
    if not 0 <= args.instance < len(order):
        raise BoxFileError(f"--instance {args.instance}: {args.image} has {len(order)} box(es) in {args.boxes}")
    return found.boxes[order[args.instance]]


def _visualize(args):
    from kitpose.vis.heatmaps import denormalize_image
    from kitpose.vis.parts import part_cluster_figure

    cfg = load_config(args.cfg, args.opts)
    image = cv2.imread(args.image, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise OSError(f"cannot read image {args.image}")
    predictor = PosePredictor(cfg, args.checkpoint, args.device, part_maps=True)
    box = _choose_box(args, image)
    inputs, _, _ = predictor.crops(image, box[None])
    outputs = predictor.forward(inputs)
    heatmaps = outputs.heatmaps[0].numpy()
    # keypoints in crop pixels: decode with the crop itself as the box
    keypoints, _ = predictor.codec.decode(heatmaps[None], *predictor.codec.crop_frame())
    assign = medoids = part_maps = None
    head = getattr(predictor.model, "channelformer", None)
    if head is not None and head.num_parts and outputs.intermediate is not None:
        assign, medoids = head.cluster(outputs.intermediate)
        assign, medoids = assign[0].numpy(), medoids[0].numpy()
        part_maps = outputs.parts[0].numpy() if outputs.parts is not None else None
    crop = denormalize_image(inputs[0].numpy())
    if cfg.DATASET.COLOR_RGB:
        crop = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)
    title = f"{os.path.basename(args.image)}  box {', '.join(f'{v:.0f}' for v in box)}"
    figure = part_cluster_figure(crop, heatmaps, keypoints[0], predictor.meta.keypoints, predictor.meta.skeleton,
                                 assign, medoids, part_maps, title=title)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if not cv2.imwrite(args.out, figure):
        raise OSError(f"cannot write {args.out}")
    if assign is not None:
        for part, medoid in enumerate(medoids):
            names = [predictor.meta.keypoints[i] for i in np.flatnonzero(assign == part)]
            print(f"part {part} (medoid {predictor.meta.keypoints[int(medoid)]}): {', '.join(names)}")
    print(f"wrote {args.out}", flush=True)
    return 0


# ---------------------------------------------------------------- export
def export_main(argv=None):
    parser = argparse.ArgumentParser(description="Export the model to ONNX (dynamic batch) and check it "
                                     "against PyTorch with onnxruntime.")
    parser.add_argument("--cfg", required=True, help="experiment YAML")
    parser.add_argument("--checkpoint", required=True, help="model weights (.pth)")
    parser.add_argument("--out", required=True, help="ONNX file to write")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument("--check-batch", type=int, default=4, help="random inputs in the parity check (default 4)")
    parser.add_argument("--check-images", nargs="*", default=(), help="also check on these images (whole-image crops)")
    parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    args = parser.parse_args(argv)
    return _run(_export, args)


def _export(args):
    cfg = load_config(args.cfg, args.opts)
    model = build_model(cfg, is_train=False)
    load_model_file(model, args.checkpoint, source="--checkpoint")
    model.eval()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    names = export_model_onnx(model, args.out, tuple(cfg.MODEL.IMAGE_SIZE), opset=args.opset)
    print(f"wrote {args.out} (input 'images' [batch,3,{cfg.MODEL.IMAGE_SIZE[1]},{cfg.MODEL.IMAGE_SIZE[0]}], "
          f"outputs {', '.join(names)}; batch is dynamic)", flush=True)
    if args.no_check:
        return 0
    width, height = cfg.MODEL.IMAGE_SIZE
    batches = {"random": torch.randn(args.check_batch, 3, height, width, generator=torch.Generator().manual_seed(0))}
    if args.check_images:
        batches["images"] = _whole_image_crops(cfg, args.check_images)
    worst = 0.0
    for label, inputs in batches.items():
        report = onnx_parity(model, args.out, inputs)
        worst = max(worst, report["heatmaps_same_clusters"])
        print(f"parity on {label} batch of {len(inputs)}: " + report["text"], flush=True)
    # a sample clustered differently is the published clustering's sensitivity to the GEMM's
    # last bits (rare in float64, see kitpose.runtime.onnx); every other difference is an export error
    return 0 if worst <= PARITY_TOLERANCE else 1


def _whole_image_crops(cfg, paths):
    codec = HeatmapCodec.from_config(cfg)
    crops = []
    for path in paths:
        image = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if image is None:
            raise OSError(f"--check-images: cannot read {path}")
        crops.append(crop_input(image, whole_image_box(image), codec, cfg.DATASET.COLOR_RGB)[0])
    return torch.from_numpy(np.stack(crops))
