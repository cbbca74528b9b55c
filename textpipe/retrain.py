"""Script-driven retraining: train a candidate, judge it and production on the same held-out rows, promote it.

    textpipe retrain --config retrain.toml [--dry-run] [--warm-start] [--rollback] [--report FILE]
    python scripts/retrain.py ...   (the same command)

The TOML file has [data] (sources, eval_split), [model] (any Config field but dataset, subset and output) and
[promotion] (production, metric, margin, keep). Relative paths in it (sources, production, word_vectors,
unlabeled, log_dir) are read from the TOML file's folder, not the working directory, so a cron job behaves the same
wherever it starts. A source that is not an existing path is a Hub id. Beside the production path P:
    P              a symlink to P.versions/NNNN-<UTC time>, swapped by os.replace, which is atomic: a reader
                   always finds a complete bundle (load_bundle follows the link; versions are never changed)
    P.versions/    promoted bundles (this run's eval metrics in bundle.json under "retrain") and
                   reports/<run>.json; the current version and the newest `keep` others are kept
    P.work/<key>/  an unfinished run's BackupAndRestore checkpoint, epoch log and finished candidate; the key
                   hashes settings, data and starting weights, so only the same run resumes it
    P.lock         pid, host and start time of the run holding P (created with O_EXCL; dry runs and rollbacks
                   take it too); a lock whose pid is gone from this host is taken over, noted in the report
A plain-folder production (e.g. from `textpipe train`) becomes a version on the first promotion or rollback:
the one moment, between two renames, that P is absent.

Decisions: sources need identical class names. A source without a labeled eval_split only adds training rows (a
single file has none); when eval_split names the validation split (validation, valid, val or dev: a source's own,
under whichever name), the candidate chooses its epoch on rows carved from train instead. Promote when there is no
production or candidate[metric] >= production[metric] + margin. A production with other classes cannot be judged on
these labels, so it is kept. A warm start that check_warm_start refuses falls back to a fresh start and the reason
is reported. --dry-run never promotes. Resuming restarts the choice of the best epoch and its patience (Keras does
not back them up): the epoch kept is the best of those run after the resume.
Exit status: 0 promoted or rolled back (a dry run: would promote); 3 production kept (a dry run: would keep); 2 bad config, data or bundle
(TextpipeError); 1 another run holds the lock, or any other failure; 130 interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from textpipe.atomic import atomic_file
from textpipe.config import Config, read_toml
from textpipe.errors import BundleError, ConfigError, DataError, TextpipeError, one_line
from textpipe.production import (
    ProductionLocked,
    current_version,
    default_report_path,
    list_versions,
    new_run_id,
    next_version_name,
    point_production_to,
    production_lock,
    prune_versions,
    utc_now,
    version_sequence,
    versions_dir,
)

METRICS = ("accuracy", "macro_f1")
SECTIONS = {"data": ("sources", "eval_split"), "promotion": ("production", "metric", "margin", "keep")}
NOT_IN_MODEL = {"dataset": "list the data in [data] sources", "subset": "list the data in [data] sources",
                "output": "the bundle goes to [promotion] production",
                "backup_dir": "retrain backs up every run by itself, next to production"}


@dataclasses.dataclass(frozen=True)
class RetrainSettings:
    sources: tuple[str, ...]
    production: Path
    config: Config = Config()
    eval_split: str = "test"
    metric: str = "accuracy"
    margin: float = 0.0
    keep: int = 5
    base: Path = Path(".")  # the folder relative sources are read from

    def __post_init__(self) -> None:
        _expect("[data] sources", self.sources, tuple, 'a list of Hub ids or paths, e.g. ["imdb"]',
                lambda v: v and all(isinstance(s, str) and s for s in v))
        _expect("[data] eval_split", self.eval_split, str, "a split other than train", lambda v: v != "train")
        _expect("[promotion] production", self.production, (str, Path), "a folder path", lambda v: str(v))
        object.__setattr__(self, "production", Path(self.production))
        _expect("[promotion] metric", self.metric, str, f"one of {', '.join(METRICS)}", lambda v: v in METRICS)
        _expect("[promotion] margin", self.margin, (int, float), "a number >= 0", lambda v: v >= 0)
        _expect("[promotion] keep", self.keep, int, "a whole number of earlier versions >= 0", lambda v: v >= 0)


def _expect(name: str, value: Any, kinds: type | tuple[type, ...], what: str, ok: Callable[[Any], Any]) -> None:
    if isinstance(value, bool) or not isinstance(value, kinds) or not ok(value):
        raise ConfigError(f"{name} must be {what}, got {type(value).__name__} {value!r}")


def load_settings(path: str | Path) -> RetrainSettings:
    """Read a retrain TOML file; every error names the file, the section and the key."""
    path = Path(path)
    raw, base = read_toml(path), path.absolute().parent
    for name, value in raw.items():
        if name not in (*SECTIONS, "model") or not isinstance(value, dict):
            raise ConfigError(f"{path}: {name!r} is not a section of a retrain config: [data], [model], [promotion]")
    for section, keys in SECTIONS.items():
        unknown = sorted(set(raw.get(section, {})) - set(keys))
        if unknown:
            raise ConfigError(f"{path}: unknown key {unknown[0]!r} in [{section}]; known keys: {', '.join(keys)}")
    data, promotion, model = raw.get("data", {}), raw.get("promotion", {}), dict(raw.get("model", {}))
    if "sources" not in data:
        raise ConfigError(f'{path}: [data] sources is missing; list Hub ids or paths, e.g. sources = ["imdb"]')
    if "production" not in promotion:
        raise ConfigError(f"{path}: [promotion] production is missing; name the bundle folder scoring jobs load")
    for key in set(NOT_IN_MODEL) & set(model):
        raise ConfigError(f"{path}: [model] {key!r} is not a retrain setting: {NOT_IN_MODEL[key]}")
    for key in ("word_vectors", "log_dir"):
        if isinstance(model.get(key), str):
            model[key] = str(base / Path(model[key]).expanduser())
    if isinstance(model.get("unlabeled"), str):
        from textpipe.unlabeled import reads_as_files

        beside = base / Path(model["unlabeled"]).expanduser()
        if beside.exists() or reads_as_files(model["unlabeled"]):  # else a Hub id
            model["unlabeled"] = str(beside)
    try:
        config = Config.from_dict(model, origin="this section")
    except ConfigError as e:
        raise ConfigError(f"{path}: [model] {e}") from None
    given = {**data, **promotion}
    if isinstance(given["sources"], list):
        given["sources"] = tuple(given["sources"])
    if isinstance(given["production"], str):
        given["production"] = base / Path(given["production"]).expanduser()
    try:
        return RetrainSettings(config=config, base=base, **given)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


@contextlib.contextmanager
def _recorded(settings: RetrainSettings, action: str, run_id: str | None, report_path: Path | None) -> Iterator[dict]:
    """A report for the block, written atomically when the block ends, however it ends. Callers check the
    report's path first (paths.check_output_file); should writing still fail, the report says so in
    "report_error"."""
    run_id = run_id or new_run_id()
    path = Path(report_path) if report_path else default_report_path(settings.production, run_id)
    report: dict[str, Any] = {"run": run_id, "action": action, "report": str(path), "started": utc_now(),
                              "decision": None, "reason": None, "error": None, "durations": {},
                              "production": {"path": str(settings.production)}}
    start = time.perf_counter()
    try:
        yield report
    except BaseException as e:
        report["decision"] = {KeyboardInterrupt: "interrupted", ProductionLocked: "refused"}.get(type(e), "failed")
        report["error"] = one_line(e) if isinstance(e, TextpipeError) else f"{type(e).__name__}: {one_line(e)}"
        raise
    finally:
        report["finished"] = utc_now()
        report["durations"]["total"] = round(time.perf_counter() - start, 2)
        try:
            with atomic_file(path) as f:
                json.dump(report, f, indent=2)
                f.write("\n")
        except OSError as e:
            # The run's outcome (a promotion, say) stands whether or not its record could be written: say so
            # in the returned report rather than turn a done promotion into a failed run.
            report["report_error"] = f"could not write the report to {path}: {one_line(e)}"


@contextlib.contextmanager
def _timed(report: dict, stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        report["durations"][stage] = round(time.perf_counter() - start, 2)


def rollback(settings: RetrainSettings, *, run_id: str | None = None, report_path: Path | None = None) -> dict:
    """Point production at the version before the current one (a plain folder counts as the newest)."""
    from textpipe.bundle import load_bundle

    production = settings.production
    if not production.exists() and not versions_dir(production).exists():
        # Before the report and the lock: a rollback of nothing creates no folders for them.
        raise BundleError(f"nothing to roll back: there is no production bundle at {production}")
    with _recorded(settings, "rollback", run_id, report_path) as report, production_lock(production) as stale:
        report["lock_taken_over"] = stale
        current = current_version(production)
        if current is None and not production.exists():
            raise BundleError(f"nothing to roll back: there is no production bundle at {production}")
        earlier = [v for v in list_versions(production) if current is None or version_sequence(v) < version_sequence(Path(current))]
        if not earlier:
            raise BundleError(f"no earlier version of {production} to roll back to in {versions_dir(production)}")
        load_bundle(earlier[-1])  # never point production at something incomplete
        point_production_to(production, earlier[-1], adopt_as=next_version_name(production))
        report.update(decision="rolled back", version=earlier[-1].name,
                      reason=f"production is {earlier[-1].name} again (was {current or 'a bundle outside the versions'})")
    return report


def retrain(settings: RetrainSettings, *, dry_run: bool = False, warm_start: bool = False, run_id: str | None = None,
            report_path: Path | None = None, callbacks: Sequence[Any] = (), verbose: int | str = 0,
            notify: Callable[[str], None] = lambda message: None) -> dict:
    """Train a candidate on the sources, judge it and production on the eval rows, promote it if it wins.

    Returns the report, also written to `report_path`; its decision is "promoted", "kept" or "dry run".
    `callbacks`: extra Keras callbacks for fit. `notify`: receives one-line notes on progress.
    """
    from textpipe.evaluation import evaluate

    production = settings.production
    with _recorded(settings, "retrain", run_id, report_path) as report, production_lock(production) as stale:
        report.update(lock_taken_over=stale, settings={
            "sources": list(settings.sources), "eval_split": settings.eval_split, "metric": settings.metric,
            "margin": settings.margin, "keep": settings.keep, "dry_run": dry_run, "warm_start": warm_start,
            "model": settings.config.to_dict()})
        if stale:
            notify(f"took over the stale lock of pid {stale.get('pid')}, started {stale.get('started')}")
        with _timed(report, "load_production"):
            current = _load_production(production)
        with _timed(report, "load_data"):
            data, report["sources"] = load_sources(settings)
        notify("data: " + "; ".join(f"{s['source']}: {s['train']} train, {s['validation']} validation, "
                                    f"{s['eval']} {settings.eval_split}" for s in report["sources"]))
        with _timed(report, "train"):
            candidate = _train_candidate(settings, data, current, warm_start, report, callbacks, verbose, notify)
        with _timed(report, "evaluate"):
            metrics = evaluate(candidate, data.test)
            old = _evaluate_production(current, data) if current is not None else None
        report["candidate"] = {"metrics": metrics, "validation": candidate.metrics["validation"],
                               "history": candidate.history}
        report["production"].update(found=current is not None, version=current_version(production), metrics=old)
        promote, reason = _decide(settings, current, metrics, old)
        report.update(would_promote=promote, reason=reason,
                      decision="dry run" if dry_run else "promoted" if promote else "kept")
        if promote and not dry_run:
            with _timed(report, "promote"):
                candidate.metrics["retrain"] = {"run": report["run"], "sources": list(settings.sources),
                                                "eval_split": settings.eval_split, "metrics": metrics}
                report["version"] = _promote(production, candidate)
                report["pruned"] = prune_versions(production, settings.keep)
        shutil.rmtree(production.with_name(production.name + ".work"), ignore_errors=True)
    return report


def _load_production(production: Path):
    from textpipe.bundle import check_bundle_target, load_bundle

    if production.is_symlink() and not production.exists():
        raise BundleError(f"{production} links to the missing {os.readlink(production)}; restore it or --rollback")
    check_bundle_target(production)
    if not production.exists() or not any(production.iterdir()):
        return None
    try:
        return load_bundle(production)
    except BundleError as e:
        raise BundleError(f"the production bundle cannot be loaded ({e}); restore it or move it aside") from None


def load_sources(settings: RetrainSettings):
    """All sources' train and validation rows, and their eval rows as `test`; plus row counts per source."""
    import numpy as np

    from textpipe.data import LabeledData, Split, load_labeled_data

    config, loaded, counts = settings.config, [], []
    columns = {"text_column": config.text_column, "label_column": config.label_column, "encoding": config.encoding}
    for given in settings.sources:
        data = load_labeled_data(given, validation_fraction=config.validation_fraction, seed=config.seed,
                                 train_split=config.train_split, label_names=config.label_names,
                                 test_split=settings.eval_split, base=settings.base, **columns)
        if loaded and data.class_names != loaded[0].class_names:
            raise DataError(f"sources disagree on the classes: {settings.sources[0]!r} has "
                            f"({', '.join(loaded[0].class_names)}), {given!r} has ({', '.join(data.class_names)}); "
                            "label every source with the same class names")
        loaded.append(data)  # its test: the eval rows; None: a source without them adds training rows only
        counts.append({"source": given, "train": len(data.train), "validation": len(data.validation),
                       "validation_from_train": data.validation_from_train, "eval": len(data.test or ())})
    if not any(d.test for d in loaded):
        raise DataError(f"no source has a labeled {settings.eval_split!r} split to judge the models on; "
                        "add one, or set [data] eval_split")

    def joined(splits):
        splits = [s for s in splits if s is not None]
        return Split(np.concatenate([s.texts for s in splits]), np.concatenate([s.labels for s in splits]))

    first = loaded[0]
    data = LabeledData(joined(d.train for d in loaded), joined(d.validation for d in loaded),
                       joined(d.test for d in loaded), first.class_names, first.text_column, first.label_column,
                       any(d.validation_from_train for d in loaded),
                       next((d.label_ids for d in loaded if d.label_ids is not None), None))
    return data, counts


