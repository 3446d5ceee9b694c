import pytest

from projects.synthetic import write_game_clip


@pytest.fixture(scope="session")
def ball_clip(tmp_path_factory):
    """A 640x360, 2 s, 30 fps game clip whose ball path is known (see test_export_flow)."""
    path = tmp_path_factory.mktemp("export-clips") / "ball.mp4"
    write_game_clip(path, width=640, height=360, fps=30, seconds=2.0)
    return path
