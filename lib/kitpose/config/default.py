"""Every configuration key the project knows, with its default and meaning.

The key names follow the published KITPose / HRNet YAML files. Keys that only
the published files carry (no code here reads them, e.g. TRAIN.MODEL_LR, the
published name of TRAIN.LR, or the DEBUG section) are listed in published.py,
so that the published files load unchanged.
"""
from yacs.config import CfgNode as CN

_C = CN()

# ---------------------------------------------------------------- run / system
_C.OUTPUT_DIR = "output"          # checkpoints, results: OUTPUT_DIR/<dataset>/<model>/<cfg name>/
_C.LOG_DIR = "log"                # tensorboard runs: LOG_DIR/<dataset>/<model>/<cfg name>_<time>/
_C.DATA_DIR = ""                  # prefix joined to DATASET.ROOT and TEST.COCO_BBOX_FILE when relative
_C.GPUS = (0,)                    # GPU ids; more than one visible -> torch.nn.DataParallel
_C.WORKERS = 4                    # DataLoader worker processes
_C.PRINT_FREQ = 20                # log every N iterations
_C.AUTO_RESUME = False            # continue from OUTPUT_DIR/.../checkpoint.pth when it exists
_C.PIN_MEMORY = True              # DataLoader pin_memory (CUDA only)
_C.PERSISTENT_WORKERS = True      # keep DataLoader workers alive between epochs
_C.SEED = -1                      # >= 0: seed python, numpy and torch (and the data workers)
_C.CFG_NAME = ""                  # set by load_config to the YAML file stem (names the output folders)

_C.CUDNN = CN()
_C.CUDNN.BENCHMARK = True         # cudnn autotuner
_C.CUDNN.DETERMINISTIC = False    # deterministic cudnn kernels
_C.CUDNN.ENABLED = True           # use cudnn at all

# ---------------------------------------------------------------- model
_C.MODEL = CN()
_C.MODEL.NAME = "kitpose_part"    # 'kitpose_part' (HRNet + KIT head) or 'pose_hrnet' (plain baseline); 'centroid_hrnet':
                                  # the detection stage, HRNet with one anchor map on whole frames (CENTROID section,
                                  # NUM_JOINTS 1)
_C.MODEL.INIT_WEIGHTS = True      # backbone init (normal std .001) then MODEL.PRETRAINED
_C.MODEL.PRETRAINED = ""          # ImageNet HRNet weights, e.g. models/pytorch/imagenet/hrnet_w32-36af842e.pth
_C.MODEL.INIT = True              # KIT head init: Linear trunc-normal std .02, LayerNorm 1/0
_C.MODEL.INIT_FROM = ""           # fine-tuning: a trained checkpoint (published or own) to start from; every tensor
                                  # that fits loads, those sized by NUM_JOINTS / NUM_BP start fresh (see INIT_KEYPOINT_MAP);
                                  # applied after MODEL.PRETRAINED, ignored when AUTO_RESUME continues a run
_C.MODEL.INIT_META = ""           # the INIT_FROM checkpoint's keypoints: a built-in metainfo name ('ap10k', ...) or a
                                  # metainfo JSON; needed to name source keypoints in INIT_KEYPOINT_MAP
_C.MODEL.INIT_KEYPOINT_MAP = []   # keypoint rows carried over from INIT_FROM, 'source:target' (names or 0-based
                                  # indices), e.g. ['Nose:snout', 'Root of tail:tailbase']; empty with INIT_META: the
                                  # keypoints whose names agree (side and words: Nose = snout); ['none']: no row carried
_C.MODEL.NUM_JOINTS = 17          # K keypoints
_C.MODEL.NUM_BP = 4               # P body-part prompts (k-medoids clusters); 0 = no part prompts
_C.MODEL.IMAGE_SIZE = [256, 256]  # network input [width, height]
_C.MODEL.HEATMAP_SIZE = [64, 64]  # output heatmap [width, height] (= IMAGE_SIZE / 4)
_C.MODEL.PATCH_SIZE = [64, 64]    # token patch [width, height]; must equal HEATMAP_SIZE (one token per keypoint map)
_C.MODEL.SIGMA = 2.0              # Gaussian target sigma in heatmap pixels
_C.MODEL.DIM = 1024               # D, transformer token width
_C.MODEL.TRANSFORMER_DEPTH = 2    # number of pre-norm transformer layers
_C.MODEL.TRANSFORMER_HEADS = 1    # attention heads
_C.MODEL.TRANSFORMER_MLP_RATIO = 3  # FFN hidden width = DIM * ratio
_C.MODEL.POS_EMBEDDING_TYPE = "sine-full"  # 'none' | 'sine' | 'sine-full' | 'learnable'
_C.MODEL.EMB_DROPOUT = 0.0        # dropout on the token sequence after position embedding
_C.MODEL.DROPOUT = 0.0            # dropout inside the transformer FFN
_C.MODEL.KMEDOIDS_ITERS = 40      # maximum k-medoids iterations (published: 40)
_C.MODEL.KMEDOIDS_CHUNK = 8       # samples clustered together, as published (in float64 the chunk can decide
                                  # only exact distance ties)
