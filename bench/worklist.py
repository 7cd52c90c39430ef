"""Benchmark of the app's worklist on 10,000 small records (issue 20: first rows visible
within 2 s, scrolling smooth).

    QT_QPA_PLATFORM=offscreen python bench/worklist.py [--n 10000] [--keep DIR] [--json OUT]

Records: `bench/index_store.make_records` (90 % PTB-XL WFDB copies, 10 % GE MUSE XML copies
of n/100 patients). Then, in a real MainWindow with the review Controller (no models: the
indexing pass without AI, which is what the worklist lists first) and the WorklistController:

1. scan the folder into a fresh store from the GUI (`WorklistController.scan`, scan process):
   the time from the click until the first rows are in the table model and painted, the
   whole scan's time, and the GUI's responsiveness during the scan (the largest and the
   95th-percentile delay of a 10 ms timer: how long the window could not react);
2. on the full store, a fresh worklist: time until the first page is in the model and painted;
3. scrolling the table to the end a page at a time (each step: scroll bar moved, then the
   event loop run once: rows fetched from SQLite when needed, the viewport painted): median,
   95th percentile and largest step time;
4. a sort (by patient) and a filter (unread + date range) from the full store.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from index_store import make_records, removed_unless_kept, write_figures  # noqa: E402


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--keep", help="build the records in this folder (reused when it exists)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cromotex-worklist-"))
    os.environ["CROMOTEX_REVIEW_CONFIG_DIR"] = str(root / "config")
    from app.qt import QtCore, QtWidgets, quiet_offscreen_noise
    quiet_offscreen_noise()
    from app.controller import Controller
    from app.main_window import MainWindow
    from app.views.worklist_view import WorklistView
    from app.worklist.model import WorklistModel
    from app.worklist_controller import WorklistController
    from engine.store import Store, WorklistFilter

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    result: dict = {"n": args.n}
    with removed_unless_kept(root, args.keep):
        folder = root / "records"
        if not folder.is_dir():
            t = time.perf_counter()
            make_records(root, args.n)
            print(f"made {args.n} records in {time.perf_counter() - t:.1f} s")
        db = root / "store.sqlite3"
        for f in root.glob("store.sqlite3*"):
            f.unlink()
        w = MainWindow(px_per_mm=4.0)
        ctl = Controller(w, models_dir=str(root / "no-models"), error_presenter=lambda t, m: print("ERROR", t, m))
        wl = WorklistController(ctl, db)
        w.resize(1500, 900)
        w.show()
        app.processEvents()

        # 1. scan from the GUI: first rows visible, GUI responsiveness
        gaps: list[float] = []
        last = [time.perf_counter()]

        def tick() -> None:
            now = time.perf_counter()
            gaps.append(now - last[0])
            last[0] = now

        timer = QtCore.QTimer(interval=10)
        timer.timeout.connect(tick)
        done = []
        wl.scan_finished.connect(lambda c, e: done.append((c, e)))
        t0 = time.perf_counter()
        timer.start()
        wl.scan([str(folder)])
        first_rows = None
        while not done:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
            if first_rows is None and wl.model.rowCount() > 0:
                wl.view.table.viewport().repaint()
                first_rows = time.perf_counter() - t0
            time.sleep(0.002)
        scan_s = time.perf_counter() - t0
        timer.stop()
        p = wl._last_progress
        result["scan"] = {"files": p.done, "indexed": p.indexed, "failed": p.failed, "seconds": round(scan_s, 1),
                          "files_per_s": round(p.done / scan_s, 1),
                          "first_rows_visible_s": round(first_rows, 3) if first_rows else None,
                          "gui_delay_max_ms": round(max(gaps) * 1000, 1),
                          "gui_delay_p95_ms": round(pct(gaps, 0.95) * 1000, 1)}
        print("scan from the GUI:", result["scan"])
        wl.shutdown()
        w.close()

        # 2. a fresh worklist on the full store
        store = Store(db)
        model = WorklistModel(("placeholder_a", "placeholder_b", "placeholder_c"))
        view = WorklistView(model)
        view.resize(1500, 800)
        view.show()
        app.processEvents()
        t = time.perf_counter()
        model.set_store(store)
        view.table.viewport().repaint()
        app.processEvents()
        result["open_full_store_first_page_ms"] = round((time.perf_counter() - t) * 1000, 1)
        result["rows_total"] = model.total

        # 3. scroll to the end a page at a time
        bar = view.table.verticalScrollBar()
        steps = []
        while True:
            t = time.perf_counter()
            bar.setValue(bar.value() + bar.pageStep())
            app.processEvents()  # rows fetched when needed, the viewport painted once
            steps.append(time.perf_counter() - t)
            if bar.value() >= bar.maximum() and not model.canFetchMore():
                break
        result["scroll"] = {"steps": len(steps), "rows_loaded": model.rowCount(),
                            "step_median_ms": round(statistics.median(steps) * 1000, 2),
                            "step_p95_ms": round(pct(steps, 0.95) * 1000, 2),
                            "step_max_ms": round(max(steps) * 1000, 2)}
        print("scroll to the end:", result["scroll"])

        # 4. sort and filter
        t = time.perf_counter()
        view.table.sortByColumn(model.column_index("patient"), QtCore.Qt.SortOrder.AscendingOrder)
        view.table.viewport().repaint()
        result["sort_by_patient_ms"] = round((time.perf_counter() - t) * 1000, 1)
        t = time.perf_counter()
        model.set_filter(WorklistFilter(unread=True, date_from="2021-01-01", date_to="2021-12-31"))
        view.table.viewport().repaint()
        result["filter_unread_2021_ms"] = round((time.perf_counter() - t) * 1000, 1)
        result["filter_rows"] = model.total
        print({k: v for k, v in result.items() if k not in ("scan", "scroll")})
        store.close()
        write_figures(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
