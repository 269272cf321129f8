"""JetStream's account limits through nats-py: a config file gives one
account a limits map and another plain `jetstream: enabled`; streams,
reservations and stored bytes are held to them with nats-server's errors.

Runs against the server NATRIX_SERVER names (natrix by default); every
test passes against nats-server 2.15.1 too."""

import json
import tempfile

import pytest
from nats.js.api import StorageType
from nats.js.errors import APIError

from test_nats_py import connect, run


def limited_server(start_server):
    store = tempfile.mkdtemp(prefix="natrix-js-limits-")
    config = f"""
jetstream {{ store_dir: "{store}" }}
accounts {{
  LIMITED {{
    jetstream {{ max_file: 1000, max_mem: 0, max_streams: 2, max_consumers: 5 }}
    users: [ {{ user: lim, password: pw }} ]
  }}
  OPEN {{
    jetstream: enabled
    users: [ {{ user: open, password: pw }} ]
  }}
  NONE {{
    users: [ {{ user: none, password: pw }} ]
  }}
}}
"""
    return start_server(config=config)


@run
async def _limits(srv):
    nc = await connect(srv, user="lim", password="pw")
    jsm = nc.jsm()
    info = await jsm.account_info()
    assert info.limits.max_storage == 1000
    assert info.limits.max_memory == 0
    assert info.limits.max_streams == 2
    assert info.limits.max_consumers == 5

    # Memory streams get no room at all.
    with pytest.raises(APIError) as e:
        await jsm.add_stream(name="M", subjects=["m"], storage=StorageType.MEMORY)
    assert e.value.err_code == 10028
    # Reservations add up against max_file.
    await jsm.add_stream(name="A", subjects=["a.*"], max_bytes=600)
    with pytest.raises(APIError) as e:
        await jsm.add_stream(name="B", subjects=["b.*"], max_bytes=401)
    assert e.value.err_code == 10047
    await jsm.add_stream(name="B", subjects=["b.*"])
    raw = json.loads((await nc.request("$JS.API.INFO", b"")).data)
    assert raw["reserved_storage"] == 600 and raw["reserved_memory"] == 0
    # A third stream is one too many.
    with pytest.raises(APIError) as e:
        await jsm.add_stream(name="C", subjects=["c.*"])
    assert e.value.err_code == 10027
    # Stored bytes count against max_file: the third message does not fit.
    js = nc.jetstream()
    await js.publish("b.x", b"x" * 400)
    await js.publish("b.x", b"x" * 400)
    with pytest.raises(APIError) as e:
        await js.publish("b.x", b"x" * 400)
    assert e.value.err_code == 10002
    si = await jsm.stream_info("B")
    assert si.state.messages == 2
    # More consumers per stream than the account allows is refused.
    with pytest.raises(APIError) as e:
        await jsm.update_stream(name="A", subjects=["a.*"], max_bytes=600, max_consumers=6)
    assert e.value.err_code == 10026
    await nc.close()


def test_account_limits(start_server):
    _limits(limited_server(start_server))


@run
async def _open_and_none(srv):
    nc = await connect(srv, user="open", password="pw")
    info = await nc.jsm().account_info()
    assert info.limits.max_storage == -1 and info.limits.max_streams == -1
    await nc.jsm().add_stream(name="O", subjects=["o"])
    await nc.close()
    nc = await connect(srv, user="none", password="pw")
    with pytest.raises(APIError) as e:
        await nc.jsm().account_info()
    assert e.value.err_code == 10039
    await nc.close()


def test_accounts_without_limits(start_server):
    _open_and_none(limited_server(start_server))


@run
async def _bytes_counted(srv):
    nc = await connect(srv, user="open", password="pw")
    js = nc.jetstream()
    await js.add_stream(name="F", subjects=["f.*"])
    await js.add_stream(name="M", subjects=["m.*"], storage=StorageType.MEMORY)
    for stream in ("f", "m"):
        await js.publish(f"{stream}.1", b"hello")
        await js.publish(f"{stream}.1", b"hello", headers={"k": "v"})
    # File records: 22 + subject + payload + 8, and 4 + headers with headers.
    hdr = len(b"NATS/1.0\r\nk: v\r\n\r\n")
    assert (await js.stream_info("F")).state.bytes == 38 + (38 + 4 + hdr)
    # Memory records: subject + headers + payload + 16.
    assert (await js.stream_info("M")).state.bytes == 24 + (24 + hdr)
    await nc.close()


def test_stored_bytes_are_counted_as_nats_server_counts_them(start_server):
    _bytes_counted(limited_server(start_server))