_C.MODEL.EXTRA = CN()             # HRNet structure: STAGE1-4, FINAL_CONV_KERNEL, PRETRAINED_LAYERS (strict)
_C.MODEL.EXTRA.PRETRAINED_LAYERS = ["*"]  # first name components loaded from MODEL.PRETRAINED ('*' = all)
_C.MODEL.EXTRA.FINAL_CONV_KERNEL = 1
_C.MODEL.EXTRA.STEM_INPLANES = 64
_C.MODEL.EXTRA.STAGE1 = CN()       # layer1 at 1/4 resolution (published: 4 Bottlenecks of 64 -> 256 channels)
_C.MODEL.EXTRA.STAGE1.NUM_MODULES = 1   # must be 1 (HRNet YAML naming)
_C.MODEL.EXTRA.STAGE1.NUM_BRANCHES = 1  # must be 1
_C.MODEL.EXTRA.STAGE1.BLOCK = "BOTTLENECK"  # 'BOTTLENECK' (output 4 x channels) | 'BASIC'
_C.MODEL.EXTRA.STAGE1.NUM_BLOCKS = [4]
_C.MODEL.EXTRA.STAGE1.NUM_CHANNELS = [64]
_C.MODEL.EXTRA.STAGE1.FUSE_METHOD = "SUM"   # accepted (one branch: nothing to fuse)
_C.MODEL.EXTRA.STAGE2 = CN()
_C.MODEL.EXTRA.STAGE2.NUM_MODULES = 1
_C.MODEL.EXTRA.STAGE2.NUM_BRANCHES = 2
_C.MODEL.EXTRA.STAGE2.BLOCK = "BASIC"
_C.MODEL.EXTRA.STAGE2.NUM_BLOCKS = [4, 4]
_C.MODEL.EXTRA.STAGE2.NUM_CHANNELS = [32, 64]
_C.MODEL.EXTRA.STAGE2.FUSE_METHOD = "SUM"
_C.MODEL.EXTRA.STAGE3 = CN()
_C.MODEL.EXTRA.STAGE3.NUM_MODULES = 4
_C.MODEL.EXTRA.STAGE3.NUM_BRANCHES = 3
_C.MODEL.EXTRA.STAGE3.BLOCK = "BASIC"
_C.MODEL.EXTRA.STAGE3.NUM_BLOCKS = [4, 4, 4]
_C.MODEL.EXTRA.STAGE3.NUM_CHANNELS = [32, 64, 128]
_C.MODEL.EXTRA.STAGE3.FUSE_METHOD = "SUM"
_C.MODEL.EXTRA.STAGE4 = CN()
_C.MODEL.EXTRA.STAGE4.NUM_MODULES = 3
_C.MODEL.EXTRA.STAGE4.NUM_BRANCHES = 4
_C.MODEL.EXTRA.STAGE4.BLOCK = "BASIC"
_C.MODEL.EXTRA.STAGE4.NUM_BLOCKS = [4, 4, 4, 4]
_C.MODEL.EXTRA.STAGE4.NUM_CHANNELS = [32, 64, 128, 256]
_C.MODEL.EXTRA.STAGE4.FUSE_METHOD = "SUM"

# ---------------------------------------------------------------- loss
_C.LOSS = CN()
_C.LOSS.FINAL = "adaptive_mse"    # loss on final heatmaps: 'adaptive_mse' | 'mse' | 'ohkm'
_C.LOSS.INTERMEDIATE = "ghrl"     # loss on intermediate maps: 'ghrl' | 'mse' | 'ohkm' | 'none'
_C.LOSS.INTERMEDIATE_WEIGHT = 1.0 # factor on the intermediate loss
_C.LOSS.ADAPTIVE_BETA = 1.0       # beta of |p-g|^beta in the adaptive-weight MSE
_C.LOSS.OHKM_TOPK = 8             # hardest joints kept by OHKM
_C.LOSS.USE_OHKM = False          # accepted for HRNet YAMLs: true selects 'ohkm' for LOSS.FINAL
_C.LOSS.TOPK = 8                  # HRNet name for LOSS.OHKM_TOPK
_C.LOSS.USE_TARGET_WEIGHT = True  # multiply per-joint losses by target weights
_C.LOSS.USE_DIFFERENT_JOINTS_WEIGHT = False  # target weights x the metainfo's joint_weights (those the
                                  # published loader applies: all 1 for ap10k, coco, ak; 1/1.2/1.5 animalpose)

