# Sourced by the benchmarks (bench/common.sh, bench/mpi_scaling.sh, bench/mlp_limits.sh):
# this machine's FP32 FMA peak, measured now (bench/peak.cpp), into $peak_1t and $peak_2t
# (GFLOP/s at 1 and 2 threads), and the helpers that read results: stats, field. Needs
# $work, a scratch folder.
g++ -O3 -march=native -pthread bench/peak.cpp -o "$work/peak"
"$work/peak" >"$work/peak.txt"
peak_1t=$(sed -n 's/^peak_gflops_1t //p' "$work/peak.txt")
peak_2t=$(sed -n 's/^peak_gflops_2t //p' "$work/peak.txt")

stats() {   # median min max of the numbers on stdin
  sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'
}
field() {   # the number after "key": in a file
  sed -n "s/.*\"$1\": \([0-9.e+]*\).*/\1/p" "$2" | head -1
}
