"""Parameters (all / used) and multiply-adds of a configured model.

    python tools/model_summary.py --cfg experiments/ap10k/kitpose/kitpose_w32_256x256.yaml [KEY VALUE ...]
"""
import argparse
import logging

from kitpose.config import load_config
from kitpose.models import build_model, count_parameters
from kitpose.models.complexity import count_macs
from kitpose.models.checkpoint import UNUSED_PARAMETERS


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", required=True, help="experiment YAML")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    cfg = load_config(args.cfg, args.opts)
    model = build_model(cfg, is_train=False)
    width, height = cfg.MODEL.IMAGE_SIZE
    total, used = count_parameters(model)
    macs = count_macs(model, (height, width))

    print(f"config      {args.cfg}  (MODEL.NAME {cfg.MODEL.NAME}, input {width}x{height} w x h)")
    print(f"parameters  all {total:,} ({total / 1e6:.2f}M)   used {used:,} ({used / 1e6:.2f}M)")
    if total != used:
        print(f"            'used' leaves out the published-but-unused {', '.join(UNUSED_PARAMETERS)}")
    breakdown = ", ".join(f"{kind} {value / 1e9:.3f}" for kind, value in macs["per_type"].items())
    print(f"MACs        {macs['total'] / 1e9:.3f} G  (one image; {breakdown})")
    print(f"paper-style {macs['published_gflops']:.2f} 'GFLOPs'  (HRNet model-summary convention the papers "
          f"quote: conv MACs + Linear x token count, / 1024^3)")


if __name__ == "__main__":
    main()
