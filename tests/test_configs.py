"""The 13 experiment YAMLs equal the published KITPose files, and published-format files load.

PUBLISHED_COMMON and PUBLISHED hold the values of the published configurations
(github.com/Raojiyong/KITPose, experiments/*/kitpose_part/*.yaml over its default
config): the value a published file sets, else the published default. Our key
names are used (the published TRAIN.MODEL_LR is TRAIN.LR here). Not listed:
DATASET.ROOT (AnimalKingdom: this project's data layout) and TEST.MODEL_FILE
(the author's checkpoint paths), which our files do not copy.
"""
import logging
from pathlib import Path

import pytest
import torch
import yaml

from kitpose.config import ConfigError, get_default_config, load_config
from kitpose.config.published import ALIASES, PUBLISHED_ONLY_KEYS, PUBLISHED_ONLY_SECTIONS
from kitpose.models import build_model, count_parameters

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"

# the same in all 13 published configurations
PUBLISHED_COMMON = {
    'PRINT_FREQ': 200,
    'WORKERS': 8,
    'AUTO_RESUME': True,
    'DATASET.COLOR_RGB': True,
    'DATASET.FLIP': True,
    'DATASET.PROB_HALF_BODY': 0.3,
    'MODEL.NAME': 'kitpose_part',
    'MODEL.INIT_WEIGHTS': True,
    'MODEL.INIT': True,
    'MODEL.TRANSFORMER_DEPTH': 2,
    'MODEL.TRANSFORMER_HEADS': 1,
    'MODEL.TRANSFORMER_MLP_RATIO': 3,
    'MODEL.POS_EMBEDDING_TYPE': 'sine-full',
    'MODEL.EXTRA.STAGE3.NUM_MODULES': 4,
    'MODEL.EXTRA.STAGE4.NUM_MODULES': 3,
    'LOSS.USE_TARGET_WEIGHT': True,
    'LOSS.USE_OHKM': False,
    'TRAIN.SHUFFLE': True,
    'TRAIN.BEGIN_EPOCH': 0,
    'TRAIN.OPTIMIZER': 'adam',
    'TRAIN.LR': 0.0005,
    'TRAIN.LR_END': 5e-06,
    'TRAIN.LR_FACTOR': 0.1,
    'TRAIN.WD': 0.0001,
    'TRAIN.MOMENTUM': 0.9,
    'TRAIN.NESTEROV': False,
    'TEST.FLIP_TEST': True,
    'TEST.POST_PROCESS': True,
    'TEST.SHIFT_HEATMAP': False,
    'TEST.BLUR_KERNEL': 11,
    'TEST.IMAGE_THRE': 0.0,
    'TEST.OKS_THRE': 0.9,
    'TEST.IN_VIS_THRE': 0.2,
    'TEST.SOFT_NMS': False,
}
# our file -> (its published file, the values that differ between the 13; SEED: 22 where the
# file sets it, else the published default 42)
PUBLISHED = {
    'ap10k/kitpose/kitpose_w32_256x256.yaml': ('ap10k/kitpose_part/2Encoder_w32_256x256_adaW_cutmix_p4.yaml', {
        'GPUS': [0], 'SEED': 22, 'OUTPUT_DIR': 'output', 'LOG_DIR': 'log', 'DATASET.DATASET': 'ap10k',
        'DATASET.TRAIN_SET': 'train', 'DATASET.TEST_SET': 'val', 'DATASET.ROT_FACTOR': 40,
        'DATASET.SCALE_FACTOR': 0.5, 'DATASET.NUM_JOINTS_HALF_BODY': 8,
        'MODEL.PRETRAINED': 'models/pytorch/imagenet/hrnet_w32-36af842e.pth', 'MODEL.NUM_JOINTS': 17,
        'MODEL.NUM_BP': 4, 'MODEL.IMAGE_SIZE': [256, 256], 'MODEL.HEATMAP_SIZE': [64, 64],
        'MODEL.PATCH_SIZE': [64, 64], 'MODEL.SIGMA': 2, 'MODEL.DIM': 1024,
        'MODEL.EXTRA.STAGE4.NUM_CHANNELS': [32, 64, 128, 256], 'LOSS.USE_DIFFERENT_JOINTS_WEIGHT': True,
        'TRAIN.BATCH_SIZE_PER_GPU': 64, 'TRAIN.END_EPOCH': 250, 'TRAIN.LR_STEP': [200, 230],
        'TEST.BATCH_SIZE_PER_GPU': 64, 'TEST.USE_GT_BBOX': True, 'TEST.COCO_BBOX_FILE': '',
    }),
    'ap10k/kitpose/kitpose_w32_384x384.yaml': ('ap10k/kitpose_part/2Encoder_w32_384x384_adaW_cutmix_p4.yaml', {
        'GPUS': [0], 'SEED': 42, 'OUTPUT_DIR': 'output', 'LOG_DIR': 'log', 'DATASET.DATASET': 'ap10k',
        'DATASET.TRAIN_SET': 'train', 'DATASET.TEST_SET': 'val', 'DATASET.ROT_FACTOR': 40,
        'DATASET.SCALE_FACTOR': 0.5, 'DATASET.NUM_JOINTS_HALF_BODY': 8,
        'MODEL.PRETRAINED': 'models/pytorch/imagenet/hrnet_w32-36af842e.pth', 'MODEL.NUM_JOINTS': 17,
        'MODEL.NUM_BP': 4, 'MODEL.IMAGE_SIZE': [384, 384], 'MODEL.HEATMAP_SIZE': [96, 96],
        'MODEL.PATCH_SIZE': [96, 96], 'MODEL.SIGMA': 3, 'MODEL.DIM': 1024,
        'MODEL.EXTRA.STAGE4.NUM_CHANNELS': [32, 64, 128, 256], 'LOSS.USE_DIFFERENT_JOINTS_WEIGHT': True,
        'TRAIN.BATCH_SIZE_PER_GPU': 16, 'TRAIN.END_EPOCH': 250, 'TRAIN.LR_STEP': [200, 230],
        'TEST.BATCH_SIZE_PER_GPU': 32, 'TEST.USE_GT_BBOX': True, 'TEST.COCO_BBOX_FILE': '',
    }),
    'ap10k/kitpose/kitpose_w48_256x256.yaml': ('ap10k/kitpose_part/2Encoder_w48_256x256_adaW_cutmix_p4.yaml', {
        'GPUS': [0], 'SEED': 42, 'OUTPUT_DIR': 'output', 'LOG_DIR': 'log', 'DATASET.DATASET': 'ap10k',
        'DATASET.TRAIN_SET': 'train', 'DATASET.TEST_SET': 'val', 'DATASET.ROT_FACTOR': 40,
        'DATASET.SCALE_FACTOR': 0.5, 'DATASET.NUM_JOINTS_HALF_BODY': 8,
        'MODEL.PRETRAINED': 'models/pytorch/imagenet/hrnet_w48-8ef0771d.pth', 'MODEL.NUM_JOINTS': 17,
        'MODEL.NUM_BP': 4, 'MODEL.IMAGE_SIZE': [256, 256], 'MODEL.HEATMAP_SIZE': [64, 64],
        'MODEL.PATCH_SIZE': [64, 64], 'MODEL.SIGMA': 2, 'MODEL.DIM': 1024,
        'MODEL.EXTRA.STAGE4.NUM_CHANNELS': [48, 96, 192, 384], 'LOSS.USE_DIFFERENT_JOINTS_WEIGHT': True,
        'TRAIN.BATCH_SIZE_PER_GPU': 16, 'TRAIN.END_EPOCH': 250, 'TRAIN.LR_STEP': [200, 230],
        'TEST.BATCH_SIZE_PER_GPU': 32, 'TEST.USE_GT_BBOX': True, 'TEST.COCO_BBOX_FILE': '',
    }),
    'ap10k/kitpose/kitpose_w48_384x384.yaml': ('ap10k/kitpose_part/2Encoder_w48_384x384_adaW_cutmix_p4.yaml', {
        'GPUS': [0], 'SEED': 42, 'OUTPUT_DIR': 'output', 'LOG_DIR': 'log', 'DATASET.DATASET': 'ap10k',
        'DATASET.TRAIN_SET': 'train', 'DATASET.TEST_SET': 'val', 'DATASET.ROT_FACTOR': 40,
        'DATASET.SCALE_FACTOR': 0.5, 'DATASET.NUM_JOINTS_HALF_BODY': 8,
        'MODEL.PRETRAINED': 'models/pytorch/imagenet/hrnet_w48-8ef0771d.pth', 'MODEL.NUM_JOINTS': 17,
        'MODEL.NUM_BP': 4, 'MODEL.IMAGE_SIZE': [384, 384], 'MODEL.HEATMAP_SIZE': [96, 96],
        'MODEL.PATCH_SIZE': [96, 96], 'MODEL.SIGMA': 3, 'MODEL.DIM': 1024,
        'MODEL.EXTRA.STAGE4.NUM_CHANNELS': [48, 96, 192, 384], 'LOSS.USE_DIFFERENT_JOINTS_WEIGHT': True,
        'TRAIN.BATCH_SIZE_PER_GPU': 32, 'TRAIN.END_EPOCH': 250, 'TRAIN.LR_STEP': [200, 230],
        'TEST.BATCH_SIZE_PER_GPU': 32, 'TEST.USE_GT_BBOX': True, 'TEST.COCO_BBOX_FILE': '',
    }),
    'animalpose/kitpose/kitpose_w32_256x256.yaml': ('animalpose/kitpose_part/2Encoder_w32_256x256_adaW_cutmix_p5.yaml', {
        'GPUS': [0, 1, 2, 3], 'SEED': 42, 'OUTPUT_DIR': 'output', 'LOG_DIR': 'log',
        'DATASET.DATASET': 'animalpose', 'DATASET.TRAIN_SET': 'train', 'DATASET.TEST_SET': 'val',
        'DATASET.ROT_FACTOR': 40, 'DATASET.SCALE_FACTOR': 0.5, 'DATASET.NUM_JOINTS_HALF_BODY': 8,
        'MODEL.PRETRAINED': 'models/pytorch/imagenet/hrnet_w32-36af842e.pth', 'MODEL.NUM_JOINTS': 20,
        'MODEL.NUM_BP': 5, 'MODEL.IMAGE_SIZE': [256, 256], 'MODEL.HEATMAP_SIZE': [64, 64],
        'MODEL.PATCH_SIZE': [64, 64], 'MODEL.SIGMA': 2, 'MODEL.DIM': 1024,
        'MODEL.EXTRA.STAGE4.NUM_CHANNELS': [32, 64, 128, 256], 'LOSS.USE_DIFFERENT_JOINTS_WEIGHT': False,
        'TRAIN.BATCH_SIZE_PER_GPU': 32, 'TRAIN.END_EPOCH': 250, 'TRAIN.LR_STEP': [200, 230],
        'TEST.BATCH_SIZE_PER_GPU': 32, 'TEST.USE_GT_BBOX': True, 'TEST.COCO_BBOX_FILE': '',
    }),
    'animalpose/kitpose/kitpose_w48_256x256.yaml': ('animalpose/kitpose_part/2Encoder_w48_256x256_adaW_cutmix_p5.yaml', {
        'GPUS': [0, 1, 2, 3], 'SEED': 42, 'OUTPUT_DIR': 'output', 'LOG_DIR': 'log',
        'DATASET.DATASET': 'animalpose', 'DATASET.TRAIN_SET': 'train', 'DATASET.TEST_SET': 'val',
        'DATASET.ROT_FACTOR': 40, 'DATASET.SCALE_FACTOR': 0.5, 'DATASET.NUM_JOINTS_HALF_BODY': 8,
        'MODEL.PRETRAINED': 'models/pytorch/imagenet/hrnet_w48-8ef0771d.pth', 'MODEL.NUM_JOINTS': 20,
        'MODEL.NUM_BP': 5, 'MODEL.IMAGE_SIZE': [256, 256], 'MODEL.HEATMAP_SIZE': [64, 64],
        'MODEL.PATCH_SIZE': [64, 64], 'MODEL.SIGMA': 2, 'MODEL.DIM': 1024,
        'MODEL.EXTRA.STAGE4.NUM_CHANNELS': [48, 96, 192, 384], 'LOSS.USE_DIFFERENT_JOINTS_WEIGHT': True,
        'TRAIN.BATCH_SIZE_PER_GPU': 16, 'TRAIN.END_EPOCH': 250, 'TRAIN.LR_STEP': [200, 230],
        'TEST.BATCH_SIZE_PER_GPU': 32, 'TEST.USE_GT_BBOX': True, 'TEST.COCO_BBOX_FILE': '',
    }),
    'animalpose/kitpose/kitpose_w48_384x384.yaml': ('animalpose/kitpose_part/2Encoder_w48_384x384_adaW_cutmix_p5.yaml', {
        'GPUS': [0, 1, 2, 3], 'SEED': 42, 'OUTPUT_DIR': 'output', 'LOG_DIR': 'log',
        'DATASET.DATASET': 'animalpose', 'DATASET.TRAIN_SET': 'train', 'DATASET.TEST_SET': 'val',
        'DATASET.ROT_FACTOR': 40, 'DATASET.SCALE_FACTOR': 0.5, 'DATASET.NUM_JOINTS_HALF_BODY': 8,
        'MODEL.PRETRAINED': 'models/pytorch/imagenet/hrnet_w48-8ef0771d.pth', 'MODEL.NUM_JOINTS': 20,
        'MODEL.NUM_BP': 5, 'MODEL.IMAGE_SIZE': [384, 384], 'MODEL.HEATMAP_SIZE': [96, 96],
        'MODEL.PATCH_SIZE': [96, 96], 'MODEL.SIGMA': 3, 'MODEL.DIM': 1024,
        'MODEL.EXTRA.STAGE4.NUM_CHANNELS': [48, 96, 192, 384], 'LOSS.USE_DIFFERENT_JOINTS_WEIGHT': True,
        'TRAIN.BATCH_SIZE_PER_GPU': 16, 'TRAIN.END_EPOCH': 250, 'TRAIN.LR_STEP': [200, 230],
        'TEST.BATCH_SIZE_PER_GPU': 32, 'TEST.USE_GT_BBOX': True, 'TEST.COCO_BBOX_FILE': '',
    }),
    'ak/kitpose/kitpose_w32_256x256.yaml': ('ak/kitpose_part/2Encoder_w32_256x256_adaW_cutmix_p6.yaml', {
        'GPUS': [0, 1], 'SEED': 42, 'OUTPUT_DIR': 'output/ak_P3_mammal', 'LOG_DIR': 'log/ak_P3_mammal',
        'DATASET.DATASET': 'ak', 'DATASET.TRAIN_SET': 'train', 'DATASET.TEST_SET': 'test',
        'DATASET.ROT_FACTOR': 30, 'DATASET.SCALE_FACTOR': 0.25, 'DATASET.NUM_JOINTS_HALF_BODY': 11,
        'MODEL.PRETRAINED': 'models/pytorch/imagenet/hrnet_w32-36af842e.pth', 'MODEL.NUM_JOINTS': 23,
        'MODEL.NUM_BP': 7, 'MODEL.IMAGE_SIZE': [256, 256], 'MODEL.HEATMAP_SIZE': [64, 64],
        'MODEL.PATCH_SIZE': [64, 64], 'MODEL.SIGMA': 2, 'MODEL.DIM': 1024,
        'MODEL.EXTRA.STAGE4.NUM_CHANNELS': [32, 64, 128, 256], 'LOSS.USE_DIFFERENT_JOINTS_WEIGHT': True,
        'TRAIN.BATCH_SIZE_PER_GPU': 32, 'TRAIN.END_EPOCH': 250, 'TRAIN.LR_STEP': [200, 230],
        'TEST.BATCH_SIZE_PER_GPU': 32, 'TEST.USE_GT_BBOX': True, 'TEST.COCO_BBOX_FILE': '',
    }),
    'ak/kitpose/kitpose_w48_256x256.yaml': ('ak/kitpose_part/2Encoder_w48_256x256_adaW_cutmix_p6.yaml', {
        'GPUS': [0], 'SEED': 42, 'OUTPUT_DIR': 'output/ak_P3_mammal', 'LOG_DIR': 'log/ak_P3_mammal',
        'DATASET.DATASET': 'ak', 'DATASET.TRAIN_SET': 'train', 'DATASET.TEST_SET': 'test',
        'DATASET.ROT_FACTOR': 40, 'DATASET.SCALE_FACTOR': 0.5, 'DATASET.NUM_JOINTS_HALF_BODY': 11,
        'MODEL.PRETRAINED': 'models/pytorch/imagenet/hrnet_w48-8ef0771d.pth', 'MODEL.NUM_JOINTS': 23,
        'MODEL.NUM_BP': 6, 'MODEL.IMAGE_SIZE': [256, 256], 'MODEL.HEATMAP_SIZE': [64, 64],
        'MODEL.PATCH_SIZE': [64, 64], 'MODEL.SIGMA': 2, 'MODEL.DIM': 1024,
        'MODEL.EXTRA.STAGE4.NUM_CHANNELS': [48, 96, 192, 384], 'LOSS.USE_DIFFERENT_JOINTS_WEIGHT': True,
        'TRAIN.BATCH_SIZE_PER_GPU': 32, 'TRAIN.END_EPOCH': 150, 'TRAIN.LR_STEP': [130, 170],
        'TEST.BATCH_SIZE_PER_GPU': 32, 'TEST.USE_GT_BBOX': True, 'TEST.COCO_BBOX_FILE': '',
    }),
    'coco/kitpose/kitpose_w32_256x192.yaml': ('coco/kitpose_part/2Encoder_w32_256x256_adaW_cutmix_p4.yaml', {
        'GPUS': [0, 1], 'SEED': 42, 'OUTPUT_DIR': 'output', 'LOG_DIR': 'log', 'DATASET.DATASET': 'coco',
        'DATASET.TRAIN_SET': 'train2017', 'DATASET.TEST_SET': 'val2017', 'DATASET.ROT_FACTOR': 45,
        'DATASET.SCALE_FACTOR': 0.35, 'DATASET.NUM_JOINTS_HALF_BODY': 8,
        'MODEL.PRETRAINED': 'models/pytorch/imagenet/hrnet_w32-36af842e.pth', 'MODEL.NUM_JOINTS': 17,
        'MODEL.NUM_BP': 4, 'MODEL.IMAGE_SIZE': [192, 256], 'MODEL.HEATMAP_SIZE': [48, 64],
        'MODEL.PATCH_SIZE': [48, 64], 'MODEL.SIGMA': 2, 'MODEL.DIM': 768,
        'MODEL.EXTRA.STAGE4.NUM_CHANNELS': [32, 64, 128, 256], 'LOSS.USE_DIFFERENT_JOINTS_WEIGHT': True,
        'TRAIN.BATCH_SIZE_PER_GPU': 64, 'TRAIN.END_EPOCH': 250, 'TRAIN.LR_STEP': [200, 230],
        'TEST.BATCH_SIZE_PER_GPU': 64, 'TEST.USE_GT_BBOX': False,
        'TEST.COCO_BBOX_FILE': 'data/coco/person_detection_results/COCO_val2017_detections_AP_H_56_person.json',
    }),
    'coco/kitpose/kitpose_w32_384x288.yaml': ('coco/kitpose_part/2Encoder_w32_384x288_adaW_cutmix_p4.yaml', {
        'GPUS': [0, 1], 'SEED': 42, 'OUTPUT_DIR': 'output', 'LOG_DIR': 'log', 'DATASET.DATASET': 'coco',
        'DATASET.TRAIN_SET': 'train2017', 'DATASET.TEST_SET': 'val2017', 'DATASET.ROT_FACTOR': 45,
        'DATASET.SCALE_FACTOR': 0.35, 'DATASET.NUM_JOINTS_HALF_BODY': 8,
        'MODEL.PRETRAINED': 'models/pytorch/imagenet/hrnet_w32-36af842e.pth', 'MODEL.NUM_JOINTS': 17,
        'MODEL.NUM_BP': 4, 'MODEL.IMAGE_SIZE': [288, 384], 'MODEL.HEATMAP_SIZE': [72, 96],
        'MODEL.PATCH_SIZE': [72, 96], 'MODEL.SIGMA': 3, 'MODEL.DIM': 768,
        'MODEL.EXTRA.STAGE4.NUM_CHANNELS': [32, 64, 128, 256], 'LOSS.USE_DIFFERENT_JOINTS_WEIGHT': True,
        'TRAIN.BATCH_SIZE_PER_GPU': 32, 'TRAIN.END_EPOCH': 250, 'TRAIN.LR_STEP': [200, 230],
        'TEST.BATCH_SIZE_PER_GPU': 64, 'TEST.USE_GT_BBOX': True,
        'TEST.COCO_BBOX_FILE': 'data/coco/person_detection_results/COCO_val2017_detections_AP_H_56_person.json',
    }),
    'coco/kitpose/kitpose_w48_256x192.yaml': ('coco/kitpose_part/2Encoder_w48_256x192_adaW_cutmix_p4.yaml', {
        'GPUS': [0, 1], 'SEED': 42, 'OUTPUT_DIR': 'output', 'LOG_DIR': 'log', 'DATASET.DATASET': 'coco',
        'DATASET.TRAIN_SET': 'train2017', 'DATASET.TEST_SET': 'val2017', 'DATASET.ROT_FACTOR': 45,
        'DATASET.SCALE_FACTOR': 0.35, 'DATASET.NUM_JOINTS_HALF_BODY': 8,
        'MODEL.PRETRAINED': 'models/pytorch/imagenet/hrnet_w48-8ef0771d.pth', 'MODEL.NUM_JOINTS': 17,
        'MODEL.NUM_BP': 4, 'MODEL.IMAGE_SIZE': [192, 256], 'MODEL.HEATMAP_SIZE': [48, 64],
        'MODEL.PATCH_SIZE': [48, 64], 'MODEL.SIGMA': 2, 'MODEL.DIM': 768,
        'MODEL.EXTRA.STAGE4.NUM_CHANNELS': [48, 96, 192, 384], 'LOSS.USE_DIFFERENT_JOINTS_WEIGHT': True,
        'TRAIN.BATCH_SIZE_PER_GPU': 64, 'TRAIN.END_EPOCH': 250, 'TRAIN.LR_STEP': [200, 230],
        'TEST.BATCH_SIZE_PER_GPU': 64, 'TEST.USE_GT_BBOX': True,
        'TEST.COCO_BBOX_FILE': 'data/coco/person_detection_results/COCO_val2017_detections_AP_H_56_person.json',
    }),
    'coco/kitpose/kitpose_w48_384x288.yaml': ('coco/kitpose_part/2Encoder_w48_384x288_adaW_cutmix_p4.yaml', {
        'GPUS': [0, 1], 'SEED': 42, 'OUTPUT_DIR': 'output', 'LOG_DIR': 'log', 'DATASET.DATASET': 'coco',
        'DATASET.TRAIN_SET': 'train2017', 'DATASET.TEST_SET': 'val2017', 'DATASET.ROT_FACTOR': 45,
        'DATASET.SCALE_FACTOR': 0.35, 'DATASET.NUM_JOINTS_HALF_BODY': 8,
        'MODEL.PRETRAINED': 'models/pytorch/imagenet/hrnet_w48-8ef0771d.pth', 'MODEL.NUM_JOINTS': 17,
        'MODEL.NUM_BP': 4, 'MODEL.IMAGE_SIZE': [288, 384], 'MODEL.HEATMAP_SIZE': [72, 96],
        'MODEL.PATCH_SIZE': [72, 96], 'MODEL.SIGMA': 3, 'MODEL.DIM': 1728,
        'MODEL.EXTRA.STAGE4.NUM_CHANNELS': [48, 96, 192, 384], 'LOSS.USE_DIFFERENT_JOINTS_WEIGHT': True,
        'TRAIN.BATCH_SIZE_PER_GPU': 64, 'TRAIN.END_EPOCH': 250, 'TRAIN.LR_STEP': [200, 230],
        'TEST.BATCH_SIZE_PER_GPU': 128, 'TEST.USE_GT_BBOX': True,
        'TEST.COCO_BBOX_FILE': 'data/coco/person_detection_results/COCO_val2017_detections_AP_H_56_person.json',
    }),
}

