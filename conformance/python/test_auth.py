"""Auth and multi-tenancy through nats-py, on natrix and on nats-server alike.

Every test runs once per target server (natrix, and the reference
nats-server from .venv): the same config files, JWTs and creds, generated
at import time by jwtgen, go to both. Each server is started once per
module and target, and tests use their own subjects and users so that they
do not disturb one another.

With NATRIX_SERVER=nats-server only the reference runs (natrix may not be
built there).
"""

import asyncio
import functools
import json
import time

import nats
import pytest
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

import jwtgen as jg
from natrix_harness import Server, target_from_env

TARGETS = ["nats-server"] if target_from_env() == "nats-server" else ["natrix", "nats-server"]
QUIET_S = 0.2
# Work of others still under way; a test skips with this reason only when it
# fails for it, so it starts counting by itself once the work lands.
PENDING_REWIRE = ("natrix does not yet re-wire imports when a claim update changes an "
                  "account (issue 6 part 2)")


def run(coro_fn):
    """Runs an async test body on a fresh event loop, bounded in time."""

    @functools.wraps(coro_fn)
    def wrapper(*args, **kwargs):
        asyncio.run(asyncio.wait_for(coro_fn(*args, **kwargs), timeout=30))

    return wrapper


@pytest.fixture(scope="module", params=TARGETS)
def target(request):
    return request.param


async def connect(srv, **opts):
    """Connects without reconnects; `nc.test_errors` collects async errors."""
    errors = []
    closed = asyncio.get_running_loop().create_future()

    async def on_error(e):
        errors.append(e)

    async def on_closed():
        if not closed.done():
            closed.set_result(True)

    nc = await nats.connect(servers=[srv.client_url], allow_reconnect=False,
                            connect_timeout=5, error_cb=on_error, closed_cb=on_closed, **opts)
    nc.test_errors = errors
    nc.test_closed = closed
    return nc


async def refused(srv, **opts):
    """Asserts the server refuses the connection with 'Authorization Violation'."""
    errors = []

    async def on_error(e):
        errors.append(e)

    with pytest.raises(Exception) as info:
        nc = await nats.connect(servers=[srv.client_url], allow_reconnect=False,
                                max_reconnect_attempts=0, connect_timeout=5,
                                error_cb=on_error, **opts)
        await nc.close()
    seen = " ".join(str(e) for e in errors) + " " + str(info.value)
    assert "authorization violation" in seen.lower(), seen


async def expect_error(nc, text):
    """Waits for the error callback to report `text` (after 'nats: ').

    nats-py lowercases the server's -ERR text; the differential suite checks
    its exact case.
    """
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        seen = [str(e) for e in nc.test_errors]
        if f"nats: {text}".lower() in seen:
            nc.test_errors.clear()
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no error {text!r}; got {[str(e) for e in nc.test_errors]}")


async def sync(nc):
    """Returns once the server has processed everything `nc` sent so far.

    nats-py 2.16's flush() writes its PING straight to the socket, ahead of
    commands still buffered for its flusher task, so its PONG can come back
    before a SUB just made has reached the server: push the buffer out first.
    """
    await nc._flush_pending(force_flush=True)
    await nc.flush()


async def silent(sub):
    with pytest.raises(NatsTimeout):
        msg = await sub.next_msg(timeout=QUIET_S)
        raise AssertionError(f"unexpected message on {msg.subject}: {msg.data!r}")


async def round_trip(nc, subject="rt"):
    sub = await nc.subscribe(subject)
    await nc.publish(subject, b"ok")
    msg = await sub.next_msg(timeout=5)
    assert msg.data == b"ok"
    await sub.unsubscribe()


async def echo_once(nc, subject):
    """Subscribes `nc` to `subject` and answers one request with its payload."""
    sub = await nc.subscribe(subject)
    await sync(nc)

    async def answer():
        msg = await sub.next_msg(timeout=5)
        await nc.publish(msg.reply, msg.data)
        await sync(nc)
        return msg

    return asyncio.create_task(answer())


