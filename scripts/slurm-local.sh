#!/usr/bin/env bash
# A real single-node SLURM on 127.0.0.1, for CI and for trying profiles/slurm on one machine.
#
#   sudo scripts/slurm-local.sh start    # install (Debian packages), configure, start, wait idle
#   sudo scripts/slurm-local.sh status   # sinfo
#   sudo scripts/slurm-local.sh stop     # stop the daemons, remove their pid files and slurm.conf
#
# SLURM_LOCAL_GPUS=1 declares one GPU on the node (gres gpu with /dev/null as its device): enough
# for the scheduler to accept and record `--gpus=1` jobs on a machine without one (the tests);
# no device is bound, so on a real GPU machine every job sees every GPU.
#
# No accounting (no slurmdbd/MariaDB): profiles/slurm therefore asks the Snakemake plugin to
# poll `squeue`, and MinJobAge keeps finished jobs in squeue long enough for it. Needs root
# (daemons, /etc/slurm) and apt-get on a Debian-like system; runs without systemd.
set -euo pipefail

PACKAGES=(slurmctld slurmd slurm-client munge)
CONF=/etc/slurm/slurm.conf
PIDS=(/run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid)

die() { echo "slurm-local: $*" >&2; exit 1; }

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null && return
    # Exit status 3: the packages could not be had (no apt-get, no package index reachable).
    if ! command -v apt-get >/dev/null; then
        echo "slurm-local: apt-get not found: install ${PACKAGES[*]} by hand" >&2
        exit 3
    fi
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${PACKAGES[@]}" >/dev/null; }; then
        echo "slurm-local: could not install ${PACKAGES[*]}" >&2
        exit 3
    fi
}

start_munge() {
    if [[ ! -s /etc/munge/munge.key ]]; then
        runuser -u munge -- mungekey --create
    fi
    mkdir -p /run/munge
    chown munge:munge /run/munge
    if ! munge -n >/dev/null 2>&1; then
        runuser -u munge -- /usr/sbin/munged
    fi
}

write_config() {  # $1: the file to write
    local host cpus mem_mb gpus=${SLURM_LOCAL_GPUS:-0} gres=""
    host=$(hostname -s)
    cpus=$(nproc)
    # ~90 % of the machine's memory, so that a job's --mem fits next to the daemons.
    mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
    chown slurm:slurm /var/spool/slurmctld /var/log/slurm
    ((gpus <= 1)) || die "SLURM_LOCAL_GPUS: 0 or 1 (a stand-in device), not $gpus"
    if ((gpus > 0)); then
        gres=" Gres=gpu:${gpus}"
        echo "NodeName=${host} Name=gpu Count=1 File=/dev/null" >/etc/slurm/gres.conf
    else
        rm -f /etc/slurm/gres.conf
    fi
    cat >"$1" <<EOF
# Written by scripts/slurm-local.sh: one node on the loopback, no accounting.
ClusterName=ci
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# Finished jobs stay visible to squeue and scontrol for an hour: the plugin polls squeue (no
# sacct here), and the tests read the records after slow runs on a busy machine.
MinJobAge=3600
AccountingStorageType=accounting_storage/none
GresTypes=gpu
# One line per finished job: the scheduler's own record, since there is no accounting database.
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem_mb}${gres} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
}

wait_idle() {
    local state
    for _ in $(seq 60); do
        state=$(sinfo -h -o %T 2>/dev/null | head -1 || true)
        if [[ "$state" == idle* || "$state" == mixed* || "$state" == allocated* ]]; then
            echo "slurm-local: node $(hostname -s) is $state"
            return
        fi
        if [[ "$state" == drain* ]]; then  # drained under an earlier config: this one is new
            scontrol update NodeName="$(hostname -s)" State=RESUME || true
        fi
        sleep 1
    done
    tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
    die "the node did not become idle within 60 s (state: ${state:-none})"
}

running() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
    [[ $EUID -eq 0 ]] || die "run as root (daemons and /etc/slurm)"
    install_packages
    start_munge
    local new
    new=$(mktemp)
    write_config "$new"
    if ! cmp -s "$new" "$CONF"; then  # a changed node description needs fresh daemons
        stop_daemons /run/slurmd.pid /run/slurmctld.pid
        mv "$new" "$CONF"
        chmod 644 "$CONF"
    else
        rm -f "$new"
    fi
    running /run/slurmctld.pid || slurmctld
    running /run/slurmd.pid || slurmd
    wait_idle
}

stop_daemons() {  # pid files, in the order to stop them
    local pidfile pid
    for pidfile in "$@"; do
        if running "$pidfile"; then
            pid=$(cat "$pidfile")
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        # A stale slurmctld pid file makes the package's removal script call scancel and fail.
        rm -f "$pidfile"
    done
}

stop() {
    stop_daemons "${PIDS[@]}"  # the reverse of the start order
    # Back to the client as Debian installs it, unconfigured: every `scontrol` then fails at
    # once, whereas a slurm.conf naming a stopped controller makes it wait ~10 s for an answer,
    # and the Snakemake SLURM plugin runs `scontrol show config` on every snakemake start.
    # `start` writes the file again.
    rm -f "$CONF"
    echo "slurm-local: stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) sinfo ;;
    *) die "usage: $0 start|stop|status" ;;
esac
