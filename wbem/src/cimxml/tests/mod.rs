//! Tests of the CIM-XML codec: real client captures, malformed input, round trips, writer rules.

mod malformed;
mod roundtrip;
mod samples;
mod wire;
mod writer;
