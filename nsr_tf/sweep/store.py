"""Result records on disk: one atomic JSON file per finished run.

A run directory holds ``record.json`` (written last, atomically, by
``os.replace``), the exported SavedModel and TensorBoard logs. A crash loses
at most the run in progress.

Every record stores ``settings``, a dict of everything that affects its
result, and ``fingerprint``, a hash of their canonical JSON. On rerun a
record is reused only when its fingerprint matches the current settings
(:func:`reuse_record`): a record of other settings is an error naming the
run and the differing settings, unless ``overwrite=True`` redoes it. A
record that cannot be parsed is set aside (renamed to
``record.json.corrupt-<timestamp>``) with a warning and its run is redone.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import tempfile
import time
import warnings

DONE = "done"
MISSING = "missing"
CORRUPT = "corrupt"
MISMATCH = "mismatch"


class SettingsMismatchError(ValueError):
    """A finished record was made with other settings than the current."""


class CorruptRecordError(ValueError):
    """A record file that cannot be parsed as a JSON object."""


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
    """Parses a JSON file; a file that does not parse names itself.

    Raises:
        CorruptRecordError: when the file is empty, truncated or not JSON.
    """
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptRecordError(
            f"{path} is not valid JSON ({len(text)} bytes; it may be empty "
            f"or truncated): {exc}"
        ) from exc


# --- settings and fingerprints -------------------------------------------


def canonical_settings(settings: dict) -> dict:
    """``settings`` as they read back from JSON (tuples become lists)."""
    return json.loads(_canonical_json(settings))


def _canonical_json(settings: dict) -> str:
    return json.dumps(
        settings, sort_keys=True, separators=(",", ":"), allow_nan=True
    )


def fingerprint(settings: dict) -> str:
    """Stable hash (SHA-256 hex) of the canonical JSON of ``settings``.

    Key order and tuple-vs-list do not matter; every value does. A record
    read back from disk has the fingerprint of the settings that wrote it.
    """
    return hashlib.sha256(_canonical_json(settings).encode()).hexdigest()


def diff_settings(
    old: dict,
    new: dict,
    *,
    labels: tuple[str, str] = ("recorded", "now"),
    limit: int = 8,
) -> str:
    """Human-readable differences, ``key: old != new``, nested keys dotted."""
    a, b = _flatten(canonical_settings(old)), _flatten(canonical_settings(new))
    lines = [
        f"{key}: {a.get(key, '<absent>')!r} ({labels[0]}) != "
        f"{b.get(key, '<absent>')!r} ({labels[1]})"
        for key in sorted(set(a) | set(b))
        if not _same(a.get(key, _ABSENT), b.get(key, _ABSENT))
    ]
    if len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit} more"]
    return "; ".join(lines) or "no difference"


_ABSENT = object()


def _same(x, y) -> bool:
    if isinstance(x, float) and isinstance(y, float):
        return x == y or (math.isnan(x) and math.isnan(y))
    return x == y


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict) and value:
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def with_settings(record: dict, settings: dict) -> dict:
    """``record`` with its ``settings`` and ``fingerprint`` filled in."""
    return {
        **record,
        "settings": canonical_settings(settings),
        "fingerprint": fingerprint(settings),
    }


# --- status of one record and resume -------------------------------------


def record_status(path: str, settings: dict) -> tuple[str, dict | None]:
    """Whether the record at ``path`` can stand for a run of ``settings``.

    Returns:
        ``(status, record)``: ``("missing", None)`` when there is no file,
        ``("corrupt", None)`` when it does not parse as a JSON object,
        ``("mismatch", record)`` when its fingerprint is not that of
        ``settings`` (records without one, from older versions, included)
        and ``("done", record)`` when it matches.
    """
    if not os.path.exists(path):
        return MISSING, None
    try:
        record = read_json(path)
    except CorruptRecordError:
        return CORRUPT, None
    if not isinstance(record, dict):
        return CORRUPT, None
    if record.get("fingerprint") != fingerprint(settings):
        return MISMATCH, record
    return DONE, record


def set_aside(path: str) -> str:
    """Renames a corrupt record to ``<path>.corrupt-<timestamp>``, warning."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = f"{path}.corrupt-{stamp}"
    n = 1
    while os.path.exists(target):
        target, n = f"{path}.corrupt-{stamp}-{n}", n + 1
    os.replace(path, target)
    warnings.warn(
        f"Record {path} could not be parsed (empty or truncated); moved it "
        f"to {target} and the run will be redone.",
        stacklevel=2,
    )
    return target


