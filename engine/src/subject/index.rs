//! The subscription index: a token trie with `*`/`>` child slots, queue groups, and
//! a bounded match cache.
//!
//! Layout: trie nodes live in an arena (`Vec<Node>` plus a free list) and refer to
//! each other by `u32` id, which keeps insert, remove (with pruning) and the match
//! walk iterative: no recursion, so no stack-depth limit on subject length.
//!
//! Determinism: every hash map/table uses `foldhash::fast::FixedState` seeded with
//! the index's `hash_seed`; no output order depends on hash iteration order (match
//! results are sorted, cache eviction follows a slot-array clock hand).

use std::hash::{BuildHasher, Hash};

use foldhash::fast::FixedState;
use hashbrown::{HashMap, HashTable};

use super::validate::{has_empty_token, has_wildcard_token, FWC, PWC, SEP};
use super::Matches;

/// Default bound on the number of subjects held by the match cache.
pub const DEFAULT_CACHE_LIMIT: usize = 4096;

/// "No node" sentinel for the `pwc`/`fwc` slots.
const NIL: u32 = u32::MAX;
/// The root node's id; the root is never freed.
const ROOT: u32 = 0;

struct Node<V> {
    /// Literal-token children.
    literal: HashMap<Box<[u8]>, u32, FixedState>,
    /// `*` child.
    pwc: u32,
    /// `>` child.
    fwc: u32,
    /// Non-queue subscriptions ending here, sorted.
    plain: Vec<V>,
    /// Queue subscriptions ending here: sorted by name, members sorted.
    queues: Vec<(Box<[u8]>, Vec<V>)>,
}

impl<V> Node<V> {
    fn new(hasher: FixedState) -> Self {
        Node {
            literal: HashMap::with_hasher(hasher),
            pwc: NIL,
            fwc: NIL,
            plain: Vec::new(),
            queues: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.literal.is_empty()
            && self.pwc == NIL
            && self.fwc == NIL
            && self.plain.is_empty()
            && self.queues.is_empty()
    }

    fn has_subs(&self) -> bool {
        !self.plain.is_empty() || !self.queues.is_empty()
    }
}

/// Which edge leads from a parent to a child.
#[derive(Clone, Copy)]
enum Edge<'a> {
    Literal(&'a [u8]),
    Pwc,
    Fwc,
}

impl<'a> Edge<'a> {
    fn of(tok: &'a [u8]) -> Self {
        if tok == PWC {
            Edge::Pwc
        } else if tok == FWC {
            Edge::Fwc
        } else {
            Edge::Literal(tok)
        }
    }
}

/// Insert `v` into a sorted vector, keeping it sorted.
fn sorted_insert<V: Ord + Copy>(list: &mut Vec<V>, v: V) {
    let pos = list.binary_search(&v).unwrap_or_else(|p| p);
    list.insert(pos, v);
}

/// Remove one `v` from a sorted vector; whether it was there.
fn sorted_remove<V: Ord>(list: &mut Vec<V>, v: &V) -> bool {
    match list.binary_search(v) {
        Ok(pos) => {
            list.remove(pos);
            true
        }
        Err(_) => false,
    }
}

fn find_group<V>(queues: &[(Box<[u8]>, Vec<V>)], name: &[u8]) -> Result<usize, usize> {
    queues.binary_search_by(|(n, _)| (**n).cmp(name))
}

/// Add one entry to a (node's or cached) subscription set, keeping the sort rules.
fn add_entry<V: Ord + Copy>(
    plain: &mut Vec<V>,
    queues: &mut Vec<(Box<[u8]>, Vec<V>)>,
    queue: Option<&[u8]>,
    v: V,
) {
    match queue {
        None => sorted_insert(plain, v),
        Some(q) => match find_group(queues, q) {
            Ok(i) => sorted_insert(&mut queues[i].1, v),
            Err(i) => queues.insert(i, (q.into(), vec![v])),
        },
    }
}

/// Remove one entry from a subscription set; drops a queue group left empty.
fn remove_entry<V: Ord>(
    plain: &mut Vec<V>,
    queues: &mut Vec<(Box<[u8]>, Vec<V>)>,
    queue: Option<&[u8]>,
    v: &V,
) -> bool {
    match queue {
        None => sorted_remove(plain, v),
        Some(q) => match find_group(queues, q) {
            Ok(i) => {
                let removed = sorted_remove(&mut queues[i].1, v);
                if queues[i].1.is_empty() {
                    queues.remove(i);
                }
                removed
            }
            Err(_) => false,
        },
    }
}

/// The token trie (arena of nodes).
struct Trie<V> {
    nodes: Vec<Node<V>>,
    free: Vec<u32>,
    hasher: FixedState,
}

impl<V: Copy + Ord> Trie<V> {
    fn new(hasher: FixedState) -> Self {
        Trie {
            nodes: vec![Node::new(hasher)],
            free: Vec::new(),
            hasher,
        }
    }

