#!/usr/bin/env bash
# The char transformer (experiments/char_transformer.yaml), Backplane against PyTorch on
# this machine: the same model, data, initialisation scheme, optimizer and learning rate
# per epoch (bench/torch_char.py says what is matched), trained side by side
# for the same steps at 2 threads.
# Usage: bash bench/compare_char_transformer.sh [EPOCHS]   (default 1: 1,133 steps of 32 windows;
#        one epoch trains without the warmup epoch, at lr throughout)
#
# PyTorch gets the best of a search made here and now: torch's threads (1 or 2), OpenBLAS's
# threads (1 or 2) and the allocator (glibc's malloc as it comes, tuned, jemalloc, or tuned
# with 2 MiB pages), each timed over 40 steps. Prints samples/s of both and their ratio,
# Backplane's GFLOP/s and its share of the FMA peak measured at the start, and the
# validation loss after every epoch of both (nats per byte) with their difference. Targets (issue 14): >= 1.3x PyTorch's
# samples/s, and a validation loss within 2% of PyTorch's.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-1}
source bench/common.sh
# FLOPs per sample: per position, forward 2 x 458,752 multiply-adds (the blocks' products
# 2 x 196,608, attention's Q K^T and P V over all 64 positions 2 x 16,384, the head
# 32,768), times 3 for training (forward and two products backward), times 64 positions.
flops=176.2e6

torch_run() {   # environment torch-threads arguments...: a PyTorch run into $work/pt.out
  local environment=$1 threads=$2; shift 2
  # shellcheck disable=SC2086
  env $environment /usr/bin/python3 bench/torch_char.py --threads "$threads" "$@" >"$work/pt.out"
}

best=0 setting="" torch_env="" torch_threads=1
for t in 1 2; do
  for b in 1 2; do
    for a in "${allocators[@]}"; do
      IFS='|' read -r alloc env <<<"$a"
      torch_run "OPENBLAS_NUM_THREADS=$b $env" "$t" --epochs 1 --steps 40
      speed=$(field samples_per_second "$work/pt.out")
      if awk -v s="$speed" -v b="$best" 'BEGIN { exit !(s > b) }'; then
        best=$speed setting="torch $t thr, OpenBLAS $b thr, $alloc" torch_env="OPENBLAS_NUM_THREADS=$b $env" torch_threads=$t
      fi
    done
  done
done

# The yaml's warmup epoch needs a second epoch to follow it: a one-epoch run has none.
warmup=$((epochs > 1 ? 1 : 0))
build/bin/backplane run experiments/char_transformer.yaml --out "$work/bp" --quiet --set train.epochs="$epochs" \
  --set optimizer.schedule.warmup=$warmup --set train.threads=2
torch_run "$torch_env" "$torch_threads" --epochs "$epochs" --warmup $warmup

bp=$(field samples_per_second "$work/bp/summary.json")
pt=$(field samples_per_second "$work/pt.out")
printf 'FP32 FMA peak measured now: %s GFLOP/s at 2 threads\n' "$peak_2t"
printf "PyTorch's best setting (of 12 tried): %s\n\n" "$setting"
awk -v bp="$bp" -v pt="$pt" -v f="$flops" -v peak="$peak_2t" 'BEGIN {
  printf "samples/s at 2 threads: backplane %.0f, pytorch %.0f: %.2fx (target >= 1.3x: %s)\n", bp, pt, bp / pt,
    (bp / pt >= 1.3 ? "met" : "NOT met")
  printf "backplane: %.1f GFLOP/s, %.1f%% of the FMA peak\n\n", bp * f / 1e9, 100 * bp * f / 1e9 / peak }'
# metrics.csv: epoch, train_loss, train_accuracy, val_loss, ...
paste -d' ' <(tail -n +2 "$work/bp/metrics.csv" | cut -d, -f1,4 | tr , ' ') \
  <(sed -n 's/^RESULT .*"val_loss": \[\([^]]*\)\].*/\1/p' "$work/pt.out" | tr -d ' ' | tr , '\n') |
  awk 'BEGIN { printf "%-6s %-22s %-22s %s\n", "epoch", "backplane val_loss", "pytorch val_loss", "difference" }
    { d = ($2 - $3) / $3; printf "%-6s %-22.4f %-22.4f %+.2f%%\n", $1, $2, $3, 100 * d; last = d }
    END { printf "after the last epoch: within 2%% of PyTorch: %s\n", ((last < 0 ? -last : last) <= 0.02 ? "met" : "NOT met") }'
