"""JetStream consumers through nats-py: the consumer API, pull subscriptions
(fetch, batches, no-wait, expiry), push subscriptions, acknowledgements
(ack, nak, term, in-progress, double ack), redelivery after ack wait,
max_deliver, and durable consumer state across a kill -9.

Runs against the server NATRIX_SERVER names (natrix by default); every
test passes against nats-server 2.15.1 too."""

import asyncio
import json

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType
from nats.js.errors import NotFoundError

from test_jetstream import js_server
from test_nats_py import connect, run


@run
async def _consumer_api(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    jsm = nc.jsm()
    await js.add_stream(name="S", subjects=["s.>"], storage=StorageType.MEMORY)
    for i in range(5):
        await js.publish(f"s.{i % 2}", f"m{i}".encode())
    ci = await jsm.add_consumer("S", durable_name="D", ack_policy=AckPolicy.EXPLICIT)
    assert ci.name == "D" and ci.config.durable_name == "D"
    assert ci.config.ack_wait == 30.0 and ci.config.max_deliver == -1
    assert ci.config.max_ack_pending == 1000 and ci.config.max_waiting == 512
    assert ci.num_pending == 5 and ci.delivered.stream_seq == 0
    ci = await jsm.add_consumer("S", name="F", filter_subject="s.1", ack_policy=AckPolicy.EXPLICIT)
    assert ci.num_pending == 2
    ci = await jsm.add_consumer("S", durable_name="L", deliver_policy=DeliverPolicy.LAST)
    assert ci.num_pending == 1 and ci.delivered.stream_seq == 4
    ci = await jsm.add_consumer("S", durable_name="N", deliver_policy=DeliverPolicy.NEW)
    assert ci.num_pending == 0 and ci.delivered.stream_seq == 5
    ci = await jsm.add_consumer("S", durable_name="Q", deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                opt_start_seq=4)
    assert ci.num_pending == 2
    names = [c.name for c in await jsm.consumers_info("S")]
    assert names == ["D", "F", "L", "N", "Q"]
    si = await jsm.stream_info("S")
    assert si.state.consumer_count == 5
    assert await jsm.delete_consumer("S", "Q")
    with pytest.raises(NotFoundError):
        await jsm.consumer_info("S", "Q")
    with pytest.raises(NotFoundError):
        await jsm.delete_consumer("S", "Q")
    await nc.close()


def test_consumer_api(start_server):
    srv, _ = js_server(start_server)
    _consumer_api(srv)


@run
async def _pull_fetch_and_ack(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    await js.add_stream(name="P", subjects=["p.>"])
    for i in range(10):
        await js.publish("p.x", f"{i}".encode())
    psub = await js.pull_subscribe("p.>", durable="W")
    msgs = await psub.fetch(4)
    assert [m.data for m in msgs] == [b"0", b"1", b"2", b"3"]
    md = msgs[0].metadata
    assert md.sequence.stream == 1 and md.sequence.consumer == 1
    assert md.num_delivered == 1 and md.num_pending == 9 and md.stream == "P" and md.consumer == "W"
    for m in msgs:
        await m.ack_sync()
    msgs = await psub.fetch(10, timeout=1)
    assert len(msgs) == 6
    for m in msgs:
        await m.ack()
    with pytest.raises(nats.errors.TimeoutError):
        await psub.fetch(1, timeout=0.5)
    info = await psub.consumer_info()
    assert info.num_ack_pending == 0 and info.ack_floor.stream_seq == 10
    assert info.delivered.consumer_seq == 10
    # A pull waiting for messages is woken by a new one.
    waiting = asyncio.ensure_future(psub.fetch(1, timeout=3))
    await asyncio.sleep(0.3)
    await js.publish("p.x", b"late")
    msgs = await waiting
    assert msgs[0].data == b"late"
    await nc.close()


def test_pull_fetch_and_ack(start_server):
    srv, _ = js_server(start_server)
    _pull_fetch_and_ack(srv)


@run
async def _redelivery(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    await js.add_stream(name="R", subjects=["r"], storage=StorageType.MEMORY)
    await js.publish("r", b"one")
    await js.publish("r", b"two")
    await js.publish("r", b"three")
    psub = await js.pull_subscribe("r", durable="RD",
                                   config=ConsumerConfig(ack_wait=0.5, max_deliver=2))
    msgs = await psub.fetch(3)
    assert [m.data for m in msgs] == [b"one", b"two", b"three"]
    await msgs[0].ack()
    await msgs[1].nak()
    await msgs[2].term()
    again = await psub.fetch(1)
    assert again[0].data == b"two" and again[0].metadata.num_delivered == 2
    # Not acked: after ack wait it would go a third time, but max_deliver is 2.
    await asyncio.sleep(1.0)
    with pytest.raises(nats.errors.TimeoutError):
        await psub.fetch(1, timeout=0.5)
    info = await psub.consumer_info()
    assert info.num_ack_pending == 0
    await nc.close()


def test_redelivery_nak_term_and_max_deliver(start_server):
    srv, _ = js_server(start_server)
    _redelivery(srv)


@run
async def _no_wait_statuses(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    await js.add_stream(name="NW", subjects=["nw"], storage=StorageType.MEMORY)
    cfg = {"durable_name": "C", "ack_policy": "explicit", "max_batch": 2}
    r = await nc.request("$JS.API.CONSUMER.DURABLE.CREATE.NW.C",
                         json.dumps({"stream_name": "NW", "config": cfg}).encode(), timeout=2)
    assert json.loads(r.data)["config"]["max_batch"] == 2
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish("$JS.API.CONSUMER.MSG.NEXT.NW.C", json.dumps({"batch": 1, "no_wait": True}).encode(), reply=inbox)
    m = await sub.next_msg(timeout=2)
    assert m.headers["Status"] == "404" and m.headers["Description"] == "No Messages"
    await nc.publish("$JS.API.CONSUMER.MSG.NEXT.NW.C", json.dumps({"batch": 3}).encode(), reply=inbox)
    m = await sub.next_msg(timeout=2)
    assert m.headers["Status"] == "409" and m.headers["Description"] == "Exceeded MaxRequestBatch of 2"
    await nc.publish("$JS.API.CONSUMER.MSG.NEXT.NW.C", json.dumps({"batch": 2, "expires": 300_000_000}).encode(),
                     reply=inbox)
    m = await sub.next_msg(timeout=2)
    assert m.headers["Status"] == "408" and m.headers["Description"] == "Request Timeout"
    assert m.headers["Nats-Pending-Messages"] == "2" and m.headers["Nats-Pending-Bytes"] == "0"
    await nc.publish("$JS.API.CONSUMER.MSG.NEXT.NW.C", json.dumps({"batch": 1, "expires": 5_000_000_000}).encode(),
                     reply=inbox)
    await nc.flush()
    await asyncio.sleep(0.2)
    await js.delete_consumer("NW", "C")
    m = await sub.next_msg(timeout=2)
    assert m.headers["Status"] == "409" and m.headers["Description"] == "Consumer Deleted"
    await nc.close()


def test_pull_status_messages(start_server):
    srv, _ = js_server(start_server)
    _no_wait_statuses(srv)


@run
async def _push(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    await js.add_stream(name="PU", subjects=["pu.*"], storage=StorageType.MEMORY)
    for i in range(3):
        await js.publish("pu.a", f"{i}".encode())
    got = []
    done = asyncio.Event()

    async def cb(m):
        got.append((m.subject, m.data, m.metadata.sequence.stream))
        await m.ack()
        if len(got) == 4:
            done.set()

    sub = await js.subscribe("pu.*", durable="PD", cb=cb, manual_ack=True)
    await js.publish("pu.b", b"3")
    await asyncio.wait_for(done.wait(), 3)
    assert got == [("pu.a", b"0", 1), ("pu.a", b"1", 2), ("pu.a", b"2", 3), ("pu.b", b"3", 4)]
    await asyncio.sleep(0.2)
    info = await sub.consumer_info()
    assert info.num_ack_pending == 0 and info.delivered.stream_seq == 4
    await sub.unsubscribe()
    await nc.close()


def test_push_subscribe(start_server):
    srv, _ = js_server(start_server)
    _push(srv)


@run
async def _ack_some(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    await js.add_stream(name="K", subjects=["k"])
    for i in range(6):
        await js.publish("k", f"{i}".encode())
    psub = await js.pull_subscribe("k", durable="KD", config=ConsumerConfig(ack_wait=1.0))
    msgs = await psub.fetch(6)
    for m in msgs[:4]:
        await m.ack_sync()
    await nc.close()


@run
async def _check_after_restart(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    psub = await js.pull_subscribe("k", durable="KD")
    if srv.target == "natrix":
        # natrix saves consumer state with the same fsync discipline as
        # messages: acknowledged messages never come back after kill -9.
        info = await js.consumer_info("K", "KD")
        assert info.ack_floor.stream_seq == 4 and info.delivered.stream_seq == 6
        msgs = await psub.fetch(2, timeout=3)
        assert sorted(m.data for m in msgs) == [b"4", b"5"]
        assert all(m.metadata.num_delivered == 2 for m in msgs)
    else:
        # nats-server 2.15.1 does not sync consumer state: after kill -9 it
        # may deliver acknowledged messages again. The unacknowledged ones
        # come back in any case.
        msgs = await psub.fetch(6, timeout=3)
        assert {b"4", b"5"} <= {m.data for m in msgs}
    await nc.close()


def test_durable_consumer_survives_kill(start_server):
    srv, store = js_server(start_server)
    _ack_some(srv)
    srv.proc.kill()
    srv.proc.wait(timeout=10)
    again, _ = js_server(start_server, store)
    _check_after_restart(again)


@run
async def _work_queue(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    await js.add_stream(name="WQ", subjects=["wq.*"], retention="workqueue", storage=StorageType.MEMORY)
    for i in range(4):
        await js.publish(f"wq.{i % 2}", f"{i}".encode())
    psub = await js.pull_subscribe("wq.0", durable="W0")
    with pytest.raises(nats.js.errors.BadRequestError):
        # Overlapping filters are refused on a work queue.
        await js.pull_subscribe("wq.*", durable="ALL")
    msgs = await psub.fetch(2)
    assert [m.data for m in msgs] == [b"0", b"2"]
    for m in msgs:
        await m.ack_sync()
    si = await js.stream_info("WQ")
    assert si.state.messages == 2
    await nc.close()


def test_work_queue_removes_acked_messages(start_server):
    srv, _ = js_server(start_server)
    _work_queue(srv)


@run
async def _interest(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    await js.add_stream(name="IN", subjects=["in"], retention="interest", storage=StorageType.MEMORY)
    a = await js.pull_subscribe("in", durable="A")
    b = await js.pull_subscribe("in", durable="B")
    for i in range(3):
        await js.publish("in", f"{i}".encode())
    for m in await a.fetch(3):
        await m.ack_sync()
    si = await js.stream_info("IN")
    assert si.state.messages == 3, "B has not acknowledged yet"
    msgs = await b.fetch(3)
    await msgs[0].ack_sync()
    await msgs[1].ack_sync()
    si = await js.stream_info("IN")
    assert si.state.messages == 1 and si.state.first_seq == 3
    await nc.close()


def test_interest_retention(start_server):
    srv, _ = js_server(start_server)
    _interest(srv)


@run
async def _key_value(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="B", history=5)
    assert await kv.put("a", b"1") == 1
    assert await kv.put("a", b"2") == 2
    assert await kv.put("b", b"x") == 3
    e = await kv.get("a")
    assert (e.key, e.value, e.revision) == ("a", b"2", 2)
    await kv.delete("b")
    # keys, history and watch run on ordered push consumers.
    assert await kv.keys() == ["a"]
    assert [x.value for x in await kv.history("a")] == [b"1", b"2"]
    w = await kv.watchall()
    seen = []
    async for u in w:
        if u is None:
            break
        seen.append((u.key, u.value, u.operation))
    assert seen == [("a", b"2", None), ("b", b"", "DEL")]
    await kv.put("c", b"3")
    u = await w.updates(timeout=3)
    assert (u.key, u.value) == ("c", b"3")
    await w.stop()
    await nc.close()


def test_key_value_through_consumers(start_server):
    srv, _ = js_server(start_server)
    _key_value(srv)


@run
async def _pull_without_interest(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    await js.add_stream(name="PI", subjects=["pi"], storage=StorageType.MEMORY)
    psub = await js.pull_subscribe("pi", durable="PD")
    await js.publish("pi", b"one")
    assert (await psub.consumer_info()).num_pending == 1
    # A request whose inbox nobody listens on takes no message.
    await nc.publish("$JS.API.CONSUMER.MSG.NEXT.PI.PD", json.dumps({"batch": 1}).encode(), reply="nobody.here")
    await nc.flush()
    await asyncio.sleep(0.2)
    info = await psub.consumer_info()
    assert (info.num_pending, info.num_ack_pending, info.delivered.consumer_seq) == (1, 0, 0)
    msgs = await psub.fetch(1)
    assert msgs[0].data == b"one" and msgs[0].metadata.num_delivered == 1
    await nc.close()


def test_pull_request_without_interest_takes_nothing(start_server):
    srv, _ = js_server(start_server)
    _pull_without_interest(srv)


@run
async def _delete_marker(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    # Markers outlive the key's one-second TTL (raised to theirs: history 2).
    await js.add_stream(name="KV_M", subjects=["$KV.M.>"], storage=StorageType.MEMORY, max_msgs_per_subject=2,
                        allow_rollup_hdrs=True, allow_msg_ttl=True, subject_delete_marker_ttl=2.0)
    ack = await js.publish("$KV.M.age", b"30", headers={"Nats-TTL": "1"})
    sub = await js.subscribe("$KV.M.age", ordered_consumer=True)
    first = await sub.next_msg(timeout=2)
    assert first.data == b"30" and first.headers["Nats-TTL"] == "2"
    marker = await sub.next_msg(timeout=5)
    assert marker.headers == {"Nats-Marker-Reason": "MaxAge", "Nats-TTL": "2s", "Nats-Rollup": "sub"}
    assert marker.metadata.sequence.stream == ack.seq + 1
    info = await js.stream_info("KV_M")
    assert (info.state.messages, info.state.last_seq) == (1, 2)
    await sub.unsubscribe()
    await nc.close()


def test_expired_last_message_leaves_a_delete_marker(start_server):
    srv, _ = js_server(start_server)
    _delete_marker(srv)


def _normalised(body):
    d = json.loads(body)
    d["id"], d["timestamp"] = "ID", "TS"
    return json.dumps(d)


@run
async def _consumer_advisories(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    got = []

    async def cb(m):
        got.append((m.subject, m.data.decode()))
    await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.>", cb=cb)
    await js.add_stream(name="AD", subjects=["ad"], storage=StorageType.MEMORY)
    for _ in range(3):
        await js.publish("ad", b"x")
    psub = await js.pull_subscribe("ad", durable="C", config=ConsumerConfig(ack_wait=0.5, max_deliver=2))
    msgs = await psub.fetch(3)
    await msgs[0].nak()
    await nc.publish(msgs[1].reply, b"+TERM bad one")
    await msgs[2].ack()
    await nc.flush()
    again = await psub.fetch(1)
    assert again[0].metadata.num_delivered == 2
    # Not acked again: past its ack wait it has been delivered max_deliver times.
    await asyncio.sleep(1.3)
    with pytest.raises(nats.errors.TimeoutError):
        await psub.fetch(1, timeout=0.5)
    await nc.request("$JS.API.CONSUMER.DELETE.AD.C", b"")
    await nc.flush()
    await asyncio.sleep(0.3)
    # Bodies as nats-server 2.15.1 sends them, ids and times normalised;
    # the key order is part of what is compared.
    expected = [
        ("$JS.EVENT.ADVISORY.CONSUMER.CREATED.AD.C",
         '{"type": "io.nats.jetstream.advisory.v1.consumer_action", "id": "ID", "timestamp": "TS", "stream": "AD", "consumer": "C", "action": "create"}'),
        ("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.AD.C",
         '{"type": "io.nats.jetstream.advisory.v1.nak", "id": "ID", "timestamp": "TS", "stream": "AD", "consumer": "C", "consumer_seq": 1, "stream_seq": 1, "deliveries": 1}'),
        ("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.AD.C",
         '{"type": "io.nats.jetstream.advisory.v1.terminated", "id": "ID", "timestamp": "TS", "stream": "AD", "consumer": "C", "consumer_seq": 2, "stream_seq": 2, "deliveries": 1, "reason": "bad one"}'),
        ("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.AD.C",
         '{"type": "io.nats.jetstream.advisory.v1.max_deliver", "id": "ID", "timestamp": "TS", "stream": "AD", "consumer": "C", "stream_seq": 1, "deliveries": 2}'),
        ("$JS.EVENT.ADVISORY.CONSUMER.DELETED.AD.C",
         '{"type": "io.nats.jetstream.advisory.v1.consumer_action", "id": "ID", "timestamp": "TS", "stream": "AD", "consumer": "C", "action": "delete"}'),
    ]
    assert [(s, _normalised(b)) for s, b in got] == expected
    ids = [json.loads(b)["id"] for _, b in got]
    assert len(set(ids)) == len(ids) and all(len(i) == 22 for i in ids)
    # An ephemeral consumer is announced as deleted with its stream.
    got.clear()
    await js.add_stream(name="AE", subjects=["ae"], storage=StorageType.MEMORY)
    ci = await nc.jsm().add_consumer("AE", name="E")
    await nc.jsm().delete_stream("AE")
    await nc.flush()
    await asyncio.sleep(0.3)
    assert [s for s, _ in got] == ["$JS.EVENT.ADVISORY.CONSUMER.CREATED.AE.E", "$JS.EVENT.ADVISORY.CONSUMER.DELETED.AE.E"]
    assert ci.name == "E"
    await nc.close()


def test_consumer_advisories(start_server):
    srv, _ = js_server(start_server)
    _consumer_advisories(srv)


@run
async def _replay_original_and_rate_limit(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    await js.add_stream(name="RP", subjects=["rp"], storage=StorageType.MEMORY)
    for i in range(3):
        await js.publish("rp", f"{i}".encode())
        await asyncio.sleep(0.4)
    loop = asyncio.get_running_loop()
    times = []
    done = asyncio.Event()

    async def cb(m):
        times.append(loop.time())
        if len(times) == 3:
            done.set()
    await js.subscribe("rp", cb=cb, config=ConsumerConfig(replay_policy="original"))
    await asyncio.wait_for(done.wait(), 5)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(0.3 < g < 0.6 for g in gaps), gaps
    # A rate limit in bits per second, with the stream's largest message as the burst.
    await js.add_stream(name="RL", subjects=["rl"], storage=StorageType.MEMORY, max_msg_size=11_000)
    for _ in range(5):
        await js.publish("rl", b"x" * 10_000)
    times.clear()
    done.clear()

    async def cb5(m):
        times.append(loop.time())
        if len(times) == 5:
            done.set()
    start = loop.time()
    await js.subscribe("rl", cb=cb5, config=ConsumerConfig(rate_limit_bps=8 * 40_000))
    await asyncio.wait_for(done.wait(), 5)
    # About 50 kB less the 11 kB burst at 40 kB/s.
    assert 0.7 < times[-1] - start < 1.6, times[-1] - start
    await nc.close()


def test_replay_original_and_rate_limit(start_server):
    srv, _ = js_server(start_server)
    _replay_original_and_rate_limit(srv)


@run
async def _pause_advisories(srv):
    import datetime
    nc = await connect(srv)
    js = nc.jetstream()
    got = []

    async def cb(m):
        got.append((m.subject, json.loads(m.data)))
    await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.PAUSE.>", cb=cb)
    await js.add_stream(name="PS", subjects=["ps"], storage=StorageType.MEMORY)
    await nc.request("$JS.API.CONSUMER.CREATE.PS.C", json.dumps({"stream_name": "PS", "config": {"durable_name": "C"}}).encode())

    def later(secs):
        t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=secs)
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    long, short = later(60), later(1)
    await nc.request("$JS.API.CONSUMER.PAUSE.PS.C", json.dumps({"pause_until": long}).encode())
    await nc.request("$JS.API.CONSUMER.PAUSE.PS.C", b"")
    await nc.request("$JS.API.CONSUMER.PAUSE.PS.C", json.dumps({"pause_until": short}).encode())
    await asyncio.sleep(1.5)
    # Created paused.
    await nc.request("$JS.API.CONSUMER.CREATE.PS.D", json.dumps(
        {"stream_name": "PS", "config": {"durable_name": "D", "pause_until": long}}).encode())
    await asyncio.sleep(0.3)
    same_time = lambda a, b: a.rstrip("0Z") == b.rstrip("0Z")  # Go trims trailing zeros
    seen = [(s.rsplit(".", 1)[1], d["paused"], d["pause_until"]) for s, d in got]
    assert [(c, p) for c, p, _ in seen] == [("C", True), ("C", False), ("C", True), ("C", False), ("D", True)], seen
    assert same_time(seen[0][2], long) and seen[1][2] == "0001-01-01T00:00:00Z"
    assert same_time(seen[2][2], short) and same_time(seen[3][2], short) and same_time(seen[4][2], long)
    keys = list(got[0][1].keys())
    assert keys == ["type", "id", "timestamp", "stream", "consumer", "paused", "pause_until"], keys
    assert got[0][1]["type"] == "io.nats.jetstream.advisory.v1.consumer_pause"
    await nc.close()


def test_pause_advisories(start_server):
    srv, _ = js_server(start_server)
    _pause_advisories(srv)
