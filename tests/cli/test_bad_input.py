"""Bad input to every `seren` command: one line `error: <problem>. Fix: <fix>`, a non-zero exit (2 for
usage and input errors, 3 for an unreachable server), no traceback, and no file created or changed.

Each case runs in-process through `seren.cli.main` (the console-script entry point) with a fresh
working directory and SEREN_HOME under `tmp_path`; the directory trees the command could touch
(the cwd, SEREN_HOME, the shared tiny dataset) are snapshotted before and after. Three cases run the
real `seren` executable in a subprocess. No case loads a model or starts a server.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from seren.cli import main

SEREN = Path(sys.executable).with_name("seren")


@pytest.fixture(scope="module")
def tiny_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid 3-user dataset written by hand (the generator is not what these tests are about)."""
    from seren.data import Dataset, save_dataset

    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    inter = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u2", "u3", "u3"],
            "item_id": ["i1", "i2", "i2", "i3", "i1", "i3"],
            "event": ["click", "like", "click", "skip", "rating", "click"],
            "rating": [None, None, None, None, 4.5, None],
            "timestamp": [t0 + pd.Timedelta(hours=h) for h in range(6)],
        }
    )
    items = pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3"],
            "title": ["A", "B", "C"],
            "text": ["a book", "a film", "a song"],
            "category": ["Books/Fiction", "Film/Drama", "Music/Jazz"],
        }
    )
    out = tmp_path_factory.mktemp("bad_input") / "tiny_ds"
    save_dataset(Dataset(interactions=inter, items=items).validate(), out)
    return out


def snapshot(*roots: Path) -> dict[str, tuple[str, str]]:
    """Every path under the roots -> (kind, content hash): files, directories and links."""
    out: dict[str, tuple[str, str]] = {}
    for root in roots:
        if not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for d in dirnames:
                out[os.path.join(dirpath, d)] = ("dir", "")
            for f in filenames:
                p = Path(dirpath) / f
                kind = "link" if p.is_symlink() else "file"
                out[str(p)] = (kind, hashlib.sha256(p.read_bytes()).hexdigest() if kind == "file" else os.readlink(p))
    return out


@dataclass
class Env:
    """The sandbox a case runs in: cwd = `tmp`, SEREN_HOME = `tmp/home`, and a few prepared paths."""

    tmp: Path
    ds: Path

    @property
    def home(self) -> Path:
        return self.tmp / "home"

    @property
    def file(self) -> str:  # a plain file where a directory is expected
        return str(self.tmp / "a_file.txt")

    @property
    def userdir(self) -> str:  # a user's own non-empty directory
        return str(self.tmp / "my_documents")


def _corrupt_manifest(env: Env) -> str:
    import shutil

    d = env.tmp / "ds_bad_manifest"
    shutil.copytree(env.ds, d)
    (d / "manifest.json").write_text('{"tables": {"interactions": 6,')  # truncated JSON
    return str(d)


def _corrupt_parquet(env: Env) -> str:
    import shutil

    d = env.tmp / "ds_bad_parquet"
    shutil.copytree(env.ds, d)
    (d / "items.parquet").write_bytes(b"PAR1 this is not parquet")
    return str(d)


def _empty_dir(env: Env) -> str:
    d = env.tmp / "empty"
    d.mkdir()
    return str(d)


def _ml_dir(env: Env) -> str:
    """A MovieLens-shaped folder whose ratings.csv lacks the rating column."""
    d = env.tmp / "ml"
    d.mkdir()
    (d / "ratings.csv").write_text("userId,movieId,timestamp\n1,1,964982703\n")
    (d / "movies.csv").write_text("movieId,title,genres\n1,Toy Story (1995),Animation\n")
    return str(d)


def _old_offline_table(env: Env) -> None:
    """Offline tables a bad pipeline run must leave alone (the snapshot compares their bytes)."""
    d = env.home / "features" / "offline"
    d.mkdir(parents=True)
    (d / "user_stats.parquet").write_bytes(b"yesterday's table")


