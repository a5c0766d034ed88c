#!/usr/bin/env bash
# Stop the test cluster that start_slurm.sh started in STATE_DIR, and only that one.
#
#   tests/slurm/stop_slurm.sh STATE_DIR
#
# 1. cancels the jobs still queued or running on it and waits (bounded) for them to go;
# 2. signals the daemons listed in STATE_DIR/pids (TERM, then KILL after
#    SLURM_STOP_TIMEOUT seconds, default 20), each only if that pid still runs the
#    program it was recorded as; then any slurmstepd that holds files in STATE_DIR
#    (a job step of this cluster that outlived its slurmd);
# 3. removes /etc/slurm/slurm.conf if its marker names STATE_DIR.
# Safe to run twice, and on a half-started cluster. Exit 1 if a daemon survives.
set -uo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 STATE_DIR" >&2; exit 2; }
[[ -d "$1" ]] || { echo "stop_slurm.sh: $1: no such state directory; nothing to stop"; exit 0; }
state=$(cd "$1" && pwd)
timeout_s=${SLURM_STOP_TIMEOUT:-20}
conf=/etc/slurm/slurm.conf
marker="# synthshare test cluster, state in $state"
export PATH="/usr/sbin:/sbin:$PATH"

runs() {  # runs PID NAME: is PID alive and running NAME?
    [[ -r "/proc/$1/comm" ]] && [[ "$(cat "/proc/$1/comm" 2>/dev/null)" == "$2" ]]
}

ours=false
[[ -f "$conf" ]] && [[ "$(head -n 1 "$conf")" == "$marker" ]] && ours=true

# 1. Jobs: only while this cluster's controller answers through our config.
ctld_pid=$(awk '$1 == "slurmctld" {print $2}' "$state/pids" 2>/dev/null)
if $ours && [[ -n "$ctld_pid" ]] && runs "$ctld_pid" slurmctld; then
    jobs=$(timeout 10 squeue -h -o '%i' 2>/dev/null | tr '\n' ' ')
    if [[ -n "${jobs// /}" ]]; then
        echo "stop_slurm.sh: cancelling jobs $jobs"
        timeout 10 scancel $jobs 2>/dev/null || true
        deadline=$((SECONDS + timeout_s))
        while [[ -n "$(timeout 10 squeue -h -o '%i' 2>/dev/null)" ]] && ((SECONDS < deadline)); do
            sleep 1
        done
    fi
fi

# 2. Daemons, in reverse start order (slurmd, slurmctld, munged).
stop_pid() {  # stop_pid NAME PID
    local name=$1 pid=$2 deadline
    runs "$pid" "$name" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    deadline=$((SECONDS + timeout_s))
    while runs "$pid" "$name" && ((SECONDS < deadline)); do sleep 0.2; done
    if runs "$pid" "$name"; then
        echo "stop_slurm.sh: $name (pid $pid) ignored SIGTERM for ${timeout_s}s; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null
        sleep 0.5
    fi
    echo "stop_slurm.sh: stopped $name (pid $pid)"
}
if [[ -f "$state/pids" ]]; then
    tac "$state/pids" | while read -r name pid; do
        stop_pid "$name" "$pid"
    done
fi
for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    runs "$pid" slurmstepd || continue
    if ls -l "$proc/fd" 2>/dev/null | grep -qF -- "$state/"; then
        stop_pid slurmstepd "$pid"
    fi
done

# 3. The config, only if it is ours.
if $ours; then
    rm -f "$conf"
    echo "stop_slurm.sh: removed $conf"
fi

survivors=""
if [[ -f "$state/pids" ]]; then
    while read -r name pid; do
        runs "$pid" "$name" && survivors+=" $name($pid)"
    done <"$state/pids"
fi
[[ -z "$survivors" ]] || { echo "stop_slurm.sh: still running:$survivors" >&2; exit 1; }
exit 0
