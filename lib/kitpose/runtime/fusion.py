"""Inference fast path: fold eval-mode BatchNorm into convolutions, then (CPU) run each
convolution together with the ReLU and residual addition that follow it, and each linear
layer (with a following GELU), as one oneDNN kernel.

Only patterns whose data flow is known are rewritten: adjacent (Conv2d, BatchNorm2d),
(Conv2d, ReLU) and (Linear, GELU) children of an nn.Sequential, the `convN`/`bnN`
attribute pairs of the HRNet stem and residual blocks (whose forward applies
`bnN(convN(x))`), and whole residual blocks. The rewritten model is for inference only
(its state dict no longer matches checkpoints).

oneDNN's GEMM also replaces MKL's for the linear layers: on AMD CPUs MKL runs a generic
code path about half as fast. Linear weights are reordered once into oneDNN's blocked
layout (instead of at every call), which gives the same numbers faster (the AP-10K W32 head: 20%).
"""
import logging

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from kitpose.models.hrnet import BasicBlock, Bottleneck, HRNetBackbone

logger = logging.getLogger(__name__)

_NAMED_PAIR_OWNERS = (BasicBlock, Bottleneck, HRNetBackbone)
_NAMED_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))
_RESIDUAL_BLOCKS = (BasicBlock, Bottleneck)


def _foldable(conv, bn):
    return (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
            and bn.num_features == conv.out_channels and bn.track_running_stats)


def fuse_batchnorm(model):
    """Fold BatchNorm into convolutions in place (model must be in eval mode); returns the count."""
    if model.training:
        raise ValueError("fuse_batchnorm needs a model in eval mode (running statistics are folded)")
    folded = 0
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            children = list(module.children())
            names = list(module._modules.keys())
            for i in range(len(children) - 1):
                if _foldable(children[i], children[i + 1]):
                    module._modules[names[i]] = fuse_conv_bn_eval(children[i], children[i + 1])
                    module._modules[names[i + 1]] = nn.Identity()
                    folded += 1
        if isinstance(module, _NAMED_PAIR_OWNERS):
            for conv_name, bn_name in _NAMED_PAIRS:
                conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
                if _foldable(conv, bn):
                    setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                    setattr(module, bn_name, nn.Identity())
                    folded += 1
    logger.info("folded %d BatchNorm layers into convolutions (TEST.FUSE_BN)", folded)
    return folded


def onednn_fusion_available():
    """True when this torch build has the oneDNN fused CPU kernels (builds with MKLDNN)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def _onednn_float32_call(x, weight):
    """The fused kernels run float32 CPU inference only: not under autograd, and not inside a CPU
    autocast (which they would bypass); elsewhere the modules use the ordinary operators."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu")
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)))


class FusedConv2d(nn.Module):
    """conv -> [+ residual] -> [ReLU] as one oneDNN kernel on float32 CPU tensors.

    Built from a (BatchNorm-folded) nn.Conv2d; elsewhere (CUDA, half precision, autograd)
    it runs the same three steps with ordinary operators. Results match the unfused ops to
    float32 rounding (oneDNN applies the addition and ReLU to the float32 accumulator).
    """

    def __init__(self, conv, relu):
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError(f"FusedConv2d needs numeric zero padding, got {conv.padding_mode} {conv.padding}")
        self.weight = conv.weight
        self.bias = conv.bias
        self.stride = list(conv.stride)
        self.padding = list(conv.padding)
        self.dilation = list(conv.dilation)
        self.groups = conv.groups
        self.relu = bool(relu)

    def extra_repr(self):
        return (f"{self.weight.shape[1] * self.groups}, {self.weight.shape[0]}, "
                f"kernel_size={tuple(self.weight.shape[2:])}, stride={tuple(self.stride)}, relu={self.relu}")

    def _use_onednn(self, x):
        return _onednn_float32_call(x, self.weight)

    def forward(self, x, residual=None):
        if self._use_onednn(x):
            args = (self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups)
            unary = "relu" if self.relu else None
            if residual is None:
                return torch.ops.mkldnn._convolution_pointwise(x, *args, unary or "none", [], "")
            return torch.ops.mkldnn._convolution_pointwise.binary(x, residual, *args, "add", None, unary, [], "")
        out = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if residual is not None:
            out = out + residual
        return F.relu(out) if self.relu else out


class FusedResidualBlock(nn.Module):
    """A BatchNorm-folded BasicBlock/Bottleneck: ReLU after every conv but the last, which
    also adds the shortcut before its ReLU (the block's own forward order)."""

    def __init__(self, block):
        super().__init__()
        convs = [block.conv1, block.conv2] + ([block.conv3] if isinstance(block, Bottleneck) else [])
        self.convs = nn.ModuleList(FusedConv2d(conv, relu=True) for conv in convs)
        self.downsample = block.downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = x
        for conv in self.convs[:-1]:
            out = conv(out)
        return self.convs[-1](out, residual)


