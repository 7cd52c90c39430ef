"""The app and the signed bundle (issue 15, item 6): a bundle signed by a key the workstation
does not trust is refused in the AI panel with what to do, the ECG viewer still works; once
the site's key is in the app's settings (settings.json "trusted_keys"), the same bundle loads."""

from __future__ import annotations

import sys

from app.controller import Controller
from app.settings import Settings
from app_samples import PTBXL, REPO

TIMEOUT = 20000


def _site_bundle(tmp_path):
    sys.path.insert(0, str(REPO / "tests" / "engine"))
    try:
        from bundle_factory import make_bundle
    finally:
        sys.path.pop(0)
    from engine.signing import generate_keypair, load_private_key, sign_file
    priv, pub = generate_keypair(tmp_path / "keys", "site")
    d = make_bundle(tmp_path / "bundle", signed=False)
    sign_file(d / "manifest.json", load_private_key(priv))
    return d, pub


def test_untrusted_bundle_is_refused_in_the_panel_then_trusted_from_settings(window, errors, qtbot,
                                                                            tmp_path):
    bundle, pub = _site_bundle(tmp_path)
    config = tmp_path / "config"  # the conftest's CROMOTEX_REVIEW_CONFIG_DIR
    ctl = Controller(window, models_dir=str(bundle), error_presenter=lambda t, m: errors.append((t, m)),
                     settings_dir=config)
    with qtbot.waitSignal(ctl.models_ready, timeout=TIMEOUT) as sig:
        ctl.load_models()
    assert sig.args == [False]
    assert "manifest.json.sig: signed with key" in ctl.models_error
    assert "not in the trust list" in ctl.models_error and "cromotex-train sign-bundle" in ctl.models_error
    assert str(config / "trusted_keys") in ctl.models_error
    with qtbot.waitSignal(ctl.ecg_shown, timeout=TIMEOUT):
        ctl.open_ecg(PTBXL)  # the viewer works without models
    assert ctl.predictor is None and ctl.ecg_predictions == {}

    ctl.settings.trusted_keys = [str(pub)]
    ctl.save_settings()
    assert Settings.load(config).trusted_keys == [str(pub)]
    with qtbot.waitSignal(ctl.models_ready, timeout=TIMEOUT) as sig:
        ctl.load_models()
    assert sig.args == [True]
    assert ctl.predictor.bundle.signer.startswith("site-ed25519 (")
    qtbot.waitUntil(lambda: bool(ctl.ecg_predictions), timeout=TIMEOUT)
    assert 0 < ctl.ecg_predictions["edema"].probability < 1
