//! The same token many times in a row.

use super::super::super::weights::REPEATED_TOKEN;
use super::super::super::Category;
use super::super::tokenize::Token;
use super::super::Hit;
use crate::work;

/// The same token many times in a row: a flooding technique that pushes instructions out
/// of the model's attention or makes it diverge.
pub(in super::super) fn scan_repeats(tokens: &[Token<'_>], hits: &mut Vec<Hit>) {
    work::charge(tokens.iter().map(|t| t.text.len() + 1).sum());
    const RUN: usize = 16;
    let mut run = 1;
    for pair in tokens.windows(2) {
        let (Some(a), Some(b)) = (pair.first(), pair.get(1)) else {
            continue;
        };
        if a.text == b.text {
            run += 1;
            if run == RUN {
                hits.push(Hit {
                    name: "repeated-token",
                    category: Category::EncodedPayload,
                    weight: REPEATED_TOKEN,
                    start: a.start,
                    end: b.end,
                });
                return;
            }
        } else {
            run = 1;
        }
    }
}
