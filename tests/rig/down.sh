#!/usr/bin/env bash
# Stop what tests/rig/up.sh started (its sshd and dockerd, per the pid files in the run dir).
# Safe to run twice, and after a failed test run. Keeps images, build cache, packages and keys.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $EUID -eq 0 ]] || die "run as root"
[[ -d $RIG_RUN ]] || { log "nothing to stop ($RIG_RUN absent)"; exit 0; }
exec 9>"$RIG_RUN/lock"
flock -w 300 9 || die "another rig up/down holds $RIG_RUN/lock"

# sshd: the listener; open sessions end with their clients.
if pid=$(pid_alive "$RIG_RUN/sshd.pid" sshd "$RIG_SSHD_CONFIG"); then
    stop_pid "$pid" sshd 10
else
    log "sshd: not started by the rig (or already stopped)"
fi
rm -f "$RIG_RUN/sshd.pid"

# dockerd: stops its containers (up to its 15 s shutdown timeout) and its own containerd.
if pid=$(pid_alive "$RIG_RUN/dockerd.pid" dockerd); then
    stop_pid "$pid" dockerd 60
    # After a SIGKILL its managed containerd may linger: stop that too.
    if cpid=$(pid_alive /run/docker/containerd/containerd.pid containerd); then
        stop_pid "$cpid" containerd 10
    fi
else
    log "dockerd: not started by the rig (or already stopped); left alone"
fi
rm -f "$RIG_RUN/dockerd.pid"
log "rig is down (images, build cache, packages and keys are kept)"
