"""Result records on disk: one atomic JSON file per finished run.

A run directory holds ``record.json`` (written last, atomically, by
``os.replace``), the exported SavedModel and TensorBoard logs. A run whose
record exists is finished and is skipped on rerun; a crash loses at most the
run in progress.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile


def write_json_atomic(path: str, payload) -> None:
    """Writes JSON to ``path`` so that readers see all of it or nothing."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text_atomic(path: str, text: str) -> None:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


def run_dir(output_dir: str, run_key: str) -> str:
    """Directory of one run, e.g. ``OUT/runs/mnist/mlp1/erm/beta_inf``."""
    return os.path.join(output_dir, "runs", *run_key.split("/"))


def record_path(output_dir: str, run_key: str) -> str:
    return os.path.join(run_dir(output_dir, run_key), "record.json")


def is_done(output_dir: str, run_key: str) -> bool:
    return os.path.exists(record_path(output_dir, run_key))


def read_records(directories, *, prefix: str = "") -> list[dict]:
    """All finished records below ``directories`` whose key starts so.

    Records of the same run found in several directories (e.g. shards that
    shared an output directory) are kept once.
    """
    found = {}
    for directory in directories:
        pattern = os.path.join(directory, "runs", "**", "record.json")
        for path in sorted(glob.glob(pattern, recursive=True)):
            with open(path) as f:
                record = json.load(f)
            if record.get("run_key", "").startswith(prefix):
                found.setdefault(record["run_key"], record)
    return [found[k] for k in sorted(found)]