# --- config-file users, permissions and accounts -----------------------------

NKEY_USER = jg.user_key()
# "bcrypt pw" hashed with cost 4 (made once; the $2a$ form nats-server reads).
BCRYPT = "$2a$04$R7n4i1A.KBNvrFHHuXGz/eGdxwTNae567lL7SJTdu9P/GyRsWgBCK"
ACCOUNTS_CONFIG = f"""
accounts {{
  A: {{
    users: [
      {{user: alice, password: alice}}
      {{user: hashed, password: "{BCRYPT}"}}
      {{nkey: {NKEY_USER.public}}}
      {{user: limited, password: limited, permissions: {{
        publish: {{allow: ["allowed.>", "_INBOX.>"], deny: ["allowed.secret"]}}
        subscribe: {{allow: ["allowed.>", "_INBOX.>"], deny: ["allowed.secret"]}}
      }}}}
      {{user: responder, password: responder, permissions: {{
        publish: {{deny: ">"}}
        subscribe: {{allow: ["rpc"]}}
        allow_responses: true
      }}}}
    ]
    exports: [
      {{stream: "news.>"}}
      {{service: "svc.echo"}}
      {{stream: "private.>", accounts: [C]}}
    ]
  }}
  B: {{
    users: [ {{user: bob, password: bob}} ]
    imports: [
      {{stream: {{account: A, subject: "news.>"}}, prefix: "a"}}
      {{service: {{account: A, subject: "svc.echo"}}, to: "echo"}}
    ]
  }}
  C: {{
    users: [ {{user: carol, password: carol}} ]
    imports: [ {{stream: {{account: A, subject: "private.>"}}}} ]
  }}
}}
"""


@pytest.fixture(scope="module")
def accounts_srv(target):
    srv = Server(target, config=ACCOUNTS_CONFIG)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def token_srv(target):
    srv = Server(target, config='authorization { token: "s3cr3t-t0ken" }\n')
    yield srv
    srv.stop()


@run
async def test_user_password(accounts_srv):
    nc = await connect(accounts_srv, user="alice", password="alice")
    assert nc._server_info.get("auth_required") is True
    await round_trip(nc, "up.rt")
    await nc.close()
    await refused(accounts_srv, user="alice", password="bob")
    await refused(accounts_srv, user="nobody", password="alice")
    await refused(accounts_srv)


@run
async def test_bcrypt_password(accounts_srv):
    nc = await connect(accounts_srv, user="hashed", password="bcrypt pw")
    await round_trip(nc, "bcrypt.rt")
    await nc.close()
    await refused(accounts_srv, user="hashed", password="bcrypt PW")
    await refused(accounts_srv, user="hashed", password=BCRYPT)


@run
async def test_token(token_srv):
    nc = await connect(token_srv, token="s3cr3t-t0ken")
    await round_trip(nc, "token.rt")
    await nc.close()
    await refused(token_srv, token="s3cr3t")
    await refused(token_srv, user="s3cr3t-t0ken", password="x")


@run
async def test_nkey_signs_the_nonce(accounts_srv):
    nc = await connect(accounts_srv, nkeys_seed_str=NKEY_USER.seed)
    assert isinstance(nc._server_info.get("nonce"), str)
    await round_trip(nc, "nkey.rt")
    await nc.close()
    await refused(accounts_srv, nkeys_seed_str=jg.user_key().seed)


@run
async def test_permission_violations(accounts_srv):
    nc = await connect(accounts_srv, user="limited", password="limited")
    alice = await connect(accounts_srv, user="alice", password="alice")
    spy = await alice.subscribe("denied.>")
    secret = await alice.subscribe("allowed.secret")
    await sync(alice)
    ok = await nc.subscribe("allowed.>")
    await nc.publish("denied.x", b"no")
    await expect_error(nc, 'Permissions Violation for Publish to "denied.x"')
    await nc.publish("allowed.secret", b"no")
    await expect_error(nc, 'Permissions Violation for Publish to "allowed.secret"')
    await nc.subscribe("other")
    await expect_error(nc, 'Permissions Violation for Subscription to "other"')
    await nc.subscribe("allowed.secret")
    await expect_error(nc, 'Permissions Violation for Subscription to "allowed.secret"')
    # The connection stays up and allowed traffic flows.
    await nc.publish("allowed.1", b"yes")
    assert (await ok.next_msg(timeout=5)).subject == "allowed.1"
    await silent(spy)
    await silent(secret)
    await nc.close()
    await alice.close()


