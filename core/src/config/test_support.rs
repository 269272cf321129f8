//! What the config module's unit tests share.

use super::apply_config;
use super::options::ServerOptions;
use super::parser::parse_str;
use super::source::MemorySource;

/// The options a config text gives, or the error it gives, as text.
pub(super) fn load(text: &str) -> Result<ServerOptions, String> {
    let tree = parse_str(text, "test.conf", &MemorySource::new()).map_err(|e| e.to_string())?;
    let mut opts = ServerOptions::default();
    apply_config(&tree, &mut opts, false).map_err(|e| e.to_string())?;
    Ok(opts)
}