def _train_candidate(settings, data, current, warm_start, report, callbacks, verbose, notify):
    """train() with a BackupAndRestore checkpoint in P.work, so that a killed run resumes where it stopped."""
    import keras

    from textpipe.bundle import META_FILE, load_bundle, save_bundle
    from textpipe.training import train

    production, config = settings.production, settings.config
    start = current if warm_start else None
    work = production.with_name(production.name + ".work") / _run_key(config, data, start, production)
    if (work / "candidate" / META_FILE).is_file():
        notify("reusing the candidate an interrupted run had finished training")
        report["resume"] = {"started_at_epoch": config.epochs, "epochs_run": 0, "reused_candidate": True}
        report["warm_start"] = json.loads((work / "warm_start.json").read_text())
        return load_bundle(work / "candidate")
    reason = None if start is not None else "no production bundle yet" if warm_start else "not requested"
    report["warm_start"] = {"requested": warm_start, "used": False, "reason": reason}
    report["resume"] = resume = {"started_at_epoch": config.epochs, "epochs_run": 0, "reused_candidate": False}
    log = work / "epochs.json"
    earlier = json.loads(log.read_text()) if log.is_file() else []
    epochs = list(earlier)  # kept whole if BackupAndRestore finds every epoch done

    def begin(epoch, logs=None):
        if resume["epochs_run"] == 0:  # this run's first epoch: BackupAndRestore has chosen where to start
            resume["started_at_epoch"], epochs[:] = epoch, [e for e in earlier if e["epoch"] < epoch]
            if epoch:
                notify(f"resuming an interrupted run at epoch {epoch + 1} of {config.epochs}")

    def end(epoch, logs=None):
        epochs.append({"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}})
        resume["epochs_run"] += 1
        with atomic_file(log) as f:
            json.dump(epochs, f)

    fit_callbacks = [keras.callbacks.BackupAndRestore(str(work / "backup"), double_checkpoint=True),
                     keras.callbacks.LambdaCallback(on_epoch_begin=begin, on_epoch_end=end), *callbacks]
    candidate = None
    if start is not None:
        try:
            candidate = train(config, data, callbacks=fit_callbacks, verbose=verbose, warm_start=start)
            report["warm_start"]["used"] = True
        except ConfigError as e:  # check_warm_start's reason; any other ConfigError recurs just below
            report["warm_start"]["reason"] = str(e)
            notify(f"{e}; training from scratch instead")
    if candidate is None:
        candidate = train(config, data, callbacks=fit_callbacks, verbose=verbose)
    # Keras' history has this run's epochs only; the epoch log has the interrupted runs' too.
    candidate.history = {k: [e[k] for e in epochs if k in e] for k in (epochs[0] if epochs else ()) if k != "epoch"}
    with atomic_file(work / "warm_start.json") as f:
        json.dump(report["warm_start"], f)
    save_bundle(candidate, work / "candidate")  # a run killed after this point skips training
    return candidate


def _run_key(config: Config, data, start, production: Path) -> str:
    """Same settings, data and starting weights give the same key, hence the same checkpoint to resume."""
    digest = hashlib.sha256(json.dumps([config.to_dict(), list(data.class_names)]).encode())
    if start is not None:
        digest.update((production / "bundle.json").read_bytes())
    for split in (data.train, data.validation):
        digest.update("\0".join(split.texts).encode("utf-8", "surrogatepass") + split.labels.tobytes())
    return digest.hexdigest()[:16]


def _evaluate_production(current, data) -> dict | None:
    """Production's metrics on the eval rows, or None when its classes are not these (it cannot be judged)."""
    import numpy as np

    from textpipe.data import Split
    from textpipe.evaluation import evaluate

    if set(current.class_names) != set(data.class_names):
        return None
    ids = np.array([current.class_names.index(name) for name in data.class_names])  # same names, any order
    return evaluate(current, Split(data.test.texts, ids[data.test.labels]))


def _decide(settings: RetrainSettings, current, new: dict, old: dict | None) -> tuple[bool, str]:
    metric, margin = settings.metric, settings.margin
    if current is None:
        return True, f"no production bundle at {settings.production} yet"
    if old is None:
        return False, (f"production's classes ({', '.join(current.class_names)}) are not this data's, so it cannot "
                       f"be judged on it; move {settings.production} aside to start over with the candidate's")
    if new[metric] >= old[metric] + margin:
        return True, f"candidate {metric} {new[metric]:.4f} >= production {old[metric]:.4f} + margin {margin}"
    return False, f"candidate {metric} {new[metric]:.4f} < production {old[metric]:.4f} + margin {margin}"


def _promote(production: Path, candidate) -> str:
    """Save the candidate as the next version, then point production at it; returns the version's name."""
    from textpipe.bundle import save_bundle

    folder = versions_dir(production)
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob(".*"):  # temporary folders of killed saves and deletions
        shutil.rmtree(leftover, ignore_errors=True)
    plain = production.is_dir() and not production.is_symlink() and any(production.iterdir())
    adopt_as, name = next_version_name(production), next_version_name(production, step=2 if plain else 1)
    save_bundle(candidate, folder / name)
    point_production_to(production, folder / name, adopt_as)  # a plain folder there is the version before
    return name
