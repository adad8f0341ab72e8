#!/usr/bin/env bash
# Training throughput, Backplane against PyTorch on this machine, side by side, each in
# its best setting.
# Usage: bash bench/compare_torch.sh [REPS]        (default 3 runs of each, alternating)
# Models: the MLP 784-256-128-10 with SGD+momentum and with Adam (2 epochs), at 2 threads
# and at 1, and a LeNet-like CNN with Adam (1 epoch of 20,000 images); batch 128,
# Fashion-MNIST.
#
# PyTorch (Debian's python3-torch) gets the best of a search, made here and now for each
# case: torch's threads (1 or 2, within the case's), OpenBLAS's threads (likewise) and
# the allocator (glibc's malloc as it comes, glibc's malloc tuned to keep its memory, or
# jemalloc). glibc's tunables alone moved PyTorch's MLP with Adam from 18k to 51-61k
# samples/s on one machine of this kind: a peer's best setting is the one to beat. Each
# setting is tried once on a shorter run; the fastest is then run REPS times, alternating
# with Backplane. Backplane runs as shipped (its steps allocate nothing; malloc does not
# matter). OPENBLAS_CORETYPE is unset for both (it can force half-speed AVX2 kernels).
#
# Prints samples/s (median, min-max), the ratio, Backplane's GFLOP/s and its share of this
# machine's FMA peak (bench/peak.cpp, measured at the start), peak RSS of both, PyTorch's
# chosen setting and Backplane's 1 -> 2 thread scaling of the MLP at batch 128 and 256.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
source bench/common.sh

sgd="optimizer={name: sgd, lr: 0.1, momentum: 0.9}"
# name | threads | backplane yaml | backplane --set | torch arguments (threads are searched) | FLOPs per sample
# (a * marks FLOPs of a direct computation that Backplane does with fewer: Winograd's convolution)
cases=(
  "mlp-sgd|2|bench/mlp.yaml|$sgd|--model mlp --opt sgd --epochs 2|1.01e6"
  "mlp-adam|2|bench/mlp.yaml||--model mlp --opt adam --epochs 2|1.01e6"
  "mlp-sgd|1|bench/mlp.yaml|$sgd|--model mlp --opt sgd --epochs 2|1.01e6"
  "mlp-adam|1|bench/mlp.yaml||--model mlp --opt adam --epochs 2|1.01e6"
  "cnn-adam|2|bench/cnn.yaml||--model cnn --opt adam --epochs 1 --limit 20000|22.3e6*"
)
backplane() {   # out-folder yaml [--set values...]: one run; appends samples/s and RSS
  local out=$1 yaml=$2; shift 2
  local args=()
  for s in "$@"; do [ -n "$s" ] && args+=(--set "$s"); done
  build/bin/backplane run "$yaml" --out "$out" --quiet "${args[@]}"
  field samples_per_second "$out/summary.json" >>"$work/bp"
  field peak_rss_mib "$out/summary.json" >>"$work/bp_rss"
}
torch() {   # environment arguments...: one PyTorch run; prints its RESULT line's samples/s
  local environment=$1; shift
  # shellcheck disable=SC2086
  env $environment /usr/bin/python3 bench/torch_train.py "$@" >"$work/torch.out"
  field samples_per_second "$work/torch.out"
}
# The fastest PyTorch setting for a case, as "label|environment|torch threads", from one
# short run of each (a tenth of the MLP's data, 4,000 of the CNN's images).
best_torch() {
  local threads=$1 args=$2 short best=0 choice=""
  short="$args --limit 6000 --epochs 1"
  [[ $args == *cnn* ]] && short="${args/--limit 20000/--limit 4000}"
  for t in $(seq 1 "$threads"); do
    for b in $(seq 1 "$threads"); do
      for a in "${allocators[@]}"; do
        IFS='|' read -r alloc env <<<"$a"
        # shellcheck disable=SC2086
        speed=$(torch "OPENBLAS_NUM_THREADS=$b $env" $short --threads "$t")
        if awk -v s="$speed" -v b="$best" 'BEGIN { exit !(s > b) }'; then
          best=$speed choice="torch $t thr, OpenBLAS $b thr, $alloc|OPENBLAS_NUM_THREADS=$b $env|$t"
        fi
      done
    done
  done
  echo "$choice"
}

