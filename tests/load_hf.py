"""Loads datamill run folders with Hugging Face `datasets`, as the README shows a user.

Usage: load_hf.py RUN_DIR...  Prints one JSON line per run: rows read in one pass with the
run's features.json, rows read again streaming, and the first id.
"""
import glob
import json
import os
import sys

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets  # noqa: E402

for run in sys.argv[1:]:
    with open(os.path.join(run, "features.json")) as f:
        features = datasets.Features.from_dict(json.load(f))
    files = sorted(glob.glob(os.path.join(run, "*.jsonl.zst")))
    ds = datasets.load_dataset("json", data_files=files, features=features, split="train")
    streamed = datasets.load_dataset(
        "json", data_files=files, features=features, split="train", streaming=True
    )
    n_streamed = sum(1 for _ in streamed)
    print(json.dumps({
        "run": run,
        "rows": ds.num_rows,
        "streamed": n_streamed,
        "first_id": ds[0]["id"] if ds.num_rows else None,
        "metadata_keys": sorted(ds.features["metadata"].keys()),
    }), flush=True)
