use super::*;
use proptest::prelude::*;

fn m(plain: &[u32], queues: &[(&str, &[u32])]) -> Matches<u32> {
    Matches {
        plain: plain.to_vec(),
        queues: queues
            .iter()
            .map(|(q, vs)| (q.as_bytes().into(), vs.to_vec()))
            .collect(),
    }
}

#[test]
fn validity_table() {
    // (subject, valid subscription subject, valid literal subject)
    let table: &[(&[u8], bool, bool)] = &[
        (b"foo", true, true),
        (b"foo.bar", true, true),
        (b"foo.bar.baz", true, true),
        (b"FOO.Bar", true, true),
        (b"foo*", true, true),
        (b"foo>", true, true),
        (b"f*o.>x", true, true),
        (b"foo.*", true, false),
        (b"*", true, false),
        (b">", true, false),
        (b"*.*", true, false),
        (b"foo.*.bar", true, false),
        (b"foo.*.>", true, false),
        (b"foo.>", true, false),
        (b"*.>", true, false),
        ("ünïcödé.日本".as_bytes(), true, true),
        (b"a\x00b.\xff", true, true),
        (b"-_:$!@#%^&()", true, true),
        (b"", false, false),
        (b".", false, false),
        (b"..", false, false),
        (b"foo.>.bar", false, false),
        (b">.foo", false, false),
        (b">.>", false, false),
        (b"foo..bar", false, false),
        (b".foo", false, false),
        (b"foo.", false, false),
        (b"foo bar", false, false),
        (b"foo\tbar", false, false),
        (b"foo\rbar", false, false),
        (b"foo\nbar", false, false),
        (b" foo", false, false),
        (b"foo ", false, false),
        (b"foo.*.", false, false),
    ];
    for &(s, sub, lit) in table {
        assert_eq!(
            is_valid_subject(s),
            sub,
            "is_valid_subject({:?})",
            String::from_utf8_lossy(s)
        );
        assert_eq!(
            is_valid_literal_subject(s),
            lit,
            "is_valid_literal_subject({:?})",
            String::from_utf8_lossy(s)
        );
    }
}

#[test]
fn matching_table() {
    let table: &[(&str, &str, bool)] = &[
        ("foo", "foo", true),
        ("foo", "Foo", false),
        ("foo", "foo.bar", false),
        ("foo.bar", "foo", false),
        ("foo.bar", "foo.bar", true),
        ("*", "foo", true),
        ("*", "foo.bar", false),
        ("foo.*", "foo.bar", true),
        ("foo.*", "foo", false),
        ("foo.*", "foo.bar.baz", false),
        ("*.bar", "foo.bar", true),
        ("*.*", "foo.bar", true),
        ("foo.*.baz", "foo.bar.baz", true),
        ("foo.*.baz", "foo.bar.bax", false),
        (">", "foo", true),
        (">", "foo.bar.baz", true),
        ("foo.>", "foo", false),
        ("foo.>", "foo.bar", true),
        ("foo.>", "foo.bar.baz", true),
        ("foo.>", "bar.baz", false),
        ("foo.*.>", "foo.bar", false),
        ("foo.*.>", "foo.bar.baz", true),
        ("*.>", "foo", false),
        ("*.>", "foo.bar", true),
        ("foo*", "foo.bar", false),
        ("foo*", "foo*", true),
        ("foo*", "fooo", false),
        // Row W4: wildcards in a published subject are literal text.
        ("foo.bar", "foo.*", false),
        ("foo.*", "foo.*", true),
        ("foo.*", "foo.>", true),
        ("foo.>", "foo.>", true),
        ("foo.bar", "foo.>", false),
        // Subjects with empty tokens match nothing.
        (">", "", false),
        (">", ".", false),
        (">", "foo.", false),
        (">", ".foo", false),
        ("foo.*.bar", "foo..bar", false),
        // Invalid pattern: `>` not last matches nothing.
        ("foo.>.bar", "foo.x.bar", false),
        // Published subjects with odd bytes are literal.
        (">", "foo bar", true),
        ("foo bar", "foo bar", true),
    ];
    for &(p, s, want) in table {
        assert_eq!(
            subject_matches(p.as_bytes(), s.as_bytes()),
            want,
            "subject_matches({p:?}, {s:?})"
        );
        // The index agrees with the pure function.
        let mut idx = SubjectIndex::new(7);
        idx.insert(p.as_bytes(), None, 1u32);
        let got = !idx.matches(s.as_bytes()).plain.is_empty();
        assert_eq!(got, want, "index: pattern {p:?} subject {s:?}");
        let mut out = Matches::new();
        idx.matches_uncached(s.as_bytes(), &mut out);
        assert_eq!(
            !out.plain.is_empty(),
            want,
            "uncached: pattern {p:?} subject {s:?}"
        );
    }
}

