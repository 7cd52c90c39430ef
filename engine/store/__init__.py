"""The local study store: an SQLite database of indexed ECGs, signed reads and the audit log.

Plain functions over a `Store` (one SQLite connection; one per thread) returning
frozen dataclasses. No Qt, no torch.

Opening:    `Store(path=None, *, timeout_s=10, readonly=False)` (path None: `store_path()`,
            i.e. $CROMOTEX_REVIEW_STORE, else settings.json `store_path`, else the user data dir).
Scanning:   `scan(paths, store, *, predictor=None, workers=1, chunk=16, cancel=None,
            on_record=None) -> Iterator[ScanProgress]`; `run_scan(...) -> ScanSummary`.
Worklist:   `worklist(store, WorklistFilter(...), sort="acquired", descending=True, limit, offset)
            -> list[EcgEntry]`; `count_worklist`; `get_ecg`; `find_ecg`.
Comparison: `patient_ecgs(store, patient_key)`, `ai_trend(store, patient_key) -> list[TrendPoint]`,
            `measurement_differences(a, b) -> list[MeasurementDiff]`.
Upkeep:     `forget_missing(store, under=None) -> list[str]` (rows of deleted / moved files).
Overread:   `sign_read`, `amend_read`, `latest_read`, `read_history`, `device_statements`,
            `ReadStatement`, `SignedRead`, COMMON_STATEMENTS.
Audit:      `log_event(store, action, user, ...)`, `verify(store) -> VerifyResult`,
            `export(store, out, "json"|"csv")`, `iter_entries`, `entries_for` (engine.store.audit).
Errors:     engine.errors.StoreError and its subclasses StoreCorruptError, StoreLockedError,
            StoreReadOnlyError, StoreFullError, OverreadError, ReadConflictError; AuditError.
"""

from engine.store.audit import AuditEntry, VerifyResult, entries_for, iter_entries, log_event, verify
from engine.store.db import Store, open_store
from engine.store.fields import acquired_iso, patient_key
from engine.store.index import (SORT_KEYS, EcgEntry, MeasurementDiff, TrendPoint, WorklistFilter,
                                ai_trend, count_worklist, find_ecg, forget_missing, get_ecg, measurement_differences,
                                patient_ecgs, worklist)
from engine.store.location import store_path
from engine.store.reads import (AGREEMENT_VALUES, COMMON_STATEMENTS, STATEMENT_STATUSES, ReadStatement,
                                SignedRead, amend_read, device_statements, latest_read, read_history,
                                sign_read)
from engine.store.scan import ScanProgress, ScanSummary, run_scan, scan

__all__ = [
    "AGREEMENT_VALUES", "AuditEntry", "COMMON_STATEMENTS", "EcgEntry", "MeasurementDiff",
    "ReadStatement", "SORT_KEYS", "STATEMENT_STATUSES", "ScanProgress", "ScanSummary", "SignedRead",
    "Store", "TrendPoint", "VerifyResult", "WorklistFilter", "acquired_iso", "ai_trend", "amend_read",
    "count_worklist", "device_statements", "forget_missing", "entries_for", "find_ecg", "get_ecg", "iter_entries",
    "latest_read", "log_event", "measurement_differences", "open_store", "patient_ecgs",
    "patient_key", "read_history", "run_scan", "scan", "sign_read", "store_path", "verify", "worklist"]
