"""Signed bundles (issue 15, item 6): the shipped bundle is signed by the project key; every
forgery of the issue, made on a copy of the shipped bundle with every sha256 re-computed, is
refused by its broken signature, and again when re-signed by a key nobody trusts; unsigned
and damaged signatures are refused with what to do; the trust list comes from the program,
the settings folder, settings.json, CROMOTEX_TRUSTED_KEYS and `cromotex predict --trusted-key`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bundle_factory import REPO, make_bundle, throwaway_key
from bundle_forgeries import FORGERIES, rehash_unsigned, replace_bytes, shallow_copy

from engine.bundle import load_bundle
from engine.errors import BundleError
from engine.inference import Predictor
from engine.signing import generate_keypair, key_id, load_private_key, load_public_key, sign_file
from engine.trust import ENV_TRUSTED_KEYS, PROJECT_KEYS, load_trust

MODELS = REPO / "resources" / "models"
PROJECT_KEY_ID = "c862136d7256e190"
DEMO_ECG = REPO / "resources" / "demo" / "case1_cardiomegaly_edema_pleural_effusion_ecg.hea"
BROKEN = r"manifest\.json\.sig: the signature of CroMoTEX project \(c862136d7256e190\) does not match " \
         r"manifest\.json: the manifest was changed after it was signed\. Do not use this bundle"
UNTRUSTED = r"manifest\.json\.sig: signed with key {kid}, which is not in the trust list \(trusted: " \
            r"CroMoTEX project \(c862136d7256e190\)"


@pytest.fixture
def no_site_trust(monkeypatch, tmp_path):
    """A workstation whose trust list is the program's project key only."""
    monkeypatch.delenv(ENV_TRUSTED_KEYS, raising=False)
    monkeypatch.setenv("CROMOTEX_REVIEW_CONFIG_DIR", str(tmp_path / "empty-config"))


@pytest.fixture(scope="module")
def forger_key(tmp_path_factory) -> Path:
    return generate_keypair(tmp_path_factory.mktemp("forger"), "forger")[0]


def test_shipped_bundle_is_signed_by_the_project_key(no_site_trust):
    sig = json.loads((MODELS / "manifest.json.sig").read_text())
    assert sig["algorithm"] == "Ed25519" and sig["key_id"] == PROJECT_KEY_ID
    b = load_bundle(MODELS, load_trust(site=False))
    assert b.signer == f"CroMoTEX project ({PROJECT_KEY_ID})"
    assert [key_id(k.public_key) for k in load_trust(site=False).keys.values()] == [PROJECT_KEY_ID]
    card = (MODELS / "MODEL_CARD.md").read_text()
    assert f"by the CroMoTEX project key, shipped inside the application: key id `{PROJECT_KEY_ID}`" in card
    assert "trusted_keys/" in card and "cromotex-train sign-bundle" in card


def test_unchanged_copy_of_the_shipped_bundle_scores(no_site_trust, tmp_path):
    from engine.io import read_ecg
    d = shallow_copy(MODELS, tmp_path / "copy")
    rehash_unsigned(d)  # same hashes: only the manifest's formatting may differ ...
    sign_file(d / "manifest.json", load_private_key(throwaway_key()[0]))  # ... so sign it again
    with pytest.raises(BundleError, match=UNTRUSTED.format(kid=key_id(load_public_key(throwaway_key()[1])))):
        load_bundle(d)
    d2 = shallow_copy(MODELS, tmp_path / "copy2")
    r = Predictor(d2, threads=1, parallel_models=False).predict_ecg(read_ecg(DEMO_ECG))
    assert 0 < r["edema"].probability < 1 and not r["edema"].ood


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_every_forgery_with_rehashed_manifest_is_refused(forgery, no_site_trust, tmp_path):
    d = shallow_copy(MODELS, tmp_path / "forged")
    FORGERIES[forgery](d)
    rehash_unsigned(d)
    with pytest.raises(BundleError, match=BROKEN):
        load_bundle(d)
    with pytest.raises(BundleError, match=BROKEN):
        Predictor(d)


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_every_forgery_signed_by_an_untrusted_key_is_refused(forgery, forger_key, no_site_trust, tmp_path):
    d = shallow_copy(MODELS, tmp_path / "forged")
    FORGERIES[forgery](d)
    rehash_unsigned(d)
    sign_file(d / "manifest.json", load_private_key(forger_key))
    kid = key_id(load_private_key(forger_key).public_key())
    with pytest.raises(BundleError, match=UNTRUSTED.format(kid=kid)) as err:
        Predictor(d)
    # the message says what to do
    assert "cromotex-train sign-bundle" in str(err.value) and "trusted_keys" in str(err.value)
    assert "--trusted-key" in str(err.value)