def _bn_folded(module, names):
    return all(isinstance(getattr(module, name, None), nn.Identity) for name in names)


def fuse_conv_activations(model):
    """Replace folded conv -> ReLU (-> residual add) patterns by FusedConv2d, in place.

    Run after `fuse_batchnorm`; patterns whose BatchNorm is still present are left alone.
    Returns the number of convolutions fused.
    """
    if model.training:
        raise ValueError("fuse_conv_activations is for inference: put the model in eval mode first")
    fused = 0
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            names = list(module._modules.keys())
            for i, name in enumerate(names):
                child = module._modules[name]
                if isinstance(child, _RESIDUAL_BLOCKS):
                    bn_names = ("bn1", "bn2", "bn3") if isinstance(child, Bottleneck) else ("bn1", "bn2")
                    if _bn_folded(child, bn_names):
                        module._modules[name] = FusedResidualBlock(child)
                        fused += len(bn_names)
                    continue
                if not isinstance(child, nn.Conv2d):
                    continue
                # conv, (Identity left by a folded BN)*, ReLU
                j = i + 1
                while j < len(names) and isinstance(module._modules[names[j]], nn.Identity):
                    j += 1
                if j < len(names) and isinstance(module._modules[names[j]], nn.ReLU):
                    module._modules[name] = FusedConv2d(child, relu=True)
                    module._modules[names[j]] = nn.Identity()
                    fused += 1
        if isinstance(module, HRNetBackbone) and _bn_folded(module, ("bn1", "bn2")) \
                and isinstance(module.conv1, nn.Conv2d) and isinstance(module.conv2, nn.Conv2d):
            # the stem computes relu(bn1(conv1(x))), relu(bn2(conv2(.))) with the shared `relu`,
            # which nothing else in the backbone uses
            module.conv1 = FusedConv2d(module.conv1, relu=True)
            module.conv2 = FusedConv2d(module.conv2, relu=True)
            module.relu = nn.Identity()
            fused += 2
    logger.info("fused %d convolutions with their ReLU / residual addition", fused)
    return fused


class PackedLinearWeight:
    """oneDNN's blocked copy of a linear weight, made on first use and again whenever the
    weight tensor is replaced or changed in place. Copies and pickles of the module start
    empty (oneDNN tensors have no storage to copy)."""

    def __init__(self):
        self.key = None
        self.packed = None

    def get(self, weight):
        key = (weight.data_ptr(), weight._version)
        if key != self.key:
            self.packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), None)
            self.key = key
        return self.packed

    def __deepcopy__(self, memo):
        return PackedLinearWeight()

    def __reduce__(self):
        return PackedLinearWeight, ()


class FusedLinear(nn.Module):
    """linear -> [exact GELU] as one oneDNN kernel on float32 CPU tensors (ordinary ops elsewhere)."""

    def __init__(self, linear, gelu=False):
        super().__init__()
        self.weight = linear.weight
        self.bias = linear.bias
        self.gelu = bool(gelu)
        self.packed_weight = PackedLinearWeight()

    def extra_repr(self):
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, gelu={self.gelu}"

    def forward(self, x):
        if _onednn_float32_call(x, self.weight):
            weight = self.packed_weight.get(self.weight)
            if self.gelu:
                return torch.ops.mkldnn._linear_pointwise(x, weight, self.bias, "gelu", [], "none")
            return torch.ops.mkldnn._linear_pointwise(x, weight, self.bias, "none", [], "")
        out = F.linear(x, self.weight, self.bias)
        return F.gelu(out) if self.gelu else out


def _is_exact_gelu(module):
    return isinstance(module, nn.GELU) and module.approximate == "none"


def use_onednn_kernels(model):
    """CPU inference kernels, in place: `fuse_conv_activations`, then every remaining Conv2d
    (zero padding) and Linear runs through oneDNN, a Linear followed by an exact GELU as one
    kernel. Returns the number of modules replaced."""
    replaced = fuse_conv_activations(model)
    for module in list(model.modules()):
        names = list(module._modules.keys())
        for i, name in enumerate(names):
            child = module._modules[name]
            if isinstance(child, nn.Conv2d) and child.padding_mode == "zeros" and not isinstance(child.padding, str):
                module._modules[name] = FusedConv2d(child, relu=False)
                replaced += 1
            elif isinstance(child, nn.Linear):
                gelu = (isinstance(module, nn.Sequential) and i + 1 < len(names)
                        and _is_exact_gelu(module._modules[names[i + 1]]))
                module._modules[name] = FusedLinear(child, gelu=gelu)
                if gelu:
                    module._modules[names[i + 1]] = nn.Identity()
                replaced += 1
    logger.info("%d modules run through oneDNN kernels (TEST.CPU_KERNELS)", replaced)
    return replaced
