"""The anti-aliasing FIR designed without scipy.signal equals scipy.signal.firwin bit for
bit, for every rate pair the resampler meets (so preprocessing outputs are unchanged)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from scipy import signal

from engine.preprocess.filters import KAISER_BETA, _fir, firwin_lowpass


def test_firwin_lowpass_equals_scipy_bit_for_bit():
    for up in range(1, 12):
        for down in range(1, 60):
            if up == down:
                continue
            rate = max(up, down)
            ref = signal.firwin(2 * 10 * rate + 1, 1.0 / rate, window=("kaiser", KAISER_BETA))
            ours = firwin_lowpass(2 * 10 * rate + 1, 1.0 / rate, KAISER_BETA)
            assert ours.dtype == np.float64 and ours.tobytes() == ref.tobytes(), (up, down)
    assert _fir(1, 5).tobytes() == signal.firwin(101, 0.2, window=("kaiser", KAISER_BETA)).tobytes()


def test_engine_inference_and_500_hz_preprocessing_do_not_import_scipy_signal():
    code = ("import sys, engine.inference, numpy as np; from engine.preprocess.filters import resample;"
            "resample(np.ones((12, 5000)), 500.0, 100.0); print('scipy.signal' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
