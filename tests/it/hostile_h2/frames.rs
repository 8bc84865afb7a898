//! The raw-frame client lives in the support library, shared with the
//! benches' attacks (benches/suite/attacks.rs).

pub(super) use greet_tests::raw_h2::*;
