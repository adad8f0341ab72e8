# Sourced by the benchmarks: this machine's FP32 FMA peak, measured now (bench/peak.cpp),
# into $peak_1t and $peak_2t (GFLOP/s at 1 and 2 threads). Needs $work, a scratch folder.
g++ -O3 -march=native -pthread bench/peak.cpp -o "$work/peak"
"$work/peak" >"$work/peak.txt"
peak_1t=$(sed -n 's/^peak_gflops_1t //p' "$work/peak.txt")
peak_2t=$(sed -n 's/^peak_gflops_2t //p' "$work/peak.txt")
