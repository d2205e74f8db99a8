//! The `$JS.API` request handlers (matrix section 4.2) and direct get; the
//! consumer endpoints are in [`super::consumers`].

use super::*;

impl JetStream {
    // ----- the API -----

    /// A request on one of the API subjects.
    pub fn api(
        &mut self,
        subject: &str,
        reply: Option<&Bytes>,
        body: &Bytes,
        now: i64,
        fx: &mut Effects,
    ) {
        let Some(reply) = reply.filter(|r| !r.is_empty()) else {
            return;
        };
        self.api.total += 1;
        let before = fx.publish.len();
        let rest = subject.strip_prefix("$JS.API.").unwrap_or("");
        let (op, name) = match rest.rsplit_once('.') {
            Some((op, name)) if op.starts_with("STREAM.") && op != "STREAM" => (op, name),
            _ => (rest, ""),
        };
        if !self.ready {
            let err = errors::insufficient_resources();
            self.api.errors += 1;
            fx.reply(
                reply,
                &serde_json::json!({"type": "io.nats.jetstream.api.v1.error", "error": err}),
            );
            return;
        }
        if let Some(consumer_op) = rest.strip_prefix("CONSUMER.") {
            self.consumer_api(consumer_op, reply, body, now, fx);
        }
        match op {
            "INFO" => self.account_info(reply, fx),
            "STREAM.CREATE" => self.stream_create(name, reply, body, now, fx),
            "STREAM.UPDATE" => self.stream_update(name, reply, body, fx),
            "STREAM.INFO" => self.stream_info(name, reply, body, fx),
            "STREAM.DELETE" => self.stream_delete(name, reply, fx),
            "STREAM.NAMES" => self.stream_names(reply, body, fx),
            "STREAM.LIST" => self.stream_list(reply, body, fx),
            "STREAM.PURGE" => self.stream_purge(name, reply, body, fx),
            "STREAM.MSG.GET" => self.msg_get(name, reply, body, fx),
            "STREAM.MSG.DELETE" => self.msg_delete(name, reply, body, fx),
            _ => {}
        }
        if fx.publish[before..]
            .iter()
            .any(|o| o.payload.starts_with(b"{\"type\"") && is_error(&o.payload))
        {
            self.api.errors += 1;
        }
    }

    pub(super) fn usage(&self) -> (u64, u64) {
        let mut mem = 0;
        let mut file = 0;
        for s in self.streams.values() {
            match s.config.storage {
                StorageType::Memory => mem += s.store.bytes(),
                StorageType::File => file += s.store.bytes(),
            }
        }
        (mem, file)
    }

    pub(super) fn account_info(&mut self, reply: &Bytes, fx: &mut Effects) {
        let (memory, storage) = self.usage();
        let stats = AccountStats {
            memory,
            storage,
            reserved_memory: 0,
            reserved_storage: 0,
            streams: self.streams.len(),
            consumers: self.streams.values().map(|s| s.consumers.len()).sum(),
            limits: AccountLimits {
                max_memory: -1,
                max_storage: -1,
                max_streams: -1,
                max_consumers: -1,
                max_ack_pending: -1,
                memory_max_stream_bytes: -1,
                storage_max_stream_bytes: -1,
                max_bytes_required: false,
            },
            domain: String::new(),
            api: self.api,
            tiers: BTreeMap::new(),
        };
        fx.reply(reply, &AccountInfoResponse::ok(stats));
    }

    pub(super) fn limits(&self) -> ServerLimits {
        ServerLimits::default()
    }

    pub(super) fn overlaps_other(&self, cfg: &StreamConfig) -> bool {
        self.streams
            .values()
            .filter(|s| s.config.name != cfg.name)
            .any(|s| {
                s.config
                    .subjects
                    .iter()
                    .any(|a| cfg.subjects.iter().any(|b| subjects_overlap(a, b)))
            })
    }

