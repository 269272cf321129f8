"""JetStream streams through nats-py: the stream API, the publish path and
its headers, limits, message get/delete/purge, direct get, and the
durability of acknowledged messages across a kill -9.

Runs against the server NATRIX_SERVER names (natrix by default); every
test passes against nats-server 2.15.1 too."""

import asyncio
import json
import os
import tempfile

import nats
import pytest
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, BadRequestError, NotFoundError

from test_nats_py import connect, run


def js_server(start_server, store=None):
    store = store or tempfile.mkdtemp(prefix="natrix-js-")
    return start_server(args=["-js", "-sd", store]), store


@run
async def _account_info(srv):
    nc = await connect(srv)
    jsm = nc.jsm()
    info = await jsm.account_info()
    assert info.streams == 0
    assert info.memory == 0 and info.storage == 0
    await jsm.add_stream(name="A", subjects=["a.>"], storage=StorageType.MEMORY)
    info = await jsm.account_info()
    assert info.streams == 1
    await nc.close()


def test_account_info(start_server):
    srv, _ = js_server(start_server)
    _account_info(srv)


@run
async def _create_publish_info(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    si = await js.add_stream(name="ORDERS", subjects=["orders.*"])
    assert si.config.name == "ORDERS"
    assert si.config.max_msgs == -1 and si.config.max_bytes == -1
    assert si.config.duplicate_window == 120.0
    assert si.state.messages == 0
    for i in range(1, 11):
        ack = await js.publish(f"orders.{i % 3}", f"order {i}".encode())
        assert ack.stream == "ORDERS" and ack.seq == i and not ack.duplicate
    si = await js.stream_info("ORDERS")
    assert si.state.messages == 10
    assert si.state.first_seq == 1 and si.state.last_seq == 10
    si = await js.stream_info("ORDERS", subjects_filter="orders.*")
    assert si.state.subjects == {"orders.0": 3, "orders.1": 4, "orders.2": 3}
    # The same configuration again returns the stream; a different one is refused.
    await js.add_stream(name="ORDERS", subjects=["orders.*"])
    with pytest.raises(BadRequestError) as e:
        await js.add_stream(name="ORDERS", subjects=["orders.>"])
    assert e.value.err_code == 10058
    with pytest.raises(BadRequestError) as e:
        await js.add_stream(name="OTHER", subjects=["orders.1"])
    assert e.value.err_code == 10065
    with pytest.raises(NotFoundError) as e:
        await js.stream_info("NOPE")
    assert e.value.err_code == 10059
    await nc.close()


def test_create_publish_info(start_server):
    srv, _ = js_server(start_server)
    _create_publish_info(srv)


@run
async def _dedupe_and_expectations(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    await js.add_stream(name="D", subjects=["d.>"], storage=StorageType.MEMORY)
    ack = await js.publish("d.1", b"x", headers={"Nats-Msg-Id": "m1"})
    assert ack.seq == 1 and not ack.duplicate
    ack = await js.publish("d.1", b"x", headers={"Nats-Msg-Id": "m1"})
    assert ack.seq == 1 and ack.duplicate
    ack = await js.publish("d.2", b"y", headers={"Nats-Expected-Last-Sequence": "1"})
    assert ack.seq == 2
    with pytest.raises(APIError) as e:
        await js.publish("d.2", b"z", headers={"Nats-Expected-Last-Sequence": "1"})
    assert e.value.err_code == 10071
    with pytest.raises(APIError) as e:
        await js.publish("d.2", b"z", headers={"Nats-Expected-Stream": "OTHER"})
    assert e.value.err_code == 10060
    ack = await js.publish("d.1", b"w", headers={"Nats-Expected-Last-Subject-Sequence": "1"})
    assert ack.seq == 3
    with pytest.raises(APIError) as e:
        await js.publish("d.1", b"w", headers={"Nats-Expected-Last-Subject-Sequence": "1"})
    assert e.value.err_code == 10071
    ack = await js.publish("d.3", b"v", headers={"Nats-Msg-Id": "m9"})
    with pytest.raises(APIError) as e:
        await js.publish("d.3", b"v", headers={"Nats-Expected-Last-Msg-Id": "nope"})
    assert e.value.err_code == 10070
    ack = await js.publish("d.3", b"u", headers={"Nats-Expected-Last-Msg-Id": "m9"})
    assert ack.seq == 5
    await nc.close()


def test_dedupe_and_expectations(start_server):
    srv, _ = js_server(start_server)
    _dedupe_and_expectations(srv)


@run
async def _limits(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    await js.add_stream(name="OLD", subjects=["old"], max_msgs=3)
    for i in range(5):
        await js.publish("old", str(i).encode())
    si = await js.stream_info("OLD")
    assert (si.state.messages, si.state.first_seq, si.state.last_seq) == (3, 3, 5)
    await js.add_stream(name="NEW", subjects=["new"], max_msgs=2, discard=DiscardPolicy.NEW)
    await js.publish("new", b"1")
    await js.publish("new", b"2")
    with pytest.raises(APIError) as e:
        await js.publish("new", b"3")
    assert e.value.err_code == 10077
    await js.add_stream(name="PER", subjects=["per.*"], max_msgs_per_subject=1)
    for s in ["per.a", "per.b", "per.a", "per.a"]:
        await js.publish(s, b"x")
    si = await js.stream_info("PER")
    assert si.state.messages == 2 and si.state.last_seq == 4
    await js.add_stream(name="AGE", subjects=["age"], max_age=0.5, storage=StorageType.MEMORY)
    await js.publish("age", b"x")
    assert (await js.stream_info("AGE")).state.messages == 1
    await asyncio.sleep(1.5)
    assert (await js.stream_info("AGE")).state.messages == 0
    await nc.close()


def test_limits(start_server):
    srv, _ = js_server(start_server)
    _limits(srv)


@run
async def _get_delete_purge(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    await js.add_stream(name="G", subjects=["g.*"], allow_direct=True)
    for i in range(1, 7):
        await js.publish(f"g.{i % 2}", f"m{i}".encode(), headers={"X-N": str(i)})
    m = await js.get_msg("G", seq=2)
    assert (m.subject, m.seq, m.data) == ("g.0", 2, b"m2")
    assert m.headers["X-N"] == "2"
    m = await js.get_last_msg("G", "g.1")
    assert (m.seq, m.data) == (5, b"m5")
    m = await js.get_msg("G", seq=2, subject="g.1", next=True)
    assert m.seq == 3
    m = await js.get_msg("G", seq=4, direct=True)
    assert m.data == b"m4" and m.seq == 4 and m.subject == "g.0"
    m = await js.get_last_msg("G", "g.0", direct=True)
    assert m.seq == 6
    with pytest.raises(NotFoundError):
        await js.get_msg("G", seq=99, direct=True)
    assert await js.delete_msg("G", 2)
    with pytest.raises(NotFoundError) as e:
        await js.get_msg("G", seq=2)
    assert e.value.err_code == 10037
    si = await js.stream_info("G")
    assert si.state.messages == 5 and si.state.num_deleted == 1
    assert await js.purge_stream("G", subject="g.1", keep=1)
    si = await js.stream_info("G")
    assert si.state.messages == 3
    assert await js.purge_stream("G")
    si = await js.stream_info("G")
    assert si.state.messages == 0 and si.state.first_seq == 7 and si.state.last_seq == 6
    ack = await js.publish("g.1", b"after")
    assert ack.seq == 7
    names = [s.config.name for s in await js.streams_info()]
    assert names == ["G"]
    assert await js.delete_stream("G")
    with pytest.raises(NotFoundError):
        await js.delete_stream("G")
    await nc.close()


def test_get_delete_purge(start_server):
    srv, _ = js_server(start_server)
    _get_delete_purge(srv)


@run
async def _publish_some(srv, n):
    nc = await connect(srv)
    js = nc.jetstream()
    await js.add_stream(name="DUR", subjects=["dur.>"])
    acks = await asyncio.gather(*[js.publish(f"dur.{i % 4}", f"msg {i}".encode()) for i in range(n)])
    assert sorted(a.seq for a in acks) == list(range(1, n + 1))
    await js.delete_msg("DUR", 5)
    await nc.close()


@run
async def _check_restored(srv, n):
    nc = await connect(srv)
    js = nc.jetstream()
    si = await js.stream_info("DUR")
    assert si.state.messages == n - 1
    assert si.state.last_seq == n
    m = await js.get_msg("DUR", seq=n)
    assert m.data.startswith(b"msg ")
    with pytest.raises(NotFoundError):
        await js.get_msg("DUR", seq=5)
    ack = await js.publish("dur.x", b"next")
    assert ack.seq == n + 1
    await nc.close()


def test_acknowledged_messages_survive_kill(start_server):
    """Every acknowledged message is there after kill -9 and a restart."""
    srv, store = js_server(start_server)
    _publish_some(srv, 300)
    srv.proc.kill()
    srv.proc.wait(timeout=10)
    again, _ = js_server(start_server, store)
    _check_restored(again, 300)


@run
async def _stream_advisories(srv):
    nc = await connect(srv)
    got = []
    sub = await nc.subscribe("$JS.EVENT.ADVISORY.STREAM.>")
    js = nc.jetstream()
    await js.add_stream(name="ADV", subjects=["adv.>"])
    await js.add_stream(name="ADV", subjects=["adv.>"])  # the same again: no advisory
    await js.update_stream(name="ADV", subjects=["adv.>"], max_msgs=10)
    await js.delete_stream("ADV")
    for _ in range(3):
        msg = await sub.next_msg(timeout=2)
        got.append((msg.subject, json.loads(msg.data)))
    with pytest.raises(nats.errors.TimeoutError):
        await sub.next_msg(timeout=0.3)
    assert [s for s, _ in got] == [
        "$JS.EVENT.ADVISORY.STREAM.CREATED.ADV",
        "$JS.EVENT.ADVISORY.STREAM.UPDATED.ADV",
        "$JS.EVENT.ADVISORY.STREAM.DELETED.ADV",
    ]
    assert [a["action"] for _, a in got] == ["create", "modify", "delete"]
    for _, a in got:
        assert a["type"] == "io.nats.jetstream.advisory.v1.stream_action"
        assert a["stream"] == "ADV" and len(a["id"]) == 22 and a["timestamp"].endswith("Z")
    await nc.close()


def test_stream_advisories(start_server):
    srv, _ = js_server(start_server)
    _stream_advisories(srv)


@run
async def _transform_and_republish(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    copies = await nc.subscribe("copy.>")
    await nc.jsm().add_stream(config=StreamConfig.from_response({
        "name": "TR",
        "subjects": ["in.*.*"],
        "subject_transform": {"src": "in.*.*", "dest": "stored.{{wildcard(2)}}.$1"},
        "republish": {"src": "stored.>", "dest": "copy.>"},
    }))
    await nc.jsm().add_stream(config=StreamConfig.from_response({
        "name": "HO",
        "subjects": ["ho.>"],
        "republish": {"src": ">", "dest": "hocopy.>", "headers_only": True},
    }))
    ack = await js.publish("in.a.b", b"one", headers={"X": "1"})
    assert ack.seq == 1
    await js.publish("in.a.b", b"two")
    msg = await js.get_msg("TR", seq=1)
    assert msg.subject == "stored.b.a"
    first = await copies.next_msg(timeout=2)
    assert first.subject == "copy.b.a" and first.data == b"one"
    assert first.headers["X"] == "1"
    assert first.headers["Nats-Stream"] == "TR" and first.headers["Nats-Subject"] == "stored.b.a"
    assert first.headers["Nats-Sequence"] == "1" and first.headers["Nats-Last-Sequence"] == "0"
    assert first.headers["Nats-Time-Stamp"].endswith("Z")
    second = await copies.next_msg(timeout=2)
    assert second.headers["Nats-Sequence"] == "2" and second.headers["Nats-Last-Sequence"] == "1"
    ho = await nc.subscribe("hocopy.>")
    await js.publish("ho.x", b"12345")
    only = await ho.next_msg(timeout=2)
    assert only.data == b"" and only.headers["Nats-Msg-Size"] == "5"
    await nc.close()


def test_subject_transform_and_republish(start_server):
    srv, _ = js_server(start_server)
    _transform_and_republish(srv)


@run
async def _republish_into_streams(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    jsm = nc.jsm()
    await jsm.add_stream(config=StreamConfig.from_response({
        "name": "SRC", "subjects": ["source.>"],
        "republish": {"src": ">", "dest": "dest.>"},
    }))
    await jsm.add_stream(name="DEST", subjects=["dest.>"])
    # A stream may keep JetStream's own advisories, as any other subject.
    await jsm.add_stream(name="ADV", subjects=["$JS.EVENT.ADVISORY.STREAM.>"])
    for i in range(20):
        await js.publish(f"source.{i}", str(i).encode())
    await jsm.add_stream(name="LATE", subjects=["late.>"])
    for _ in range(50):
        if (await js.stream_info("DEST")).state.messages == 20:
            break
        await asyncio.sleep(0.05)
    assert (await js.stream_info("DEST")).state.messages == 20
    third = await js.get_msg("DEST", seq=3)
    assert third.subject == "dest.source.2" and third.data == b"2"
    assert third.headers["Nats-Stream"] == "SRC" and third.headers["Nats-Sequence"] == "3"
    # Its own creation is the first advisory it keeps (nats-server 2.15.1).
    assert (await js.get_msg("ADV", seq=1)).subject == "$JS.EVENT.ADVISORY.STREAM.CREATED.ADV"
    created = await js.get_msg("ADV", subject="$JS.EVENT.ADVISORY.STREAM.CREATED.LATE")
    assert json.loads(created.data)["stream"] == "LATE"
    await nc.close()


def test_republished_messages_reach_other_streams(start_server):
    srv, _ = js_server(start_server)
    _republish_into_streams(srv)


@run
async def _consumer_limits_update(srv):
    nc = await connect(srv)
    req = lambda subject, body: nc.request(subject, json.dumps(body).encode())
    await req("$JS.API.STREAM.CREATE.events", {"name": "events", "subjects": ["events"]})
    await req("$JS.API.CONSUMER.CREATE.events.name",
              {"stream_name": "events", "config": {"durable_name": "name", "ack_policy": "explicit"}})
    limited = {"name": "events", "subjects": ["events"],
               "consumer_limits": {"inactive_threshold": 2_000_000_000, "max_ack_pending": 10}}
    refused = json.loads((await req("$JS.API.STREAM.UPDATE.events", limited)).data)
    assert refused["error"] == {"code": 500, "err_code": 10069,
                                "description": "change to limits violates consumers: name"}
    # A durable consumer has no inactive threshold: that limit alone is fine.
    del limited["consumer_limits"]["max_ack_pending"]
    updated = json.loads((await req("$JS.API.STREAM.UPDATE.events", limited)).data)
    assert "error" not in updated and updated["config"]["consumer_limits"]["inactive_threshold"] == 2_000_000_000
    await nc.close()


def test_stream_update_refuses_limits_its_consumers_exceed(start_server):
    srv, _ = js_server(start_server)
    _consumer_limits_update(srv)


@run
async def _transform_functions(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    await nc.jsm().add_stream(config=StreamConfig.from_response({
        "name": "FN",
        "subjects": ["orders.*.*"],
        "subject_transform": {"src": "orders.*.*",
                              "dest": "o.{{partition(5,1,2)}}.{{splitFromLeft(2,2)}}.$1"},
    }))
    stored = []
    for i in range(12):
        await js.publish(f"orders.c{i}.{i * 1234}", b"x")
        stored.append((await js.get_msg("FN", seq=i + 1)).subject)
    await nc.close()
    return stored


def test_stream_transforms_apply_mapping_functions(start_server):
    # Partitions by nats-server's hash: the same buckets on either server.
    srv, _ = js_server(start_server)
    stored = asyncio.run(asyncio.wait_for(_transform_functions.__wrapped__(srv), timeout=30))
    assert stored[0] == "o.3.0.c0"
    assert stored[1] == "o.4.12.34.c1"
    assert all(s.startswith("o.") and int(s.split(".")[1]) < 5 for s in stored), stored
