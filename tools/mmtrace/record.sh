#!/usr/bin/env bash
# Records linux-mm-trace files on this machine's kernel with mmtrace.c.
#
#   tools/mmtrace/record.sh PROFILE COUNT FIRST_SEED OUTDIR [NOPS]
#   tools/mmtrace/record.sh script SCRIPT_FILE OUTDIR      (hand-written ops, see scenarios/)
#
# Builds the recorder into a temporary directory on /tmp (ext4; the test files live there too),
# then records COUNT traces with seeds FIRST_SEED.. into OUTDIR/PROFILE-sSEED.jsonl.gz. NOPS
# defaults to 1000 for the stress profile and 300 otherwise. Every trace is recorded twice and kept
# only if both runs are byte-identical (as the shipped traces were). Exit status 1 if any seed failed.
set -euo pipefail

usage() {
  echo "usage: $0 PROFILE COUNT FIRST_SEED OUTDIR [NOPS] | $0 script SCRIPT_FILE OUTDIR" >&2
  exit 2
}
if [ "${1:-}" = script ]; then
  [ $# -eq 3 ] || usage
  script=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
  profile=script count=1 first=0 out=$3 nops=$script
else
  [ $# -ge 4 ] || usage
  profile=$1 count=$2 first=$3 out=$4 script=
  if [ $# -ge 5 ]; then nops=$5; elif [ "$profile" = stress ]; then nops=1000; else nops=300; fi
fi

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/mmtrace.XXXXXX)
trap 'rm -rf "$work"' EXIT
gcc -O2 -Wall -Wextra -Werror -o "$work/mmtrace" "$here/mmtrace.c"
mkdir -p "$out" "$work/files"

# ASLR off, empty environment, 8 MiB stack: the conditions of FORMAT.md section 10.
run() {
  (ulimit -s 8192 && exec env -i setarch "$(uname -m)" -R "$work/mmtrace" "$profile" "$1" "$nops" "$work/files") >"$2"
}

failed=0
for ((seed = first; seed < first + count; seed++)); do
  name="$profile-s$seed.jsonl.gz"
  [ -n "$script" ] && name="$(basename "${script%.*}").jsonl.gz"
  if ! run "$seed" "$work/a.jsonl" || ! run "$seed" "$work/b.jsonl"; then
    echo "FAIL $name: recorder aborted" >&2
    failed=$((failed + 1))
    continue
  fi
  if ! cmp -s "$work/a.jsonl" "$work/b.jsonl"; then
    echo "FAIL $name: two runs differ (nondeterministic), not kept" >&2
    failed=$((failed + 1))
    continue
  fi
  gzip -n -9 <"$work/a.jsonl" >"$out/$name"
  echo "recorded $out/$name"
done
[ "$failed" -eq 0 ]
