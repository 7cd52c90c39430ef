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


class InferenceError(CromotexError):
    """Running a model failed."""


class OutputExistsError(CromotexError):
    """An output directory already holds files and overwriting was not asked for (--force)."""


class ArchiveError(CromotexError):
    """`cromotex archive` cannot run: an unusable output dataset, cluster or worker set-up."""
