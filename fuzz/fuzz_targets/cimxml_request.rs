//! The CIM-XML request decoder, as the WBEM door runs it on a POSTed body.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wbem::cimxml::parse_request(data);
});
