"""`cromotex archive`: score a hospital's ECG archive on a Dask cluster into Parquet.

Imported only by the `cromotex archive` command (`engine.cli`); the app and the
installer never import it. Dask (`dask[distributed]`) and `pyarrow` come with the
optional extra `.[cluster]` and are imported inside the functions that use them,
so `import engine.archive...` works without them (tests/test_dependency_rule.py).

Modules, one job each:

- `rows`: the Parquet row of one file, built from `cromotex predict`'s JSON object
  (`engine.predict_output.result_json`) plus the file's size, mtime and content
  sha256; the Arrow schema.
- `store`: the output dataset: part files flushed every N rows (each written whole,
  then renamed: an interrupted run leaves only complete parts), the resume index,
  and the final compaction into one file sorted by path.
- `worker`: what runs on a Dask worker: one `Predictor` per worker process (cached
  on the worker, opened with the client's trust list and checked against the
  client's bundle), and the task that hashes, reads and scores a chunk of files
  with `engine.batch.load_and_score_many`: the same code as `cromotex predict`.
- `cli`: the command line and the client loop (bounded number of tasks in flight,
  progress bar on stderr).
"""
