"""The JSON form: the scorecard dict itself, as scorecard.json."""

from __future__ import annotations

import json
from typing import Any


class JsonWriter:
    name, filename = "json", "scorecard.json"

    def render(self, scorecard: dict[str, Any]) -> str:
        return json.dumps(scorecard, indent=2, ensure_ascii=False) + "\n"
