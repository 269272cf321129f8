// Client-visible behaviour through nats.js (npm `nats`), the reference Node client.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { connect, headers, ErrorCode } from "nats";
import { Server, Inbox } from "./harness.mjs";

const enc = new TextEncoder();
const dec = new TextDecoder();
const USERS_CONFIG = `
authorization {
  users = [
    { user: alice, password: "wonder land" }
    { user: bob, password: b0bpass }
  ]
}
`;

const servers = [];
after(async () => { for (const s of servers) await s.stop(); });

async function start(opts = {}) {
  const s = await Server.start(opts);
  servers.push(s);
  return s;
}

function dial(srv, opts = {}) {
  return connect({ servers: srv.clientUrl, reconnect: false, timeout: 5000, ...opts });
}

async function roundTrip(nc) {
  const inbox = new Inbox();
  nc.subscribe("rt", { callback: inbox.callback() });
  nc.publish("rt", enc.encode("ok"));
  const [m] = await inbox.waitFor(1);
  assert.equal(dec.decode(m.data), "ok");
}

async function refused(srv, opts = {}) {
  await assert.rejects(dial(srv, opts), (e) => {
    assert.equal(e.code, ErrorCode.AuthorizationViolation, String(e));
    return true;
  });
}

test("INFO fields", async () => {
  const srv = await start();
  const nc = await dial(srv);
  const info = nc.info;
  for (const [key, type] of [["server_id", "string"], ["server_name", "string"], ["version", "string"],
    ["proto", "number"], ["host", "string"], ["port", "number"], ["headers", "boolean"],
    ["max_payload", "number"], ["client_id", "number"], ["client_ip", "string"]]) {
    assert.equal(typeof info[key], type, `INFO.${key}=${JSON.stringify(info[key])}`);
  }
  assert.equal(info.proto, 1);
  assert.equal(info.headers, true);
  assert.equal(info.max_payload, 1048576);
  assert.equal(info.port, srv.port);
  await nc.close();
});

test("auth: user and password from flags", async () => {
  const srv = await start({ args: ["--user", "derek", "--pass", "s3cr3t"] });
  const nc = await dial(srv, { user: "derek", pass: "s3cr3t" });
  assert.equal(nc.info.auth_required, true);
  await roundTrip(nc);
  await nc.close();
  await refused(srv, { user: "derek", pass: "bad" });
  await refused(srv);
});

test("auth: token from flag", async () => {
  const srv = await start({ args: ["--auth", "t0ken-abc"] });
  const nc = await dial(srv, { token: "t0ken-abc" });
  await roundTrip(nc);
  await nc.close();
  await refused(srv, { token: "wrong" });
});

test("auth: users from config file", async () => {
  const srv = await start({ config: USERS_CONFIG });
  for (const [user, pass] of [["alice", "wonder land"], ["bob", "b0bpass"]]) {
    const nc = await dial(srv, { user, pass });
    await roundTrip(nc);
    await nc.close();
  }
  await refused(srv, { user: "alice", pass: "b0bpass" });
});

test("pub/sub across connections", async () => {
  const srv = await start();
  const subNc = await dial(srv);
  const pubNc = await dial(srv);
  const inbox = new Inbox();
  subNc.subscribe("greet.joe", { callback: inbox.callback() });
  await subNc.flush();
  pubNc.publish("greet.joe", enc.encode("hello"));
  pubNc.publish("greet.joe");
  const [a, b] = await inbox.waitFor(2);
  assert.equal(a.subject, "greet.joe");
  assert.equal(dec.decode(a.data), "hello");
  assert.equal(b.data.length, 0);
  await subNc.close();
  await pubNc.close();
});

test("wildcards * and >", async () => {
  const srv = await start();
  const nc = await dial(srv);
  const star = new Inbox();
  const full = new Inbox();
  nc.subscribe("orders.*.created", { callback: star.callback() });
  nc.subscribe("orders.>", { callback: full.callback() });
  await nc.flush();
  for (const s of ["orders.eu.created", "orders.eu.x.created", "orders", "orders.us.created"]) {
    nc.publish(s, enc.encode(s));
  }
  await nc.flush();
  await full.waitFor(3);
  assert.deepEqual((await star.settle(200)).map((m) => m.subject), ["orders.eu.created", "orders.us.created"]);
  assert.deepEqual(full.msgs.map((m) => m.subject),
    ["orders.eu.created", "orders.eu.x.created", "orders.us.created"]);
  await nc.close();
});

