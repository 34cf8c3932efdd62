"""Fixtures for the container tests: the image, and an SMTP sink standing in for the internet."""

import pytest

from stack import Sink, build_image


@pytest.fixture(scope="session")
def image():
    try:
        return build_image()
    except RuntimeError as e:
        pytest.fail(str(e))


@pytest.fixture(scope="module")
def sink():
    """One sink per module: OpenSMTPD keeps relay sessions open, so it must not come and go."""
    with Sink() as s:
        yield s
