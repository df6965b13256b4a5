//! The WBEM front door of xencim: the CIM object model ([`cim`]), the CIM-XML codec ([`cimxml`]),
//! and (in progress) the MOF compiler.

pub mod cim;
pub mod cimxml;
pub mod mof;
