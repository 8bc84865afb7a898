//! Small pieces every component shares.

pub mod http;
pub mod logging;
pub mod mode;
pub mod sanitize;
pub mod time;

pub use mode::Mode;