def test_a_forged_threshold_passes_the_signature_only_for_a_trusted_signer(forger_key, no_site_trust,
                                                                           tmp_path):
    """Without the signature nothing else catches it: the same forgery, signed by a key the
    workstation trusts, loads (so the refusals above are the signature's doing)."""
    d = shallow_copy(MODELS, tmp_path / "forged")
    FORGERIES["threshold_manifest_and_onnx"](d)
    rehash_unsigned(d)
    sign_file(d / "manifest.json", load_private_key(forger_key))
    trust = load_trust(site=False)
    trust.add(load_private_key(forger_key).public_key(), "forger", "test")
    assert Predictor(load_bundle(d, trust)).bundle.ecg["edema"].threshold == 0.01


def test_swapped_model_with_unforged_metadata_is_refused_by_the_metadata_check(tmp_path):
    """A validly signed manifest whose ONNX file is another pathology's (metadata not forged):
    the ONNX metadata must agree with the signed manifest."""
    import onnx
    d = make_bundle(tmp_path / "b")
    onnx.save(onnx.load(str(d / "ecg_cardiomegaly.onnx")), str(d / "ecg_edema.onnx"))
    from bundle_factory import rehash
    rehash(d)  # signed by the (trusted) test key
    with pytest.raises(BundleError, match=r"ecg_edema\.onnx: ONNX metadata says its logit columns are "
                                          r"\['cardiomegaly'\], but the manifest puts 'edema'"):
        Predictor(d, precision="fp32")


def test_unsigned_bundle_is_refused_saying_what_to_do(no_site_trust, tmp_path):
    d = shallow_copy(MODELS, tmp_path / "unsigned")
    (d / "manifest.json.sig").unlink()
    with pytest.raises(BundleError) as err:
        load_bundle(d)
    msg = str(err.value)
    assert msg.startswith(f"Model bundle {d.resolve()}: manifest.json.sig: missing: the bundle is not signed")
    assert "reinstall" in msg and "cromotex-train sign-bundle DIR --key KEY.pem" in msg
    assert str(tmp_path / "empty-config" / "trusted_keys") in msg


@pytest.mark.parametrize("content, message", [
    (b"not json", "is not a signature file"),
    (b'{"format": "cromotex-bundle-signature", "version": 1, "algorithm": "RSA", "key_id": "x", '
     b'"signature": "AA=="}', "algorithm 'RSA' is not Ed25519"),
    (b'{"format": "cromotex-bundle-signature", "version": 1, "algorithm": "Ed25519", '
     b'"key_id": "c862136d7256e190", "signature": "@@@"}', "'signature' is not base64"),
    (b'{"format": "cromotex-bundle-signature", "version": 1, "algorithm": "Ed25519", '
     b'"key_id": "c862136d7256e190", "signature": "AAAA"}', "an Ed25519 signature has 64 bytes, this one 3"),
    (b"x" * (70 * 1024), "larger than 65536 bytes"),
])
def test_damaged_signature_files_are_refused(content, message, no_site_trust, tmp_path):
    d = shallow_copy(MODELS, tmp_path / "b")
    replace_bytes(d / "manifest.json.sig", content)
    with pytest.raises(BundleError, match=r"manifest\.json\.sig: " + message):
        load_bundle(d)


def test_signature_of_another_manifest_is_refused(no_site_trust, tmp_path):
    """A genuine project signature copied beside another (re-hashed) manifest."""
    d = shallow_copy(MODELS, tmp_path / "b")
    m = json.loads((d / "manifest.json").read_text())
    m["created_utc"] = "2026-12-01T00:00:00Z"
    replace_bytes(d / "manifest.json", json.dumps(m, indent=2).encode())
    with pytest.raises(BundleError, match=BROKEN):
        load_bundle(d)


def test_model_file_swapped_after_loading_is_refused_when_the_session_opens(tmp_path):
    d = make_bundle(tmp_path / "b")
    bundle = load_bundle(d)
    replace_bytes(d / "ecg_edema.onnx", (d / "ecg_cardiomegaly.onnx").read_bytes())
    with pytest.raises(BundleError, match=r"ecg_edema\.onnx: sha256 does not match manifest\.json"):
        Predictor(bundle, precision="fp32")


