"""Behaviour of the review window: opening files (menu, drag and drop, command line),
reading and inference in worker threads, errors, recent files, display settings,
calipers, export and the About / model-card dialogs.

The views never open files; this controller does (through `engine.io`, in a
worker) and hands them plain engine objects.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

from app import paper
from app.about import show_about, show_model_card
from app.filters import DisplayFilters
from app.main_window import TITLE, MainWindow
from app.pairing_guard import PairingGuard, gate_text, replaces_other, teacher_note
from app.qt import QtCore, QtWidgets, Signal, alive
from app.saliency import SaliencyController
from app.settings import Settings
from app.views.calipers import Calipers
from app import workers
from engine.errors import CromotexError
from engine.records import CxrImage, EcgRecord, Prediction

log = logging.getLogger(__name__)

#: Milliseconds between the open ECG's findings being final (`Controller.ready`) and the
#: start of its measurement worker: time for the window to paint them first.
MEASURE_DELAY_MS = 100

#: `error_presenter(title, message)`; the default shows a non-blocking QMessageBox.
ErrorPresenter = Callable[[str, str], None]


def _read_ecg_record(path: str) -> Any:
    """The ECG at `path` as read, without measurements (an `EcgRecord`, or an
    `app.long_record.LongRecord` for a long record, paged): what an open shows first.
    The measurements follow in a worker of their own (`Controller._measure_ecg`)."""
    from app.long_record import open_long
    from engine.io import read_ecg
    return open_long(path) or read_ecg(path)


def _read_ecg(path: str) -> Any:
    """`_read_ecg_record` with the measurements of an ordinary record in its meta, in
    one call (for callers that need both at once; the window's opens do not wait)."""
    rec = _read_ecg_record(path)
    return _with_measurements(rec) if isinstance(rec, EcgRecord) else rec


def _measure(record: EcgRecord) -> Any:
    """`engine.measure.measure_ecg(record)` (an `EcgMeasurements`); imported here, in
    the worker, because `engine.measure` needs `scipy.signal` (~1.6 s to import)."""
    from engine.measure import measure_ecg
    return measure_ecg(record)


def _with_measurements(record: EcgRecord, m: Any = None) -> EcgRecord:
    """`record` with `meta["computed_measurements"]` (an `EcgMeasurements`): `m`, or
    computed here when None; left out (logged) if measuring fails. A copy: `record`
    itself is not changed."""
    from dataclasses import replace

    if m is None:
        try:
            m = _measure(record)
        except Exception:  # measurement is an add-on: the ECG still opens
            log.exception("measurement failed")
            return record
    return replace(record, meta={**record.meta, "computed_measurements": m})


def _read_cxr(path: str) -> CxrImage:
    from engine.io import read_cxr
    return read_cxr(path)


def _read_any(path: str) -> tuple[str, EcgRecord | CxrImage]:
    """("ecg", record) or ("cxr", image): an ECG first, else a chest X-ray (the file is
    recognised, and a DICOM parsed, once)."""
    from engine.io.dispatch import read_any
    return read_any(path)  # measured after it is shown (Controller._measure_ecg)


#: The reader of each kind of file `Controller._open` reads ("any": an ECG or a chest X-ray).
_READERS: dict[str, Callable[[str], Any]] = {"ecg": _read_ecg_record, "cxr": _read_cxr,
                                             "any": _read_any}

#: Suffixes of a WFDB header and of the files the readers recognise by their content:
#: never one of a header's signal files.
_NOT_WFDB_SIGNAL = (".hea", ".dcm", ".png", ".jpg", ".jpeg", ".xml", ".scp", ".edf", ".bdf")
#: The Open ECG dialog's file types (the readers recognise the format from the content).
ECG_FILE_FILTER = ("ECG files (*.hea *.dat *.mat *.dcm *.xml *.XML *.scp *.SCP *.edf *.EDF *.bdf *.BDF);;"
                   "WFDB record (*.hea *.dat *.mat);;DICOM ECG waveform (*.dcm);;"
                   "GE MUSE XML, Philips XML (SierraECG / PhilipsECG), HL7 aECG (*.xml *.XML);;"
                   "SCP-ECG (*.scp *.SCP);;EDF, EDF+, BDF (*.edf *.EDF *.bdf *.BDF)")


def distinct_records(paths: list[str]) -> list[str]:
    """`paths` (in order) without the WFDB signal files (.dat, .mat ...) whose header
    (.hea, same folder and name) is among them, so that a record dropped as its header
    and signal files is read once."""
    headers = {Path(p).with_suffix("") for p in paths if Path(p).suffix.lower() == ".hea"}

    def signal_of_a_header(p: Path) -> bool:
        return p.suffix.lower() not in _NOT_WFDB_SIGNAL and p.with_suffix("") in headers

    return [p for p in paths if not signal_of_a_header(Path(p))]


def _load_predictor(models_dir: str | None) -> Any:
    from engine.inference import Predictor
    return Predictor(models_dir or None)


def error_text(exc: BaseException) -> str:
    """A message for the user: the engine's own words for its typed errors, and an
    honest 'unexpected' note (logged with traceback) for anything else."""
    if isinstance(exc, CromotexError):
        return str(exc)
    log.error("unexpected error", exc_info=exc)
    return f"Unexpected error ({type(exc).__name__}): {exc}. Please report it with the file."


class Controller(QtCore.QObject):
    """Connects a `MainWindow` to the engine.

    Signals:
        ecg_shown(EcgRecord), cxr_shown(CxrImage): a file was read and is displayed.
        ecg_predicted(dict), cxr_predicted(dict): pathology -> Prediction.
        error_shown(str, str): (title, message) of an error dialog.
        ready(): an ECG is drawn and its AI findings are final (shown, or a message
            says why there are none).
        models_ready(bool): the model bundle loaded (True) or was refused (False).
        measured(object): the open ECG's measurements are shown in the header and the
            median view (an `EcgMeasurements`; None when measuring failed).
    """

    ecg_shown = Signal(object)
    cxr_shown = Signal(object)
    ecg_predicted = Signal(object)
    cxr_predicted = Signal(object)
    error_shown = Signal(str, str)
    ready = Signal()
    models_ready = Signal(bool)
    measured = Signal(object)

    def __init__(self, window: MainWindow, settings: Settings | None = None,
                 models_dir: str | None = None, error_presenter: ErrorPresenter | None = None,
                 settings_dir: Path | None = None, save_dialog: Callable[[], str] | None = None,
                 pool: QtCore.QThreadPool | None = None, demo_dir: Path | None = None) -> None:
        super().__init__(window)
        self.w = window
        self.settings_dir = settings_dir
        self.settings = settings or Settings.load(settings_dir)
        self.models_dir = models_dir if models_dir is not None else (self.settings.models_dir or None)
        self.present_error = error_presenter or self._message_box
        self.save_dialog = save_dialog
        self.pool = pool or QtCore.QThreadPool.globalInstance()
        self.demo_dir = demo_dir
        self.predictor: Any = None
        self.models_error: str | None = None
        self._models_loading = False
        self.record: EcgRecord | None = None
        self.cxr: CxrImage | None = None
        self.ecg_predictions: dict[str, Prediction] = {}
        self.cxr_predictions: dict[str, Prediction] = {}
        self.cxr_gate: Any = None  # engine.cxr_gate.GateDecision of the open chest X-ray
        self.guard = PairingGuard(window.banner)  # patient identity of the two panes
        self.last_error: tuple[str, str] | None = None
        self.error_box: QtWidgets.QMessageBox | None = None
        self._gen = {"ecg": 0, "cxr": 0, "measure": 0}
        # The open ECG's measurements (engine.measure), computed after it is shown and its
        # findings are final (`_measure_ecg`); None until then. `measuring`: still to come.
        self.measurements: Any = None
        self.measuring = False
        self._measure_next: tuple[int, EcgRecord] | None = None  # waits for `ready`
        # Open requests are numbered; per kind the newest one issued ("ecg"/"cxr" opens) or
        # shown ("any", whose kind is known only once read). A read finishing behind a newer
        # request of its kind is dropped, so the screen shows the last file opened (issue 15).
        self._read_seq = 0
        self._read_latest = {"ecg": 0, "cxr": 0}
        self._pending = {"ecg": False, "cxr": False}
        self._workers: set[workers.Worker] = set()
        self.calipers = Calipers(window.ecg_view.viewbox, window.ecg_view.speed,
                                 window.ecg_view.gain, parent=window)
        self.saliency = SaliencyController(self)  # "Explain" bars and map overlays (issue 21)
        self._connect()
        self._apply_settings()
        self.ready.connect(self._start_measuring)

    # ------------------------------------------------------------ wiring
    def _connect(self) -> None:
        w = self.w
        w.act_open_ecg.triggered.connect(self.ask_open_ecg)
        w.act_open_cxr.triggered.connect(self.ask_open_cxr)
        w.act_export.triggered.connect(self.ask_export)
        w.act_print.triggered.connect(self.ask_export)
        w.act_quit.triggered.connect(w.close)
        for name, act in w.act_layouts.items():
            act.triggered.connect(lambda _=False, n=name: self.set_layout(n))
        w.act_cabrera.toggled.connect(w.ecg_view.set_cabrera)
        w.act_gain_up.triggered.connect(lambda: w.ecg_view.step_gain(+1))
        w.act_gain_down.triggered.connect(lambda: w.ecg_view.step_gain(-1))
        w.act_speed_up.triggered.connect(lambda: w.ecg_view.step_speed(+1))
        w.act_speed_down.triggered.connect(lambda: w.ecg_view.step_speed(-1))
        w.act_zoom_100.triggered.connect(w.ecg_view.zoom_100)
        w.act_zoom_fit.triggered.connect(w.ecg_view.zoom_fit)
        w.act_zoom_fit_width.triggered.connect(w.ecg_view.zoom_fit_width)
        w.act_page_next.triggered.connect(lambda: w.ecg_view.page(+1))
        w.act_page_prev.triggered.connect(lambda: w.ecg_view.page(-1))
        w.act_calipers.toggled.connect(self.toggle_calipers)
        w.act_marching.toggled.connect(self.calipers.set_marching)
        w.act_about.triggered.connect(lambda: show_about(w, self.predictor))
        w.act_model_card.triggered.connect(self.show_model_card)
        w.ai_panel.model_card_requested.connect(self.show_model_card)
        w.files_dropped.connect(self.open_paths)
        w.layout_combo.currentIndexChanged.connect(
            lambda _: self.set_layout(w.layout_combo.currentData()))
        w.rhythm_combo.currentIndexChanged.connect(
            lambda _: w.ecg_view.set_rhythm_lead(w.rhythm_combo.currentData()))
        w.speed_combo.currentIndexChanged.connect(
            lambda _: w.ecg_view.set_speed(w.speed_combo.currentData()))
        w.gain_combo.currentIndexChanged.connect(
            lambda _: w.ecg_view.set_gain(w.gain_combo.currentData()))
        w.baseline_combo.currentIndexChanged.connect(self._filters_from_ui)
        w.lowpass_check.toggled.connect(self._filters_from_ui)
        w.notch_combo.currentIndexChanged.connect(self._filters_from_ui)
        w.ecg_view.display_changed.connect(self._sync_ui_from_view)
        w.ecg_view.zoom_changed.connect(lambda z: w.zoom_label.setText(f"Zoom {z * 100:.0f}%"))
        self.calipers.measured.connect(lambda r: w.caliper_label.setText(r.text()))
        w.median_view.calipers.measured.connect(lambda r: w.caliper_label.setText(r.text()))

    def _apply_settings(self) -> None:
        s, v = self.settings, self.w.ecg_view
        if s.dpi_override:
            v.set_px_per_mm(paper.px_per_mm(None, None, s.dpi_override))
        if s.layout in paper.LAYOUTS:
            v.layout_name = s.layout
        if s.speed_mm_s in paper.SPEEDS_MM_S:
            v.speed = s.speed_mm_s
        if s.gain_mm_mv in paper.GAINS_MM_MV:
            v.gain = s.gain_mm_mv
        v.rhythm_lead = s.rhythm_lead
        v.cabrera = s.cabrera
        v.set_filters(DisplayFilters(s.baseline_hz, s.lowpass_hz, s.notch_hz))
        if s.geometry:
            self.w.restoreGeometry(QtCore.QByteArray.fromBase64(s.geometry.encode()))
        if s.window_state:
            self.w.restoreState(QtCore.QByteArray.fromBase64(s.window_state.encode()))
        self._rebuild_recent_menu()
        self._rebuild_demo_menu()

    def _sync_ui_from_view(self) -> None:
        """Mirror the view's display settings in the toolbar, menu and settings."""
        v, w, s = self.w.ecg_view, self.w, self.settings
        shown = "median" if w.view_stack.currentWidget() is w.median_view else v.layout_name
        for combo, value in ((w.layout_combo, shown), (w.rhythm_combo, v.rhythm_lead),
                             (w.speed_combo, v.speed), (w.gain_combo, v.gain),
                             (w.baseline_combo, v.filters.baseline_hz),
                             (w.notch_combo, v.filters.notch_hz)):
            idx = combo.findData(value)
            if idx >= 0 and idx != combo.currentIndex():
                combo.blockSignals(True)
                combo.setCurrentIndex(idx)
                combo.blockSignals(False)
        w.lowpass_check.blockSignals(True)
        w.lowpass_check.setChecked(v.filters.lowpass_hz is not None)
        w.lowpass_check.blockSignals(False)
        w.act_layouts[shown].setChecked(True)
        w.act_cabrera.blockSignals(True)
        w.act_cabrera.setChecked(v.cabrera)
        w.act_cabrera.blockSignals(False)
        s.layout, s.speed_mm_s, s.gain_mm_mv = v.layout_name, v.speed, v.gain
        s.rhythm_lead, s.cabrera = v.rhythm_lead, v.cabrera
        s.baseline_hz, s.lowpass_hz, s.notch_hz = (v.filters.baseline_hz, v.filters.lowpass_hz,
                                                   v.filters.notch_hz)
        self.calipers.set_scale(v.speed, v.gain)
        w_mm, _ = paper.paper_size_mm(v.layout_name, v.record.duration_s if v.record else 10.0,
                                      v.speed)
        self.calipers.extent_mm = (0.0, w_mm)

    def _filters_from_ui(self, *_: object) -> None:
        w = self.w
        self.w.ecg_view.set_filters(DisplayFilters(
            baseline_hz=w.baseline_combo.currentData(),
            lowpass_hz=40.0 if w.lowpass_check.isChecked() else None,
            notch_hz=w.notch_combo.currentData()))

    def set_layout(self, name: str) -> None:
        if name == "median":  # main_window.MEDIAN_LAYOUT: the median beats, not an ECG layout
            self.w.view_stack.setCurrentWidget(self.w.median_view)
            self._sync_ui_from_view()
            return
        self.w.view_stack.setCurrentWidget(self.w.ecg_view)
        self.w.ecg_view.set_layout(name)

    def toggle_calipers(self, on: bool) -> None:
        for calipers in (self.calipers, self.w.median_view.calipers):
            if on:
                calipers.show()
            else:
                calipers.hide()
        if not on:
            self.w.caliper_label.setText("")

    # ------------------------------------------------------------ models
    def load_models(self, early: Future | None = None) -> None:
        """Load the model bundle in a worker; the AI panel says what happens. `early`:
        the load of `self.models_dir`'s bundle already under way (app.main starts it
        before building the window; onnxruntime releases the GIL meanwhile): its result
        (or error) is taken instead."""
        self._models_loading = True
        self.w.ai_panel.set_busy(True, "Loading models…")
        fn, args = (early.result, ()) if early is not None else (_load_predictor, (self.models_dir,))
        self._start(fn, *args, on_done=self._models_loaded, on_failed=self._models_failed,
                    name="load models")

    def _models_loaded(self, predictor: Any, seconds: float) -> None:
        log.info("models loaded in %.2f s", seconds)
        self._models_loading = False
        self.predictor, self.models_error = predictor, None
        panel = self.w.ai_panel
        panel.set_busy(False)
        panel.set_message("")
        panel.set_demo(bool(predictor.demo))
        d = predictor.describe()
        panel.set_provenance(f"Bundle {d.get('bundle_id')} · trained on {d.get('data')} data")
        self.models_ready.emit(True)
        if self.record is not None:
            self._predict_ecg()
        if self.cxr is not None:
            self._predict_cxr()

    def _models_failed(self, exc: BaseException) -> None:
        self._models_loading = False
        self.predictor, self.models_error = None, error_text(exc)
        panel = self.w.ai_panel
        panel.set_busy(False)
        panel.set_demo(False)
        panel.set_message("AI findings unavailable: the model bundle could not be used.\n"
                          f"{self.models_error}\nThe ECG viewer works without it.")
        self.models_ready.emit(False)
        if self.record is not None:
            self.ready.emit()

    # ------------------------------------------------------------ opening
    def ask_open_ecg(self) -> None:
        self._ask_open("ecg", "Open ECG", ECG_FILE_FILTER)

    def ask_open_cxr(self) -> None:
        self._ask_open("cxr", "Open chest X-ray", "Chest X-ray (*.dcm *.png *.jpg *.jpeg)")

    def _ask_open(self, kind: str, title: str, name_filter: str) -> None:
        """Ask for a file of `kind` ("ecg" or "cxr") in the folder of the last one; read it."""
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self.w, title, self._last_dir(kind), f"{name_filter};;All files (*)")
        if path:
            self._open(kind, path)

    def _last_dir(self, kind: str) -> str:
        lst = self.settings.recent_ecg if kind == "ecg" else self.settings.recent_cxr
        return str(Path(lst[0]).parent) if lst else ""

    def open_ecg(self, path: str | Path) -> None:
        """Read an ECG in a worker; on success show it and score it; on failure show the
        error and keep what was open."""
        self._open("ecg", str(path))

    def open_cxr(self, path: str | Path) -> None:
        """Read a chest X-ray in a worker, show it beside the ECG and run the teacher."""
        self._open("cxr", str(path))

    def open_paths(self, paths: list[str]) -> None:
        """Open dropped files: each as an ECG if it is one, else as a chest X-ray (a WFDB
        record dropped as its header and signal files once)."""
        for p in distinct_records([str(p) for p in paths]):
            self._open("any", p)

    def _open(self, kind: str, path: str) -> None:
        """Read `path` in a worker with the reader of `kind` ("ecg", "cxr" or "any")."""
        self.w.statusBar().showMessage(f"Reading {Path(path).name}…")
        self._read_seq += 1
        seq = self._read_seq
        if kind in self._read_latest:
            self._read_latest[kind] = seq
        self._start(_READERS[kind], path,
                    on_done=lambda res, s: self._read_done(kind, path, res, s, seq),
                    on_failed=lambda exc: self._read_failed(path, exc), name=f"read {path}")

    def _read_done(self, kind: str, path: str, result: Any, seconds: float, seq: int = 0) -> None:
        if kind == "any":
            kind, result = result
        if seq < self._read_latest[kind]:
            log.info("read of %s finished after a newer %s was opened; dropped", path, kind)
            return
        self._read_latest[kind] = seq
        self.w.statusBar().showMessage(f"Read {Path(path).name} in {seconds:.2f} s", 5000)
        self.settings.add_recent(kind, path)
        self._rebuild_recent_menu()
        if kind == "ecg" and not isinstance(result, EcgRecord):
            from app.long_record import show_long_record
            show_long_record(self, result)  # a long record (app.long_record.LongRecord)
        elif kind == "ecg":
            self.show_record(result)
        else:
            self.show_cxr(result)

    def _read_failed(self, path: str, exc: BaseException) -> None:
        self.w.statusBar().showMessage(f"Could not open {Path(path).name}", 5000)
        self.show_error(f"Could not open {Path(path).name}", error_text(exc))

    def show_record(self, record: EcgRecord) -> None:
        """Display `record` and score it (the predictor permitting); an open chest X-ray
        of another patient is closed unless the user keeps it (app.pairing_guard)."""
        if self.cxr is not None and replaces_other(record.meta, self.cxr.meta,
                                                   self.w.act_keep_cxr.isChecked()):
            self.clear_cxr("the new ECG is of another patient")
        self.record = record
        self.ecg_predictions = {}
        self.w.act_calipers.setChecked(False)  # a reading of the previous record is void
        self.w.caliper_label.setText("")
        self.w.header.set_record(record, measuring=True)
        self.w.ecg_view.set_record(record)
        self.w.median_view.set_record(record, measuring=True)
        self.w.ai_panel.set_ecg_predictions({})
        name = Path(record.source.path).name if record.source else "ECG"
        self.w.setWindowTitle(f"{name} — {TITLE}")
        self._sync_ui_from_view()
        self._pairing_changed()
        self.ecg_shown.emit(record)
        self._measure_ecg(record)  # started once the findings are final (`ready`)
        self._predict_ecg()

    def show_cxr(self, image: CxrImage) -> None:
        """Display `image` with the gate's decision and run the teacher; an open ECG of
        another patient is closed unless the user keeps it."""
        from engine.cxr_gate import gate_cxr
        if self.record is not None and replaces_other(image.meta, self.record.meta,
                                                      self.w.act_keep_ecg.isChecked()):
            self.clear_ecg("the new chest X-ray is of another patient")
        self.cxr = image
        self.cxr_predictions = {}
        self.cxr_gate = gate_cxr(image)  # tags and geometry; the embedding check follows
        self.w.cxr_view.set_image(image)
        self.w.cxr_view.set_gate(gate_text(self.cxr_gate), self.cxr_gate.accepted)
        self.w.ai_panel.set_cxr_predictions({})
        self._pairing_changed()
        self.cxr_shown.emit(image)
        self._predict_cxr()

    def clear_cxr(self, why: str = "") -> None:
        """Close the chest X-ray (its teacher results still to come are ignored)."""
        self._gen["cxr"] += 1
        self._set_busy("cxr", False)
        self.cxr, self.cxr_predictions, self.cxr_gate = None, {}, None
        self.w.cxr_view.set_image(None)
        self.w.ai_panel.set_cxr_predictions({})
        self._pairing_changed()
        if why:
            self.w.statusBar().showMessage(f"Chest X-ray closed: {why}", 10000)

    def clear_ecg(self, why: str = "") -> None:
        """Close the ECG (its AI results still to come are ignored)."""
        self._gen["ecg"] += 1
        self._set_busy("ecg", False)
        self.record, self.ecg_predictions = None, {}
        self._measure_ecg(None)
        self.w.act_calipers.setChecked(False)
        self.w.header.set_record(None)
        self.w.ecg_view.set_record(None)
        self.w.ai_panel.set_ecg_predictions({})
        self.w.setWindowTitle(TITLE)
        self._pairing_changed()
        if why:
            self.w.statusBar().showMessage(f"ECG closed: {why}", 10000)

    def _pairing_changed(self) -> None:
        """Compare the patients of both panes (banner) and show or withhold the teacher."""
        self.guard.update(self.record, self.cxr)
        self._show_teacher()

    def _show_teacher(self) -> None:
        note = teacher_note(self.guard.pairing, self.cxr_gate) if self.cxr is not None else ""
        self.w.ai_panel.set_cxr_predictions({} if note else self.cxr_predictions)
        self.w.ai_panel.set_teacher_note(note)

    # ------------------------------------------------------------ inference
    def _predict_ecg(self) -> None:
        if self.predictor is None:
            if not self._models_loading and self.record is not None:
                self.ready.emit()
            return
        self._predict("ecg", self.predictor.predict_ecg, self.record, self._ecg_predicted)

    def _predict_cxr(self) -> None:
        if self.predictor is None or self.cxr is None:
            return
        if not self.predictor.cxr_pathologies:
            self.w.ai_panel.set_message("This model bundle has no chest X-ray teacher.")
            return
        self._predict("cxr", self.predictor.assess_cxr, self.cxr, self._cxr_predicted)

    def _predict(self, kind: str, predict: Callable, data: EcgRecord | CxrImage,
                 on_done: Callable[[dict], None]) -> None:
        """Score `data` with `predict` in a worker; `on_done(predictions)` unless a newer
        `kind` ("ecg" or "cxr") was opened meanwhile."""
        self._gen[kind] += 1
        gen = self._gen[kind]
        self._set_busy(kind, True)

        def done(preds: dict, seconds: float) -> None:
            if self._current(kind, gen):
                log.info("%s inference %.3f s", kind.upper(), seconds)
                on_done(preds)

        self._start(predict, data, on_done=done,
                    on_failed=lambda exc: self._predict_failed(kind, gen, exc),
                    name=f"predict {kind}")

    def _current(self, kind: str, gen: int) -> bool:
        """Whether a result of prediction `gen` of `kind` is still wanted; if so, that
        prediction is no longer pending."""
        if gen != self._gen[kind]:
            return False  # a newer file was opened meanwhile
        self._set_busy(kind, False)
        return True

    def _set_busy(self, kind: str, busy: bool) -> None:
        self._pending[kind] = busy
        self.w.ai_panel.set_busy(any(self._pending.values()))

    def _ecg_predicted(self, preds: dict) -> None:
        self.ecg_predictions = preds
        self.w.ai_panel.set_message("")
        self.w.ai_panel.set_ecg_predictions(preds)
        self.ecg_predicted.emit(preds)
        self.ready.emit()

    def _cxr_predicted(self, assessment: Any) -> None:
        """`assessment`: engine.cxr_gate.CxrAssessment (the gate's final decision and the
        teacher's predictions, none when refused before the teacher ran)."""
        self.cxr_gate, preds = assessment.gate, assessment.predictions
        self.cxr_predictions = preds
        self.w.cxr_view.set_gate(gate_text(self.cxr_gate), self.cxr_gate.accepted)
        self._show_teacher()
        self.cxr_predicted.emit(preds)

    def _predict_failed(self, kind: str, gen: int, exc: BaseException) -> None:
        if not self._current(kind, gen):
            return
        what = "ECG" if kind == "ecg" else "chest X-ray"
        self.w.ai_panel.set_message(f"No AI findings for this {what}: {error_text(exc)}")
        if kind == "ecg":
            self.ready.emit()

    # ------------------------------------------------------------ measurements
    def _measure_ecg(self, record: EcgRecord | None) -> None:
        """Measure `record` (the ECG just shown) in a worker of its own, started when its
        AI findings are final (`ready`): on two cores, measuring (and importing
        `scipy.signal` for it) beside the drawing and the models would slow both. Until
        then the header and the median view say "measuring…". Any earlier request's
        result is dropped from here on. None: nothing to measure (closed, long record)."""
        self._gen["measure"] += 1
        self.measurements, self.measuring = None, record is not None
        self._measure_next = (self._gen["measure"], record) if record is not None else None

    def _start_measuring(self) -> None:
        """On `ready`: start the waiting measurement `MEASURE_DELAY_MS` later, once the
        findings are painted (a zero timer would fire inside the painting's own
        `processEvents`, and the import would compete with it for the GIL)."""
        if self._measure_next is not None:
            QtCore.QTimer.singleShot(MEASURE_DELAY_MS, self._run_measurement)

    def _run_measurement(self) -> None:
        if not alive(self):  # the window closed meanwhile
            return
        nxt, self._measure_next = self._measure_next, None
        if nxt is None or nxt[0] != self._gen["measure"]:
            return
        gen, record = nxt
        self._start(_measure, record, on_done=lambda m, s: self._measured(gen, record, m, s),
                    on_failed=lambda exc: self._measured(gen, record, None, 0.0, exc),
                    name="measure ecg")

    def _measured(self, gen: int, record: EcgRecord, m: Any, seconds: float,
                  exc: BaseException | None = None) -> None:
        """A measurement worker finished: shown if `record` is still the open ECG and no
        later request was made (else dropped); `m` None with `exc` when it failed."""
        if not alive(self):  # the window closed while measuring: nothing to show it in
            return
        if gen != self._gen["measure"] or record is not self.record:
            log.info("measurements of an ECG no longer open (request %d) dropped", gen)
            return
        if exc is not None:  # measurement is an add-on: the ECG stays open without it
            log.error("measurement failed", exc_info=exc)
        else:
            log.info("ECG measurements %.3f s", seconds)
        self._show_measurements(m)

    def _show_measurements(self, m: Any) -> None:
        self._measure_next = None
        self.measurements, self.measuring = m, False
        shown = self.measured_record()
        self.w.header.set_record(shown)
        self.w.median_view.set_record(shown)
        self.measured.emit(m)

    def measurements_now(self) -> Any:
        """The open ECG's measurements for a consumer that needs them now (the PDF):
        if they are still to come, computed here (the worker's later result, the same,
        is then dropped) and shown. None without them (no ECG, a long record, failed)."""
        if self.measuring and self.record is not None:
            self._gen["measure"] += 1
            try:
                m = _measure(self.record)
            except Exception:
                log.exception("measurement failed")
                m = None
            self._show_measurements(m)
        return self.measurements

    def measured_record(self) -> EcgRecord | None:
        """The open ECG with `meta["computed_measurements"]` once measured (a copy;
        `self.record` itself stays the object the views and workers hold)."""
        if self.record is None or self.measurements is None:
            return self.record
        return _with_measurements(self.record, self.measurements)

    # ------------------------------------------------------------ demo cases
    def _rebuild_demo_menu(self) -> None:
        """File > Open demo case: one entry per installed case (disabled if none)."""
        from app.demo import DemoCaseError, list_cases
        menu = self.w.demo_menu
        menu.clear()
        try:
            cases = list_cases(self.demo_dir)
        except DemoCaseError as exc:
            act = menu.addAction("No demo case installed")
            act.setEnabled(False)
            act.setToolTip(str(exc))
            return
        for case in cases:
            act = menu.addAction(case.title)
            if case.number <= 9:
                act.setShortcut(f"Ctrl+Alt+{case.number}")
            act.triggered.connect(lambda _=False, n=case.number: self.open_demo(n))

    def open_demo(self, number: int = 1) -> bool:
        """Open demo case `number` (its ECG and paired chest X-ray). A missing case
        is shown as an error (nothing else is opened in its place); returns success."""
        from app.demo import DemoCaseError, demo_case
        try:
            case = demo_case(number, self.demo_dir)
        except DemoCaseError as exc:
            self.show_error("No demo case", str(exc))
            return False
        self.open_ecg(case.ecg)
        if case.cxr is not None:
            self.open_cxr(case.cxr)
        return True

    # ------------------------------------------------------------ misc
    def shutdown(self, timeout_ms: int = 15000) -> bool:
        """Before quitting: ignore results still to come and wait for the running
        workers (so none reports to a deleted object). True if all finished."""
        for kind in self._gen:
            self._gen[kind] += 1
        return workers.wait_for_workers(self.pool, timeout_ms)

    def _start(self, fn: Callable, *args: Any, on_done: Callable, on_failed: Callable,
               name: str) -> None:
        holder: list[workers.Worker] = []

        def done(res: Any, s: float) -> None:
            self._workers.discard(holder[0])
            on_done(res, s)

        def failed(exc: BaseException) -> None:
            self._workers.discard(holder[0])
            on_failed(exc)

        worker = workers.start(fn, *args, on_done=done, on_failed=failed, pool=self.pool, name=name)
        holder.append(worker)
        self._workers.add(worker)

    def show_error(self, title: str, message: str) -> None:
        self.last_error = (title, message)
        self.present_error(title, message)
        self.error_shown.emit(title, message)

    def _message_box(self, title: str, message: str) -> None:
        """Non-blocking, window-modal error dialog (the GUI keeps running)."""
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Warning, title, message,
                                    QtWidgets.QMessageBox.StandardButton.Ok, self.w)
        box.setInformativeText("What was open stays open.")
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        self.error_box = box
        box.open()

    def _rebuild_recent_menu(self) -> None:
        menu = self.w.recent_menu
        menu.clear()
        for kind, lst in (("ecg", self.settings.recent_ecg), ("cxr", self.settings.recent_cxr)):
            for p in lst:
                act = menu.addAction(f"{'ECG' if kind == 'ecg' else 'CXR'}: {p}")
                act.triggered.connect(lambda _=False, k=kind, q=p: self._open(k, q))
        menu.setEnabled(bool(menu.actions()))

    def show_model_card(self) -> None:
        if self.predictor is None:
            self.show_error("No model card", self.models_error or "The models are still loading.")
            return
        show_model_card(self.w, self.predictor.bundle.directory / "MODEL_CARD.md")

    def ask_export(self) -> None:
        if self.record is None:
            self.show_error("Nothing to export", "Open an ECG first (Ctrl+O).")
            return
        if self.save_dialog is not None:
            path = self.save_dialog()
        else:
            path, _ = QtWidgets.QFileDialog.getSaveFileName(self.w, "Export review to PDF",
                                                            "review.pdf", "PDF (*.pdf)")
        if path:
            self.export_pdf(path)

    def export_pdf(self, path: str | Path, signed_read: list[str] | None = None) -> Path:
        """Write the review (ECG at 25 mm/s, 10 mm/mV, findings, CXR, disclaimer) to PDF;
        `signed_read`: lines of a signed overread, printed on a page of their own."""
        from app.export_pdf import ReviewContent, export_review
        v = self.w.ecg_view
        self.measurements_now()  # waited for: the PDF prints them
        withheld = teacher_note(self.guard.pairing, self.cxr_gate) if self.cxr is not None else ""
        other_patient = self.guard.different  # that X-ray is left out of the page
        content = ReviewContent(record=self.measured_record(), ecg_predictions=self.ecg_predictions,
                                cxr=None if other_patient else self.cxr,
                                cxr_predictions={} if withheld else self.cxr_predictions,
                                pairing=self.guard.pairing, cxr_gate=self.cxr_gate,
                                teacher_note=withheld, cxr_inverted=self.w.cxr_view.inverted,
                                filters=v.filters, rhythm_lead=v.rhythm_lead, cabrera=v.cabrera,
                                demo=(self.predictor.demo if self.predictor is not None else True),
                                bundle=(self.predictor.describe() if self.predictor else None),
                                page_start_s=v.page_start_s, saliency=self.saliency.export_maps(),
                                signed_read=list(signed_read or []))
        out = export_review(path, content)
        self.w.statusBar().showMessage(f"Exported {out}", 5000)
        return out

    def save_settings(self) -> Path:
        """Remember window geometry/state and display settings."""
        self.settings.geometry = bytes(self.w.saveGeometry().toBase64()).decode()
        self.settings.window_state = bytes(self.w.saveState().toBase64()).decode()
        return self.settings.save(self.settings_dir)
