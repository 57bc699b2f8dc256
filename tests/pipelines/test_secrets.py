"""Issue 16 (4): SEREN_KFP_TOKEN never travels over plain http to a remote host (unless --insecure),
and credentials in a URL never reach an error message (seren.errors.redact, applied by SerenError)."""

from __future__ import annotations

import pytest

import pipelines as P
from pipelines.framework import check_token_transport
from seren.cli import main
from seren.errors import ConfigError, SerenError, ServiceError, redact

REMOTE = "http://kfp.example.invalid:8080"


def _cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return int(exc.value.code or 0), capsys.readouterr().err


def test_token_refused_over_plain_http_to_a_remote_host(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("SEREN_KFP_TOKEN", "tok-123")
    with pytest.raises(ConfigError, match="refusing to send SEREN_KFP_TOKEN over plain http"):
        P.submit("features", REMOTE)
    code, err = _cli(capsys, "pipeline", "schedule", "features", "--host", REMOTE)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--insecure" in err and "Traceback" not in err
    # --insecure and https get past the check (and then fail on the unresolvable host, not on the token)
    with pytest.raises(ServiceError, match="unreachable"):
        P.submit("features", REMOTE, insecure=True, timeout=1.0)
    with pytest.raises(ServiceError, match="unreachable"):
        P.submit("features", REMOTE.replace("http://", "https://"), timeout=1.0)
    monkeypatch.delenv("SEREN_KFP_TOKEN")
    with pytest.raises(ServiceError, match="unreachable"):  # no token: nothing to protect
        P.submit("features", REMOTE, timeout=1.0)


def test_token_allowed_to_loopback_mocked_kfp_cluster(fake_kfp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEREN_KFP_TOKEN", "tok-123")
    res = P.submit("features", fake_kfp.url)
    assert res["run_id"] and len(fake_kfp.runs) == 1
    assert check_token_transport("http://localhost:8080") == "tok-123"
    assert check_token_transport("http://[::1]:8080") == "tok-123"


def test_credentials_in_urls_are_redacted_in_errors(capsys) -> None:
    host = "http://alice:s3cr3t@127.0.0.1:9"  # discard port: nothing listens
    with pytest.raises(ServiceError) as err:
        P.submit("features", host, timeout=1.0)
    assert "s3cr3t" not in err.value.line() and "http://***@127.0.0.1:9" in err.value.line()
    code, out = _cli(capsys, "pipeline", "submit", "features", "--host", host, "--timeout", "1")
    assert code != 0 and "s3cr3t" not in out and "***@" in out

    from serving.client import SerenClient

    for url in ("http://bob:pw-xyz@127.0.0.1:1", "bob:pw-xyz@127.0.0.1:1"):
        with pytest.raises(ConfigError) as err:
            SerenClient(url)
        assert "pw-xyz" not in err.value.line()
    assert redact("redis://:pw@h:6379/0 and https://u:p@x/y?a=1") == "redis://***@h:6379/0 and https://***@x/y?a=1"
    assert "hunter2" not in SerenError("connect cache:6379,password=hunter2", "retry").line()
