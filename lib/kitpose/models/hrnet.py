"""HRNet backbone ("pose_hrnet"): stem, layer1, stages 2-4 with multi-resolution fusion.

Module names reproduce the published checkpoint keys (``conv1``, ``layer1``,
``transition1``, ``stage2.0.branches.1.3.conv2`` ...), so the backbone of an official
KITPose checkpoint (prefix ``pre_feature.``) and plain HRNet weights load unchanged.
"""
import logging

from torch import nn

from .checkpoint import load_imagenet_weights

logger = logging.getLogger(__name__)


def conv3x3(in_channels, out_channels, stride=1):
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels, channels, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels, channels, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, channels * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


BLOCKS = {"BASIC": BasicBlock, "BOTTLENECK": Bottleneck}


def make_blocks(block, in_channels, channels, num_blocks, stride=1):
    """`num_blocks` residual blocks; the first gets a 1x1 conv + BN shortcut when shapes change."""
    out_channels = channels * block.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels))
    layers = [block(in_channels, channels, stride, downsample)]
    layers += [block(out_channels, channels) for _ in range(1, num_blocks)]
    return nn.Sequential(*layers)


def downsample_chain(in_channels, out_channels, steps):
    """`steps` conv3x3 stride-2 + BN; every step but the last keeps `in_channels` and adds ReLU."""
    chain = []
    for step in range(steps):
        if step == steps - 1:
            chain.append(nn.Sequential(conv3x3(in_channels, out_channels, 2), nn.BatchNorm2d(out_channels)))
        else:
            chain.append(nn.Sequential(conv3x3(in_channels, in_channels, 2), nn.BatchNorm2d(in_channels),
                                       nn.ReLU(inplace=True)))
    return nn.Sequential(*chain)


class HighResolutionModule(nn.Module):
    """Parallel branches of residual blocks followed by an all-to-all resolution fusion (SUM)."""

    def __init__(self, block, num_blocks, in_channels, channels, multi_scale_output=True):
        super().__init__()
        num_branches = len(channels)
        if not (len(num_blocks) == len(in_channels) == num_branches):
            raise ValueError(f"HRNet module: NUM_BLOCKS {list(num_blocks)}, input channels {list(in_channels)} "
                             f"and NUM_CHANNELS {list(channels)} must all have NUM_BRANCHES entries")
        self.num_branches = num_branches
        self.branches = nn.ModuleList(
            make_blocks(block, in_channels[i], channels[i], num_blocks[i]) for i in range(num_branches))
        self.out_channels = [c * block.expansion for c in channels]
        self.fuse_layers = self._make_fuse_layers(multi_scale_output) if num_branches > 1 else None
        self.relu = nn.ReLU(inplace=True)

    def _make_fuse_layers(self, multi_scale_output):
        widths = self.out_channels
        rows = []
        for target in range(self.num_branches if multi_scale_output else 1):
            row = []
            for source in range(self.num_branches):
                if source > target:
                    row.append(nn.Sequential(
                        nn.Conv2d(widths[source], widths[target], kernel_size=1, bias=False),
                        nn.BatchNorm2d(widths[target]),
                        nn.Upsample(scale_factor=2 ** (source - target), mode="nearest")))
                elif source == target:
                    row.append(None)
                else:
                    row.append(downsample_chain(widths[source], widths[target], target - source))
            rows.append(nn.ModuleList(row))
        return nn.ModuleList(rows)

    def forward(self, inputs):
        branch_outputs = [branch(x) for branch, x in zip(self.branches, inputs)]
        if self.fuse_layers is None:
            return branch_outputs
        fused = []
        for target, row in enumerate(self.fuse_layers):
            total = branch_outputs[0] if target == 0 else row[0](branch_outputs[0])
            for source in range(1, self.num_branches):
                x = branch_outputs[source]
                total = total + (x if source == target else row[source](x))
            fused.append(self.relu(total))
        return fused


def _stage1_layout(stage_cfg):
    """(block, channels, blocks) of layer1 from MODEL.EXTRA.STAGE1; published: 4 Bottlenecks of 64.

    HRNet's own YAMLs name this node STAGE1 (one module, one branch). Smaller settings exist
    for CPU-sized models, whose cost the 256-channel layer1 at 1/4 resolution would dominate.
    """
    if stage_cfg is None:
        return Bottleneck, 64, 4
    if int(stage_cfg.get("NUM_MODULES", 1)) != 1 or int(stage_cfg.get("NUM_BRANCHES", 1)) != 1:
        raise ValueError(f"MODEL.EXTRA.STAGE1: NUM_MODULES and NUM_BRANCHES must be 1, got "
                         f"{stage_cfg.get('NUM_MODULES')} and {stage_cfg.get('NUM_BRANCHES')}")
    block_name = stage_cfg.get("BLOCK", "BOTTLENECK")
    if block_name not in BLOCKS:
        raise ValueError(f"MODEL.EXTRA.STAGE1.BLOCK {block_name!r}: expected one of {sorted(BLOCKS)}")
    channels, num_blocks = list(stage_cfg.get("NUM_CHANNELS", [64])), list(stage_cfg.get("NUM_BLOCKS", [4]))
    if len(channels) != 1 or len(num_blocks) != 1 or int(num_blocks[0]) < 1:
        raise ValueError(f"MODEL.EXTRA.STAGE1: NUM_CHANNELS {channels} and NUM_BLOCKS {num_blocks} must be "
                         f"one-element lists (one branch) with at least one block")
    return BLOCKS[block_name], int(channels[0]), int(num_blocks[0])


