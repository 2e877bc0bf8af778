"""torchrun entry of tests/test_ddp.py: tools/train.py's main, recording which rank saves what.

Each rank appends the files it writes through `atomic_save` to $KITPOSE_SAVE_RECORD.<rank>.
"""
import os
import sys

import kitpose.engine.trainer as trainer
from kitpose.engine.cli import train_main

record_file = f"{os.environ['KITPOSE_SAVE_RECORD']}.{os.environ['RANK']}"
real_atomic_save = trainer.atomic_save


def recording_atomic_save(obj, path):
    with open(record_file, "a") as f:
        f.write(f"{path}\n")
    real_atomic_save(obj, path)


trainer.atomic_save = recording_atomic_save
open(record_file, "w").close()
sys.exit(train_main())
