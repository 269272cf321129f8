use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use super::*;

fn map(src: &str, dest: &str, subject: &str) -> String {
    let t = Transform::new(src, dest).unwrap_or_else(|e| panic!("{src} -> {dest}: {e}"));
    let mut out = String::new();
    t.apply(subject, &mut ChaCha8Rng::seed_from_u64(0), &mut out);
    out
}

fn err(src: &str, dest: &str) -> String {
    match validate_mapping(src, dest) {
        Ok(_) => panic!("{src} -> {dest} accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn wildcards_and_rest() {
    assert_eq!(map("", "prefix.>", "foo"), "prefix.foo");
    assert_eq!(map("foo", "bar", "foo"), "bar");
    assert_eq!(map("foo.*.bar.*.baz", "req.$2.$1", "foo.A.bar.B.baz"), "req.B.A");
    assert_eq!(map("foo.*.bar.*.baz", "req.{{wildcard(2)}}.{{ Wildcard( 1 ) }}", "foo.A.bar.B.baz"), "req.B.A");
    assert_eq!(map("baz.>", "my.pre.>", "baz.1.2.3"), "my.pre.1.2.3");
    assert_eq!(map("*", "foo.bar.$1", "foo"), "foo.bar.foo");
    assert_eq!(map("a.*.>", "x.$1.>", "a.1.b.c"), "x.1.b.c");
    assert_eq!(map("a.*", "x.$price", "a.1"), "x.$price", "not a number: a literal");
}

#[test]
fn split_and_slice_functions() {
    assert_eq!(map("*", "{{splitfromleft(1,3)}}", "12345"), "123.45");
    assert_eq!(map("*", "{{SplitFromRight(1,3)}}", "12345"), "12.345");
    assert_eq!(map("*", "{{SliceFromLeft(1,3)}}", "1234567890"), "123.456.789.0");
    assert_eq!(map("*", "{{SliceFromRight(1,3)}}", "1234567890"), "1.234.567.890");
    assert_eq!(map("*", "{{SliceFromRight(1,3)}}", "123456"), "123.456");
    assert_eq!(map("*", "{{SliceFromLeft(1,9)}}", "1234"), "1234", "too short to slice");
    assert_eq!(map("*", "{{split(1,-)}}", "-abc-def--ghi-"), "abc.def.ghi");
    assert_eq!(map("*", "{{split(1,-)}}", "abc-def--ghi-"), "abc.def.ghi");
    assert_eq!(map("*.*", "{{split(2,-)}}.{{splitfromleft(1,2)}}", "foo.-abc-def--ghij-"), "abc.def.ghij.fo.o");
    assert_eq!(map("*", "{{right(1,3)}}", "1234"), "234");
    assert_eq!(map("*", "{{left(1,3)}}", "1234"), "123");
    assert_eq!(map("*", "{{left(1,6)}}", "1234"), "1234");
}

#[test]
fn partitions_use_nats_servers_hash() {
    assert_eq!(map("*", "bar.{{partition(0)}}", "baz"), "bar.0");
    assert_eq!(map("*", "bar.{{partition(10, 1)}}", "foo"), "bar.3");
    assert_eq!(map("*.*", "bar.{{partition(10)}}", "foo.bar"), "bar.6");
    assert_eq!(map("*", "bar.{{partition(10)}}", "foo"), "bar.3");
    assert_eq!(map("*", "bar.{{partition(10)}}", "baz"), "bar.0");
    assert_eq!(map("*", "bar.{{partition(10)}}", "qux"), "bar.9");
    assert_eq!(map("foo.bar", "baz.{{partition(10)}}", "foo.bar"), "baz.6");
    assert_eq!(map("test.subject", "result.{{partition(5)}}", "test.subject"), "result.0");
    // Named tokens are hashed one after the other, without a separator.
    assert_eq!(map("*.*", "p.{{partition(1000,1,2)}}", "ab.c"), map("*.*", "p.{{partition(1000,1,2)}}", "a.bc"));
    assert_ne!(map("*.*", "p.{{partition(1000)}}", "ab.c"), map("*.*", "p.{{partition(1000)}}", "a.bc"));
}

#[test]
fn random_stays_below_its_bound() {
    let t = Transform::new("*", "bar.{{random(6)}}").unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut seen = [false; 6];
    for _ in 0..200 {
        let mut out = String::new();
        t.apply("qux", &mut rng, &mut out);
        let n: usize = out.strip_prefix("bar.").unwrap().parse().unwrap();
        seen[n] = true;
    }
    assert!(seen.iter().all(|s| *s));
    assert_eq!(map("*", "bar.{{random(0)}}", "q"), "bar.0");
}

#[test]
fn errors_read_like_nats_server() {
    assert_eq!(err("ab", "x.*"), "invalid subject");
    assert_eq!(err("ab.*", "x.>"), "invalid subject");
    assert_eq!(err("ab.*", "x.$2"), "invalid mapping destination: wildcard index out of range in $2: [2]");
    assert_eq!(err("ab", "x.$1"), "invalid mapping destination: wildcard index out of range in $1");
    assert_eq!(err("ab.*", "x.{{nope(1)}}"), "invalid mapping destination: unknown function in {{nope(1)}}");
    assert_eq!(err("ab.*", "x.{{WILDCARD(1)}}"), "invalid mapping destination: unknown function in {{WILDCARD(1)}}");
    assert_eq!(err("a", "x..y"), "invalid mapping destination: invalid transform");
    assert_eq!(err("a.>", "x.>.y"), "invalid mapping destination: invalid transform in y");
    assert_eq!(err("a.*", "x.{{wildcard()}}"), "invalid mapping destination: not enough arguments passed to the function in {{wildcard()}}");
    assert_eq!(err("a.*", "x.{{wildcard(1,2)}}"), "invalid mapping destination: too many arguments passed to the function in {{wildcard(1,2)}}");
    assert_eq!(err("a.*", "x.{{wildcard(x)}}"), "invalid mapping destination: function argument is invalid or in the wrong format in {{wildcard(x)}}");
    assert_eq!(err("a.*", "x.{{splitfromleft(1)}}"), "invalid mapping destination: not enough arguments passed to the function in {{splitfromleft(1)}}");
    assert_eq!(err("a.*", "x.{{split(1,- )}}"), "invalid mapping destination: function argument is invalid or in the wrong format in {{split(1,- )}}");
    assert_eq!(err("a.*", "x.{{partition(a,1)}}"), "invalid mapping destination: function argument is invalid or in the wrong format in {{partition(a,1)}}");
    assert_eq!(err("a", "x.{{split(1,-)}}"), "invalid mapping destination: wildcard index out of range in {{split(1,-)}}");
    assert!(validate_mapping("a", "x.{{partition(3)}}").is_ok());
    assert!(validate_mapping("a", "x.{{partition(3,1)}}").is_ok());
    assert!(validate_mapping("a.*", "x.{{random(3)}}").is_ok());
}

#[test]
fn odd_input_never_panics() {
    for dest in ["{{splitfromleft(1,-5)}}", "{{slicefromright(1,0)}}", "{{split(1,)}}", "{{partition(-3,1)}}", "{{wildcard(0)}}", "{{wildcard(-1)}}"] {
        if let Ok(t) = Transform::new("*", dest) {
            let mut out = String::new();
            t.apply("héllo-wörld", &mut ChaCha8Rng::seed_from_u64(0), &mut out);
            t.apply("", &mut ChaCha8Rng::seed_from_u64(0), &mut out);
        }
    }
}
