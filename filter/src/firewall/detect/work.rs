//! A count of the steps the detector's newer scanners take, kept in tests only, so a
//! test can check that the work grows linearly with the input without timing anything.

#[cfg(test)]
thread_local! {
    static STEPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts `n` steps (a character read, a token visited). Nothing outside tests.
#[inline]
pub(super) fn tick(n: usize) {
    #[cfg(test)]
    STEPS.with(|s| s.set(s.get() + n));
    #[cfg(not(test))]
    let _ = n;
}

/// Steps counted on this thread since the last call.
#[cfg(test)]
pub(super) fn take() -> usize {
    STEPS.with(|s| s.replace(0))
}
