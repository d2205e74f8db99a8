//! The consumer management endpoints (matrix section 4.2, rows S13–S19;
//! configuration rows CC1–CC31): create, info, delete, names and list, as
//! nats-server 2.9.10 answers them, plus 2.10's create forms and `action`.
//!
//! Consumers live per stream ([`Stream::consumers`]): deleting a stream drops
//! them. Delivery and acks are in `deliver.rs`.
//!
//! Bounds: a stream's `max_consumers`, and [`MAX_CONSUMERS`] over the server
//! (both 10026). Names are at most 255 bytes (10102), so the maps are bounded.

use rand::RngCore;

use super::*;
use crate::jetstream::consumer::{
    check_update, check_work_queue, generate_consumer_name, ConsumerAction, ConsumerCreateResponse,
    ConsumerDeleteResponse, ConsumerInfo, ConsumerInfoResponse, ConsumerLimits,
    ConsumerListResponse, ConsumerNamesResponse, CreateConsumerRequest,
};

/// Tries at drawing a generated name not already used on the stream; the
/// chance of needing a second is about n / 62^8.
const NAME_DRAWS: usize = 16;

/// Which create subject a request came on (2.9.10's `ccReqType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CreateForm {
    /// `CONSUMER.CREATE.<stream>`: ephemeral, or named by the config (2.10).
    Legacy,
    /// `CONSUMER.DURABLE.CREATE.<stream>.<durable>`.
    Durable,
    /// `CONSUMER.CREATE.<stream>.<name>[.<filter>]` (2.10 clients).
    Named,
}

/// A create request's subject tokens.
struct CreateSubject<'a> {
    form: CreateForm,
    stream: &'a str,
    name: &'a str,
    filter: String,
}

/// The body of consumer names and list requests (`JSApiConsumersRequest`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConsumersRequest {
    #[serde(deserialize_with = "super::types::null_default")]
    offset: usize,
}

impl JetStream {
    /// A request on a `$JS.API.CONSUMER.` subject; `rest` follows that prefix.
    /// The subscriptions fix the token counts; other shapes get no answer, as
    /// they would get no responders from nats-server.
    pub(super) fn consumer_api(
        &mut self,
        rest: &str,
        reply: &Bytes,
        body: &Bytes,
        now: i64,
        fx: &mut Effects,
    ) {
        let tokens: Vec<&str> = rest.split('.').collect();
        let create = match tokens.as_slice() {
            ["CREATE", stream] => Some(CreateSubject {
                form: CreateForm::Legacy,
                stream,
                name: "",
                filter: String::new(),
            }),
            ["CREATE", stream, name, filter @ ..] => Some(CreateSubject {
                form: CreateForm::Named,
                stream,
                name,
                filter: filter.join("."),
            }),
            ["DURABLE", "CREATE", stream, name] => Some(CreateSubject {
                form: CreateForm::Durable,
                stream,
                name,
                filter: String::new(),
            }),
            ["INFO", stream, name] => return self.consumer_info(stream, name, reply, body, fx),
            ["DELETE", stream, name] => return self.consumer_delete(stream, name, reply, body, fx),
            ["NAMES", stream] => return self.consumer_names(stream, reply, body, fx),
            ["LIST", stream] => return self.consumer_list(stream, reply, body, fx),
            _ => None,
        };
        if let Some(subject) = create {
            let (resp, durable_after) = match self.consumer_create(&subject, body, now, fx) {
                Ok((info, after)) => (ConsumerCreateResponse::ok(info), after),
                Err(e) => (ConsumerCreateResponse::error(e), None),
            };
            match (durable_after, serde_json::to_vec(&resp)) {
                // Answered once the consumer's meta.json is on disk.
                (Some(id), Ok(json)) => self.waiting.entry(id).or_default().push(PendingAck {
                    reply: reply.clone(),
                    payload: Bytes::from(json),
                }),
                _ => fx.reply(reply, &resp),
            }
        }
    }

