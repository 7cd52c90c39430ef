"""The reading workflow in the main window (issue 20): the worklist, the serial
comparison with the AI trend, and the overread with sign / amend, all over the
study store of `engine.store` (one connection on the GUI thread; the scan runs in
a child process with its own, `app.worklist.scan_process`).

It adds three docks (Worklist, Comparison, Overread), File menu entries (open a
folder, a DICOMDIR or files into the worklist) and Next / Previous unread
(Ctrl+] / Ctrl+[). Opening a worklist row opens the file through the review
`Controller`; the comparison and the overread follow the ECG on screen only when it
is that row's file (never beside another file's data). Every AI result shown, edit,
signature and export goes to the store's audit log. A store that cannot be opened
(read-only folder, damaged or locked database) turns the worklist off with the
reason; the rest of the app works as before.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.controller import Controller, error_text
from app.qt import QtCore, QtGui, QtWidgets, Signal
from app.views.comparison_view import ComparisonView
from app.views.overread_panel import OverreadPanel
from app.views.worklist_view import WorklistView
from app.worklist.model import WorklistModel
from app.worklist.scan_process import ScanProcess
from engine.errors import CromotexError, StoreError
from engine.records import EcgRecord
from engine.store.scan import content_files, content_sha256
from engine.store import (EcgEntry, SignedRead, Store, ai_trend, amend_read, find_ecg, get_ecg, latest_read,
                          log_event, measurement_differences, patient_ecgs, read_history, sign_read,
                          store_path)

log = logging.getLogger(__name__)

#: The worklist and the scan's progress are refreshed this often while a scan runs (ms).
REFRESH_MS = 500


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except OSError:
        return False


def read_lines(entry: EcgEntry, read: SignedRead) -> list[str]:
    """The signed read as text lines for the PDF page (title first)."""
    lines = [f"Signed overread, version {read.version}",
             f"Patient: {entry.patient_name or '—'}   ID: {entry.patient_id or '—'}   "
             f"Acquired: {(entry.acquired or '—').replace('T', ' ')}",
             f"File: {entry.path}   SHA-256: {entry.sha256}", "", "Statements:"]
    lines += [f"  • {s.text}" + ("" if s.status == "confirmed" else f"  [{s.status}"
                                 + (f"; device: {s.original}" if s.original and s.original != s.text else "") + "]")
              for s in read.statements if s.status != "removed"]
    struck = [s for s in read.statements if s.status == "removed"]
    if struck:
        lines += ["Device statements struck by the reader:"] + [f"  – {s.original or s.text}" for s in struck]
    if read.agreement:
        lines += ["", "Reader's view of the AI findings:"]
        for p, v in read.agreement.items():
            prob = (entry.probabilities or {}).get(p)
            lines.append(f"  {p}: {v}" + (f" (AI probability {prob:.2f})" if prob is not None else ""))
    if read.comment:
        lines += ["", f"Comment: {read.comment}"]
    if read.reason:
        lines += ["", f"Amended (replaces version {read.version - 1}): {read.reason}"]
    lines += ["", f"Signed by {read.reader} on {read.signed_at} (UTC)"]
    return lines


def read_json(entry: EcgEntry, read: SignedRead) -> dict[str, Any]:
    """The JSON result of a signed read: the read, the file and the AI output it was signed on."""
    return {"read": asdict(read),
            "ecg": {"path": entry.path, "sha256": entry.sha256, "format": entry.format,
                    "patient_id": entry.patient_id, "patient_name": entry.patient_name,
                    "acquired": entry.acquired},
            "ai": {"bundle_id": entry.bundle_id, "probabilities": entry.probabilities,
                   "thresholds": entry.thresholds, "positive": entry.positive,
                   "flags": list(entry.flags)}}


class WorklistController(QtCore.QObject):
    """Adds the reading workflow to `ctl`'s window.

    Args:
        ctl: the review controller (its window, settings and predictor).
        store_file: the study store (default: settings.store_path, else engine.store's default).

    Signals:
        scan_finished(bool, str): (cancelled, error or "") after a scan ended and the
            worklist was refreshed.
    """

    scan_finished = Signal(bool, str)

    def __init__(self, ctl: Controller, store_file: str | os.PathLike | None = None) -> None:
        super().__init__(ctl)
        self.ctl = ctl
        self.w = ctl.w
        self.store: Store | None = None
        self.store_error = ""
        self.scan_job: ScanProcess | None = None
        self.current: EcgEntry | None = None   # the worklist entry of the ECG on screen
        self._opening: EcgEntry | None = None  # the entry whose file is being opened
        self._last_progress: Any = None   # of the reading pass
        self._score_progress: Any = None  # of the AI pass (two-pass scans)
        pathologies = tuple(ctl.predictor.pathologies) if ctl.predictor is not None else ()
        self.model = WorklistModel(pathologies, self)
        px = self.w.ecg_view.px_per_mm
        self.view = WorklistView(self.model)
        self.comparison = ComparisonView(px_per_mm=px)
        self.overread = OverreadPanel()
        self.overread.set_reader(ctl.settings.reader_name)
        self._refresh_timer = QtCore.QTimer(self, interval=REFRESH_MS)
        self._refresh_timer.timeout.connect(self._tick)
        self._progress_dirty = False
        self._make_docks()
        self._make_actions()
        self._use_bands(ctl.predictor)
        self._connect()
        self.open_store(store_file)

    # ------------------------------------------------------------ building
    def _dock(self, title: str, widget: QtWidgets.QWidget, area: Any, name: str) -> QtWidgets.QDockWidget:
        d = QtWidgets.QDockWidget(title, self.w)
        d.setObjectName(name)
        d.setWidget(widget)
        self.w.addDockWidget(area, d)
        return d

    def _make_docks(self) -> None:
        bottom, right = QtCore.Qt.DockWidgetArea.BottomDockWidgetArea, QtCore.Qt.DockWidgetArea.RightDockWidgetArea
        self.worklist_dock = self._dock("Worklist", self.view, bottom, "worklist_dock")
        self.comparison_dock = self._dock("Serial comparison", self.comparison, bottom, "comparison_dock")
        self.w.tabifyDockWidget(self.worklist_dock, self.comparison_dock)
        self.worklist_dock.raise_()
        self.overread_dock = self._dock("Overread", self.overread, right, "overread_dock")
        for d in (self.worklist_dock, self.comparison_dock, self.overread_dock):
            d.hide()  # shown once there is a worklist: the single-file review looks as before

    def show_docks(self) -> None:
        """Show the worklist, comparison and overread docks at sizes that leave the ECG
        paper most of the window."""
        if self.worklist_dock.isVisible():
            return
        for d in (self.worklist_dock, self.comparison_dock, self.overread_dock):
            d.show()
        self.worklist_dock.raise_()
        self.w.resizeDocks([self.worklist_dock], [max(220, self.w.height() * 32 // 100)],
                           QtCore.Qt.Orientation.Vertical)
        self.w.resizeDocks([self.overread_dock], [330], QtCore.Qt.Orientation.Horizontal)
        h = self.w.right_splitter.height()
        self.w.right_splitter.setSizes([h * 4 // 5, h - h * 4 // 5])  # the AI findings keep their room

    def _make_actions(self) -> None:
        w = self.w

        def action(text: str, shortcut: str | None = None) -> QtGui.QAction:
            a = QtGui.QAction(text, w)
            if shortcut:
                a.setShortcut(QtGui.QKeySequence(shortcut))
            w.addAction(a)
            return a

        self.act_open_folder = action("Open &folder into worklist…", "Ctrl+Shift+F")
        self.act_open_files = action("Open files or DICOMDIR into worklist…")
        self.act_next_unread = action("Next unread ECG", "Ctrl+]")
        self.act_prev_unread = action("Previous unread ECG", "Ctrl+[")
        menu = getattr(w, "file_menu", None) or w.menuBar().addMenu("&Worklist")
        first = menu.actions()[0] if menu.actions() else None
        for a in (self.act_open_folder, self.act_open_files):
            menu.insertAction(first, a)
        wl = w.menuBar().addMenu("&Worklist")
        for a in (self.act_open_folder, self.act_open_files, self.act_next_unread, self.act_prev_unread):
            wl.addAction(a)
        wl.addSeparator()
        for d in (self.worklist_dock, self.comparison_dock, self.overread_dock):
            wl.addAction(d.toggleViewAction())

    def _connect(self) -> None:
        self.act_open_folder.triggered.connect(self.ask_open_folder)
        self.act_open_files.triggered.connect(self.ask_open_files)
        self.act_next_unread.triggered.connect(lambda: self.open_unread(+1))
        self.act_prev_unread.triggered.connect(lambda: self.open_unread(-1))
        self.view.open_requested.connect(self.open_entry)
        self.view.filter_changed.connect(self._set_filter)
        self.view.cancel_requested.connect(self.cancel_scan)
        self.comparison.prior_changed.connect(self._prior_changed)
        self.overread.sign_requested.connect(self.sign)
        self.overread.statement_edited.connect(self._statement_edited)
        self.ctl.ecg_shown.connect(self._ecg_shown)
        self.ctl.ecg_predicted.connect(self._ecg_predicted)
        self.ctl.models_ready.connect(self._models_ready)

    # ------------------------------------------------------------ the store
    def open_store(self, path: str | os.PathLike | None = None) -> bool:
        """Open (create, migrate) the study store; on failure turn the worklist off with the
        reason and keep the app usable. Returns whether it opened."""
        if self.store is not None:
            self.store.close()
            self.store = None
        try:
            target = Path(path) if path else store_path()  # $CROMOTEX_REVIEW_STORE, the setting, the default
            self.store = Store(target)
        except CromotexError as exc:
            self.store_error = f"The worklist is off: {exc}"
            log.warning("study store unavailable: %s", exc)
            self.model.set_store(None)
            self.view.set_disabled_reason(self.store_error)
            self.w.statusBar().showMessage(self.store_error, 15000)
            for a in (self.act_open_folder, self.act_open_files, self.act_next_unread, self.act_prev_unread):
                a.setEnabled(False)
            return False
        self.store_error = ""
        self.view.set_disabled_reason("")
        for a in (self.act_open_folder, self.act_open_files, self.act_next_unread, self.act_prev_unread):
            a.setEnabled(True)
        self._guard(lambda: self.model.set_store(self.store))
        if self.model.total:
            self.show_docks()
        return True

    def _guard(self, fn: Any, title: str = "Study store") -> Any:
        """Run `fn()`; a StoreError is shown (and the worklist stays usable)."""
        try:
            return fn()
        except StoreError as exc:
            self.w.statusBar().showMessage(str(exc), 15000)
            self.ctl.show_error(title, str(exc))
            return None

    @property
    def user(self) -> str:
        """Who the audit log names: the configured reader, else the OS account."""
        name = self.ctl.settings.reader_name.strip()
        if name:
            return name
        try:
            return f"{getpass.getuser()} (OS account)"
        except Exception:  # no login name (containers): still not anonymous in the log
            return "unknown (OS account)"

    def _bundle(self) -> tuple[str | None, str | None]:
        p = self.ctl.predictor
        if p is None:
            return None, None
        b = p.bundle
        return b.bundle_id, str(b.manifest.get("version") or "") or None

    # ------------------------------------------------------------ scanning
    def ask_open_folder(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self.w, "Open a folder of ECGs")
        if folder:
            self.scan([folder])

    def ask_open_files(self) -> None:
        files, _ = QtWidgets.QFileDialog.getOpenFileNames(self.w, "Open ECG files or a DICOMDIR")
        if files:
            self.scan(files)

    def scan(self, paths: list[str], predictor: Any | None = None) -> bool:
        """Index `paths` (folders recursively, DICOMDIRs, files) in a background process: first
        listed without AI, then scored with the loaded models' bundle (`predictor` overrides).
        False when the store is off or a scan runs."""
        if self.store is None:
            self.ctl.show_error("Worklist unavailable", self.store_error)
            return False
        if self.scan_job is not None and self.scan_job.isRunning():
            self.w.statusBar().showMessage("A scan is already running; cancel it or wait.", 5000)
            return False
        predictor = predictor if predictor is not None else self.ctl.predictor
        if predictor is not None and tuple(predictor.pathologies) != self.model.pathologies:
            self.model.set_pathologies(tuple(predictor.pathologies))
        self._use_bands(predictor)
        self._last_progress = self._score_progress = None
        models_dir = str(predictor.bundle.directory) if predictor is not None else None
        self.scan_job = ScanProcess(paths, self.store.path, models_dir, predictor is not None, parent=self)
        self.scan_job.progress.connect(self._scan_progress)
        self.scan_job.finished_scan.connect(self._scan_finished)
        self.view.set_scanning(True)
        note = "" if predictor is not None else " (models not loaded: indexed without AI)"
        self.view.show_progress(0, None, f"Scanning {', '.join(Path(p).name for p in paths)}{note}…")
        self._refresh_timer.start()
        self.show_docks()
        self.worklist_dock.raise_()
        self.scan_job.start()
        return True

    def cancel_scan(self) -> None:
        if self.scan_job is not None:
            self.scan_job.cancel()
            self.view.cancel_button.setEnabled(False)
            self.view.show_progress(self.view.progress.value(), None, "Cancelling…")

    def _scan_progress(self, p: Any) -> None:
        if getattr(p, "phase", "index") == "score":
            self._score_progress = p
        else:
            self._last_progress = p
        self._progress_dirty = True  # shown by _show_progress (a repaint per file cost 1.4 ms)

    def _show_progress(self) -> None:
        p = self._score_progress or self._last_progress
        if p is None or not self._progress_dirty:
            return
        self._progress_dirty = False
        what = "AI pass" if p is self._score_progress else "Reading"
        self.view.show_progress(p.done, None, f"{what}: {p.done} files: {p.indexed} "
                                              f"{'scored' if what == 'AI pass' else 'indexed'}, "
                                              f"{p.unchanged} unchanged, {p.failed} failed")

    def _tick(self) -> None:
        """While a scan runs: show its progress and the rows written so far."""
        self._show_progress()
        self._guard(lambda: self.model.refresh(keep_loaded=True))

    def _scan_finished(self, cancelled: bool, error: str) -> None:
        self._refresh_timer.stop()
        self.view.set_scanning(False)
        p, ai = self._last_progress, self._score_progress
        totals = (f"{p.done} files: {p.indexed} indexed, {p.unchanged} unchanged, {p.failed} failed"
                  if p else "no ECG files found")
        if ai is not None:
            totals += f"; AI: {ai.indexed} scored, {ai.failed} not scored"
        self.view.show_progress(0, None, ("Scan cancelled; " if cancelled else "Scan finished; ") + totals)
        self._guard(lambda: self.model.refresh(keep_loaded=True))
        if error:
            self.ctl.show_error("The scan stopped", error)
        self.scan_finished.emit(cancelled, error)

    def wait_scan(self, timeout_ms: int = 60000) -> bool:
        """Wait for the scan process (tests, quitting)."""
        return self.scan_job is None or self.scan_job.wait(timeout_ms)

    def _set_filter(self, filt: Any) -> None:
        self._guard(lambda: self.model.set_filter(filt))

    def _models_ready(self, ok: bool) -> None:
        if ok and self.ctl.predictor is not None:
            if not self.model.pathologies:
                self.model.set_pathologies(tuple(self.ctl.predictor.pathologies))
            self._use_bands(self.ctl.predictor)
            self._guard(lambda: self.model.refresh())

    def _use_bands(self, predictor: Any) -> None:
        """Calls in the worklist and the overread as the AI panel makes them: with the
        borderline bands of the loaded bundle (for the ECGs it scored)."""
        if predictor is None or predictor.bundle.bundle_id in self.model.bands:
            return
        bands = {p: spec.band for p, spec in predictor.bundle.ecg.items() if spec.band is not None}
        self.model.set_bands({**self.model.bands, predictor.bundle.bundle_id: bands})

    # ------------------------------------------------------------ opening
    def open_entry(self, entry: EcgEntry) -> None:
        """Open a worklist row in the review view (a failed file: its error)."""
        if entry.error is not None:  # scan it again once the file is fixed
            self.ctl.show_error(f"Could not open {Path(entry.path).name}", entry.error)
            return
        self._opening = entry
        self.ctl.open_ecg(entry.path)

    def open_unread(self, step: int) -> bool:
        """Select and open the next (`step` +1) or previous (-1) unread ECG of the worklist."""
        row = self.view.table.currentIndex().row()
        nxt = self.model.next_unread(row, step)
        if nxt is None:
            self.w.statusBar().showMessage("No more unread ECGs in this list.", 5000)
            return False
        self.view.select_row(nxt)
        self.open_entry(self.model.entry(nxt))
        return True

    def _ecg_shown(self, record: EcgRecord) -> None:
        """The review view shows `record`: follow it when it is a worklist file."""
        path = record.source.path if record.source else None
        entry = None
        if path and self.store is not None:
            if self._opening is not None and _same_file(self._opening.path, path):
                entry = self._guard(lambda: get_ecg(self.store, self._opening.id))
            else:
                entry = self._guard(lambda: find_ecg(self.store, os.path.realpath(path)) or find_ecg(self.store, str(path)))
        self._opening = None
        self.current = entry
        self.comparison.set_current_record(record if entry is not None else None)
        self._fill_comparison()
        self._fill_overread()

    def _fill_comparison(self) -> None:
        e = self.current
        if e is None or self.store is None:
            self.comparison.set_patient(None, [])
            self.comparison.trend.set_points([])
            return
        others = (self._guard(lambda: patient_ecgs(self.store, e.patient_key)) or []) if e.patient_key else []
        trend = (self._guard(lambda: ai_trend(self.store, e.patient_key)) or []) if e.patient_key else []
        self.comparison.trend.set_points(trend, current_id=e.id)
        self.comparison.set_patient(e, [o for o in others if o.id != e.id])

    def _prior_changed(self, ecg_id: int) -> None:
        if ecg_id < 0 or self.store is None or self.current is None:
            self.comparison.set_differences([])
            return
        prior = self._guard(lambda: get_ecg(self.store, ecg_id))
        if prior is None or prior.patient_key != self.current.patient_key:
            return  # never compare with another patient's ECG
        self.comparison.set_differences(measurement_differences(prior, self.current))
        from app.controller import _read_ecg_record
        self.ctl._start(_read_ecg_record, prior.path,
                        on_done=lambda rec, s: self._prior_read(prior, rec),
                        on_failed=lambda exc: self.comparison.set_prior_record(prior, None, error_text(exc)),
                        name=f"read prior {prior.path}")

    def _prior_read(self, prior: EcgEntry, record: EcgRecord) -> None:
        chosen = self.comparison.selected_prior()
        if chosen is not None and chosen.id == prior.id:
            self.comparison.set_prior_record(prior, record)

    def _ecg_predicted(self, preds: dict) -> None:
        """The AI panel shows results for the open ECG: log them (file hash, bundle)."""
        if self.current is None or self.store is None or not preds:
            return
        bundle_id, version = self._bundle()
        shown = {k: {"probability": float(getattr(v, "probability", float("nan"))),
                     "positive": bool(getattr(v, "positive", False))} for k, v in preds.items()}
        self._guard(lambda: log_event(self.store, "ai_result_shown", self.user, file_sha256=self.current.sha256,
                                      bundle_id=bundle_id, bundle_version=version,
                                      details={"path": self.current.path, "results": shown}))

    # ------------------------------------------------------------ overread
    def _fill_overread(self) -> None:
        e = self.current
        if e is None or self.store is None:
            self.overread.set_entry(None, None)
            return
        latest = self._guard(lambda: latest_read(self.store, e.id)) if e.sha256 else None
        history = self._guard(lambda: read_history(self.store, e.sha256)) if e.sha256 else []
        self.overread.set_entry(e, latest, history or [], bands=self.model.bands)
        if not self.overread.reader():
            self.overread.set_reader(self.ctl.settings.reader_name)

    def _statement_edited(self, change: dict) -> None:
        if self.current is None or self.store is None:
            return
        self._guard(lambda: log_event(self.store, "statement_edited", self.user, file_sha256=self.current.sha256,
                                      details={"path": self.current.path, **change}))

    def sign(self) -> SignedRead | None:
        """Sign (or amend) the open ECG's read with the panel's content; then write its PDF
        report and JSON result. Refused (message in the panel) without a reader name."""
        e, panel = self.current, self.overread
        if e is None or self.store is None:
            panel.show_message("Open an ECG from the worklist first.", error=True)
            return None
        shown = self.ctl.record
        if shown is None or shown.source is None or not _same_file(shown.source.path, e.path):
            panel.show_message("The ECG on screen is not this worklist entry; open it again.", error=True)
            return None
        try:
            on_disk = content_sha256(content_files(e.path))
        except OSError as exc:
            panel.show_message(f"Cannot read {e.path} to check it before signing ({exc.strerror}).", error=True)
            return None
        if on_disk != e.sha256:
            panel.show_message("This file changed since it was indexed: scan its folder again, then read "
                               "and sign the new content.", error=True)
            return None
        reader = panel.reader()
        bundle_id, version = self._bundle()
        try:
            if panel.latest is None:
                read = sign_read(self.store, e.id, reader, panel.statements(), panel.agreement(),
                                 comment=panel.comment(), bundle_id=bundle_id, bundle_version=version)
            else:
                read = amend_read(self.store, panel.latest, reader, panel.statements(), panel.agreement(),
                                  reason=panel.reason(), comment=panel.comment(), bundle_id=bundle_id,
                                  bundle_version=version)
        except CromotexError as exc:
            panel.show_message(str(exc), error=True)
            return None
        if reader and reader != self.ctl.settings.reader_name:
            self.ctl.settings.reader_name = reader  # remembered for the next read
        written = self._export_read(e, read)
        self._guard(lambda: self.model.refresh(keep_loaded=True))
        self.current = self._guard(lambda: get_ecg(self.store, e.id)) or e
        self._fill_overread()
        panel.show_message(f"Signed version {read.version} by {read.reader}."
                           + (f" Report: {', '.join(p.name for p in written)}" if written else ""))
        return read

    def reports_dir(self) -> Path:
        s = self.ctl.settings.reports_dir
        return Path(s) if s else (self.store.path.parent / "reports")

    def _export_read(self, e: EcgEntry, read: SignedRead) -> list[Path]:
        """Write `<file stem>_<sha8>_read_v<N>.pdf` and `.json`, and log each export."""
        folder = self.reports_dir()
        stem = f"{Path(e.path).stem}_{(e.sha256 or '')[:8]}_read_v{read.version}"
        written: list[Path] = []
        try:
            folder.mkdir(parents=True, exist_ok=True)
            js = folder / f"{stem}.json"
            tmp = js.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(read_json(e, read), indent=2, default=str), encoding="utf-8")
            os.replace(tmp, js)
            written.append(js)
            pdf = self.ctl.export_pdf(folder / f"{stem}.pdf", signed_read=read_lines(e, read))
            written.append(Path(pdf))
        except OSError as exc:
            self.ctl.show_error("The signed read was saved, but its report was not written",
                                f"Could not write the report in {folder} ({exc}). The read is kept in "
                                f"the study store; choose another reports folder in the settings.")
        bundle_id, version = self._bundle()
        for p in written:
            self._guard(lambda p=p: log_event(self.store, "export", read.reader, file_sha256=e.sha256,
                                              bundle_id=bundle_id, bundle_version=version,
                                              details={"path": str(p), "kind": p.suffix.lstrip("."),
                                                       "read_id": read.id, "version": read.version}))
        return written

    # ------------------------------------------------------------ lifetime
    def shutdown(self, timeout_ms: int = 15000) -> None:
        self.cancel_scan()
        self.wait_scan(timeout_ms)
        if self.store is not None:
            self.store.close()
            self.store = None
