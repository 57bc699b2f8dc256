"""Text backends for optional LLM steps (profile summaries, teacher labels, cluster descriptions).

Callers treat a backend as best-effort: any failure is a `ServiceError` they can count and fall
back from, never a hang (timeouts) or a retry storm (bounded attempts with backoff).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from seren.errors import ConfigError, ServiceError

ENV_BASE_URL = "SEREN_OPENAI_BASE_URL"
ENV_MODEL = "SEREN_OPENAI_MODEL"
ENV_API_KEY = "OPENAI_API_KEY"


@runtime_checkable
class TextBackend(Protocol):
    """Anything that turns a user prompt into a short completion."""

    name: str

    def complete(self, prompt: str, max_new_tokens: int = 64) -> str: ...


class LocalBackend:
    """A local HF causal LM, greedy decoding through its chat template (deterministic)."""

    name = "local"

    def __init__(self, model_dir: str | os.PathLike[str] = "smollm2", system: str | None = None) -> None:
        from seren.llm.base import load_causal_lm

        self.model, self.tokenizer = load_causal_lm(model_dir)
        self.system = system

    def complete(self, prompt: str, max_new_tokens: int = 64) -> str:
        import torch

        messages = ([{"role": "system", "content": self.system}] if self.system else []) + [
            {"role": "user", "content": prompt}
        ]
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = "\n\n".join(m["content"] for m in messages) + "\n"
        enc = self.tokenizer(text, return_tensors="pt")
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        return self.tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def _transient(exc: BaseException) -> bool:
    """Worth retrying: the server may answer next time (network, timeout, 429, 5xx)."""
    import openai

    return isinstance(
        exc, openai.APIConnectionError | openai.APITimeoutError | openai.RateLimitError | openai.InternalServerError
    )


class OpenAIBackend:
    """Any OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp server, OpenAI, ...)."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        system: str | None = None,
        temperature: float = 0.0,
    ) -> None:
        import openai

        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"invalid OpenAI base URL {base_url!r}", f"set {ENV_BASE_URL}=http://host:port/v1")
        if not model:
            raise ConfigError("no model name for the OpenAI-compatible endpoint", f"set {ENV_MODEL}")
        if retries < 1:
            raise ConfigError(f"retries must be >= 1, got {retries}", "pass retries=1 or more")
        self.base_url, self.model = base_url.rstrip("/"), model
        self.retries, self.backoff = retries, backoff
        self.system, self.temperature = system, temperature
        # The client's own retries are off: tenacity owns the (bounded) retry policy.
        self.client = openai.OpenAI(
            base_url=self.base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=0
        )

    @classmethod
    def from_env(cls, **kw: Any) -> OpenAIBackend:
        base_url = os.environ.get(ENV_BASE_URL, "").strip()
        model = os.environ.get(ENV_MODEL, "").strip()
        if not base_url:
            raise ConfigError(
                f"{ENV_BASE_URL} is not set", f"export {ENV_BASE_URL}=http://host:port/v1 and {ENV_MODEL}"
            )
        if not model:
            raise ConfigError(f"{ENV_MODEL} is not set", f"export {ENV_MODEL}=<model name served at {base_url}>")
        return cls(base_url, model, api_key=os.environ.get(ENV_API_KEY) or None, **kw)

    def _request(self, prompt: str, max_new_tokens: int) -> Any:
        messages = ([{"role": "system", "content": self.system}] if self.system else []) + [
            {"role": "user", "content": prompt}
        ]
        return self.client.chat.completions.create(
            model=self.model, messages=messages, max_tokens=max_new_tokens, temperature=self.temperature
        )

    def complete(self, prompt: str, max_new_tokens: int = 64) -> str:
        import openai

        retrying = Retrying(
            stop=stop_after_attempt(self.retries),
            wait=wait_exponential(multiplier=self.backoff, max=8 * self.backoff),
            retry=retry_if_exception(_transient),
            reraise=False,
        )
        try:
            resp = retrying(self._request, prompt, max_new_tokens)
        except RetryError as e:
            cause = e.last_attempt.exception()
            raise ServiceError(
                f"OpenAI-compatible endpoint {self.base_url} failed after {self.retries} attempts "
                f"({type(cause).__name__}: {_first_line(cause)})",
                f"start the server or fix {ENV_BASE_URL}, or use --backend none",
            ) from cause
        except openai.APIStatusError as e:
            raise ServiceError(
                f"OpenAI-compatible endpoint {self.base_url} rejected the request (HTTP {e.status_code}: {_first_line(e)})",
                f"check {ENV_MODEL} and {ENV_API_KEY}",
            ) from e
        except (openai.OpenAIError, ValueError, TypeError) as e:  # undecodable / schema-violating body
            raise ServiceError(
                f"OpenAI-compatible endpoint {self.base_url} returned an invalid response ({_first_line(e)})",
                "point it at a chat-completions compatible server",
            ) from e
        try:
            content = resp.choices[0].message.content
        except (AttributeError, IndexError, TypeError) as e:
            raise ServiceError(
                f"OpenAI-compatible endpoint {self.base_url} returned a response without choices",
                "point it at a chat-completions compatible server",
            ) from e
        if not isinstance(content, str):
            raise ServiceError(
                f"OpenAI-compatible endpoint {self.base_url} returned no text content",
                "check that the model serves chat completions",
            )
        return content.strip()


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "").strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


BACKENDS = ("local", "openai", "none")


def get_backend(name: str | None, **kw: Any) -> TextBackend | None:
    """'local' (kw: model_dir) | 'openai' (kw: base_url/model/..., else env) | 'none' -> no backend."""
    key = (name or "none").strip().lower()
    if key == "none":
        return None
    if key == "local":
        model_dir: str | Path = kw.pop("model_dir", "smollm2")
        return LocalBackend(model_dir, **kw)
    if key == "openai":
        if "base_url" in kw:
            return OpenAIBackend(**kw)
        return OpenAIBackend.from_env(**kw)
    raise ConfigError(f"unknown text backend {name!r}", f"use one of: {', '.join(BACKENDS)}")