# ---------------------------------------------------------------- dataset
_C.DATASET = CN()
_C.DATASET.ROOT = "data/ap10k/"   # dataset folder (published layout, see README)
_C.DATASET.DATASET = "ap10k"      # 'ap10k' | 'animalpose' | 'ak' | 'coco' | 'custom'
_C.DATASET.TRAIN_SET = "train"
_C.DATASET.TEST_SET = "val"
_C.DATASET.META = ""              # custom: metainfo JSON (names, flip pairs, sigmas, ...)
_C.DATASET.TRAIN_ANN = ""         # custom: training annotation file (relative to ROOT or absolute)
_C.DATASET.TEST_ANN = ""          # custom: test annotation file
_C.DATASET.IMAGE_DIR = ""         # custom: image folder (relative to ROOT or absolute)
_C.DATASET.CHECK_IMAGES = True    # training: read every image file's header before the first step and stop
                                  # listing every unreadable one (about 1 s per 10k files on a warm cache)
# augmentation
_C.DATASET.FLIP = True            # random horizontal flip (p 0.5) with flip pairs
_C.DATASET.SCALE_FACTOR = 0.25    # random scale: box scale x clip(1 + N(0, 1) sf, 1 - sf, 1 + sf)
_C.DATASET.ROT_FACTOR = 30        # random rotation clip(N(0, 1) rf, -2 rf, 2 rf) degrees, with probability ROT_PROB
_C.DATASET.ROT_PROB = 0.6         # share of training samples rotated (published 0.6; imported top views keep it
                                  # with ROT_FACTOR 180)
_C.DATASET.PROB_HALF_BODY = 0.0   # probability of a half-body crop
_C.DATASET.NUM_JOINTS_HALF_BODY = 8  # visible joints needed for a half-body crop
_C.DATASET.COLOR_RGB = True       # feed RGB (True) or BGR images
_C.DATASET.CUTMIX = True          # CutMix batch transform during training (published: on)
# CutMix box, joint weights A/B and lam (an unknown value is an error):
#   'published': exactly the published training: box centre drawn as (row, col), heatmap box = image box
#                floored by the stride, joints located by the arg-max with x tested against the row range
#                and y against the column range (bounds inclusive), A's joints read from the mixed target,
#                lam from the clipped image box
#   'corrected': the evident intent, an ablation: box snapped to heatmap cells, joints tested against the
#                pasted region, A's joints from its own target, lam from the pasted area
_C.DATASET.CUTMIX_WEIGHTS = "published"
_C.DATASET.CUTMIX_PROB = 1.0      # probability that a batch is mixed (published: 1.0, every batch)

# ---------------------------------------------------------------- training
_C.TRAIN = CN()
_C.TRAIN.LR_FACTOR = 0.1          # MultiStep decay factor
_C.TRAIN.LR_STEP = [90, 110]      # MultiStep epochs
_C.TRAIN.LR = 0.001               # learning rate (the published files call it TRAIN.MODEL_LR)
_C.TRAIN.LR_END = 1e-5            # cosine schedule floor
_C.TRAIN.LR_SCHEDULER = "multistep"  # 'multistep' | 'cosine'
_C.TRAIN.WARMUP_EPOCHS = 0.0      # linear warmup length (epochs, fractional allowed)
_C.TRAIN.WARMUP_FACTOR = 0.001    # lr multiplier at the start of warmup
_C.TRAIN.WARMUP_PER_ITER = True   # warmup lr rises every iteration (False: once per epoch)
_C.TRAIN.OPTIMIZER = "adam"       # 'adam' | 'adamw' | 'sgd'
_C.TRAIN.FUSED_OPTIMIZER = False  # PyTorch's fused optimiser kernel (CPU and CUDA): the same update to the
                                  # last bits, several times faster than the loop over parameters
