#!/usr/bin/env bash
# Run one command against a throwaway one-node SLURM cluster on this machine:
# install SLURM if needed, start the cluster, run the command, stop the cluster.
#
#   tests/slurm/with_slurm.sh .venv/bin/snakemake --workflow-profile profiles/slurm \
#       --slurm-status-command squeue --configfile config/smoke.yaml --cores 2
#
# The command's exit status is returned (77 if the machine cannot run the cluster).
# tests/test_slurm.py starts its own cluster; do not run it under this script.
set -uo pipefail

[[ $# -ge 1 ]] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$here/install_slurm.sh" || exit $?
state=$(mktemp -d /tmp/synthshare-slurm-XXXXXX)
trap '"$here/stop_slurm.sh" "$state" && rm -rf "$state"' EXIT
"$here/start_slurm.sh" "$state" || exit $?
PATH="/usr/sbin:$PATH" "$@"