# The published AP-10K W32 256x256 file (experiments/ap10k/kitpose_part/
# 2Encoder_w32_256x256_adaW_cutmix_p4.yaml), every setting, in the published format.
PUBLISHED_AP10K_W32_256 = """\
AUTO_RESUME: true
CUDNN:
  BENCHMARK: true
  DETERMINISTIC: false
  ENABLED: true
DATA_DIR: ''
GPUS: (0,)
OUTPUT_DIR: 'output'
LOG_DIR: 'log'
WORKERS: 8
SEED: 22
PRINT_FREQ: 200
DATASET:
  COLOR_RGB: true
  DATASET: 'ap10k'
  DATA_FORMAT: jpg
  FLIP: true
  NUM_JOINTS_HALF_BODY: 8
  PROB_HALF_BODY: 0.3
  ROOT: 'data/ap10k/'
  ROT_FACTOR: 40
  SCALE_FACTOR: 0.5
  TEST_SET: 'val'
  TRAIN_SET: 'train'
MODEL:
  INIT_WEIGHTS: true
  NAME: kitpose_part
  NUM_JOINTS: 17
  NUM_BP: 4
  PRETRAINED: 'models/pytorch/imagenet/hrnet_w32-36af842e.pth'
  TARGET_TYPE: gaussian
  BASE_CHANNEL: 17
  TRANSFORMER_DEPTH: 2
  TRANSFORMER_HEADS: 1
  TRANSFORMER_MLP_RATIO: 3
  POS_EMBEDDING_TYPE: 'sine-full'
  INIT: true
  DIM: 1024
  PATCH_SIZE: [64, 64]
  IMAGE_SIZE: [256, 256]
  HEATMAP_SIZE: [64, 64]
  SIGMA: 2
  EXTRA:
    PRETRAINED_LAYERS: [conv1, bn1, conv2, bn2, layer1, transition1, stage2, transition2, stage3, transition3, stage4]
    FINAL_CONV_KERNEL: 1
    STAGE2: {NUM_MODULES: 1, NUM_BRANCHES: 2, BLOCK: BASIC, NUM_BLOCKS: [4, 4], NUM_CHANNELS: [32, 64],
             FUSE_METHOD: SUM}
    STAGE3: {NUM_MODULES: 4, NUM_BRANCHES: 3, BLOCK: BASIC, NUM_BLOCKS: [4, 4, 4], NUM_CHANNELS: [32, 64, 128],
             FUSE_METHOD: SUM}
    STAGE4: {NUM_MODULES: 3, NUM_BRANCHES: 4, BLOCK: BASIC, NUM_BLOCKS: [4, 4, 4, 4],
             NUM_CHANNELS: [32, 64, 128, 256], FUSE_METHOD: SUM}
LOSS:
  USE_TARGET_WEIGHT: true
  USE_DIFFERENT_JOINTS_WEIGHT: true
TRAIN:
  BATCH_SIZE_PER_GPU: 64
  SHUFFLE: true
  BEGIN_EPOCH: 0
  END_EPOCH: 250
  OPTIMIZER: adam
  MODEL_LR: 0.0005
  LR_END: 5e-6
  LR_FACTOR: 0.1
  LR_STEP: [200, 230]
  WD: 0.0001
  GAMMA1: 0.99
  GAMMA2: 0.0
  MOMENTUM: 0.9
  NESTEROV: false
TEST:
  BATCH_SIZE_PER_GPU: 64
  COCO_BBOX_FILE: ''
  BBOX_THRE: 1.0
  IMAGE_THRE: 0.0
  IN_VIS_THRE: 0.2
  MODEL_FILE: 'output/ap10k/kitpose_part/2Encoder_w32_256x256_adaW_cutmix_p4_map766_best/model_best.pth'
  NMS_THRE: 1.0
  OKS_THRE: 0.9
  USE_GT_BBOX: true
  FLIP_TEST: true
  POST_PROCESS: true
  BLUR_KERNEL: 11
DEBUG:
  DEBUG: true
  SAVE_BATCH_IMAGES_GT: false
  SAVE_BATCH_IMAGES_PRED: false
  SAVE_HEATMAPS_GT: false
  SAVE_HEATMAPS_PRED: false
"""
PUBLISHED_AP10K_W32_256_COUNTS = (72_647_257, 68_447_833)  # (all, used) parameters of the published model


