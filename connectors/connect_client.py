"""A small Kafka Connect REST client: create-or-update, status, pause/resume/restart, delete;
retried with tenacity."""

from __future__ import annotations

from typing import Any

import httpx

from connectors.failures import RETRYABLE_HTTP_STATUSES, classify_httpx, first_line, retrying
from core.errors import ConnectorError, Retryable


class ConnectUnavailable(Retryable, ConnectorError):
    """The Connect REST API did not answer (not started yet, or rebalancing)."""


class ConnectClient:
    """Talks to one Kafka Connect cluster."""

    def __init__(self, url: str, timeout: float = 30.0, attempts: int = 12) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout)
        self.attempts = attempts

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One REST call; retryable failures (see `classify_httpx`) are retried with backoff."""
        policy = retrying(
            f"Kafka Connect {method} {path}",
            {"url": self.url},
            attempts=self.attempts,
            max_wait_s=5,
        )
        return policy(self._request_once, method, path, **kwargs)

    def _request_once(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            if classify_httpx(exc) is Retryable:
                raise ConnectUnavailable(
                    f"Kafka Connect is not reachable: {first_line(exc)}", url=self.url
                ) from exc
            raise ConnectorError(
                f"Kafka Connect request failed: {first_line(exc)}", url=self.url, path=path
            ) from exc
        # 409: a rebalance is in progress; Connect asks the caller to retry. 503/504: starting.
        if response.status_code in RETRYABLE_HTTP_STATUSES:
            raise ConnectUnavailable(
                f"Kafka Connect is busy ({response.status_code})", url=self.url, path=path
            )
        return response

    def put_config(self, name: str, config: dict[str, str]) -> bool:
        """Create or update a connector; True when it was created."""
        response = self._request("PUT", f"/connectors/{name}/config", json=config)
        if response.status_code not in (200, 201):
            raise ConnectorError(
                f"Kafka Connect refused the config: {_message(response)}", connector=name
            )
        return response.status_code == 201

    def validate(self, connector_class: str, config: dict[str, str]) -> list[str]:
        """Errors Connect's validator reports for a config (empty when valid)."""
        plugin = connector_class.rsplit(".", 1)[-1]
        response = self._request("PUT", f"/connector-plugins/{plugin}/config/validate", json=config)
        if response.status_code != 200:
            raise ConnectorError(f"cannot validate config: {_message(response)}", plugin=plugin)
        errors = []
        for item in response.json().get("configs", []):
            value = item.get("value", {})
            for err in value.get("errors", []):
                errors.append(f"{value.get('name')}: {err}")
        return errors

    def status(self, name: str) -> dict[str, Any] | None:
        """The connector's status document, or None when it does not exist."""
        response = self._request("GET", f"/connectors/{name}/status")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ConnectorError(f"cannot read status: {_message(response)}", connector=name)
        return response.json()

    def restart(self, name: str, only_failed: bool = True) -> bool:
        """Restart a connector and its (failed) tasks; False when it does not exist."""
        failed = "true" if only_failed else "false"
        response = self._request(
            "POST", f"/connectors/{name}/restart?includeTasks=true&onlyFailed={failed}"
        )
        return self._accepted(name, response, "restart")

    def pause(self, name: str) -> bool:
        """Pause a connector and its tasks (offsets and slot kept); False when it does not exist."""
        return self._accepted(name, self._request("PUT", f"/connectors/{name}/pause"), "pause")

    def resume(self, name: str) -> bool:
        """Resume a paused connector; False when it does not exist."""
        return self._accepted(name, self._request("PUT", f"/connectors/{name}/resume"), "resume")

    def stop(self, name: str) -> bool:
        """Stop a connector (tasks shut down, config kept); False when it does not exist."""
        return self._accepted(name, self._request("PUT", f"/connectors/{name}/stop"), "stop")

    def create_stopped(self, name: str, config: dict[str, str]) -> None:
        """Create a connector in the STOPPED state (it runs nothing until resumed)."""
        response = self._request(
            "POST", "/connectors", json={"name": name, "config": config, "initial_state": "STOPPED"}
        )
        if response.status_code not in (200, 201):
            raise ConnectorError(
                f"Kafka Connect refused the config: {_message(response)}", connector=name
            )

    def reset_offsets(self, name: str) -> None:
        """Forget a STOPPED connector's source offsets (Kafka Connect 3.6+)."""
        response = self._request("DELETE", f"/connectors/{name}/offsets")
        if response.status_code != 200:
            raise ConnectorError(f"cannot reset offsets: {_message(response)}", connector=name)

    def config(self, name: str) -> dict[str, str] | None:
        """The connector's current config, or None when it does not exist."""
        response = self._request("GET", f"/connectors/{name}/config")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ConnectorError(f"cannot read config: {_message(response)}", connector=name)
        return dict(response.json())

    @staticmethod
    def _accepted(name: str, response: httpx.Response, action: str) -> bool:
        if response.status_code == 404:
            return False
        if response.status_code not in (200, 202, 204):
            raise ConnectorError(f"cannot {action}: {_message(response)}", connector=name)
        return True

    def delete(self, name: str) -> bool:
        """Delete a connector; False when it did not exist."""
        response = self._request("DELETE", f"/connectors/{name}")
        return response.status_code in (200, 204)

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", response.text))
    except ValueError:
        return response.text
