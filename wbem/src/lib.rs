//! The WBEM front door of xencim: the CIM object model ([`cim`]), the CIM-XML codec ([`cimxml`]),
//! the MOF compiler and class repository ([`mof`]), the provider interface ([`provider`]), the
//! query languages ([`query`]), the DSP0200 operation dispatcher ([`ops`]), the interop namespace
//! ([`interop`]), the test-fixture provider ([`testclass`]) and the HTTP door ([`server`]).

pub mod cim;
pub mod cimxml;
pub mod interop;
pub mod mof;
pub mod ops;
pub mod provider;
pub mod query;
pub mod server;
pub mod service;
pub mod testclass;
