"""Train, evaluate and query SerenGPT, the serendipity judge (SERAL stage 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from seren.commands._common import JsonOpt, emit
from seren.commands._model_options import model_options
from seren.errors import ConfigError, DataError
from seren.io import ARTIFACT_MARKER, check_out_dir, is_artifact
from seren.serengpt.config import LoraTrainingConfig

NAME = "serengpt"
app = typer.Typer(no_args_is_help=True, help=__doc__)
_err = Console(stderr=True)


def _say(line: str) -> None:
    """Progress on stderr (task names and details are plain text, not rich markup)."""
    _err.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command()
@model_options(LoraTrainingConfig)
def train(
    settings: dict[str, Any],
    data: Path = typer.Option(..., "--data", help="Dataset directory (from `seren data generate/import-*`)."),
    out: Path = typer.Option(..., "--out", help="Pipeline root: the run's artifacts, run.log and summary.json."),
    force: bool = typer.Option(
        False, "--force", help="Write into --out even when it is a non-empty directory that is not a training run."
    ),
    threads: int = typer.Option(None, "--threads", min=1, help="torch threads per pipeline step (OMP_NUM_THREADS)."),
    human: Path = typer.Option(
        None, "--human", help="Serendipity-2018 survey dir/answers.csv: the shipped model's agreement with people."
    ),
    movies: Path = typer.Option(
        None, "--movies", help="With --human: the MovieLens folder the survey's movieIds join."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Run the serengpt_training pipeline locally on a dataset (kfp.local, exactly as `seren pipeline run
    serengpt_training --local`): profiles -> labels -> LoRA SFT -> IPO/DPO -> ablation + alignment gate ->
    export -> validate -> register + deploy to dev when validation passes.

    Progress goes to stderr, so --json keeps stdout clean without hiding it."""
    cfg = LoraTrainingConfig.model_validate(settings)  # the pipeline's training parameters, checked
    if not data.is_dir():
        raise DataError(f"dataset directory {data} does not exist", "run `seren data generate --out DIR` first")
    _check_run_dir(out, force)
    from seren.llm.base import is_base_model_alias, resolve_base_model

    if not is_base_model_alias(cfg.base_model):  # a path or cached hub name: refuse it before a run starts
        resolve_base_model(cfg.base_model)
    params: dict[str, Any] = {"source": "dataset", "path": str(data.resolve()), **cfg.model_dump()}
    if human is not None:
        from seren.data.survey import survey_path

        if not survey_path(human).is_file():
            raise DataError(f"survey file {survey_path(human)} does not exist", "pass the folder holding answers.csv")
        params["human_train_dir"] = str(human.resolve())
        params["human_train_movies_dir"] = str(movies.resolve()) if movies else ""
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ARTIFACT_MARKER).touch()  # a later run recognises its own directory
        summary = run_training(data, out, params, threads=threads, say=_say)
    except BaseException:
        _drop_created(out, created)
        raise
    result = {k: summary[k] for k in ("model_dir", "sft_model_dir", "aligned_model_dirs", "seconds", "run_dir")}
    result.update(
        {
            "metrics": summary.get("metrics"),
            "ablation": summary.get("ablation", {}).get("rows"),
            "selection": summary.get("selection"),  # the alignment gate's choice + calibration map
            "registered_version": summary.get("registered_version"),
            "out": str(out),
        }
    )
    human_text = f"SerenGPT model: {summary['model_dir']}\n" + summary.get("ablation_markdown", "")
    emit(result, as_json, human_text)


