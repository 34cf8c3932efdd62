"""Pure decisions the deploy takes from what a host already has: no host access here."""

from __future__ import annotations

from dataclasses import dataclass

from .config import MailConfig, published_password_accounts
from .settings import Settings


@dataclass(frozen=True)
class HomePlan:
    """What to do with existing mail homes before the new accounts go live."""

    moves: tuple[tuple[str, str], ...] = ()     # (old name, new name): a renamed account
    chowns: tuple[tuple[str, int], ...] = ()    # (name, new uid): a renumbered account
    orphans: tuple[str, ...] = ()               # homes of accounts no longer in the config
    errors: tuple[str, ...] = ()


def plan_homes(config: MailConfig, homes: dict[str, int], allow_renumber: bool) -> HomePlan:
    """Compare the accounts with the homes on the host (name -> owner uid).

    Renaming (a new name taking the uid of a gone account with mail) or renumbering (an
    account whose mail is owned by another uid) is refused unless `allow_renumber`.
    """
    accounts = {a.name: a for a in config.accounts}
    gone = {uid: name for name, uid in homes.items() if name not in accounts}
    moves, chowns, errors = [], [], []
    fix = "set mailorama_allow_renumber = True to move and re-own the mail, or undo the change"
    for account in config.accounts:
        where = f"accounts:{account.line}" if account.line else "accounts"
        if account.name in homes:
            uid = homes[account.name]
            if uid != account.uid:
                chowns.append((account.name, account.uid))
                errors.append(f"{where}: account '{account.name}' now has uid {account.uid}, but "
                              f"its mail on the host is owned by uid {uid}: a renumbering; {fix}")
        elif account.uid in gone:
            old = gone.pop(account.uid)
            moves.append((old, account.name))
            errors.append(f"{where}: account '{account.name}' takes uid {account.uid} from "
                          f"'{old}', whose mail is on the host: a rename; {fix}")
    orphans = tuple(sorted(set(gone.values())))
    if allow_renumber:
        errors = []
    return HomePlan(tuple(moves), tuple(chowns), orphans, tuple(errors))


def config_problems(config: MailConfig, settings: Settings, source: str) -> list[str]:
    """What makes this config unfit for this host's settings (`source`: the config folder)."""
    problems = []
    if settings.hostname in config.domains:
        problems.append(f"{source}/domains: the host name {settings.hostname} is also a hosted "
                        "domain; system mail (root@host name) would need addresses in virtuals: "
                        "set mailorama_hostname to a host name like mail."
                        f"{settings.hostname}")
    if not settings.loopback_only():
        exposed = published_password_accounts(config)
        if exposed:
            problems.append(f"{source}/accounts: accounts {', '.join(exposed)} use the example's "
                            "published passwords and the host would listen beyond loopback; set "
                            "new hashes (mailorama hash-password) or set mailorama_listen to "
                            "loopback addresses")
    names = {a.name for a in config.accounts}
    unknown = sorted(name for name, _ in settings.quotas if name not in names)
    if unknown:
        problems.append(f"mailorama_quotas: {', '.join(unknown)} not in {source}/accounts; "
                        f"use account names ({', '.join(sorted(names))}) or remove them")
    return problems
