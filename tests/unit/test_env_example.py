"""`.env.example` names exactly the settings `sneakerd/config.py` reads: a setting added to
the code without a line here (or a line for one that is gone) fails this test."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sneakerd.config import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
SETTING_LINE = re.compile(r"^#?([A-Z][A-Z0-9_]*)=", re.M)


class Recording(dict[str, str]):
    """An environment that notes every name it is asked for."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return super().__contains__(key)


def settings_read() -> set[str]:
    # DB_HOST set, so that the original's DB_* settings are read as well.
    env = Recording({"DB_HOST": "db.example"})
    Settings.from_mapping(env)
    return env.asked


def test_the_recording_sees_the_settings_config_reads() -> None:
    asked = settings_read()
    assert {"PORT", "DATABASE_URL", "JWT_SECRET", "REDIS_URL", "DB_PASSWORD"} <= asked


def test_env_example_lists_exactly_the_settings_config_reads() -> None:
    listed = SETTING_LINE.findall(ENV_EXAMPLE.read_text())
    assert len(listed) == len(set(listed)), "a setting is listed twice"
    assert set(listed) == settings_read()


def test_env_example_loads_as_the_defaults() -> None:
    """Copied to `.env` as it is, it changes nothing: every line is a default or empty."""
    assert Settings.load({}, dotenv=ENV_EXAMPLE).replace(node_id="x") == Settings().replace(
        node_id="x"
    )
