"""From a whole game to a reel, in a real browser, on the real render.

Upload a generated game of two chunks (8 MiB parts on S3) with the connection cut
after the first one and the tab closed; pick the same file again and only the missing
chunks go. Mark three plays with the keyboard, make a 9:16 reel of two of them (in the
other order), export it, and read the working video back: the two plays, in that
order, for their combined length. The game steps its brightness each second, so the
video's frames say which second of the game they came from.
"""

import re

import av
import numpy as np
from playwright.sync_api import expect

from games.tests.helpers import level_at, write_stepped_game
from reeleditor.tests.browser import (
    api,
    poll,
    screenshot,
    signup,
    unique_username,
    wait_for_progress,
    watch_progress,
)

PASSWORD = "a-long-enough-pw-123"
FPS = 15
CHUNK_URL = re.compile(r"/api/games/uploads/[0-9a-f]{32}/chunks/(\d+)$")


def mark_play(page, tile: int, frames: int, name: str, rating: str) -> None:
    """Jump with the filmstrip, then I, ``frames`` steps with →, O, a name, Enter."""
    page.get_by_test_id("filmstrip-tile").nth(tile).click()
    page.keyboard.press("i")
    for _ in range(frames):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("o")
    page.get_by_test_id("play-rating").select_option(rating)
    page.get_by_test_id("play-name").fill(name)
    page.get_by_test_id("play-name").press("Enter")
    expect(page.get_by_test_id("play-name")).to_have_value("")


def test_a_game_uploaded_with_a_break_becomes_a_reel_of_two_plays(page_for, real_server, tmp_path):
    game_file = write_stepped_game(
        tmp_path / "saturday-game.mp4", seconds=14, fps=FPS, width=640, height=360, noise=14
    )
    # Two chunks of GAME_UPLOAD_CHUNK_BYTES (8 MiB by default; S3 parts are >= 5 MiB).
    assert 8 * 1024**2 < game_file.stat().st_size <= 16 * 1024**2
    page = page_for(real_server)
    signup(page, unique_username("games"), PASSWORD)
    page.get_by_test_id("nav-games").click()
    page.wait_for_url(re.compile(r"/games/$"))

    # The connection goes after the first chunk; then the tab is closed.
    sent = []

    def cut_after_first(route):
        index = int(CHUNK_URL.search(route.request.url)[1])
        if index == 0:
            sent.append(index)
            route.continue_()
        else:
            route.abort("connectionreset")

    page.route(CHUNK_URL, cut_after_first)
    page.get_by_test_id("game-name").fill("Saturday game")
    page.get_by_test_id("game-file").set_input_files(str(game_file))
    page.get_by_test_id("game-upload-start").click()
    expect(page.get_by_test_id("game-upload-text")).to_contain_text("Connection lost")
    screenshot(page, "games-1-upload-interrupted")
    page.unroute(CHUNK_URL)
    page.goto("/games/")

    # Picking the same file again resumes: only chunk 1 is sent.
    page.on("request", lambda r: CHUNK_URL.search(r.url) and sent.append(
        int(CHUNK_URL.search(r.url)[1])))  # fmt: skip
    page.get_by_test_id("game-file").set_input_files(str(game_file))
    page.get_by_test_id("game-upload-start").click()
    page.wait_for_url(re.compile(r"/games/\d+/$"), timeout=60_000)
    assert sent == [0, 1], sent
    game_id = int(re.search(r"/games/(\d+)/$", page.url)[1])

    # The media job (probe, poster, filmstrip) runs in the background; the page follows it.
    expect(page.get_by_test_id("filmstrip-tile").first).to_be_visible(timeout=90_000)
    game = api(page, "GET", f"/api/games/{game_id}")["json"]
    assert game["status"] == "ready" and abs(game["duration"] - 14) < 0.2, game
    screenshot(page, "games-2-annotate")

    # Three plays, marked with the keyboard: in at a filmstrip tile's time, out a number
    # of frame steps later (each step lands on a frame: (round(t * fps) + 1) / fps).
    times = game["filmstrip"]["times"]
    marked = [(14, 22, "Early chance", "3"), (57, 15, "Winner", "5"), (85, 15, "Late save", "4")]
    for tile, frames, name, rating in marked:
        mark_play(page, tile, frames, name, rating)
    expect(page.get_by_test_id("play-item")).to_have_count(3)
    plays = api(page, "GET", f"/api/games/{game_id}/plays")["json"]["plays"]
    for play, (tile, frames, name, rating) in zip(plays, marked, strict=True):
        start = times[tile]
        end = (round(start * FPS) + frames) / FPS
        assert (play["name"], play["rating"]) == (name, int(rating)), play
        assert abs(play["start"] - start) < 0.01 and abs(play["end"] - end) < 0.01, play
    early, winner, _late = plays
    screenshot(page, "games-3-plays")

    # A 9:16 reel of two of them, the winner first (the order they are ticked in).
    page.goto("/games/")
    found = page.get_by_test_id("found-play")
    expect(found).to_have_count(3)
    found.filter(has_text="Winner").get_by_test_id("play-select").check()
    found.filter(has_text="Early chance").get_by_test_id("play-select").check()
    page.get_by_test_id("reel-name").fill("Saturday reel")
    page.get_by_test_id("reel-aspect").select_option("9:16")
    page.get_by_test_id("reel-make").click()
    page.wait_for_url(re.compile(r"/projects/\d+/$"))
    project_id = int(re.search(r"/projects/(\d+)/$", page.url)[1])
    expect(page.get_by_test_id("clip-item")).to_have_count(2)

    page.get_by_test_id("export-button").click()
    watch_progress(page, "export-progress")
    wait_for_progress(page, "export-progress", timeout=180)
    expect(page.get_by_test_id("export-phase")).to_have_text("Export complete · saved")
    screenshot(page, "games-4-reel-exported")

    working = api(page, "GET", f"/api/projects/{project_id}/working-video")["json"]
    assert (working["width"], working["height"]) == (1080, 1920), working
    expected = (winner["end"] - winner["start"]) + (early["end"] - early["start"])
    assert abs(working["duration"] - expected) < 0.2, (working, expected)
    video = tmp_path / "working.mp4"
    response = poll(lambda: (r := page.request.get(working["url"])).ok and r)
    video.write_bytes(response.body())
    with av.open(str(video)) as container:
        means = [float(np.mean(f.to_ndarray(format="gray"))) for f in container.decode(video=0)]
    first_play = round((winner["end"] - winner["start"]) * FPS)
    assert abs(means[2] - level_at(winner["start"] + 0.1)) < 8, means[:5]  # the winner
    assert abs(means[first_play + 2] - level_at(early["start"] + 0.1)) < 8, means  # then
    assert abs(means[-2] - level_at(early["end"] - 0.1)) < 8, means[-5:]
