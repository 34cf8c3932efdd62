"""The host's sendmail script: what it hands msmtp (headers as msmtp and OpenSMTPD need them)."""

import subprocess
from importlib import resources

import pytest

SCRIPT = resources.files("mailorama") / "templates/host/usr/sbin/sendmail"


@pytest.fixture
def sendmail(tmp_path):
    """The script with a stand-in msmtp and no sendmail.ini: it prints what msmtp would get."""
    msmtp = tmp_path / "msmtp"
    msmtp.write_text("#!/bin/sh\nexec cat\n")
    msmtp.chmod(0o755)
    text = SCRIPT.read_text().replace("/usr/bin/msmtp", str(msmtp)).replace(
        "conf=/etc/mail-o-rama/sendmail.ini", f"conf={tmp_path}/none.ini")
    path = tmp_path / "sendmail"
    path.write_text(text)

    def run(data: bytes) -> bytes:
        return subprocess.run(["sh", str(path), "root"], input=data, capture_output=True,
                              check=True, timeout=10).stdout
    return run


@pytest.mark.parametrize("given, handed", [
    (b"test\n", b"\ntest\n"),                                    # no headers: all body
    (b"test", b"\ntest\n"),                                      # no final newline
    (b"Error: disk full\nmore\n", b"\nError: disk full\nmore\n"),  # looks like one, is not
    (b"Subject: hi\n\nbody\n", b"Subject: hi\n\nbody\n"),        # a proper message unchanged
    (b"To: root\nSubject: hi\n x\nbody line\nmore\n",            # headers end at a body line
     b"To: root\nSubject: hi\n x\n\nbody line\nmore\n"),
    (b"From: cron\r\nX-Cron-Env: <SHELL=/bin/sh>\r\n\r\nout\r\n",
     b"From: cron\r\nX-Cron-Env: <SHELL=/bin/sh>\r\n\r\nout\r\n"),
    (b"Subject: x\n\nError: disk full\n", b"Subject: x\n\nError: disk full\n"),
])
def test_headers_are_what_msmtp_needs(sendmail, given, handed):
    assert sendmail(given) == handed