    fn alloc(&mut self) -> u32 {
        match self.free.pop() {
            Some(id) => id,
            None => {
                self.nodes.push(Node::new(self.hasher));
                (self.nodes.len() - 1) as u32
            }
        }
    }

    fn release(&mut self, id: u32) {
        // Replace rather than clear, so the node's maps give their memory back.
        self.nodes[id as usize] = Node::new(self.hasher);
        self.free.push(id);
    }

    fn child(&self, parent: u32, edge: Edge<'_>) -> u32 {
        let node = &self.nodes[parent as usize];
        match edge {
            Edge::Pwc => node.pwc,
            Edge::Fwc => node.fwc,
            Edge::Literal(tok) => node.literal.get(tok).copied().unwrap_or(NIL),
        }
    }

    fn child_or_create(&mut self, parent: u32, edge: Edge<'_>) -> u32 {
        let existing = self.child(parent, edge);
        if existing != NIL {
            return existing;
        }
        let id = self.alloc();
        let node = &mut self.nodes[parent as usize];
        match edge {
            Edge::Pwc => node.pwc = id,
            Edge::Fwc => node.fwc = id,
            Edge::Literal(tok) => {
                node.literal.insert(tok.into(), id);
            }
        }
        id
    }

    fn unlink(&mut self, parent: u32, edge: Edge<'_>) {
        let node = &mut self.nodes[parent as usize];
        match edge {
            Edge::Pwc => node.pwc = NIL,
            Edge::Fwc => node.fwc = NIL,
            Edge::Literal(tok) => {
                node.literal.remove(tok);
            }
        }
    }

    fn insert(&mut self, subject: &[u8], queue: Option<&[u8]>, v: V) {
        let mut cur = ROOT;
        for tok in subject.split(|&b| b == SEP) {
            cur = self.child_or_create(cur, Edge::of(tok));
        }
        let node = &mut self.nodes[cur as usize];
        add_entry(&mut node.plain, &mut node.queues, queue, v);
    }

    fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>, v: &V) -> bool {
        let mut path: Vec<(u32, Edge<'_>)> = Vec::new();
        let mut cur = ROOT;
        for tok in subject.split(|&b| b == SEP) {
            let edge = Edge::of(tok);
            let next = self.child(cur, edge);
            if next == NIL {
                return false;
            }
            path.push((cur, edge));
            cur = next;
        }
        let node = &mut self.nodes[cur as usize];
        if !remove_entry(&mut node.plain, &mut node.queues, queue, v) {
            return false;
        }
        // Prune nodes left empty, bottom-up.
        let mut child = cur;
        while let Some((parent, edge)) = path.pop() {
            if !self.nodes[child as usize].is_empty() {
                break;
            }
            self.unlink(parent, edge);
            self.release(child);
            child = parent;
        }
        true
    }

    /// Collect every subscription matching the published subject into `out` (which
    /// must be empty), applying the sort rules. `stack` is scratch space.
    fn collect(&self, subject: &[u8], stack: &mut Vec<(u32, usize)>, out: &mut Matches<V>) {
        if has_empty_token(subject) {
            return;
        }
        let len = subject.len();
        // (node, start of the next token); `len + 1` means every token is consumed.
        stack.clear();
        stack.push((ROOT, 0));
        let mut sources = 0usize;
        while let Some((id, pos)) = stack.pop() {
            let node = &self.nodes[id as usize];
            if pos > len {
                sources += add_node(node, out);
                continue;
            }
            let end = memchr::memchr(SEP, &subject[pos..]).map_or(len, |e| pos + e);
            if node.fwc != NIL {
                sources += add_node(&self.nodes[node.fwc as usize], out);
            }
            if node.pwc != NIL {
                stack.push((node.pwc, end + 1));
            }
            if !node.literal.is_empty() {
                if let Some(&c) = node.literal.get(&subject[pos..end]) {
                    stack.push((c, end + 1));
                }
            }
        }
        if sources > 1 {
            out.plain.sort_unstable();
            for (_, members) in &mut out.queues {
                members.sort_unstable();
            }
        }
    }

    fn live_nodes(&self) -> usize {
        self.nodes.len() - self.free.len()
    }
}

/// Append a node's subscriptions to `out`; returns 1 if it had any, else 0.
fn add_node<V: Copy>(node: &Node<V>, out: &mut Matches<V>) -> usize {
    if !node.has_subs() {
        return 0;
    }
    out.plain.extend_from_slice(&node.plain);
    for (name, members) in &node.queues {
        match find_group(&out.queues, name) {
            Ok(i) => out.queues[i].1.extend_from_slice(members),
            Err(i) => out.queues.insert(i, (name.clone(), members.clone())),
        }
    }
    1
}

/// Whether pattern tokens `ptoks` match `key`, given the token counts are already
/// compatible (equal, or `key` has at least as many when `ptoks` ends in `>`) and
/// `>` occurs only last in `ptoks`.
fn tokens_match(ptoks: &[&[u8]], key: &[u8]) -> bool {
    for (&p, t) in ptoks.iter().zip(key.split(|&b| b == SEP)) {
        if p == FWC {
            return true;
        }
        if p != PWC && p != t {
            return false;
        }
    }
    true
}

struct Slot<V> {
    key: Box<[u8]>,
    hash: u64,
    /// Number of tokens in `key`, for a quick reject when scanning.
    ntok: usize,
    /// Clock "second chance" bit: set on a hit, cleared as the hand passes.
    referenced: bool,
    matches: Matches<V>,
}

/// Bounded match cache: a hash table of slot ids over a slot array, evicting with
/// a clock hand (deterministic, O(1) amortised, no randomness).
struct Cache<V> {
    table: HashTable<u32>,
    slots: Vec<Slot<V>>,
    hand: usize,
    limit: usize,
}

impl<V: Copy + Ord> Cache<V> {
    fn lookup(&self, hash: u64, subject: &[u8]) -> Option<usize> {
        let slots = &self.slots;
        self.table
            .find(hash, |&i| &*slots[i as usize].key == subject)
            .map(|&i| i as usize)
    }