def run_training(
    data: Path, out: Path, params: dict[str, Any], threads: int | None = None, say: Any = print
) -> dict[str, Any]:
    """The serengpt_training pipeline through `pipelines.run_local` (the one definition of the DAG), with
    one line per task on `say`; returns (and writes to out/summary.json) where its models and reports are.

    The models' cards get the dataset they were trained on (`source`), so `seren serengpt score` finds it."""
    import os
    import time

    import pipelines
    from seren.io import write_json
    from seren.progress import Display
    from seren.serengpt.recipe import recipe_from_card
    from seren.serengpt.sft import read_model_card, update_model_card

    line = Display()

    def on_event(kind: str, task: str, detail: str) -> None:
        if kind == "progress":
            line.update(task, detail)
        elif kind in ("start", "done", "failed"):
            line.stop()
            say(f"{kind:6s} {task} {detail}".rstrip())

    env_before = os.environ.get("OMP_NUM_THREADS")
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)  # the component subprocesses inherit it
    t0 = time.monotonic()
    try:
        res = pipelines.run_local("serengpt_training", params, pipeline_root=out, on_event=on_event)
    finally:
        line.stop()
        if threads and env_before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        elif threads:
            os.environ["OMP_NUM_THREADS"] = env_before
    by_task = {name.split("/")[-1]: t for name, t in res["tasks"].items()}

    def artifact(task: str, name: str) -> str:
        return by_task[task]["artifacts"][name]["uri"]

    results_dir = Path(artifact("evaluate", "results"))
    ablation = json.loads((results_dir / "ablation.json").read_text())
    report = Path(artifact("evaluate", "report")).read_text()
    sft, aligned, final = artifact("distill", "model"), artifact("align", "model"), artifact("evaluate", "model")
    recipe = recipe_from_card(read_model_card(sft)) or {}
    source = {
        "dataset_dir": str(data.resolve()),
        "token_budget": recipe.get("token_budget"),  # the pipeline's default unless given
        **{k: res["params"][k] for k in ("label_frac", "snapshots", "per_user_cutoffs") if k in res["params"]},
        "training_data_dir": artifact("label-data", "training_data"),
    }
    for d in (sft, aligned, final):
        update_model_card(d, source=source)
    link = out / "model"  # a stable path to this run's shipped model (`--model <out>/model`)
    tmp = out / ".model.link"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(Path(final).resolve(), target_is_directory=True)
    os.replace(tmp, link)
    register = by_task.get("register-model", {}).get("parameters", {})
    summary: dict[str, Any] = {
        "pipeline": res["pipeline"],
        "params": res["params"],
        "run_dir": res["run_dir"],
        "log": res["log"],
        "model_dir": final,
        "model_link": str(link),
        "sft_model_dir": sft,
        "aligned_model_dirs": {res["params"]["loss"]: aligned},
        "base_model_path": res["params"]["base_model"],
        "training_data_dir": source["training_data_dir"],
        "eval_dir": str(results_dir),
        "ablation": {k: v for k, v in ablation.items() if k != "selection"},
        "ablation_markdown": report,
        "selection": ablation.get("selection"),
        "metrics": ablation["rows"][ablation["selection"]["chosen"]] if ablation.get("selection") else None,
        "registered_version": register.get("version"),
        "seconds": {"total": round(time.monotonic() - t0, 1)},
    }
    write_json(out / "summary.json", json.loads(json.dumps(summary, default=str)))
    return summary


_RUN_ENTRIES = ("summary.json", "run.log", "result.json")


def _check_run_dir(out: Path, force: bool) -> None:
    """A training --out is new, empty, or an earlier run (resumed); never the cwd, a file, or a user's folder."""
    check_out_dir(out, force=True)  # the cwd / its parents / a file / a path under a file: always refused
    if force or not out.is_dir() or not any(out.iterdir()):
        return
    if is_artifact(out) or any((out / n).exists() for n in _RUN_ENTRIES):
        return
    raise ConfigError(
        f"--out {out} is a non-empty directory that is not a `seren serengpt train` run",
        "pass a new or empty directory (or an earlier run's --out), or add --force to write into it",
    )


def _drop_created(out: Path, created: bool) -> None:
    """After a failure: remove an --out this run created (a failed command leaves nothing behind)."""
    if created and out.is_dir():
        shutil.rmtree(out, ignore_errors=True)


def _load_run(run: Path) -> dict[str, Any]:
    f = run / "summary.json"
    if not f.is_file():
        raise DataError(f"{run} has no summary.json", "pass the --out directory of `seren serengpt train`")
    return json.loads(f.read_text())


@app.command()
def evaluate(
    run: Path = typer.Option(
        None, "--run", help="Output directory of `seren serengpt train` (re-evaluates its models)."
    ),
    model: Path = typer.Option(None, "--model", help="A SerenGPT model dir to evaluate (with --training-data)."),
    training_data: Path = typer.Option(None, "--training-data", help="Training-data dir (held-out candidates)."),
    data: Path = typer.Option(None, "--data", help="Dataset dir for the popularity / heuristic baselines."),
    base_model: str = typer.Option(None, "--base-model", help="Zero-shot row: base model name or dir ('' to skip)."),
    out: Path = typer.Option(None, "--out", help="Where to write ablation.json/.md/.html (default: <run>/eval)."),
    human: Path = typer.Option(
        None, "--human", help="Serendipity-2018 survey dir/answers.csv: agreement with human judgments instead."
    ),
    movies: Path = typer.Option(
        None, "--movies", help="With --human: the ml-latest(-small) folder the survey's movieIds join."
    ),
    token_budget: int = typer.Option(None, "--token-budget", min=8, help="With --human: override the cards' budget."),
    n_boot: int = typer.Option(1000, "--n-boot", min=10, help="With --human: bootstrap resamples of users."),
    definition: str = typer.Option("any", "--definition", help="With --human: any | strict | motivational | a flag."),
    as_json: bool = JsonOpt,
) -> None:
    """Ablation table on held-out users (baselines, zero-shot, the given models), or with --human the
    agreement with people's serendipity judgments (leave-one-out profiles, bootstrap intervals)."""
    if human is not None:
        _evaluate_human(run, model, base_model, human, movies, out, token_budget, n_boot, definition, as_json)
        return
    from seren.data.dataset import load_dataset
    from seren.serengpt.evaluate import run_ablation, write_ablation
    from seren.serengpt.labeling import TrainingData
    from seren.serengpt.sft import read_model_card

    models: dict[str, str] = {}
    if run is not None:
        summary = _load_run(run)
        training_data = training_data or Path(summary["training_data_dir"])
        base = base_model if base_model is not None else summary.get("base_model_path", "")
        if base:
            models["zero-shot base LLM"] = base
        models["SFT"] = summary["sft_model_dir"]
        models.update({f"SFT+{k.upper()}": v for k, v in summary.get("aligned_model_dirs", {}).items()})
        if model is not None:
            models[str(model)] = str(model)
        out = out or run / "eval"
    elif model is not None and training_data is not None:
        card = read_model_card(model)
        base = base_model if base_model is not None else card.get("base_model", "")
        if base:
            models["zero-shot base LLM"] = base
        models[card.get("stage", "model").upper().replace("SFT+", "SFT+")] = str(model)
        out = out or model.parent / "eval"
    else:
        raise ConfigError("nothing to evaluate", "pass --run DIR, or --model DIR with --training-data DIR")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory", "pass a directory for the ablation reports")
    td = TrainingData.load(training_data)
    ds = load_dataset(data) if data is not None else None
    results, md = run_ablation(td.eval_candidates, ds, models, progress=not as_json)
    paths = write_ablation(results, md, out)
    payload = {k: v for k, v in results.items() if k != "scores"} | {"paths": {k: str(v) for k, v in paths.items()}}
    emit(payload, as_json, md)


