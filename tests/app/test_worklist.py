"""The reading workflow in the app (issue 20): worklist filled by a background scan of real
sample files (with a failing file), filters, SQL sorting, opening rows, next unread, the
serial comparison and its AI trend plot, overread sign + amend with audit entries, and a
store that cannot be opened."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pydicom
import pytest

from app_samples import REPO

sys.path.insert(0, str(REPO / "tests" / "engine"))
from store_helpers import DICOM_ECG, MUSE, PTBXL, copy_wfdb, muse_visit  # noqa: E402

sys.path.pop(0)

from app.qt import QtCore  # noqa: E402
from app.worklist.model import read_status  # noqa: E402
from engine.store import Store, entries_for, run_scan, verify  # noqa: E402


@pytest.fixture(scope="module")
def predictor():
    from engine.inference import Predictor
    return Predictor(threads=1)


def make_folder(root: Path) -> Path:
    """Real files: MUSE XML + a prior of that patient, the DICOM ECG + a later copy of it
    (same patient, AcquisitionDateTime a year on), a PTB-XL WFDB record, a corrupt DICOM."""
    folder = root / "ecgs"
    (folder / "dicom").mkdir(parents=True)
    shutil.copyfile(MUSE, folder / MUSE.name)
    muse_visit(folder / "prior" / "muse_prior.xml", "04-29-2022", 72)
    shutil.copyfile(DICOM_ECG, folder / "dicom" / "ecg_2013.dcm")
    ds = pydicom.dcmread(DICOM_ECG)
    ds.AcquisitionDateTime = "20140301093000"
    ds.ContentDate = ds.StudyDate = "20140301"
    ds.save_as(folder / "dicom" / "ecg_2014.dcm")
    copy_wfdb(PTBXL, folder / "wfdb")
    (folder / "dicom" / "broken.dcm").write_bytes(DICOM_ECG.read_bytes()[:3000])
    return folder


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, predictor) -> tuple[Path, Path]:
    """(folder, store file) scanned once with the shipped models; tests copy the store."""
    root = tmp_path_factory.mktemp("wl")
    folder = make_folder(root)
    with Store(root / "template.sqlite3") as s:
        summary = run_scan([folder], s, predictor=predictor, quick_index=False)
    assert (summary.indexed, summary.failed) == (5, 1)
    return folder, root / "template.sqlite3"


@pytest.fixture
def wl(controller, tmp_path, scanned, predictor, qtbot):
    """A WorklistController on a copy of the scanned store, the models loaded."""
    from app.worklist_controller import WorklistController
    db = tmp_path / "store" / "store.sqlite3"
    db.parent.mkdir()
    shutil.copyfile(scanned[1], db)
    controller.predictor = predictor
    controller.settings.reports_dir = str(tmp_path / "reports")
    w = WorklistController(controller, db)
    w.model.set_pathologies(tuple(predictor.pathologies))
    w.model.refresh()
    yield w
    w.shutdown()


def names(model) -> list[str]:
    return [Path(model.entry(i).path).name for i in range(model.rowCount())]


def col(model, key: str) -> list[str]:
    c = model.column_index(key)
    return [model.index(i, c).data() for i in range(model.rowCount())]


def open_row(wl, qtbot, name: str):
    row = names(wl.model).index(name)
    with qtbot.waitSignal(wl.ctl.ecg_shown, timeout=20000):
        wl.view.select_row(row)
        wl.open_entry(wl.model.entry(row))
    return wl.model.entry(row)


def test_scan_in_background_fills_worklist_with_error_row(controller, tmp_path, qtbot, predictor):
    from app.worklist_controller import WorklistController
    folder = make_folder(tmp_path)
    w = WorklistController(controller, tmp_path / "db" / "store.sqlite3")
    try:
        assert w.model.rowCount() == 0 and w.view.count_label.text() == "0 ECGs"
        with qtbot.waitSignal(w.scan_finished, timeout=120000) as sig:
            assert w.scan([folder], predictor=predictor)
            assert not w.view.cancel_button.isHidden()
        assert sig.args == [False, ""]
        qtbot.waitUntil(lambda: w.model.rowCount() == 6, timeout=5000)
        assert w.view.cancel_button.isHidden()
        assert "6 files: 5 indexed, 0 unchanged, 1 failed; AI: 5 scored" in w.view.scan_label.text()
        assert w.view.count_label.text() == "6 ECGs"
        m = w.model
        status = dict(zip(names(m), col(m, "status")))
        assert status["broken.dcm"] == "error" and status["ecg_2013.dcm"] == "unread"
        errors = dict(zip(names(m), col(m, "error")))
        assert errors["broken.dcm"] and "ecg_2013.dcm" not in [n for n, e in errors.items() if e]
        # the AI columns hold the shipped models' probabilities of each file
        p0 = predictor.pathologies[0]
        ai = dict(zip(names(m), col(m, f"ai:{p0}")))
        e = m.entry(names(m).index("egm_muse-sinus.xml"))
        assert ai["egm_muse-sinus.xml"].startswith(f"{e.probabilities[p0]:.2f}")
        assert ai["broken.dcm"] == ""
        assert dict(zip(names(m), col(m, "format")))["egm_muse-sinus.xml"] == "muse-xml"
        assert dict(zip(names(m), col(m, "hr_bpm")))["egm_muse-sinus.xml"] != ""
        # a second scan is incremental: nothing read again
        with qtbot.waitSignal(w.scan_finished, timeout=60000):
            assert w.scan([folder], predictor=predictor)
        assert "6 files: 0 indexed, 6 unchanged" in w.view.scan_label.text()  # failed files too
    finally:
        w.shutdown()


def test_filters_and_sorting(wl, qtbot):
    m, v = wl.model, wl.view
    assert m.rowCount() == 6
    # sorted by acquisition time, newest first (the default), rows without a time last
    acquired = [a for a in col(m, "acquired")]
    timed = [a for a in acquired if a]
    assert timed == sorted(timed, reverse=True)
    v.table.sortByColumn(m.column_index("acquired"), QtCore.Qt.SortOrder.AscendingOrder)
    timed = [a for a in col(m, "acquired") if a]
    assert timed == sorted(timed)
    v.table.sortByColumn(m.column_index("patient_id"), QtCore.Qt.SortOrder.AscendingOrder)
    ids = [i for i in col(m, "patient_id") if i]
    assert ids == sorted(ids)
    # filters
    v.patient_edit.setText("081486213")
    qtbot.waitUntil(lambda: m.rowCount() == 2, timeout=3000)
    assert sorted(names(m)) == ["egm_muse-sinus.xml", "muse_prior.xml"]
    v.patient_edit.clear()
    qtbot.waitUntil(lambda: m.rowCount() == 6, timeout=3000)
    v.dates_check.setChecked(True)
    v.date_from.setDate(QtCore.QDate(2013, 1, 1))
    v.date_to.setDate(QtCore.QDate(2013, 12, 31))
    assert names(m) == ["ecg_2013.dcm"]
    v.dates_check.setChecked(False)
    assert m.rowCount() == 6
    v.flagged_check.setChecked(True)

    assert all(m.entry(i).flagged for i in range(m.rowCount()))
    assert all(col(m, "flags"))
    v.flagged_check.setChecked(False)
    v.positive_check.setChecked(True)
    assert all(m.entry(i).ai_positive for i in range(m.rowCount()))
    # the store's filter is probability >= threshold: borderline calls are in it too
    row_text = [" ".join(m.index(i, c).data() for c in range(m.columnCount())) for i in range(m.rowCount())]
    assert row_text and all("POS" in t or "borderline" in t or m.entry(i).flagged
                            for i, t in enumerate(row_text))
    v.positive_check.setChecked(False)
    v.unread_check.setChecked(True)
    assert m.rowCount() == 6  # none read yet; the failed file stays listed with its error
    v.unread_check.setChecked(False)


def test_open_row_shows_record_and_next_unread(wl, qtbot):
    entry = open_row(wl, qtbot, "egm_muse-sinus.xml")
    assert wl.ctl.record.source.path == entry.path
    assert wl.current.id == entry.id
    assert "egm_muse-sinus.xml" in wl.w.windowTitle()
    # the comparison has the prior of this patient (only)
    assert [e.id for e in wl.comparison.others] != []
    assert all(e.patient_key == entry.patient_key for e in wl.comparison.others)
    # next unread goes down the list, opening each; the failed file is skipped
    wl.view.select_row(0)
    seen = []
    for _ in range(6):
        row = wl.model.next_unread(wl.view.table.currentIndex().row(), +1)
        if row is None:
            assert not wl.open_unread(+1)
            break
        with qtbot.waitSignal(wl.ctl.ecg_shown, timeout=20000):
            assert wl.open_unread(+1)
        assert wl.view.table.currentIndex().row() == row
        seen.append(Path(wl.ctl.record.source.path).name)
    assert "broken.dcm" not in seen and len(seen) >= 3
    # previous unread goes back up
    before = wl.view.table.currentIndex().row()
    with qtbot.waitSignal(wl.ctl.ecg_shown, timeout=20000):
        assert wl.open_unread(-1)
    assert wl.view.table.currentIndex().row() < before
    # shortcuts
    assert wl.act_next_unread.shortcut().toString() == "Ctrl+]"
    assert wl.act_prev_unread.shortcut().toString() == "Ctrl+["


def test_comparison_trend_plot_and_differences(wl, qtbot):
    entry = open_row(wl, qtbot, "ecg_2014.dcm")
    comp = wl.comparison
    assert [Path(e.path).name for e in comp.others] == ["ecg_2013.dcm"]
    prior = comp.selected_prior()
    qtbot.waitUntil(lambda: comp.prior_view.record is not None, timeout=20000)
    assert comp.prior_view.record.source.path == prior.path
    assert comp.prior_view.zoom == pytest.approx(comp.current_view.zoom)
    rows = {comp.diff_table.item(i, 0).text(): [comp.diff_table.item(i, j).text() for j in (1, 2, 3)]
            for i in range(comp.diff_table.rowCount())}
    assert set(rows) >= {"HR", "PR", "QRS", "QTc", "QRS axis"}
    assert rows["HR"][2] in ("+0 bpm", "—")  # the same signal: no change
    # the trend: one point per ECG and pathology at its time, threshold lines
    from app.views.trend_plot import epoch_s
    plot = comp.trend
    xs_expected = sorted([epoch_s(prior.acquired), epoch_s(entry.acquired)])
    for p in wl.ctl.predictor.pathologies:
        pts = []
        for kind in ("assessable", "not_assessable", "ood"):
            sc = plot.scatters.get((p, kind))
            if sc is not None:
                x, y = sc.getData()
                pts += list(zip(x, y))
                for ecg_id, yy in zip(sc.data["data"], y):
                    e = prior if ecg_id == prior.id else entry
                    assert yy == pytest.approx(e.probabilities[p])
                    from app.views.trend_plot import point_kind
                    tp = next(t for t in plot.points if t.ecg_id == ecg_id)
                    assert point_kind(tp, p) == kind
        assert sorted(x for x, _ in pts) == xs_expected
        assert plot.threshold_lines[p].value() == pytest.approx(entry.thresholds[p])
    assert plot.current_line.value() == epoch_s(entry.acquired)


def test_trend_plot_draws_flagged_and_ood_differently(qtbot):
    from app.views.trend_plot import TrendPlot, epoch_s
    from engine.store import TrendPoint
    t = TrendPlot()
    qtbot.addWidget(t)
    pts = [TrendPoint(1, "2020-01-01T10:00:00", "a", {"af": 0.2}, {"af": 0.5}, {"af": False}, {"af": False}, False, (), None),
           TrendPoint(2, "2021-01-01T10:00:00", "b", {"af": 0.7}, {"af": 0.5}, {"af": True}, {"af": False}, True,
                      ("noisy_leads:V1",), None),
           TrendPoint(3, "2022-01-01T10:00:00", "c", {"af": 0.9}, {"af": 0.5}, {"af": True}, {"af": True}, True,
                      ("ood:af",), None),
           TrendPoint(4, "2023-01-01T10:00:00", "d", {"af": 0.8}, {"af": 0.6}, {"af": True}, {"af": False}, False, (), None),
           TrendPoint(5, None, "e", {"af": 0.1}, {"af": 0.5}, {"af": False}, None, False, (), None),
           TrendPoint(6, "2023-02-01T10:00:00", None, None, None, None, None, False, (), "unreadable")]
    t.set_points(pts, current_id=4)
    x, y = t.scatters[("af", "assessable")].getData()
    assert list(y) == [0.2, 0.8] and list(x) == [epoch_s("2020-01-01T10:00:00"), epoch_s("2023-01-01T10:00:00")]
    assert list(t.scatters[("af", "not_assessable")].getData()[1]) == [0.7]
    assert list(t.scatters[("af", "ood")].getData()[1]) == [0.9]
    # only assessable points are joined by the line
    assert list(t.lines["af"].getData()[1]) == [0.2, 0.8]
    assert t.threshold_lines["af"].value() == 0.6  # the newest threshold
    labels = [lab.text for _, lab in t.legend.items]
    assert labels == ["af", "not assessable (hollow)", "out of distribution (grey)"]
    assert "1 ECG(s) without an acquisition time" in t.note.text()
    assert "1 ECG(s) without AI results" in t.note.text()
    assert "other thresholds" in t.note.text()
    assert t.current_line.value() == epoch_s("2023-01-01T10:00:00")
    assert t.scatters[("af", "ood")].opts["symbol"] == "s"


def test_overread_sign_amend_versions_and_audit(wl, qtbot, tmp_path):
    entry = open_row(wl, qtbot, "egm_muse-sinus.xml")
    qtbot.waitUntil(lambda: bool(wl.ctl.ecg_predictions), timeout=30000)
    panel = wl.overread
    device = [s.text for s in panel.statements()]
    assert device and all(s.status == "confirmed" for s in panel.statements())
    # refuse to sign without a name
    panel.set_reader("")
    for c in panel.agreement_combos.values():
        c.setCurrentIndex(c.findData("agree"))
    assert wl.sign() is None
    assert "reader's name" in panel.message.text()
    # edit, add, remove; then sign
    panel.list.item(0).setText(device[0] + " (confirmed by reader)")
    panel.add_statement("No significant change from prior ECG")
    assert len(device) > 1
    panel.list.setCurrentRow(len(device) - 1)
    panel.remove_selected()  # a device statement struck: kept as "removed"
    panel.set_reader("Dr Ada Test")
    first = wl.sign()
    assert first is not None and first.version == 1 and first.reader == "Dr Ada Test"
    statuses = [s.status for s in first.statements]
    assert statuses[0] == "edited" and statuses[-2] == "removed" and statuses[-1] == "added"
    assert wl.ctl.settings.reader_name == "Dr Ada Test"
    reports = tmp_path / "reports"
    pdf1 = next(reports.glob("*_read_v1.pdf"))
    js1 = json.loads(next(reports.glob("*_read_v1.json")).read_text())
    assert js1["read"]["version"] == 1 and js1["ecg"]["sha256"] == entry.sha256
    assert js1["ai"]["probabilities"] == entry.probabilities
    assert pdf1.read_bytes()[:4] == b"%PDF"
    if shutil.which("pdftotext"):  # the signed read's page closes the report
        import subprocess
        import unicodedata
        text = " ".join(unicodedata.normalize("NFKC", subprocess.run(  # NFKC: the "fi" ligatures
            ["pdftotext", "-layout", str(pdf1), "-"], capture_output=True, text=True, check=True).stdout).split())
        last = text.split("Signed overread, version 1")[-1]
        assert "Signed overread, version 1" in text and "Signed by Dr Ada Test" in last
        assert "No significant change from prior ECG [added]" in last
        assert f"{device[0]} (confirmed by reader) [edited; device: {device[0]}]" in last
        assert f"– {device[-1]}" in last  # struck device statement listed as such
        assert entry.sha256 in last
    # the worklist row is read now; the panel offers an amendment
    row = names(wl.model).index("egm_muse-sinus.xml")
    assert read_status(wl.model.entry(row)) == "read v1"
    assert panel.sign_button.text() == "Sign amendment"
    # an amendment needs a reason, then makes version 2; version 1 stays
    panel.add_statement("Sinus tachycardia")
    assert wl.sign() is None and "why" in panel.message.text().lower()
    panel.reason_edit.setText("rate missed")
    second = wl.sign()
    assert second.version == 2 and second.previous_id == first.id and second.reason == "rate missed"
    assert next(reports.glob("*_read_v2.pdf")).is_file()
    assert read_status(wl.model.entry(names(wl.model).index("egm_muse-sinus.xml"))) == "read v2"
    from engine.store import read_history
    assert [r.version for r in read_history(wl.store, entry.sha256)] == [1, 2]
    actions = [a.action for a in entries_for(wl.store, entry.sha256)]
    assert actions.count("ai_result_shown") >= 1
    assert actions.count("statement_edited") == 4  # edited, added, added (v2), removed
    assert actions.count("read_signed") == 1 and actions.count("read_amended") == 1
    assert actions.count("export") == 4  # JSON + PDF of each version
    shown = next(a for a in entries_for(wl.store, entry.sha256) if a.action == "ai_result_shown")
    assert shown.bundle_id == wl.ctl.predictor.bundle.bundle_id
    assert set(shown.details["results"]) == set(wl.ctl.predictor.pathologies)
    assert verify(wl.store).ok


def test_overread_disabled_for_failed_file(wl, qtbot):
    row = names(wl.model).index("broken.dcm")
    errors = []
    wl.ctl.present_error = lambda t, m: errors.append((t, m))
    wl.open_entry(wl.model.entry(row))
    assert errors and "broken.dcm" in errors[0][0]
    assert wl.model.index(row, wl.model.column_index("error")).data()


def test_store_unusable_turns_worklist_off(controller, tmp_path):
    from app.worklist_controller import WorklistController
    bad = tmp_path / "not-a-db.sqlite3"
    bad.write_bytes(b"this is not an SQLite database" * 100)
    w = WorklistController(controller, bad)
    assert w.store is None
    assert w.view.banner.isVisibleTo(w.view) and "worklist is off" in w.view.banner.text()
    assert "damaged" in w.view.banner.text()
    assert not w.view.table.isEnabled() and not w.act_open_folder.isEnabled()
    assert not w.scan([str(tmp_path)])
    # the review side keeps working
    assert controller.w.act_open_ecg.isEnabled()
    if os.name == "posix" and os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        os.chmod(ro, 0o555)
        try:
            assert not w.open_store(ro / "sub" / "store.sqlite3")
            assert "cannot" in w.view.banner.text().lower() or "read-only" in w.view.banner.text().lower()
        finally:
            os.chmod(ro, 0o755)
    # a good store turns it back on
    assert w.open_store(tmp_path / "ok" / "store.sqlite3")
    assert not w.view.banner.isVisibleTo(w.view) and w.view.table.isEnabled()
    w.shutdown()


def test_sign_refused_when_the_file_changed_since_indexing(wl, qtbot):
    entry = open_row(wl, qtbot, "ecg_2013.dcm")
    panel = wl.overread
    panel.set_reader("Dr Ada Test")
    for c in panel.agreement_combos.values():
        c.setCurrentIndex(c.findData("disagree"))
    ds = pydicom.dcmread(entry.path)
    ds.PatientComments = "edited after indexing"
    ds.save_as(entry.path)
    try:
        assert wl.sign() is None
        assert "changed since it was indexed" in panel.message.text()
        from engine.store import latest_read
        assert latest_read(wl.store, entry.id) is None
    finally:
        shutil.copyfile(DICOM_ECG, entry.path)  # the module's folder is shared


def test_worklist_calls_match_the_ai_panel_borderline_bands(wl, qtbot, predictor):
    """A probability inside the bundle's borderline band reads "borderline" in the worklist
    and the overread panel, as in the AI panel (engine.calls), never "POS"."""
    from app.worklist.model import entry_call
    entry = open_row(wl, qtbot, "egm_muse-sinus.xml")
    qtbot.waitUntil(lambda: bool(wl.ctl.ecg_predictions), timeout=30000)
    m = wl.model
    row = names(m).index("egm_muse-sinus.xml")
    for p, pred in wl.ctl.ecg_predictions.items():
        assert entry_call(entry, p, m.bands) == pred.call
        text = m.index(row, m.column_index(f"ai:{p}")).data()
        assert text.startswith(f"{entry.probabilities[p]:.2f}")
        assert ("borderline" in text) == (pred.call == "borderline")
        assert ("POS" in text) == (pred.call == "positive")
    labels = [wl.overread.findings_layout.itemAt(i, wl.overread.findings_layout.ItemRole.LabelRole).widget().text()
              for i in range(wl.overread.findings_layout.rowCount())]
    assert [lab.split("(")[-1].rstrip(")") for lab in labels] == \
        [wl.ctl.ecg_predictions[p].call.replace("_", " ") for p in entry.probabilities]


def test_scan_cancel_keeps_what_was_saved(controller, tmp_path, qtbot):
    from app.worklist_controller import WorklistController
    folder = tmp_path / "many"
    for i in range(60):
        copy_wfdb(PTBXL, folder / f"{i // 20}", f"r{i:03d}")
    w = WorklistController(controller, tmp_path / "db" / "store.sqlite3")
    try:
        with qtbot.waitSignal(w.scan_finished, timeout=120000) as sig:
            assert w.scan([str(folder)])
            qtbot.waitUntil(lambda: w._last_progress is not None, timeout=60000)
            w.cancel_scan()
            assert w.view.scan_label.text() == "Cancelling…"
        assert sig.args == [True, ""]
        assert w.view.scan_label.text().startswith("Scan cancelled; ")
        saved = w.model.total
        assert 1 <= saved < 60
        with Store(tmp_path / "db" / "store.sqlite3") as s:
            from engine.store import count_worklist
            assert count_worklist(s) == saved
    finally:
        w.shutdown()


def test_scan_a_list_of_files(controller, tmp_path, qtbot, scanned):
    """File > Open files into worklist: only the files given are indexed."""
    from app.worklist_controller import WorklistController
    folder = scanned[0]
    files = [str(folder / MUSE.name), str(folder / "dicom" / "broken.dcm")]
    w = WorklistController(controller, tmp_path / "db" / "store.sqlite3")
    try:
        with qtbot.waitSignal(w.scan_finished, timeout=120000):
            assert w.scan(files)
        assert sorted(names(w.model)) == ["broken.dcm", MUSE.name]
        assert w.model.entry(names(w.model).index("broken.dcm")).error
        assert not w.worklist_dock.isHidden() and not w.overread_dock.isHidden()
    finally:
        w.shutdown()
