// Start natrix or nats-server as a child process for a test.
//
// The server listens on 127.0.0.1 with `-p -1 --ports_file_dir DIR`; we wait
// for the `*.ports` JSON file it writes there and read the client (`nats`)
// and `monitoring` URLs from it. NATRIX_SERVER=natrix|nats-server picks the
// target (default natrix); NATRIX_BIN / NATS_SERVER_BIN override the paths.

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const STARTUP_TIMEOUT_MS = 15000;

export function targetFromEnv() {
  const t = process.env.NATRIX_SERVER || "natrix";
  if (t !== "natrix" && t !== "nats-server") {
    throw new Error(`NATRIX_SERVER=${t}: expected natrix or nats-server`);
  }
  return t;
}

export function binary(target) {
  if (target === "natrix") {
    return process.env.NATRIX_BIN || path.join(REPO, "target", "debug", "natrix");
  }
  if (process.env.NATS_SERVER_BIN) return process.env.NATS_SERVER_BIN;
  const venv = path.join(REPO, ".venv", "bin", "nats-server");
  return fs.existsSync(venv) ? venv : "nats-server";
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Server {
  static async start({ args = [], config = null, monitoring = false, target = null } = {}) {
    const srv = new Server();
    srv.target = target || targetFromEnv();
    srv.dir = fs.mkdtempSync(path.join(os.tmpdir(), `natrix-conf-${srv.target}-`));
    const portsDir = path.join(srv.dir, "ports");
    fs.mkdirSync(portsDir);
    const cmd = ["-a", "127.0.0.1", "-p", "-1", "--ports_file_dir", portsDir];
    if (monitoring) cmd.push("-m", "-1");
    if (config !== null) {
      const conf = path.join(srv.dir, "server.conf");
      fs.writeFileSync(conf, config);
      cmd.push("-c", conf);
    }
    cmd.push(...args);
    const bin = binary(srv.target);
    srv.logText = "";
    srv.exit = null;
    srv.proc = spawn(bin, cmd, { cwd: srv.dir, stdio: ["ignore", "pipe", "pipe"] });
    srv.spawnError = null;
    srv.proc.on("error", (e) => { srv.spawnError = e; });
    srv.proc.on("exit", (code, signal) => { srv.exit = { code, signal }; });
    const append = (d) => { srv.logText += d.toString(); };
    srv.proc.stdout.on("data", append);
    srv.proc.stderr.on("data", append);
    try {
      const ports = await srv.#waitForPorts(portsDir, bin);
      srv.clientUrl = ports.nats[0];
      srv.port = Number(srv.clientUrl.split(":").pop());
      srv.monitorUrl = ports.monitoring ? ports.monitoring[0] : null;
    } catch (e) {
      await srv.stop();
      throw e;
    }
    return srv;
  }

  async #waitForPorts(portsDir, bin) {
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    for (;;) {
      for (const name of fs.readdirSync(portsDir)) {
        if (!name.endsWith(".ports")) continue;
        try {
          return JSON.parse(fs.readFileSync(path.join(portsDir, name), "utf8"));
        } catch {
          // half-written; retry
        }
      }
      if (this.spawnError) {
        throw new Error(`cannot run ${bin}: ${this.spawnError.message} ` +
          "(build it with `cargo build -p natrix` or set NATRIX_SERVER=nats-server)");
      }
      if (this.exit) {
        throw new Error(`${this.target} exited early (${JSON.stringify(this.exit)}):\n${this.logText}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`${this.target}: no ports file after ${STARTUP_TIMEOUT_MS} ms:\n${this.logText}`);
      }
      await sleep(20);
    }
  }

  async stop() {
    if (this.proc && this.exit === null && !this.spawnError) {
      const exited = new Promise((r) => this.proc.once("exit", r));
      this.proc.kill("SIGKILL");
      await exited;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// Collects messages of a callback subscription so tests can await counts.
export class Inbox {
  constructor() {
    this.msgs = [];
    this.waiters = [];
  }

  callback() {
    return (err, msg) => {
      if (err) return;
      this.msgs.push(msg);
      for (const w of this.waiters.splice(0)) w();
    };
  }

  async waitFor(n, ms = 5000) {
    const deadline = Date.now() + ms;
    while (this.msgs.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${n} messages, got ${this.msgs.length}`);
      await new Promise((r) => {
        this.waiters.push(r);
        setTimeout(r, left);
      });
    }
    return this.msgs.slice(0, n);
  }

  async settle(ms = 300) {
    await sleep(ms);
    return this.msgs;
  }
}