# ---------------------------------------------------------------------- where trust comes from

@pytest.fixture
def site_bundle(tmp_path) -> tuple[Path, Path]:
    """A tiny bundle signed by a fresh site key; (bundle dir, site .pub)."""
    priv, pub = generate_keypair(tmp_path / "keys", "site")
    d = make_bundle(tmp_path / "b", signed=False)
    sign_file(d / "manifest.json", load_private_key(priv))
    return d, pub


def test_site_key_in_the_settings_folder_is_trusted(site_bundle, no_site_trust, tmp_path, monkeypatch):
    d, pub = site_bundle
    with pytest.raises(BundleError, match="not in the trust list"):
        load_bundle(d)
    folder = tmp_path / "empty-config" / "trusted_keys"
    folder.mkdir(parents=True)
    (folder / "site.pub").write_bytes(pub.read_bytes())
    assert load_bundle(d).signer == f"site ({key_id(load_public_key(pub))})"


def test_site_key_listed_in_settings_json_is_trusted_and_kept_by_the_app_settings(
        site_bundle, no_site_trust, tmp_path):
    from app.settings import Settings
    d, pub = site_bundle
    s = Settings.load()
    s.trusted_keys = [str(pub)]
    s.save()
    assert Settings.load().trusted_keys == [str(pub)]  # the app round-trips the list
    assert load_bundle(d).signer.startswith("site-ed25519 (")


def test_bad_trust_entries_are_skipped_and_named_in_the_refusal(site_bundle, no_site_trust, tmp_path,
                                                               monkeypatch):
    d, _ = site_bundle
    bogus = tmp_path / "bogus.pub"
    bogus.write_text("not a key")
    monkeypatch.setenv(ENV_TRUSTED_KEYS, os.pathsep.join([str(bogus), str(tmp_path / "nowhere.pub")]))
    with pytest.raises(BundleError, match=r"trust entries skipped: .*bogus\.pub \(CROMOTEX_TRUSTED_KEYS\): "
                                          r"public key .*not a PEM public key.*nowhere\.pub "
                                          r"\(CROMOTEX_TRUSTED_KEYS\): does not exist"):
        load_bundle(d)
    assert list(load_trust().keys) == [PROJECT_KEY_ID]


def _cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", "predict", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_refuses_an_untrusted_bundle_and_accepts_it_with_trusted_key(site_bundle, tmp_path):
    d, pub = site_bundle
    env = {k: v for k, v in os.environ.items() if k != ENV_TRUSTED_KEYS}
    env["CROMOTEX_REVIEW_CONFIG_DIR"] = str(tmp_path / "cli-config")
    ecg = str(REPO / "tests" / "data" / "ecg" / "wfdb" / "ptbxl" / "00001_lr.hea")
    refused = _cli(["--models", str(d), ecg, "--workers", "1"], env)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "manifest.json.sig: signed with key" in refused.stderr and "--trusted-key" in refused.stderr
    ok = _cli(["--models", str(d), "--trusted-key", str(pub), ecg, "--workers", "1"], env)
    assert ok.returncode == 0, ok.stderr
    line = json.loads(ok.stdout.splitlines()[0])
    assert line["ok"] and 0 < line["probabilities"]["edema"] < 1


def test_keygen_and_sign_bundle_commands(tmp_path):
    from training.keys import keygen_main, sign_bundle, sign_main
    assert keygen_main(["--out", str(tmp_path / "k"), "--name", "site"]) == 0
    priv = tmp_path / "k" / "site-ed25519.pem"
    assert priv.stat().st_mode & 0o777 == 0o600
    with pytest.raises(BundleError, match="already exists"):
        keygen_main(["--out", str(tmp_path / "k"), "--name", "site"])
    d = make_bundle(tmp_path / "b", signed=False)
    (d / "MODEL_CARD.md").write_text("# edited card\n")
    with pytest.raises(BundleError, match=r"MODEL_CARD\.md does not match its sha256 .* not signed"):
        sign_bundle(d, priv)
    assert not (d / "manifest.json.sig").exists()
    assert sign_main([str(d), "--key", str(priv), "--rehash"]) == 0
    trust = load_trust(site=False)
    trust.add(load_public_key(tmp_path / "k" / "site-ed25519.pub"), "site", "test")
    assert load_bundle(d, trust).signer.startswith("site (")
    assert set(PROJECT_KEYS) == {"CroMoTEX project"}
