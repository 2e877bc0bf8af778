"""Multiply-accumulate (MAC) count of one forward pass, measured with forward hooks."""
import torch
from torch import nn

from .kit_head import Attention


def count_macs(model, image_hw, device="cpu"):
    """MACs of one image of size `image_hw` (h, w).

    Counted: Conv2d (k*k*C_in/groups per output element), Linear (in_features per output
    element) and the two attention matmuls (q k^T and weights v, N*N*D each). Not counted:
    BN, activations, additions, upsampling, softmax, k-medoids.

    Returns a dict: 'total' (MACs), 'per_type' {type: MACs}, 'per_child' {top-level
    submodule name, e.g. 'pre_feature' / 'channelformer': MACs}, 'per_child_type' {name:
    {type: MACs}}, and 'published_gflops': the
    figure the HRNet/KITPose papers print, from HRNet's model-summary tool, which counts
    conv MACs plus Linear as output elements x input.size(1) (for token inputs [B,N,C]
    that is N, not C, so the transformer almost vanishes) and divides by 1024**3.
    """
    per_type, per_child, per_child_type = {}, {}, {}
    published = [0]
    child_of = {module: name for name, child in model.named_children() for module in child.modules()}
    current = [None]

    def add(kind, macs):
        per_type[kind] = per_type.get(kind, 0) + int(macs)
        per_child[current[0]] = per_child.get(current[0], 0) + int(macs)
        child_types = per_child_type.setdefault(current[0], {})
        child_types[kind] = child_types.get(kind, 0) + int(macs)

    def conv_hook(module, inputs, output):
        macs = output.numel() * module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        add("conv", macs)
        published[0] += macs

    def linear_hook(module, inputs, output):
        add("linear", output.numel() * module.in_features)
        published[0] += output.numel() * inputs[0].shape[1]

    def attention_hook(module, inputs, output):
        b, n, dim = inputs[0].shape
        queries = output.shape[1]  # fewer than n when leading tokens serve only as keys/values
        add("attention matmul", 2 * b * queries * n * dim)

    def enter(module, inputs):
        current[0] = child_of.get(module)

    handles = []
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear, Attention)):
            handles.append(module.register_forward_pre_hook(enter))
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
        elif isinstance(module, Attention):
            handles.append(module.register_forward_hook(attention_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, *image_hw, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return {"total": sum(per_type.values()), "per_type": per_type, "per_child": per_child,
            "per_child_type": per_child_type,
            "published_gflops": published[0] / 1024 ** 3}