def _value(cfg, key):
    for part in key.split("."):
        cfg = cfg[part]
    return list(cfg) if isinstance(cfg, tuple) else cfg


def _flat(mapping, prefix=""):
    for key, value in mapping.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _config_warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.name.startswith("kitpose.config") and
            r.levelno >= logging.WARNING]


# ------------------------------------------------------------------ our 13 files = the published values
def test_table_covers_the_13_files():
    assert sorted(PUBLISHED) == sorted(str(p.relative_to(EXPERIMENTS))
                                       for p in EXPERIMENTS.glob("*/kitpose/*.yaml"))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_experiment_equals_published(name, caplog):
    with caplog.at_level(logging.WARNING):
        cfg = load_config(str(EXPERIMENTS / name))
    expected = {**PUBLISHED_COMMON, **PUBLISHED[name][1]}
    wrong = {key: (_value(cfg, key), value) for key, value in expected.items() if _value(cfg, key) != value}
    assert not wrong, f"{name} differs from {PUBLISHED[name][0]} (ours, published): {wrong}"
    assert not _config_warnings(caplog)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_experiment_sets_no_published_only_key(name):
    keys = dict(_flat(yaml.safe_load((EXPERIMENTS / name).read_text())))
    assert not [key for key in keys if key in PUBLISHED_ONLY_KEYS or key.split(".")[0] in PUBLISHED_ONLY_SECTIONS]


