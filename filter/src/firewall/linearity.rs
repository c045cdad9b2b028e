//! Linearity of every firewall scanner, proved by counting work (`crate::work`): each
//! scanner runs on the inputs that push it to its most work per byte, at 16 to 128 KiB,
//! and its charged work may at most about double per doubling of the input.
//! `docs/linearity.md` lists the scanners, these shapes and their measured cost.

use super::detect;
use crate::work::{assert_linear, repeat};

/// `first` repeated over half of `n` bytes, then `second` over the other half: openers
/// with their closers all at the far end.
fn halves(first: &str, second: &str, n: usize) -> Box<str> {
    format!("{}{}", repeat(first, n / 2), repeat(second, n / 2)).into_boxed_str()
}

#[test]
fn image_link_scan_is_linear() {
    let shapes: &[(&str, fn(usize) -> Box<str>)] = &[
        ("`![a](http` repeated (a URL never closed)", |n| {
            repeat("![a](http", n)
        }),
        ("`![x` then `](x` (openers, closers far after)", |n| {
            halves("![x", "](x", n)
        }),
        ("`](x` then `![x` (closers, openers after)", |n| {
            halves("](x", "![x", n)
        }),
        ("`![a](http?` repeated (a query never closed)", |n| {
            repeat("![a](http?", n)
        }),
        ("`<img ` repeated (no src)", |n| repeat("<img ", n)),
        ("`<img src=http` repeated", |n| repeat("<img src=http", n)),
        ("`![a](` then spaces", |n| halves("![a](", " ", n)),
        ("markdown images with queries", |n| {
            repeat("![a](http://x.y/?q={c}) ", n)
        }),
    ];
    for &(shape, input) in shapes {
        assert_linear("scan_links", shape, input, |text: &str| {
            detect::scan_links(text);
        });
    }
}
