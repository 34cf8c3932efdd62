"""Fixtures for the container tests: an SMTP sink standing in for the internet (the image:
tests/conftest.py)."""

import pytest

from stack import Sink


@pytest.fixture(scope="module")
def sink():
    """One sink per module: OpenSMTPD keeps relay sessions open, so it must not come and go."""
    with Sink() as s:
        yield s
