"""Datasets: metainfo files and one top-down COCO-format dataset, chosen by DATASET.DATASET.

DATASET.DATASET names a built-in metainfo file (``meta/<name>.json``) or is 'custom'. The
metainfo's ``layout`` says where the files are under DATASET.ROOT (joined to DATA_DIR when
relative), ``{set}`` being DATASET.TRAIN_SET or DATASET.TEST_SET; image paths are the
annotation ``file_name`` joined to the image folder. The built-in layouts:

==========  =============================================  ===========================
dataset     annotation file                                image folder
==========  =============================================  ===========================
ap10k       annotations/ap10k-{set}-split1.json            data/
animalpose  annotations/animalpose_{set}.json              ROOT itself (file names carry
                                                           their sub-folders, e.g.
                                                           VOC2012/JPEGImages/x.jpg)
ak          annotation/ak_P3_mammal/{set}.json             dataset/ (file names are
                                                           <video>/<frame>.jpg)
coco        annotations/person_keypoints_{set}.json        images/{set}/
custom      DATASET.TRAIN_ANN / DATASET.TEST_ANN           DATASET.IMAGE_DIR (default ROOT)
==========  =============================================  ===========================

The ak layout is the AnimalKingdom release's ``pose_estimation`` folder (ROOT) with
the P3 mammal protocol files; use DATASET.TRAIN_ANN / TEST_ANN for other protocols.
For every dataset, non-empty DATASET.TRAIN_ANN, DATASET.TEST_ANN and DATASET.IMAGE_DIR
(relative to ROOT, or absolute) replace the layout's entries, and DATASET.META (a built-in
name or a metainfo JSON path, relative to ROOT or to the working directory) replaces the
metainfo, its layout included (without one, the annotation keys are needed); ``custom``
needs DATASET.META and the annotation file of the requested split, and uses no layout.

Testing with TEST.USE_GT_BBOX false reads detector boxes from TEST.COCO_BBOX_FILE
(joined to DATA_DIR when relative) with score >= TEST.IMAGE_THRE, of the categories in the
metainfo's ``loader.detection_categories`` (coco: 1, person) or, when it lists none, of all.
Evaluation (kitpose.evaluation) uses TEST.METRIC when set, else the metainfo's ``metric``
(AnimalKingdom: 'pck', else 'oks').
"""
import os

from kitpose.codecs import HeatmapCodec
from kitpose.config import is_centroid_model

from .centroid import CentroidAugmentation, CentroidDataset
from .metainfo import (BUILTIN_METAINFO, DatasetLayout, DatasetMeta, MetainfoError, builtin_metainfo_path,
                       load_metainfo, metainfo_from_dict)
from .topdown import AnnotationError, TopDownCocoDataset, build_augmentation
from .transforms import ImageReadError

__all__ = ["build_dataset", "dataset_paths", "config_metainfo", "centroid_anchor_index", "TopDownCocoDataset",
           "CentroidDataset", "DatasetMeta", "DatasetLayout",
           "load_metainfo",
           "metainfo_from_dict", "MetainfoError", "AnnotationError", "ImageReadError", "BUILTIN_METAINFO",
           "builtin_metainfo_path"]

CUSTOM = "custom"


def _under(root, path):
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(root, path))


def _dataset_root(cfg):
    root = cfg.DATASET.ROOT
    if cfg.DATA_DIR and not os.path.isabs(root):
        root = os.path.join(cfg.DATA_DIR, root)
    return root


def dataset_paths(cfg, is_train, meta=None):
    """(annotation file, image folder, metainfo name/path, expected-layout text) for the requested split.

    The files are the metainfo's ``layout`` (``meta``, else the one the config names), with
    DATASET.TRAIN_ANN / TEST_ANN and DATASET.IMAGE_DIR replacing its entries when set; 'custom'
    takes them from those keys alone."""
    source = _metainfo_source(cfg)
    name = cfg.DATASET.DATASET
    root = _dataset_root(cfg)
    image_set = cfg.DATASET.TRAIN_SET if is_train else cfg.DATASET.TEST_SET
    ann_key = "DATASET.TRAIN_ANN" if is_train else "DATASET.TEST_ANN"
    ann_override = cfg.DATASET.TRAIN_ANN if is_train else cfg.DATASET.TEST_ANN
    layout = None if name == CUSTOM else (meta if meta is not None else load_metainfo(source)).layout
    if layout is None:
        if not ann_override:
            without = (f"DATASET.DATASET '{CUSTOM}'" if name == CUSTOM
                       else f"metainfo {source} has no 'layout', so DATASET.DATASET {name!r}")
            raise ValueError(f"{without} needs {ann_key} (a COCO-format keypoint file)")
        ann_pattern, image_pattern = ann_override, cfg.DATASET.IMAGE_DIR
        expected = f"{ann_key} and DATASET.IMAGE_DIR under DATASET.ROOT {root}"
    else:
        expected = (f"DATASET.DATASET '{name}' reads ROOT/{layout.annotations} with images in "
                    f"ROOT/{layout.images}, ROOT = {root}").replace("{set}", image_set)
        ann_pattern = ann_override or layout.annotations
        image_pattern = cfg.DATASET.IMAGE_DIR or layout.images
    ann_file = _under(root, ann_pattern.replace("{set}", image_set))
    image_dir = _under(root, image_pattern.replace("{set}", image_set))
    return ann_file, image_dir, source, expected


