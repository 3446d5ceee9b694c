"""A game upload is resumable across instances and restarts: its state is in the store.

Two real app processes with their own data folders, media on S3 (moto) as in
production. The chunks of one upload go to both instances, the first of them killed
(SIGKILL) between two chunks and started again; the upload resumes where it stopped,
and the game assembled from it is the file that was sent, byte for byte.
"""

import hashlib

from games.tests.helpers import chunks_of, write_stepped_game

PASSWORD = "pw-coach-games-1"


def put_chunk(client, upload_id, index, data):
    return client.put(
        f"/api/games/uploads/{upload_id}/chunks/{index}",
        data=data,
        headers={"Content-Type": "application/octet-stream",
                 "X-Chunk-SHA256": hashlib.sha256(data).hexdigest()},
    )  # fmt: skip


def stored_object(moto_client, bucket, key_suffix):
    listed = moto_client.list_objects_v2(Bucket=bucket)["Contents"]
    [key] = [item["Key"] for item in listed if item["Key"].endswith(key_suffix)]
    return moto_client.get_object(Bucket=bucket, Key=key)["Body"].read(), [i["Key"] for i in listed]


def test_an_upload_goes_on_after_its_instance_is_killed(
    app_instances, s3_fault_proxy, moto_client, tmp_path
):
    game = write_stepped_game(tmp_path / "game.mp4", seconds=14, fps=15, width=640,
                              height=360, noise=14)  # fmt: skip
    data = game.read_bytes()
    a, b = app_instances.many("a", "b", users=[("coach", PASSWORD)])
    on_a = a.client("coach", PASSWORD)
    on_b = on_a.on(b)

    begun = on_a.post("/api/games/uploads", json={"filename": "game.mp4", "size": len(data)})
    assert begun.status == 201, begun
    upload = begun.json
    pieces = chunks_of(data, upload["chunk_size"])
    assert len(pieces) == 2

    assert put_chunk(on_a, upload["id"], 0, pieces[0]).status == 200
    a.kill()  # between two chunks: nothing of the upload lived in that process
    status = on_b.get(f"/api/games/uploads/{upload['id']}")
    assert status.status == 200 and status.json["received"] == [0], status
    a.restart()
    assert on_a.get(f"/api/games/uploads/{upload['id']}").json["received"] == [0]
    assert put_chunk(on_a, upload["id"], 1, pieces[1]).status == 200

    done = on_b.post(f"/api/games/uploads/{upload['id']}/complete", json={"name": "Final"})

    assert done.status == 201, done
    assert done.headers["X-Sync-Status"] == "ok"
    body, keys = stored_object(moto_client, s3_fault_proxy.bucket, f"games/{upload['id']}.mp4")
    assert body == data
    assert not [key for key in keys if "/uploads/" in key]  # the chunks are gone
    # Either instance sees the game (the row is committed to the store).
    assert on_a.get(f"/api/games/{done.json['id']}").json["name"] == "Final"
