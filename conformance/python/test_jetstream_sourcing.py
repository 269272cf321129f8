"""Mirrors and sources through nats-py: a mirror copies its origin under the
origin's sequences and answers direct gets for it with mirror_direct; a
source copies what its filter takes, transformed, with a Nats-Stream-Source
header; both catch up with what was published while the server was killed
with -9 and carry on without duplicates or gaps.

Runs against the server NATRIX_SERVER names (natrix by default); every
test passes against nats-server 2.15.1 too."""

import asyncio

from nats.js.api import StreamSource, SubjectTransform

from test_jetstream import js_server
from test_nats_py import connect, run


async def wait_for(js, stream, messages, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        si = await js.stream_info(stream)
        if si.state.messages >= messages or asyncio.get_running_loop().time() > deadline:
            return si
        await asyncio.sleep(0.05)


@run
async def _mirror(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    await js.add_stream(name="O", subjects=["o.*"], allow_direct=True)
    for i in range(5):
        await js.publish(f"o.{i % 2}", str(i).encode())
    await js.delete_msg("O", 2)
    si = await js.add_stream(name="M", mirror=StreamSource(name="O"))
    assert si.config.mirror.name == "O"
    assert si.config.mirror_direct  # inherited from the origin's allow_direct
    si = await wait_for(js, "M", 4)
    assert si.state.messages == 4 and si.state.first_seq == 1 and si.state.last_seq == 5
    assert si.mirror.name == "O" and si.mirror.lag == 0
    for seq in (1, 3, 4, 5):
        m = await js.get_msg("M", seq)
        assert m.data == str(seq - 1).encode() and m.subject == f"o.{(seq - 1) % 2}"
    await js.publish("o.1", b"later")
    si = await wait_for(js, "M", 5)
    assert si.state.last_seq == 6
    await nc.close()


def test_mirror(start_server):
    srv, _ = js_server(start_server)
    _mirror(srv)


@run
async def _sources(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    await js.add_stream(name="A", subjects=["a.*"])
    await js.add_stream(name="B", subjects=["b.*"])
    await js.add_stream(name="S", subjects=["s"], sources=[
        StreamSource(name="A", filter_subject="a.keep"),
        StreamSource(name="B", subject_transforms=[SubjectTransform(src="b.*", dest="from.b.{{wildcard(1)}}")]),
    ])
    await js.publish("a.keep", b"1")
    await js.publish("a.drop", b"no")
    await js.publish("b.x", b"2")
    await js.publish("s", b"own")
    si = await wait_for(js, "S", 3)
    assert si.state.messages == 3
    by_subject = {}
    for seq in range(1, 4):
        m = await js.get_msg("S", seq)
        by_subject[m.subject] = m
    assert set(by_subject) == {"a.keep", "from.b.x", "s"}
    hdr = by_subject["from.b.x"].headers["Nats-Stream-Source"]
    assert hdr.startswith("B 1 b.* from.b.{{wildcard(1)}} b.x"), hdr
    assert by_subject["a.keep"].headers["Nats-Stream-Source"].startswith("A 1 a.keep > a.keep")
    assert sorted(s.name for s in si.sources) == ["A", "B"]
    await nc.close()


def test_sources(start_server):
    srv, _ = js_server(start_server)
    _sources(srv)


@run
async def _before_kill(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    await js.add_stream(name="O", subjects=["o.*"])
    await js.add_stream(name="M", mirror=StreamSource(name="O"))
    await js.add_stream(name="S", sources=[StreamSource(name="O")])
    for i in range(200):
        await js.publish("o.a", str(i).encode())
    await nc.close()


@run
async def _after_restart(srv):
    nc = await connect(srv)
    js = nc.jetstream()
    for i in range(200, 250):
        await js.publish("o.a", str(i).encode())
    for stream in ("M", "S"):
        si = await wait_for(js, stream, 250)
        assert si.state.messages == 250, (stream, si.state)
        seen = [int((await js.get_msg(stream, seq)).data) for seq in range(1, 251)]
        assert seen == list(range(250)), stream
    await nc.close()


def test_mirror_and_source_carry_on_after_kill(start_server):
    srv, store = js_server(start_server)
    _before_kill(srv)
    srv.proc.kill()
    srv.proc.wait(timeout=10)
    again, _ = js_server(start_server, store)
    _after_restart(again)


CROSS_ACCOUNT = """
jetstream { store_dir: "%s" }
accounts {
  A: {
    jetstream: enabled
    users: [{user: a, password: a}]
    exports: [{service: "$JS.API.>"}, {stream: "deliver.>"}]
  }
  B: {
    jetstream: enabled
    users: [{user: b, password: b}]
    imports: [
      {service: {account: A, subject: "$JS.API.>"}, to: "$JS.A.API.>"}
      {stream: {account: A, subject: "deliver.>"}}
    ]
  }
}
"""


@run
async def _cross_account(srv):
    a = await connect(srv, user="a", password="a")
    b = await connect(srv, user="b", password="b")
    ja, jb = a.jetstream(), b.jetstream()
    await ja.add_stream(name="O", subjects=["o.*"])
    await ja.publish("o.x", b"1")
    ext = {"api": "$JS.A.API", "deliver": "deliver.b"}
    si = await jb.add_stream(name="S", sources=[StreamSource(name="O", external=ext)])
    assert si.config.sources[0].external.api == "$JS.A.API"
    await ja.publish("o.y", b"2")
    si = await wait_for(jb, "S", 2)
    assert si.state.messages == 2
    assert si.sources[0].name == "O" and si.sources[0].lag == 0
    m = await jb.get_msg("S", 2)
    assert m.subject == "o.y" and m.data == b"2"
    await a.close()
    await b.close()


def test_source_from_another_account(start_server, tmp_path):
    srv = start_server(config=CROSS_ACCOUNT % tmp_path)
    _cross_account(srv)