    /// A slot for a new key (evicting if full), with empty matches, in the table.
    fn claim(&mut self, subject: &[u8], hash: u64) -> usize {
        let ntok = memchr::memchr_iter(SEP, subject).count() + 1;
        let i = if self.slots.len() < self.limit {
            self.slots.push(Slot {
                key: subject.into(),
                hash,
                ntok,
                referenced: false,
                matches: Matches::new(),
            });
            self.slots.len() - 1
        } else {
            // Terminates within two sweeps: the first clears every bit it passes.
            let victim = loop {
                let i = self.hand;
                self.hand = if self.hand + 1 >= self.slots.len() {
                    0
                } else {
                    self.hand + 1
                };
                if self.slots[i].referenced {
                    self.slots[i].referenced = false;
                } else {
                    break i;
                }
            };
            let old_hash = self.slots[victim].hash;
            if let Ok(entry) = self.table.find_entry(old_hash, |&j| j as usize == victim) {
                entry.remove();
            }
            let slot = &mut self.slots[victim];
            slot.key = subject.into();
            slot.hash = hash;
            slot.ntok = ntok;
            slot.referenced = false;
            slot.matches.clear();
            victim
        };
        let slots = &self.slots;
        self.table
            .insert_unique(hash, i as u32, |&j| slots[j as usize].hash);
        i
    }

    /// Apply an insert (`add`) or a removal of `(pattern, queue, v)` to cached results.
    fn update(
        &mut self,
        hasher: &FixedState,
        pattern: &[u8],
        queue: Option<&[u8]>,
        v: V,
        add: bool,
    ) {
        if self.slots.is_empty() {
            return;
        }
        let apply = |m: &mut Matches<V>| {
            if add {
                add_entry(&mut m.plain, &mut m.queues, queue, v);
            } else {
                remove_entry(&mut m.plain, &mut m.queues, queue, &v);
            }
        };
        if has_wildcard_token(pattern) {
            // As nats-server does: check every cached subject against the pattern.
            // Cached keys never have empty tokens, so compare tokens directly.
            let ptoks: Vec<&[u8]> = pattern.split(|&b| b == SEP).collect();
            let n = ptoks.len();
            let fwc = ptoks[n - 1] == FWC;
            if ptoks[..n - 1].contains(&FWC) {
                return; // `>` not last: the pattern matches nothing.
            }
            for slot in &mut self.slots {
                let count_ok = if fwc { slot.ntok >= n } else { slot.ntok == n };
                if count_ok && tokens_match(&ptoks, &slot.key) {
                    apply(&mut slot.matches);
                }
            }
        } else if let Some(i) = self.lookup(hasher.hash_one(pattern), pattern) {
            // A literal pattern matches only the subject spelled the same.
            apply(&mut self.slots[i].matches);
        }
    }

