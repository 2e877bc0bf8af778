"""Development harnesses of this checkout, not part of the installed package: the speed benchmark
(`speed`, tools/benchmark.py), the GPU check (`gpu_check`, tools/gpu_check.py), the comparisons
with the published implementation's outputs (`reference`, tools/check_reference.py and the tests),
and what they share: timing (`timing`), measurements (`measurements`), the speed targets
(`targets`) and the printed reports (`report`).

They import `kitpose` like any user of it; the files they read by default (configurations,
tests/data/reference, tools/train.py) are found from this folder's place in the checkout.
"""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
