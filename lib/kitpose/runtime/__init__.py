"""Runtime: how a built model is run fast and the one heatmap-prediction function.

BatchNorm folding and oneDNN fused kernels (`fusion`), bfloat16 weights and the other
TEST.* / TRAIN.* fast paths (`fastpath`), autocast (`amp`), `predict_heatmaps` with the flip
test in one batch (`heatmaps`) and ONNX export (`onnx`, optional onnx/onnxruntime install).
Imports `kitpose.models` and `kitpose.codecs` only.
"""
from .amp import autocast_context, cpu_has_native_bf16, cpu_model, describe_amp, describe_training_amp, training_amp
from .fastpath import prepare_for_inference, prepare_for_training
from .fusion import fuse_batchnorm
from .heatmaps import config_flip_pairs, predict_heatmaps

__all__ = ["autocast_context", "describe_amp", "describe_training_amp", "training_amp", "cpu_has_native_bf16", "cpu_model", "prepare_for_inference", "prepare_for_training", "fuse_batchnorm",
           "config_flip_pairs", "predict_heatmaps"]