def _corrupt_registry(env: Env) -> None:
    """A registry with an unreadable manifest (v1), pointer (staging) and audit line (line 2)."""
    root = env.home / "registry"
    (root / "serengpt" / "versions" / "1").mkdir(parents=True)
    (root / "serengpt" / "versions" / "1" / "manifest.json").write_text('{"version": 1,')
    (root / "serengpt" / "envs").mkdir()
    (root / "serengpt" / "envs" / "staging.json").write_text("{bad")
    rec = '{"at": "2024-01-01T00:00:00", "who": "me", "action": "promote", "model": "serengpt", "version": 1, '
    rec += '"to_env": "dev", "result": "ok"}\n'
    (root / "audit.jsonl").write_text(rec + "not json\n" + rec)


def _with(setup: Callable[[Env], None], argv: list[str]) -> Callable[[Env], list[str]]:
    def build(env: Env) -> list[str]:
        setup(env)
        return list(argv)

    return build


@dataclass
class Case:
    id: str
    argv: Callable[[Env], list[str]]
    names: str  # a fragment of the one-line error that names the problem
    code: int = 2
    env: dict[str, str | None] = field(default_factory=dict)


def C(id: str, argv: Callable[[Env], list[str]] | list[str], names: str, code: int = 2, **env: str | None) -> Case:
    return Case(id, argv if callable(argv) else (lambda e, a=argv: list(a)), names, code, env)


