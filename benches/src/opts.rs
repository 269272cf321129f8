//! Command-line options of `natrix-bench`.

use std::time::Duration;

/// What to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Publishers only.
    Pub,
    /// Publishers and subscribers that each get every message.
    PubSub,
    /// Publishers and one queue group whose members share the messages.
    Queue,
    /// Synchronous requesters and a queue group of responders.
    ReqRep,
    /// JetStream publish with a window of outstanding PubAcks.
    JsPub,
    /// JetStream pull consume with explicit acks.
    JsPull,
    /// JetStream push consume with explicit acks (and flow control).
    JsPush,
    /// Resident memory per idle connection.
    Conns,
    /// Resident memory per subscription.
    Subs,
    /// MQTT publishers at QoS 0, NATS subscribers checking every message.
    MqttQos0,
    /// MQTT publishers at QoS 1 with a window of PUBACKs, NATS subscribers.
    MqttQos1,
}

impl Mode {
    /// The name used on the command line and in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Pub => "pub",
            Mode::PubSub => "pubsub",
            Mode::Queue => "queue",
            Mode::ReqRep => "reqrep",
            Mode::JsPub => "js-pub",
            Mode::JsPull => "js-pull",
            Mode::JsPush => "js-push",
            Mode::Conns => "conns",
            Mode::Subs => "subs",
            Mode::MqttQos0 => "mqtt-qos0",
            Mode::MqttQos1 => "mqtt-qos1",
        }
    }

    fn parse(s: &str) -> Option<Mode> {
        let all = [
            Mode::Pub,
            Mode::PubSub,
            Mode::Queue,
            Mode::ReqRep,
            Mode::JsPub,
            Mode::JsPull,
            Mode::JsPush,
            Mode::Conns,
            Mode::Subs,
            Mode::MqttQos0,
            Mode::MqttQos1,
        ];
        all.into_iter().find(|m| m.name() == s)
    }
}

/// Everything the command line says.
#[derive(Clone, Debug)]
pub struct Opts {
    /// What to measure.
    pub mode: Mode,
    /// Server URL, `nats://host:port`.
    pub url: String,
    /// Messages to publish in total (split over publishers).
    pub msgs: u64,
    /// Payload size in bytes.
    pub size: usize,
    /// Publishers (requesters in `reqrep`).
    pub pubs: u32,
    /// Subscribers, queue members, responders or pull consumers.
    pub subs: u32,
    /// Outstanding PubAcks per publisher (`js-pub`), pull batch (`js-pull`),
    /// `max_ack_pending` (`js-push`).
    pub window: u32,
    /// Subject to publish to.
    pub subject: String,
    /// JetStream stream name.
    pub stream: String,
    /// The run fails if it has not finished by then.
    pub timeout: Duration,
    /// `conns`/`subs`: how many to open.
    pub count: u64,
    /// `conns`/`subs`: the server process whose memory to read.
    pub pid: Option<u32>,
    /// `conns`: subscriptions each connection opens.
    pub per_conn: u64,
    /// `conns`/`subs`: keep them open this long after the reading (for
    /// measuring traffic beside them).
    pub hold: Duration,
    /// No progress line.
    pub quiet: bool,
    /// `mqtt-*`: the server's MQTT listener, `host:port`.
    pub mqtt: String,
}

/// The usage text.
pub const USAGE: &str = "\
usage: natrix-bench <mode> [options]

modes:
  pub      publishers only
  pubsub   P publishers, S subscribers each receiving every message
  queue    P publishers, one queue group of S members
  reqrep   P synchronous requesters, S responders in a queue group
  js-pub   JetStream publish with --window outstanding PubAcks per publisher
  js-pull  fill a stream, then S pull consumers fetch --window at a time and ack
  js-push  fill a stream, then S subscribers of a push consumer (max_ack_pending
           --window; flow control and heartbeats with one, a deliver group with
           several) ack each message
  conns    open --count idle connections, report server RSS per connection
  subs     open --count subscriptions on one connection, report RSS per sub
  mqtt-qos0  P MQTT publishers at QoS 0 on --mqtt, S NATS subscribers check every message
  mqtt-qos1  the same at QoS 1, --window PUBLISHes awaiting PUBACK per publisher