    pub(super) fn stream_create(
        &mut self,
        name: &str,
        reply: &Bytes,
        body: &Bytes,
        now: i64,
        fx: &mut Effects,
    ) {
        let fail = |fx: &mut Effects, e: ApiError| fx.reply(reply, &StreamCreateResponse::error(e));
        let cfg = match request_config(name, body)
            .and_then(|mut c| c.normalize_for_create(&self.limits()).map(|()| c))
        {
            Ok(c) => c,
            Err(e) => return fail(fx, e),
        };
        if let Some(why) = self.unrecoverable.get(&cfg.name) {
            let text = format!("stream exists on disk but could not be recovered: {why}");
            return fail(fx, errors::stream_create(text));
        }
        if let Some(existing) = self.streams.get(&cfg.name) {
            if existing.config == cfg {
                let mut resp = StreamCreateResponse::ok(existing.info());
                resp.did_create = false;
                return fx.reply(reply, &resp);
            }
            return fail(fx, errors::stream_name_exist());
        }
        if self.overlaps_other(&cfg) {
            return fail(fx, errors::stream_subject_overlap());
        }
        if self.streams.len() >= MAX_STREAMS {
            return fail(fx, errors::maximum_streams_limit());
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut stream = Stream::new(id, cfg.clone(), now);
        if !self.cfg.persist {
            stream.persist = None;
        }
        if let Some(p) = stream.persist.as_mut() {
            p.set_index_flushes(self.cfg.index_flushes);
            stream.store.set_cache_budget(Some(self.cfg.cache_bytes));
        }
        if let Some(p) = &stream.persist {
            let meta = Meta {
                config: cfg.clone(),
                created: now,
            };
            p.write_meta(
                Bytes::from(serde_json::to_vec(&meta).unwrap_or_default()),
                &mut self.ids,
                &mut fx.storage,
            );
        }
        subscribe_stream(&cfg, id, &mut fx.subscribe);
        fx.reply(reply, &StreamCreateResponse::ok(stream.info()));
        self.streams.insert(cfg.name.clone(), stream);
    }

    pub(super) fn stream_update(
        &mut self,
        name: &str,
        reply: &Bytes,
        body: &Bytes,
        fx: &mut Effects,
    ) {
        let fail = |fx: &mut Effects, e: ApiError| fx.reply(reply, &StreamUpdateResponse::error(e));
        let cfg = match request_config(name, body)
            .and_then(|mut c| c.normalize(&self.limits()).map(|()| c))
        {
            Ok(c) => c,
            Err(e) => return fail(fx, e),
        };
        let Some(old) = self.streams.get(name).map(|s| s.config.clone()) else {
            return fail(fx, errors::stream_not_found());
        };
        let cfg = match types::apply_update(&old, &cfg) {
            Ok(c) => c,
            Err(e) => return fail(fx, e),
        };
        if self.overlaps_other(&cfg) {
            return fail(fx, errors::stream_subject_overlap());
        }
        let Some(stream) = self.streams.get_mut(name) else {
            return;
        };
        subscribe_stream(&old, stream.id, &mut fx.unsubscribe);
        subscribe_stream(&cfg, stream.id, &mut fx.subscribe);
        stream.config = cfg.clone();
        let now = stream.store.last_ts();
        let removed = stream.store.enforce(&stream.limits(), now, None);
        stream.log_removed(&removed.seqs);
        if let Some(p) = &stream.persist {
            let meta = Meta {
                config: cfg,
                created: stream.created,
            };
            p.write_meta(
                Bytes::from(serde_json::to_vec(&meta).unwrap_or_default()),
                &mut self.ids,
                &mut fx.storage,
            );
        }
        fx.reply(reply, &StreamUpdateResponse::ok(stream.info()));
    }

    pub(super) fn stream_info(
        &mut self,
        name: &str,
        reply: &Bytes,
        body: &Bytes,
        fx: &mut Effects,
    ) {
        let req: StreamInfoRequest = match types::parse_request(body) {
            Ok(r) => r,
            Err(e) => return fx.reply(reply, &StreamInfoResponse::error(e)),
        };
        let Some(stream) = self.streams.get(name) else {
            return fx.reply(
                reply,
                &StreamInfoResponse::error(errors::stream_not_found()),
            );
        };
        let mut info = stream.info();
        info.cluster = Some(ClusterInfo {
            leader: self.cfg.server_name.clone(),
            ..ClusterInfo::default()
        });
        let mut paged = ApiPaged::default();
        if !req.subjects_filter.is_empty() {
            let counts = stream.store.subject_counts(req.subjects_filter.as_bytes());
            paged = ApiPaged {
                total: counts.len(),
                offset: req.offset,
                limit: 100_000,
            };
            info.state.subjects = counts
                .into_iter()
                .skip(req.offset)
                .take(100_000)
                .map(|(s, n)| (String::from_utf8_lossy(&s).into_owned(), n))
                .collect();
        }
        if req.deleted_details {
            let first = stream.store.first_seq();
            let last = stream.store.last_seq();
            info.state.deleted = (first..=last)
                .filter(|s| !stream.store.contains(*s))
                .take(100_000)
                .collect();
        }
        fx.reply(reply, &StreamInfoResponse::ok(info, paged));
    }

    pub(super) fn stream_delete(&mut self, name: &str, reply: &Bytes, fx: &mut Effects) {
        let Some(stream) = self.streams.remove(name) else {
            return fx.reply(
                reply,
                &StreamDeleteResponse::error(errors::stream_not_found()),
            );
        };
        subscribe_stream(&stream.config, stream.id, &mut fx.unsubscribe);
        let mut stream = stream;
        for (_, c) in std::mem::take(&mut stream.consumers) {
            self.consumer_removed(name, c, fx);
        }
        if let Some(p) = &stream.persist {
            p.remove_all(&mut self.ids, &mut fx.storage);
        }
        fx.reply(reply, &StreamDeleteResponse::ok());
    }

    /// Stream names matching a names/list request's subject filter, sorted.
    pub(super) fn matching_names(&self, subject: &str) -> Vec<String> {
        self.streams
            .values()
            .filter(|s| {
                subject.is_empty()
                    || s.config
                        .subjects
                        .iter()
                        .any(|x| subjects_overlap(x, subject))
            })
            .map(|s| s.config.name.clone())
            .collect()
    }

    pub(super) fn stream_names(&mut self, reply: &Bytes, body: &Bytes, fx: &mut Effects) {
        let req: StreamNamesRequest = match types::parse_request(body) {
            Ok(r) => r,
            Err(e) => return fx.reply(reply, &StreamNamesResponse::error(e)),
        };
        if !req.subject.is_empty() && !is_valid_subject(req.subject.as_bytes()) {
            return fx.reply(reply, &StreamNamesResponse::error(errors::bad_request()));
        }
        let names = self.matching_names(&req.subject);
        let total = names.len();
        let page: Vec<String> = names
            .into_iter()
            .skip(req.offset)
            .take(NAMES_LIMIT)
            .collect();
        fx.reply(
            reply,
            &StreamNamesResponse::ok(
                page,
                ApiPaged {
                    total,
                    offset: req.offset,
                    limit: NAMES_LIMIT,
                },
            ),
        );
    }

    pub(super) fn stream_list(&mut self, reply: &Bytes, body: &Bytes, fx: &mut Effects) {
        let req: StreamListRequest = match types::parse_request(body) {
            Ok(r) => r,
            Err(e) => return fx.reply(reply, &StreamListResponse::error(e)),
        };
        let names = self.matching_names(&req.subject);
        let total = names.len();
        let infos: Vec<StreamInfo> = names
            .iter()
            .skip(req.offset)
            .take(LIST_LIMIT)
            .filter_map(|n| self.streams.get(n))
            .map(Stream::info)
            .collect();
        fx.reply(
            reply,
            &StreamListResponse::ok(
                infos,
                ApiPaged {
                    total,
                    offset: req.offset,
                    limit: LIST_LIMIT,
                },
            ),
        );
    }

    pub(super) fn stream_purge(
        &mut self,
        name: &str,
        reply: &Bytes,
        body: &Bytes,
        fx: &mut Effects,
    ) {
        let fail = |fx: &mut Effects, e: ApiError| fx.reply(reply, &StreamPurgeResponse::error(e));
        let req: StreamPurgeRequest = match types::parse_request(body) {
            Ok(r) => r,
            Err(e) => return fail(fx, e),
        };
        let Some(stream) = self.streams.get_mut(name) else {
            return fail(fx, errors::stream_not_found());
        };
        if stream.config.sealed {
            return fail(fx, errors::stream_sealed());
        }
        if stream.config.deny_purge {
            return fail(fx, errors::stream_purge_not_permitted());
        }
        if req.seq > 0 && req.keep > 0 {
            return fail(fx, errors::bad_request());
        }
        let filter = (!req.filter.is_empty()).then_some(req.filter.as_bytes());
        if filter.is_some_and(|f| !is_valid_subject(f)) {
            return fail(fx, errors::bad_request());
        }
        let upto = (req.seq > 0).then_some(req.seq);
        let keep = (req.keep > 0).then_some(req.keep);
        let next_before = stream.store.last_seq() + 1;
        let removed = stream.store.purge(filter, upto, keep);
        stream.log_removed(&removed.seqs);
        let next_after = stream.store.last_seq() + 1;
        if next_after != next_before {
            if let Some(p) = stream.persist.as_mut() {
                p.log_next(next_after);
            }
        }
        let first = match stream.store.is_empty() {
            true => stream.store.last_seq() + 1,
            false => stream.store.first_seq(),
        };
        for c in stream.consumers.values_mut() {
            c.acks.purged(first);
            c.changed = true;
        }
        let id = stream.id;
        self.stream_changed(id);
        fx.reply(reply, &StreamPurgeResponse::ok(removed.seqs.len() as u64));
    }

    pub(super) fn msg_get(&mut self, name: &str, reply: &Bytes, body: &Bytes, fx: &mut Effects) {
        let fail = |fx: &mut Effects, e: ApiError| fx.reply(reply, &MsgGetResponse::error(e));
        let req: MsgGetRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return fail(fx, errors::invalid_json(e)),
        };
        let Some(stream) = self.streams.get(name) else {
            return fail(fx, errors::stream_not_found());
        };
        let stream_id = stream.id;
        let forms = [
            req.seq > 0 && req.next_by_subj.is_empty(),
            !req.last_by_subj.is_empty(),
            !req.next_by_subj.is_empty(),
        ];
        if forms.iter().filter(|f| **f).count() != 1 {
            return fail(fx, errors::bad_request());
        }
        let found = if !req.last_by_subj.is_empty() {
            stream.store.last_matching(req.last_by_subj.as_bytes())
        } else if !req.next_by_subj.is_empty() {
            stream
                .store
                .next_matching(req.seq.max(1), req.next_by_subj.as_bytes())
        } else {
            stream.store.contains(req.seq).then_some(req.seq)
        };
        match found {
            Some(seq) => self.get_msg(stream_id, seq, Getter::Api(reply.clone()), fx),
            None => fail(fx, errors::no_message_found()),
        }
    }

