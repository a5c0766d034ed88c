#!/usr/bin/env bash
# Install Debian's SLURM (slurm-wlm: slurmctld, slurmd, client tools) and munge.
#
# Exit status: 0 when sinfo, sbatch, squeue, slurmctld, slurmd and munged are on PATH
# afterwards; 77 (the "skip" status of automake test harnesses) with one line on stderr
# saying why when this machine cannot install them (not root, no apt-get, the Debian
# mirror unreachable); anything else is a real failure.
set -euo pipefail

needed=(sinfo sbatch squeue scontrol slurmctld slurmd munged)

have_all() {
    local tool
    for tool in "${needed[@]}"; do
        # slurmctld, slurmd and munged live in /usr/sbin, which a non-login PATH may lack.
        command -v "$tool" >/dev/null 2>&1 || [[ -x "/usr/sbin/$tool" ]] || return 1
    done
}

skip() {
    echo "install_slurm.sh: cannot install SLURM here: $*" >&2
    exit 77
}

if have_all; then
    echo "install_slurm.sh: SLURM and munge already installed"
    exit 0
fi
[[ "$(id -u)" -eq 0 ]] || skip "not root (uid $(id -u)); apt-get install needs root"
command -v apt-get >/dev/null 2>&1 || skip "no apt-get (not a Debian/Ubuntu machine)"

export DEBIAN_FRONTEND=noninteractive
# apt's output goes to a log that is kept only when something fails.
apt_log=$(mktemp /tmp/install_slurm.XXXXXX.log)
# Bounded: a machine without a route to the mirror should skip in minutes, not hang.
if ! timeout 300 apt-get update -q -o DPkg::Lock::Timeout=120 -o Acquire::Retries=2 -o Acquire::http::Timeout=30 >"$apt_log" 2>&1; then
    tail -n 5 "$apt_log" >&2 || true
    skip "apt-get update failed (no network to the Debian mirror?); log in $apt_log"
fi
# --no-install-recommends keeps out slurmdbd/MariaDB: the test cluster has no accounting.
if ! timeout 900 apt-get install -y -q -o DPkg::Lock::Timeout=120 --no-install-recommends slurm-wlm munge >>"$apt_log" 2>&1; then
    tail -n 20 "$apt_log" >&2 || true
    if grep -qE "Unable to locate package|Temporary failure resolving|Could not connect|Failed to fetch" "$apt_log"; then
        skip "apt-get install slurm-wlm munge failed: package or mirror unavailable; log in $apt_log"
    fi
    echo "install_slurm.sh: apt-get install slurm-wlm munge failed; log in $apt_log" >&2
    exit 1
fi
rm -f "$apt_log"
have_all || { echo "install_slurm.sh: installed slurm-wlm and munge but some of ${needed[*]} are missing" >&2; exit 1; }
echo "install_slurm.sh: installed $(dpkg-query -W -f='slurm-wlm ${Version}' slurm-wlm), $(dpkg-query -W -f='munge ${Version}' munge)"
