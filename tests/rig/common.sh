# shellcheck shell=bash disable=SC2034
# Shared settings and helpers for tests/rig/up.sh and down.sh (sourced, not run).

RIG_STATE=${MAILORAMA_RIG_STATE:-/var/lib/mailorama-rig}   # keys, sshd config, rig.env
RIG_RUN=${MAILORAMA_RIG_RUN:-/run/mailorama-rig}           # pid files of what the rig started
RIG_APT_TRIXIE=/var/cache/mailorama-rig/apt-trixie        # side apt state for compose v2 (Debian 12)
RIG_SSH_PORT=${MAILORAMA_RIG_SSH_PORT:-2222}
RIG_SUDO_USER=mor-deployer                                 # a sudoer, for deploys with --sudo
RIG_BASE_IMAGE=${MAILORAMA_RIG_BASE_IMAGE:-debian:trixie-slim}
RIG_DOCKERD_LOG=/var/log/mailorama-rig-dockerd.log
RIG_SSHD_LOG=/var/log/mailorama-rig-sshd.log
RIG_SSHD_CONFIG=$RIG_STATE/sshd_config

log() { printf '[rig] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# pid_alive FILE COMM [CMDLINE-SUBSTRING]: print the pid in FILE if that process
# is alive, is named COMM and (optionally) has CMDLINE-SUBSTRING in its command
# line; otherwise print nothing and fail. Guards against stale/reused pids.
pid_alive() {
    local file=$1 comm=$2 want=${3:-} pid
    [[ -s $file ]] || return 1
    pid=$(tr -dc 0-9 <"$file")
    [[ -n $pid && -d /proc/$pid ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]] || return 1
    if [[ -n $want ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$want" || return 1
    fi
    echo "$pid"
}

# stop_pid PID NAME TIMEOUT: SIGTERM, wait up to TIMEOUT seconds, then SIGKILL.
stop_pid() {
    local pid=$1 name=$2 timeout=$3 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < timeout * 10; i++)); do
        [[ -d /proc/$pid ]] || { log "$name (pid $pid) stopped"; return 0; }
        sleep 0.1
    done
    log "$name (pid $pid) did not stop within ${timeout}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
}
