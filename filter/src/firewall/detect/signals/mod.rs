//! Signals that are not a plain token-sequence rule: each its own technique, its own
//! file, linear in its input.

mod embedded_directive;
mod instructions_in_data;
mod links;
mod literals;
mod quoting;
mod repeats;
mod setup;
mod suffix;

pub(super) use embedded_directive::score_embedded_directive;
pub(super) use instructions_in_data::{scan_instructions_in_data, DataClasses};
pub(in super::super) use links::scan_links;
pub(super) use literals::scan_literals;
pub(super) use quoting::is_quoted;
pub(super) use repeats::scan_repeats;
pub(super) use setup::score_setup;
pub(in super::super) use suffix::scan_adversarial_suffix;