def mismatch_message(name: str, path: str, record: dict, settings) -> str:
    return (
        f"Run {name} has a record made with other settings ({path}): "
        f"{diff_settings(record.get('settings') or {}, settings)}. Use "
        "another output directory, or overwrite=True (--overwrite) to redo "
        "it with the current settings."
    )


def reuse_record(
    path: str, settings: dict, *, name: str, overwrite: bool = False
) -> dict | None:
    """The finished record to reuse for a run, or None when it must run.

    A corrupt record is set aside (with a warning) and the run redone. A
    record of other settings raises, unless ``overwrite`` (then the stale
    record is deleted at once and the run redone). A matching record is
    always reused, ``overwrite`` or not.

    Args:
        path: the run's record file.
        settings: the run's current settings.
        name: the run's name for messages, e.g. its run key.
        overwrite: redo a run whose record has other settings.

    Raises:
        SettingsMismatchError: naming the run and the differing settings.
    """
    status, record = record_status(path, settings)
    if status == DONE:
        return record
    if status == CORRUPT:
        set_aside(path)
    elif status == MISMATCH:
        if not overwrite:
            raise SettingsMismatchError(
                mismatch_message(name, path, record, settings)
            )
        os.remove(path)  # a crash while redoing must not leave it standing
    return None


def check_resumable(items, *, overwrite: bool = False) -> None:
    """Raises once for every mismatching record of ``(name, path, settings)``.

    Called before a sweep trains anything, so that a sweep pointed at the
    output directory of other settings stops at once, naming all its runs.
    """
    bad = []
    for name, path, settings in items:
        status, record = record_status(path, settings)
        if status == MISMATCH and not overwrite:
            bad.append(mismatch_message(name, path, record, settings))
    if bad:
        more = f" (and {len(bad) - 3} more runs)" if len(bad) > 3 else ""
        raise SettingsMismatchError("\n".join(bad[:3]) + more)


# --- Table 1 layout -------------------------------------------------------


def run_dir(output_dir: str, run_key: str) -> str:
    """Directory of one run, e.g. ``OUT/runs/mnist/mlp1/erm/beta_inf``."""
    return os.path.join(output_dir, "runs", *run_key.split("/"))


def record_path(output_dir: str, run_key: str) -> str:
    return os.path.join(run_dir(output_dir, run_key), "record.json")


def is_done(output_dir: str, run_key: str) -> bool:
    """True when the run has a record file (of any settings)."""
    return os.path.exists(record_path(output_dir, run_key))


def read_records(directories, *, prefix: str = "") -> list[dict]:
    """All finished records below ``directories`` whose key starts so.

    Records of the same run found in several directories (e.g. shards that
    shared an output directory) are kept once; copies with different
    fingerprints raise. A record that does not parse is skipped with a
    warning naming the file.

    Raises:
        SettingsMismatchError: when two records of one run differ.
    """
    found = {}
    for directory in directories:
        pattern = os.path.join(directory, "runs", "**", "record.json")
        for path in sorted(glob.glob(pattern, recursive=True)):
            try:
                record = read_json(path)
            except CorruptRecordError as exc:
                warnings.warn(f"Skipping a corrupt record: {exc}", stacklevel=2)
                continue
            key = record.get("run_key", "")
            if not key.startswith(prefix):
                continue
            if key in found and found[key][0].get("fingerprint") != record.get(
                "fingerprint"
            ):
                raise SettingsMismatchError(
                    f"Run {key} has records of different settings in "
                    f"{found[key][1]} and {path}: "
                    + diff_settings(
                        found[key][0].get("settings") or {},
                        record.get("settings") or {},
                        labels=("first", "second"),
                    )
                )
            found.setdefault(key, (record, path))
    return [found[k][0] for k in sorted(found)]


def check_same_settings(records: list[dict], *, part: str) -> None:
    """Raises unless every record has the same ``settings[part]``.

    Used to refuse a table that mixes runs of different sweeps (presets,
    data, seeds ...). Records without settings (older versions) count as
    having empty ones.
    """
    groups = {}
    for record in records:
        shared = (record.get("settings") or {}).get(part, {})
        groups.setdefault(fingerprint(shared), (record, shared))
    if len(groups) > 1:
        (r0, s0), (r1, s1) = list(groups.values())[:2]
        raise SettingsMismatchError(
            f"Refusing to mix records of {len(groups)} different sweep "
            f"settings in one table: {r0.get('run_key')} vs "
            f"{r1.get('run_key')}: "
            f"{diff_settings(s0, s1, labels=('first', 'second'))}. Merge the "
            "output directories of one sweep only."
        )
