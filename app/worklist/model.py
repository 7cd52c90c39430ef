"""`WorklistModel`: a QAbstractTableModel over the study store's worklist rows.

Rows are fetched from SQLite a page at a time (`PAGE` rows, `canFetchMore` /
`fetchMore`), so a store of 10,000+ ECGs shows its first rows at once and the
view only ever holds the pages scrolled to. Sorting and filtering are SQL
(`engine.store.worklist` with a `WorklistFilter` and a `SORT_KEYS` key): the model
never sorts in Python.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from app.qt import QtCore, QtGui
from engine.store import (EcgEntry, Store, WorklistFilter, count_worklist, worklist)

log = logging.getLogger(__name__)

#: Rows read from the store per fetch.
PAGE = 256

_Qt = QtCore.Qt
_ROLE_ENTRY = int(_Qt.ItemDataRole.UserRole) + 1  # the row's EcgEntry
ENTRY_ROLE = _ROLE_ENTRY
_DISPLAY = int(_Qt.ItemDataRole.DisplayRole)
_FOREGROUND = int(_Qt.ItemDataRole.ForegroundRole)
_FONT = int(_Qt.ItemDataRole.FontRole)
_TOOLTIP = int(_Qt.ItemDataRole.ToolTipRole)
_ROLES = frozenset((_ROLE_ENTRY, _FOREGROUND, _FONT, _TOOLTIP))


@dataclass(frozen=True)
class Column:
    """One worklist column: header, text of an entry, store sort key (None: not sortable)."""

    key: str
    title: str
    text: Callable[[EcgEntry], str]
    sort: str | None = None


def _measure(e: EcgEntry, key: str) -> float | None:
    """The computed value of `key`, else the device's (as `engine.store.measurement_differences`)."""
    for values in (e.measurements, e.device_measurements):
        v = values.get(key) if isinstance(values, dict) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def _num(key: str) -> Callable[[EcgEntry], str]:
    def text(e: EcgEntry) -> str:
        v = _measure(e, key)
        return "" if v is None else f"{v:.0f}"
    return text


def read_status(e: EcgEntry) -> str:
    """"error", "unread" or "read vN"."""
    if e.error is not None:
        return "error"
    return "unread" if e.unread else f"read v{e.read_version}"


def _device(e: EcgEntry) -> str:
    d = e.device or {}
    parts = [str(d.get(k)) for k in ("manufacturer", "model") if d.get(k)]
    return " ".join(parts)


def _statements(e: EcgEntry) -> str:
    return "; ".join(str(s.get("text") or s.get("code") or "") for s in e.statements or [])


def _flags(e: EcgEntry) -> str:
    return ", ".join(e.flags)


def _patient(e: EcgEntry) -> str:
    if e.error is not None and not e.patient_name:
        return Path(e.path).name
    return e.patient_name or ""


BASE_COLUMNS: tuple[Column, ...] = (
    Column("status", "Read", read_status, "read"),
    Column("patient", "Patient", _patient, "patient"),
    Column("patient_id", "ID", lambda e: e.patient_id or "", "patient_id"),
    Column("acquired", "Acquired", lambda e: (e.acquired or "").replace("T", " "), "acquired"),
    Column("device", "Device", _device),
    Column("format", "Format", lambda e: e.format or "", "format"),
    Column("statements", "Device statements", _statements),
    Column("hr_bpm", "HR", _num("hr_bpm")),
    Column("pr_ms", "PR", _num("pr_ms")),
    Column("qrs_ms", "QRS", _num("qrs_ms")),
    Column("qtc_ms", "QTc", _num("qtc_ms")),
    Column("qrs_axis_deg", "Axis", _num("qrs_axis_deg")),
)
TAIL_COLUMNS: tuple[Column, ...] = (
    Column("flags", "AI flags", _flags, "flagged"),
    Column("error", "Error", lambda e: e.error or ""),
    Column("path", "File", lambda e: e.path, "path"),
)