CASES = [
    # ---- usage errors raised by typer's vendored click (typer._click.exceptions)
    C("root-unknown-command", ["nope"], "No such command 'nope'"),
    C("root-unknown-option", ["--nope"], "No such option: --nope"),
    C("data-unknown-command", ["data", "nope"], "No such command 'nope'"),
    C("data-generate-missing-out", ["data", "generate"], "Missing option '--out'"),
    C("data-generate-bad-int", ["data", "generate", "--out", "x", "--users", "abc"], "'--users'"),
    C("data-generate-unknown-option", ["data", "generate", "--out", "x", "--bogus"], "No such option: --bogus"),
    C("explore-n-out-of-range", ["explore", "--user", "u1", "--n", "0"], "'--n'"),
    C("serve-http-port-70000", ["serve", "--http-port", "70000"], "'--http-port'"),
    C("serve-grpc-port-negative", ["serve", "--grpc-port", "-1"], "'--grpc-port'"),
    C("serve-startup-timeout-zero", ["serve", "--startup-timeout", "0"], "'--startup-timeout'"),
    C("nearline-threshold-out-of-range", ["nearline", "run", "--threshold", "2"], "'--threshold'"),
    C("nearline-batch-size-zero", ["nearline", "run", "--batch-size", "0"], "'--batch-size'"),
    C("features-get-missing-ids", ["features", "get", "--view", "user_stats"], "Missing option '--ids'"),
    C("registry-verify-missing-version", ["registry", "verify"], "Missing option '--version'"),
    C("registry-verify-bad-version", ["registry", "verify", "--version", "x"], "'--version'"),
    C("promote-bad-version", ["promote", "--version", "one"], "'--version'"),
    C("drift-bad-k", ["drift", "--k", "ten"], "'--k'"),
    C("recommend-float-k", ["recommend", "--user", "u1", "--k", "1.5"], "'--k'"),
    C("query-bad-timeout", ["query", "--timeout", "abc"], "'--timeout'"),
    C("pipeline-run-missing-name", ["pipeline", "run"], "Missing argument 'name'"),
    C("serengpt-train-missing-out", ["serengpt", "train", "--data", "x"], "Missing option '--out'"),
    C("profiles-build-missing-data", ["profiles", "build", "--out", "p.parquet"], "Missing option '--data'"),
    C("demo-extra-argument", ["demo", "extra"], "unexpected extra argument"),
    # ---- data: output directories, sizes, corrupt datasets
    C("data-generate-out-dot", ["data", "generate", "--out", "."], "current directory"),
    C("data-generate-out-dotdot", ["data", "generate", "--out", ".."], "current directory"),
    C("data-generate-out-user-dir", lambda e: ["data", "generate", "--out", e.userdir], "seren did not write"),
    C("data-generate-out-is-file", lambda e: ["data", "generate", "--out", e.file], "is a file"),
    C("data-generate-out-under-file", lambda e: ["data", "generate", "--out", e.file + "/ds"], "is a file"),
    C("data-generate-users-1e12", ["data", "generate", "--out", "x", "--users", str(10**12)], "--users 1000000000000"),
    C("data-generate-users-zero", ["data", "generate", "--out", "x", "--users", "0"], "n_users must be >= 1"),
    C("data-generate-shift-inf", ["data", "generate", "--out", "x", "--shift", "inf"], "not a finite number"),
    C("data-generate-too-few-items", ["data", "generate", "--out", "x", "--items", "3"], "n_items must be"),
    C(
        "data-generate-exposures",
        ["data", "generate", "--out", "x", "--users", "1000", "--events-per-user", "1000000"],
        "exposures",
    ),
    C("data-validate-corrupt-manifest", lambda e: ["data", "validate", _corrupt_manifest(e)], "not valid JSON"),
    C("data-validate-corrupt-parquet", lambda e: ["data", "validate", _corrupt_parquet(e)], "cannot read parquet"),
    C("data-validate-file", lambda e: ["data", "validate", e.file], "is a file"),
    C("data-validate-missing", ["data", "validate", "no_such_dir"], "does not exist"),
    C("data-validate-empty-dir", lambda e: ["data", "validate", _empty_dir(e)], "no interactions.parquet"),
    C(
        "data-import-csv-bad-map",
        ["data", "import-csv", "--interactions", "x.csv", "--out", "o", "--map", "x"],
        "--map",
    ),
    C(
        "data-import-csv-out-user-dir",
        lambda e: ["data", "import-csv", "--interactions", "x.csv", "--out", e.userdir],
        "seren did not write",
    ),
    C("data-import-csv-missing-file", ["data", "import-csv", "--interactions", "x.csv", "--out", "o"], "x.csv"),
    C("data-import-movielens-missing", ["data", "import-movielens", "no_ml", "--out", "o"], "no_ml"),
    C(
        "data-import-movielens-out-dot",
        lambda e: ["data", "import-movielens", _ml_dir(e), "--out", "."],
        "current directory",
    ),
    C("data-import-movielens-bad-columns", lambda e: ["data", "import-movielens", _ml_dir(e), "--out", "o"], "rating"),
    # ---- features
    C("features-apply-bogus-target", ["features", "apply", "--target", "bogus"], "unknown feature store target"),
    C("features-apply-dir-is-file", lambda e: ["features", "apply", "--features-dir", e.file], "is a file"),
    C(
        "features-apply-as-of-overflow",
        lambda e: ["features", "apply", "--data", str(e.ds), "--as-of", "99999999999999"],
        "cannot parse time",
    ),
    C("features-apply-as-of-year-9999", ["features", "apply", "--as-of", "9999-12-31"], "out of range"),
    C("features-get-new-dir", ["features", "get", "--view", "user_stats", "--ids", "u1"], "no feature store"),
    C("features-get-bad-view", ["features", "get", "--view", "nope", "--ids", "u1"], "nope"),
    C("features-get-empty-ids", ["features", "get", "--view", "user_stats", "--ids", " , "], "--ids is empty"),
    C(
        "features-get-huge-max-age",
        ["features", "get", "--view", "user_stats", "--ids", "u1", "--max-age", "99999999999999d"],
        "longer than 100 years",
    ),
    C("features-get-bad-max-age", ["features", "get", "--view", "user_stats", "--ids", "u1", "--max-age", "1x"], "1x"),
    C("features-materialize-nat", ["features", "materialize", "--end", "NaT"], "not a time"),
    C("features-materialize-bad-view", ["features", "materialize", "--view", "bogus"], "bogus"),
    C("features-materialize-new-dir", ["features", "materialize"], "no feature store"),
    # ---- pipeline
    C("pipeline-run-not-local", ["pipeline", "run", "features"], "only runs locally"),
    C(
        "pipeline-run-bogus-feast-target",
        _with(_old_offline_table, ["pipeline", "run", "features", "--local", "--param", "feast_target=bogus"]),
        "feast_target",
    ),
    C("pipeline-run-unknown", ["pipeline", "run", "nope", "--local"], "nope"),
    C("pipeline-run-param-no-equals", ["pipeline", "run", "features", "--local", "--param", "x"], "KEY=VALUE"),
    C("pipeline-run-param-bad-int", ["pipeline", "run", "features", "--local", "--param", "n_users=abc"], "n_users"),
    C("pipeline-compile-nothing", ["pipeline", "compile"], "exactly one of NAME or --all"),
    C("pipeline-compile-out-file", lambda e: ["pipeline", "compile", "features", "--out", e.file], "is a file"),
    C("pipeline-submit-no-host", ["pipeline", "submit", "features"], "no Kubeflow Pipelines host", SEREN_KFP_HOST=None),
    C(
        "pipeline-schedule-bad-every",
        ["pipeline", "schedule", "features", "--host", "http://127.0.0.1:9", "--every", "0m"],
        "--every",
    ),
    # ---- serengpt, profiles
    C("serengpt-train-missing-data", ["serengpt", "train", "--data", "nope", "--out", "o"], "does not exist"),
    C(
        "serengpt-train-out-user-dir",
        lambda e: ["serengpt", "train", "--data", str(e.ds), "--out", e.userdir],
        "not a `seren serengpt train` run",
    ),
    C(
        "serengpt-train-out-dot",
        lambda e: ["serengpt", "train", "--data", str(e.ds), "--out", "."],
        "current directory",
    ),
    C(
        "serengpt-train-bad-loss",
        lambda e: ["serengpt", "train", "--data", str(e.ds), "--out", "o", "--loss", "x"],
        "--loss",
    ),
    C(
        "serengpt-train-zero-steps",
        lambda e: ["serengpt", "train", "--data", str(e.ds), "--out", "o", "--max-steps", "0"],
        "'--max-steps'",
    ),
    C("serengpt-evaluate-nothing", ["serengpt", "evaluate"], "nothing to evaluate"),
    C("serengpt-evaluate-bad-run", ["serengpt", "evaluate", "--run", "nope"], "no summary.json"),
    C(
        "profiles-build-out-is-dir",
        lambda e: ["profiles", "build", "--data", str(e.ds), "--out", e.userdir],
        "is a directory",
    ),
    C(
        "profiles-build-out-user-file",
        lambda e: ["profiles", "build", "--data", str(e.ds), "--out", e.file],
        "not a profiles file seren wrote",
    ),
    C(
        "profiles-build-bad-backend",
        lambda e: ["profiles", "build", "--data", str(e.ds), "--out", "p.parquet", "--backend", "gpt9"],
        "unknown backend",
    ),
    C("profiles-show-missing", ["profiles", "show", "--profiles", "nope.parquet", "--user", "u1"], "nope.parquet"),
    # ---- explore, serve, query
    C("explore-nothing-published", ["explore", "--user", "u1"], "exploration"),
    C("serve-missing-repo", ["serve", "no_repo"], "model repository"),
    C("serve-same-ports", ["serve", "--http-port", "9000", "--grpc-port", "9000"], "both 9000"),
    C("query-no-user", ["query"], "exactly one of --user or --profile-text"),
    C("query-no-items", ["query", "--profile-text", "likes jazz"], "exactly one of --items or --item-text"),
    C("query-empty-profile", ["query", "--profile-text", " ", "--item-text", "a book"], "--profile-text is empty"),
    C("query-user-new-store", ["query", "--user", "u1", "--items", "i1"], "no feature store"),
    # ---- registry, promote
    C("registry-register-missing-dir", ["registry", "register", "--model-dir", "nope"], "does not exist"),
    C("registry-register-bad-meta", ["registry", "register", "--meta", "novalue"], "KEY=VALUE"),
    C("registry-verify-unknown-version", ["registry", "verify", "--version", "7"], "not found"),
    C("registry-show-empty", ["registry", "show", "serengpt"], "serengpt"),
    C("registry-bad-model-name", ["registry", "show", "../etc"], "../etc"),
    C("promote-no-version", ["promote"], "promote needs --version and --to"),
    C("promote-rollback-with-version", ["promote", "--rollback", "--version", "1"], "--rollback takes --env"),
    C("promote-rollback-no-env", ["promote", "--rollback"], "--rollback needs --env"),
    C("promote-rollback-nothing-deployed", ["promote", "--rollback", "--env", "dev"], "nothing is deployed"),
    C("promote-env-without-rollback", ["promote", "--env", "dev"], "--env is for --rollback"),
    C("promote-unknown-env", ["promote", "--version", "1", "--to", "moon"], "moon"),
    C("promote-unknown-version", ["promote", "--version", "9", "--to", "dev"], "not found"),
    # registry damage (seren/registry: one-line errors for corrupt manifests, pointers, audit lines)
    C("registry-corrupt-manifest-show", _with(_corrupt_registry, ["registry", "show", "--version", "1"]), "corrupt"),
    C(
        "registry-corrupt-manifest-verify",
        _with(_corrupt_registry, ["registry", "verify", "--version", "1"]),
        "corrupt",
    ),
    C("registry-corrupt-pointer-envs", _with(_corrupt_registry, ["registry", "envs"]), "staging.json is corrupt"),
    C("registry-corrupt-audit-line", _with(_corrupt_registry, ["registry", "audit"]), "line 2 is corrupt"),
    C(
        "promote-corrupt-manifest",
        _with(_corrupt_registry, ["promote", "--version", "1", "--to", "dev"]),
        "manifest.json is corrupt",
    ),
    C(
        "promote-rollback-corrupt-pointer",
        _with(_corrupt_registry, ["promote", "--rollback", "--env", "staging"]),
        "staging.json is corrupt",
    ),
    # ---- nearline
    C("nearline-once-and-every", ["nearline", "run", "--once", "--every", "1m"], "mutually exclusive"),
    C("nearline-bad-every", ["nearline", "run", "--every", "0"], "--every"),
    C("nearline-huge-every", ["nearline", "run", "--every", "99999999999999d"], "--every"),
    C("nearline-bad-protocol", ["nearline", "run", "--protocol", "ftp"], "ftp"),
    C("nearline-bad-lookback", ["nearline", "run", "--initial-lookback", "99999999999999d"], "lookback"),
    C("nearline-missing-data", ["nearline", "run", "--data", "nope"], "does not exist"),
    C("nearline-status-dir-is-file", lambda e: ["nearline", "status", "--features-dir", e.file], "is a file"),
    # ---- recommend
    C("recommend-new-dir", ["recommend", "--user", "u1"], "no feature store"),
    C("recommend-k-zero", ["recommend", "--user", "u1", "--k", "0"], "k=0 is out of range"),
    C("recommend-now-overflow", ["recommend", "--user", "u1", "--now", "99999999999999"], "cannot parse time"),
    C("recommend-bad-max-age", ["recommend", "--user", "u1", "--max-age", "soon"], "soon"),
    C("recommend-bogus-target", ["recommend", "--user", "u1", "--target", "bogus"], "unknown feature store target"),
    C("recommend-dir-is-file", lambda e: ["recommend", "--user", "u1", "--features-dir", e.file], "is a file"),
    # ---- drift
    C("drift-zero-window", ["drift", "--window", "0d"], "--window"),
    C("drift-huge-window", ["drift", "--window", "99999999999999d"], "longer than 100 years"),
    C("drift-end-overflow", ["drift", "--end", "99999999999999"], "cannot parse time"),
    C("drift-bad-horizon", ["drift", "--feedback-horizon", "abc"], "--feedback-horizon 'abc'"),
    C("drift-reports-dir-is-file", lambda e: ["drift", "--reports-dir", e.file], "is a file"),
    C("drift-no-reference", ["drift"], "reference"),
]


