"""Random and mutated config files never crash the parser: they parse or give file:line errors."""

import re

from hypothesis import HealthCheck, given, settings, strategies as st

from mailorama import config as cfg
from mailorama.render import tables
from test_checker_attacks import opensmtpd_values
from test_config import texts

ERROR = re.compile(r"^(accounts|domains|virtuals|aliases)(:\d+)?: \S")
ALPHABET = st.sampled_from(list("alpegbudy.net@,:# \t\r\n$16y5/{}|-_ÄßX09'") + [
    "\ufeff", "\x00", "\u2028", "\x85", "\x0c", "\u200b", "\u202e", "\xa0"])


def parses_or_reports(files: dict[str, str]) -> None:
    try:
        result = cfg.parse(files)
    except cfg.ConfigError as e:
        assert e.errors and all(ERROR.match(err) for err in e.errors), e.errors
        assert all(err.isprintable() for err in e.errors), e.errors   # nothing hidden
    else:
        assert isinstance(result, cfg.MailConfig)
        assert all(ERROR.match(w) for w in result.warnings), result.warnings
        # what parses renders tables OpenSMTPD reads back as the same targets
        rendered = tables(result)
        for name, rows in (("virtuals", result.virtuals), ("aliases", result.aliases)):
            lines = rendered[name].splitlines()[1:]
            assert [opensmtpd_values(line.split(" ", 1)[1]) for line in lines] == [
                sorted(targets) for _, targets in rows]


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(cfg.FILES), st.text(ALPHABET, max_size=200)))
def test_random_files(files):
    parses_or_reports(files)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(cfg.FILES), st.data())
def test_mutated_example(name, data):
    files = texts()
    text = files[name]
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(text)))
        op = data.draw(st.sampled_from(["insert", "delete", "duplicate_line", "swap_words"]))
        if op == "insert":
            text = text[:i] + data.draw(st.text(ALPHABET, min_size=1, max_size=5)) + text[i:]
        elif op == "delete":
            text = text[:i] + text[i + data.draw(st.integers(1, 8)):]
        elif op == "duplicate_line":
            lines = text.splitlines(keepends=True)
            if lines:
                lines.insert(i % len(lines), lines[i % len(lines)])
            text = "".join(lines)
        else:
            words = text.split(" ")
            if len(words) > 1:
                j = i % (len(words) - 1)
                words[j], words[j + 1] = words[j + 1], words[j]
            text = " ".join(words)
    files[name] = text
    parses_or_reports(files)
