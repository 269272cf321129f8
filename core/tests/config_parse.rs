//! The config syntax: value types, separators, comments, strings, numbers,
//! variables, includes, and syntax errors with their positions.

use natrix_core::config::{parse_str, ConfigError, ConfigMap, MemorySource, Value, ValueKind};

fn parse(text: &str) -> ConfigMap {
    parse_str(text, "t.conf", &MemorySource::new()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn parse_with(text: &str, source: &MemorySource) -> Result<ConfigMap, ConfigError> {
    parse_str(text, "t.conf", source)
}

fn kind<'m>(map: &'m ConfigMap, key: &str) -> &'m ValueKind {
    &map.get(key).unwrap_or_else(|| panic!("no key {key}")).kind
}

fn s(text: &str) -> ValueKind {
    ValueKind::String(text.to_owned())
}

fn syntax_error(text: &str) -> String {
    match parse_with(text, &MemorySource::new()) {
        Err(ConfigError::Syntax(d)) => d.to_string(),
        other => panic!("{text:?} should be a syntax error, got {other:?}"),
    }
}

#[test]
fn separators_and_terminators() {
    let m = parse("a: 1\nb = 2\nc 3\nd: 4; e: 5, f: 6\n  g:7 # trailing\nh=8 // trailing\n");
    let values: Vec<(&str, &ValueKind)> = m
        .entries()
        .iter()
        .map(|e| (e.key.as_str(), &e.value.kind))
        .collect();
    let expected: Vec<(&str, ValueKind)> = ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(1..)
        .map(|(k, i)| (*k, ValueKind::Integer(i)))
        .collect();
    assert_eq!(
        values,
        expected.iter().map(|(k, v)| (*k, v)).collect::<Vec<_>>()
    );
}

#[test]
fn scalar_types() {
    let m = parse(concat!(
        "t: true\nf: FALSE\ny: yes\nn: No\non: on\noff: off\n",
        "i: -42\nfl: 3.25\nneg_f: -0.5\nip: 127.0.0.1\naddr: 10.0.0.1:4222\n",
        "host: localhost:4222\nurl: nats://a:b@host:4222\ndur: 1h30m\nms: 500ms\n",
        "date: 2016-05-04T18:53:41Z\nsubj: foo.*.>\nwild: >\n",
    ));
    assert_eq!(kind(&m, "t"), &ValueKind::Bool(true));
    assert_eq!(kind(&m, "f"), &ValueKind::Bool(false));
    assert_eq!(kind(&m, "y"), &ValueKind::Bool(true));
    assert_eq!(kind(&m, "n"), &ValueKind::Bool(false));
    assert_eq!(kind(&m, "on"), &ValueKind::Bool(true));
    assert_eq!(kind(&m, "off"), &ValueKind::Bool(false));
    assert_eq!(kind(&m, "i"), &ValueKind::Integer(-42));
    assert_eq!(kind(&m, "fl"), &ValueKind::Float(3.25));
    assert_eq!(kind(&m, "neg_f"), &ValueKind::Float(-0.5));
    assert_eq!(kind(&m, "ip"), &s("127.0.0.1"));
    assert_eq!(kind(&m, "addr"), &s("10.0.0.1:4222"));
    assert_eq!(kind(&m, "host"), &s("localhost:4222"));
    assert_eq!(kind(&m, "url"), &s("nats://a:b@host:4222"));
    assert_eq!(kind(&m, "dur"), &s("1h30m"));
    assert_eq!(kind(&m, "ms"), &s("500ms"));
    assert_eq!(
        kind(&m, "date"),
        &ValueKind::DateTime("2016-05-04T18:53:41Z".into())
    );
    assert_eq!(kind(&m, "subj"), &s("foo.*.>"));
    assert_eq!(kind(&m, "wild"), &s(">"));
}

