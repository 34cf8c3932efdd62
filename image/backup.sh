#!/bin/bash
# mailorama-backup: one tar.gz of ~/Maildir per account per day:
#   /var/backups/mail-o-rama/<account>/YYYY-MM-DD.tar.gz
# then deletes archives older than $BACKUP_RETENTION_DAYS days (unset or
# empty: keep all). Run from the host's cron: docker exec mail-o-rama mailorama-backup
set -euo pipefail
DEST=${BACKUP_DIR:-/var/backups/mail-o-rama}
USERBASE=/etc/smtpd/userbase
today=$(date +%F)
mkdir -p "$DEST"; chmod 0700 "$DEST"
rc=0
while read -r acct ids; do
  case "$acct" in ''|'#'*) continue ;; esac
  IFS=: read -r uid gid home <<< "$ids"
  [ -d "$home/Maildir" ] || continue
  mkdir -p "$DEST/$acct"; chmod 0700 "$DEST/$acct"
  out="$DEST/$acct/$today.tar.gz"
  if tar -C "$home" --numeric-owner -czf "$out.tmp" Maildir 2>/tmp/backup.err \
     || [ $? -eq 1 ]; then   # 1 = a file changed while reading: still a usable archive
    mv -f "$out.tmp" "$out"; chmod 0600 "$out"
    echo "backup $acct -> $out"
  else
    echo "backup $acct FAILED: $(cat /tmp/backup.err)" >&2; rm -f "$out.tmp"; rc=1
  fi
done < "$USERBASE"

days=${BACKUP_RETENTION_DAYS:-}
if [ -n "$days" ]; then
  [[ "$days" =~ ^[0-9]+$ ]] || { echo "BACKUP_RETENTION_DAYS must be a number of days: $days" >&2; exit 1; }
  cutoff=$(date -d "$today - $days days" +%F)
  for f in "$DEST"/*/[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9].tar.gz; do
    [ -e "$f" ] || continue
    d=${f##*/}; d=${d%.tar.gz}
    if [[ "$d" < "$cutoff" ]]; then rm -f "$f"; echo "deleted $f (older than $days days)"; fi
  done
fi
exit $rc
