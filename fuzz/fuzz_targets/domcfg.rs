//! The xm/xl domain config parser of the command-line client. It lives in the binary crate, so
//! its two source files are compiled into this target as they are.
#![no_main]
use libfuzzer_sys::fuzz_target;

// At the crate root, so that domcfg's `super::devspec` finds its sibling as in the binary.
#[allow(dead_code)]
#[path = "../../src/cli/devspec.rs"]
mod devspec;
#[allow(dead_code)]
#[path = "../../src/cli/domcfg.rs"]
mod domcfg;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = domcfg::parse("fuzz.cfg", text);
    let _ = domcfg::load("fuzz.cfg", text);
});
