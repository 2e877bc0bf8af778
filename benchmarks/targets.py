"""The speed targets of the benchmark (tools/benchmark.py) and the GPU check (tools/gpu_check.py):
one table, each threshold written once, and the record a measured or unmeasured target leaves in a report."""
from dataclasses import dataclass

DATA_MAX_WORKERS = 12  # the GPU check's data target counts DataLoader worker counts up to this


@dataclass(frozen=True)
class Target:
    threshold: float
    label: str            # '{threshold}' and the caller's `where` are filled in
    below: bool = False   # met when the value stays below the threshold (a share); else when it reaches it

    def describe(self, where=None):
        return self.label.format(threshold=self.threshold, where=where)


TARGETS = {
    # the CPU, batch 4, the published AP-10K W32 256x256 configuration (tools/benchmark.py)
    "inference_fast_over_eager": Target(1.2, "inference fast path >= {threshold}x eager fp32"),
    "training_fast_over_eager": Target(1.0, "training fast path not slower than eager fp32 (>= {threshold}x)"),
    "kit_head_share": Target(0.05, "KIT head + k-medoids < {threshold:.0%} of the {where} forward", below=True),
    "data_per_worker_over_training": Target(2.0, "data pipeline ({where}) >= {threshold}x the training consumption"),
    # CUDA (tools/gpu_check.py; the training target also tools/benchmark.py --device cuda, whose fast path
    # is bf16 + channels_last)
    "training_bf16_channels_last": Target(2.5, "bf16 + channels_last training >= {threshold}x fp32 eager"),
    "training_compiled": Target(3.0, "bf16 + channels_last + compile training >= {threshold}x fp32 eager"),
    "inference_bf16": Target(3.0, "bf16 inference (fast path) >= {threshold}x fp32 eager"),
    "data_over_consumption": Target(1.0, f"data pipeline (<= {DATA_MAX_WORKERS} workers) >= {{threshold}}x the "
                                         f"training consumption"),
}


def evaluate_target(name, value, where=None, **details):
    """The report's record of target `name` measured at `value`: label, value, threshold, status
    ('met' or 'missed') and `details`."""
    target = TARGETS[name]
    met = value < target.threshold if target.below else value >= target.threshold
    return {"label": target.describe(where), "value": value, "threshold": target.threshold,
            "status": "met" if met else "missed", **details}


def unmeasured_target(name, reason):
    """The report's record of target `name` that the run could not measure, and why."""
    target = TARGETS[name]
    return {"label": target.describe(), "threshold": target.threshold, "status": "not measured", "reason": reason}
