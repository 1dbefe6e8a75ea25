"""Connections: timeouts, unreachable servers, passwords, ACL users and TLS."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from kanban_redis import Board, InvalidInput, KanbanError, RedisUnavailable, Status
from kanban_redis.connection import mask_url
from kanban_redis.local import RedisServer, free_port


def test_mask_url_hides_only_the_password() -> None:
    assert mask_url("redis://alice:s3cret@h:6380/2") == "redis://alice:***@h:6380/2"
    assert mask_url("rediss://:s3cret@h/0") == "rediss://:***@h/0"
    assert mask_url("redis://h:6379/0") == "redis://h:6379/0"


def test_unreachable_redis_is_a_kanban_error_with_a_masked_url() -> None:
    port = free_port()
    board = Board.from_url(f"redis://bob:hunter2@127.0.0.1:{port}/0", board="b", connect_timeout=0.5)
    for call in (lambda: board.get("1"), lambda: board.create("t"), lambda: board.claim(worker="w")):
        with pytest.raises(RedisUnavailable) as info:
            call()
        msg = str(info.value)
        assert isinstance(info.value, KanbanError)
        assert "hunter2" not in msg and f"bob:***@127.0.0.1:{port}" in msg


def test_unreachable_redis_through_a_callers_client_is_masked_too() -> None:
    client = redis.Redis(port=free_port(), password="hunter2", socket_connect_timeout=0.5,
                         retry=Retry(NoBackoff(), 0))
    with pytest.raises(RedisUnavailable) as info:
        Board(client, "b").get("1")
    assert "hunter2" not in str(info.value) and ":***@" in str(info.value)


def test_bad_url_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="redis_url"):
        Board.from_url("http://nope", board="b")


def test_library_clients_have_timeouts_and_no_blind_retries() -> None:
    board = Board.from_url("redis://127.0.0.1:6379/0", board="b")
    kw = board.redis.connection_pool.connection_kwargs
    assert kw["socket_timeout"] == 10.0 and kw["socket_connect_timeout"] == 5.0
    assert kw["retry"].get_retries() == 0


def test_password_and_acl_user() -> None:
    with RedisServer(extra_args=("--requirepass", "pw1")) as srv:
        admin = redis.Redis(port=srv.port, password="pw1")
        admin.acl_setuser("worker", enabled=True, passwords=["+pw2"], keys=["kb:*"],
                          commands=["+@all"])
        by_password = Board.from_url(f"redis://:pw1@127.0.0.1:{srv.port}/0", board="p")
        assert by_password.create("t").status == Status.READY
        by_user = Board.from_url(f"redis://worker:pw2@127.0.0.1:{srv.port}/0", board="p")
        assert by_user.get("1").title == "t"
        wrong = Board.from_url(f"redis://worker:nope@127.0.0.1:{srv.port}/0", board="p")
        with pytest.raises(RedisUnavailable, match="refused the credentials") as info:
            wrong.get("1")
        assert "nope" not in str(info.value)
        admin.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    tls_port = free_port()
    args = ("--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
            "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no")
    with RedisServer(extra_args=args):
        board = Board.from_url(f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={cert}", board="tls")
        t = board.create("over tls")
        assert board.get(t.id).title == "over tls"
