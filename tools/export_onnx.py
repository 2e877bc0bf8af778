"""Export a model to ONNX with a dynamic batch, clustering included, and check it with onnxruntime.

    python tools/export_onnx.py --cfg X.yaml --checkpoint M.pth --out model.onnx [--check-images IMG ...]

Needs the optional install group: pip install -e '.[onnx]' (onnx, onnxruntime).
Outputs: heatmaps, intermediate (T), parts and part_assign (KITPose with part prompts).
The parity check prints the largest |onnxruntime - PyTorch| of every output and in how
many samples the part clusters are identical; exit status 1 if heatmaps differ by > 1e-4.
"""
import sys

from kitpose.inference.cli import export_main

if __name__ == "__main__":
    sys.exit(export_main())
