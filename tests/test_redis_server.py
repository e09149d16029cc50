import redis

from d3.dev.redis_server import start_redis


def test_session_server_answers(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.set("k", "v")
    assert client.get("k") == b"v"


def test_persistent_server_survives_kill(tmp_path):
    server = start_redis(tmp_path, persistent=True)
    client = redis.Redis.from_url(server.url)
    client.set("acknowledged", "1")
    client.close()
    server.kill()
    restarted = start_redis(tmp_path, port=server.port, persistent=True)
    try:
        assert redis.Redis.from_url(restarted.url).get("acknowledged") == b"1"
    finally:
        restarted.stop()


def test_embedded_fallback_when_no_system_binary(tmp_path, monkeypatch):
    monkeypatch.setattr("d3.dev.redis_server.shutil.which", lambda _name: None)
    with start_redis(tmp_path) as server:
        assert server.origin.startswith("embedded")
        assert redis.Redis.from_url(server.url).ping()
