"""edge.cli.StopOnSignals, the one way run, serve and train stop on SIGINT and SIGTERM; edge.cli.int_pair."""

from __future__ import annotations

import argparse
import os
import signal
import threading

import pytest

from edge.cli import StopOnSignals, int_pair


def test_a_signal_sets_the_event_and_the_old_handlers_come_back():
    before = {sig: signal.getsignal(sig) for sig in StopOnSignals.SIGNALS}
    stop = threading.Event()
    with StopOnSignals(stop) as handler:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5) and handler.signum == signal.SIGTERM
    assert {sig: signal.getsignal(sig) for sig in StopOnSignals.SIGNALS} == before


def test_a_second_ctrl_c_raises_keyboard_interrupt():
    stop = threading.Event()
    with pytest.raises(KeyboardInterrupt):
        with StopOnSignals(stop):
            os.kill(os.getpid(), signal.SIGINT)
            assert stop.wait(5)
            os.kill(os.getpid(), signal.SIGINT)
            threading.Event().wait(5)  # the handler raises in this thread meanwhile


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_mode_unwinds_blocking_code_at_the_first_signal(sig):
    before = signal.getsignal(signal.SIGTERM)
    guard = StopOnSignals(interrupt=True)
    with pytest.raises(KeyboardInterrupt):
        with guard:
            os.kill(os.getpid(), sig)
            threading.Event().wait(5)
    assert guard.stop.is_set() and guard.signum == sig
    assert signal.getsignal(signal.SIGTERM) is before


def test_off_the_main_thread_it_installs_nothing():
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def body():
        with StopOnSignals():
            seen.append(signal.getsignal(signal.SIGTERM))

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen == [before]


@pytest.mark.parametrize("text, pair", [("640x480", (640, 480)), ("1,4", (1, 4)), ("3", (3, 3))])
def test_int_pair(text, pair):
    assert int_pair(text) == pair


def test_int_pair_rejects_three_numbers():
    with pytest.raises(argparse.ArgumentTypeError, match="N or A,B"):
        int_pair("1,2,3")


def test_a_reader_that_goes_away_gets_no_traceback():
    """`fer-edge models list | head -0`: the pipe closes before the output is written."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads: the first write raises BrokenPipeError
    proc = subprocess.run([sys.executable, "-m", "edge", "models", "list"], stdout=write_end,
                          stderr=subprocess.PIPE, text=True, cwd=repo, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(repo)))
    os.close(write_end)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 141
