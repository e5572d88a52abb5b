"""The OpenAI client for a teacher endpoint, and where its API key comes from."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cec_distill.teacher.config import TeacherConfig
from cec_distill.teacher.errors import MissingAPIKeyError, TeacherError

__all__ = ["LOCAL_PLACEHOLDER_KEY", "resolve_api_key", "make_client"]


#: Sent as the API key to a local server (127.0.0.1, localhost, ::1) when the key variable is unset.
LOCAL_PLACEHOLDER_KEY = "local-no-key"


_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def _is_local(base_url: str | None) -> bool:
    if not base_url:
        return False
    host = (urlsplit(base_url).hostname or "").lower()
    return host in _LOCAL_HOSTS or host.startswith("127.")


def _public_url(base_url: str | None) -> str | None:
    """base_url without user:password or query (which might carry credentials)."""
    if not base_url:
        return None
    u = urlsplit(base_url)
    netloc = u.hostname or ""
    if u.port:
        netloc += f":{u.port}"
    return urlunsplit((u.scheme, netloc, u.path, "", ""))


def resolve_api_key(config: TeacherConfig) -> str:
    """The key from ``$<api_key_env>``; a placeholder for a local server; else MissingAPIKeyError."""
    key = os.environ.get(config.api_key_env, "").strip()
    if key:
        return key
    if _is_local(config.base_url):
        return LOCAL_PLACEHOLDER_KEY
    raise MissingAPIKeyError(
        f"the environment variable {config.api_key_env} is not set: put the API key there "
        "(or name another variable with --api-key-env); keys are never taken on the command line"
    )


def make_client(config: TeacherConfig, api_key: str | None = None) -> Any:
    """An ``openai.OpenAI`` (or ``AzureOpenAI`` when ``api_version`` is set) with retries off."""
    import openai

    key = api_key if api_key is not None else resolve_api_key(config)
    common: dict[str, Any] = {"api_key": key, "max_retries": 0, "timeout": config.timeout}
    if config.api_version:
        if not config.base_url:
            raise TeacherError("--api-version (Azure) needs --base-url: the deployment URL")
        return openai.AzureOpenAI(
            base_url=config.base_url, api_version=config.api_version, **common
        )
    return openai.OpenAI(base_url=config.base_url, **common)
