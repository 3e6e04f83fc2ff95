"""The CLI's config file holds a token: it is never readable by others, not even for a moment."""

import os
import stat

from lepton_ai.config import save_config


def test_an_existing_world_readable_config_is_narrowed_before_the_token_is_written(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{}")
    os.chmod(path, 0o644)
    save_config({"token": "secret"}, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "secret" in path.read_text()
