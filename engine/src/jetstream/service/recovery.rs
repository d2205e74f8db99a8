//! Recovery of file-backed streams at start: list the streams, read each one's
//! meta.json and index, read the log after the index (or all of it), replay.

use super::api::detached;
use super::*;
use crate::jetstream::consumer_store::{Snapshot, StateFile};

impl JetStream {
    // ----- recovery -----

    pub(super) fn recover_step(
        &mut self,
        step: Recovering,
        result: StorageResult,
        fx: &mut Effects,
    ) {
        match (step, result) {
            (Recovering::ListStreams, StorageResult::Names(names)) => {
                for name in names {
                    if !is_valid_name(&name) {
                        continue;
                    }
                    let dir = persist::stream_dir(&name);
                    let id = self.ids.alloc();
                    self.recovering.insert(id, Recovering::Meta(name.clone()));
                    fx.storage.push((
                        id,
                        StorageOp::Read {
                            file: format!("{dir}/meta.json"),
                            offset: 0,
                            len: 1 << 24,
                        },
                    ));
                    let id = self.ids.alloc();
                    self.recovering.insert(id, Recovering::Index(name.clone()));
                    fx.storage.push((
                        id,
                        StorageOp::Read {
                            file: format!("{dir}/index"),
                            offset: 0,
                            len: SEGMENT_READ_MAX,
                        },
                    ));
                    let id = self.ids.alloc();
                    self.recovering
                        .insert(id, Recovering::ListConsumers(name.clone()));
                    fx.storage.push((
                        id,
                        StorageOp::List {
                            dir: format!("{dir}/obs"),
                        },
                    ));
                    let id = self.ids.alloc();
                    self.recovering
                        .insert(id, Recovering::ListLog(name.clone()));
                    fx.storage.push((
                        id,
                        StorageOp::List {
                            dir: format!("{dir}/log"),
                        },
                    ));
                    self.found.insert(name, Found::default());
                }
            }
            (Recovering::Meta(name), StorageResult::Data(data)) => {
                match serde_json::from_slice::<Meta>(&data) {
                    Ok(meta) => {
                        if let Some(f) = self.found.get_mut(&name) {
                            f.meta = Some(meta);
                        }
                    }
                    Err(e) => {
                        if let Some(f) = self.found.get_mut(&name) {
                            f.broken = Some(format!("unreadable meta.json: {e}"));
                        }
                    }
                }
            }
            (Recovering::Index(name), result) => {
                let ix = match result {
                    StorageResult::Data(data) => {
                        let ix = index::decode(&data);
                        if ix.is_none() && !data.is_empty() {
                            tracing::warn!("JetStream stream '{name}': index unreadable, scanning the whole log");
                        }
                        ix
                    }
                    // No index (yet): the whole log is scanned.
                    _ => None,
                };
                if let Some(f) = self.found.get_mut(&name) {
                    f.index = Some(ix);
                }
                self.plan_reads(&name, fx);
            }
            (Recovering::ListLog(name), StorageResult::Names(names)) => {
                let mut segs: Vec<u64> = names
                    .iter()
                    .filter_map(|n| n.strip_suffix(".seg")?.parse().ok())
                    .collect();
                segs.sort_unstable();
                if let Some(f) = self.found.get_mut(&name) {
                    f.segments = Some(segs);
                }
                self.plan_reads(&name, fx);
            }
            (Recovering::Segment { stream, seg }, StorageResult::Data(data)) => {
                if let Some(f) = self.found.get_mut(&stream) {
                    let from = f
                        .index
                        .as_ref()
                        .and_then(Option::as_ref)
                        .filter(|ix| ix.seg == seg)
                        .map_or(0, |ix| ix.offset);
                    f.data.insert(seg, (from, data));
                }
            }
            (Recovering::ListConsumers(stream), StorageResult::Names(names)) => {
                for name in names.into_iter().filter(|n| is_valid_name(n)) {
                    let dir = crate::jetstream::consumer_store::consumer_dir(&stream, &name);
                    for (file, step) in [
                        (
                            "meta.json",
                            Recovering::ConsumerMeta {
                                stream: stream.clone(),
                                name: name.clone(),
                            },
                        ),
                        (
                            "state",
                            Recovering::ConsumerState {
                                stream: stream.clone(),
                                name: name.clone(),
                            },
                        ),
                    ] {
                        let id = self.ids.alloc();
                        self.recovering.insert(id, step);
                        fx.storage.push((
                            id,
                            StorageOp::Read {
                                file: format!("{dir}/{file}"),
                                offset: 0,
                                len: SEGMENT_READ_MAX,
                            },
                        ));
                    }
                }
            }
            (Recovering::ConsumerMeta { stream, name }, StorageResult::Data(data)) => {
                match serde_json::from_slice::<deliver::ConsumerMeta>(&data) {
                    Ok(meta) => {
                        if let Some(f) = self.found.get_mut(&stream) {
                            f.consumers.entry(name).or_default().0 = Some(meta);
                        }
                    }
                    // A consumer whose create never completed (no answer was sent).
                    Err(e) => tracing::warn!(
                        "JetStream consumer '{stream} > {name}': unreadable meta.json ({e}); not restored"
                    ),
                }
            }
            (Recovering::ConsumerState { stream, name }, StorageResult::Data(data)) => {
                if let Some(f) = self.found.get_mut(&stream) {
                    f.consumers.entry(name).or_default().1 = Some(data);
                }
            }
            // A consumer without a state file has acknowledged nothing yet.
            (Recovering::ConsumerState { .. }, StorageResult::Error(_)) => {}
            (step @ Recovering::ConsumerMeta { .. }, StorageResult::Error(e)) => {
                tracing::warn!("JetStream recovery: {step:?} failed: {e}; consumer not restored");
            }
            (step, StorageResult::Error(e)) => {
                tracing::warn!("JetStream recovery: {step:?} failed: {e}");
                let name = match &step {
                    Recovering::Meta(n) | Recovering::Index(n) | Recovering::ListLog(n) => Some(n),
                    Recovering::Segment { stream, .. } | Recovering::ListConsumers(stream) => {
                        Some(stream)
                    }
                    Recovering::ConsumerMeta { .. }
                    | Recovering::ConsumerState { .. }
                    | Recovering::ListStreams => None,
                };
                if let Some(f) = name.and_then(|n| self.found.get_mut(n)) {
                    f.broken = Some(format!("{step:?} failed: {e}"));
                }
            }
            (step, other) => {
                tracing::warn!("JetStream recovery: {step:?} gave unexpected {other:?}")
            }
        }
        if self.recovering.is_empty() && !self.ready {
            self.finish_recovery(fx);
        }
    }