    pub(super) fn msg_delete(&mut self, name: &str, reply: &Bytes, body: &Bytes, fx: &mut Effects) {
        let fail = |fx: &mut Effects, e: ApiError| fx.reply(reply, &MsgDeleteResponse::error(e));
        let req: MsgDeleteRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return fail(fx, errors::invalid_json(e)),
        };
        let Some(stream) = self.streams.get_mut(name) else {
            return fail(fx, errors::stream_not_found());
        };
        if stream.config.sealed {
            return fail(fx, errors::stream_sealed());
        }
        if stream.config.deny_delete {
            return fail(fx, errors::message_delete_not_permitted());
        }
        if stream.store.remove(req.seq).is_none() {
            return fail(fx, errors::sequence_not_found(req.seq));
        }
        stream.log_removed(&[req.seq]);
        fx.reply(reply, &MsgDeleteResponse::ok());
    }

    /// `$JS.API.DIRECT.GET.<stream>[.<subject>]` (row S11, S12): the message
    /// itself, with Nats-* headers, or a status.
    pub fn direct_get(
        &mut self,
        stream_id: u64,
        subject: &str,
        reply: Option<&Bytes>,
        body: &Bytes,
        fx: &mut Effects,
    ) {
        let Some(reply) = reply.filter(|r| !r.is_empty()).cloned() else {
            return;
        };
        let Some(stream) = self.streams.values().find(|s| s.id == stream_id) else {
            return;
        };
        let prefix = format!("$JS.API.DIRECT.GET.{}", stream.config.name);
        let status = |fx: &mut Effects, s: &str| {
            fx.publish.push(Outgoing {
                subject: reply.clone(),
                reply: None,
                deliver: None,
                headers: Some(Bytes::from(headers::build(Some(s), &[]))),
                payload: Bytes::new(),
            })
        };
        let found = if let Some(last) = subject
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_prefix('.'))
        {
            if !body.is_empty() {
                return status(fx, "408 Bad Request");
            }
            stream.store.last_matching(last.as_bytes())
        } else {
            if body.is_empty() {
                return status(fx, "408 Empty Request");
            }
            let Ok(req) = serde_json::from_slice::<MsgGetRequest>(body) else {
                return status(fx, "408 Malformed Request");
            };
            if !req.last_by_subj.is_empty() {
                stream.store.last_matching(req.last_by_subj.as_bytes())
            } else if !req.next_by_subj.is_empty() {
                stream
                    .store
                    .next_matching(req.seq.max(1), req.next_by_subj.as_bytes())
            } else if req.seq > 0 {
                stream.store.contains(req.seq).then_some(req.seq)
            } else {
                return status(fx, "408 Bad Request");
            }
        };
        let Some(seq) = found else {
            return status(fx, "404 Message Not Found");
        };
        self.get_msg(stream_id, seq, Getter::Direct(reply), fx);
    }

    /// Answer a get of a held message: at once when it is cached (or its record
    /// not yet emitted), otherwise once a Read of its log record completes.
    pub(super) fn get_msg(&mut self, stream_id: u64, seq: u64, getter: Getter, fx: &mut Effects) {
        let Some(stream) = self.streams.values().find(|s| s.id == stream_id) else {
            return;
        };
        if let Some(m) = stream.store.get(seq) {
            return answer_get(&stream.config.name, &getter, Ok(&m), fx);
        }
        let name = stream.config.name.clone();
        let how = match (stream.store.meta(seq).and_then(|m| m.loc), &stream.persist) {
            (Some(loc), Some(p)) => p.read_record(loc),
            _ => None,
        };
        match how {
            Some(Err(record)) => {
                let m = record_msg(&record, seq);
                if m.is_none() {
                    tracing::warn!(
                        "JetStream stream '{name}': queued record of message {seq} unreadable"
                    );
                }
                answer_get(&name, &getter, m.as_ref().ok_or(GetError::Missing), fx);
            }
            Some(Ok(op)) => {
                if self.reads.len() >= MAX_PENDING_READS {
                    return answer_get(&name, &getter, Err(GetError::Busy), fx);
                }
                let id = self.ids.alloc();
                self.reads.insert(
                    id,
                    PendingRead {
                        stream_id,
                        seq,
                        getter,
                    },
                );
                fx.storage.push((id, op));
            }
            None => {
                tracing::warn!("JetStream stream '{name}': message {seq} has no readable record");
                answer_get(&name, &getter, Err(GetError::Missing), fx);
            }
        }
    }

    /// A Read of a message record completed: answer its getter.
    pub(super) fn read_done(&mut self, read: PendingRead, result: StorageResult, fx: &mut Effects) {
        if let Getter::Consumer(uid, parts) = read.getter {
            return self.consumer_range_done(uid, &parts, result);
        }
        let Some(stream) = self.streams.values_mut().find(|s| s.id == read.stream_id) else {
            // The stream was deleted meanwhile.
            return answer_get("", &read.getter, Err(GetError::Missing), fx);
        };
        let name = stream.config.name.clone();
        let seq = read.seq;
        let got = match result {
            StorageResult::Data(data) => match record_msg(&data, seq) {
                Some(m) => Ok(m),
                None => {
                    tracing::warn!(
                        "JetStream stream '{name}': record of message {seq} failed to decode"
                    );
                    Err(GetError::Missing)
                }
            },
            StorageResult::Error(e) => {
                tracing::warn!("JetStream stream '{name}': read of message {seq} failed: {e}");
                Err(GetError::Failed(e))
            }
            other => {
                tracing::warn!("JetStream stream '{name}': read of message {seq} gave {other:?}");
                Err(GetError::Missing)
            }
        };
        if let Ok(m) = &got {
            stream
                .store
                .cache_put(seq, m.headers.clone(), m.data.clone());
        }
        if matches!(read.getter, Getter::Api(_)) && got.is_err() {
            self.api.errors += 1;
        }
        answer_get(&name, &read.getter, got.as_ref().map_err(Clone::clone), fx);
    }
}

