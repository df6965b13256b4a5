//! The MOF compiler: the parser alone, then the whole compiler against the product's qualifier
//! declarations (without them nearly every class fails its first qualifier and the compiler's
//! later stages would go unexercised).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use wbem::mof::Repository;

fn base() -> &'static Repository {
    static BASE: OnceLock<Repository> = OnceLock::new();
    BASE.get_or_init(|| {
        let qualifiers = concat!(env!("CARGO_MANIFEST_DIR"), "/../mof/qualifiers.mof");
        Repository::load_file(qualifiers).expect("mof/qualifiers.mof compiles")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = wbem::mof::parse(text);
    let mut repo = base().clone();
    // Includes resolve against a directory that does not exist, so an input cannot pull in
    // files of the machine running the fuzzer (absolute paths aside, which read only).
    let _ = repo.add_mof("/nonexistent-xencim-fuzz/input.mof", text);
});