@run
async def _monitoring(srv):
    import urllib.request

    def get(path):
        with urllib.request.urlopen(srv.monitor_url + path) as r:
            return json.loads(r.read())

    nc = await connect(srv, user="lim", password="pw")
    await nc.jsm().add_stream(name="A", subjects=["a.*"], max_bytes=600)
    await nc.jetstream().publish("a.1", b"hello")
    await nc.close()
    varz = get("/varz")["jetstream"]
    assert varz["config"]["max_memory"] > 0 and varz["config"]["max_storage"] > 0
    assert varz["config"]["store_dir"].endswith("/jetstream")
    assert varz["stats"]["storage"] == 38 and varz["stats"]["reserved_storage"] == 600
    assert varz["stats"]["accounts"] == 2
    jsz = get("/jsz")
    assert (jsz["streams"], jsz["messages"], jsz["bytes"]) == (1, 1, 38)
    assert "account_details" not in jsz
    jsz = get("/jsz?acc=LIMITED&streams=true&config=true")
    [acc] = jsz["account_details"]
    assert acc["name"] == "LIMITED" and acc["storage"] == 38
    # nats-server reports the account's limit here.
    assert acc["reserved_storage"] == 1000
    [stream] = acc["stream_detail"]
    assert stream["name"] == "A" and stream["state"]["messages"] == 1
    assert stream["config"]["max_bytes"] == 600


def test_jsz_and_varz(start_server):
    store = tempfile.mkdtemp(prefix="natrix-jsz-")
    config = f"""
jetstream {{ store_dir: "{store}" }}
accounts {{
  LIMITED {{ jetstream {{ max_file: 1000 }}, users: [ {{ user: lim, password: pw }} ] }}
  OPEN {{ jetstream: enabled, users: [ {{ user: open, password: pw }} ] }}
}}
"""
    _monitoring(start_server(config=config, monitoring=True))


@run
async def _account_purge(srv):
    nc = await connect(srv, user="open", password="pw")
    js = nc.jetstream()
    await js.add_stream(name="P1", subjects=["p1"])
    await js.add_stream(name="P2", subjects=["p2"], storage=StorageType.MEMORY)
    await js.publish("p1", b"x")
    # Only the system account may purge: others get no answer.
    with pytest.raises(Exception):
        await nc.request("$JS.API.ACCOUNT.PURGE.OPEN", b"", timeout=0.5)
    assert (await nc.jsm().account_info()).streams == 2
    sys_nc = await connect(srv, user="sys", password="pw")
    answer = json.loads((await sys_nc.request("$JS.API.ACCOUNT.PURGE.OPEN", b"", timeout=2)).data)
    assert answer == {"type": "io.nats.jetstream.api.v1.account_purge_response", "initiated": True}
    assert (await nc.jsm().account_info()).streams == 0
    # The subjects are free again: a publish gets no ack.
    with pytest.raises(Exception):
        await js.publish("p1", b"y", timeout=0.5)
    await sys_nc.close()
    await nc.close()


def test_account_purge_by_the_system_account(start_server):
    store = tempfile.mkdtemp(prefix="natrix-purge-")
    config = f"""
jetstream {{ store_dir: "{store}" }}
system_account: SYS
accounts {{
  SYS {{ users: [ {{ user: sys, password: pw }} ] }}
  OPEN {{ jetstream: enabled, users: [ {{ user: open, password: pw }} ] }}
}}
"""
    _account_purge(start_server(config=config))


@run
async def _domain_api(srv):
    nc = await connect(srv)
    js = nc.jetstream(domain="hub")
    await js.add_stream(name="D", subjects=["d"])
    ack = await js.publish("d", b"x")
    assert ack.domain == "hub" and ack.seq == 1
    info = await js.stream_info("D")
    assert info.state.messages == 1
    # Another domain's API is not this server's.
    with pytest.raises(Exception):
        await nc.request("$JS.other.API.INFO", b"", timeout=0.5)
    await nc.close()


def test_the_domain_api_reaches_this_server(start_server):
    store = tempfile.mkdtemp(prefix="natrix-domain-")
    _domain_api(start_server(config=f'jetstream {{ store_dir: "{store}", domain: hub }}\n'))


@run
async def _server_budget(srv):
    nc = await connect(srv)
    jsm = nc.jsm()
    await jsm.add_stream(name="A", subjects=["a"], storage=StorageType.MEMORY, max_bytes=800)
    # Reservations by max_bytes share the server's budget.
    with pytest.raises(APIError) as e:
        await jsm.add_stream(name="B", subjects=["b"], storage=StorageType.MEMORY, max_bytes=201)
    assert e.value.err_code == 10028
    await jsm.add_stream(name="C", subjects=["c"], storage=StorageType.MEMORY)
    # Usage may pass the budget by the message that crosses it; then the
    # server refuses with insufficient resources.
    answers = [json.loads((await nc.request("c", b"x" * 300, timeout=2)).data) for _ in range(6)]
    assert [a.get("seq") for a in answers[:4]] == [1, 2, 3, 4]
    for a in answers[4:]:
        assert a["error"] == {"code": 503, "err_code": 10023, "description": "insufficient resources"}
    await nc.close()


def test_the_server_budget_is_shared_and_enforced(start_server):
    store = tempfile.mkdtemp(prefix="natrix-budget-")
    _server_budget(start_server(config=f'jetstream {{ store_dir: "{store}", max_mem: 1000 }}\n'))
