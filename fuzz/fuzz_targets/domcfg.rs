//! The xm/xl domain config parser of the command-line client. It lives in the binary crate, so
//! its two source files are compiled into this target as they are.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
mod cli {
    #[path = "../../../src/cli/devspec.rs"]
    pub mod devspec;
    #[path = "../../../src/cli/domcfg.rs"]
    pub mod domcfg;
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = cli::domcfg::parse("fuzz.cfg", text);
    let _ = cli::domcfg::load("fuzz.cfg", text);
});
