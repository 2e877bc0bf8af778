"""tools/browse_dataset.py writes a PNG grid of augmented samples."""
import subprocess
import sys

import cv2
import numpy as np


def test_browse_dataset_writes_png_grid(repo_root, samples_dir, tmp_path):
    out = tmp_path / "nested" / "browse.png"
    command = [sys.executable, str(repo_root / "tools" / "browse_dataset.py"), "--num", "3", "--columns", "2",
               "--out", str(out), "DATASET.ROOT", str(samples_dir / "ap10k"),
               "DATASET.TRAIN_ANN", "test_ap10k.json", "DATASET.IMAGE_DIR", ".", "DATASET.PROB_HALF_BODY", "0.3"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    grid = cv2.imread(str(out))
    # 3 samples x 2 tiles of 256 px in rows of 4 tiles, 4 px gaps: 2 rows, the second half empty
    assert grid.shape == (2 * 260 + 4, 4 * 260 + 4, 3)
    tiles = [grid[4 + r * 260:4 + r * 260 + 256, 4 + c * 260:4 + c * 260 + 256] for r in range(2) for c in range(4)]
    assert all(tile.std() > 10 for tile in tiles[:6])
    assert all(np.all(tile == 32) for tile in tiles[6:])
    # the keypoint tile and the heatmap tile of a sample show the same crop with different overlays
    assert np.abs(tiles[0].astype(int) - tiles[1].astype(int)).mean() > 1
