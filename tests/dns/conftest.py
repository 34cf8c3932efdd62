"""The image for the container tests of tests/dns."""

import pytest

from stack import build_image


@pytest.fixture(scope="session")
def image():
    try:
        return build_image()
    except RuntimeError as e:
        pytest.fail(str(e))
