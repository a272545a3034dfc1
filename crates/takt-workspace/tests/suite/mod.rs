//! Test modules, one per area, sharing the [`fixture`] helpers.

mod commit;
mod ensure;
mod fixture;
mod gc;
mod hooks;
mod merge;
mod mirror;
mod overlay;
