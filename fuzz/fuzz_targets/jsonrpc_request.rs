//! The JSON-RPC (1.0 and 2.0) request parser of the Xen-API door.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = xenapi::rpc::jsonrpc::parse_request(data);
});
