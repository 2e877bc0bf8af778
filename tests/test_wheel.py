"""The package works installed from its wheel, away from the checkout: the wheel is built, installed
without -e into a new virtual environment, and its console scripts import a DeepLabCut project,
train one short epoch, test and predict, run from a folder outside the checkout (slow: about a
minute). A fast test checks that the console scripts name the functions tools/*.py call.

The new environment borrows the third-party packages (torch, sleap-io, ...) of the environment
running the tests through a .pth line. A .pth line adds that site-packages folder to sys.path
without running the .pth files inside it, so the editable install of kitpose there stays out:
every kitpose module must come from the wheel.
"""
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest

from interop_support import AP10K, DLC_VIDEO, make_dlc_project

REPO_ROOT = Path(__file__).resolve().parents[1]
NUM_IMAGES = 10      # 8 train, 2 val (the import's default val fraction 0.2)
STEP_TIMEOUT = 600


def _run(step, command, cwd, env, timings):
    """stdout of `command`, which must exit 0; its wall time goes to `timings` as `step`."""
    start = time.perf_counter()
    done = subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=STEP_TIMEOUT)
    timings.append((step, time.perf_counter() - start))
    assert done.returncode == 0, f"{step}: {command} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _build_wheel(folder):
    """The wheel of a copy of the checkout's package sources (the build writes nothing into the checkout)."""
    source = folder / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "lib", source / "lib", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", str(source), "-w", str(folder / "dist")],
                   check=True, capture_output=True, timeout=STEP_TIMEOUT)
    wheels = list((folder / "dist").glob("kitpose-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _venv_with_wheel(folder, wheel, env):
    """(python, bin folder, site-packages) of a new virtual environment holding `wheel` and seeing this
    environment's third-party packages."""
    venv = folder / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)],
                   check=True, timeout=STEP_TIMEOUT)
    python = venv / "bin" / "python"
    site_packages = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, env=env).stdout.strip())
    shared = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site_packages / "shared_environment.pth").write_text("".join(f"{path}\n" for path in shared))
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed",
                    str(wheel)], check=True, capture_output=True, env=env, timeout=STEP_TIMEOUT)
    return python, venv / "bin", site_packages


def test_console_scripts_call_what_the_tools_call():
    tomllib = pytest.importorskip("tomllib")
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {f"kitpose-{name}" for name in ("train", "test", "infer", "visualize", "export-onnx",
                                                           "import-labels", "eval-tracks")}
    for command, target in scripts.items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), target
        tool = REPO_ROOT / "tools" / f"{command.removeprefix('kitpose-').replace('-', '_')}.py"
        calls = re.findall(r"^from (\S+) import (\w+)$", tool.read_text(), re.MULTILINE)
        assert calls == [(module, function)], (tool, calls)


@pytest.mark.slow
def test_installed_wheel_imports_trains_tests_and_infers_outside_the_checkout(tmp_path):
    pytest.importorskip("sleap_io")
    timings = []
    start = time.perf_counter()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = "1"

    wheel = _build_wheel(tmp_path)
    packaged = zipfile.ZipFile(wheel).namelist()
    assert "kitpose/interop/templates/kitpose_small_cpu.yaml" in packaged
    assert {f"kitpose/datasets/meta/{name}.json" for name in ("ap10k", "animalpose", "ak", "coco")} <= set(packaged)
    python, bin_dir, site_packages = _venv_with_wheel(tmp_path, wheel, env)
    timings.append(("build the wheel, make the venv, install the wheel", time.perf_counter() - start))

    work = tmp_path / "work"     # outside the checkout: nothing may be found relative to it
    work.mkdir()
    locate = ("import json, sys, kitpose, kitpose.interop.labels_in as l, kitpose.datasets.metainfo as m; "
              "print(json.dumps([kitpose.__file__, m.builtin_metainfo_path('ap10k'), str(l.builtin_template()), "
              "sys.path]))")
    located = json.loads(_run("locate the package", [python, "-c", locate], work, env, timings))
    package, metainfo, template, path = located
    for file in (package, metainfo, template):
        assert Path(file).is_relative_to(site_packages / "kitpose"), file
    assert [entry for entry in path if entry and (Path(entry) / "kitpose").is_dir()] == [str(site_packages)], path

    project = make_dlc_project(tmp_path / "project", num_images=NUM_IMAGES, defects=False)
    output = _run("kitpose-import-labels", [bin_dir / "kitpose-import-labels", project["root"], "--out", "data/synth"],
                  work, env, timings)
    data = work / "data" / "synth"
    assert "train: kitpose-train --cfg data/synth/synth.yaml" in output
    assert json.loads((data / "meta.json").read_text())["keypoints"] == AP10K.keypoints
    train_images = json.loads((data / "annotations" / "train.json").read_text())["images"]
    assert len(train_images) == NUM_IMAGES - 2
    assert "kitpose_small_cpu.yaml (built in)" in (data / "synth.yaml").read_text()

    config = "data/synth/synth.yaml"
    opts = ["TRAIN.END_EPOCH", "1", "TRAIN.BATCH_SIZE_PER_GPU", "4", "TEST.BATCH_SIZE_PER_GPU", "8",
            "PRINT_FREQ", "100"]
    _run("kitpose-train (1 epoch)", [bin_dir / "kitpose-train", "--cfg", config, *opts], work, env, timings)
    run_dir = work / "output" / "custom" / "kitpose_part" / "synth"
    checkpoint = run_dir / "final_state.pth"
    assert checkpoint.is_file()

    _run("kitpose-test", [bin_dir / "kitpose-test", "--cfg", config, "TEST.MODEL_FILE", checkpoint, *opts],
         work, env, timings)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["num_instances"] == 2 and 0.0 <= metrics["metrics"]["AP"] <= 1.0

    _run("kitpose-infer", [bin_dir / "kitpose-infer", "--cfg", config, "--checkpoint", checkpoint, "--device", "cpu",
          "--input", data / "images" / DLC_VIDEO, "--out", "predictions", "--no-draw"], work, env, timings)
    results = json.loads((work / "predictions" / "results.json").read_text())
    assert len(results) == NUM_IMAGES and all(len(r["keypoints"]) == 3 * AP10K.num_keypoints for r in results)

    print("\n".join(f"{seconds:7.1f} s  {step}" for step, seconds in timings))
    print(f"{time.perf_counter() - start:7.1f} s  in all")