/// Why a get found no message to answer with.
#[derive(Clone, Debug)]
pub(super) enum GetError {
    /// The record is gone or unreadable.
    Missing,
    /// Too many reads in flight.
    Busy,
    /// The read failed.
    Failed(String),
}

/// Answer a MSG.GET or DIRECT.GET.
pub(super) fn answer_get(
    name: &str,
    getter: &Getter,
    got: Result<&StoredMsg, GetError>,
    fx: &mut Effects,
) {
    match (getter, got) {
        (Getter::Api(reply), Ok(m)) => fx.reply(reply, &MsgGetResponse::ok(Stream::api_msg(m))),
        (Getter::Api(reply), Err(e)) => {
            let err = match e {
                GetError::Missing => errors::no_message_found(),
                GetError::Busy => errors::insufficient_resources(),
                GetError::Failed(e) => errors::stream_store_failed(e),
            };
            fx.reply(reply, &MsgGetResponse::error(err));
        }
        (Getter::Direct(reply), Ok(m)) => {
            let seq = m.seq.to_string();
            let ts = Timestamp::from_unix_nanos(m.ts).to_string();
            let subj = String::from_utf8_lossy(&m.subject).into_owned();
            let pairs = [
                ("Nats-Stream", name),
                ("Nats-Subject", subj.as_str()),
                ("Nats-Sequence", seq.as_str()),
                ("Nats-Time-Stamp", ts.as_str()),
            ];
            let hdrs = headers::append(&m.headers, &pairs);
            fx.publish.push(Outgoing {
                subject: reply.clone(),
                reply: None,
                deliver: None,
                headers: Some(Bytes::from(hdrs)),
                payload: m.data.clone(),
            });
        }
        // Consumers are told by `read_done`.
        (Getter::Consumer(..), _) => {}
        (Getter::Direct(reply), Err(e)) => {
            let status = match e {
                GetError::Missing => "404 Message Not Found",
                GetError::Busy | GetError::Failed(_) => "503 Service Unavailable",
            };
            fx.publish.push(Outgoing {
                subject: reply.clone(),
                reply: None,
                deliver: None,
                headers: Some(Bytes::from(headers::build(Some(status), &[]))),
                payload: Bytes::new(),
            });
        }
    }
}