#: bundle id -> pathology -> (low, high) borderline band of the threshold (engine.calls).
Bands = dict[str, dict[str, tuple[float, float]]]


def entry_call(e: EcgEntry, pathology: str, bands: Bands | None = None) -> str | None:
    """The call as the AI panel makes it (engine.calls): "not_assessable" (flagged),
    "borderline" (inside the band of the bundle that scored it, when that bundle's bands
    are known), "positive" or "negative"; None when not scored."""
    p = (e.probabilities or {}).get(pathology)
    if p is None:
        return None
    if e.flagged:
        return "not_assessable"
    band = ((bands or {}).get(e.bundle_id or "") or {}).get(pathology)
    if band is not None and band[0] <= p <= band[1]:
        return "borderline"
    return "positive" if (e.positive or {}).get(pathology) else "negative"


_CALL_SUFFIX = {"not_assessable": " n/a", "borderline": " borderline", "positive": " POS", "negative": ""}


def ai_text(e: EcgEntry, pathology: str, bands: Bands | None = None) -> str:
    """"0.82 POS", "0.21 borderline", "0.10", "0.82 n/a" (flagged: not assessable) or ""
    (not scored)."""
    call = entry_call(e, pathology, bands)
    if call is None:
        return ""
    return f"{e.probabilities[pathology]:.2f}{_CALL_SUFFIX[call]}"


_RED = _GREY = _ORANGE = _AMBER = None  # brushes, made with the first model (needs a QGuiApplication)


