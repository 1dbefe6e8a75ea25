"""The snapshotter on fakeredis and a real server: cut, incremental, publish, verify, restore."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import groupby
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
import redis

from kanban_redis import Board, BoardRestoring, RedisUnavailable, Status
from kanban_redis.keys import BoardKeys
from snapshot import schema
from snapshot.job import SnapshotJob
from snapshot.publisher import kept_copies, publish, temp_prefix
from snapshot.reader import BoardReader, LogGap
from snapshot.restore import BoardExists, NoSoundSnapshot, restore
from snapshot.snapshotter import Snapshotter, WouldClobber, take
from snapshot.sync import CutFailed, RedisBehind, bring_forward
from snapshot.verify import verify
from snapshot.writer import WorkingCopy, rebuild_path, work_path

#: Lease fields change without a seq bump (heartbeats); not board state.
LEASE = {"claim_expires_at", "heartbeat_at", "claim_token"}


def redis_tasks(r: Any, board: str) -> dict[str, dict[str, str]]:
    keys = BoardKeys(board)
    return {tid: {k: v for k, v in r.hgetall(keys.task(tid)).items() if k not in LEASE}
            for tid in r.zrange(keys.tasks, 0, -1)}


def snapshot_tasks(path: Path) -> dict[str, dict[str, str]]:
    conn = schema.connect(str(path), readonly=True)
    try:
        return {row["id"]: {k: v for k, v in schema.task_fields(row).items() if k not in LEASE}
                for row in conn.execute("SELECT * FROM tasks")}
    finally:
        conn.close()


def populate(b: Board) -> dict[str, str]:
    """A board with lanes, dependencies, a schedule, comments, a running and a finished task."""
    a = b.create("parent", assignee="lane-a", priority=5, idempotency_key="k-a", metadata={"m": 1})
    child = b.create("child", parents=[a.id], assignee="lane-a")
    later = b.create("later", not_before=2_000_000_000, assignee="lane-b")
    other = b.create("other", assignee="lane-b", body="some body")
    tri = b.create("triage", status="triage")
    b.comment(a.id, author="ann", body="first")
    claim = b.claim(assignee="lane-b", worker="w1")
    assert claim is not None and claim.task.id == other.id
    done = b.claim(assignee="lane-a", worker="w2")
    assert done is not None
    b.complete(done.task.id, done.token, result={"n": 1})
    return {"parent": a.id, "child": child.id, "later": later.id, "running": other.id, "triage": tri.id}


def test_full_snapshot_equals_board(board: Board, r: Any, tmp_path: Path) -> None:
    populate(board)
    db = tmp_path / "kanban.db"
    out = take(r, "t", db)
    assert out.published and out.mode == "full" and out.seq == board.seq
    v = verify(db)
    assert v.ok, v.reason
    assert v.meta["board"] == "t" and v.meta["seq"] == str(board.seq)
    assert v.meta["incarnation"] == r.hget(BoardKeys("t").meta, "incarnation")
    assert snapshot_tasks(db) == redis_tasks(r, "t")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM task_comments").fetchone()[0] == 1
    assert conn.execute("SELECT parent_id, child_id FROM task_links").fetchall() == [("1", "2")]
    runs = conn.execute("SELECT task_id, status, outcome FROM task_runs ORDER BY task_id").fetchall()
    assert runs == [("1", "done", "completed"), ("4", "running", None)]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert "claim_token" not in {c[1] for c in conn.execute("PRAGMA table_info(tasks)")}


def test_incremental_applies_only_the_log_and_skips_when_unchanged(board: Board, r: Any, tmp_path: Path) -> None:
    ids = populate(board)
    db = tmp_path / "kanban.db"
    take(r, "t", db)
    before = db.stat().st_ino
    again = take(r, "t", db)
    assert again.mode == "unchanged" and not again.published and db.stat().st_ino == before
    board.comment(ids["child"], author="bob", body="second")
    board.move(ids["triage"], "todo")
    out = take(r, "t", db)
    assert out.mode == "incremental" and out.seq == board.seq
    assert snapshot_tasks(db) == redis_tasks(r, "t")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT body FROM task_comments WHERE task_id = ?", (ids["child"],)).fetchall() == [("second",)]


def fsync_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("snapshot-fsync")]


def test_a_snapshotter_kept_between_takes_publishes_each_change(board: Board, r: Any, tmp_path: Path) -> None:
    """What the run daemon does: one Snapshotter, its working copy open, take after take."""
    ids = populate(board)
    db = tmp_path / "kanban.db"
    s = Snapshotter(r, "t", db)
    try:
        assert s.take().mode == "full"
        for i in range(3):
            board.comment(ids["child"], author="bob", body=f"note {i}")
            board.move(ids["triage"], "todo" if i % 2 == 0 else "triage")
            out = s.take()
            assert out.mode == "incremental" and verify(db).seq == out.seq == board.seq
            assert snapshot_tasks(db) == redis_tasks(r, "t")
        assert s.take().mode == "unchanged"
        assert len(fsync_threads()) == 1  # one for all its publishes
    finally:
        s.close()
    assert not fsync_threads()
    copies = kept_copies(db)
    assert len(copies) == 3  # each copy is named by its own taken_at_ms, known without reopening it
    assert all(c.name == f"kanban.db.{int(verify(c).meta['taken_at_ms']):013d}" for c in copies)


def test_a_kept_snapshotter_notices_a_file_replaced_behind_it(board: Board, r: Any, tmp_path: Path) -> None:
    """It remembers what it published only while that very file is in place: never clobber still holds."""
    ids = populate(board)
    db = tmp_path / "kanban.db"
    other = tmp_path / "other" / "kanban.db"
    other.parent.mkdir()
    Board(r, "u").create("another board's task")
    take(r, "u", other)
    s = Snapshotter(r, "t", db)
    try:
        s.take()
        (tmp_path / "copy").write_bytes(other.read_bytes())
        (tmp_path / "copy").replace(db)
        board.comment(ids["child"], author="bob", body="after the swap")
        with pytest.raises(WouldClobber, match="another board"):
            s.take()
    finally:
        s.close()
    assert verify(db).meta["board"] == "u"


def test_a_failed_take_leaves_nothing_half_applied(board: Board, r: Any, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """An error after a page was applied but before its commit: the next take starts from the last commit."""
    ids = populate(board)
    db = tmp_path / "kanban.db"
    s = Snapshotter(r, "t", db)
    try:
        s.take()
        board.comment(ids["child"], author="bob", body="once")
        board.move(ids["triage"], "todo")
        set_meta = WorkingCopy.set_meta

        def lost(self: WorkingCopy, meta: Any) -> None:
            raise RedisUnavailable("connection lost")

        monkeypatch.setattr(WorkingCopy, "set_meta", lost)
        with pytest.raises(RedisUnavailable):
            s.take()
        monkeypatch.setattr(WorkingCopy, "set_meta", set_meta)
        assert s.take().mode == "incremental"
    finally:
        s.close()
    fresh = tmp_path / "fresh" / "kanban.db"
    fresh.parent.mkdir()
    take(r, "t", fresh)
    tables = ("task_events", "task_comments", "task_runs")
    counts = [[sqlite3.connect(f).execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables]
              for f in (db, fresh)]
    assert counts[0] == counts[1] and snapshot_tasks(db) == redis_tasks(r, "t")


def test_a_run_over_all_boards_lets_go_of_a_board_that_left(r: Any, tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        Board(r, name).create(f"task of {name}")
    job = SnapshotJob(r, "all", tmp_path / "kanban.db", keep=3, force=False, warn=print)
    try:
        assert [o.board for o in job.tick()] == ["alpha", "beta"]
        r.delete(*r.keys(BoardKeys("beta").prefix + "*"))
        Board(r, "alpha").create("another task")
        assert [(o.board, o.mode) for o in job.tick()] == [("alpha", "incremental")]
        assert list(job.snapshotters) == [tmp_path / "kanban-alpha.db"]  # beta's working copy is closed
    finally:
        job.close()
    assert not job.snapshotters and verify(tmp_path / "kanban-beta.db").ok


def test_trimmed_log_falls_back_to_full_resync(board: Board, r: Any, tmp_path: Path) -> None:
    ids = populate(board)
    db = tmp_path / "kanban.db"
    take(r, "t", db)
    board.comment(ids["parent"], author="x", body="y")
    board.comment(ids["parent"], author="x", body="z")
    r.xtrim(BoardKeys("t").log, minid=f"{board.seq}-0", approximate=False)
    with pytest.raises(LogGap):
        list(BoardReader(r, "t").entries(board.seq - 1))
    out = take(r, "t", db)
    assert out.mode == "full" and snapshot_tasks(db) == redis_tasks(r, "t")


def trim_log(board: Board, r: Any) -> None:
    """Change the board twice and trim its log past the change before: the next take is a full resync."""
    tid = board.list(limit=1)[0].id
    board.comment(tid, author="x", body="y")
    board.comment(tid, author="x", body="z")
    r.xtrim(board.keys.log, minid=f"{board.seq}-0", approximate=False)


def test_a_full_resync_that_fails_midway_leaves_the_working_copy_as_it_was(
        board: Board, r: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The resync builds a new file: an error (or a kill) before its commit changes nothing."""
    import snapshot.reader as reader_mod

    monkeypatch.setattr(reader_mod, "TASK_PAGE", 2)
    populate(board)
    db = tmp_path / "kanban.db"
    take(r, "t", db)
    wc = WorkingCopy(work_path(db))
    before = (wc.meta, wc.conn.execute("SELECT * FROM tasks ORDER BY id").fetchall())
    wc.close()
    trim_log(board, r)
    original = BoardReader.pages

    def broken(self: BoardReader) -> Any:
        for page in original(self):
            yield page
            raise redis.ConnectionError("gone after one page")

    monkeypatch.setattr(BoardReader, "pages", broken)
    with pytest.raises(redis.ConnectionError):
        take(r, "t", db)
    assert not rebuild_path(work_path(db)).exists()
    wc = WorkingCopy(work_path(db))
    assert (wc.meta, wc.conn.execute("SELECT * FROM tasks ORDER BY id").fetchall()) == before
    wc.close()
    monkeypatch.setattr(BoardReader, "pages", original)
    out = take(r, "t", db)
    assert out.mode == "full" and snapshot_tasks(db) == redis_tasks(r, "t")


