"""The main job end to end: one run directory, resumable stage by stage (``kgfin demo``).

synthetic market → validation → monthly graphs in the store → instruction pairs →
knowledge adapters → market alignment → ripple evaluation with baselines → ripple-score tables
of the aligned model → fusion and mixture models with decile portfolios → HTML report.

A :class:`PipelineConfig` (a profile in ``kgfin/recipes/demo*.yaml``) holds every stage's
config. ``RUN/pipeline.json`` records the config, its hash, package versions and, per
stage, its status, wall time, peak memory and a short summary. Each stage has a key: the
hash of the config sections it reads and of the keys of the stages it builds on. A re-run
skips a stage whose key matches a finished one, so an interrupted run resumes (the
adapter and alignment stages also resume from their own checkpoints) and a changed
setting reruns exactly the stages it affects.

Outputs: ``RUN/data``, ``RUN/graph`` (embedded store), ``RUN/instructions``,
``RUN/adapters``, ``RUN/align``, ``RUN/ripple_eval``, ``RUN/ripple_scores``, ``RUN/fusion``, ``RUN/report.html``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from kgfin.align.config import AlignConfig
from kgfin.config import ConfigError, KgfinConfig, load_config
from kgfin.data.calendar import add_months
from kgfin.data.synth import SynthConfig
from kgfin.evaluate.ripple import RippleEvalConfig
from kgfin.evaluate.scores import RippleScoresConfig
from kgfin.fusion.config import FusionConfig
from kgfin.graph import GraphConfig
from kgfin.inject.config import InjectConfig
from kgfin.instruct.config import InstructConfig
from kgfin.recipes import PROFILES, recipe_path
from kgfin.runinfo import git_revision, package_versions

__all__ = ["PROFILES", "RECIPE_KEYS", "STAGES", "PipelineConfig", "PipelineResult", "StageRecord", "load_profile",
           "run_pipeline"]

log = logging.getLogger(__name__)

MANIFEST = "pipeline.json"


class PipelineConfig(KgfinConfig):
    """Every stage's settings; see ``kgfin/recipes/demo.yaml``."""

    profile: str = Field("default", description="name of the profile (for the record)")
    seed: int = Field(0, description="the run's seed, copied into the seed of every stage's config (and their parts)")
    synth: SynthConfig = Field(default_factory=SynthConfig)
    graph: GraphConfig = Field(default_factory=GraphConfig)
    instruct: InstructConfig = Field(default_factory=InstructConfig)
    inject: InjectConfig = Field(default_factory=InjectConfig)
    align: AlignConfig = Field(default_factory=AlignConfig)
    align_months: list[str] = Field(..., min_length=1, description="news months the model is aligned on")
    eval_months: list[str] = Field(..., min_length=1, description="held-out news months of the ripple evaluation")
    ripple_eval: RippleEvalConfig = Field(default_factory=RippleEvalConfig)
    ripple_scores: RippleScoresConfig = Field(
        default_factory=RippleScoresConfig,
        description="the ripple-score table the fusion stage reads: its predictor (default: the aligned model) "
                    "over the news of every month of the market")
    fusion: FusionConfig = Field(default_factory=FusionConfig)
    report_events: int = Field(10, ge=0, description="events with a page of their own in the report")

    @model_validator(mode="after")
    def _spread_seed(self) -> PipelineConfig:
        def spread(model: BaseModel) -> None:
            for name in type(model).model_fields:
                value = getattr(model, name)
                if isinstance(value, BaseModel):
                    if "seed" in type(value).model_fields and value.seed != self.seed:  # type: ignore[attr-defined]
                        object.__setattr__(value, "seed", self.seed)
                    spread(value)

        spread(self)
        return self

    def adapter_months(self) -> list[str]:
        """Graph months whose knowledge adapter alignment or evaluation reads (news month - lag)."""
        lag = self.align.events.graph_lag_months
        return sorted({add_months(m, -lag) for m in [*self.align_months, *self.eval_months]})

    def check(self) -> None:
        """Refuse settings that would leak the evaluation months into training."""
        overlap = sorted(set(self.align_months) & set(self.eval_months))
        if overlap:
            raise ConfigError(f"eval_months must be held out from align_months; both hold {overlap}")


