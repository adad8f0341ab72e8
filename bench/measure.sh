# Sourced by the benchmarks (bench/common.sh, bench/mpi_scaling.sh, bench/mlp_limits.sh):
# this machine's FP32 FMA peak, measured now (bench/peak.cpp), into $peak_1t and $peak_2t
# (GFLOP/s at 1 and 2 threads); cross_core, which measures what writing a cache line the
# other core has read costs now (cross_core_ratio: its multiple); and the helpers that read
# results: stats, field. Needs $work, a scratch folder.
g++ -O3 -march=native -pthread bench/peak.cpp -o "$work/peak"
g++ -O3 -march=native -pthread bench/cross_core.cpp -o "$work/cross_core"
"$work/peak" >"$work/peak.txt"
peak_1t=$(sed -n 's/^peak_gflops_1t //p' "$work/peak.txt")
peak_2t=$(sed -n 's/^peak_gflops_2t //p' "$work/peak.txt")

stats() {   # median min max of the numbers on stdin
  sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'
}
field() {   # the number after "key": in a file
  sed -n "s/.*\"$1\": \([0-9.e+]*\).*/\1/p" "$2" | head -1
}

# cross_core [ROUNDS]: runs bench/cross_core.cpp (default 3 rounds) into $work/cross_core.txt
# and sets $cross_own, $cross_both and $cross_one: for each way the weights were read, the
# median over the rounds of the slower thread's update (us). The MLP's 2-thread figures move
# with $cross_both / $cross_own: 1.1-2x in some hours of this machine kind, 5-7x in others.
cross_core() {
  "$work/cross_core" "${1:-3}" >"$work/cross_core.txt"
  local way
  for way in own both one; do
    printf -v "cross_$way" '%s' "$(sed -n "s/^cross_core_us_$way //p" "$work/cross_core.txt" |
      awk '{ print ($1 > $2) ? $1 : $2 }' | stats | cut -d' ' -f1)"
  done
}
cross_core_ratio() {   # after cross_core: the update after both read all over after each its half
  awk -v own="$cross_own" -v both="$cross_both" 'BEGIN { print both / own }'
}
cross_core_line() {   # after cross_core: the one-line summary the benchmarks print
  awk -v own="$cross_own" -v both="$cross_both" -v ratio="$(cross_core_ratio)" 'BEGIN {
    printf "cross-core writes: the MLP'\''s update takes %.1f us after both cores read its weights, %.1f after each read its half (%.1fx)\n", both, own, ratio }'
}