    /// Once a stream's index was read and its log listed, read the log: with a
    /// usable index, only what follows its position; otherwise all of it.
    pub(super) fn plan_reads(&mut self, name: &str, fx: &mut Effects) {
        let Some(f) = self.found.get_mut(name) else {
            return;
        };
        let (Some(ix), Some(segs)) = (&mut f.index, &f.segments) else {
            return;
        };
        // An index is only usable when every segment it covers is still there
        // (a removal may have become durable before a newer index).
        if ix.as_ref().is_some_and(|i| {
            !segs.contains(&i.seg) || i.segments.keys().any(|n| *n <= i.seg && !segs.contains(n))
        }) {
            tracing::warn!(
                "JetStream stream '{name}': index does not match the log, scanning the whole log"
            );
            *ix = None;
        }
        let (from_seg, from_off) = ix.as_ref().map_or((0, 0), |i| (i.seg, i.offset));
        let dir = persist::stream_dir(name);
        for &seg in segs.iter().filter(|s| **s >= from_seg) {
            let id = self.ids.alloc();
            self.recovering.insert(
                id,
                Recovering::Segment {
                    stream: name.to_string(),
                    seg,
                },
            );
            let offset = if seg == from_seg { from_off } else { 0 };
            fx.storage.push((
                id,
                StorageOp::Read {
                    file: format!("{dir}/log/{}", persist::segment_name(seg)),
                    offset,
                    len: SEGMENT_READ_MAX,
                },
            ));
        }
    }

