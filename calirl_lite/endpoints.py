"""The one HTTP client of the kit: OpenAI-compatible chat endpoints, for endpoint users and LLM judges.

Kept apart from the users and the judge so that reading it (or the CLI, which names its errors) needs no model
library.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request


def require_http(url: str, what: str) -> None:
    """A clear error unless ``url`` is an http(s) address (endpoint users and judges)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{what} must start with http:// or https://, got {url!r}")


class EndpointError(RuntimeError):
    """An OpenAI-compatible endpoint could not be reached or gave no usable reply (the message names it)."""


def chat_completion(base_url: str, model: str, messages: list[dict[str, str]], temperature: float = 0.0, max_tokens: int = 256,
                    api_key: str = "", timeout: float = 60.0) -> str:
    """One reply of an OpenAI-compatible endpoint (``POST {base_url}/chat/completions``); clear errors name the endpoint."""
    body = {"model": model, "temperature": temperature, "max_tokens": max_tokens, "messages": messages}
    req = urllib.request.Request(f"{base_url.rstrip('/')}/chat/completions", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {api_key}"} if api_key else {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = json.loads(resp.read().decode())
    except urllib.error.HTTPError as e:
        raise EndpointError(f"endpoint {base_url} answered HTTP {e.code}: {e.read()[:200]!r}") from None
    except (urllib.error.URLError, TimeoutError) as e:
        raise EndpointError(f"endpoint {base_url} is unreachable: {e}") from None
    except json.JSONDecodeError as e:
        raise EndpointError(f"endpoint {base_url} did not answer JSON: {e}") from None
    try:
        return str(data["choices"][0]["message"]["content"]).strip()
    except (KeyError, IndexError, TypeError):
        raise EndpointError(f"endpoint {base_url} gave no choices[0].message.content: {str(data)[:200]}") from None
