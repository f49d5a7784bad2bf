"""Provider adapters built on the providers' own SDKs, one module per provider.

`adapter_for(provider)` returns the adapter class for a spec's provider name
(claude, openai, gemini). `base` holds the shared retry, timeout, concurrency
and output-parsing policy.
"""

from __future__ import annotations

from reconciler.providers.base import (
    CallSettings,
    ProviderAdapter,
    ProviderConfigError,
    RowError,
    TransientError,
)


def adapter_for(provider: str) -> type[ProviderAdapter]:
    """Return the adapter class for `provider`, importing only that provider's SDK."""
    if provider == "claude":
        from reconciler.providers.anthropic_adapter import AnthropicAdapter

        return AnthropicAdapter
    if provider == "openai":
        from reconciler.providers.openai_adapter import OpenAIAdapter

        return OpenAIAdapter
    if provider == "gemini":
        from reconciler.providers.gemini_adapter import GeminiAdapter

        return GeminiAdapter
    raise ProviderConfigError(f"unknown provider {provider!r}; allowed values: "
                              "claude, openai, gemini")


__all__ = [
    "CallSettings",
    "ProviderAdapter",
    "ProviderConfigError",
    "RowError",
    "TransientError",
    "adapter_for",
]
