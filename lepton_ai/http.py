"""The HTTP layer: one `requests` session with the bearer token, JSON in and out, typed errors."""

from collections.abc import Iterator
from urllib.parse import urljoin

import requests

from lepton_ai.errors import ConnectionFailed, error_from_response

USER_AGENT = "lepton-ai/0.1"
PAGE_SIZE = 500


class Http:
    """Requests against one Lepton server, authenticated with a bearer token (an API token or a deployment key)."""

    def __init__(self, base_url: str, token: str | None, *, timeout: float = 60.0):
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else urljoin(self.base_url, path.lstrip("/"))

    def request(self, method: str, path: str, *, stream: bool = False, **kwargs):
        """The decoded JSON answer (None for 204), or the raw response with stream=True; typed errors otherwise."""
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, self.url(path), stream=stream, **kwargs)
        except requests.ConnectionError as error:
            raise ConnectionFailed(f"cannot reach {self.base_url}: {error}") from None
        except requests.Timeout:
            raise ConnectionFailed(f"{method} {path}: no answer within {kwargs['timeout']} s") from None
        if response.status_code >= 400:
            raise error_from_response(response)
        if stream:
            return response
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str, **params):
        return self.request("GET", path, params=params or None)

    def post(self, path: str, json=None, **kwargs):
        return self.request("POST", path, json=json, **kwargs)

    def patch(self, path: str, json=None):
        return self.request("PATCH", path, json=json)

    def delete(self, path: str):
        return self.request("DELETE", path)

    def pages(self, path: str, **params) -> Iterator[dict]:
        """Every result of a paginated list, page after page."""
        body = self.get(path, page_size=PAGE_SIZE, **{k: v for k, v in params.items() if v is not None})
        while True:
            yield from body["results"]
            if not body.get("next"):
                return
            body = self.request("GET", body["next"])

    def download(self, path: str, destination) -> int:
        """Stream a file to `destination`; returns the bytes written."""
        written = 0
        with self.request("GET", path, stream=True) as response, open(destination, "wb") as out:
            for chunk in response.iter_content(chunk_size=1 << 20):
                out.write(chunk)
                written += len(chunk)
        return written