options:
  --url URL       server (default nats://127.0.0.1:4222)
  --msgs N        messages in total (default 100000; k/m suffixes)
  --size B        payload bytes, >= 16 (default 128; k/KiB suffixes)
  --pubs P        publishers / requesters (default 1)
  --subs S        subscribers / members / responders / consumers (default 1)
  --window W      js-pub outstanding acks, js-pull batch, js-push
                  max_ack_pending (default 256)
  --subject S     subject (default natrix.bench)
  --stream NAME   JetStream stream (default BENCH)
  --timeout SECS  fail if not done by then (default 60)
  --count N       conns/subs: how many (default 1000)
  --pid PID       conns/subs: server pid to read VmRSS of
  --per-conn N    conns: subscriptions per connection (default 0)
  --hold SECS     conns/subs: keep them open this long after the reading
  --mqtt H:P      mqtt-*: the MQTT listener (default 127.0.0.1:1883)
  --quiet         no progress line

The last line of output is a JSON summary. Any lost, duplicated,
out-of-order or corrupted message makes the exit status non-zero.";

/// Parses the command line (without the program name).
pub fn parse(args: &[String]) -> Result<Opts, String> {
    let mut it = args.iter();
    let mode_arg = it.next().ok_or("missing mode")?;
    let mode = Mode::parse(mode_arg).ok_or_else(|| format!("unknown mode {mode_arg:?}"))?;
    let mut o = Opts {
        mode,
        url: "nats://127.0.0.1:4222".into(),
        msgs: 100_000,
        size: 128,
        pubs: 1,
        subs: 1,
        window: 256,
        subject: "natrix.bench".into(),
        stream: "BENCH".into(),
        timeout: Duration::from_secs(60),
        count: 1000,
        pid: None,
        per_conn: 0,
        hold: Duration::ZERO,
        quiet: false,
        mqtt: "127.0.0.1:1883".into(),
    };
    while let Some(flag) = it.next() {
        if flag == "--quiet" {
            o.quiet = true;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" | "-s" => o.url = v.clone(),
            "--msgs" => o.msgs = number(v)?,
            "--size" => o.size = number(v)? as usize,
            "--pubs" => o.pubs = number(v)? as u32,
            "--subs" => o.subs = number(v)? as u32,
            "--window" => o.window = number(v)? as u32,
            "--subject" => o.subject = v.clone(),
            "--stream" => o.stream = v.clone(),
            "--timeout" => {
                o.timeout = Duration::from_secs_f64(v.parse().map_err(|_| bad(flag, v))?)
            }
            "--count" => o.count = number(v)?,
            "--pid" => o.pid = Some(v.parse().map_err(|_| bad(flag, v))?),
            "--per-conn" => o.per_conn = number(v)?,
            "--hold" => o.hold = Duration::from_secs(number(v)?),
            "--mqtt" => o.mqtt = v.trim_start_matches("mqtt://").trim_start_matches("tcp://").to_owned(),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    validate(&o)?;
    Ok(o)
}

fn validate(o: &Opts) -> Result<(), String> {
    if o.size < crate::payload::HEADER_BYTES {
        return Err(format!(
            "--size must be at least {} (id, seq and checksum)",
            crate::payload::HEADER_BYTES
        ));
    }
    if o.pubs == 0 || o.subs == 0 || o.window == 0 || o.msgs == 0 {
        return Err("--pubs, --subs, --window and --msgs must be positive".into());
    }
    if u64::from(o.pubs) > o.msgs {
        return Err("--pubs exceeds --msgs".into());
    }
    if o.msgs > 1_000_000_000 {
        return Err("--msgs above 1e9 (the checks keep a bit per message)".into());
    }
    Ok(())
}

/// Parses `1000`, `10k`, `1m`, `1KiB`, `64KiB`, `1MiB` (k = 1000 for
/// counts, KiB = 1024).
fn number(s: &str) -> Result<u64, String> {
    let lower = s.to_ascii_lowercase();
    let (digits, mult) = [
        ("kib", 1024),
        ("mib", 1 << 20),
        ("kb", 1000),
        ("k", 1000),
        ("mb", 1_000_000),
        ("m", 1_000_000),
    ]
    .iter()
    .find_map(|(suf, m)| lower.strip_suffix(suf).map(|d| (d.to_string(), *m)))
    .unwrap_or((lower.clone(), 1));
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("not a number: {s:?}"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("too large: {s:?}"))
}

fn bad(flag: &str, v: &str) -> String {
    format!("bad value for {flag}: {v:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_sizes_and_counts() {
        assert_eq!(number("16").unwrap(), 16);
        assert_eq!(number("1KiB").unwrap(), 1024);
        assert_eq!(number("64kib").unwrap(), 65536);
        assert_eq!(number("10k").unwrap(), 10_000);
        assert_eq!(number("2m").unwrap(), 2_000_000);
        assert!(number("x").is_err());
    }

    #[test]
    fn parses_a_command_line() {
        let o = parse(&args(
            "pubsub --msgs 1m --size 1KiB --pubs 2 --subs 4 --url nats://h:1",
        ))
        .unwrap();
        assert_eq!(
            (o.mode, o.msgs, o.size, o.pubs, o.subs),
            (Mode::PubSub, 1_000_000, 1024, 2, 4)
        );
        assert!(parse(&args("pub --size 8")).is_err());
        assert!(parse(&args("nope")).is_err());
        assert!(parse(&args("pub --msgs")).is_err());
    }
}
