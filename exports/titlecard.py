"""The title card at the start of a final video: player name, team and date on the
project's colours (projects/presets.py keeps the card's fields).

Drawn with OpenCV's own vector fonts, so the picture does not depend on which fonts a
machine has installed: the same card everywhere, in the export and in the preview.
"""

from datetime import date

import av
import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_DUPLEX
SECONDS = 2.5  # how long the card shows; the video starts after it, with its sound
WHITE = (255, 255, 255)


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def card_lines(card: dict) -> list[tuple[str, str]]:
    """``(role, text)`` for each line the card shows, top to bottom."""
    lines = []
    if card.get("player"):
        lines.append(("player", card["player"]))
    if card.get("team"):
        lines.append(("team", card["team"]))
    if card.get("date"):
        lines.append(("date", _spoken_date(card["date"])))
    return lines


def _spoken_date(iso: str) -> str:
    day = date.fromisoformat(iso)
    return f"{day.day} {day.strftime('%B %Y')}"


def draw(card: dict, width: int, height: int) -> np.ndarray:
    """The card as an RGB image of ``height`` x ``width``."""
    primary, accent = hex_to_rgb(card["primary"]), hex_to_rgb(card["accent"])
    image = np.empty((height, width, 3), np.uint8)
    image[:] = primary
    # A darker lower half gives the flat colour some depth.
    shade = np.linspace(1.0, 0.72, height, dtype=np.float32)[:, None, None]
    image[:] = (image * shade).astype(np.uint8)
    short = min(width, height)
    margin = round(short * 0.08)
    lines = card_lines(card)
    sizes = {"player": 0.11, "team": 0.065, "date": 0.045}  # text height per short side
    blocks = [(role, text, _fit(text, round(short * sizes[role]), width - 2 * margin))
              for role, text in lines]  # fmt: skip
    gap = round(short * 0.035)
    stripe = max(4, round(short * 0.012))
    total = sum(b[2][1] for b in blocks) + gap * max(0, len(blocks) - 1) + gap + stripe
    y = (height - total) // 2
    # The accent stripe above the text, as wide as the widest line.
    widest = max((b[2][0] for b in blocks), default=width // 3)
    cv2.rectangle(image, (margin, y), (margin + widest, y + stripe), accent, -1)
    y += stripe + gap
    for role, text, (_w, text_height, scale, thickness) in blocks:
        colour = accent if role == "team" else WHITE
        baseline_y = y + text_height
        cv2.putText(image, text, (margin, baseline_y), FONT, scale, colour, thickness, cv2.LINE_AA)
        y = baseline_y + gap
    return image


def _fit(text: str, target_height: int, max_width: int) -> tuple[int, int, float, int]:
    """``(width, height, scale, thickness)`` for ``text`` about ``target_height`` tall,
    made smaller when it would be wider than ``max_width``."""
    (_, unit_height), _ = cv2.getTextSize("Hg", FONT, 1.0, 1)
    scale = target_height / unit_height
    thickness = max(1, round(scale * 1.6))
    (width, _), _ = cv2.getTextSize(text, FONT, scale, thickness)
    if width > max_width:
        scale *= max_width / width
        thickness = max(1, round(scale * 1.6))
        (width, _), _ = cv2.getTextSize(text, FONT, scale, thickness)
    (_, height), _ = cv2.getTextSize("Hg", FONT, scale, thickness)
    return width, height, scale, thickness


def video_frame(card: dict, width: int, height: int) -> av.VideoFrame:
    """The card as one yuv420p frame (the caller sets its pts), BT.709 like the render."""
    frame = av.VideoFrame.from_ndarray(draw(card, width, height), format="rgb24")
    return frame.reformat(format="yuv420p", dst_colorspace="itu709")


def png(card: dict, width: int, height: int) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(draw(card, width, height), cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise ValueError("the title card could not be encoded")
    return data.tobytes()
