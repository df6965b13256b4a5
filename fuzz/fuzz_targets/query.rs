//! The WQL and CQL parser. The first byte picks the language.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wbem::query::{Query, QueryLanguage};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let lang = if pick & 1 == 0 { QueryLanguage::Wql } else { QueryLanguage::Cql };
    if let Ok(q) = Query::parse(lang, text) {
        let _ = q.selected_properties();
    }
});