    fn clear(&mut self) {
        self.table.clear();
        self.slots.clear();
        self.hand = 0;
    }
}

/// The subscription index.
///
/// Each inserted `(subject, queue, v)` is one entry; the engine inserts a given `v`
/// at most once. [`matches`](Self::matches) returns, for a published subject, every
/// matching non-queue entry (`plain`, sorted by `V`) and every matching queue entry
/// grouped by queue name (`queues`, sorted by name, members sorted by `V`).
///
/// Results are cached per subject in a bounded cache ([`DEFAULT_CACHE_LIMIT`]
/// subjects unless built with [`with_cache_limit`](Self::with_cache_limit)). When
/// the cache is full, a new subject replaces one chosen by a clock hand (subjects hit
/// since the hand last passed get a second chance). Inserts and removes update the
/// cached results in place: a literal pattern touches only its own cache entry; a
/// wildcard pattern is checked against every cached subject.
pub struct SubjectIndex<V> {
    trie: Trie<V>,
    cache: Cache<V>,
    len: usize,
    /// Scratch stack for the trie walk.
    stack: Vec<(u32, usize)>,
    /// Result buffer used when the cache is disabled (limit 0).
    scratch: Matches<V>,
    /// Returned for subjects that can match nothing (empty tokens).
    empty: Matches<V>,
}

impl<V: Copy + Eq + Ord + Hash> SubjectIndex<V> {
    /// An empty index whose hash maps are seeded with `hash_seed`, with a match
    /// cache of [`DEFAULT_CACHE_LIMIT`] subjects.
    pub fn new(hash_seed: u64) -> Self {
        Self::with_cache_limit(hash_seed, DEFAULT_CACHE_LIMIT)
    }

    /// Like [`new`](Self::new) with a match cache of at most `cache_limit` subjects
    /// (0 disables caching).
    pub fn with_cache_limit(hash_seed: u64, cache_limit: usize) -> Self {
        let hasher = FixedState::with_seed(hash_seed);
        SubjectIndex {
            trie: Trie::new(hasher),
            cache: Cache {
                table: HashTable::new(),
                slots: Vec::new(),
                hand: 0,
                limit: cache_limit.min(u32::MAX as usize),
            },
            len: 0,
            stack: Vec::new(),
            scratch: Matches::new(),
            empty: Matches::new(),
        }
    }

    /// Add the entry `(subject, queue, v)`. `subject` should be valid (see
    /// [`is_valid_subject`](super::is_valid_subject)); an invalid one is stored
    /// without panicking but matches nothing it could not match literally.
    pub fn insert(&mut self, subject: &[u8], queue: Option<&[u8]>, v: V) {
        self.trie.insert(subject, queue, v);
        self.len += 1;
        self.cache
            .update(&self.trie.hasher, subject, queue, v, true);
    }

    /// Remove the entry `(subject, queue, v)`; whether it was present.
    pub fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>, v: V) -> bool {
        if !self.trie.remove(subject, queue, &v) {
            return false;
        }
        self.len -= 1;
        self.cache
            .update(&self.trie.hasher, subject, queue, v, false);
        true
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every entry whose pattern matches the published subject `subject` (any bytes;
    /// its tokens are literal text). A cache hit costs one hash lookup.
    pub fn matches(&mut self, subject: &[u8]) -> &Matches<V> {
        if self.cache.limit == 0 {
            self.scratch.clear();
            self.trie
                .collect(subject, &mut self.stack, &mut self.scratch);
            return &self.scratch;
        }
        let hash = self.trie.hasher.hash_one(subject);
        let slot = match self.cache.lookup(hash, subject) {
            Some(i) => {
                self.cache.slots[i].referenced = true;
                i
            }
            None => {
                if has_empty_token(subject) {
                    return &self.empty;
                }
                let i = self.cache.claim(subject, hash);
                self.trie
                    .collect(subject, &mut self.stack, &mut self.cache.slots[i].matches);
                i
            }
        };
        &self.cache.slots[slot].matches
    }

    /// Compute the matches for `subject` into `out` (cleared first) without using or
    /// touching the cache.
    pub fn matches_uncached(&self, subject: &[u8], out: &mut Matches<V>) {
        out.clear();
        let mut stack = Vec::new();
        self.trie.collect(subject, &mut stack, out);
    }

    /// Number of subjects currently cached.
    pub fn cache_len(&self) -> usize {
        self.cache.slots.len()
    }

    /// The cache bound given at construction.
    pub fn cache_limit(&self) -> usize {
        self.cache.limit
    }

    /// Drop every cached result.
    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// Number of live trie nodes, root included (for tests and metrics).
    pub fn node_count(&self) -> usize {
        self.trie.live_nodes()
    }
}

impl<V: Copy + Eq + Ord + Hash> Default for SubjectIndex<V> {
    fn default() -> Self {
        Self::new(0)
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for SubjectIndex<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubjectIndex")
            .field("len", &self.len)
            .field("nodes", &(self.trie.nodes.len() - self.trie.free.len()))
            .field("cached", &self.cache.slots.len())
            .field("cache_limit", &self.cache.limit)
            .finish()
    }
}
