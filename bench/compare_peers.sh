#!/usr/bin/env bash
# Training throughput, Backplane against every peer a C++ user could pick instead, on this
# machine, side by side, each peer in its best setting.
# Usage: bash bench/compare_peers.sh [REPS [CASE...]]   (default 3 timed runs of each, alternating;
#        CASE: a case's name, e.g. resnet, to run only those, and the targets they decide)
# Models: the MLP 784-256-128-10 with SGD+momentum and with Adam, at 2 threads and at 1,
# and a LeNet-like CNN with Adam at 2 threads; batch 128, Fashion-MNIST. Then the shipped
# models whose targets are against PyTorch's same model, at 2 threads: the Fashion CNN and
# the ResNet (experiments/fashion_mnist_{cnn,resnet}.yaml, on the first 10,000 and 6,000
# images, the ResNet without its augmentation and validation split, as its twin), the char LSTM and the char
# transformer (experiments/char_{lstm,transformer}.yaml, on fortune's `cookie` file,
# 2 epochs, without the transformer's warmup epoch).
# Peers: PyTorch (Debian's python3-torch, bench/torch_train.py and bench/torch_char.py),
# LibTorch's C++ API, dlib's DNN and tiny-dnn (bench/peers/*.cpp, the same models, data,
# batch and optimizers; each file's top comment says where a library differs). The shipped
# models are written for PyTorch only ("-" in the table): their targets are PyTorch's.
#
# Each peer gets the best of a search made here and now for each case: its threads (within
# the case's), OpenBLAS's threads where it calls OpenBLAS, and the allocator (glibc's malloc
# as it comes, glibc's malloc tuned to keep its memory, jemalloc, or the tuned malloc with
# 2 MiB pages): glibc's tunables alone moved PyTorch's MLP with Adam from 18k to 51-61k
# samples/s on one machine of this kind. Each setting is tried once on a short run; the
# fastest is then run REPS times, alternating with Backplane. Backplane runs as shipped (its
# steps allocate nothing; it sets glibc's 2 MiB pages for itself). OPENBLAS_CORETYPE is
# unset for all (it can force half-speed AVX2 kernels).
#
# Prints samples/s (median of the runs) of every framework with Backplane's ratio to it,
# Backplane's GFLOP/s and share of this machine's FMA peak (bench/peak.cpp, measured at the
# start), what writing a cache line the other core has read costs at the start, right after
# each of Backplane's timed runs (the cross-core column: the lowest and highest of a case's
# runs, as a multiple of writing lines only the writer holds) and at the end
# (bench/cross_core.cpp: the MLP's 2-thread figures move with it), each peer's chosen
# setting, Backplane's 1 -> 2 thread scaling of the MLP, and whether each target of
# docs/performance.md is met.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
only=" ${*:2} "   # the cases asked for; blank: all
[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "bench: REPS must be a count of runs, got '$reps' (usage: bash bench/compare_peers.sh [REPS [CASE...]])" >&2; exit 2; }
peers=(pytorch libtorch dlib tinydnn)
sgd="optimizer={name: sgd, lr: 0.1, momentum: 0.9}"
text="data.path=/usr/share/games/fortunes/cookie"
# name | threads | backplane yaml | backplane --set values (;-separated) | peers ("all" or
# names) | peer arguments of a timed run (threads are searched) | of a short run (the
# search) | FLOPs per sample (a * marks FLOPs of a direct computation that Backplane does
# with fewer: Winograd's convolution)
cases=(
  "mlp-sgd|2|bench/mlp.yaml|$sgd|all|--model mlp --opt sgd --epochs 2|--model mlp --opt sgd --epochs 1 --limit 6000|1.01e6"
  "mlp-adam|2|bench/mlp.yaml||all|--model mlp --opt adam --epochs 2|--model mlp --opt adam --epochs 1 --limit 6000|1.01e6"
  "mlp-sgd|1|bench/mlp.yaml|$sgd|all|--model mlp --opt sgd --epochs 2|--model mlp --opt sgd --epochs 1 --limit 6000|1.01e6"
  "mlp-adam|1|bench/mlp.yaml||all|--model mlp --opt adam --epochs 2|--model mlp --opt adam --epochs 1 --limit 6000|1.01e6"
  "cnn-adam|2|bench/cnn.yaml||all|--model cnn --opt adam --epochs 1 --limit 20000|--model cnn --opt adam --epochs 1 --limit 3000|22.3e6*"
  "fashion-cnn|2|experiments/fashion_mnist_cnn.yaml|train.epochs=1;data.limit=10000;data.test_limit=1000|pytorch|--model fashion_cnn --epochs 1 --limit 10000|--model fashion_cnn --epochs 1 --limit 2000|114.1e6*"
  "resnet|2|experiments/fashion_mnist_resnet.yaml|train.epochs=1;data.limit=6000;data.augment={};data.validation_split=0;data.test_limit=1000;optimizer.schedule.warmup=0|pytorch|--model resnet --epochs 1 --limit 6000|--model resnet --epochs 1 --limit 1500|120.9e6*"
  "char-lstm|2|experiments/char_lstm.yaml|train.epochs=2;$text|pytorch|--model lstm --epochs 2 --warmup 0 --path ${text#*=}|--model lstm --epochs 1 --steps 40 --path ${text#*=}|151.0e6"
  "char-transformer|2|experiments/char_transformer.yaml|train.epochs=2;optimizer.schedule.warmup=0;$text|pytorch|--model transformer --epochs 2 --warmup 0 --path ${text#*=}|--model transformer --epochs 1 --steps 40 --path ${text#*=}|176.2e6"
)

