import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "unit"))


@pytest.fixture(scope="session")
def image():
    """The image from mailorama/image, for every container test."""
    from stack import build_image

    try:
        return build_image()
    except RuntimeError as e:
        pytest.fail(str(e))