# Top-level keys a recipe may hold: the pipeline's own and every stage section (kgfin.config's recipe shape).
RECIPE_KEYS: tuple[str, ...] = (*PipelineConfig.model_fields, "memory_eval")


def load_profile(profile: str = "default", path: str | Path | None = None,
                 overrides: list[str] | None = None) -> PipelineConfig:
    """The config of ``profile`` (or of the YAML file ``path``), with ``key=value`` overrides."""
    if path is None:
        if profile not in PROFILES:
            raise ConfigError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)} or give --config")
        path = recipe_path(PROFILES[profile])
    cfg = load_config(PipelineConfig, path, overrides)
    cfg.check()
    return cfg


# --- stages -----------------------------------------------------------------------------------


@dataclass
class Context:
    """What stages share: the run directory, the config and whether to show progress bars."""

    run: Path
    cfg: PipelineConfig
    progress: bool
    resume: bool = False  # the stage was started before under the same key: continue its checkpoints

    @property
    def data(self) -> Path:
        return self.run / "data"

    @property
    def store_dir(self) -> Path:
        return self.run / "graph"

    @property
    def adapters(self) -> Path:
        return self.run / "adapters"

    @property
    def aligned(self) -> Path:
        return self.run / "align" / "final"


def _data(ctx: Context) -> dict[str, Any]:
    from kgfin.data import validate_dir
    from kgfin.data.synth import synthesize

    synth = ctx.cfg.synth
    summary = synthesize(synth, ctx.data, overwrite=True, progress=ctx.progress)
    problems = [p for p in validate_dir(ctx.data) if p.severity == "error"]
    if problems:
        raise ValueError(f"the generated market failed validation: {problems[0]}")
    return {"companies": synth.companies, "months": synth.months, "news": summary.rows.get("news", 0)}


def _graphs(ctx: Context) -> dict[str, Any]:
    from kgfin.store import build_into_store, open_store

    with open_store(ctx.store_dir) as store:
        written = build_into_store(ctx.data, store, cfg=ctx.cfg.graph, progress=ctx.progress)
    return {"months": len(written), "relationships": sum(sum(w.relationships.values()) for w in written)}


def _instruct(ctx: Context) -> dict[str, Any]:
    from kgfin.instruct import training_pairs, write_pairs
    from kgfin.store import open_store

    counts = {}
    with open_store(ctx.store_dir) as store:
        stored = set(store.months())
        for month in ctx.cfg.adapter_months():
            pairs = training_pairs(month, lambda m: store.read_snapshot(m) if m in stored else None,
                                   ctx.cfg.instruct)
            write_pairs(pairs, ctx.run / "instructions" / f"pairs-{month}.jsonl")
            counts[month] = len(pairs)
    return {"pairs": sum(counts.values()), "months": len(counts)}


def _inject(ctx: Context) -> dict[str, Any]:
    from kgfin.inject import adapter_dir, read_pairs, train_adapter
    from kgfin.runinfo import MANIFEST_NAME

    cfg = ctx.cfg.inject
    trained, seconds, steps, tokens_per_second = 0, 0.0, 0, []
    for month in ctx.cfg.adapter_months():
        path = ctx.run / "instructions" / f"pairs-{month}.jsonl"
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        out = adapter_dir(ctx.adapters, month)
        if (out / MANIFEST_NAME).exists():  # finished before, from the same pairs and settings: keep it
            done = json.loads((out / MANIFEST_NAME).read_text())
            if done["config"] == cfg.model_dump(mode="json") and done["adapter"].get("pairs_sha256") == sha:
                log.info("adapter %s: already trained, kept", month)
                continue
        info = train_adapter(read_pairs(path), out, cfg, month=month, pairs_sha256=sha, resume=ctx.resume,
                             progress=ctx.progress)
        trained, seconds, steps = trained + 1, seconds + info.seconds, steps + info.steps
        tokens_per_second.append(info.tokens_per_second)
    return {"adapters": len(ctx.cfg.adapter_months()), "trained now": trained, "steps": steps,
            "s/step": round(seconds / steps, 2) if steps else None,
            "tok/s": round(sum(tokens_per_second) / len(tokens_per_second), 1) if tokens_per_second else None}