#[test]
fn fan_out_sorted() {
    let mut idx = SubjectIndex::new(1);
    idx.insert(b"foo.bar", None, 5u32);
    idx.insert(b"foo.*", None, 3);
    idx.insert(b">", None, 9);
    idx.insert(b"foo.>", None, 1);
    idx.insert(b"foo.bar", None, 2);
    idx.insert(b"foo.baz", None, 4);
    idx.insert(b"*.bar.>", None, 6);
    assert_eq!(idx.len(), 7);
    assert_eq!(*idx.matches(b"foo.bar"), m(&[1, 2, 3, 5, 9], &[]));
    assert_eq!(*idx.matches(b"foo.bar"), m(&[1, 2, 3, 5, 9], &[]));
    assert_eq!(*idx.matches(b"foo.bar.x"), m(&[1, 6, 9], &[]));
    assert_eq!(*idx.matches(b"foo"), m(&[9], &[]));
    assert_eq!(*idx.matches(b"bar"), m(&[9], &[]));
    assert_eq!(*idx.matches(b"foo..bar"), m(&[], &[]));
    assert_eq!(*idx.matches(b""), m(&[], &[]));
    assert!(idx.matches(b".").is_empty());
}

#[test]
fn queue_grouping() {
    let mut idx = SubjectIndex::new(2);
    idx.insert(b"foo.*", Some(b"q1"), 10u32);
    idx.insert(b"foo.bar", Some(b"q1"), 4);
    idx.insert(b"foo.bar", Some(b"q2"), 7);
    idx.insert(b"foo.>", Some(b"q2"), 1);
    idx.insert(b"foo.baz", Some(b"q0"), 2);
    idx.insert(b"foo.bar", None, 8);
    idx.insert(b"foo.bar", Some(b"q1"), 6);
    assert_eq!(
        *idx.matches(b"foo.bar"),
        m(&[8], &[("q1", &[4, 6, 10]), ("q2", &[1, 7])])
    );
    assert_eq!(
        *idx.matches(b"foo.baz"),
        m(&[], &[("q0", &[2]), ("q1", &[10]), ("q2", &[1])])
    );
    assert_eq!(*idx.matches(b"foo.baz.x"), m(&[], &[("q2", &[1])]));
    // Removing the last member of a group drops the group from cached results.
    assert!(idx.remove(b"foo.>", Some(b"q2"), 1));
    assert_eq!(
        *idx.matches(b"foo.baz"),
        m(&[], &[("q0", &[2]), ("q1", &[10])])
    );
    assert!(idx.remove(b"foo.bar", Some(b"q2"), 7));
    assert_eq!(*idx.matches(b"foo.bar"), m(&[8], &[("q1", &[4, 6, 10])]));
    // Wrong queue name / wrong kind: nothing removed.
    assert!(!idx.remove(b"foo.bar", Some(b"q2"), 4));
    assert!(!idx.remove(b"foo.bar", None, 4));
    assert!(!idx.remove(b"foo.bar", Some(b"q1"), 8));
    assert_eq!(idx.len(), 5);
}

