"""Helpers of the games tests: the chunked upload as the browser drives it."""

import hashlib
import json
from pathlib import Path


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
