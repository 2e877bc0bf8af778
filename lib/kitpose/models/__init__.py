"""Models: KITPose (HRNet backbone `pre_feature` + KIT head `channelformer`) and the HRNet baseline."""
from .checkpoint import (CheckpointError, atomic_save, load_checkpoint, load_imagenet_weights, load_model_file,
                         read_state_dict, torch_load, unwrap_model)
from .hrnet import HRNetBackbone
from .kit_head import KITHead, sine_position_table
from .kitpose import KITPose, ModelOutput, PoseHRNet, build_model, count_parameters, set_part_maps
from .kmedoids import kmedoids_cosine
from .transfer import TransferReport, init_from_checkpoint

__all__ = ["build_model", "load_checkpoint", "load_model_file", "read_state_dict", "unwrap_model", "atomic_save",
           "CheckpointError", "kmedoids_cosine",
           "count_parameters", "set_part_maps", "ModelOutput", "KITPose", "PoseHRNet", "HRNetBackbone", "KITHead",
           "load_imagenet_weights", "sine_position_table", "init_from_checkpoint", "TransferReport", "torch_load"]