@run
async def test_allow_responses(accounts_srv):
    responder = await connect(accounts_srv, user="responder", password="responder")
    alice = await connect(accounts_srv, user="alice", password="alice")
    task = await echo_once(responder, "rpc")
    reply = await alice.request("rpc", b"ping", timeout=5)
    assert reply.data == b"ping"
    await task
    # Only the reply subject is allowed, and only once.
    await responder.publish("rpc.other", b"x")
    await expect_error(responder, 'Permissions Violation for Publish to "rpc.other"')
    await responder.close()
    await alice.close()


@run
async def test_account_isolation(accounts_srv):
    alice = await connect(accounts_srv, user="alice", password="alice")
    bob = await connect(accounts_srv, user="bob", password="bob")
    carol = await connect(accounts_srv, user="carol", password="carol")
    subs = {}
    for name, nc in [("alice", alice), ("bob", bob), ("carol", carol)]:
        subs[name] = await nc.subscribe("iso.>")
        await sync(nc)
    await bob.publish("iso.b", b"from b")
    await sync(bob)
    assert (await subs["bob"].next_msg(timeout=5)).data == b"from b"
    await silent(subs["alice"])
    await silent(subs["carol"])
    await alice.publish("iso.a", b"from a")
    assert (await subs["alice"].next_msg(timeout=5)).data == b"from a"
    await silent(subs["bob"])
    await silent(subs["carol"])
    for nc in (alice, bob, carol):
        await nc.close()


@run
async def test_stream_imports(accounts_srv):
    alice = await connect(accounts_srv, user="alice", password="alice")
    bob = await connect(accounts_srv, user="bob", password="bob")
    carol = await connect(accounts_srv, user="carol", password="carol")
    bob_news = await bob.subscribe("a.news.>")
    bob_plain = await bob.subscribe("news.>")
    bob_private = await bob.subscribe("private.>")
    carol_private = await carol.subscribe("private.>")
    await sync(bob)
    await sync(carol)
    await alice.publish("news.today", b"n")
    await alice.publish("private.memo", b"p")
    await sync(alice)
    msg = await bob_news.next_msg(timeout=5)
    assert (msg.subject, msg.data) == ("a.news.today", b"n")
    assert (await carol_private.next_msg(timeout=5)).subject == "private.memo"
    await silent(bob_plain)
    await silent(bob_private)
    # Nothing flows back from importer to exporter.
    alice_news = await alice.subscribe("news.>")
    await sync(alice)
    await bob.publish("news.back", b"x")
    await sync(bob)
    await silent(alice_news)
    for nc in (alice, bob, carol):
        await nc.close()


@run
async def test_service_imports(accounts_srv):
    alice = await connect(accounts_srv, user="alice", password="alice")
    bob = await connect(accounts_srv, user="bob", password="bob")
    task = await echo_once(alice, "svc.echo")
    reply = await bob.request("echo", b"ping", timeout=5)
    assert reply.data == b"ping"
    request = await task
    assert request.subject == "svc.echo"
    assert request.reply.startswith("_R_."), request.reply
    # Imported under its local name only.
    with pytest.raises(NoRespondersError):
        await bob.request("svc.echo", b"x", timeout=2)
    await alice.close()
    await bob.close()


# --- operator mode: JWTs, creds, the NATS resolver, scoped signing keys ----

