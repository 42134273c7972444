#!/usr/bin/env bash
# rss_trace.sh OUT.tsv CMD...: runs CMD and samples its memory every 0.2 s from /proc/PID/status:
# seconds, VmRSS, RssAnon (activations, scratch), RssFile (mmapped weights paged in), in MiB.
# Prints the sample with the largest VmRSS and the largest RssAnon; CMD's own output goes to stderr.
set -euo pipefail
out=$1; shift
"$@" >&2 &
pid=$!
t0=$(date +%s.%N)
printf 't_s\trss_mib\tanon_mib\tfile_mib\n' >"$out"
while kill -0 "$pid" 2>/dev/null; do
    awk -v t="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')" '
        /^VmRSS:/{r=$2} /^RssAnon:/{a=$2} /^RssFile:/{f=$2}
        END{if (r) printf "%s\t%.0f\t%.0f\t%.0f\n", t, r/1024, a/1024, f/1024}' "/proc/$pid/status" >>"$out" 2>/dev/null || true
    sleep 0.2
done
wait "$pid"
rc=$?
awk -F'\t' 'NR>1 && $2>r {r=$2; line=$0} NR>1 && $3>a {a=$3; al=$0}
    END{print "peak VmRSS sample (t, rss, anon, file MiB): " line; print "peak RssAnon sample: " al}' "$out"
exit $rc