names=" "
for c in "${cases[@]}"; do [[ $names == *" ${c%%|*} "* ]] || names+="${c%%|*} "; done
for name in $only; do
  [[ $names == *" $name "* ]] || { echo "bench: no case '$name'; the cases:$names" >&2; exit 2; }
done

source bench/common.sh
bash scripts/setup.sh libtorch-dev libdlib-dev tiny-dnn libcereal-dev libstb-dev
peers_bin=build/peers
bash bench/peers/build.sh "$peers_bin" >&2

backplane() {   # out-folder yaml [--set values, ;-separated]...: one run; appends samples/s
  local out=$1 yaml=$2 s; shift 2
  local args=() sets=()
  IFS=';' read -ra sets <<<"$(IFS=';'; echo "$*")"
  for s in "${sets[@]}"; do [ -n "$s" ] && args+=(--set "$s"); done
  build/bin/backplane run "$yaml" --out "$out" --quiet "${args[@]}"
  field samples_per_second "$out/summary.json" >>"$work/bp"
}
peer() {   # peer environment arguments...: one run; prints its RESULT line's samples/s, or
           # nothing (and why, on stderr) when the run failed
  local who=$1 environment=$2; shift 2
  local program=("$peers_bin/${who}_train") speed
  if [ "$who" = pytorch ]; then
    case " $* " in
      *" --model lstm "* | *" --model transformer "*) program=(/usr/bin/python3 bench/torch_char.py) ;;
      *) program=(/usr/bin/python3 bench/torch_train.py) ;;
    esac
  fi
  # shellcheck disable=SC2086
  if ! env $environment "${program[@]}" "$@" >"$work/peer.out" 2>"$work/peer.err" </dev/null; then
    echo "bench: $who $* failed: $(tail -1 "$work/peer.err")" >&2
    return 0
  fi
  speed=$(field samples_per_second "$work/peer.out")
  [ -n "$speed" ] || echo "bench: $who $* printed no samples_per_second" >&2
  echo "$speed"
}
# The slow peers train on fewer samples (samples/s counts steps, not epochs).
timed_args() {   # peer arguments: the arguments of a timed run
  local who=$1 given=$2
  if [ "$who" = tinydnn ]; then
    given=${given/--epochs 2/--epochs 1}; given=${given/--limit 20000/}
    [[ $given == *cnn* ]] && given="$given --limit 3000" || given="$given --limit 20000"
  fi
  echo "$given"
}
# The settings a peer is searched over at `threads`: "label|environment|--threads value".
settings() {   # peer threads
  local who=$1 threads=$2 t b a alloc env
  for a in "${allocators[@]}"; do
    IFS='|' read -r alloc env <<<"$a"
    case $who in
      pytorch | libtorch)   # its own threads and OpenBLAS's (its dense products)
        for t in $(seq 1 "$threads"); do for b in $(seq 1 "$threads"); do
          echo "$t thr, OpenBLAS $b thr, $alloc|OPENBLAS_NUM_THREADS=$b $env|$t"
        done; done ;;
      dlib)   # only its products are threaded, by OpenBLAS: --threads sets OpenBLAS's
        for t in $(seq 1 "$threads"); do echo "OpenBLAS $t thr, $alloc|$env|$t"; done ;;
      tinydnn)   # one thread (its serial build) or every core (its std::async threads)
        echo "1 thr, $alloc|$env|1"
        [ "$threads" -gt 1 ] && [ "$(nproc)" -eq "$threads" ] && echo "$threads thr, $alloc|$env|$threads" ;;
    esac
  done
}
# The fastest setting of a peer for a case, from one short run of each (the case's short
# arguments; 1,000 CNN images for tiny-dnn).
best_setting() {   # peer threads short-arguments
  local who=$1 threads=$2 short=$3 best=0 choice="" label env t speed
  [[ $short == *cnn* && $who == tinydnn ]] && short="${short/--limit 3000/--limit 1000}"
  while IFS='|' read -r label env t; do
    # shellcheck disable=SC2086
    speed=$(peer "$who" "$env" $short --threads "$t")
    [ -n "$speed" ] || continue
    if awk -v s="$speed" -v b="$best" 'BEGIN { exit !(s > b) }'; then best=$speed choice="$label|$env|$t"; fi
  done < <(settings "$who" "$threads")
  echo "$choice"
}