def _align(ctx: Context) -> dict[str, Any]:
    from kgfin.align import align
    from kgfin.data import load_market
    from kgfin.evaluate.teacher import warm_start_teacher
    from kgfin.store import open_store

    market = load_market(ctx.data)
    with open_store(ctx.store_dir) as store:
        teacher = warm_start_teacher(ctx.cfg.align, market, store.read_snapshot, ctx.data)
        result = align(ctx.cfg.align, market, store.read_snapshot, ctx.cfg.align_months, ctx.run / "align",
                       ctx.adapters, resume=ctx.resume, progress=ctx.progress, command="kgfin demo",
                       warm_start_teacher=teacher)
    rewards = result.log["reward"]
    half = max(len(rewards) // 2, 1)
    return {"steps": result.steps, "reward first half": round(float(rewards[:half].mean()), 4),
            "reward second half": round(float(rewards[half:].mean()), 4) if len(rewards) > 1 else None,
            "s/step": round(float(result.log["seconds"].mean()), 1),
            "tok/s": round(float(result.log["tokens_per_second"].mean()), 1)}


def _ripple_eval(ctx: Context) -> dict[str, Any]:
    from kgfin.data import load_market
    from kgfin.evaluate.ripple import run_ripple_eval, write_ripple_outputs
    from kgfin.store import open_store

    cfg = ctx.cfg
    market = load_market(ctx.data)
    rcfg = cfg.ripple_eval
    if cfg.align.warm_start.enabled and "aligned" in rcfg.methods and "warm_start" not in rcfg.methods:
        methods = list(rcfg.methods)
        rcfg = rcfg.model_copy(update={"methods": [*methods[:methods.index("aligned")], "warm_start",
                                                   *methods[methods.index("aligned"):]]})
    with open_store(ctx.store_dir) as store:
        result = run_ripple_eval(market, store.read_snapshot, cfg.eval_months, rcfg, cfg.align,
                                 adapters_root=ctx.adapters, aligned_dir=ctx.aligned,
                                 data_dir=ctx.data, progress=ctx.progress)
    write_ripple_outputs(result, ctx.run / "ripple_eval", cfg.ripple_eval, cfg.align, cfg.eval_months,
                         command="kgfin demo")
    # the v2 headline per method: mean rank IC over the same events and candidates, with its CI and n
    out: dict[str, Any] = {"events": len(result.events)}
    if result.v2 is not None:
        out.update(result.v2.headline())
    return out


def _ripple_scores(ctx: Context) -> dict[str, Any]:
    from kgfin.data import load_market
    from kgfin.data.calendar import months_of
    from kgfin.evaluate.scores import ripple_scores
    from kgfin.store import open_store

    cfg = ctx.cfg
    market = load_market(ctx.data)
    scfg = cfg.ripple_scores.model_copy(update={"rebalance_time": cfg.fusion.features.rebalance_time})
    with open_store(ctx.store_dir) as store:
        res = ripple_scores(market, store.read_snapshot, months_of(market.news["timestamp"]), scfg, cfg.align,
                            adapters_root=ctx.adapters, aligned_dir=ctx.aligned, aligned_months=cfg.align_months,
                            data_dir=ctx.data)
    res.write(ctx.run / "ripple_scores")
    return {"predictor": res.metadata["predictor"], "events": res.metadata["events_scored"],
            "months with scores": int(res.monthly["month"].nunique()), "stock-months": len(res.monthly),
            "seconds": res.metadata["seconds"]["total"]}


def _fusion(ctx: Context) -> dict[str, Any]:
    from kgfin.data import load_market
    from kgfin.evaluate.scores import read_ripple_scores
    from kgfin.fusion.run import run_fusion, write_outputs

    cfg = ctx.cfg.fusion
    market = load_market(ctx.data)
    table, meta = read_ripple_scores(ctx.run / "ripple_scores")  # the aligned model's table (ripple_scores stage)
    label = f"{meta['predictor']} ripple scores ({meta['events_scored']} news items, kgfin ripple scores)"
    run = run_fusion(market, cfg, ripple=table[["month", "ticker", "ripple"]], ripple_label=label, data_dir=ctx.data,
                     progress=ctx.progress)
    write_outputs(run, ctx.run / "fusion", cfg, command="kgfin demo", extra={"ripple_metadata": meta})
    models = run.table[~run.table["model"].str.contains("ceiling")]  # the planted-alpha row is not a model
    best = models.sort_values("ls_sharpe", ascending=False).iloc[0]
    return {"rows": len(models), "best LS Sharpe": f"{best['model']}{'' if best['ripple'] == 'none' else ' + ripple'} "
                                                  f"{best['ls_sharpe']:.2f}"}


def _report(ctx: Context) -> dict[str, Any]:
    from kgfin.report import build_report

    return {"path": str(build_report(ctx.run, max_events=ctx.cfg.report_events))}


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline: its function, the config sections it reads, the stages it builds on.

    The stage's key hashes its ``sections`` and the keys of ``key_from`` (default: ``after``),
    the earlier stages whose outputs it reads. ``after`` also says what must run first.
    """

    name: str
    run: Callable[[Context], dict[str, Any]]
    sections: tuple[str, ...]
    after: tuple[str, ...]
    title: str
    key_from: tuple[str, ...] | None = None


STAGES = (
    Stage("data", _data, ("seed", "synth"), (), "synthetic market + validation"),
    Stage("graphs", _graphs, ("graph",), ("data",), "monthly graphs -> embedded store"),
    Stage("instruct", _instruct, ("instruct", "align_months", "eval_months", "align.events"), ("graphs",),
          "instruction pairs"),
    Stage("inject", _inject, ("inject",), ("instruct",), "knowledge adapters (LoRA per month)"),
    # alignment reads the adapters of its own months only: the settings that make them, not the stage keys
    # (which also cover the evaluation months), so a new evaluation month does not restart the alignment
    Stage("align", _align, ("align", "align_months", "instruct", "inject"), ("inject",), "market alignment",
          key_from=("graphs",)),
    Stage("ripple_eval", _ripple_eval, ("ripple_eval", "eval_months"), ("align",), "ripple evaluation + baselines",
          key_from=("align", "inject")),
    Stage("ripple_scores", _ripple_scores, ("ripple_scores", "align_months", "fusion.features.rebalance_time"),
          ("align",), "ripple-score tables (aligned model)", key_from=("align", "inject")),
    Stage("fusion", _fusion, ("fusion", "seed"), ("ripple_scores",), "fusion / mixture models + deciles"),
    Stage("report", _report, ("report_events",), ("ripple_eval", "fusion"), "HTML report"),
)


# --- running ----------------------------------------------------------------------------------


@dataclass
class StageRecord:
    """What the manifest records for one stage."""

    name: str
    status: Literal["pending", "running", "done", "failed"]
    key: str
    seconds: float | None = None
    peak_rss_mb: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    reused: bool = False  # finished in an earlier invocation and skipped now


@dataclass
class PipelineResult:
    """A pipeline run: its directory, every stage's record, and the report path (if built)."""

    run_dir: Path
    stages: list[StageRecord]
    report: Path | None


def _section(cfg: PipelineConfig, dotted: str) -> Any:
    value: Any = cfg.model_dump(mode="json")
    for part in dotted.split("."):
        value = value[part]
    return value


def _stage_keys(cfg: PipelineConfig) -> dict[str, str]:
    keys: dict[str, str] = {}
    for stage in STAGES:
        blob = json.dumps({"sections": {s: _section(cfg, s) for s in stage.sections},
                           "after": [keys[a] for a in stage.key_from or stage.after]}, sort_keys=True)
        keys[stage.name] = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return keys


def _reset_peak_rss() -> None:
    """Start a stage's peak-memory count: hand freed heap back to the OS, then reset VmHWM (Linux)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed memory otherwise, inflating the next peak
    except (OSError, AttributeError):
        pass
    try:  # "5" resets the process's peak resident set size to the current one
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _write_manifest(run: Path, cfg: PipelineConfig, records: dict[str, StageRecord]) -> None:
    blob = json.dumps(cfg.model_dump(mode="json"), sort_keys=True)
    manifest = {
        "command": "kgfin demo", "profile": cfg.profile, "config": cfg.model_dump(mode="json"),
        "config_hash": hashlib.sha256(blob.encode()).hexdigest()[:16], "seed": cfg.seed,
        "git_revision": git_revision(), "versions": package_versions(),
        "stages": [{k: v for k, v in vars(r).items() if k != "reused"} for r in records.values()],  # in run order
    }
    tmp = run / f".{MANIFEST}.partial"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(run / MANIFEST)


def run_pipeline(
    cfg: PipelineConfig,
    run_dir: str | Path,
    *,
    stages: list[str] | None = None,
    progress: bool = True,
    on_stage: Callable[[Stage, StageRecord], None] | None = None,
) -> PipelineResult:
    """Run (or resume) the pipeline in ``run_dir``; ``stages`` limits it to some stages (and what they need).

    ``on_stage(stage, record)`` is called when a stage starts (status ``running``) and when it
    ends (``done``, ``failed`` or skipped as already done), e.g. to print progress.
    A failing stage is recorded as ``failed`` in the manifest and its exception re-raised.
    """
    cfg.check()
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    keys = _stage_keys(cfg)
    previous: dict[str, Any] = {}
    if (run / MANIFEST).exists():
        previous = {r["name"]: r for r in json.loads((run / MANIFEST).read_text()).get("stages", [])}
    wanted = _with_dependencies(stages) if stages else {s.name for s in STAGES}
    records = {s.name: StageRecord(s.name, "pending", keys[s.name]) for s in STAGES}
    for name, old in previous.items():
        if name in records and old.get("key") == keys[name] and old.get("status") == "done":
            records[name] = StageRecord(name, "done", keys[name], old.get("seconds"), old.get("peak_rss_mb"),
                                        old.get("summary", {}), reused=True)
    for stage in STAGES:
        rec = records[stage.name]
        if stage.name not in wanted:
            continue
        if rec.status == "done":
            log.info("stage %s: already done (key %s), skipped", stage.name, rec.key)
            if on_stage:
                on_stage(stage, rec)
            continue
        old = previous.get(stage.name, {})
        ctx = Context(run, cfg, progress, resume=old.get("key") == rec.key)
        rec.status = "running"
        _write_manifest(run, cfg, records)
        if on_stage:
            on_stage(stage, rec)
        _reset_peak_rss()
        start = time.perf_counter()
        try:
            rec.summary = stage.run(ctx)
        except BaseException as exc:
            rec.status, rec.error = "failed", f"{type(exc).__name__}: {exc}"
            rec.seconds = time.perf_counter() - start
            _write_manifest(run, cfg, records)
            raise
        rec.status, rec.seconds, rec.peak_rss_mb = "done", time.perf_counter() - start, _peak_rss_mb()
        _write_manifest(run, cfg, records)
        if on_stage:
            on_stage(stage, rec)
    report = records["report"].summary.get("path") if records["report"].status == "done" else None
    return PipelineResult(run, list(records.values()), Path(report) if report else None)


def _with_dependencies(names: list[str]) -> set[str]:
    by_name = {s.name: s for s in STAGES}
    unknown = sorted(set(names) - set(by_name))
    if unknown:
        raise ConfigError(f"unknown stage(s) {unknown}; stages are {[s.name for s in STAGES]}")
    out: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in out:
            out.add(name)
            todo.extend(by_name[name].after)
    return out
