"""The final video's export presets: output resolution, quality and the title card.

They belong to the project (a coach sets them once per reel) and apply to the overlay
export only. The working video stays the editing master at the project's full size:
highlight regions are stored in its pixels, so shrinking it would move them. The final
render scales down to the chosen resolution instead, and never up.

``clean_presets`` checks what the API is given; ``final_output`` turns a project's
presets into what the renderer needs (size, CRF, the title card).
"""

import re
from dataclasses import dataclass
from datetime import date

from exports.render import even_size

# Short side of the final video in pixels, per preset.
RESOLUTIONS = {"1080p": 1080, "720p": 720}
# libx264 constant rate factor per quality: lower is better and bigger. "standard" is
# what every export used before presets existed.
QUALITY_CRF = {"high": 17, "standard": 20, "small": 26}
QUALITY_LABELS = {
    "high": "High (bigger file)",
    "standard": "Standard",
    "small": "Smaller file",
}

TITLE_TEXT_MAX = 60
DEFAULT_TITLE_CARD = {
    "enabled": False,
    "player": "",
    "team": "",
    "date": "",
    "primary": "#12325f",  # the card's background
    "accent": "#ffc72c",  # the stripe and the team line
}
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class PresetError(ValueError):
    """A preset value the API refuses; ``field`` names it, ``code`` for the answer."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.message, self.field = message, field


def clean_resolution(value) -> str:
    if value not in RESOLUTIONS:
        raise PresetError("Resolution must be 1080p or 720p.", "final_resolution")
    return value


def clean_quality(value) -> str:
    if value not in QUALITY_CRF:
        raise PresetError("Quality must be high, standard or small.", "final_quality")
    return value


def clean_title_card(value) -> dict:
    """A complete title card from a partial one; unknown keys are refused."""
    if not isinstance(value, dict):
        raise PresetError("title_card must be an object.", "title_card")
    unknown = set(value) - set(DEFAULT_TITLE_CARD)
    if unknown:
        raise PresetError(f"Unknown title card field: {sorted(unknown)[0]}.", "title_card")
    card = {**DEFAULT_TITLE_CARD, **value}
    if not isinstance(card["enabled"], bool):
        raise PresetError("title_card.enabled must be true or false.", "title_card")
    for key in ("player", "team"):
        text = card[key]
        if not isinstance(text, str) or len(text.strip()) > TITLE_TEXT_MAX:
            raise PresetError(
                f"The title card's {key} must be text of at most {TITLE_TEXT_MAX} characters.",
                "title_card",
            )
        card[key] = " ".join(text.split())  # one line: newlines and runs of spaces go
    card["date"] = _clean_date(card["date"])
    for key in ("primary", "accent"):
        if not isinstance(card[key], str) or not _COLOUR.match(card[key]):
            raise PresetError(
                f"The title card's {key} colour must look like #1a2b3c.", "title_card"
            )
        card[key] = card[key].lower()
    if card["enabled"] and not (card["player"] or card["team"]):
        raise PresetError("Give the title card a player name or a team.", "title_card")
    return card


def _clean_date(value) -> str:
    if value in ("", None):
        return ""
    try:
        return date.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        raise PresetError(
            "The title card's date must be a date (YYYY-MM-DD).", "title_card"
        ) from None


def title_card_of(project) -> dict:
    """The project's title card with every field present (older rows have ``{}``)."""
    return {**DEFAULT_TITLE_CARD, **(project.title_card or {})}


@dataclass(frozen=True)
class FinalOutput:
    width: int
    height: int
    crf: int
    title_card: dict | None  # None: no card


def final_size(width: int, height: int, resolution: str) -> tuple[int, int]:
    """The working video's size scaled so its short side is the preset's, never up;
    both sides even (yuv420p)."""
    factor = min(1.0, RESOLUTIONS[resolution] / min(width, height))
    return even_size(width * factor), even_size(height * factor)


def final_output(project, working_width: int, working_height: int) -> FinalOutput:
    width, height = final_size(working_width, working_height, project.final_resolution)
    card = title_card_of(project)
    return FinalOutput(
        width=width,
        height=height,
        crf=QUALITY_CRF[project.final_quality],
        title_card=card if card["enabled"] else None,
    )
