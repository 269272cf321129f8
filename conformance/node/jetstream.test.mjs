// JetStream's key-value and object stores through nats.js (npm `nats`),
// as its `js.views.kv` and `js.views.os` build them on streams and
// ordered consumers. Every test passes against nats-server 2.15.1 too.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { connect } from "nats";
import { Server } from "./harness.mjs";

const enc = new TextEncoder();
const dec = new TextDecoder();

const servers = [];
after(async () => { for (const s of servers) await s.stop(); });

async function jsServer() {
  const s = await Server.start({ args: ["-js", "-sd", "store"] });
  servers.push(s);
  return connect({ servers: s.clientUrl, reconnect: false, timeout: 5000 });
}

async function collect(iter, n, ms = 5000) {
  const out = [];
  const timer = setTimeout(() => iter.stop(), ms);
  for await (const e of iter) {
    out.push(e);
    if (out.length === n) break;
  }
  clearTimeout(timer);
  return out;
}

test("kv: put, get, create, update, delete, history, keys", async () => {
  const nc = await jsServer();
  const kv = await nc.jetstream().views.kv("cfg", { history: 5 });
  assert.equal(await kv.put("a", enc.encode("1")), 1);
  assert.equal(await kv.put("a", enc.encode("2")), 2);
  const e = await kv.get("a");
  assert.equal(dec.decode(e.value), "2");
  assert.equal(e.revision, 2);
  assert.equal(e.operation, "PUT");
  // create refuses a key that exists; update needs the last revision.
  await assert.rejects(kv.create("a", enc.encode("x")));
  await assert.rejects(kv.update("a", enc.encode("x"), 1));
  assert.equal(await kv.update("a", enc.encode("3"), 2), 3);
  assert.equal(await kv.create("b", enc.encode("x")), 4);
  await kv.delete("b");
  assert.equal((await kv.get("b")).operation, "DEL");
  const keys = [];
  for await (const k of await kv.keys()) keys.push(k);
  assert.deepEqual(keys, ["a"]);
  const hist = [];
  for await (const h of await kv.history({ key: "a" })) hist.push([dec.decode(h.value), h.revision]);
  assert.deepEqual(hist, [["1", 1], ["2", 2], ["3", 3]]);
  const status = await kv.status();
  assert.equal(status.history, 5);
  assert.equal(status.values, 5);
  await nc.close();
});

test("kv: watch sees the current values, then changes as they happen", async () => {
  const nc = await jsServer();
  const kv = await nc.jetstream().views.kv("w");
  await kv.put("x", enc.encode("1"));
  await kv.put("y", enc.encode("2"));
  const w = await kv.watch();
  const seen = [];
  const done = (async () => {
    for await (const e of w) {
      seen.push([e.key, e.operation, dec.decode(e.value)]);
      if (seen.length === 5) break;
    }
  })();
  await new Promise((r) => setTimeout(r, 200));
  await kv.put("x", enc.encode("3"));
  await kv.delete("y");
  await kv.purge("x");
  const timer = setTimeout(() => w.stop(), 5000);
  await done;
  clearTimeout(timer);
  assert.deepEqual(seen, [["x", "PUT", "1"], ["y", "PUT", "2"], ["x", "PUT", "3"], ["y", "DEL", ""], ["x", "PURGE", ""]]);
  await nc.close();
});

test("object store: a multi-megabyte object in chunks, list, link, delete", async () => {
  const nc = await jsServer();
  const os = await nc.jetstream().views.os("files");
  const big = crypto.randomBytes(3 * 1024 * 1024 + 123);
  const info = await os.putBlob({ name: "big.bin", description: "random" }, new Uint8Array(big));
  assert.equal(info.size, big.length);
  assert.equal(info.chunks, Math.ceil(big.length / (128 * 1024)));
  assert.equal(info.digest, "SHA-256=" + crypto.createHash("sha256").update(big).digest("base64")
    .replaceAll("+", "-").replaceAll("/", "_"));
  const back = await os.getBlob("big.bin");
  assert.ok(Buffer.from(back).equals(big), "the same bytes come back");
  await os.putBlob({ name: "small.txt" }, enc.encode("hello"));
  assert.deepEqual((await os.list()).map((o) => o.name).sort(), ["big.bin", "small.txt"]);
  // A link names another object; reading it reads the target.
  const target = await os.info("small.txt");
  const link = await os.link("hello.link", target);
  assert.equal(link.options.link.name, "small.txt");
  assert.equal(dec.decode(await os.getBlob("hello.link")), "hello");
  await os.delete("big.bin");
  assert.equal(await os.getBlob("big.bin"), null);
  assert.equal((await os.info("big.bin")).deleted, true);
  assert.deepEqual((await os.list()).map((o) => o.name).sort(), ["hello.link", "small.txt"]);
  const status = await os.status();
  assert.equal(status.bucket, "files");
  assert.equal(status.backingStore, "JetStream");
  // The deleted object's chunks are gone: what is left is small.
  assert.ok(status.size < 64 * 1024, `size ${status.size}`);
  await nc.close();
});

test("object store: watch reports puts and deletes", async () => {
  const nc = await jsServer();
  const os = await nc.jetstream().views.os("watched");
  await os.putBlob({ name: "one" }, enc.encode("1"));
  const w = await os.watch({ includeHistory: true });
  const seen = [];
  const done = (async () => {
    for await (const e of w) {
      if (e === null) continue;
      seen.push([e.name, e.deleted]);
      if (seen.length === 3) break;
    }
  })();
  await new Promise((r) => setTimeout(r, 200));
  await os.putBlob({ name: "two" }, enc.encode("2"));
  await os.delete("one");
  const timer = setTimeout(() => w.stop(), 5000);
  await done;
  clearTimeout(timer);
  assert.deepEqual(seen, [["one", false], ["two", false], ["one", true]]);
  await nc.close();
});
