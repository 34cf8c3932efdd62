#!/usr/bin/env bash
# Bring up the Mail-o-Rama test rig (DESIGN.md section 6) on a Debian 12/13 machine, as root.
# Idempotent: a second run only checks and reports. tests/rig/down.sh stops what this started.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $EUID -eq 0 ]] || die "run as root"
export DEBIAN_FRONTEND=noninteractive
T_START=$(date +%s)
SUMMARY=()
note() { SUMMARY+=("$*"); log "$*"; }

# Cleanup actions run on exit, whatever happens.
CLEANUP=()
on_exit() { local c; for c in "${CLEANUP[@]}"; do eval "$c" || true; done; }
trap on_exit EXIT

mkdir -p "$RIG_STATE" "$RIG_RUN"
chmod 711 "$RIG_STATE"   # traversable: sshd reads authorized_keys as the deployer; secrets inside are 0600
# One up/down at a time.
exec 9>"$RIG_RUN/lock"
flock -w 300 9 || die "another rig up/down holds $RIG_RUN/lock"

. /etc/os-release
CODENAME=${VERSION_CODENAME:-unknown}

# The Debian mirror the system already uses (first ".../debian" URI), unless overridden.
detect_mirror() {
    if [[ -n ${MAILORAMA_RIG_MIRROR:-} ]]; then echo "$MAILORAMA_RIG_MIRROR"; return; fi
    local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources) uri
    uri=$(cat "${files[@]}" 2>/dev/null | grep -v '^[[:space:]]*#' |
        awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^https?:\/\/.*\/debian\/?$/) { print $i; exit } }')
    echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR=$(detect_mirror)
MIRROR=${MIRROR%/}

# --- 1. Debian packages -------------------------------------------------------------------
PKGS=(
    docker.io iptables           # engine (bookworm: 20.10) and what its bridge networking needs
    openssh-server openssh-client  # the SSH "remote host" and its client
    debootstrap                  # base image without a registry
    swaks libnet-ssleay-perl libauthen-sasl-perl libio-socket-inet6-perl  # SMTP probes: TLS, AUTH, IPv6
    msmtp                        # submission client (not msmtp-mta: no sendmail on the host)
    openssl ca-certificates curl procps util-linux iproute2 xz-utils
    sudo                         # deploys as a sudoer (the rig's deployer user), not only as root
    knot                         # authoritative DNS on loopback for mailorama doctor's tests
    testssl.sh                   # TLS scan of every TLS port (tests/integration/test_tls.py)
    spamassassin                 # offline spam score of a signed message (deliverability test)
    restic                       # offsite backups (the deploy installs it on hosts; tests run it here)
)
# Debian 13 and later ship compose v2 as "docker-compose"; on 12 that package is compose v1
# (1.29, what mailorama_install_docker gives Debian 12 hosts: the tests check the compose file
# with it) and v2 comes from trixie as a docker CLI plugin (step 2).
PKGS+=(docker-compose)