def test_a_board_replaced_during_a_full_resync_is_read_again(board: Board, r: Any, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import snapshot.reader as reader_mod

    monkeypatch.setattr(reader_mod, "TASK_PAGE", 2)
    for i in range(5):
        board.create(f"old {i}")
    original = BoardReader.pages
    reads = []

    def replacing(self: BoardReader) -> Any:
        reads.append(1)
        for page in original(self):
            yield page
            if len(reads) == 1:  # the first read: the board is replaced after its first page
                r.flushdb()
                Board(r, "t").create("the new board's task")
                return

    monkeypatch.setattr(BoardReader, "pages", replacing)
    wc = WorkingCopy(tmp_path / "work.db")
    result = bring_forward(BoardReader(r, "t"), wc)
    titles = [row[0] for row in wc.conn.execute("SELECT title FROM tasks")]
    wc.close()
    assert result.mode == "full" and len(reads) == 2
    assert titles == ["the new board's task"] and not rebuild_path(tmp_path / "work.db").exists()


def test_a_board_that_cannot_be_cut_leaves_the_working_copy_as_it_was(board: Board, r: Any, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import snapshot.reader as reader_mod

    monkeypatch.setattr(reader_mod, "TASK_PAGE", 2)
    for i in range(5):
        board.create(f"old {i}")
    wc = WorkingCopy(tmp_path / "work.db")
    bring_forward(BoardReader(r, "t"), wc)
    before = wc.meta
    trim_log(board, r)
    original = BoardReader.pages

    def replacing(self: BoardReader) -> Any:
        for page in original(self):
            yield page
            r.flushdb()  # every read: the board is replaced after its first page
            Board(r, "t").create("a new board's task")
            return

    monkeypatch.setattr(BoardReader, "pages", replacing)
    with pytest.raises(CutFailed):
        bring_forward(BoardReader(r, "t"), wc)
    assert wc.meta == before and not rebuild_path(tmp_path / "work.db").exists()
    wc.close()


def test_a_rebuild_left_by_a_kill_is_removed(board: Board, r: Any, tmp_path: Path) -> None:
    db = tmp_path / "kanban.db"
    tid = board.create("x").id
    take(r, "t", db)
    rebuild_path(work_path(db)).write_bytes(b"half a rebuild")
    board.comment(tid, author="a", body="b")
    out = take(r, "t", db)
    assert out.mode == "incremental" and snapshot_tasks(db) == redis_tasks(r, "t")
    assert not rebuild_path(work_path(db)).exists()


def test_a_small_change_is_read_with_the_head_in_one_round_trip(board: Board, r: Any, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Less than a page of log comes in the MULTI/EXEC that reads the seq: no XRANGE of its own."""
    ids = populate(board)
    db = tmp_path / "kanban.db"
    take(r, "t", db)
    board.comment(ids["child"], author="bob", body="new")
    board.move(ids["triage"], "todo")

    def no_xrange(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a separate XRANGE")

    monkeypatch.setattr(r, "xrange", no_xrange)
    out = take(r, "t", db)
    assert out.mode == "incremental" and out.seq == board.seq and snapshot_tasks(db) == redis_tasks(r, "t")


@pytest.mark.parametrize("page", [1, 2, 3])
def test_an_incremental_reads_on_past_a_full_first_page(board: Board, r: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch, page: int) -> None:
    import snapshot.reader as reader_mod

    ids = populate(board)
    db = tmp_path / "kanban.db"
    take(r, "t", db)
    monkeypatch.setattr(reader_mod, "LOG_PAGE", page)
    for i in range(7):
        board.comment(ids["child"], author="bob", body=f"c{i}")
    board.move(ids["triage"], "todo")
    out = take(r, "t", db)
    assert out.mode == "incremental" and out.seq == board.seq and snapshot_tasks(db) == redis_tasks(r, "t")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM task_comments").fetchone()[0] == 8


def test_publish_trims_the_log_up_to_the_published_seq(board: Board, r: Any, tmp_path: Path) -> None:
    populate(board)
    take(r, "t", tmp_path / "kanban.db")
    ids = [e[0] for e in r.xrange(BoardKeys("t").log)]
    assert ids[0] == f"{board.seq}-0"


def test_a_kept_snapshotter_trims_every_so_many_entries(board: Board, r: Any, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import snapshot.snapshotter as snapshotter_mod

    monkeypatch.setattr(snapshotter_mod, "TRIM_EVERY", 5)
    trims = []
    xtrim = r.xtrim
    monkeypatch.setattr(r, "xtrim", lambda *a, **kw: trims.append(kw["minid"]) or xtrim(*a, **kw))
    tid = board.create("x").id
    s = Snapshotter(r, "t", tmp_path / "kanban.db", force=True)
    try:
        s.take()
        first = board.seq
        for i in range(12):
            board.comment(tid, author="a", body=str(i))
            s.take()
        r.flushdb()
        Board(r, "t").create("a new board of the same name: its log starts over")
        s.take()
    finally:
        s.close()
    assert [minid for minid, _ in groupby(trims)] == [f"{first}-0", f"{first + 5}-0", f"{first + 10}-0", "1-0"]


def test_a_long_log_is_trimmed_in_chunks(board: Board, r: Any, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """One XTRIM drops only so much (10,000 entries by default): the trim goes on until it is done."""
    import snapshot.reader as reader_mod

    monkeypatch.setattr(reader_mod, "TRIM_CHUNK", 100)  # a stream node's entries: approximate trims drop whole nodes
    limits = []
    xtrim = r.xtrim
    monkeypatch.setattr(r, "xtrim", lambda *a, **kw: limits.append(kw["limit"]) or xtrim(*a, **kw))
    for i in range(250):
        board.create(f"t{i}")
    take(r, "t", tmp_path / "kanban.db")
    ids = [e[0] for e in r.xrange(BoardKeys("t").log)]
    assert int(ids[0].split("-")[0]) > board.seq - 100 and ids[-1] == f"{board.seq}-0"
    assert len(limits) >= 3 and set(limits) == {100}


def test_full_resync_replays_changes_made_while_reading(board: Board, r: Any, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Writers that run between the page reads end up in the cut at S1, exactly."""
    import snapshot.reader as reader_mod

    monkeypatch.setattr(reader_mod, "TASK_PAGE", 2)
    parents = [board.create(f"p{i}", assignee="q") for i in range(4)]
    children = [board.create(f"c{i}", parents=[p.id], assignee="q") for i, p in enumerate(parents)]
    original = BoardReader.pages
    step = {"n": 0}

    def meddling(self: BoardReader) -> Any:
        for page in original(self):
            yield page
            step["n"] += 1
            c = board.claim(assignee="q", worker="w")
            if c is not None:
                board.complete(c.task.id, c.token)
            board.comment(children[0].id, author="a", body=f"during {step['n']}")

    monkeypatch.setattr(BoardReader, "pages", meddling)
    wc = WorkingCopy(tmp_path / "work.db")
    result = bring_forward(BoardReader(r, "t"), wc)
    assert result.mode == "full" and step["n"] >= 3
    wc.close()
    rows = {row["id"]: schema.task_fields(row) for row in schema.connect(str(tmp_path / "work.db")).execute(
        "SELECT * FROM tasks")}
    # the cut is S1: nothing later, and every parent/child pair is coherent
    assert max(int(f["rev"]) for f in rows.values()) == result.seq
    for ch in children:
        parent = rows[schema.parents(rows[ch.id])[0]]
        if rows[ch.id]["status"] in ("ready", "running", "done"):
            assert parent["status"] == "done"
    conn = schema.connect(str(tmp_path / "work.db"))
    comments = [c[0] for c in conn.execute("SELECT body FROM task_comments ORDER BY id")]
    assert comments == [f"during {i}" for i in range(1, len(comments) + 1)]
    seqs = [s[0] for s in conn.execute("SELECT seq FROM task_events ORDER BY id")]
    assert len(seqs) == len(set((s, k) for s, k in conn.execute("SELECT seq, kind FROM task_events")))


@pytest.mark.parametrize("options", [{"decode_responses": False}, {"protocol": 3},
                                     {"protocol": 3, "decode_responses": True}])
def test_pages_read_the_same_with_any_client(real_redis: Any, redis_url: str, options: dict[str, Any]) -> None:
    """The page reader parses raw replies itself: bytes and RESP3 maps give the same tasks."""
    populate(Board(real_redis, "t"))
    expected = list(BoardReader(real_redis, "t").pages())
    client = redis.Redis.from_url(redis_url, **options)
    try:
        assert list(BoardReader(client, "t").pages()) == expected
    finally:
        client.close()


def test_a_failed_page_read_leaves_no_replies_behind(r: Any, board: Board) -> None:
    """An error reply mid-page drops the connection: the next command does not read stale replies."""
    ids = populate(board)
    events = board.keys.task_events(ids["child"])
    history = r.lrange(events, 0, -1)
    r.delete(events)
    r.set(events, "not a list")
    with pytest.raises(redis.ResponseError):
        list(BoardReader(r, "t").pages())
    assert r.get(events) == "not a list"
    r.delete(events)
    r.rpush(events, *history)
    pages = list(BoardReader(r, "t").pages())
    assert sorted(s["id"] for p in pages for s in p.states) == sorted(r.zrange(board.keys.tasks, 0, -1))


def test_never_clobber_a_snapshot_with_an_empty_or_other_board(r: Any, tmp_path: Path) -> None:
    db = tmp_path / "kanban.db"
    b = Board(r, "t")
    populate(b)
    take(r, "t", db)
    r.flushdb()
    with pytest.raises(WouldClobber, match="missing or empty.*kanban-snapshot restore"):
        take(r, "t", db)
    Board(r, "t").create("a new board of the same name")
    with pytest.raises(WouldClobber, match="another board.*restore"):
        take(r, "t", db)
    assert verify(db).meta["task_count"] == "5"
    assert take(r, "t", db, force=True).published


def test_redis_behind_the_snapshot_is_refused(board: Board, r: Any, tmp_path: Path) -> None:
    populate(board)
    db = tmp_path / "kanban.db"
    take(r, "t", db)
    r.set(BoardKeys("t").seq, 2)
    with pytest.raises(RedisBehind):
        take(r, "t", db)


def publish_after_each_change(board: Board, r: Any, db: Path, times: int, keep: int) -> None:
    """``times`` snapshots of board "t" into ``db``, each after one more change (a comment)."""
    tid = board.create("x").id
    for i in range(times):
        board.comment(tid, author="a", body=str(i))
        take(r, "t", db, keep=keep)


def test_keeps_k_copies_and_leaves_no_temp_files(board: Board, r: Any, tmp_path: Path) -> None:
    db = tmp_path / "kanban.db"
    publish_after_each_change(board, r, db, times=8, keep=3)
    copies = kept_copies(db)
    assert len(copies) == 3
    assert [verify(c).seq for c in copies] == sorted((verify(c).seq for c in copies), reverse=True)
    assert all(verify(c).ok for c in copies) and verify(copies[0]).seq < verify(db).seq
    assert not list(tmp_path.glob(temp_prefix(db) + "*"))
    for published in (db, *copies):
        conn = sqlite3.connect(f"file:{published}?mode=ro", uri=True)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        conn.close()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(("-wal", "-shm"))]


@pytest.mark.parametrize("keep", [0, 1, 2])
def test_kept_copies_never_exceed_keep_even_while_publishing(board: Board, r: Any, tmp_path: Path, keep: int,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The oldest copy goes before the current file gets its kept-copy name, not after the rename."""
    import snapshot.publisher as publisher_mod

    db = tmp_path / "kanban.db"
    at_rename: list[int] = []
    rename = os.rename

    def counting_rename(src: Path, dst: Path) -> None:
        if Path(dst) == db:  # (not the working copy's rebuild, the first time)
            at_rename.append(len(kept_copies(db)))
        rename(src, dst)

    monkeypatch.setattr(publisher_mod.os, "rename", counting_rename)
    publish_after_each_change(board, r, db, times=5, keep=keep)
    assert at_rename == [min(n, keep) for n in range(5)]
    assert len(kept_copies(db)) == keep and verify(db).ok


def test_publish_failure_leaves_the_old_file_and_one_kept_copy_fewer_never_more(board: Board, r: Any,
                                                                                tmp_path: Path) -> None:
    db = tmp_path / "kanban.db"
    publish_after_each_change(board, r, db, times=4, keep=2)
    before = kept_copies(db)
    old = db.read_bytes()
    wc = WorkingCopy(work_path(db))

    def boom(temp: Path) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError):
        publish(wc.conn, db, keep=2, before_rename=boom)
    wc.close()
    assert db.read_bytes() == old
    assert not list(tmp_path.glob(temp_prefix(db) + "*"))
    assert kept_copies(db) == before[:1]  # the oldest went while the new file was built


def test_a_failed_check_waits_for_the_fsync_before_removing_the_file(board: Board, r: Any, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import snapshot.publisher as publisher_mod

    db = tmp_path / "kanban.db"
    board.create("x")
    synced: list[bool] = []

    def slow_fsync(path: Path) -> None:
        time.sleep(0.2)
        synced.append(path.exists())

    def bad_check(path: Path) -> str:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(publisher_mod, "fsync_file", slow_fsync)
    monkeypatch.setattr(publisher_mod, "_quick_check", bad_check)
    wc = WorkingCopy(work_path(db))
    with ThreadPoolExecutor(1) as fsyncs:
        with pytest.raises(sqlite3.DatabaseError):
            publish(wc.conn, db, fsyncs=fsyncs)
        assert synced == [True]  # the fsync ran on the file and ended before the publish gave up
    wc.close()
    assert not db.exists() and not list(tmp_path.glob(temp_prefix(db) + "*"))


def test_verify_rejects_damaged_files(board: Board, r: Any, tmp_path: Path) -> None:
    db = tmp_path / "kanban.db"
    board.create("x")
    take(r, "t", db)
    bad = tmp_path / "bad.db"
    bad.write_bytes(db.read_bytes()[:4096] + b"\0garbage" * 1000)
    assert not verify(bad).ok
    assert verify(tmp_path / "missing.db").reason == "no such file"

    def tampered(sql: str) -> str:
        copy = tmp_path / "copy.db"
        copy.write_bytes(db.read_bytes())
        conn = sqlite3.connect(copy)
        conn.execute(sql)
        conn.commit()
        conn.close()
        return verify(copy).reason

    assert "schema version 99" in tampered("UPDATE snapshot_meta SET value = '99' WHERE key = 'schema_version'")
    assert "after the snapshot's seq" in tampered("UPDATE tasks SET rev = 1000")
    assert "tasks but snapshot_meta says" in tampered("DELETE FROM tasks")
    assert "lacks seq" in tampered("DELETE FROM snapshot_meta WHERE key = 'seq'")


def test_restore_round_trip_and_the_board_works(r: Any, tmp_path: Path, clock: Any) -> None:
    src = Board(r, "t", clock=clock)
    ids = populate(src)
    db = tmp_path / "kanban.db"
    take(r, "t", db)
    before = redis_tasks(r, "t")
    seq = src.seq
    r.flushdb()

    result = restore(r, "t", db)
    assert result.tasks == 5 and result.requeued == 1 and result.seq == seq
    b = Board(r, "t", clock=clock)
    assert b.seq > seq
    after = redis_tasks(r, "t")
    for tid, fields in before.items():
        if tid == ids["running"]:
            continue
        assert after[tid] == fields
    assert b.get(ids["running"]).status == Status.READY
    assert b.history(ids["running"])[-1].kind == "requeued"
    assert [c.body for c in b.comments(ids["parent"])] == ["first"]
    assert b.list(status="scheduled")[0].id == ids["later"]
    assert b.get(ids["parent"]).status == Status.DONE
    assert b.create("again", idempotency_key="k-a").id == ids["parent"]
    # claims, dependencies and lanes work on the restored board
    c = b.claim(assignee="lane-a", worker="w9")
    assert c is not None and c.task.id == ids["child"]
    b.complete(c.task.id, c.token)
    c = b.claim(assignee="lane-b", worker="w9")
    assert c is not None and c.task.id == ids["running"]
    b.fail(c.task.id, c.token, error="boom", retry=False)
    assert b.get(ids["running"]).status == Status.BLOCKED
    clock.advance(3e8)
    assert b.promote_due() == 1
    grand = b.create("grandchild", parents=[ids["child"]], assignee="lane-a")
    assert grand.status == Status.READY
    # and the snapshotter follows the restored board (new incarnation, restored_from the old one)
    out = take(r, "t", db)
    assert out.published and snapshot_tasks(db) == redis_tasks(r, "t")


def board_state(r: Any, board: str) -> dict[str, Any]:
    """Every key of the board and its value, but for what restore_end rewrites (meta, seq, log)
    and the claimers' wake-up markers; histories and comments parsed, leases left out of hashes."""
    keys = BoardKeys(board)
    state: dict[str, Any] = {}
    for key in r.scan_iter(match=keys.pattern):
        if key in (keys.meta, keys.seq, keys.log) or key.startswith(keys.signal("")):
            continue
        kind = r.type(key)
        if kind == "hash":
            state[key] = {k: v for k, v in r.hgetall(key).items() if k not in LEASE}
        elif kind == "zset":
            state[key] = r.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            state[key] = sorted(r.smembers(key))
        elif kind == "list":
            state[key] = [json.loads(line) for line in r.lrange(key, 0, -1)]
        else:
            state[key] = r.get(key)
    return state


def test_restore_load_rebuilds_every_key_the_board_had(board: Board, r: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Before running tasks are requeued, the loaded board equals the snapshotted one, index by index."""
    import snapshot.restore as restore_mod

    ids = populate(board)
    board.create("waits", parents=[ids["later"]], assignee="lane-b", idempotency_key="k-w")
    for priority in (3, -2, 3):
        board.create(f"p{priority}", assignee="lane-c", priority=priority)
    blocked = board.create("stuck", assignee="lane-c")
    board.move(blocked.id, "blocked")
    db = tmp_path / "kanban.db"
    take(r, "t", db)
    before = board_state(r, "t")
    r.flushdb()
    monkeypatch.setattr(restore_mod, "LOAD_BATCH", 3)
    rs = restore_mod._Restorer(r, "t")
    rs.run("restore_begin", "m", "0")
    assert rs.load("m", restore_mod.snapshot_batches(db), None) == int(verify(db).meta["task_count"]) == 10
    after = board_state(r, "t")
    assert after.pop(board.keys.restoring) == "m"
    assert after == before
    rs.load("m", restore_mod.snapshot_batches(db), None)  # every batch sent again replaces what it loaded
    assert board_state(r, "t") == {**after, board.keys.restoring: "m"}
    for lane in ("lane-a", "lane-c"):
        assert r.zrange(board.keys.signal(lane), 0, -1) == ["m"]


_KINDS = {field: kind for _, field, kind in schema.TASK_COLUMNS}
_NUMBER = st.integers(-(2**53), 2**53).map(str)
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)


@given(st.dictionaries(st.sampled_from([*_KINDS, "extra_a", "extra_b"]), _TEXT).flatmap(
    lambda fields: st.fixed_dictionaries({k: _NUMBER if _KINDS.get(k) in ("int", "time") and v else st.just(v)
                                          for k, v in fields.items()})))
def test_sqlite_writes_the_same_task_fields_as_python(fields: dict[str, str]) -> None:
    """Restore builds task hashes with TASK_FIELDS_SQL: it must agree with task_fields on any row."""
    fields = {**fields, "id": "7"}
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    schema.create(conn)
    conn.execute(schema.TASK_INSERT, schema.task_row(fields))
    row = conn.execute(f"SELECT *, {schema.TASK_FIELDS_SQL} AS j FROM tasks").fetchone()
    assert json.loads(row["j"]) == schema.task_fields(row)


def test_restore_refuses_a_populated_board_unless_asked(board: Board, r: Any, tmp_path: Path) -> None:
    populate(board)
    db = tmp_path / "kanban.db"
    take(r, "t", db)
    board.create("newer")
    with pytest.raises(BoardExists, match="newer than the snapshot"):
        restore(r, "t", db)
    assert restore(r, "t", db, if_empty=True).skipped
    assert len(board.list()) == 6
    forced = restore(r, "t", db, force=True)
    assert any("newer than the snapshot" in n for n in forced.notes)
    assert len(Board(r, "t").list()) == 5


def test_restore_falls_back_to_the_newest_sound_copy(board: Board, r: Any, tmp_path: Path) -> None:
    db = tmp_path / "kanban.db"
    tid = board.create("x").id
    take(r, "t", db)
    board.comment(tid, author="a", body="b")
    take(r, "t", db)
    good_seq = verify(kept_copies(db)[0]).seq
    db.write_bytes(b"not a database at all" * 100)
    r.flushdb()
    result = restore(r, "t", db)
    assert result.source == kept_copies(db)[0] and result.seq == good_seq
    assert "kanban.db" in result.notes[0]
    for p in [db, *kept_copies(db)]:
        p.write_bytes(b"junk")
    r.flushdb()
    with pytest.raises(NoSoundSnapshot):
        restore(r, "t", db)


def test_a_crashed_restore_keeps_the_board_closed_and_can_be_rerun(board: Board, r: Any, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import snapshot.restore as restore_mod

    populate(board)
    db = tmp_path / "kanban.db"
    take(r, "t", db)
    r.flushdb()
    monkeypatch.setattr(restore_mod, "LOAD_BATCH", 2)
    monkeypatch.setattr(restore_mod, "LOAD_PIPELINE", 1)
    calls = {"n": 0}
    original = restore_mod._Restorer.check

    def dies(reply: list[Any]) -> list[Any]:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed mid-restore")
        return original(reply)

    monkeypatch.setattr(restore_mod._Restorer, "check", staticmethod(dies))
    opened: list[sqlite3.Connection] = []
    connect = schema.connect
    monkeypatch.setattr(schema, "connect", lambda *a, **kw: opened.append(connect(*a, **kw)) or opened[-1])
    with pytest.raises(KeyboardInterrupt):
        restore(r, "t", db)
    for conn in opened:  # the interrupted load closed the snapshot it was reading (in this thread)
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            conn.execute("SELECT 1")
    monkeypatch.setattr(restore_mod._Restorer, "check", staticmethod(original))
    with pytest.raises(BoardRestoring):
        Board(r, "t").create("while restoring")
    with pytest.raises(BoardRestoring):
        take(r, "t", db)
    result = restore(r, "t", db)
    assert "took over" in result.notes[0]
    assert len(Board(r, "t").list()) == 5
    assert Board(r, "t").create("after").status == Status.READY


def test_restore_survives_losing_its_functions_while_it_loads(board: Board, r: Any, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls that meet "Function not found" (FUNCTION FLUSH mid-restore) are sent again, once loaded back."""
    import snapshot.restore as restore_mod

    running = populate(board)["running"]
    db = tmp_path / "kanban.db"
    take(r, "t", db)
    before = board_state(r, "t")
    r.flushdb()
    monkeypatch.setattr(restore_mod, "LOAD_BATCH", 1)
    loaded: list[int] = []

    def flush_once(n: int) -> None:
        if not loaded:
            r.function_flush()
        loaded.append(n)

    result = restore(r, "t", db, progress=flush_once)
    assert result.tasks == sum(loaded) == 5
    def tasks(state: dict[str, Any]) -> dict[str, Any]:
        """Every task's keys but the running one's (requeued by the restore)."""
        return {k: v for k, v in state.items()
                if k.startswith(board.keys.task("")) and not k.startswith(board.keys.task(running))}

    assert tasks(board_state(r, "t")) == tasks(before)
    assert Board(r, "t").history(running)[-1].kind == "requeued"


def test_an_unreadable_working_copy_is_rebuilt(board: Board, r: Any, tmp_path: Path) -> None:
    db = tmp_path / "kanban.db"
    tid = board.create("x").id
    take(r, "t", db)
    work_path(db).write_bytes(b"garbage" * 1000)
    board.comment(tid, author="a", body="b")
    out = take(r, "t", db)
    assert out.mode == "full" and snapshot_tasks(db) == redis_tasks(r, "t")


def test_restore_scripts_refuse_a_restore_that_was_taken_over(board: Board, r: Any, tmp_path: Path) -> None:
    from kanban_redis.errors import BoardRestoring as Restoring
    from snapshot.restore import _Restorer

    rs = _Restorer(r, "t")
    assert rs.run("restore_begin", "first", "0")[1] == "started"
    assert rs.run("restore_begin", "second", "0")[1:] == ["resumed", "first"]
    with pytest.raises(Restoring, match="second"):
        rs.run("restore_load", "first", "[]")
    with pytest.raises(Restoring):
        rs.run("restore_end", "first", 1, "inc", "", "old", 10)
    assert rs.run("restore_end", "second", 5, "inc", "", "old", 10)[1:] == [0, 0]
    assert board.seq == 6 and r.get(board.keys.restoring) is None
    assert board.create("after").rev == 7