printf 'FP32 FMA peak measured now: %s GFLOP/s at 1 thread, %s at 2\n' "$peak_1t" "$peak_2t"
cross_core
cross_core_line
printf '%-16s %3s %9s' model thr backplane
for p in "${peers[@]}"; do printf ' %18s' "$p (ratio)"; done
printf ' %8s %6s %11s\n' "GFLOP/s" peak cross-core
: >"$work/chosen"
for c in "${cases[@]}"; do
  IFS='|' read -r name threads yaml set runs peer_args short_args flops <<<"$c"
  [[ $only == "  " || $only == *" $name "* ]] || continue
  runs_peer() { [[ $runs == all || " $runs " == *" $1 "* ]]; }
  for p in "${peers[@]}"; do
    echo >"$work/setting-$p"   # no setting: the peer does not run
    : >"$work/speed-$p"
    runs_peer "$p" || continue
    best_setting "$p" "$threads" "$short_args" >"$work/setting-$p"
  done
  : >"$work/bp"
  : >"$work/cross"
  for ((r = 1; r <= reps; r++)); do
    backplane "$work/run-$name-$threads-$r" "$yaml" "train.threads=$threads" "$set"
    cross_core 1   # the state this run met, measured right after it
    cross_core_ratio >>"$work/cross"
    for p in "${peers[@]}"; do
      IFS='|' read -r _ env t <"$work/setting-$p"
      [ -n "$t" ] || continue   # no setting of this peer ran
      # shellcheck disable=SC2046
      peer "$p" "$env" $(timed_args "$p" "$peer_args") --threads "$t" | sed '/^$/d' >>"$work/speed-$p"
    done
  done
  read -r bm _ < <(stats <"$work/bp")
  echo "$bm" >"$work/median-$name-$threads-128"
  [ "$threads" = 1 ] && peak=$peak_1t || peak=$peak_2t
  mark=" "; [ "${flops%\*}" != "$flops" ] && mark="*"
  printf '%-16s %3s %9.0f' "$name" "$threads" "$bm"
  for p in "${peers[@]}"; do
    IFS='|' read -r label _ <"$work/setting-$p"
    if ! runs_peer "$p"; then
      printf ' %18s' -
      continue
    fi
    if [ ! -s "$work/speed-$p" ]; then   # every run of it failed (said on stderr)
      printf ' %18s' failed
      echo "  $name $threads thr, $p: failed" >>"$work/chosen"
      continue
    fi
    read -r pm _ < <(stats <"$work/speed-$p")
    echo "$pm" >"$work/median-$name-$threads-$p"
    awk -v b="$bm" -v p="$pm" 'BEGIN { printf " %18s", sprintf("%.0f (%.2fx)", p, b / p) }'
    echo "  $name $threads thr, $p: $label" >>"$work/chosen"
  done
  read -r _ cross_min cross_max < <(stats <"$work/cross")
  awk -v bm="$bm" -v f="${flops%\*}" -v m="$mark" -v peak="$peak" -v lo="$cross_min" -v hi="$cross_max" \
    'BEGIN { printf " %7.1f%s %5.1f%%%s %11s\n", bm * f / 1e9, m, 100 * bm * f / 1e9 / peak, m, sprintf("%.1f-%.1fx", lo, hi) }'