OP, OP_SIGNER = jg.operator_key(), jg.operator_key()
SYS, EXP, IMP, IMP2 = jg.account_key(), jg.account_key(), jg.account_key(), jg.account_key()
SCOPED, SCOPE_KEY, UPD, LATE = jg.account_key(), jg.account_key(), jg.account_key(), jg.account_key()
STRANGER = jg.account_key()
ACTIVATION = jg.activation(EXP, IMP, "private.svc", "service")
EXP_JWT = jg.account(OP_SIGNER, EXP, "EXP", exports=[
    {"name": "news", "subject": "news.>", "type": "stream"},
    {"name": "svc", "subject": "svc.>", "type": "service"},
    {"name": "private", "subject": "private.svc", "type": "service", "token_req": True},
])
IMP_JWT = jg.account(OP, IMP, "IMP", imports=[
    {"name": "news", "subject": "news.>", "account": EXP.public, "type": "stream",
     "local_subject": "ext.news.>"},
    {"name": "svc", "subject": "svc.echo", "account": EXP.public, "type": "service",
     "local_subject": "echo"},
    {"name": "private", "subject": "private.svc", "account": EXP.public, "type": "service",
     "token": ACTIVATION},
])
TEMPLATE = {
    "pub": {"allow": ["{{account-name()}}.{{name()}}.>", "dept.{{tag(dept)}}", "_INBOX.>"]},
    "sub": {"allow": ["{{account-subject()}}.>", "dept.>", "_INBOX.>"]},
}
PRELOAD = {
    SYS: jg.account(OP, SYS, "SYS"),
    EXP: EXP_JWT,
    IMP: IMP_JWT,
    IMP2: jg.account(OP, IMP2, "IMP2"),
    SCOPED: jg.account(OP, SCOPED, "SCOPED",
                       signing_keys=[jg.scoped_key(SCOPE_KEY, "dev", TEMPLATE)]),
    UPD: jg.account(OP, UPD, "UPD"),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return tmp_path_factory.mktemp("auth")


@pytest.fixture(scope="module")
def op_srv(target, files):
    op_file = files / "operator.jwt"
    op_file.write_text(jg.operator_file(jg.operator(OP, [OP_SIGNER], system_account=SYS)))
    resolver_dir = files / f"jwt-{target}"
    preload = "\n".join(f"  {k.public}: {v}" for k, v in PRELOAD.items())
    config = (f'operator: "{op_file}"\nsystem_account: {SYS.public}\n'
              f'resolver: {{ type: full, dir: "{resolver_dir}", timeout: "200ms" }}\n'
              f"resolver_preload: {{\n{preload}\n}}\n")
    srv = Server(target, config=config)
    yield srv
    srv.stop()


_creds_count = 0


def creds_file(files, signer, acc, usr=None, **claims):
    """Writes a .creds file for a new user (or `usr`) of `acc`; returns its path."""
    global _creds_count
    _creds_count += 1
    usr = usr or jg.user_key()
    path = files / f"u{_creds_count}.creds"
    path.write_text(jg.creds(jg.user(signer, acc, usr, **claims), usr))
    return str(path)


async def sys_request(sys_nc, subject, body):
    reply = await sys_nc.request(subject, body.encode(), timeout=5)
    doc = json.loads(reply.data)
    assert isinstance(doc["server"]["id"], str), doc
    return doc


@run
async def test_creds_file_and_operator_isolation(op_srv, files):
    exp = await connect(op_srv, user_credentials=creds_file(files, EXP, EXP))
    imp = await connect(op_srv, user_credentials=creds_file(files, IMP, IMP))
    assert isinstance(exp._server_info.get("nonce"), str)
    same = await connect(op_srv, user_credentials=creds_file(files, EXP, EXP))
    exp_sub = await exp.subscribe("op.iso")
    imp_sub = await imp.subscribe("op.iso")
    await sync(exp)
    await sync(imp)
    await same.publish("op.iso", b"same account")
    assert (await exp_sub.next_msg(timeout=5)).data == b"same account"
    await silent(imp_sub)
    for nc in (exp, imp, same):
        await nc.close()


@run
async def test_bad_user_jwts_are_refused(op_srv, files):
    other = jg.user_key()
    good = jg.user(EXP, EXP, other)
    cases = {
        "expired": creds_file(files, EXP, EXP, extra={"exp": jg.LONG_AGO}),
        "unknown account": creds_file(files, STRANGER, STRANGER),
        "issuer is not the account": creds_file(files, STRANGER, EXP),
        "operator-signed user": creds_file(files, OP, EXP),
    }
    tampered = files / "tampered.creds"
    tampered.write_text(jg.creds(jg.tamper(good), other))
    cases["bad signature"] = str(tampered)
    stolen = files / "stolen.creds"
    stolen.write_text(jg.creds(good, jg.user_key()))
    cases["seed of another user"] = str(stolen)
    for what, path in cases.items():
        try:
            await refused(op_srv, user_credentials=path)
        except AssertionError as e:
            raise AssertionError(f"{what}: {e}") from None


@run
async def test_jwt_permissions(op_srv, files):
    perms = {"pub": {"allow": ["ok.>", "_INBOX.>"]}, "sub": {"allow": ["ok.>", "_INBOX.>"]}}
    nc = await connect(op_srv, user_credentials=creds_file(files, EXP, EXP, **perms))
    sub = await nc.subscribe("ok.>")
    await nc.publish("denied", b"x")
    await expect_error(nc, 'Permissions Violation for Publish to "denied"')
    await nc.subscribe("nope")
    await expect_error(nc, 'Permissions Violation for Subscription to "nope"')
    await nc.publish("ok.1", b"y")
    assert (await sub.next_msg(timeout=5)).subject == "ok.1"
    await nc.close()


@run
async def test_jwt_stream_and_service_imports(op_srv, files):
    exp = await connect(op_srv, user_credentials=creds_file(files, EXP, EXP))
    imp = await connect(op_srv, user_credentials=creds_file(files, IMP, IMP))
    outsider = await connect(op_srv, user_credentials=creds_file(files, IMP2, IMP2))
    news = await imp.subscribe("ext.news.>")
    plain = await imp.subscribe("news.>")
    await sync(imp)
    await exp.publish("news.a", b"n")
    msg = await news.next_msg(timeout=5)
    assert (msg.subject, msg.data) == ("ext.news.a", b"n")
    await silent(plain)
    task = await echo_once(exp, "svc.echo")
    assert (await imp.request("echo", b"ping", timeout=5)).data == b"ping"
    assert (await task).subject == "svc.echo"
    # The private export, imported with an activation token.
    task = await echo_once(exp, "private.svc")
    assert (await imp.request("private.svc", b"secret", timeout=5)).data == b"secret"
    await task
    # An account without the import reaches nothing.
    with pytest.raises(NoRespondersError):
        await outsider.request("private.svc", b"x", timeout=2)
    for nc in (exp, imp, outsider):
        await nc.close()


@run
async def test_scoped_signing_key_templates(op_srv, files):
    scoped = functools.partial(creds_file, files, SCOPE_KEY, SCOPED, scoped=True)
    await refused(op_srv, user_credentials=scoped(pub={"allow": [">"]}))
    usr = jg.user_key()
    nc = await connect(op_srv, user_credentials=scoped(usr=usr, tags=["dept:eng"]))
    dept = await nc.subscribe("dept.>")
    await nc.publish("dept.hr", b"denied by the template")
    await expect_error(nc, 'Permissions Violation for Publish to "dept.hr"')
    await nc.publish("dept.eng", b"allowed")
    assert (await dept.next_msg(timeout=5)).subject == "dept.eng"
    # {{account-name()}}.{{name()}}.> for publish, {{account-subject()}}.> for subscribe.
    own = await nc.subscribe(f"{SCOPED.public}.x")
    await nc.publish("SCOPED.U.x", b"allowed")
    await nc.publish(f"{SCOPED.public}.x", b"not in pub allow")
    await expect_error(nc, f'Permissions Violation for Publish to "{SCOPED.public}.x"')
    await silent(own)
    await nc.subscribe("SCOPED.U.x")
    await expect_error(nc, 'Permissions Violation for Subscription to "SCOPED.U.x"')
    await nc.close()
    # A template naming a tag the user lacks drops that entry.
    bare = await connect(op_srv, user_credentials=scoped())
    await bare.publish("dept.x", b"x")
    await expect_error(bare, 'Permissions Violation for Publish to "dept.x"')
    await bare.close()


@run
async def test_resolver_claim_update_at_runtime(op_srv, files):
    sys_nc = await connect(op_srv, user_credentials=creds_file(files, SYS, SYS))
    late_user = creds_file(files, LATE, LATE)
    await refused(op_srv, user_credentials=late_user)
    late_jwt = jg.account(OP, LATE, "LATE")
    doc = await sys_request(sys_nc, "$SYS.REQ.CLAIMS.UPDATE", late_jwt)
    assert doc["data"] == {"account": LATE.public, "code": 200, "message": "jwt updated"}, doc
    nc = await connect(op_srv, user_credentials=late_user)
    await round_trip(nc, "late.rt")
    await nc.close()
    lookup = await sys_nc.request(f"$SYS.REQ.ACCOUNT.{LATE.public}.CLAIMS.LOOKUP", b"", timeout=5)
    assert lookup.data.decode() == late_jwt
    doc = await sys_request(sys_nc, "$SYS.REQ.CLAIMS.UPDATE", "not a jwt")
    assert doc["error"] == {"account": "n/a", "code": 500,
                            "description": "jwt update resulted in error - expected 3 chunks"}, doc
    await sys_nc.close()


@run
async def test_resolver_claim_update_revokes_a_user(op_srv, files):
    sys_nc = await connect(op_srv, user_credentials=creds_file(files, SYS, SYS))
    usr = jg.user_key()
    path = creds_file(files, UPD, UPD, usr=usr)
    nc = await connect(op_srv, user_credentials=path)
    await round_trip(nc, "upd.rt")
    revoked = jg.account(OP, UPD, "UPD", extra={"iat": jg.IAT + 1},
                         revocations={usr.public: jg.IAT + 100})
    doc = await sys_request(sys_nc, f"$SYS.REQ.ACCOUNT.{UPD.public}.CLAIMS.UPDATE", revoked)
    assert doc["data"]["code"] == 200, doc
    await asyncio.wait_for(nc.test_closed, 5)
    assert "user authentication revoked" in str(nc.last_error).lower(), nc.last_error
    await refused(op_srv, user_credentials=path)
    # Other users of the account are untouched.
    other = await connect(op_srv, user_credentials=creds_file(files, UPD, UPD))
    await round_trip(other, "upd.rt")
    await other.close()
    await sys_nc.close()


@run
async def test_resolver_claim_update_adds_an_import(op_srv, files):
    sys_nc = await connect(op_srv, user_credentials=creds_file(files, SYS, SYS))
    exp = await connect(op_srv, user_credentials=creds_file(files, EXP, EXP))
    imp2 = await connect(op_srv, user_credentials=creds_file(files, IMP2, IMP2))
    sub = await imp2.subscribe("late.news.>")
    await sync(imp2)
    updated = jg.account(OP, IMP2, "IMP2", extra={"iat": jg.IAT + 1}, imports=[
        {"name": "news", "subject": "news.>", "account": EXP.public, "type": "stream",
         "local_subject": "late.news.>"},
    ])
    doc = await sys_request(sys_nc, "$SYS.REQ.CLAIMS.UPDATE", updated)
    assert doc["data"]["code"] == 200, doc
    await exp.publish("news.b", b"after the update")
    try:
        msg = await sub.next_msg(timeout=5)
    except NatsTimeout:
        if op_srv.target == "natrix":
            for nc in (sys_nc, exp, imp2):
                await nc.close()
            pytest.skip(PENDING_REWIRE)
        raise
    assert (msg.subject, msg.data) == ("late.news.b", b"after the update")
    for nc in (sys_nc, exp, imp2):
        await nc.close()