test("queue group delivers each message exactly once", async () => {
  const srv = await start();
  const members = [];
  for (let i = 0; i < 3; i++) {
    const nc = await dial(srv);
    const inbox = new Inbox();
    nc.subscribe("work", { queue: "workers", callback: inbox.callback() });
    await nc.flush();
    members.push({ nc, inbox });
  }
  const pub = await dial(srv);
  for (let i = 0; i < 300; i++) pub.publish("work", enc.encode(String(i)));
  await pub.flush();
  await new Promise((r) => setTimeout(r, 400));
  const counts = members.map((m) => m.inbox.msgs.length);
  const seen = new Set(members.flatMap((m) => m.inbox.msgs.map((x) => dec.decode(x.data))));
  assert.equal(counts.reduce((a, b) => a + b, 0), 300, `counts ${counts}`);
  assert.equal(seen.size, 300);
  assert.ok(counts.filter((c) => c > 0).length > 1, `no spread: ${counts}`);
  for (const m of members) await m.nc.close();
  await pub.close();
});

test("request/reply", async () => {
  const srv = await start();
  const responder = await dial(srv);
  responder.subscribe("svc.echo", {
    callback: (err, msg) => { if (!err) msg.respond(enc.encode("echo:" + dec.decode(msg.data))); },
  });
  await responder.flush();
  const requester = await dial(srv);
  const reply = await requester.request("svc.echo", enc.encode("ping"), { timeout: 5000 });
  assert.equal(dec.decode(reply.data), "echo:ping");
  await requester.close();
  await responder.close();
});

test("headers round trip", async () => {
  const srv = await start();
  const nc = await dial(srv);
  const inbox = new Inbox();
  nc.subscribe("hdr", { callback: inbox.callback() });
  await nc.flush();
  const h = headers();
  h.set("X-Trace", "abc-123");
  h.append("X-Multi", "one");
  h.append("X-Multi", "two");
  nc.publish("hdr", enc.encode("body"), { headers: h });
  const [m] = await inbox.waitFor(1);
  assert.equal(dec.decode(m.data), "body");
  assert.equal(m.headers.get("X-Trace"), "abc-123");
  assert.deepEqual(m.headers.values("X-Multi"), ["one", "two"]);
  await nc.close();
});

test("no responders", async () => {
  const srv = await start();
  const nc = await dial(srv);
  await assert.rejects(nc.request("nobody.home", enc.encode("x"), { timeout: 5000 }), (e) => {
    assert.equal(e.code, ErrorCode.NoResponders, String(e));
    return true;
  });
  await nc.close();
});

test("auto-unsubscribe after max", async () => {
  const srv = await start();
  const nc = await dial(srv);
  const inbox = new Inbox();
  const sub = nc.subscribe("limited", { callback: inbox.callback() });
  sub.unsubscribe(3);
  await nc.flush();
  for (let i = 0; i < 10; i++) nc.publish("limited", enc.encode(String(i)));
  await nc.flush();
  const got = (await inbox.settle(300)).map((m) => dec.decode(m.data));
  assert.deepEqual(got, ["0", "1", "2"]);
  await nc.close();
});

test("echo off", async () => {
  const srv = await start();
  const quiet = await dial(srv, { noEcho: true });
  const other = await dial(srv);
  const own = new Inbox();
  const theirs = new Inbox();
  quiet.subscribe("echo", { callback: own.callback() });
  other.subscribe("echo", { callback: theirs.callback() });
  await quiet.flush();
  await other.flush();
  quiet.publish("echo", enc.encode("from quiet"));
  await quiet.flush();
  await theirs.waitFor(1);
  assert.equal((await own.settle(300)).length, 0, "echo:false must not deliver to self");
  other.publish("echo", enc.encode("from other"));
  const [m] = await own.waitFor(1);
  assert.equal(dec.decode(m.data), "from other");
  await quiet.close();
  await other.close();
});

test("drain delivers pending messages then closes", async () => {
  const srv = await start();
  const nc = await dial(srv);
  const got = [];
  nc.subscribe("drain.me", { callback: (err, m) => { if (!err) got.push(dec.decode(m.data)); } });
  await nc.flush();
  const pub = await dial(srv);
  for (let i = 0; i < 50; i++) pub.publish("drain.me", enc.encode(String(i)));
  await pub.flush();
  await new Promise((r) => setTimeout(r, 100));
  await nc.drain();
  assert.ok(nc.isClosed());
  assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => String(i)));
  await pub.close();
});
