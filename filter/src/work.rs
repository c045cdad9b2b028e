//! Work meter: the scanners charge the bytes they read and the steps they take, so that a
//! test can prove a scanner linear by counting its work on inputs of doubling size
//! (`assert_linear`), where a clock would measure the machine as much as the code.
//!
//! Outside `cfg(test)` [`charge`] is empty and inlined away: release and Wasm builds
//! carry no counter.

#[cfg(test)]
use std::cell::Cell;

#[cfg(test)]
thread_local! {
    /// Units charged on this thread (tests run one per thread).
    static SPENT: Cell<u64> = const { Cell::new(0) };
}

/// Counts `units` of work: bytes read by a pass or a search, or steps of a loop.
#[inline(always)]
pub(crate) fn charge(units: usize) {
    #[cfg(test)]
    SPENT.with(|spent| spent.set(spent.get().saturating_add(units as u64)));
    #[cfg(not(test))]
    let _ = units;
}

/// The units charged while `f` ran.
#[cfg(test)]
pub(crate) fn measure(f: impl FnOnce()) -> u64 {
    let before = SPENT.with(Cell::get);
    f();
    SPENT.with(Cell::get) - before
}

/// Doublings an input goes through in [`assert_linear`]: 8, 16, 32 and 64 KiB.
#[cfg(test)]
const DOUBLINGS: u32 = 3;

/// Most growth of the work allowed per doubling of the input: twice, plus room for the
/// fixed costs that a larger input spreads thinner, and for bounded windows filling up.
/// A quadratic scan grows fourfold.
#[cfg(test)]
pub(crate) const MAX_GROWTH: f64 = 2.3;

/// Asserts that `run`'s work on `input(n)` at most about doubles when `n` doubles, from
/// 8 KiB over [`DOUBLINGS`] doublings, and that it did some work (a scanner that charges
/// nothing proves nothing). `input(n)` returns about `n` bytes.
#[cfg(test)]
pub(crate) fn assert_linear<T: ?Sized>(
    scanner: &str,
    shape: &str,
    input: impl Fn(usize) -> Box<T>,
    run: impl Fn(&T),
) {
    let mut sizes = Vec::new();
    let mut previous: Option<u64> = None;
    for d in 0..=DOUBLINGS {
        let n = (8 * 1024) << d;
        let text = input(n);
        let spent = measure(|| run(&text));
        sizes.push((n, spent));
        assert!(spent > 0, "{scanner} on {shape}: no work charged");
        if let Some(before) = previous {
            let growth = spent as f64 / before as f64;
            assert!(
                growth <= MAX_GROWTH,
                "{scanner} on {shape}: work grew {growth:.2}x when the input doubled \
                 (units per size: {sizes:?})"
            );
        }
        previous = Some(spent);
    }
}

/// An adversarial input: about `n` bytes of it for each `n`.
#[cfg(test)]
pub(crate) type Input = Box<dyn Fn(usize) -> Box<str>>;

/// `unit` repeated to about `n` bytes.
#[cfg(test)]
pub(crate) fn repeat(unit: &str, n: usize) -> Box<str> {
    unit.repeat(n.div_ceil(unit.len().max(1))).into_boxed_str()
}
