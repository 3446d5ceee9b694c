"""Helpers of the games tests: the chunked upload as the browser drives it."""

import hashlib
import json
import time
from pathlib import Path

import av
import numpy as np


def begin_upload(client, filename, size):
    return client.post(
        "/api/games/uploads",
        json.dumps({"filename": filename, "size": size}),
        content_type="application/json",
    )


def put_chunk(client, upload_id, index, data, sha256=None):
    headers = {"HTTP_X_CHUNK_SHA256": sha256} if sha256 else {}
    return client.put(
        f"/api/games/uploads/{upload_id}/chunks/{index}",
        data,
        content_type="application/octet-stream",
        **headers,
    )


def chunks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def complete(client, upload_id, **fields):
    return client.post(
        f"/api/games/uploads/{upload_id}/complete",
        json.dumps(fields),
        content_type="application/json",
    )


def upload_game(client, path: Path, *, order=None, **fields) -> dict:
    """Upload the file at ``path`` chunk by chunk (in ``order``), complete it; the game."""
    data = Path(path).read_bytes()
    started = begin_upload(client, Path(path).name, len(data))
    assert started.status_code == 201, started.content
    upload = started.json()
    pieces = chunks_of(data, upload["chunk_size"])
    for index in order or range(len(pieces)):
        sha = hashlib.sha256(pieces[index]).hexdigest()
        response = put_chunk(client, upload["id"], index, pieces[index], sha)
        assert response.status_code == 200, response.content
    done = complete(client, upload["id"], **fields)
    assert done.status_code == 201, done.content
    return done.json()


def finished(client, job_id, timeout=60):
    """The job (``GET /api/exports/<id>``) once it has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/exports/{job_id}").json()
        if job["status"] not in ("pending", "processing"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


def level_at(t: float) -> int:
    """The grey level of the stepped game at ``t`` s: one step per second."""
    return 20 + 18 * int(t)


def write_stepped_game(path: Path, *, seconds=12, fps=10, width=320, height=180, noise=0) -> Path:
    """A game whose every frame is one grey, a step brighter each second: where a frame
    of an export came from can be read from its mean brightness. ``noise`` (a grey
    amplitude) makes the file large (noise does not compress), for multi-chunk uploads."""
    rng = np.random.default_rng(7)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(fps)}
        for index in range(seconds * fps):
            image = np.full((height, width, 3), level_at(index / fps), dtype=np.int16)
            if noise:
                image += rng.integers(-noise, noise + 1, size=(height, width, 1), dtype=np.int16)
            image = np.clip(image, 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def ready_game(client, path: Path, **fields) -> dict:
    """Upload ``path`` as a game and wait until its media job has made it ready."""
    game = upload_game(client, path, **fields)
    job = finished(client, game["media_job_id"])
    assert job["status"] == "complete", job
    return client.get(f"/api/games/{game['id']}").json()
