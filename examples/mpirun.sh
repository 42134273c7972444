#!/usr/bin/env bash
# Run a cdiffusers batch manifest as NP processes under mpirun, one share each (docs/SCALE.md).
#
#   examples/mpirun.sh MODEL_DIR JOBS OUT [NP]
#
# NP defaults to 4. Each process takes its share from OMPI_COMM_WORLD_RANK/SIZE (Open MPI) or
# PMI_RANK/PMI_SIZE (MPICH's Hydra, Intel MPI). Settings from the environment:
#   THREADS      threads per process (default: this machine's processors / NP, at least 1;
#                set it when the ranks run on other hosts)
#   CDIFFUSERS   the program (default cdiffusers on PATH; build/cdiffusers for a build tree)
#   MPIRUN       the launcher (default mpirun)
#   MPIRUN_ARGS  more launcher options, e.g. "-H node1,node2" (then OUT and MODEL_DIR must be on a
#                shared filesystem), or "--allow-run-as-root --oversubscribe" for Open MPI in a
#                container or CI job only
# Inside a Slurm array task the ranks split that task's share further (docs/SCALE.md, "Shares").
set -euo pipefail

if [[ $# -lt 3 || $# -gt 4 ]]; then
    echo "usage: $0 MODEL_DIR JOBS OUT [NP]" >&2
    exit 2
fi
model=$1 jobs=$2 out=$3 np=${4:-4}
if ! [[ $np =~ ^[1-9][0-9]*$ ]]; then
    echo "$0: NP must be a positive integer (got '$np')" >&2
    exit 2
fi
cdiffusers=${CDIFFUSERS:-cdiffusers}
mpirun=${MPIRUN:-mpirun}
threads=${THREADS:-$(($(nproc) / np))}
((threads >= 1)) || threads=1

launcher=()
read -r -a launcher <<<"${MPIRUN_ARGS:-}"
if "$mpirun" --version 2>&1 | grep -q "Open MPI"; then
    # Open MPI binds each rank to a core or a socket by default; let a rank's threads spread.
    launcher+=(--bind-to none)
fi

mkdir -p "$out"
status=0
"$mpirun" -np "$np" ${launcher[@]+"${launcher[@]}"} \
    "$cdiffusers" batch "$model" "$jobs" --out-dir "$out" --threads "$threads" || status=$?

# mpirun ends the other ranks when one exits non-zero: run this again to finish the rest
# (done jobs are skipped). Failed lines stay failed until the manifest is fixed.
if [[ -s $out/failures.jsonl ]]; then
    echo "$0: $(wc -l <"$out/failures.jsonl") failed job(s), from $out/failures.jsonl:" >&2
    head -n 5 "$out/failures.jsonl" >&2
fi
exit "$status"
