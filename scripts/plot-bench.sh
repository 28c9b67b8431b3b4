#!/usr/bin/env bash
# Chart of a ttl-bench JSON file: for every case x batch, the speed-up over the dense baseline of the same run
# (OpenBLAS on the CPU; cuBLAS/cuDNN fp32 on the GPU) of AUTO and of the best libttl algorithm, log scale, with
# the break-even line at 1.
#   scripts/plot-bench.sh bench.json bench.png
# Needs jq and gnuplot (Debian: jq, gnuplot-nox).
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 JSON PNG" >&2
  exit 1
fi
json=$1
png=$2
for tool in jq gnuplot; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is not installed" >&2; exit 1; }
done
data=$(mktemp)
trap 'rm -f "$data"' EXIT

# One line per case x batch: label, AUTO speed-up, best libttl speed-up (baseline rows and n/a rows left out).
jq -r '
  [.rows | to_entries[] | .value + {index: .key}
   | select(.supported and .speedup_vs_dense != null and (.algo | IN("openblas", "cublas", "cudnn") | not))]
  | group_by([.case, .batch]) | sort_by(.[0].index)
  | .[] | [ "\(.[0].case) b\(.[0].batch)",
            ((map(select(.algo == "auto")) | first | .speedup_vs_dense) // "NaN"),
            (map(.speedup_vs_dense) | max) ]
  | @tsv' "$json" >"$data"
rows=$(wc -l <"$data")
if [ "$rows" -eq 0 ]; then
  echo "$0: no libttl rows in $json" >&2
  exit 1
fi
title=$(jq -r '.header | "ttl-bench \(.device) \(.suite) suite, \(.gpu // .cpu), \(.date), commit \(.commit)"' "$json")
width=$((700 + 22 * rows))
# y range: both data extremes and the break-even line, with a margin.
range=$(awk -F'\t' '{ for (i = 2; i <= 3; ++i) if ($i != "NaN") { if (!lo || $i < lo) lo = $i; if ($i > hi) hi = $i } }
  END { if (lo > 0.5) lo = 0.5; if (hi < 2) hi = 2; printf "%g:%g", lo / 1.5, hi * 1.5 }' "$data")

gnuplot <<GNUPLOT
set terminal pngcairo size ${width},700 font ",10" noenhanced
set output "${png}"
set title "${title//\"/}\nspeed-up vs dense (same run); > 1: faster than dense"
set datafile separator "\t"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set logscale y 10
set yrange [${range}]
set grid ytics mytics
set ylabel "dense time / libttl time"
set xtics rotate by -60 left font ",8"
set key outside top center horizontal
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb "black" dt 2
plot "${data}" using 2:xtic(1) title "AUTO" lc rgb "#1f77b4", \
     "" using 3 title "best libttl algorithm" lc rgb "#ff7f0e"
GNUPLOT
echo "wrote $png ($rows rows)"