#[test]
fn size_suffixes_follow_nats_server() {
    let m = parse("a: 1k\nb: 1K\nc: 1kb\nd: 1KiB\ne: 2mb\nf: 2M\ng: 1GB\nh: 1g\ni: 1Ti\nj: 3mib\n");
    let want = [
        ("a", 1000),
        ("b", 1000),
        ("c", 1024),
        ("d", 1024),
        ("e", 2 << 20),
        ("f", 2_000_000),
        ("g", 1 << 30),
        ("h", 1_000_000_000),
        ("i", 1 << 40),
        ("j", 3 << 20),
    ];
    for (key, n) in want {
        assert_eq!(kind(&m, key), &ValueKind::Integer(n), "{key}");
    }
    assert!(syntax_error("a: 9999999999999999999\n")
        .contains("integer '9999999999999999999' is out of the range"));
    assert!(syntax_error("a: 10E\n").contains("out of the range"));
}

#[test]
fn strings_quoted_raw_escaped_and_blocks() {
    let m = parse(concat!(
        "dq: \"a \\\"quoted\\\" \\t tab \\n nl \\\\ \\x41\"\n",
        "sq: 'raw \\n $not_a_var'\n",
        "bare: hello\\x21\n",
        "spaces: \"with # no comment\"\n",
        "empty: \"\"\n",
        "blk (\n  line one\n  line two\n)\n",
    ));
    assert_eq!(kind(&m, "dq"), &s("a \"quoted\" \t tab \n nl \\ A"));
    assert_eq!(kind(&m, "sq"), &s("raw \\n $not_a_var"));
    assert_eq!(kind(&m, "bare"), &s("hello!"));
    assert_eq!(kind(&m, "spaces"), &s("with # no comment"));
    assert_eq!(kind(&m, "empty"), &s(""));
    assert_eq!(kind(&m, "blk"), &s("\n  line one\n  line two\n"));
}

#[test]
fn arrays_and_maps() {
    let m = parse(concat!(
        "arr: [1, \"two\", three, 4.5, true]\n",
        "lines: [\n  a # comment\n  b, // comment\n  c\n]\n",
        "ints: [1]\n",
        "empty: []\n",
        "nested { inner { deep: 1 }, list: [{x: 1}, {x: 2}] }\n",
        "emptymap {}\n",
    ));
    let ValueKind::Array(arr) = kind(&m, "arr") else {
        panic!("array")
    };
    let kinds: Vec<&ValueKind> = arr.iter().map(|v| &v.kind).collect();
    assert_eq!(
        kinds,
        [
            &ValueKind::Integer(1),
            &s("two"),
            &s("three"),
            &ValueKind::Float(4.5),
            &ValueKind::Bool(true)
        ]
    );
    let ValueKind::Array(lines) = kind(&m, "lines") else {
        panic!("array")
    };
    assert_eq!(
        lines.iter().map(|v| v.kind.clone()).collect::<Vec<_>>(),
        [s("a"), s("b"), s("c")]
    );
    assert_eq!(
        lines[1].pos.line, 4,
        "array elements keep their own position"
    );
    assert!(matches!(kind(&m, "ints"), ValueKind::Array(v) if v.len() == 1));
    assert!(matches!(kind(&m, "empty"), ValueKind::Array(v) if v.is_empty()));
    let ValueKind::Map(nested) = kind(&m, "nested") else {
        panic!("map")
    };
    let ValueKind::Map(inner) = kind(nested, "inner") else {
        panic!("map")
    };
    assert_eq!(kind(inner, "deep"), &ValueKind::Integer(1));
    assert!(matches!(kind(nested, "list"), ValueKind::Array(v) if v.len() == 2));
    assert!(matches!(kind(&m, "emptymap"), ValueKind::Map(v) if v.is_empty()));
}

#[test]
fn quoted_keys_and_json_style() {
    let m = parse("{\n  \"a key\": 1,\n  'b': [\"x\"],\n  \"c\": {\"d\": null_is_a_string}\n}\n");
    assert_eq!(kind(&m, "a key"), &ValueKind::Integer(1));
    assert!(matches!(kind(&m, "b"), ValueKind::Array(_)));
    assert!(matches!(kind(&m, "c"), ValueKind::Map(_)));
}

#[test]
fn later_keys_replace_earlier_ones() {
    let m = parse("port: 1\nport: 2\n");
    assert_eq!(m.len(), 1);
    assert_eq!(kind(&m, "port"), &ValueKind::Integer(2));
    assert_eq!(m.get("port").unwrap().pos.line, 2);
}

