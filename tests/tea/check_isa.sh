#!/usr/bin/env bash
# Issue 10, item 19: the binary must run on AVX2-only CPUs. AVX-512 instructions (zmm registers,
# mask registers k0-k7, embedded broadcasts, the EVEX-only registers xmm/ymm16-31) may appear only
# in the avx512 kernels: functions named *Avx512* and the files *_avx512.cc.o and gemm_bf16.cc.o
# (whose AVX-512 micro-kernel the dispatch calls only on AVX-512 CPUs). Everything else in
# libbaton_tea.a, the avx2 and generic kernels included, must be free of them.
#   check_isa.sh path/to/libbaton_tea.a
set -euo pipefail
lib="$1"
command -v objdump >/dev/null || { echo "check_isa.sh: objdump not found" >&2; exit 2; }
objdump -d --no-show-raw-insn -C "$lib" | awk '
  /^In archive/ { next }
  /^[^ ]+\.o:[ \t]+file format/ { obj = $1; sub(/:$/, "", obj); next }
  /^[0-9a-f]+ <.*>:$/ { fn = $0; next }
  /zmm|%k[0-7]|\{1to|[xy]mm(1[6-9]|2[0-9]|3[01])/ {
    if (obj ~ /_avx512\.cc\.o$/ || obj ~ /^gemm_bf16\.cc\.o$/ || fn ~ /Avx512/) { allowed++; next }
    bad++
    if (bad <= 20) print "AVX-512 instruction outside the avx512 kernels: " obj " " fn ": " $0
  }
  END {
    printf "avx512_instructions_in_avx512_kernels=%d outside=%d\n", allowed, bad
    if (allowed == 0) { print "no AVX-512 kernel found: is this libbaton_tea.a?"; exit 1 }
    exit bad > 0
  }'
