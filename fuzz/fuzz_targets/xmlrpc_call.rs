//! The XML-RPC methodCall parser of the Xen-API door.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = xenapi::rpc::xmlrpc::parse_call(data);
});
