//! Subjects: validation (rows W1–W3) and the subscription index (a trie with `*`
//! and `>`, queue groups, and a match cache). Knows nothing about connections.
//!
//! STUB: the real index lands on the `subject` branch. Interface is final.

use std::hash::Hash;

/// Whether `s` is a valid subscription subject (wildcards allowed).
pub fn is_valid_subject(s: &[u8]) -> bool {
    !s.is_empty()
}

/// Whether `s` is a valid literal subject (no wildcard tokens): pedantic PUB.
pub fn is_valid_literal_subject(s: &[u8]) -> bool {
    !s.is_empty()
}

/// Whether `s` is a literal subject that `pattern` (which may hold wildcards) matches.
pub fn subject_matches(pattern: &[u8], s: &[u8]) -> bool {
    pattern == s
}

/// The subscriptions that match one subject.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matches<V> {
    /// Non-queue subscriptions, sorted by `V`.
    pub plain: Vec<V>,
    /// One entry per queue group with a match, sorted by queue name; members sorted by `V`.
    pub queues: Vec<(Box<[u8]>, Vec<V>)>,
}

/// The subscription index.
pub struct SubjectIndex<V> {
    entries: Vec<(Box<[u8]>, Option<Box<[u8]>>, V)>,
    scratch: Matches<V>,
}

impl<V: Copy + Eq + Ord + Hash> SubjectIndex<V> {
    pub fn new(_hash_seed: u64) -> Self {
        SubjectIndex {
            entries: Vec::new(),
            scratch: Matches {
                plain: Vec::new(),
                queues: Vec::new(),
            },
        }
    }
    pub fn insert(&mut self, subject: &[u8], queue: Option<&[u8]>, v: V) {
        self.entries
            .push((subject.into(), queue.map(Into::into), v));
    }
    pub fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>, v: V) -> bool {
        let before = self.entries.len();
        self.entries
            .retain(|(s, q, x)| !(&**s == subject && q.as_deref() == queue && *x == v));
        before != self.entries.len()
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn matches(&mut self, subject: &[u8]) -> &Matches<V> {
        self.scratch.plain.clear();
        self.scratch.queues.clear();
        for (s, q, v) in &self.entries {
            if subject_matches(s, subject) {
                match q {
                    None => self.scratch.plain.push(*v),
                    Some(q) => self.scratch.queues.push((q.clone(), vec![*v])),
                }
            }
        }
        &self.scratch
    }
}