#[test]
fn cache_invalidation_on_insert_and_remove() {
    let mut idx = SubjectIndex::new(3);
    // Cached miss, then inserts (literal and wildcard) must be seen.
    assert!(idx.matches(b"a.b").is_empty());
    assert_eq!(idx.cache_len(), 1);
    idx.insert(b"a.b", None, 1u32);
    assert_eq!(*idx.matches(b"a.b"), m(&[1], &[]));
    idx.insert(b"a.*", None, 0);
    assert_eq!(*idx.matches(b"a.b"), m(&[0, 1], &[]));
    idx.insert(b">", Some(b"q"), 5);
    assert_eq!(*idx.matches(b"a.b"), m(&[0, 1], &[("q", &[5])]));
    // Non-matching inserts leave the cached result alone.
    idx.insert(b"a.c", None, 2);
    idx.insert(b"a.*.c", None, 3);
    idx.insert(b"a.b.>", None, 4);
    assert_eq!(*idx.matches(b"a.b"), m(&[0, 1], &[("q", &[5])]));
    // Removes must disappear.
    assert!(idx.remove(b"a.*", None, 0));
    assert_eq!(*idx.matches(b"a.b"), m(&[1], &[("q", &[5])]));
    assert!(idx.remove(b"a.b", None, 1));
    assert_eq!(*idx.matches(b"a.b"), m(&[], &[("q", &[5])]));
    assert!(idx.remove(b">", Some(b"q"), 5));
    assert!(idx.matches(b"a.b").is_empty());
    assert!(!idx.remove(b">", Some(b"q"), 5));
    // Literal-looking published subjects with wildcard text.
    idx.insert(b"x.*", None, 9);
    assert_eq!(*idx.matches(b"x.*"), m(&[9], &[]));
    idx.insert(b"x.y", None, 10);
    assert_eq!(*idx.matches(b"x.*"), m(&[9], &[]));
    assert_eq!(*idx.matches(b"x.y"), m(&[9, 10], &[]));
}

#[test]
fn cache_is_bounded() {
    let mut idx = SubjectIndex::with_cache_limit(4, 64);
    idx.insert(b"s.*", None, 1u32);
    idx.insert(b"s.7", None, 2);
    for i in 0..10_000u32 {
        let subj = format!("s.{i}");
        let want: &[u32] = if i == 7 { &[1, 2] } else { &[1] };
        assert_eq!(idx.matches(subj.as_bytes()).plain, want);
        assert!(idx.cache_len() <= 64);
        // Keep one hot subject: it should survive thanks to its reference bit.
        assert_eq!(idx.matches(b"s.7").plain, [1, 2]);
    }
    assert_eq!(idx.cache_len(), 64);
    // Default bound.
    let mut idx = SubjectIndex::<u32>::new(5);
    assert_eq!(idx.cache_limit(), DEFAULT_CACHE_LIMIT);
    for i in 0..(DEFAULT_CACHE_LIMIT * 3) {
        idx.matches(format!("a.{i}").as_bytes());
    }
    assert_eq!(idx.cache_len(), DEFAULT_CACHE_LIMIT);
    // After eviction churn, updates still reach cached entries.
    idx.insert(b"a.*", None, 3);
    let last = format!("a.{}", DEFAULT_CACHE_LIMIT * 3 - 1);
    assert_eq!(idx.matches(last.as_bytes()).plain, [3]);
    idx.clear_cache();
    assert_eq!(idx.cache_len(), 0);
    assert_eq!(idx.matches(last.as_bytes()).plain, [3]);
}

#[test]
fn no_cache_mode() {
    let mut idx = SubjectIndex::with_cache_limit(6, 0);
    idx.insert(b"a.>", None, 1u32);
    assert_eq!(idx.matches(b"a.b").plain, [1]);
    assert_eq!(idx.cache_len(), 0);
    assert!(idx.matches(b"b").is_empty());
}

#[test]
fn remove_prunes_nodes() {
    let mut idx = SubjectIndex::new(8);
    assert_eq!(idx.node_count(), 1);
    let subjects: &[&[u8]] = &[
        b"a.b.c.d",
        b"a.*.c",
        b"a.>",
        b">",
        b"*.*.*",
        b"a.b",
        b"x.y.z.*.>",
    ];
    for round in 0..3u32 {
        for (i, s) in subjects.iter().enumerate() {
            idx.insert(
                s,
                if i % 2 == 0 { None } else { Some(b"q") },
                round * 100 + i as u32,
            );
            idx.matches(s);
        }
        assert_eq!(idx.len(), subjects.len());
        let peak = idx.node_count();
        assert!(peak > 1);
        for (i, s) in subjects.iter().enumerate().rev() {
            assert!(idx.remove(
                s,
                if i % 2 == 0 { None } else { Some(b"q") },
                round * 100 + i as u32
            ));
        }
        assert!(idx.is_empty());
        assert_eq!(idx.node_count(), 1, "round {round}");
    }
    // Many distinct subjects churned: node count returns to 1.
    for i in 0..1000u32 {
        idx.insert(format!("churn.{i}.x").as_bytes(), None, i);
    }
    for i in 0..1000u32 {
        assert!(idx.remove(format!("churn.{i}.x").as_bytes(), None, i));
    }
    assert_eq!(idx.node_count(), 1);
    // Removing a non-existent entry on a shared prefix does not prune live nodes.
    idx.insert(b"p.q", None, 1);
    assert!(!idx.remove(b"p.q.r", None, 1));
    assert!(!idx.remove(b"p", None, 1));
    assert_eq!(idx.matches(b"p.q").plain, [1]);
}