# ------------------------------------------------------------------ published-format files
def test_published_only_keys_are_not_in_the_schema():
    defaults = dict(_flat(get_default_config()))
    assert not [key for key in PUBLISHED_ONLY_KEYS if key in defaults]
    assert not [section for section in PUBLISHED_ONLY_SECTIONS if section in get_default_config()]
    assert all(target in defaults and alias in PUBLISHED_ONLY_KEYS for alias, target in ALIASES.items())
    assert all(entry.note for entry in PUBLISHED_ONLY_KEYS.values())


def test_published_format_file_loads_and_builds(tmp_path, caplog):
    path = tmp_path / "2Encoder_w32_256x256_adaW_cutmix_p4.yaml"
    path.write_text(PUBLISHED_AP10K_W32_256)
    with caplog.at_level(logging.WARNING):
        cfg = load_config(str(path))
    assert cfg.TRAIN.LR == 0.0005 and cfg.TRAIN.LR_END == 5e-6 and cfg.SEED == 22
    assert not _config_warnings(caplog)  # the published values of the dropped keys change nothing
    with torch.device("meta"):
        assert count_parameters(build_model(cfg)) == PUBLISHED_AP10K_W32_256_COUNTS
    # it configures what our file for it does, key for key
    ours = dict(_flat(load_config(str(EXPERIMENTS / "ap10k/kitpose/kitpose_w32_256x256.yaml"))))
    published = dict(_flat(cfg))
    skip = {"CFG_NAME", "TEST.MODEL_FILE", "TEST.SHIFT_HEATMAP"}  # the published default is false; our file says so
    assert {k: (published[k], ours[k]) for k in ours if k not in skip and published[k] != ours[k]} == {}
    assert ours["TEST.SHIFT_HEATMAP"] is False


