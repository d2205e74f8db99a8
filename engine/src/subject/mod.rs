//! Subjects: validation (rows W1–W3) and the subscription index (a trie with `*`
//! and `>`, queue groups, and a match cache). Knows nothing about connections.
//!
//! * [`is_valid_subject`], [`is_valid_literal_subject`], [`subject_matches`]:
//!   pure functions over subject bytes (module `validate`).
//! * [`SubjectIndex`]: the subscription trie plus a bounded, deterministic match
//!   cache (module `index`).
//!
//! Publish subjects handed to [`SubjectIndex::matches`] / [`subject_matches`] may be
//! arbitrary bytes. Their tokens are compared as literal text (a `*` or `>` token in
//! a *published* subject is not a wildcard, row W4). A published subject with an
//! empty token (empty subject, leading or trailing `.`, or `..`) matches nothing.

mod index;
mod validate;

#[cfg(test)]
mod tests;

pub use index::{SubjectIndex, DEFAULT_CACHE_LIMIT};
pub use validate::{is_valid_literal_subject, is_valid_subject, subject_matches};

/// The subscriptions that match one subject.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matches<V> {
    /// Non-queue subscriptions, sorted by `V`.
    pub plain: Vec<V>,
    /// One entry per queue group with a match, sorted by queue name; members sorted by `V`.
    pub queues: Vec<(Box<[u8]>, Vec<V>)>,
}

impl<V> Matches<V> {
    /// An empty result (no allocation).
    pub const fn new() -> Self {
        Matches {
            plain: Vec::new(),
            queues: Vec::new(),
        }
    }

    /// Whether nothing matched.
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.queues.is_empty()
    }

    fn clear(&mut self) {
        self.plain.clear();
        self.queues.clear();
    }
}
