"""Ctrl-D or Ctrl-C at a password prompt: a message, never a traceback."""

import os
import pty
import signal
import subprocess
import sys
import time

import pytest


@pytest.mark.parametrize("key", [b"\x04", None])     # Ctrl-D; Ctrl-C (its SIGINT)
def test_stopping_at_the_password_prompt(key):
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "mailorama.cli", "hash-password"],
                            stdin=child, stdout=child, stderr=child, start_new_session=True,
                            # a run started in the background inherits SIGINT ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(child)
    out = b""
    deadline = time.time() + 20
    while b"Password:" not in out and time.time() < deadline:
        out += os.read(main, 1024)
    if key:
        os.write(main, key)
    else:
        proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    try:
        while True:
            out += os.read(main, 1024)
    except OSError:
        pass
    os.close(main)
    assert proc.returncode == 130, out
    assert b"stopped; nothing written" in out and b"Traceback" not in out