def _evaluate_human(
    run: Path | None,
    model: Path | None,
    base_model: str | None,
    human: Path,
    movies: Path | None,
    out: Path | None,
    token_budget: int | None,
    n_boot: int,
    definition: str,
    as_json: bool,
) -> None:
    from seren.data.movielens import load_movielens
    from seren.data.survey import load_survey, survey_path
    from seren.serengpt.human import card_section, evaluate_human, write_human
    from seren.serengpt.sft import CARD_JSON, update_model_card

    if movies is None:
        raise ConfigError("--human needs --movies", "pass the ml-latest-small folder the survey's movieIds join")
    if not survey_path(human).is_file():
        raise DataError(f"survey file {survey_path(human)} does not exist", "pass the folder holding answers.csv")
    models: dict[str, str] = {}
    if base_model:
        models["zero-shot base LLM"] = base_model
    if run is not None:
        models["SerenGPT"] = _load_run(run)["model_dir"]
    if model is not None:
        models["SerenGPT" if "SerenGPT" not in models else str(model)] = str(model)
    if not models:
        raise ConfigError("nothing to judge against the survey", "pass --model DIR, --run DIR or --base-model NAME")
    out = out or (Path(models[list(models)[-1]]).parent / "human" if model or run else Path("human-agreement"))
    catalogue = load_movielens(movies)
    survey = load_survey(human, catalogue, definition)
    _err.print(
        f"survey: {survey.report['n_labels']} judgments of {survey.report['n_users']} users "
        f"({survey.report['n_without_movie']} rows without a movie dropped)"
    )
    results, md, per_row = evaluate_human(
        survey,
        catalogue,
        models,
        token_budget=token_budget,
        n_boot=n_boot,
        progress=True,
        on_row=lambda name, secs: _err.print(f"[bold]{name}[/bold] scored in {secs:.0f}s"),
    )
    paths = write_human(results, md, out, per_row)
    last = list(models)[-1]
    target = Path(models[last])
    if (target / CARD_JSON).is_file():  # the model under test carries its human agreement in its card
        update_model_card(target, human_agreement=card_section(results, last), human_agreement_markdown=md)
    emit({**results, "paths": {k: str(v) for k, v in paths.items()}}, as_json, md)


@app.command()
def score(
    model: Path = typer.Option(..., "--model", help="SerenGPT model directory (or 'smollm2' for zero-shot)."),
    user: str = typer.Option(..., "--user", help="User id."),
    items: str = typer.Option(..., "--items", help="Comma-separated candidate item ids."),
    data: Path = typer.Option(None, "--data", help="Dataset dir (default: the one the model was trained on)."),
    token_budget: int = typer.Option(None, "--token-budget", help="Profile token budget (default: as in training)."),
    history: str = typer.Option(
        None, "--history", help="Comma-separated item ids: build the profile from these of the user's events only."
    ),
    exclude: str = typer.Option(
        None, "--exclude", help="Comma-separated item ids left out of the profile ('candidates': the --items)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """P(serendipitous) of each candidate for a user, with the profile built from the dataset
    (whole history, an explicit --history, or without the --exclude items)."""
    from seren.serengpt.evaluate import score_user_items

    ids = [i.strip() for i in items.split(",") if i.strip()]
    hist = [i.strip() for i in history.split(",") if i.strip()] if history is not None else None
    excl = [i.strip() for i in exclude.split(",") if i.strip()] if exclude is not None else None
    if excl == ["candidates"]:
        excl = ids
    rows, profile = score_user_items(model, user, ids, data, token_budget, history=hist, exclude=excl)
    payload = {"user_id": user, "profile_text": profile, "scores": rows}
    width = max(len(r["item_id"]) for r in rows)
    human = "\n".join(f"{r['item_id']:<{width}}  {r['score']:.4f}  {r['title']}" for r in rows)
    emit(payload, as_json, human)
