"""The read-only image's links into the live folder, and the entrypoint's LIVE, are those of
mailorama/contract.py (the one place they are described)."""

from __future__ import annotations

import re

from mailorama.contract import FILES, LINKS, LIVE
from mailorama.render import IMAGE


def test_the_dockerfile_makes_exactly_the_links_of_the_contract():
    dockerfile = (IMAGE / "Dockerfile").read_text()
    made = {link: target for target, link in re.findall(r"ln -s (\S+) (\S+);", dockerfile)
            if target.startswith("/")}
    assert made == LINKS


def test_every_live_file_is_reached_through_a_link():
    for f in FILES:
        assert any(f.live == link or f.live.startswith(link + "/") for link in LINKS), f.live
    assert all(target.startswith(LIVE + "/") for target in LINKS.values())


def test_the_entrypoint_prepares_the_contracts_live_folder():
    entrypoint = (IMAGE / "entrypoint").read_text()
    assert re.search(rf"^LIVE={re.escape(LIVE)}\s", entrypoint, re.M)
