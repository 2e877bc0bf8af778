"""Compare this implementation with the numbers of the published one and print the figures.

    python tools/check_reference.py [--reference ../shared/reference]

- the tiny reference model (its YAML and official-format state dict): max |difference| of the
  three outputs and whether the k-medoids parts are identical;
- `kmedoids_cosine` on the reference clustering case;
- adaptive-weight MSE and GHRL values and gradients (relative differences);
- parameter counts (all / used) of the published configurations in experiments/ (printed);
- the official AP-10K W32 key list against the model's state dict;
- a published-format checkpoint with one key renamed must be refused, naming the key.
Exits 1 when any comparison fails.
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from kitpose.config import load_config
from kitpose.losses import AdaptiveWeightMSELoss, GHRLoss
from kitpose.models import CheckpointError, build_model, count_parameters, kmedoids_cosine, load_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUT_TOLERANCE = 1e-4
LOSS_TOLERANCE = 1e-6


def relative_difference(value, reference):
    return ((value - reference).abs().max() / reference.abs().max().clamp_min(1e-30)).item()


def check_outputs(fixture, folder):
    (folder / "tiny.yaml").write_text(fixture["config_yaml"])
    torch.save(fixture["state_dict"], folder / "tiny.pth")
    model = build_model(load_config(str(folder / "tiny.yaml"))).eval()
    load_checkpoint(model, folder / "tiny.pth")
    with torch.no_grad():
        outputs = model(fixture["input"])
        assign, medoids = model.channelformer.cluster(outputs.intermediate)
    ok = True
    for name in outputs._fields:
        diff = (getattr(outputs, name) - fixture["outputs"][name]).abs().max().item()
        ok &= diff <= OUTPUT_TOLERANCE
        print(f"  {name:<13} max |diff| {diff:.3e}")
    same = torch.equal(assign, fixture["kmedoids"]["assign"]) and torch.equal(medoids, fixture["kmedoids"]["medoids"])
    print(f"  k-medoids parts of the batch of {len(assign)}: {'identical' if same else 'DIFFERENT'}")
    return ok and same, model


def check_kmedoids(case):
    assign, medoids = kmedoids_cosine(case["maps"], case["num_parts"])
    equal = (assign == case["assign"]).all(1) & (medoids == case["medoids"]).all(1)
    print(f"  kmedoids_case: {int(equal.sum())}/{len(equal)} samples with identical assignments and medoids")
    return bool(equal.all())


def check_losses(case):
    ok = True
    for name, loss, input_key, grad_key in (("adaptive MSE", AdaptiveWeightMSELoss(), "pred", "grad_pred"),
                                            ("GHRL", GHRLoss(), "intermediate", "grad_intermediate")):
        prediction = case[input_key].clone().requires_grad_()
        value = loss(prediction, case["target"], case["target_weight"])
        value.backward()
        expected = case["adaptive_mse" if name == "adaptive MSE" else "ghrl"]
        value_diff = relative_difference(value.detach(), expected)
        grad_diff = relative_difference(prediction.grad, case[grad_key])
        ok &= value_diff <= LOSS_TOLERANCE and grad_diff <= LOSS_TOLERANCE
        print(f"  {name:<13} value {value.item():.8e} (reference {expected.item():.8e}), relative difference "
              f"value {value_diff:.2e}, gradient {grad_diff:.2e}")
    return ok


def print_parameter_counts():
    """Printed for comparison with the SPEC table (tests/test_models.py asserts them)."""
    print(f"  {'config':<45} {'all':>13} {'used':>13}")
    for path in sorted((REPO_ROOT / "experiments").glob("*/kitpose/*.yaml")):
        cfg = load_config(str(path), ["MODEL.INIT_WEIGHTS", "False"])
        with torch.device("meta"):
            num_all, num_used = count_parameters(build_model(cfg))
        print(f"  {str(path.relative_to(REPO_ROOT / 'experiments')):<45} {num_all:>13,} {num_used:>13,}")


def check_official_keys(reference_dir):
    official = [(key, list(shape)) for key, shape in json.loads((reference_dir /
                "official_state_dict_ap10k_w32_256x256.json").read_text())]
    cfg = load_config(str(REPO_ROOT / "experiments/ap10k/kitpose/kitpose_w32_256x256.yaml"),
                      ["MODEL.INIT_WEIGHTS", "False"])
    with torch.device("meta"):
        ours = [(key, list(tensor.shape)) for key, tensor in build_model(cfg).state_dict().items()]
    same = sorted(official) == sorted(ours)
    print(f"  official AP-10K W32 256x256 keys: {len(official)}, model: {len(ours)}, "
          f"{'identical names and shapes' if same else 'DIFFERENT'}")
    return same


def check_renamed_key(fixture, model, folder):
    state = dict(fixture["state_dict"])
    old_key = "channelformer.kpt_to_embedding.weight"
    new_key = "channelformer.kpt_to_embeding.weight"
    state[new_key] = state.pop(old_key)
    torch.save({"state_dict": state}, folder / "renamed.pth")
    try:
        load_checkpoint(model, folder / "renamed.pth")
    except CheckpointError as err:
        message = str(err)
        named = old_key in message and new_key in message
        print(f"  renamed {old_key} -> {new_key}: refused, message names both keys: {named}")
        print("    " + message.replace("\n", "\n    "))
        return named
    print("  renamed key: ACCEPTED (should have been refused)")
    return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", default=str(REPO_ROOT.parent / "shared" / "reference"),
                        help="folder with kitpose_tiny_ap10k_reference.pt (default ../shared/reference)")
    args = parser.parse_args(argv)
    reference_dir = Path(args.reference)
    fixture_file = reference_dir / "kitpose_tiny_ap10k_reference.pt"
    if not fixture_file.is_file():
        print(f"error: {fixture_file} not found (pass --reference DIR)", file=sys.stderr)
        return 1
    fixture = torch.load(fixture_file, weights_only=False)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("outputs of the tiny reference model (eval mode):")
        results["outputs"], model = check_outputs(fixture, folder)
        print("k-medoids clustering:")
        results["kmedoids"] = check_kmedoids(fixture["kmedoids_case"])
        print("losses:")
        results["losses"] = check_losses(fixture["loss_case"])
        print("parameter counts of the published configurations:")
        print_parameter_counts()
        print("checkpoint keys:")
        results["keys"] = check_official_keys(reference_dir)
        print("strict loading:")
        results["renamed"] = check_renamed_key(fixture, model, folder)
    failed = [name for name, ok in results.items() if not ok]
    print("all comparisons passed" if not failed else f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
