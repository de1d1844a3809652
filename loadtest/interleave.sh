#!/usr/bin/env bash
# Two builds' binaries, benchmarked alternately: A B A B ... The box's own
# noise moves CPU-per-chat figures by ±20 % between runs minutes apart, so a
# before/after comparison only counts when the runs interleave (A B B A A B ...).
#
#   loadtest/interleave.sh DIR_A DIR_B [ROUNDS] [BENCH]     (3, h)
#
# DIR_A and DIR_B each hold a release build's `health-agent` and `chatload`
# (e.g. copies of target/release from two commits). Prints each run's
# RESULT lines tagged A or B; take the medians.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
a=${1:?DIR_A}; b=${2:?DIR_B}; rounds=${3:-3}; bench=${4:-h}
for ((i = 1; i <= rounds; i++)); do
  # A B, then B A: whatever the run before leaves behind (a checkpoint, the
  # dropped database's cleanup) falls on both sides alike.
  order="A B"; ((i % 2)) || order="B A"
  for side in $order; do
    dir=$a; [[ $side == B ]] && dir=$b
    CAP_BIN=$dir loadtest/capacity.sh "$bench" 2>&1 | grep -E '^RESULT' | sed "s/^/$side $i: /"
  done
done