def _metainfo_source(cfg):
    """DATASET.META (a built-in name, or a path relative to DATASET.ROOT or to the working directory),
    else the built-in metainfo DATASET.DATASET names."""
    name = cfg.DATASET.DATASET
    if name == CUSTOM and not cfg.DATASET.META:
        raise ValueError(f"DATASET.DATASET '{CUSTOM}' needs DATASET.META (a metainfo JSON file)")
    if name != CUSTOM and name not in BUILTIN_METAINFO:
        raise ValueError(f"unknown DATASET.DATASET {name!r}; expected one of {sorted(BUILTIN_METAINFO) + [CUSTOM]}")
    source = cfg.DATASET.META or name
    if source not in BUILTIN_METAINFO and not os.path.isabs(source):
        under_root = _under(_dataset_root(cfg), source)
        source = under_root if os.path.isfile(under_root) else source
    return source


def config_metainfo(cfg):
    """The DatasetMeta the config names (see `_metainfo_source`); its keypoint count must equal
    MODEL.NUM_JOINTS (a pose model's; the centroid stage has one map whatever the keypoints)."""
    meta = load_metainfo(_metainfo_source(cfg))
    if meta.num_keypoints != cfg.MODEL.NUM_JOINTS and not is_centroid_model(cfg):
        raise MetainfoError(f"MODEL.NUM_JOINTS is {cfg.MODEL.NUM_JOINTS} but metainfo {meta.source} has "
                            f"{meta.num_keypoints} keypoints")
    return meta


def build_dataset(cfg, is_train, meta=None, codec=None):
    """TopDownCocoDataset for the training (``is_train``) or test split described by ``cfg``; for
    MODEL.NAME centroid_hrnet the CentroidDataset of its whole frames (`centroid_dataset`).

    ``meta`` and ``codec``: the run's metainfo and codec, built once per run (`config_metainfo`,
    ``HeatmapCodec.from_config``) and shared by its datasets; built from ``cfg`` when not given."""
    meta = config_metainfo(cfg) if meta is None else meta
    if is_centroid_model(cfg):
        return centroid_dataset(cfg, is_train, meta)
    codec = HeatmapCodec.from_config(cfg) if codec is None else codec
    ann_file, image_dir, _, layout = dataset_paths(cfg, is_train, meta)
    bbox_file = cfg.TEST.COCO_BBOX_FILE
    if bbox_file and cfg.DATA_DIR and not os.path.isabs(bbox_file):
        bbox_file = os.path.join(cfg.DATA_DIR, bbox_file)
    return TopDownCocoDataset(
        ann_file=ann_file,
        image_dir=image_dir,
        meta=meta,
        codec=codec,
        is_train=is_train,
        augmentation=build_augmentation(cfg, meta, codec.aspect_ratio) if is_train else None,
        color_rgb=cfg.DATASET.COLOR_RGB,
        use_joint_weights=cfg.LOSS.USE_DIFFERENT_JOINTS_WEIGHT,
        use_gt_bbox=cfg.TEST.USE_GT_BBOX,
        bbox_file=bbox_file,
        image_thre=cfg.TEST.IMAGE_THRE,
        det_category_ids=meta.loader.detection_categories or None,
        use_det_score=cfg.TEST.USE_DET_SCORE,
        image_set=cfg.DATASET.TRAIN_SET if is_train else cfg.DATASET.TEST_SET,
        expected_layout=layout,
    )


def centroid_anchor_index(cfg, meta):
    """The keypoint index CENTROID.ANCHOR names (None for '': the centre of the labelled keypoints' box)."""
    name = cfg.CENTROID.ANCHOR
    if not name:
        return None
    if name not in meta.keypoints:
        raise MetainfoError(f"CENTROID.ANCHOR {name!r} is not a keypoint of metainfo {meta.source or meta.name} "
                            f"({', '.join(meta.keypoints)})")
    return meta.keypoints.index(name)


def centroid_dataset(cfg, is_train, meta):
    """The CentroidDataset of the training or test split (the same files as the pose stage's)."""
    ann_file, image_dir, _, layout = dataset_paths(cfg, is_train, meta)
    augmentation = CentroidAugmentation(cfg.DATASET.SCALE_FACTOR, cfg.DATASET.ROT_FACTOR, cfg.DATASET.ROT_PROB,
                                        cfg.DATASET.FLIP) if is_train else None
    return CentroidDataset(ann_file, image_dir, cfg.MODEL.IMAGE_SIZE, cfg.MODEL.HEATMAP_SIZE, cfg.MODEL.SIGMA,
                           centroid_anchor_index(cfg, meta), is_train=is_train, augmentation=augmentation,
                           color_rgb=cfg.DATASET.COLOR_RGB,
                           image_set=cfg.DATASET.TRAIN_SET if is_train else cfg.DATASET.TEST_SET,
                           expected_layout=layout, meta=meta)
