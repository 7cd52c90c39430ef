"""Phantom cohort generator: a synthetic stand-in for MIMIC-IV-ECG + MIMIC-CXR-JPG + MIMIC-IV-ED.

`generate(out, subjects, seed)` writes, under `out`::

    mimic-iv-ecg/record_list.csv, files/pNNNN/pNNNNNNNN/sNNNNNNNN/NNNNNNNN.hea/.dat
    mimic-cxr-jpg/mimic-cxr-2.0.0-{chexpert,metadata,split}.csv, files/pNN/pNNNNNNNN/sNNNNNNNN/<dicom_id>.jpg
    mimic-iv-ed/ed/edstays.csv
    mimic-iv-ecg-ext-icd/records_w_diag_icd10.csv
    dicom/{cxr,ecg}/*.dcm                       (a few DICOM copies, not MIMIC)
    phantom_truth.csv, phantom_studies.csv, phantom.json   (ground truth, not MIMIC)

Exact columns and structure: docs/phantom.md. Modules: `latent` (traits, disease state,
labels), `ecg` (dipole/VCG model), `cxr` (radiographs), `dicom_out`, `layout` (planning,
ids, writing), `generate` (this module's entry point), `cli` (`cromotex-train phantom`).
"""

from training.phantom.generate import GenerationSummary, generate

__all__ = ["GenerationSummary", "generate"]
