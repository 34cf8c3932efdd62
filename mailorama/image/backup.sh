#!/bin/bash
# mailorama-backup (/backup.sh): one tar.gz of ~/Maildir per account per day:
#   /var/backups/mail-o-rama/<account>/YYYY-MM-DD.tar.gz
# then, for each account whose backup of today succeeded, deletes its archives older than
# $BACKUP_RETENTION_DAYS days (unset or empty: keep all). Failing backups never cost old ones.
# Run from the host's cron: docker exec -e BACKUP_RETENTION_DAYS=14 mail-o-rama /backup.sh
set -euo pipefail
umask 077
DEST=${BACKUP_DIR:-/var/backups/mail-o-rama}
USERBASE=/etc/smtpd/userbase
today=$(date +%F)
days=${BACKUP_RETENTION_DAYS:-}
[[ -z "$days" || "$days" =~ ^[0-9]+$ ]] || { echo "BACKUP_RETENTION_DAYS must be a number of days: $days" >&2; exit 1; }
cutoff=
[ -z "$days" ] || cutoff=$(date -d "$today - $days days" +%F)
err=$(mktemp)
trap 'rm -f "$err"' EXIT
mkdir -p "$DEST"; chmod 0700 "$DEST"
rc=0
while read -r acct ids; do
  case "$acct" in ''|'#'*) continue ;; esac
  IFS=: read -r uid gid home <<< "$ids"
  [ -d "$home/Maildir" ] || continue
  mkdir -p "$DEST/$acct"; chmod 0700 "$DEST/$acct"
  out="$DEST/$acct/$today.tar.gz"
  # tar exits 1 when a file changed while it read: still a usable archive
  if tar -C "$home" --numeric-owner -czf "$out.tmp" Maildir 2>"$err" || [ $? -eq 1 ]; then
    mv -f "$out.tmp" "$out"
    echo "backup $acct -> $out"
  else
    echo "backup $acct FAILED, older backups kept: $(cat "$err")" >&2; rm -f "$out.tmp"; rc=1
    continue
  fi
  [ -n "$cutoff" ] || continue
  for f in "$DEST/$acct"/[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9].tar.gz; do
    d=${f##*/}; d=${d%.tar.gz}
    if [[ "$d" < "$cutoff" ]]; then rm -f "$f"; echo "deleted $f (older than $days days)"; fi
  done
done < "$USERBASE"
exit $rc