/// The message in one record read back from the log, if it is the message
/// with sequence `seq` and its checksum holds.
pub(super) fn record_msg(record: &Bytes, seq: u64) -> Option<StoredMsg> {
    match log::decode_one(record)? {
        Record::Msg(m) if m.seq == seq => Some(m),
        _ => None,
    }
}

/// A message decoded from a whole segment, copied out of it so the cache does
/// not hold the segment's buffer.
pub(super) fn detached(m: StoredMsg) -> StoredMsg {
    StoredMsg {
        seq: m.seq,
        subject: Bytes::copy_from_slice(&m.subject),
        headers: Bytes::copy_from_slice(&m.headers),
        data: Bytes::copy_from_slice(&m.data),
        ts: m.ts,
    }
}

/// The config in a create or update request; its name, when given, must match
/// the one in the subject (10056).
pub(super) fn request_config(name: &str, body: &Bytes) -> Result<StreamConfig, ApiError> {
    let mut cfg: StreamConfig = types::parse_request(body)?;
    if cfg.name.is_empty() {
        cfg.name = name.to_string();
    } else if cfg.name != name {
        return Err(errors::stream_mismatch());
    }
    Ok(cfg)
}

pub(super) fn is_error(payload: &[u8]) -> bool {
    memchr::memmem::find(payload, b"\"error\":").is_some()
}