install_packages() {
    local p missing=()
    for p in "${PKGS[@]}"; do
        [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        note "packages: all ${#PKGS[@]} already installed"
        return
    fi
    local t0=$SECONDS
    # apt-get update only if the lists are missing or older than an hour.
    if ! find /var/lib/apt/lists -maxdepth 1 -name '*Release' -mmin -60 2>/dev/null | grep -q .; then
        log "apt-get update"
        apt-get update -q
    fi
    # Do not let package scripts start the system sshd/dockerd: the rig runs its own.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        CLEANUP+=("rm -f /usr/sbin/policy-rc.d")
    fi
    log "installing: ${missing[*]}"
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    note "packages: installed ${missing[*]} ($((SECONDS - t0)) s)"
}

# --- 2. Compose v2 --------------------------------------------------------------------------
COMPOSE_PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose

compose_v2() { docker compose version 2>/dev/null | grep -qE 'version v?2\.'; }

install_compose() {
    if compose_v2; then
        note "compose: $(docker compose version) already installed"
        return
    fi
    [[ $CODENAME == bookworm ]] || die "docker compose v2 missing although docker-compose is installed"
    local t0=$SECONDS a=$RIG_APT_TRIXIE tmp
    # A trixie source list with its own lists and cache, apart from the system's apt state
    # (outside the private state dir, so apt can download as its unprivileged _apt user).
    mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR trixie main" >"$a/trixie.list"
    local tapt=(-o "Dir::Etc::SourceList=$a/trixie.list" -o Dir::Etc::SourceParts=/dev/null
        -o Dir::Etc::PreferencesParts=/dev/null -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache")
    log "fetching docker-compose from trixie ($MIRROR)"
    apt-get "${tapt[@]}" update -q
    tmp=$(mktemp -d /var/tmp/mailorama-rig-compose.XXXXXX)
    CLEANUP+=("rm -rf '$tmp'")
    chown _apt "$tmp" 2>/dev/null || true
    (cd "$tmp" && apt-get "${tapt[@]}" download -q docker-compose)
    local deb
    deb=$(echo "$tmp"/docker-compose_*.deb)
    log "$(basename "$deb"): Depends: $(dpkg-deb -f "$deb" Depends)"
    # Extract only the plugin binary: the system's dpkg database stays pure bookworm.
    dpkg-deb -x "$deb" "$tmp/x"
    install -D -m 755 "$tmp/x/usr/libexec/docker/cli-plugins/docker-compose" "$COMPOSE_PLUGIN"
    compose_v2 || die "docker compose version does not report v2 after installing $COMPOSE_PLUGIN"
    note "compose: installed $(docker compose version) from $(basename "$deb") as $COMPOSE_PLUGIN ($((SECONDS - t0)) s)"
}

# --- 3. dockerd -------------------------------------------------------------------------------
DOCKERD_PIDFILE=$RIG_RUN/dockerd.pid

# try_dockerd DRIVER: start dockerd with DRIVER and wait (bounded) until it answers.
try_dockerd() {
    local driver=$1 pid i
    log "starting dockerd (storage driver $driver, log $RIG_DOCKERD_LOG)"
    echo "=== $(date -Is) mailorama rig: dockerd --storage-driver=$driver" >>"$RIG_DOCKERD_LOG"
    # setsid: its own session, so it outlives this script and the CI step's process group;
    # 9>&-: it must not inherit (and so hold) the rig's lock.
    setsid dockerd --storage-driver="$driver" </dev/null >>"$RIG_DOCKERD_LOG" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$DOCKERD_PIDFILE"
    for ((i = 0; i < 120; i++)); do
        if docker info >/dev/null 2>&1; then
            note "dockerd: started, pid $pid, storage driver $driver"
            return 0
        fi
        if [[ ! -d /proc/$pid ]]; then
            log "dockerd exited; end of $RIG_DOCKERD_LOG:"
            tail -n 8 "$RIG_DOCKERD_LOG" >&2
            rm -f "$DOCKERD_PIDFILE"
            return 1
        fi
        sleep 0.5
    done
    log "dockerd did not answer within 60 s; stopping it"
    stop_pid "$pid" dockerd 20
    rm -f "$DOCKERD_PIDFILE"
    return 1
}

start_dockerd() {
    local pid drivers d
    if pid=$(pid_alive "$DOCKERD_PIDFILE" dockerd); then
        docker info >/dev/null 2>&1 || die "dockerd pid $pid (started by the rig) does not answer; see $RIG_DOCKERD_LOG"
        note "dockerd: already running (started by the rig, pid $pid)"
        return
    fi
    rm -f "$DOCKERD_PIDFILE"   # stale, if any
    if docker info >/dev/null 2>&1; then
        note "dockerd: already running, not started by the rig (left alone by down.sh)"
        return
    fi
    # Forced driver, else the one that worked before (images live per driver), else try in order.
    if [[ -n ${MAILORAMA_RIG_STORAGE_DRIVER:-} ]]; then
        drivers=("$MAILORAMA_RIG_STORAGE_DRIVER")
    elif [[ -s $RIG_STATE/storage-driver ]]; then
        drivers=("$(cat "$RIG_STATE/storage-driver")")
    else
        drivers=(overlay2 vfs)
    fi
    for d in "${drivers[@]}"; do
        if try_dockerd "$d"; then
            echo "$d" >"$RIG_STATE/storage-driver"
            return
        fi
    done
    die "dockerd did not start with storage driver(s): ${drivers[*]}; see $RIG_DOCKERD_LOG"
}

# --- 4. Base image ----------------------------------------------------------------------------
ROOTFS=
cleanup_rootfs() {
    [[ -n $ROOTFS && -d $ROOTFS ]] || return 0
    # debootstrap may leave proc/sys mounted inside on failure: unmount before removing.
    awk -v r="$ROOTFS/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount -l
    rm -rf --one-file-system "$ROOTFS"
}

build_base_image() {
    local t0=$SECONDS t1 t2 suite=trixie
    ROOTFS=$(mktemp -d /var/tmp/mailorama-rig-rootfs.XXXXXX)
    CLEANUP+=(cleanup_rootfs)
    log "debootstrap --variant=minbase $suite from $MIRROR (log $RIG_STATE/debootstrap.log)"
    if ! debootstrap --variant=minbase "$suite" "$ROOTFS" "$MIRROR" >"$RIG_STATE/debootstrap.log" 2>&1; then
        tail -n 15 "$RIG_STATE/debootstrap.log" >&2
        die "debootstrap failed"
    fi
    t1=$SECONDS
    # apt sources like the official image: trixie, trixie-updates, trixie-security.
    rm -f "$ROOTFS/etc/apt/sources.list"
    cat >"$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # Keep later layers slim too: no apt caches, docs, man pages or translations.
    cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
EOF
    mkdir -p "$ROOTFS/etc/dpkg/dpkg.cfg.d"
    cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
    chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
    # Strip what the image needs not carry (the C locale lives in /usr/lib/locale/C.utf8 and stays).
    rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/cache/debconf/*-old \
        "$ROOTFS"/var/log/* "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/* "$ROOTFS"/usr/share/info/*
    find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete
    find "$ROOTFS/usr/share/man" "$ROOTFS/usr/share/locale" -mindepth 1 -not -name locale.alias -delete 2>/dev/null || true
    : >"$ROOTFS/etc/machine-id"
    rm -f "$ROOTFS/etc/hostname" "$ROOTFS/etc/resolv.conf"
    log "docker import as $RIG_BASE_IMAGE"
    tar --numeric-owner -C "$ROOTFS" -c . |
        docker import --change 'CMD ["bash"]' \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --message "mailorama rig: debootstrap --variant=minbase $suite $MIRROR" - "$RIG_BASE_IMAGE" >/dev/null
    cleanup_rootfs
    t2=$SECONDS
    # apt inside must reach the mirror (builds use host networking).
    docker run --rm --network host "$RIG_BASE_IMAGE" sh -c 'apt-get update >/dev/null && echo ok' | grep -qx ok ||
        die "apt-get update inside $RIG_BASE_IMAGE failed"
    note "base image: built $RIG_BASE_IMAGE (debootstrap $((t1 - t0)) s, strip+import $((t2 - t1)) s, apt check $((SECONDS - t2)) s, $(docker image inspect -f '{{.Size}}' "$RIG_BASE_IMAGE" | awk '{ printf "%d MB", $1 / 1e6 }'))"
}

ensure_base_image() {
    if docker image inspect "$RIG_BASE_IMAGE" >/dev/null 2>&1; then
        # A cheap check that containers really run with this engine and storage driver.
        docker run --rm --network none "$RIG_BASE_IMAGE" true || die "cannot run a container from $RIG_BASE_IMAGE"
        note "base image: $RIG_BASE_IMAGE already present"
    else
        build_base_image
    fi
}

# --- 5. SSH "remote host" ---------------------------------------------------------------------
SSH_KEY=$RIG_STATE/id_ed25519
SSH_KNOWN_HOSTS=$RIG_STATE/known_hosts
SSHD_PIDFILE=$RIG_RUN/sshd.pid

ssh_check() {
    ssh -i "$SSH_KEY" -p "$RIG_SSH_PORT" -o BatchMode=yes -o IdentitiesOnly=yes \
        -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$SSH_KNOWN_HOSTS" -o ConnectTimeout=5 \
        root@127.0.0.1 true </dev/null
}

start_sshd() {
    local hostkey=$RIG_STATE/ssh_host_ed25519_key new pid i changed=0
    [[ -s $hostkey ]] || ssh-keygen -q -t ed25519 -N '' -C mailorama-rig-host -f "$hostkey"
    [[ -s $SSH_KEY ]] || ssh-keygen -q -t ed25519 -N '' -C mailorama-rig-client -f "$SSH_KEY"
    # readable: sshd reads it as the user logging in (root, or the deployer)
    install -m 644 "$SSH_KEY.pub" "$RIG_STATE/authorized_keys"
    # A sudoer to deploy as with --sudo, like many users do.
    id "$RIG_SUDO_USER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$RIG_SUDO_USER"
    printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$RIG_SUDO_USER" >/etc/sudoers.d/mailorama-rig
    chmod 440 /etc/sudoers.d/mailorama-rig
    echo "[127.0.0.1]:$RIG_SSH_PORT $(cut -d' ' -f1,2 "$hostkey.pub")" >"$SSH_KNOWN_HOSTS"
    new=$(mktemp "$RIG_STATE/sshd_config.XXXXXX")
    cat >"$new" <<EOF
# sshd of the Mail-o-Rama test rig (written by tests/rig/up.sh); the system sshd is untouched.
Port $RIG_SSH_PORT
ListenAddress 127.0.0.1
HostKey $hostkey
PidFile $SSHD_PIDFILE
AuthorizedKeysFile $RIG_STATE/authorized_keys
PermitRootLogin prohibit-password
AllowUsers root $RIG_SUDO_USER
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM yes
X11Forwarding no
PrintMotd no
MaxStartups 50:30:100
Subsystem sftp internal-sftp
EOF
    cmp -s "$new" "$RIG_SSHD_CONFIG" || changed=1
    mv -f "$new" "$RIG_SSHD_CONFIG"
    mkdir -p /run/sshd    # privilege separation directory
    /usr/sbin/sshd -t -f "$RIG_SSHD_CONFIG" || die "sshd rejects $RIG_SSHD_CONFIG"

    if pid=$(pid_alive "$SSHD_PIDFILE" sshd "$RIG_SSHD_CONFIG"); then
        if ((changed)); then
            log "sshd config changed; restarting sshd pid $pid"
            stop_pid "$pid" sshd 10
        elif ssh_check; then
            note "sshd: already running (started by the rig, pid $pid)"
            return
        else
            log "sshd pid $pid does not accept the rig key; restarting it"
            stop_pid "$pid" sshd 10
        fi
    fi
    rm -f "$SSHD_PIDFILE"
    if ss -Hltn "sport = :$RIG_SSH_PORT" | grep -q .; then
        die "port $RIG_SSH_PORT is taken by another process; set MAILORAMA_RIG_SSH_PORT"
    fi
    echo "=== $(date -Is) mailorama rig: sshd -f $RIG_SSHD_CONFIG" >>"$RIG_SSHD_LOG"
    # Daemonizes and writes $SSHD_PIDFILE; 9>&-: keep the rig's lock to ourselves.
    /usr/sbin/sshd -f "$RIG_SSHD_CONFIG" -E "$RIG_SSHD_LOG" </dev/null 9>&-
    for ((i = 0; i < 50; i++)); do
        pid=$(pid_alive "$SSHD_PIDFILE" sshd "$RIG_SSHD_CONFIG") && ssh_check 2>/dev/null && break
        sleep 0.2
    done
    ssh_check || { tail -n 8 "$RIG_SSHD_LOG" >&2; die "ssh to root@127.0.0.1:$RIG_SSH_PORT fails"; }
    note "sshd: started, pid $pid, 127.0.0.1:$RIG_SSH_PORT"
}

# --- main ---------------------------------------------------------------------------------------
# --docker-only: Docker engine, compose and base image (what `bash up` needs), no sshd.
DOCKER_ONLY=false
[[ ${1:-} == --docker-only ]] && DOCKER_ONLY=true
log "Debian $CODENAME, mirror $MIRROR, state $RIG_STATE, pids $RIG_RUN"
install_packages
install_compose
start_dockerd
ensure_base_image
if $DOCKER_ONLY; then
    printf '   - %s\n' "${SUMMARY[@]}"
    exit 0
fi
start_sshd

DRIVER=$(docker info -f '{{.Driver}}')
cat >"$RIG_STATE/rig.env" <<EOF
# Written by tests/rig/up.sh; source it to reach the rig.
MAILORAMA_RIG_SSH_HOST=127.0.0.1
MAILORAMA_RIG_SSH_PORT=$RIG_SSH_PORT
MAILORAMA_RIG_SSH_USER=root
MAILORAMA_RIG_SUDO_USER=$RIG_SUDO_USER
MAILORAMA_RIG_SSH_KEY=$SSH_KEY
MAILORAMA_RIG_SSH_KNOWN_HOSTS=$SSH_KNOWN_HOSTS
MAILORAMA_RIG_BASE_IMAGE=$RIG_BASE_IMAGE
MAILORAMA_RIG_STORAGE_DRIVER=$DRIVER
EOF

echo "== Mail-o-Rama test rig is up ($(($(date +%s) - T_START)) s)"
printf '   - %s\n' "${SUMMARY[@]}"
cat <<EOF
   docker:      $(docker version -f 'client {{.Client.Version}}, server {{.Server.Version}}'), storage driver $DRIVER
   ssh:         ssh -i $SSH_KEY -p $RIG_SSH_PORT root@127.0.0.1   (known_hosts: $SSH_KNOWN_HOSTS)
   state:       $RIG_STATE (settings in rig.env), pids in $RIG_RUN
   logs:        $RIG_DOCKERD_LOG, $RIG_SSHD_LOG
EOF
