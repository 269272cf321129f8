//! Property tests: no input panics the config parser or the flag parser,
//! and parsing stays bounded.

use natrix_core::config::{load, parse_args, parse_str, MemorySource};
use proptest::prelude::*;

fn source() -> MemorySource {
    MemorySource::new()
        .with_file("inc.conf", "include t.conf\nx: 1\n")
        .with_env("E", "$E")
        .with_env("F", "{ a: [1, 2 }")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_str(&text, "t.conf", &source());
    }

    #[test]
    fn config_shaped_text_never_panics(
        text in "([a-z$\"'{}\\[\\](),;:= \t\n#/\\\\0-9.kKmMbBiI-]|include ){0,200}"
    ) {
        let _ = parse_str(&text, "t.conf", &source());
        let src = source().with_file("t.conf", &text);
        let _ = load(&["-c".to_owned(), "t.conf".to_owned()], &src, &natrix_core::auth::verify_operators);
    }

    #[test]
    fn flags_never_panic(args in proptest::collection::vec("-{0,3}[a-zA-Z_]{0,12}(=[a-z0-9-]{0,5})?", 0..6)) {
        let _ = parse_args(&args);
        let _ = load(&args, &MemorySource::new(), &natrix_core::auth::verify_operators);
    }

    #[test]
    fn nesting_depth_is_bounded(depth in 0usize..5000, open in prop_oneof!["\\[", "\\{ a "]) {
        let close = if open == "[" { "]" } else { "}" };
        let text = format!("k: {}{}\n", open.repeat(depth), close.repeat(depth));
        let result = parse_str(&text, "t.conf", &MemorySource::new());
        if depth > 64 {
            prop_assert!(result.is_err());
        }
    }
}