    /// `CONSUMER.CREATE` and `CONSUMER.DURABLE.CREATE` (rows S13–S15), with
    /// 2.9.10's checks in its order: the body, the subject against it, single
    /// server replicas, the stream, then `addConsumer`'s.
    fn consumer_create(
        &mut self,
        subject: &CreateSubject<'_>,
        body: &Bytes,
        now: i64,
        fx: &mut Effects,
    ) -> Result<(ConsumerInfo, Option<StorageId>), ApiError> {
        // Go's json.Unmarshal: an empty body is an error, `null` a no-op.
        let mut req: CreateConsumerRequest = if body.trim_ascii() == b"null" {
            CreateConsumerRequest::default()
        } else {
            serde_json::from_slice(body).map_err(errors::invalid_json)?
        };
        let name = subject.name;
        if subject.stream != req.stream_name {
            return Err(errors::stream_mismatch());
        }
        if name.contains(['\\', '/']) {
            return Err(errors::consumer_name_contains_path_separators());
        }
        let cfg = &mut req.config;
        match subject.form {
            CreateForm::Durable => {
                if cfg.durable.is_empty() {
                    return Err(errors::consumer_durable_name_not_set());
                }
                if cfg.durable != name {
                    return Err(errors::consumer_durable_name_not_match_subject());
                }
            }
            CreateForm::Named => {
                if !cfg.durable.is_empty() && cfg.durable != name {
                    return Err(errors::consumer_durable_name_not_match_subject());
                }
                cfg.name = name.to_string();
            }
            CreateForm::Legacy => {
                if !cfg.durable.is_empty() {
                    return Err(errors::consumer_ephemeral_with_durable_name());
                }
            }
        }
        if !subject.filter.is_empty() {
            if !cfg.filter_subjects.is_empty() {
                return Err(errors::consumer_multiple_filters_not_allowed());
            }
            if cfg.filter_subject != subject.filter {
                return Err(errors::consumer_create_filter_subject_mismatch());
            }
        }
        if cfg.num_replicas > 1 {
            return Err(errors::stream_replicas_not_supported());
        }
        let total: usize = self.streams.values().map(|s| s.consumers.len()).sum();
        let Some(stream) = self.streams.get_mut(&req.stream_name) else {
            return Err(errors::stream_not_found());
        };
        let mut cfg = req.config;
        cfg.normalize(&stream.config, &ConsumerLimits::default())?;

        // An existing consumer of that name: the same config returns it,
        // otherwise it is an update (refused with `action: create`).
        let existing_name = cfg.consumer_name().to_string();
        if let Some(existing) = stream.consumers.get(&existing_name) {
            if req.action == ConsumerAction::Create && existing.config != cfg {
                return Err(errors::consumer_already_exists());
            }
            if stream.config.retention == RetentionPolicy::WorkQueue {
                let others = stream
                    .consumers
                    .iter()
                    .filter(|(n, _)| **n != existing_name)
                    .map(|(_, c)| &c.config);
                check_work_queue(&stream.config, &cfg, others)?;
            }
            check_update(&existing.config, &cfg)?;
            let name = stream.config.name.clone();
            let Some(c) = stream.consumers.get_mut(&existing_name) else {
                return Err(errors::consumer_not_found());
            };
            let changed = c.config != cfg;
            if changed {
                c.reconfigure(cfg);
            }
            let uid = c.uid;
            let info = c.info(&name, &stream.store);
            self.dirty.insert(uid);
            let after = if changed {
                self.persist_consumer(&name, &existing_name, fx)
            } else {
                None
            };
            return Ok((info, after));
        }
        if req.action == ConsumerAction::Update {
            return Err(errors::consumer_does_not_exist());
        }
        let max = stream.config.max_consumers;
        let public = stream.public_consumers().count();
        if (max > 0 && public as u64 >= max as u64) || total >= MAX_CONSUMERS {
            return Err(errors::maximum_consumers_limit());
        }
        check_work_queue(
            &stream.config,
            &cfg,
            stream.consumers.values().map(|c| &c.config),
        )?;
        if !cfg.is_durable() && cfg.name.is_empty() {
            let drawn = (0..NAME_DRAWS)
                .map(|_| generate_consumer_name(self.rng.next_u64()))
                .find(|n| !stream.consumers.contains_key(n));
            match drawn {
                Some(n) => cfg.name = n,
                None => return Err(errors::insufficient_resources()),
            }
        }
        cfg.check_name()?;
        let uid = self.next_uid;
        self.next_uid += 1;
        let consumer = Consumer::new(cfg, now, uid, &stream.store);
        let info = consumer.info(&stream.config.name, &stream.store);
        stream.consumers.insert(info.name.clone(), consumer);
        let sname = stream.config.name.clone();
        self.consumer_added(&sname, &info.name, fx);
        let after = self.persist_consumer(&sname, &info.name, fx);
        Ok((info, after))
    }