class WorklistModel(QtCore.QAbstractTableModel):
    """The store's worklist, a page at a time, with the AI columns of `pathologies`.

    Args:
        pathologies: the ECG pathologies of the model bundle (one column each).
    """

    def __init__(self, pathologies: tuple[str, ...] = (), parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        global _RED, _GREY, _ORANGE, _AMBER
        if _RED is None:
            _RED, _GREY, _ORANGE, _AMBER = (QtGui.QBrush(QtGui.QColor(c))
                                            for c in ("#b00020", "#777777", "#b35900", "#8a6d00"))
        self._bold = QtGui.QFont()
        self._bold.setBold(True)
        self._cache: dict[int, tuple[str, ...]] = {}
        self.bands: Bands = {}
        self.store: Store | None = None
        self.filter = WorklistFilter()
        self.sort_key = "acquired"
        self.descending = True
        self._rows: list[EcgEntry] = []
        self._total = 0
        self.set_pathologies(pathologies)

    # ------------------------------------------------------------ configuration
    def set_pathologies(self, pathologies: tuple[str, ...] | list[str]) -> None:
        self.beginResetModel()
        self.pathologies = tuple(pathologies)
        ai = tuple(Column(f"ai:{p}", f"AI {p}", (lambda e, p=p: ai_text(e, p, self.bands)), "ai_positive")
                   for p in self.pathologies)
        self.columns: tuple[Column, ...] = BASE_COLUMNS + ai + TAIL_COLUMNS
        self._cache = {}
        self.endResetModel()

    def set_bands(self, bands: Bands) -> None:
        """The borderline bands of the bundles known (calls as the AI panel makes them)."""
        self.bands = dict(bands)
        self.beginResetModel()
        self._cache = {}
        self.endResetModel()

    def column_index(self, key: str) -> int:
        return next(i for i, c in enumerate(self.columns) if c.key == key)

    def set_store(self, store: Store | None) -> None:
        self.store = store
        self.refresh(keep_loaded=False)

    def set_filter(self, filt: WorklistFilter) -> None:
        self.filter = filt
        self.refresh(keep_loaded=False)

    # ------------------------------------------------------------ loading
    def refresh(self, keep_loaded: bool = True) -> None:
        """Re-read the count and the first pages (as many rows as were loaded when
        `keep_loaded`, e.g. while a scan adds rows)."""
        n = max(PAGE, len(self._rows)) if keep_loaded else PAGE
        self.beginResetModel()
        self._cache = {}
        if self.store is None:
            self._rows, self._total = [], 0
        else:
            self._total = count_worklist(self.store, self.filter)
            self._rows = worklist(self.store, self.filter, sort=self.sort_key,
                                  descending=self.descending, limit=n, offset=0)
        self.endResetModel()

    def canFetchMore(self, parent: QtCore.QModelIndex = QtCore.QModelIndex()) -> bool:  # noqa: N802
        return not parent.isValid() and len(self._rows) < self._total

    def fetchMore(self, parent: QtCore.QModelIndex = QtCore.QModelIndex()) -> None:  # noqa: N802
        if parent.isValid() or self.store is None:
            return
        more = worklist(self.store, self.filter, sort=self.sort_key, descending=self.descending,
                        limit=PAGE, offset=len(self._rows))
        if not more:
            self._total = len(self._rows)
            return
        first = len(self._rows)
        self.beginInsertRows(QtCore.QModelIndex(), first, first + len(more) - 1)
        self._rows.extend(more)
        self.endInsertRows()

    @property
    def total(self) -> int:
        """Rows matching the filter (loaded or not)."""
        return self._total

    # ------------------------------------------------------------ Qt model
    def rowCount(self, parent: QtCore.QModelIndex = QtCore.QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QtCore.QModelIndex = QtCore.QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Any, role: int = _Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == _Qt.Orientation.Horizontal and role == _Qt.ItemDataRole.DisplayRole:
            return self.columns[section].title
        if orientation == _Qt.Orientation.Horizontal and role == _Qt.ItemDataRole.ToolTipRole:
            c = self.columns[section]
            return "sortable" if c.sort else "not sortable"
        return None

    def data(self, index: QtCore.QModelIndex, role: int = _DISPLAY) -> Any:
        # called ~10 times per visible cell and paint: role first, texts cached per row
        row = index.row()
        if role == _DISPLAY:
            return self._texts(row)[index.column()] if 0 <= row < len(self._rows) else None
        if role not in _ROLES or not 0 <= row < len(self._rows):
            return None
        e = self._rows[row]
        if role == _ROLE_ENTRY:
            return e
        key = self.columns[index.column()].key
        if role == _FOREGROUND:
            if e.error is not None:
                return _RED
            if key.startswith("ai:"):
                if e.flagged:
                    return _GREY
                call = entry_call(e, key[3:], self.bands)
                if call == "positive":
                    return _ORANGE
                if call == "borderline":
                    return _AMBER
            return None
        if role == _FONT:
            return self._bold if e.unread and e.error is None else None
        if role == _TOOLTIP:
            if e.error is not None:
                return e.error
            if key == "flags" and e.flags:
                return "AI result not assessable: " + ", ".join(e.flags)
            return self._texts(row)[index.column()] or None
        return None

    def _texts(self, row: int) -> tuple[str, ...]:
        texts = self._cache.get(row)
        if texts is None:
            e = self._rows[row]
            texts = self._cache[row] = tuple(c.text(e) for c in self.columns)
        return texts

    def sort(self, column: int, order: Any = _Qt.SortOrder.AscendingOrder) -> None:
        """Sort by the column's store key (SQL); a column without one keeps the order."""
        key = self.columns[column].sort
        if key is None:
            return
        self.sort_key = key
        self.descending = order == _Qt.SortOrder.DescendingOrder
        self.refresh(keep_loaded=False)

    # ------------------------------------------------------------ lookups
    def entry(self, row: int) -> EcgEntry | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, ecg_id: int) -> int | None:
        """The loaded row of `ecg_id`, or None."""
        return next((i for i, e in enumerate(self._rows) if e.id == ecg_id), None)

    def next_unread(self, row: int, step: int) -> int | None:
        """The next (`step` +1) or previous (-1) unread, readable row after `row`; loads
        further pages going forward. None when there is none."""
        i = row + step
        while True:
            if i < 0:
                return None
            if i >= len(self._rows):
                if step < 0 or not self.canFetchMore():
                    return None
                self.fetchMore()
                continue
            e = self._rows[i]
            if e.unread and e.error is None:
                return i
            i += step