#[test]
fn positions_follow_nats_server() {
    // Line 1 counts columns from 0, later lines from 1, as nats-server does.
    let m = parse("a: 1\n  b: 2\nc {\n   d: 3\n}\n");
    let pos = |v: &Value| (v.pos.line, v.pos.column);
    assert_eq!(pos(m.get("a").unwrap()), (1, 0));
    assert_eq!(pos(m.get("b").unwrap()), (2, 3));
    let ValueKind::Map(c) = kind(&m, "c") else {
        panic!("map")
    };
    assert_eq!(pos(c.get("d").unwrap()), (4, 4));
    assert_eq!(&*m.get("a").unwrap().pos.file, "t.conf");
}

#[test]
fn variables_are_block_scoped_then_environment() {
    let env = MemorySource::new()
        .with_env("FROM_ENV", "4222")
        .with_env("MAP_ENV", "{x: 1}")
        .with_env("SHADOW", "env");
    let m = parse_with(
        concat!(
            "TOP: top\nSHADOW: file\n",
            "a: $TOP\nb: $FROM_ENV\nc: $MAP_ENV\nd: $SHADOW\n",
            "blk { INNER: inner, e: $INNER, f: $TOP, g: [$TOP, $INNER] }\n",
            "h: \"$TOP\"\n",
            "pw: $2a$11$abc\n",
        ),
        &env,
    )
    .expect("parses");
    assert_eq!(kind(&m, "a"), &s("top"));
    assert_eq!(
        kind(&m, "b"),
        &ValueKind::Integer(4222),
        "environment text is parsed as a value"
    );
    assert!(matches!(kind(&m, "c"), ValueKind::Map(x) if x.get("x").is_some()));
    assert_eq!(
        kind(&m, "d"),
        &s("file"),
        "file variables shadow the environment"
    );
    let ValueKind::Map(blk) = kind(&m, "blk") else {
        panic!("map")
    };
    assert_eq!(kind(blk, "e"), &s("inner"));
    assert_eq!(kind(blk, "f"), &s("top"));
    assert_eq!(kind(&m, "h"), &s("$TOP"), "no expansion inside quotes");
    assert_eq!(
        kind(&m, "pw"),
        &s("$2a$11$abc"),
        "bcrypt hashes are not variables"
    );
    assert!(
        m.entries()
            .iter()
            .find(|e| e.key == "TOP")
            .unwrap()
            .used_as_variable
    );
}

#[test]
fn variable_errors() {
    let err = syntax_error("a: 1\nb: $NOPE\n");
    assert_eq!(
        err,
        "t.conf:2:4: variable reference for 'NOPE' on line 2 can not be found"
    );
    // An inner block's variables are not visible outside it.
    assert!(syntax_error("blk { X: 1 }\ny: $X\n").contains("'X' on line 2 can not be found"));
    let cyclic = MemorySource::new().with_env("A", "$B").with_env("B", "$A");
    let Err(ConfigError::Syntax(d)) = parse_with("x: $A\n", &cyclic) else {
        panic!("cycle must fail")
    };
    assert!(
        d.message.contains("variable reference cycle"),
        "{}",
        d.message
    );
}

#[test]
fn includes_merge_into_the_current_map() {
    let source = MemorySource::new()
        .with_file("conf/a.conf", "x: 1\nVAR: v\n")
        .with_file("conf/sub/b.conf", "y: [1, 2]\ninclude ../a.conf\n")
        .with_file("conf/c.conf", "inner: true\n");
    let m = parse_str(
        "include sub/b.conf\nz: $VAR\nblk {\n  include \"c.conf\"\n  other: 1\n}\n",
        "conf/main.conf",
        &source,
    )
    .expect("parses");
    assert_eq!(kind(&m, "x"), &ValueKind::Integer(1));
    assert!(matches!(kind(&m, "y"), ValueKind::Array(_)));
    assert_eq!(
        kind(&m, "z"),
        &s("v"),
        "variables from an include are visible after it"
    );
    assert_eq!(&*m.get("x").unwrap().pos.file, "conf/a.conf");
    let ValueKind::Map(blk) = kind(&m, "blk") else {
        panic!("map")
    };
    assert_eq!(kind(blk, "inner"), &ValueKind::Bool(true));
}

