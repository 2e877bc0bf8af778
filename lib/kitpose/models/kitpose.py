"""Model assembly: KITPose (HRNet backbone + KIT head) and the plain HRNet baseline."""
from typing import NamedTuple, Optional

import torch
from torch import nn

from .checkpoint import is_unused_parameter, unwrap_model
from .hrnet import HRNetBackbone
from .kit_head import KITHead

MODEL_NAMES = ("kitpose_part", "pose_hrnet", "centroid_hrnet")


class ModelOutput(NamedTuple):
    intermediate: Optional[torch.Tensor]  # T, backbone keypoint maps [B,K,h,w] (None for pose_hrnet)
    parts: Optional[torch.Tensor]         # body-part maps [B,P,h,w] (None without prompts / pose_hrnet)
    heatmaps: torch.Tensor                # final heatmaps [B,K,h,w]


class KITPose(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        m = cfg.MODEL
        heatmap_w, heatmap_h = m.HEATMAP_SIZE
        self.pre_feature = HRNetBackbone(m.EXTRA, m.NUM_JOINTS)
        self.channelformer = KITHead(
            in_channels=self.pre_feature.out_channels, num_keypoints=m.NUM_JOINTS, num_parts=m.NUM_BP,
            heatmap_hw=(heatmap_h, heatmap_w), dim=m.DIM, depth=m.TRANSFORMER_DEPTH,
            heads=m.TRANSFORMER_HEADS, mlp_ratio=m.TRANSFORMER_MLP_RATIO,
            pos_embedding_type=m.POS_EMBEDDING_TYPE, emb_dropout=m.EMB_DROPOUT, dropout=m.DROPOUT,
            kmedoids_iters=m.KMEDOIDS_ITERS, kmedoids_chunk=m.KMEDOIDS_CHUNK, init=m.INIT)

    def forward(self, images):
        features, keypoint_maps = self.pre_feature(images)
        parts, heatmaps = self.channelformer(features, keypoint_maps)
        return ModelOutput(keypoint_maps, parts, heatmaps)

    def init_weights(self, pretrained="", pretrained_layers=("*",)):
        self.pre_feature.init_weights(pretrained, pretrained_layers)


class PoseHRNet(HRNetBackbone):
    """Plain HRNet baseline: heatmaps = final_layer(F). Keys as in HRNet pose checkpoints (no prefix)."""

    def __init__(self, cfg):
        super().__init__(cfg.MODEL.EXTRA, cfg.MODEL.NUM_JOINTS)

    def forward(self, images):
        return ModelOutput(None, None, self.final_layer(self.features(images)))


def set_part_maps(model, enabled):
    """Whether a KITPose model computes its part maps (ModelOutput.parts); returns the model.

    Neither loss reads them and keypoints are decoded from the final heatmaps only, so
    training and inference switch them off (the heatmaps do not change). Models without
    part prompts, and pose_hrnet, are left as they are.
    """
    head = getattr(model, "channelformer", None)
    if isinstance(head, KITHead):
        head.return_part_maps = bool(enabled)
    return model


def check_model_config(cfg):
    """Raise a clear error for model settings the architecture cannot honour."""
    m = cfg.MODEL
    if m.NAME not in MODEL_NAMES:
        raise ValueError(f"MODEL.NAME {m.NAME!r}: expected one of {MODEL_NAMES}")
    image_w, image_h = m.IMAGE_SIZE
    heatmap = list(m.HEATMAP_SIZE)
    if heatmap != [image_w // 4, image_h // 4] or image_w % 4 or image_h % 4:
        raise ValueError(f"MODEL.HEATMAP_SIZE {heatmap} must be MODEL.IMAGE_SIZE {list(m.IMAGE_SIZE)} / 4 "
                         f"(HRNet outputs at stride 4)")
    stride = 4 * 2 ** (int(m.EXTRA.STAGE4.NUM_BRANCHES) - 1)
    if image_w % stride or image_h % stride:
        raise ValueError(f"MODEL.IMAGE_SIZE {list(m.IMAGE_SIZE)} must be divisible by {stride} "
                         f"(the lowest HRNet branch runs at stride {stride})")
    if m.NAME == "kitpose_part" and list(m.PATCH_SIZE) != heatmap:
        raise ValueError(f"MODEL.PATCH_SIZE {list(m.PATCH_SIZE)} must equal MODEL.HEATMAP_SIZE {heatmap}: "
                         f"KITPose makes one token per whole keypoint map")


def build_model(cfg, is_train=False):
    """MODEL.NAME 'kitpose_part' -> KITPose, 'pose_hrnet' -> HRNet baseline, 'centroid_hrnet' -> the same
    HRNet with MODEL.NUM_JOINTS (1) anchor maps (the detection stage).

    MODEL.INIT (KIT head: Linear trunc-normal .02, LayerNorm 1/0) applies at construction.
    With is_train and MODEL.INIT_WEIGHTS the backbone gets the training init and the
    ImageNet weights of MODEL.PRETRAINED (MODEL.EXTRA.PRETRAINED_LAYERS).
    """
    check_model_config(cfg)
    model = KITPose(cfg) if cfg.MODEL.NAME == "kitpose_part" else PoseHRNet(cfg)
    if is_train and cfg.MODEL.INIT_WEIGHTS:
        model.init_weights(cfg.MODEL.PRETRAINED, tuple(cfg.MODEL.EXTRA.PRETRAINED_LAYERS))
    return model


def count_parameters(model):
    """(all, used) parameter counts: all = every parameter (frozen ones included, BN buffers
    excluded); used = all minus the two published parameters the forward never reads."""
    model = unwrap_model(model)
    total, unused = 0, 0
    for name, parameter in model.named_parameters():
        total += parameter.numel()
        if is_unused_parameter(name):
            unused += parameter.numel()
    return total, total - unused
