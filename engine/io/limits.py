"""Resource limits of the readers, decided before anything is allocated.

Every reader compares what a file *declares* (image dimensions, frames, bits,
sample counts, channels, decompressed size, header lines) with these limits
before it decodes or allocates, and refuses a file above one with
`engine.errors.CorruptFileError` (or `UnsupportedFormatError` where the file is
plausible but too large for this version) whose message names the limit. A small
file that declares gigabytes (a "size bomb") is thus refused in milliseconds and
a few MB of memory, not by the operating system.

The limits are far above any real 12-lead ECG or chest X-ray and far below the
memory of a workstation. Long recordings (Holter) are the windowed reads of the
[scale] issue, not a reason to raise them.

Peak memory of a read near the limits (measured, see docs/results/fuzz.md):
an image at IMAGE_MAX_PIXELS costs about 16 bytes per pixel while being
converted (uint16 -> float64 -> float32), a waveform at WAVEFORM_MAX_TOTAL_SAMPLES
about 16 bytes per sample (int32 digital + float64 physical + float32 mV).
"""

from __future__ import annotations

from engine.errors import CorruptFileError

# --- images (chest X-ray: DICOM, PNG, JPEG) ---------------------------------------------
#: Most pixels of one image (one frame), 100 megapixels. A 43 cm detector at 0.1 mm
#: pitch is about 18.5 megapixels.
IMAGE_MAX_PIXELS = 100_000_000
#: Longest side of an image, pixels.
IMAGE_MAX_SIDE = 32_768
#: Most bytes a decoder may produce for a DICOM image's pixel data (all frames it
#: decodes, at the declared bits allocated and samples per pixel): 1 GiB.
IMAGE_MAX_DECODED_BYTES = 1 << 30

# --- compressed containers ------------------------------------------------------------
#: Most bytes a deflated DICOM data set (transfer syntax 1.2.840.10008.1.2.1.99) may
#: inflate to: 256 MiB (a 12-lead ECG is under 1 MiB, a chest X-ray under 50 MiB).
INFLATED_MAX_BYTES = 256 * 1024 * 1024

# --- waveforms (ECG: WFDB, DICOM) -----------------------------------------------------
#: Most channels (signals) of one record / multiplex group.
WAVEFORM_MAX_CHANNELS = 1024
#: Most multiplex groups of a DICOM waveform.
WAVEFORM_MAX_GROUPS = 64
#: Most samples of one channel: 20 million (5.5 hours at 1 kHz, 22 hours at 250 Hz).
WAVEFORM_MAX_SAMPLES_PER_CHANNEL = 20_000_000
#: Most samples of a record, all channels together: 40 million (12 leads for 55 minutes
#: at 1 kHz); about 640 MB while being converted.
WAVEFORM_MAX_TOTAL_SAMPLES = 40_000_000

# --- text headers (WFDB .hea) ---------------------------------------------------------
#: Largest header file, bytes.
HEADER_MAX_BYTES = 4 * 1024 * 1024
#: Most lines of a header (signal lines and comments together).
HEADER_MAX_LINES = 100_000
#: Longest line of a header, characters.
HEADER_MAX_LINE_CHARS = 16_384
#: Longest field (one blank-separated token of a record or signal line, except the
#: free-text signal description), characters.
HEADER_MAX_FIELD_CHARS = 256


def check_image_size(rows: int, cols: int, where: str) -> None:
    """Refuse an image whose declared `rows` x `cols` is empty or over the limits.

    Raises:
        CorruptFileError: naming the declared size and the limit."""
    if rows <= 0 or cols <= 0:
        raise CorruptFileError(f"The image {where} declares an impossible size ({cols} x {rows} "
                               f"pixels). The file is damaged; export it again.")
    if rows > IMAGE_MAX_SIDE or cols > IMAGE_MAX_SIDE or rows * cols > IMAGE_MAX_PIXELS:
        raise CorruptFileError(
            f"The image {where} declares {cols} x {rows} pixels, more than this program reads "
            f"(at most {IMAGE_MAX_PIXELS // 1_000_000} megapixels and {IMAGE_MAX_SIDE} pixels a "
            f"side). The file is damaged, or not a chest X-ray; export the image again.")


def check_waveform_size(n_channels: int, n_samples: int, where: str) -> None:
    """Refuse a waveform whose declared channels / samples per channel are over the limits.

    Raises:
        CorruptFileError: naming the declared counts and the limit."""
    if n_channels > WAVEFORM_MAX_CHANNELS:
        raise CorruptFileError(f"{where} declares {n_channels} channels; at most "
                               f"{WAVEFORM_MAX_CHANNELS} are read. The file is probably damaged.")
    if n_samples > WAVEFORM_MAX_SAMPLES_PER_CHANNEL or \
            n_channels * n_samples > WAVEFORM_MAX_TOTAL_SAMPLES:
        raise CorruptFileError(
            f"{where} declares {n_samples} samples per channel x {n_channels} channels, more "
            f"than this program reads at once (at most {WAVEFORM_MAX_SAMPLES_PER_CHANNEL:,} "
            f"samples per channel and {WAVEFORM_MAX_TOTAL_SAMPLES:,} in all). Long recordings "
            f"(Holter) are not supported yet; export a 10-second to 1-hour excerpt, or the file "
            f"is damaged.")