#[test]
fn never_panics_on_odd_bytes() {
    let mut idx = SubjectIndex::new(9);
    let odd: &[&[u8]] = &[
        b"",
        b".",
        b"..",
        b"...",
        b"a..",
        b"..a",
        b">.>",
        b"*.>.*",
        b"\xff\xfe",
        b"a b",
        b"\r\n",
        b"a.>.b",
    ];
    for (i, s) in odd.iter().enumerate() {
        idx.insert(s, Some(s), i as u32);
        for t in odd {
            let _ = idx.matches(t);
            let _ = subject_matches(s, t);
            let _ = is_valid_subject(t);
            let _ = is_valid_literal_subject(t);
        }
    }
    for (i, s) in odd.iter().enumerate() {
        assert!(idx.remove(s, Some(s), i as u32), "{s:?}");
    }
    assert!(idx.is_empty());
    assert_eq!(idx.node_count(), 1);
    // A very long subject (many tokens) does not recurse deeply.
    let long = b"a.".repeat(200_000);
    let long = &long[..long.len() - 1];
    idx.insert(long, None, 1);
    idx.insert(b"a.>", None, 2);
    assert_eq!(idx.matches(long).plain, [1, 2]);
    assert!(idx.remove(long, None, 1));
    assert_eq!(idx.node_count(), 3);
}

#[test]
fn deterministic_across_seeds() {
    let build = |seed| {
        let mut idx = SubjectIndex::new(seed);
        for i in 0..50u32 {
            idx.insert(
                format!("t.{}", i % 7).as_bytes(),
                Some(format!("q{}", i % 3).as_bytes()),
                i,
            );
            idx.insert(b"t.*", None, 1000 + i);
        }
        idx.matches(b"t.3").clone()
    };
    assert_eq!(build(1), build(0xdead_beef));
}

// ---------------------------------------------------------------------------
// Property test against a naive reference model.

/// Independent reference matcher over token lists (recursive, obviously correct).
fn ref_match(pattern: &[&[u8]], subject: &[&[u8]]) -> bool {
    match (pattern.split_first(), subject.split_first()) {
        (None, None) => true,
        (Some((p, prest)), Some((s, srest))) => {
            if *p == b">" {
                prest.is_empty()
            } else {
                (*p == b"*" || p == s) && ref_match(prest, srest)
            }
        }
        _ => false,
    }
}

/// A reference-model entry: (pattern, queue, v).
type Entry = (Vec<u8>, Option<Vec<u8>>, u32);

fn ref_matches(entries: &[Entry], subject: &[u8]) -> Matches<u32> {
    let stoks: Vec<&[u8]> = subject.split(|&b| b == b'.').collect();
    let mut out = Matches::new();
    if stoks.iter().any(|t| t.is_empty()) {
        return out;
    }
    let mut groups: std::collections::BTreeMap<Vec<u8>, Vec<u32>> = Default::default();
    for (p, q, v) in entries {
        let ptoks: Vec<&[u8]> = p.split(|&b| b == b'.').collect();
        if ref_match(&ptoks, &stoks) {
            match q {
                None => out.plain.push(*v),
                Some(q) => groups.entry(q.clone()).or_default().push(*v),
            }
        }
    }
    out.plain.sort();
    out.queues = groups
        .into_iter()
        .map(|(q, mut vs)| {
            vs.sort();
            (q.into_boxed_slice(), vs)
        })
        .collect();
    out
}

#[derive(Debug, Clone)]
enum Op {
    Insert(Vec<u8>, Option<Vec<u8>>),
    /// Remove the entry at this index (mod len) of the reference list.
    Remove(usize),
    /// Try removing something that may not exist.
    RemoveBogus(Vec<u8>, Option<Vec<u8>>, u32),
    Match(Vec<u8>),
}

fn join(toks: Vec<&'static str>) -> Vec<u8> {
    toks.join(".").into_bytes()
}

fn pattern_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "*", ">"]), 1..=4).prop_map(
        |mut toks| {
            // Keep patterns valid: `>` only last.
            let n = toks.len();
            for t in toks.iter_mut().take(n - 1) {
                if *t == ">" {
                    *t = "*";
                }
            }
            join(toks)
        },
    )
}

