#!/bin/bash
# mailorama-restore (/restore.sh) ACCOUNT [YYYY-MM-DD]: put the messages of a backup of
# ~/Maildir back (default: the newest backup). Nothing is deleted: messages go back into their
# folders beside the current ones. Dovecot's own index and uid files stay as they are, and
# Dovecot re-syncs the folders, so clients keep consistent message UIDs.
set -euo pipefail
DEST=${BACKUP_DIR:-/var/backups/mail-o-rama}
acct=${1:?usage: mailorama-restore ACCOUNT [YYYY-MM-DD]}
date=${2:-}
line=$(awk -v a="$acct" '$1 == a { print $2; exit }' /etc/smtpd/userbase)
[ -n "$line" ] || { echo "unknown account: $acct" >&2; exit 1; }
IFS=: read -r uid gid home <<< "$line"
if [ -n "$date" ]; then
  f="$DEST/$acct/$date.tar.gz"
else
  f=$(ls -1 "$DEST/$acct"/*.tar.gz 2>/dev/null | sort | tail -n1 || true)
fi
[ -n "$f" ] && [ -f "$f" ] || { echo "no backup for $acct${date:+ on $date} in $DEST/$acct" >&2; exit 1; }
# A corrupt or truncated archive is refused before anything is written.
if ! err=$(gzip -t "$f" 2>&1 && tar -tzf "$f" >/dev/null 2>&1); then
  echo "$f is damaged (${err:-tar cannot read it}); nothing restored" >&2
  exit 1
fi
install -d -o "$uid" -g "$gid" -m 0700 "$home"
# --skip-old-files: messages that are still there stay as they are (exit 0); any other
# error (a full disk, an unreadable archive) fails loudly.
if ! err=$(tar -C "$home" --no-same-owner --skip-old-files --exclude='dovecot*' -xzf "$f" Maildir 2>&1); then
  echo "restoring $f failed: $err" >&2
  exit 1
fi
chown -R "$uid:$gid" "$home/Maildir"
doveadm force-resync -u "$acct" '*'
echo "restored $f into $home/Maildir"
