"""Issue 16 (4): the Redis password is used, never written: the rendered feature_store.yaml holds
${SEREN_REDIS_PASSWORD} (Feast's own loader expands it), errors never echo it."""

from __future__ import annotations

from pathlib import Path

import pytest

from seren.errors import ConfigError, ServiceError

PW = "s3cret-Pw_42"


@pytest.mark.integration
def test_redis_password_is_used_but_not_written(redis_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import redis
    from feast.repo_config import load_repo_config

    from feature_repo import store as fs

    admin = redis.Redis(host="127.0.0.1", port=redis_server.port)
    admin.config_set("requirepass", PW)
    admin.close()
    monkeypatch.delenv("SEREN_REDIS_PASSWORD", raising=False)
    monkeypatch.setenv("SEREN_REDIS_URL", f"redis://:{PW}@127.0.0.1:{redis_server.port}/0")
    data_dir = tmp_path / "features"
    store = fs.get_store("redis", data_dir)  # pings Redis with the password: it must have been sent
    assert f"password={PW}" in store.config.online_store.connection_string

    written = (data_dir / "feature_store.yaml").read_text()
    assert PW not in written and "password=${SEREN_REDIS_PASSWORD}" in written
    assert not [p for p in data_dir.rglob("*") if p.is_file() and PW.encode() in p.read_bytes()]

    # `feast -c DIR` reads the same file: the password comes from the environment at use
    monkeypatch.setenv("SEREN_REDIS_PASSWORD", PW)
    cfg = load_repo_config(data_dir, data_dir / "feature_store.yaml")
    assert cfg.online_store.connection_string.endswith(f"password={PW}")

    # the password can also come from the environment alone
    monkeypatch.setenv("SEREN_REDIS_URL", f"127.0.0.1:{redis_server.port}")
    fs.get_store("redis", data_dir)
    assert PW not in (data_dir / "feature_store.yaml").read_text()

    # a wrong password: one line that does not echo it
    monkeypatch.setenv("SEREN_REDIS_URL", f"redis://:wrong-{PW}@127.0.0.1:{redis_server.port}")
    with pytest.raises(ServiceError) as err:
        fs.get_store("redis", tmp_path / "other")
    assert PW not in err.value.line() and "\n" not in err.value.line()


def test_bad_redis_address_does_not_echo_the_password() -> None:
    from feature_repo.config import redis_endpoint

    with pytest.raises(ConfigError) as err:
        redis_endpoint(f"cache:notaport,password={PW}")
    assert PW not in err.value.line() and "password=***" in err.value.line()