#[test]
fn include_errors() {
    let missing = syntax_error("include nothere.conf\n");
    assert_eq!(missing, "t.conf:1:8: error parsing include file 'nothere.conf', open nothere.conf: no such file or directory");
    let selfref = MemorySource::new().with_file("t.conf", "include t.conf\n");
    let Err(ConfigError::Syntax(d)) = parse_with("include t.conf\n", &selfref) else {
        panic!("cycle")
    };
    assert!(
        d.message.contains("include cycle: t.conf -> t.conf"),
        "{}",
        d.message
    );
    assert!(syntax_error("include [a]\n")
        .contains("Expected include value but found start of an array"));
}

#[test]
fn include_fan_out_is_bounded() {
    // Each file includes the next twice: 2^20 includes without a bound.
    let mut source = MemorySource::new();
    for i in 0..20 {
        source = source.with_file(
            &format!("f{i}.conf"),
            &format!("include f{0}.conf\ninclude f{0}.conf\n", i + 1),
        );
    }
    source = source.with_file("f20.conf", "a: 1\n");
    let result = parse_str("include f0.conf\n", "main.conf", &source);
    let Err(ConfigError::Syntax(d)) = result else {
        panic!("must be bounded")
    };
    assert!(
        d.message.contains("too many nested or repeated includes"),
        "{}",
        d.message
    );
}

#[test]
fn syntax_errors_carry_positions() {
    assert_eq!(
        syntax_error("port: 4333\nhost: [1, ,2]\n"),
        "t.conf:2:11: Unexpected array value terminator ','."
    );
    assert_eq!(
        syntax_error("a {\n b: 1\n"),
        "t.conf:3:1: Unexpected EOF processing map."
    );
    assert_eq!(
        syntax_error("port: 4333\nlisten:\n"),
        "t.conf:2:8: Expected value but found new line"
    );
    assert_eq!(syntax_error("a: \"open\n"), "t.conf:2:1: Unexpected EOF.");
    assert!(syntax_error("a: .5\n").contains("Floats must start with a digit"));
    assert!(syntax_error("a: 1.x\n")
        .contains("Floats must have a digit after the '.', but got 'x' instead."));
    assert!(syntax_error("a: 2016-05-04\n").contains("Expected 'T' in ISO8601 datetime"));
    assert!(syntax_error("a: 12-05\n").contains("All ISO8601 dates must be in full Zulu form."));
    assert!(syntax_error("a: \"\\q\"\n").contains("Invalid escape character 'q'"));
    assert!(syntax_error("a: \"\\xZZ\"\n")
        .contains("Expected two hexadecimal digits after '\\x', but got 'ZZ'"));
    assert!(syntax_error("a: 1 2\n").contains(
        "Expected a top-level value to end with a new line, comment or EOF, but got '2' instead."
    ));
    assert!(syntax_error("m { a: 1 b }\n").contains("Expected a map value terminator"));
    assert!(syntax_error(": 1\n").contains("Unexpected key separator ':'"));
    assert!(syntax_error("a: [1 2]\n").contains("Expected an array value terminator"));
    assert!(syntax_error("blk (\nnever closed\n").contains("Unexpected EOF processing block."));
    assert!(syntax_error("lonely\n").contains("config is invalid"));
    assert!(syntax_error("{ a: 1\n").contains("Unexpected EOF."));
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("a: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    assert!(syntax_error(&deep).contains("config nesting is deeper than 64 levels"));
    let maps = format!("a {}{}\n", "{ b ".repeat(100), "}".repeat(100));
    assert!(syntax_error(&maps).contains("config nesting is deeper than 64 levels"));
    let ok = format!("a: {}{}\n", "[".repeat(64), "]".repeat(64));
    parse(&ok);
}

#[test]
fn empty_and_comment_only_files() {
    assert!(parse("").is_empty());
    assert!(parse("# only a comment\n// and another\n\n").is_empty());
    assert!(parse("{}").is_empty());
}