fn subject_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..=5).prop_map(join),
        2 => prop::collection::vec(prop::sample::select(vec!["a", "b", "*", ">", ""]), 0..=4).prop_map(join),
    ]
}

fn queue_strategy() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(b"q1".to_vec())),
        1 => Just(Some(b"q2".to_vec())),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (pattern_strategy(), queue_strategy()).prop_map(|(p, q)| Op::Insert(p, q)),
        2 => any::<usize>().prop_map(Op::Remove),
        1 => (pattern_strategy(), queue_strategy(), 0u32..300).prop_map(|(p, q, v)| Op::RemoveBogus(p, q, v)),
        5 => subject_strategy().prop_map(Op::Match),
    ]
}

proptest! {
    #[test]
    fn index_matches_reference(ops in prop::collection::vec(op_strategy(), 1..80), seed in any::<u64>()) {
        // Default cache, tiny cache (eviction), and no cache at all.
        let mut indexes = [
            SubjectIndex::new(seed),
            SubjectIndex::with_cache_limit(seed, 3),
            SubjectIndex::with_cache_limit(seed, 0),
        ];
        let mut model: Vec<Entry> = Vec::new();
        let mut next_v = 0u32;
        let mut seen_subjects: Vec<Vec<u8>> = Vec::new();
        for op in ops {
            match op {
                Op::Insert(p, q) => {
                    let v = next_v;
                    next_v += 1;
                    for idx in &mut indexes {
                        idx.insert(&p, q.as_deref(), v);
                    }
                    model.push((p, q, v));
                }
                Op::Remove(i) => {
                    if !model.is_empty() {
                        let (p, q, v) = model.remove(i % model.len());
                        for idx in &mut indexes {
                            prop_assert!(idx.remove(&p, q.as_deref(), v));
                        }
                    }
                }
                Op::RemoveBogus(p, q, v) => {
                    let present = model.iter().position(|(mp, mq, mv)| *mp == p && *mq == q && *mv == v);
                    if let Some(i) = present {
                        model.remove(i);
                    }
                    for idx in &mut indexes {
                        prop_assert_eq!(idx.remove(&p, q.as_deref(), v), present.is_some());
                    }
                }
                Op::Match(s) => {
                    if !seen_subjects.contains(&s) {
                        seen_subjects.push(s);
                    }
                }
            }
            // After every step, every subject seen so far (cached or not) agrees.
            for s in &seen_subjects {
                let want = ref_matches(&model, s);
                for idx in &mut indexes {
                    prop_assert_eq!(idx.matches(s), &want, "subject {:?}", String::from_utf8_lossy(s));
                    prop_assert!(idx.cache_len() <= idx.cache_limit());
                }
                let mut out = Matches::new();
                indexes[0].matches_uncached(s, &mut out);
                prop_assert_eq!(&out, &want);
            }
            for idx in &indexes {
                prop_assert_eq!(idx.len(), model.len());
            }
        }
        // Removing everything prunes back to the root.
        for (p, q, v) in model.drain(..) {
            for idx in &mut indexes {
                prop_assert!(idx.remove(&p, q.as_deref(), v));
            }
        }
        for idx in &indexes {
            prop_assert_eq!(idx.node_count(), 1);
            prop_assert!(idx.is_empty());
        }
    }

    #[test]
    fn subject_matches_agrees_with_reference(p in pattern_strategy(), s in subject_strategy()) {
        let stoks: Vec<&[u8]> = s.split(|&b| b == b'.').collect();
        let ptoks: Vec<&[u8]> = p.split(|&b| b == b'.').collect();
        let want = !stoks.iter().any(|t| t.is_empty()) && ref_match(&ptoks, &stoks);
        prop_assert_eq!(subject_matches(&p, &s), want);
    }

    #[test]
    fn validation_never_panics(s in prop::collection::vec(any::<u8>(), 0..24)) {
        let valid = is_valid_subject(&s);
        let literal = is_valid_literal_subject(&s);
        prop_assert!(!literal || valid);
        let mut idx = SubjectIndex::new(0);
        idx.insert(&s, None, 1u32);
        let _ = idx.matches(&s);
        prop_assert!(idx.remove(&s, None, 1u32));
        prop_assert_eq!(idx.node_count(), 1);
    }
}
