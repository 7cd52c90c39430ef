"""MIMIC cohort builder: find and read the MIMIC tables (`mimic_tables`), link
ECGs to chest X-rays (`link`), split by subject (`splits`) and write a COHORT
directory (`build`, format in docs/cohort.md)."""