_C.TRAIN.MOMENTUM = 0.9           # SGD momentum
_C.TRAIN.WD = 0.0001              # weight decay
_C.TRAIN.PUBLISHED_NO_DECAY = True  # quirk: the published Adam groups never received WD; true reproduces that
_C.TRAIN.NESTEROV = False         # SGD Nesterov
_C.TRAIN.BACKBONE_LR_MULT = 1.0   # lr multiplier of the backbone parameter group
_C.TRAIN.CLIP_GRAD = 0.0          # > 0: clip the global grad norm to this value
_C.TRAIN.BEGIN_EPOCH = 0
_C.TRAIN.END_EPOCH = 140
_C.TRAIN.BATCH_SIZE_PER_GPU = 32
_C.TRAIN.SHUFFLE = True
_C.TRAIN.VAL_EVERY = 1            # validate every N epochs (and always after the last)
_C.TRAIN.AMP = "none"             # mixed precision: 'none' | 'bf16' | 'fp16' on CUDA; on the CPU 'bf16' where it
                                  # has native bfloat16 (AVX-512 BF16 / AMX; else float32, logged)
_C.TRAIN.CHANNELS_LAST = False    # channels_last memory format
_C.TRAIN.COMPILE = False          # torch.compile the model (CUDA)

# ---------------------------------------------------------------- centroid detection stage (MODEL.NAME centroid_hrnet)
# One sample per image: the whole frame letterboxed into MODEL.IMAGE_SIZE (aspect ratio kept), augmented
# with DATASET.SCALE_FACTOR / ROT_FACTOR / ROT_PROB / FLIP about the input's centre; the target is one
# Gaussian (MODEL.SIGMA, heatmap pixels) per animal at its anchor, the maximum over the animals.
_C.CENTROID = CN()
_C.CENTROID.ANCHOR = ""           # the keypoint (name) that anchors an animal where it is labelled; '' or unlabelled:
                                  # the centre of the box of its labelled keypoints
_C.CENTROID.PEAK_THRESHOLD = 0.2  # a found animal is a local maximum of the map above this
_C.CENTROID.MIN_DISTANCE = 2      # heatmap pixels: peaks closer than this are one animal (the max-pool radius)
_C.CENTROID.BOX_SIZE = [0.0, 0.0] # [w, h] frame pixels of the box given to the pose stage around each found anchor
                                  # (import_labels: the labelled boxes' 90th-percentile longer side); needed by infer.py
_C.CENTROID.MATCH_DISTANCE = 0.25 # validation: a peak finds a labelled animal within this x its box's longer side
                                  # (one peak per animal, Hungarian matching); the primary metric is F1

# ---------------------------------------------------------------- testing
_C.TEST = CN()
_C.TEST.BATCH_SIZE_PER_GPU = 32
_C.TEST.FLIP_TEST = True          # average with the flipped-image heatmaps
_C.TEST.POST_PROCESS = True       # DARK refinement of the arg-max
_C.TEST.SHIFT_HEATMAP = False     # shift flipped-back heatmaps one pixel right before averaging (HRNet's
                                  # correction for its w/2 crop centre; the published validation never shifts)
_C.TEST.BLUR_KERNEL = 11          # DARK Gaussian blur kernel
_C.TEST.USE_GT_BBOX = True        # GT boxes (True) or detector boxes from COCO_BBOX_FILE
_C.TEST.IMAGE_THRE = 0.0          # detector box score threshold
_C.TEST.USE_DET_SCORE = False     # multiply detector box scores into the instance scores; the published
                                  # loaders give every detector box score 1 (false reproduces them)
_C.TEST.SOFT_NMS = False          # soft OKS-NMS instead of OKS-NMS
_C.TEST.OKS_THRE = 0.9            # OKS-NMS threshold
_C.TEST.IN_VIS_THRE = 0.2         # keypoint maxima above this count in the instance score
_C.TEST.COCO_BBOX_FILE = ""       # detector boxes in COCO detection-results format
_C.TEST.MODEL_FILE = ""           # checkpoint to test
_C.TEST.METRIC = ""               # '' = the metainfo's 'metric' (AnimalKingdom: 'pck', else 'oks'); or 'oks' | 'pck'
_C.TEST.PCK_THRE = 0.05           # PCK threshold, fraction of max(box w, box h)
_C.TEST.FUSE_BN = True            # inference fast path: fold BatchNorm into convolutions
_C.TEST.CHANNELS_LAST = True      # inference fast path: channels_last
_C.TEST.CPU_KERNELS = True        # inference fast path (CPU): oneDNN conv+ReLU(+residual), linear(+GELU)
_C.TEST.COMPILE = False           # torch.compile the inference model (CUDA; CPU needs a C++ compiler)
_C.TEST.AMP = "none"              # inference autocast: 'none' | 'bf16' (CUDA or CPU) | 'fp16' (CUDA)
_C.TEST.NUM_VIS = 0               # test.py draws this many images with predicted skeletons


def get_default_config():
    """A fresh, mutable copy of the defaults."""
    return _C.clone()
