"""KITPose: Keypoint Interactive Transformer for general mammal pose estimation."""
__version__ = "0.1.0"