done
echo "each peer's best setting (its threads, OpenBLAS's, the allocator), searched per case:"
cat "$work/chosen"

ran() { [ -s "$work/median-$1" ]; }   # whether a median (case-threads-128, or -peer) was measured

# Backplane's own scaling: the MLP with SGD at 1 and 2 threads, batch 128 (from above) and 256.
if ran mlp-sgd-1-128 && ran mlp-sgd-2-128; then
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
fi

# The machine again: its two virtual cores can move between the cases (docs/performance.md,
# What bounds the MLP at 2 threads).
cross_core
printf 'at the end, '
cross_core_line

# The targets (docs/performance.md), judged on the medians above: those of the cases run.
target() {   # description value threshold unit
  awk -v d="$1" -v v="$2" -v t="$3" -v u="$4" \
    'BEGIN { printf "target  %-52s %7.2f%s (>= %s%s)  %s\n", d, v, u, t, u, (v >= t ? "met" : "NOT MET") }'
}
ratio() {   # median-file median-file: the first over the second
  awk -v a="$(cat "$work/median-$1")" -v b="$(cat "$work/median-$2")" 'BEGIN { print a / b }'
}
for opt in sgd adam; do
  ran "mlp-$opt-2-128" && target "mlp-$opt at 2 threads: share of the 2-thread FMA peak" \
    "$(awk -v s="$(cat "$work/median-mlp-$opt-2-128")" -v p="$peak_2t" 'BEGIN { print 100 * s * 1.01e6 / 1e9 / p }')" 65 "%"
done
ran mlp-sgd-1-128 && ran mlp-sgd-2-128 &&
  target "mlp-sgd scaling from 1 to 2 threads at batch 128" "$(ratio mlp-sgd-2-128 mlp-sgd-1-128)" 1.8 x
if ran cnn-adam-2-128; then
  ran cnn-adam-2-pytorch && target "cnn-adam against PyTorch's best" "$(ratio cnn-adam-2-128 cnn-adam-2-pytorch)" 1.5 x
  { cat "$work"/median-cnn-adam-2-{pytorch,libtorch,dlib,tinydnn} 2>/dev/null || true; } | sort -g | tail -1 >"$work/median-fastest"
  ran fastest && target "cnn-adam against the fastest peer" "$(ratio cnn-adam-2-128 fastest)" 1.0 x
fi
for shipped in fashion-cnn:1.5 resnet:1.5 char-lstm:1.3 char-transformer:1.3; do
  name=${shipped%:*}
  ran "$name-2-128" || continue
  if ran "$name-2-pytorch"; then
    target "$name against PyTorch's same model" "$(ratio "$name-2-128" "$name-2-pytorch")" "${shipped#*:}" x
  else
    echo "target  $name against PyTorch's same model: PyTorch failed  NOT MET"
  fi
done
echo "($reps timed runs each, alternating; GFLOP/s and peak are Backplane's. * the FLOPs of the direct computation:"
echo " Backplane does the CNN's second convolution (8x8 outputs) and the ResNet's 7x7 stage by Winograd's"
echo " algorithm, with fewer multiplications."
echo " tiny-dnn trains on 20,000 MLP samples (1 epoch) and 3,000 CNN images: samples/s counts steps.)"
