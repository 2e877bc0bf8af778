#!/usr/bin/env bash
# A DeepLabCut project end to end on the CPU: import -> train -> PCK@0.05 and AP on the held-out
# frames -> tracked predictions on the project's video as DeepLabCut h5/csv, SLEAP .slp, NWB and
# SLEAP csv -> read back with sleap-io and movement -> a picture of tracked frames.
#
#   bash tools/run_dlc_example.sh PROJECT_DIR VIDEO [NAME]      (make dlc-example DLC_PROJECT=... DLC_VIDEO=...)
#
# Prints every command and its wall time. Outputs: data/NAME/ (the imported set),
# output/custom/kitpose_part/NAME/ (checkpoints, metrics), output/NAME_video/ (predictions),
# output/NAME_video/tracks.png. Needs the interop install group (make install-interop).
set -euo pipefail
PROJECT=${1:?usage: run_dlc_example.sh PROJECT_DIR VIDEO [NAME]}
VIDEO=${2:?usage: run_dlc_example.sh PROJECT_DIR VIDEO [NAME]}
NAME=${3:-$(basename "$PROJECT" | cut -d- -f1)}
PY=${PY:-.venv/bin/python}
RUN=output/custom/kitpose_part/$NAME
PRED=output/${NAME}_video
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

step() {
  echo "+ $*"
  local start=$SECONDS
  "$@"
  echo "  ($((SECONDS - start)) s)"
}

start_all=$SECONDS
# --overwrite: each run re-creates the example's own data/NAME (an earlier import there is replaced)
step "$PY" tools/import_labels.py "$PROJECT" --out "data/$NAME" --overwrite
step "$PY" tools/train.py --cfg "data/$NAME/$NAME.yaml"
step "$PY" tools/test.py --cfg "data/$NAME/$NAME.yaml" TEST.MODEL_FILE "$RUN/final_state.pth" TEST.METRIC pck
step "$PY" tools/test.py --cfg "data/$NAME/$NAME.yaml" TEST.MODEL_FILE "$RUN/final_state.pth" TEST.METRIC oks
step "$PY" tools/infer.py --cfg "data/$NAME/$NAME.yaml" --checkpoint "$RUN/final_state.pth" --input "$VIDEO" \
  --out "$PRED" --format coco dlc slp nwb csv --track --max-animals 1
step "$PY" tools/check_exports.py "$PRED"
FRAMES=$("$PY" -c "import cv2, sys; n = int(cv2.VideoCapture(sys.argv[1]).get(cv2.CAP_PROP_FRAME_COUNT)); \
print(' '.join(str(i * (n - 1) // 5) for i in range(6)))" "$VIDEO")
step "$PY" tools/draw_tracks.py --video "$VIDEO" --results "$PRED/results.json" --frames $FRAMES \
  --meta "data/$NAME/meta.json" --columns 3 --out "$PRED/tracks.png"
echo "all steps: $((SECONDS - start_all)) s"