    pub(super) fn finish_recovery(&mut self, fx: &mut Effects) {
        let found = std::mem::take(&mut self.found);
        for (name, f) in found {
            if let Some(why) = f.broken {
                // Never append over files we could not read: keep the stream out
                // of service (and its name taken) until an operator looks.
                tracing::error!("JetStream stream '{name}' could not be recovered ({why}); its files are kept and it is not served");
                self.unrecoverable.insert(name, why);
                continue;
            }
            let Some(meta) = f.meta else { continue };
            let mut store = MsgStore::new(Accounting::File, 1);
            store.set_cache_budget(Some(self.cfg.cache_bytes));
            let all = f.segments.unwrap_or_default();
            let mut segments = BTreeMap::new();
            let mut from_seg = 0;
            if let Some(ix) = f.index.flatten() {
                store.restore(ix.next_seq, ix.last_ts, ix.purged);
                for m in ix.msgs {
                    store.insert_meta(m);
                }
                // Segments the index covers; any other one before its position
                // is a leftover whose removal was lost: it goes at the next flush.
                for &seg in all.iter().filter(|s| **s < ix.seg) {
                    segments.insert(seg, ix.segments.get(&seg).copied().unwrap_or(0));
                }
                segments.insert(ix.seg, ix.segments.get(&ix.seg).copied().unwrap_or(0));
                from_seg = ix.seg;
            }
            let mut last_len = 0;
            let last_seg = all.last().copied();
            for seg in all.iter().filter(|s| **s >= from_seg) {
                let Some((base, data)) = f.data.get(seg) else {
                    continue;
                };
                let decoded = log::decode(data);
                for off in &decoded.corrupt {
                    tracing::warn!("JetStream stream '{name}': corrupt record in segment {seg} at offset {}, skipped", base + off);
                }
                let mut max = segments.get(seg).copied().unwrap_or(0);
                for (r, (offset, len)) in decoded.records.into_iter().zip(decoded.spans) {
                    match r {
                        Record::Msg(m) => {
                            max = max.max(m.seq);
                            let loc = Loc {
                                seg: *seg,
                                offset: base + offset,
                                len,
                            };
                            store.insert(detached(m), Some(loc));
                        }
                        Record::Delete(runs) => {
                            for (first, len) in runs {
                                for s in first..first.saturating_add(len) {
                                    store.remove(s);
                                }
                            }
                        }
                        Record::Next(n) => store.skip_to(n),
                    }
                }
                segments.insert(*seg, max);
                if Some(*seg) == last_seg {
                    last_len = base + decoded.good_len;
                    if decoded.good_len < data.len() as u64 {
                        tracing::warn!(
                            "JetStream stream '{name}': torn tail of {} bytes in segment {seg} cut off",
                            data.len() as u64 - decoded.good_len
                        );
                        let file = format!(
                            "{}/log/{}",
                            persist::stream_dir(&name),
                            persist::segment_name(*seg)
                        );
                        fx.storage.push((
                            self.ids.alloc(),
                            StorageOp::Truncate {
                                file,
                                len: last_len,
                            },
                        ));
                    }
                }
            }
            // What was read back may be only in the page cache (the process
            // was killed, the machine was not): make it durable before anything
            // relies on it, e.g. a duplicate's PubAck naming a recovered message.
            // These syncs are outstanding like a flush's, so acks wait for them,
            // and consumers deliver the recovered messages once they completed.
            let mut last_sync = None;
            for seg in all
                .iter()
                .filter(|s| **s >= from_seg && f.data.contains_key(s))
            {
                let id = self.ids.alloc();
                self.outstanding.insert(id);
                last_sync = Some(id);
                fx.storage.push((
                    id,
                    StorageOp::Sync {
                        file: format!(
                            "{}/log/{}",
                            persist::stream_dir(&name),
                            persist::segment_name(*seg)
                        ),
                    },
                ));
            }
            let mut persist = if segments.is_empty() {
                Persist::new(&name, store.last_seq() + 1)
            } else {
                Persist::recovered(&name, segments, last_len)
            };
            persist.set_index_flushes(self.cfg.index_flushes);
            // The config is replaced atomically before the log records of the
            // evictions it caused are synced: a crash in between leaves more
            // messages than the limits allow. Evict them again (logged), before
            // the dedup window is rebuilt from what is left.
            let limits = Limits {
                max_msgs: meta.config.max_msgs,
                max_bytes: meta.config.max_bytes,
                ..Limits::NONE
            };
            let removed = store.enforce(&limits, 0, None);
            if !removed.seqs.is_empty() {
                tracing::warn!(
                    "JetStream stream '{name}': {} messages over the stream's limits removed",
                    removed.seqs.len()
                );
                persist.log_delete(&removed.seqs);
            }
            let id = self.next_id;
            self.next_id += 1;
            let mut stream = Stream::recovered(id, meta.config, meta.created, store, persist);
            match last_sync {
                Some(sync) => {
                    self.durable_marks
                        .insert(sync, (id, stream.store.last_seq()));
                }
                None => stream.durable_seq = stream.store.last_seq(),
            }
            subscribe_stream(&stream.config, id, &mut fx.subscribe);
            tracing::info!(
                "  Restored {} messages for stream '{name}'",
                stream.store.len()
            );
            self.streams.insert(name.clone(), stream);
            self.restore_consumers(&name, f.consumers, fx);
        }
        self.ready = true;
    }
}

impl JetStream {
    /// Rebuild a recovered stream's durable consumers from their files. A
    /// consumer's pending deliveries are due for redelivery at once.
    fn restore_consumers(
        &mut self,
        stream: &str,
        found: BTreeMap<String, (Option<deliver::ConsumerMeta>, Option<Bytes>)>,
        fx: &mut Effects,
    ) {
        for (name, (meta, state)) in found {
            let Some(meta) = meta else { continue };
            let Some(s) = self.streams.get_mut(stream) else {
                return;
            };
            if meta.config.consumer_name() != name {
                tracing::warn!("JetStream consumer '{stream} > {name}': meta.json names another consumer; not restored");
                continue;
            }
            let uid = self.next_uid;
            self.next_uid += 1;
            let mut c = Consumer::new(meta.config, meta.created, uid, &s.store);
            let mut len = 0;
            if let Some((snap, end)) = state.as_deref().and_then(Snapshot::decode_last) {
                snap.restore(&mut c.acks, 0, 0);
                c.restored();
                len = end;
            }
            let file = StateFile::new(stream, &name, len);
            if state.is_some() {
                // Cut a torn tail off, so appends follow the last whole snapshot.
                file.truncate(&mut self.ids, &mut fx.storage);
            }
            c.file = Some(file);
            c.changed = false;
            s.consumers.insert(name.clone(), c);
            self.consumer_added(stream, &name, fx);
        }
        let n = self.streams.get(stream).map_or(0, |s| s.consumers.len());
        if n > 0 {
            tracing::info!("  Restored {n} consumers for stream '{stream}'");
        }
    }
}