@pytest.fixture
def env(tmp_path: Path, tiny_ds: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    e = Env(tmp_path, tiny_ds)
    (tmp_path / "a_file.txt").write_text("not a directory\n")
    (tmp_path / "my_documents").mkdir()
    (tmp_path / "my_documents" / "thesis.txt").write_text("years of work\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEREN_HOME", str(e.home))
    for var in ("SEREN_FEAST_TARGET", "SEREN_REGISTRY", "SEREN_ENVIRONMENTS", "SEREN_TRITON_URL", "SEREN_KFP_HOST"):
        monkeypatch.delenv(var, raising=False)
    return e


def run_main(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capfd.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capfd.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else 1), out, err


def check_one_line(code: int, out: str, err: str, want_code: int, names: str) -> None:
    assert "Traceback" not in out + err, err
    assert code == want_code, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and ". Fix: " in lines[0], lines[0]
    assert names in lines[0], (names, lines[0])


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(
    case: Case, env: Env, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in case.env.items():
        monkeypatch.delenv(k, raising=False) if v is None else monkeypatch.setenv(k, v)
    argv = case.argv(env)  # may prepare inputs (a corrupt copy of the dataset, ...) before the snapshot
    before = snapshot(env.tmp, env.ds)
    code, out, err = run_main(argv, capfd)
    check_one_line(code, out, err, case.code, case.names)
    assert snapshot(env.tmp, env.ds) == before


def test_suite_covers_every_command_group() -> None:
    from seren.cli import app

    groups = {g.name for g in app.registered_groups} | {c.name for c in app.registered_commands}
    covered = {c.id.split("-")[0] for c in CASES}
    assert len(CASES) >= 60
    assert groups - covered <= {"simulate"}, groups - covered  # new commands get their own cases


def run_ok(argv: list[str], capfd: pytest.CaptureFixture[str]) -> str:
    """Run a command that must succeed; its stdout."""
    capfd.readouterr()
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code in (0, None), capfd.readouterr().err
    return capfd.readouterr().out


def test_force_replaces_a_user_dir_only_when_asked(env: Env, capfd: pytest.CaptureFixture[str]) -> None:
    """--out on a user's folder: refused (folder intact); --force replaces it; then it is seren's."""
    from seren.io import ARTIFACT_MARKER

    src = env.tmp / "src.csv"
    pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["i1", "i2"], "timestamp": [1, 2]}).to_csv(src, index=False)
    argv = ["data", "import-csv", "--interactions", str(src), "--event-default", "click", "--out", env.userdir]
    code, _, err = run_main(argv, capfd)
    assert code == 2 and (Path(env.userdir) / "thesis.txt").read_text() == "years of work\n", err
    run_ok([*argv, "--force"], capfd)
    names = {p.name for p in Path(env.userdir).iterdir()}
    assert "thesis.txt" not in names and {"interactions.parquet", ARTIFACT_MARKER} <= names
    out = run_ok([*argv, "--json"], capfd)  # seren's own output now: replaced without --force
    assert json.loads(out)["tables"]["interactions"] == 2


def test_failed_train_leaves_no_out(env: Env, capfd: pytest.CaptureFixture[str]) -> None:
    """A base model that does not exist fails after the cheap checks: the --out it made is removed."""
    argv = ["serengpt", "train", "--data", str(env.ds), "--out", "run", "--base-model", "./no/such/model"]
    code, _, err = run_main(argv, capfd)
    assert code == 2 and "does not exist" in err, err
    assert not (env.tmp / "run").exists()


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["data", "generate"], "Missing option '--out'"),
        (["data", "generate", "--out", "."], "current directory"),
        (["serve", "--http-port", "70000"], "'--http-port'"),
    ],
    ids=["missing-option", "out-dot", "port-range"],
)
def test_real_entry_point(argv: list[str], names: str, env: Env) -> None:
    before = snapshot(env.tmp)
    res = subprocess.run([str(SEREN), *argv], capture_output=True, text=True, timeout=120, cwd=env.tmp)
    check_one_line(res.returncode, res.stdout, res.stderr, 2, names)
    assert res.stderr.startswith("error: seren ") or "current directory" in res.stderr
    assert snapshot(env.tmp) == before
