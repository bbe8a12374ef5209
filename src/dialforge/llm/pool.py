"""Backends built from their configs: one builder per backend kind (`BUILDERS`, keyed like
`llm.config.BACKEND_KINDS`), and the pool that shares one backend per endpoint.

The configs are data (`llm/config.py`); this module binds each kind to its implementation,
which is imported only when a backend of that kind is built.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from .types import ChatModel

if TYPE_CHECKING:
    from .config import BackendConfig, HTTPBackendConfig, ScriptedBackendConfig, TransformersBackendConfig


def _http(cfg: HTTPBackendConfig) -> ChatModel:
    from .http import OpenAIHTTPBackend

    urls = [cfg.base_url] if isinstance(cfg.base_url, str) else list(cfg.base_url)
    kw: dict[str, Any] = dict(
        api_key_env=cfg.api_key_env,
        max_concurrency=cfg.max_concurrency,
        timeout_s=cfg.timeout_s,
        max_retries=cfg.max_retries,
        backoff_base_s=cfg.backoff_base_s,
        backoff_max_s=cfg.backoff_max_s,
        connect_retry_s=cfg.connect_retry_s,
        structured_output=cfg.structured_output,
    )
    if len(urls) > 1:
        from .fleet import EndpointFleet

        return EndpointFleet(cfg.model, urls, **kw)
    return OpenAIHTTPBackend(cfg.model, urls[0], **kw)


def _transformers(cfg: TransformersBackendConfig) -> ChatModel:
    from ..embedded import canonical
    from .local import TransformersBackend
    from .urls import resolve_model

    return TransformersBackend(
        resolve_model(cfg.model),
        batch_size=cfg.batch_size,
        device=cfg.device,
        name=canonical(cfg.model),
        threads=cfg.threads,
    )


def _scripted(cfg: ScriptedBackendConfig) -> ChatModel:
    from ..testing import ScriptedChatModel

    return ScriptedChatModel(cfg.replies, cfg.model)


BUILDERS: dict[str, Callable[[Any], ChatModel]] = {
    "http": _http,
    "transformers": _transformers,
    "scripted": _scripted,
}
"""The builder of each backend kind (a test checks it covers `BACKEND_KINDS`)."""


def make_backend(cfg: BackendConfig) -> ChatModel:
    """A fresh backend (prefer `BackendPool.get`: one per endpoint, closed for you)."""
    return BUILDERS[cfg.kind](cfg)


class BackendPool:
    """One backend per endpoint for every role and stage that shares it (an in-process model
    loads once), closed together. Use `async with BackendPool() as pool:` in one event loop.

    `injected` maps a config's `model` name to a ready backend (tests hand in a
    ScriptedChatModel); the pool returns it for every role with that model and leaves
    closing it to whoever made it.
    """

    def __init__(self, injected: Mapping[str, ChatModel] | None = None) -> None:
        self.injected: dict[str, ChatModel] = dict(injected or {})
        self._built: dict[str, ChatModel] = {}

    def get(self, cfg: BackendConfig) -> ChatModel:
        if cfg.model in self.injected:
            return self.injected[cfg.model]
        key = cfg.endpoint_key()
        backend = self._built.get(key)
        if backend is None:
            backend = self._built[key] = make_backend(cfg)
        return backend

    def __len__(self) -> int:
        return len(self._built)

    async def aclose(self) -> None:
        built, self._built = self._built, {}
        for backend in built.values():
            await backend.aclose()

    async def __aenter__(self) -> BackendPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _noop() -> None:
    return None


def borrow_pool(pool: BackendPool | None) -> tuple[BackendPool, Callable[[], Awaitable[None]]]:
    """The caller's pool (the caller closes it) or a new one; returns the pool and what to
    await when the stage ends (closes only a pool made here)."""
    if pool is not None:
        return pool, _noop
    own = BackendPool()
    return own, own.aclose