    /// `CONSUMER.INFO.<stream>.<consumer>` (row S16).
    fn consumer_info(
        &mut self,
        stream: &str,
        name: &str,
        reply: &Bytes,
        body: &Bytes,
        fx: &mut Effects,
    ) {
        let resp = if !types::is_empty_request(body) {
            ConsumerInfoResponse::error(errors::not_empty_request())
        } else {
            match self.streams.get(stream) {
                None => ConsumerInfoResponse::error(errors::stream_not_found()),
                Some(s) => match s.consumers.get(name) {
                    None => ConsumerInfoResponse::error(errors::consumer_not_found()),
                    Some(c) => ConsumerInfoResponse::ok(c.info(stream, &s.store)),
                },
            }
        };
        fx.reply(reply, &resp);
    }

    /// `CONSUMER.DELETE.<stream>.<consumer>` (row S17).
    fn consumer_delete(
        &mut self,
        stream: &str,
        name: &str,
        reply: &Bytes,
        body: &Bytes,
        fx: &mut Effects,
    ) {
        let resp = if !types::is_empty_request(body) {
            ConsumerDeleteResponse::error(errors::not_empty_request())
        } else {
            match self.streams.get_mut(stream) {
                None => ConsumerDeleteResponse::error(errors::stream_not_found()),
                Some(s) => match s.consumers.remove(name) {
                    None => ConsumerDeleteResponse::error(errors::consumer_not_found()),
                    Some(c) => {
                        self.consumer_removed(stream, c, fx);
                        ConsumerDeleteResponse::ok()
                    }
                },
            }
        };
        fx.reply(reply, &resp);
    }

    /// The body of a names or list request, and the stream it names.
    fn consumers_request(&self, stream: &str, body: &Bytes) -> Result<(usize, &Stream), ApiError> {
        let req: ConsumersRequest = types::parse_request(body)?;
        let s = self
            .streams
            .get(stream)
            .ok_or_else(errors::stream_not_found)?;
        Ok((req.offset, s))
    }

    /// `CONSUMER.NAMES.<stream>` (row S18): sorted names, [`NAMES_LIMIT`] a
    /// page, the offset clamped to the total.
    fn consumer_names(&mut self, stream: &str, reply: &Bytes, body: &Bytes, fx: &mut Effects) {
        let resp = match self.consumers_request(stream, body) {
            Err(e) => ConsumerNamesResponse::error(e),
            Ok((offset, s)) => {
                let total = s.public_consumers().count();
                let offset = offset.min(total);
                let names = s
                    .public_consumers()
                    .skip(offset)
                    .take(NAMES_LIMIT)
                    .map(|(n, _)| n.clone())
                    .collect();
                let paged = ApiPaged {
                    total,
                    offset,
                    limit: NAMES_LIMIT,
                };
                ConsumerNamesResponse::ok(names, paged)
            }
        };
        fx.reply(reply, &resp);
    }

    /// `CONSUMER.LIST.<stream>` (row S19): infos sorted by name,
    /// [`LIST_LIMIT`] a page, the offset clamped to the total.
    fn consumer_list(&mut self, stream: &str, reply: &Bytes, body: &Bytes, fx: &mut Effects) {
        let resp = match self.consumers_request(stream, body) {
            Err(e) => ConsumerListResponse::error(e),
            Ok((offset, s)) => {
                let total = s.public_consumers().count();
                let offset = offset.min(total);
                let infos = s
                    .public_consumers()
                    .skip(offset)
                    .take(LIST_LIMIT)
                    .map(|(_, c)| c.info(stream, &s.store))
                    .collect();
                let paged = ApiPaged {
                    total,
                    offset,
                    limit: LIST_LIMIT,
                };
                ConsumerListResponse::ok(infos, paged)
            }
        };
        fx.reply(reply, &resp);
    }
}
