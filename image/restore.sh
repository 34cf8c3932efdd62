#!/bin/bash
# mailorama-restore ACCOUNT [YYYY-MM-DD]: put a backup of ~/Maildir back
# (default: the newest). Messages in the archive are restored next to the
# current ones (nothing is deleted); everything ends up owned by the account.
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
install -d -o "$uid" -g "$gid" -m 0700 "$home"
tar -C "$home" --no-same-owner -xzf "$f" Maildir
chown -R "$uid:$gid" "$home/Maildir"
echo "restored $f into $home/Maildir"
