"""Where the CLI keeps the server URL and token: $LEPTON_CONFIG, else ~/.config/lepton/config.json (0600)."""

import json
import os
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"


def config_path() -> Path:
    if os.environ.get("LEPTON_CONFIG"):
        return Path(os.environ["LEPTON_CONFIG"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "lepton" / "config.json"


def load_config(path: Path | None = None) -> dict:
    path = path or config_path()
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None


def save_config(values: dict, path: Path | None = None) -> Path:
    """Write the config readable by its owner only (it holds a token): the file 0600, a new folder 0700."""
    path = path or config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its old mode through os.open: narrow it before writing
    with os.fdopen(descriptor, "w") as out:
        json.dump(values, out, indent=2)
    return path


def resolve(
    url: str | None = None, token: str | None = None, team: str | None = None
) -> tuple[str, str | None, str | None]:
    """URL, token and team: arguments first, then LEPTON_URL / LEPTON_TOKEN / LEPTON_TEAM, then the config file."""
    stored = load_config() if not (url and token) else {}
    return (
        url or os.environ.get("LEPTON_URL") or stored.get("url") or DEFAULT_URL,
        token or os.environ.get("LEPTON_TOKEN") or stored.get("token"),
        team or os.environ.get("LEPTON_TEAM") or stored.get("team"),
    )