def test_tiny_published_format_file_builds(reference_fixture, tmp_path):
    """The reference model's config plus TRAIN.MODEL_LR and every other published-only key."""
    data = yaml.safe_load(reference_fixture["config_yaml"])
    for key, entry in PUBLISHED_ONLY_KEYS.items():
        *sections, leaf = key.split(".")
        node = data
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = entry.default
    data["TRAIN"]["MODEL_LR"] = 0.0007
    path = tmp_path / "tiny_published.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(str(path))
    assert cfg.TRAIN.LR == 0.0007
    assert count_parameters(build_model(cfg))[0] == reference_fixture["num_params"]


def test_model_lr_and_lr_disagreeing_names_both_and_file(tmp_path):
    path = tmp_path / "both.yaml"
    path.write_text("TRAIN:\n  LR: 0.001\n  MODEL_LR: 0.0005\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert "TRAIN.LR" in str(err.value) and "TRAIN.MODEL_LR" in str(err.value) and str(path) in str(err.value)


def test_model_lr_and_lr_agreeing(tmp_path):
    path = tmp_path / "both.yaml"
    path.write_text("TRAIN:\n  MODEL_LR: 5.0e-4\n  LR: 0.0005\n")
    assert load_config(str(path)).TRAIN.LR == 0.0005


def test_model_lr_on_the_command_line(tmp_path):
    assert load_config(None, ["TRAIN.MODEL_LR", "0.002"]).TRAIN.LR == 0.002
    with pytest.raises(ConfigError, match=r"command line.*TRAIN\.MODEL_LR.*TRAIN\.LR"):
        load_config(None, ["TRAIN.MODEL_LR", "0.002", "TRAIN.LR", "0.001"])
    path = tmp_path / "published.yaml"
    path.write_text("TRAIN:\n  MODEL_LR: 0.0005\n")
    assert load_config(str(path), ["TRAIN.LR", "0.001"]).TRAIN.LR == 0.001  # a later source overrides


@pytest.mark.parametrize("key, value", [("DATASET.SELECT_DATA", "true"), ("DATASET.DATA_FORMAT", "zip"),
                                        ("MODEL.TARGET_TYPE", "offset")])
def test_unsupported_published_setting_is_refused(key, value, tmp_path):
    section, leaf = key.split(".")
    path = tmp_path / "published.yaml"
    path.write_text(f"{section}:\n  {leaf}: {value}\n")
    for source, args in ((str(path), (str(path),)), ("command line", (None, [key, value]))):
        with pytest.raises(ConfigError) as err:
            load_config(*args)
        assert key in str(err.value) and source in str(err.value)
    # the published default itself is fine
    default = {"DATASET.SELECT_DATA": "false", "DATASET.DATA_FORMAT": "jpg", "MODEL.TARGET_TYPE": "gaussian"}[key]
    load_config(None, [key, default])


@pytest.mark.parametrize("key, value", [("DATASET.HYBRID_JOINTS_TYPE", "hybrid"), ("DEBUG.SAVE_HEATMAPS_PRED", "true")])
def test_ignored_published_setting_warns(key, value, tmp_path, caplog):
    section, leaf = key.split(".")
    path = tmp_path / "published.yaml"
    path.write_text(f"{section}:\n  {leaf}: {value}\n")
    with caplog.at_level(logging.WARNING):
        load_config(str(path))
        load_config(None, [key, value])
    warnings = _config_warnings(caplog)
    assert len(warnings) == 2 and all(key in w for w in warnings)


def test_published_only_key_checked(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("MODEL:\n  BASE_CHANNEL: wide\n")
    with pytest.raises(ConfigError, match="MODEL.BASE_CHANNEL"):
        load_config(str(path))
    path.write_text("DEBUG:\n  SAVE_EVERYTHING: true\n")
    with pytest.raises(ConfigError, match="DEBUG.SAVE_EVERYTHING"):
        load_config(str(path))
    cfg = load_config(None, ["DEBUG.DEBUG", "true", "TRAIN.GAMMA1", "0.5"])
    assert "DEBUG" not in cfg and "GAMMA1" not in cfg.TRAIN


def test_string_values_stay_strings(tmp_path):
    path = tmp_path / "strings.yaml"
    path.write_text("DATA_DIR: ''\nDATASET:\n  TRAIN_SET: '2017'\nTEST:\n  MODEL_FILE: ''\n")
    cfg = load_config(str(path), ["DATASET.TEST_SET", "'val'"])
    assert (cfg.DATA_DIR, cfg.DATASET.TRAIN_SET, cfg.TEST.MODEL_FILE, cfg.DATASET.TEST_SET) == ("", "2017", "", "val")
