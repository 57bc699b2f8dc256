"""The Google Cloud Storage client and its error mapping (platform layer): the gs:// registry and the
nearline watermark use the same client and the same one-line errors."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from seren.errors import ConfigError, ServiceError


def gcs_errors(what: str, uri: str):  # noqa: ANN202 - context manager
    """Google Cloud Storage failures inside the block -> one-line seren errors naming `what` and `uri`
    (a lost `if_generation_match` precondition is re-raised for the caller's compare-and-swap)."""

    @contextlib.contextmanager
    def wrap() -> Iterator[None]:
        from google.api_core import exceptions as gexc

        try:
            yield
        except gexc.PreconditionFailed:
            raise  # the caller turns a lost compare-and-swap into a ConflictError
        except (gexc.Forbidden, gexc.Unauthorized) as exc:
            raise ServiceError(
                f"access to {uri} denied while trying to {what} ({exc.code})",
                "check GOOGLE_APPLICATION_CREDENTIALS and the bucket's IAM permissions",
            ) from None
        except gexc.NotFound as exc:
            raise ConfigError(
                f"{uri}: not found while trying to {what} ({' '.join(str(exc.message).split())[:160]})",
                "create the bucket first (gsutil mb gs://BUCKET) or fix the gs:// URI",
            ) from None
        except gexc.GoogleAPICallError as exc:
            raise ServiceError(
                f"Google Cloud Storage failed to {what} at {uri}: {' '.join(str(exc).split())[:200]}",
                "check the network and retry",
            ) from None
        except OSError as exc:
            raise ServiceError(
                f"Google Cloud Storage unreachable while trying to {what} at {uri}: {exc}",
                "check the network (or STORAGE_EMULATOR_HOST) and retry",
            ) from None

    return wrap()


def gcs_client() -> Any:
    """A storage client; anonymous against an emulator (STORAGE_EMULATOR_HOST), default credentials otherwise."""
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(
            project=os.environ.get("GOOGLE_CLOUD_PROJECT", "seren-test"), credentials=AnonymousCredentials()
        )
    try:
        return storage.Client()
    except Exception as exc:  # google.auth.exceptions.DefaultCredentialsError and friends
        raise ConfigError(
            f"no Google Cloud credentials for the gs:// registry ({type(exc).__name__})",
            "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS",
        ) from None
