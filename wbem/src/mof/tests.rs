//! Tests of the whole compiler: the schema tree under mof/, broken inputs, repository queries.
