"""Typed errors for every failure a user can cause.

Every message says what is wrong and what to do about it, in words a
clinician or a hospital's IT can act on. Nothing else may escape a reader,
the preprocessing, the bundle loader or inference.
"""

from __future__ import annotations


class CromotexError(Exception):
    """Base class of every error the engine raises on purpose."""


class ReadError(CromotexError):
    """A file could not be read as the requested kind of data."""


class UnsupportedFormatError(ReadError):
    """The file's content is not a format the reader knows (or is the wrong kind,
    e.g. a chest X-ray image given where an ECG was asked for)."""


class CorruptFileError(ReadError):
    """The file claims a known format but its content is truncated, inconsistent
    or fails a checksum."""


class MissingFileError(ReadError):
    """The file, or a file it refers to (e.g. a WFDB signal file), does not exist."""


class LeadError(ReadError):
    """The record does not carry the 12-lead information the product needs."""


class PreprocessError(CromotexError):
    """A record could not be turned into model input."""


class BundleError(CromotexError):
    """A model bundle is missing, incomplete, tampered with or incompatible."""


class CalibrationError(BundleError):
    """A model bundle states a probability calibration (temperature scaling) that is not usable:
    a temperature out of range, or a calibrated threshold or band that does not fit it."""


class InferenceError(CromotexError):
    """Running a model failed."""


class OutputExistsError(CromotexError):
    """An output directory already holds files and overwriting was not asked for (--force)."""


class StoreError(CromotexError):
    """The local study store (SQLite database) could not be opened, read or written."""


class StoreCorruptError(StoreError):
    """The study store's database file is damaged or is not a CroMoTEX Review store."""


class StoreLockedError(StoreError):
    """Another program (or another CroMoTEX Review window) holds the store's write lock."""


class StoreReadOnlyError(StoreError):
    """The store's folder or database file cannot be written (read-only disk or permissions)."""


class StoreFullError(StoreError):
    """The disk (or the store's size limit) is full; the last change was not saved."""


class OverreadError(StoreError):
    """An overread cannot be saved as given (no reader name, an unknown agreement value, ...)."""


class ReadConflictError(OverreadError):
    """A signed read would be overwritten: amend the latest signed read instead."""


class AuditError(CromotexError):
    """The audit log's hash chain is broken (an entry was changed, removed or inserted)."""


class DeidError(CromotexError):
    """A file could not be de-identified (unsupported format, or the output is not allowed)."""
class ArchiveError(CromotexError):
    """`cromotex archive` cannot run: an unusable output dataset, cluster or worker set-up."""
