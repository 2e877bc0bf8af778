"""Import labelled animals: `python tools/import_labels.py SOURCE --out data/NAME/` (see kitpose.interop.cli).

SOURCE is a DeepLabCut project, a SLEAP .slp or any labels file sleap-io reads; the output is a
COCO-format training set with a metainfo JSON and a YAML for tools/train.py.
"""
import sys

from kitpose.interop.cli import import_main

if __name__ == "__main__":
    sys.exit(import_main())