printf 'FP32 FMA peak measured now: %s GFLOP/s at 1 thread, %s at 2\n' "$peak_1t" "$peak_2t"
printf '%-9s %3s %-26s %-26s %6s %8s %6s %14s  %s\n' model thr "backplane samples/s" "pytorch samples/s" ratio "GFLOP/s" \
  "peak" "RSS MiB bp/pt" "pytorch's best setting (of $((${#allocators[@]} * 4)) tried at 2 threads, 3 at 1)"
for c in "${cases[@]}"; do
  IFS='|' read -r name threads yaml set torch_args flops <<<"$c"
  IFS='|' read -r setting torch_env torch_threads <<<"$(best_torch "$threads" "$torch_args")"
  : >"$work/bp"; : >"$work/pt"; : >"$work/bp_rss"; : >"$work/pt_rss"
  for ((r = 1; r <= reps; r++)); do
    backplane "$work/run-$name-$threads-$r" "$yaml" "train.threads=$threads" "$set"
    # shellcheck disable=SC2086
    torch "$torch_env" $torch_args --threads "$torch_threads" >>"$work/pt"
    field peak_rss_mib "$work/torch.out" >>"$work/pt_rss"
  done
  read -r bm bl bh < <(stats <"$work/bp")
  read -r pm pl ph < <(stats <"$work/pt")
  read -r brss _ < <(stats <"$work/bp_rss")
  read -r prss _ < <(stats <"$work/pt_rss")
  [ "$threads" = 1 ] && peak=$peak_1t || peak=$peak_2t
  mark=" "; [ "${flops%\*}" != "$flops" ] && mark="*"
  awk -v n="$name" -v t="$threads" -v bm="$bm" -v bl="$bl" -v bh="$bh" -v pm="$pm" -v pl="$pl" -v ph="$ph" \
      -v f="${flops%\*}" -v mark="$mark" -v peak="$peak" -v brss="$brss" -v prss="$prss" -v s="$setting" 'BEGIN {
    printf "%-9s %3s %-26s %-26s %5.2fx %7.1f%s %5.1f%%%s %13s  %s\n", n, t,
      sprintf("%.0f (%.0f-%.0f)", bm, bl, bh), sprintf("%.0f (%.0f-%.0f)", pm, pl, ph),
      bm / pm, bm * f / 1e9, mark, 100 * bm * f / 1e9 / peak, mark, sprintf("%.0f / %.0f", brss, prss), s }'
  echo "$bm" >"$work/median-$name-$threads-128"
done

# Backplane's own scaling: the MLP with SGD at 1 and 2 threads, batch 128 (from above) and 256.
for threads in 1 2; do
  : >"$work/bp"
  for ((r = 1; r <= reps; r++)); do
    backplane "$work/run-scale-$threads-$r" bench/mlp.yaml "train.threads=$threads" "$sgd" "train.batch_size=256"
  done
  read -r m _ < <(stats <"$work/bp")
  echo "$m" >"$work/median-mlp-sgd-$threads-256"
done
for batch in 128 256; do
  awk -v b="$batch" -v one="$(cat "$work/median-mlp-sgd-1-$batch")" -v two="$(cat "$work/median-mlp-sgd-2-$batch")" \
    'BEGIN { printf "scaling  mlp-sgd batch %d: %.0f -> %.0f samples/s, %.2fx from 1 to 2 threads\n", b, one, two, two / one }'
done
echo "($reps runs each, alternating; GFLOP/s and peak are Backplane's. * the FLOPs of the direct computation:"
echo " Backplane's CNN does its second convolution by Winograd's algorithm, with fewer multiplications)"
