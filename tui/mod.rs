//! greet-top: the live dashboard, and the embedded demo that needs no cluster.

pub mod demo;