class HRNetBackbone(nn.Module):
    """HRNet for pose: returns the highest-resolution features F [B,C,H/4,W/4] and the
    keypoint maps T = final_layer(F) [B,K,H/4,W/4]."""

    def __init__(self, extra, num_joints):
        super().__init__()
        stem = int(extra.get("STEM_INPLANES", 64))
        self.conv1 = nn.Conv2d(3, stem, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.conv2 = nn.Conv2d(stem, stem, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        layer1_block, layer1_channels, layer1_blocks = _stage1_layout(extra.get("STAGE1"))
        self.layer1 = make_blocks(layer1_block, stem, layer1_channels, layer1_blocks)

        previous = [layer1_channels * layer1_block.expansion]
        self.stage_names = ("STAGE2", "STAGE3", "STAGE4")
        for index, stage_name in enumerate(self.stage_names, start=2):
            stage_cfg = extra[stage_name]
            if stage_cfg.get("FUSE_METHOD", "SUM") != "SUM":
                raise ValueError(f"MODEL.EXTRA.{stage_name}.FUSE_METHOD {stage_cfg.FUSE_METHOD!r}: only SUM exists")
            block_name = stage_cfg.BLOCK
            if block_name not in BLOCKS:
                raise ValueError(f"MODEL.EXTRA.{stage_name}.BLOCK {block_name!r}: expected one of {sorted(BLOCKS)}")
            block = BLOCKS[block_name]
            channels = list(stage_cfg.NUM_CHANNELS)
            if int(stage_cfg.NUM_BRANCHES) != len(channels):
                raise ValueError(f"MODEL.EXTRA.{stage_name}: NUM_BRANCHES {stage_cfg.NUM_BRANCHES} but "
                                 f"NUM_CHANNELS {channels}")
            branch_inputs = [c * block.expansion for c in channels]
            setattr(self, f"transition{index - 1}", self._make_transition(previous, branch_inputs))
            last_stage = stage_name == self.stage_names[-1]
            modules = []
            for module_index in range(int(stage_cfg.NUM_MODULES)):
                # the very last module of the network fuses into the highest resolution only
                multi_scale = not (last_stage and module_index == int(stage_cfg.NUM_MODULES) - 1)
                module = HighResolutionModule(block, list(stage_cfg.NUM_BLOCKS), branch_inputs, channels, multi_scale)
                modules.append(module)
                branch_inputs = module.out_channels
            setattr(self, f"stage{index}", nn.Sequential(*modules))
            previous = branch_inputs

        self.out_channels = previous[0]
        self.num_branches = len(previous)
        kernel = int(extra.get("FINAL_CONV_KERNEL", 1))
        self.final_layer = nn.Conv2d(self.out_channels, num_joints, kernel_size=kernel, stride=1,
                                     padding=1 if kernel == 3 else 0)

    @staticmethod
    def _make_transition(previous, current):
        """None where a branch passes through; conv3x3+BN+ReLU where only its width changes;
        a stride-2 chain from the lowest-resolution input for each new branch."""
        layers = []
        for i, out_channels in enumerate(current):
            if i < len(previous):
                if previous[i] == out_channels:
                    layers.append(None)
                else:
                    layers.append(nn.Sequential(conv3x3(previous[i], out_channels), nn.BatchNorm2d(out_channels),
                                                nn.ReLU(inplace=True)))
            else:
                source = previous[-1]
                steps = i + 1 - len(previous)
                chain = []
                for step in range(steps):
                    width = out_channels if step == steps - 1 else source
                    chain.append(nn.Sequential(conv3x3(source, width, 2), nn.BatchNorm2d(width),
                                               nn.ReLU(inplace=True)))
                layers.append(nn.Sequential(*chain))
        return nn.ModuleList(layers)

    def features(self, images):
        x = self.relu(self.bn1(self.conv1(images)))
        x = self.relu(self.bn2(self.conv2(x)))
        branches = [self.layer1(x)]
        for index in range(2, 2 + len(self.stage_names)):
            transition = getattr(self, f"transition{index - 1}")
            inputs = []
            for i, layer in enumerate(transition):
                if i < len(branches):
                    inputs.append(branches[i] if layer is None else layer(branches[i]))
                else:
                    inputs.append(layer(branches[-1]))
            branches = getattr(self, f"stage{index}")(inputs)
        return branches[0]

    def forward(self, images):
        features = self.features(images)
        return features, self.final_layer(features)

    def init_weights(self, pretrained="", pretrained_layers=("*",)):
        """Training init: convs normal(std 0.001), BN 1/0, then ImageNet HRNet weights."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.001)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if pretrained:
            load_imagenet_weights(self, pretrained, pretrained_layers)
        else:
            logger.warning("MODEL.PRETRAINED is empty: the backbone starts from random initialisation")
