//! Client operations: parsing a connection's input and acting on each op
//! (CONNECT, PUB/HPUB, SUB, UNSUB, PING/PONG), and routing published messages.

use super::auth::Credentials;
use super::conn::ConnectOptions;
use super::core::{Msg, Sub};
use super::frames::{go_quote, write_msg, OK, PONG};
use super::*;
use crate::proto::{self, Op, ParseError, Parsed};
use crate::subject::{is_valid_literal_subject, is_valid_subject};

impl Server {
    // ----- input processing -----

    /// Parse and handle whole operations from `buf`; returns the bytes used.
    pub(super) fn parse_ops(&mut self, now: Instant, key: usize, buf: &[u8]) -> usize {
        let mut used = 0;
        loop {
            let Some(c) = self.core.conns.get_mut(key) else {
                return used;
            };
            if c.closing {
                return used;
            }
            let limits = proto::Limits {
                max_control_line: self.cfg.max_control_line as usize,
                max_payload: self.cfg.max_payload as usize,
                headers: c.opts.headers,
            };
            match proto::parse(&buf[used..], &limits) {
                Ok(Parsed::Op(op, n)) => {
                    used += n.max(1);
                    self.handle_op(now, key, op);
                    // Stalled by what it just published: the rest waits.
                    if self.core.conns.get(key).is_some_and(|c| c.read_paused) {
                        self.core.conns[key].partial_need = 0;
                        return used;
                    }
                }
                Ok(Parsed::Incomplete { need }) => {
                    c.partial_need = need.unwrap_or(0);
                    return used;
                }
                Err(e) => {
                    let first = buf.get(used).copied().unwrap_or(b'C');
                    if c.awaiting_auth && !matches!(first, b'C' | b'c') {
                        self.auth_violation(key);
                    } else {
                        self.parse_error(key, e);
                    }
                    return used;
                }
            }
            if used >= buf.len() {
                return used;
            }
        }
    }

    pub(super) fn parse_error(&mut self, key: usize, e: ParseError) {
        match e {
            ParseError::UnknownOp => {
                self.close(
                    key,
                    CloseReason::ParseError,
                    Some("Unknown Protocol Operation"),
                );
            }
            ParseError::ControlLineTooLong => {
                self.close(
                    key,
                    CloseReason::MaxControlLineExceeded,
                    Some("maximum control line exceeded"),
                );
            }
            ParseError::PayloadTooLarge => {
                self.close(
                    key,
                    CloseReason::MaxPayloadExceeded,
                    Some("Maximum Payload Violation"),
                );
            }
            ParseError::BadArgs => self.close(key, CloseReason::ProtocolViolation, None),
        }
    }

    pub(super) fn handle_op(&mut self, now: Instant, key: usize, op: Op<'_>) {
        let c = &mut self.core.conns[key];
        if c.awaiting_auth && !matches!(op, Op::Connect(_)) {
            if self.auth.has_no_auth_user() {
                let creds = Credentials {
                    user: None,
                    pass: None,
                    token: None,
                };
                match self.auth.authenticate(&creds) {
                    Ok(grant) => {
                        c.permissions = grant;
                        c.awaiting_auth = false;
                    }
                    Err(()) => return self.auth_violation(key),
                }
            } else {
                return self.auth_violation(key);
            }
        }
        match op {
            Op::Connect(json) => self.process_connect(now, key, json),
            Op::Pub {
                subject,
                reply,
                payload,
            } => self.process_pub(key, subject, reply, None, payload),
            Op::HPub {
                subject,
                reply,
                headers,
                payload,
            } => self.process_pub(key, subject, reply, Some(headers), payload),
            Op::Sub {
                subject,
                queue,
                sid,
            } => self.process_sub(key, subject, queue, sid),
            Op::Unsub { sid, max } => self.process_unsub(key, sid, max),
            Op::Ping => self.core.send(key, PONG),
            Op::Pong => {
                let c = &mut self.core.conns[key];
                c.pings_out = 0;
                c.rtt_known = true;
            }
            Op::Ok => {}
            // A client's INFO is ignored when it is JSON, a protocol violation otherwise.
            Op::Info(json) => {
                if serde_json::from_slice::<serde::de::IgnoredAny>(json).is_err() {
                    self.close(key, CloseReason::ProtocolViolation, None);
                }
            }
            // nats-server logs a client's -ERR and closes the connection, saying nothing.
            Op::Err(text) => {
                tracing::debug!(
                    "cid:{} - Client Error {}",
                    self.core.conns[key].id,
                    String::from_utf8_lossy(text)
                );
                self.close(key, CloseReason::ParseError, None);
            }
        }
    }

    pub(super) fn auth_violation(&mut self, key: usize) {
        self.close(
            key,
            CloseReason::AuthenticationViolation,
            Some("Authorization Violation"),
        );
    }

    pub(super) fn process_connect(&mut self, now: Instant, key: usize, json: &[u8]) {
        // Applied onto the current options, as nats-server's json.Unmarshal does.
        let mut opts: ConnectOptions = self.core.conns[key].opts.clone();
        if opts.apply_json(json).is_err() {
            // nats-server closes on bad CONNECT JSON without an -ERR (row E20).
            return self.close(key, CloseReason::ProtocolViolation, None);
        }
        let c = &mut self.core.conns[key];
        c.rtt_known = true;
        let was_awaiting = c.awaiting_auth;
        c.awaiting_auth = false;
        if self.auth.required() || was_awaiting {
            let creds = Credentials {
                user: opts.user.as_deref(),
                pass: opts.pass.as_deref(),
                token: opts.auth_token.as_deref(),
            };
            match self.auth.authenticate(&creds) {
                Ok(grant) => self.core.conns[key].permissions = grant,
                Err(()) => return self.auth_violation(key),
            }
        }
        if opts.names_account() {
            return self.auth_violation(key);
        }
        if !(0..=1).contains(&opts.protocol) {
            return self.close(
                key,
                CloseReason::BadClientProtocolVersion,
                Some("invalid client protocol"),
            );
        }
        if opts.no_responders && !opts.headers {
            return self.close(
                key,
                CloseReason::NoRespondersRequiresHeaders,
                Some("no responders requires headers support"),
            );
        }
        let verbose = opts.verbose;
        let c = &mut self.core.conns[key];
        c.opts = opts;
        c.connected = true;
        // nats-server restarts the keep-alive timer from each accepted CONNECT
        // (processConnect: clearPingTimer, setFirstPingTimer).
        self.arm_first_ping(now, key);
        if verbose {
            self.core.send(key, OK);
        }
    }

    pub(super) fn process_pub(
        &mut self,
        key: usize,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) {
        let c = &mut self.core.conns[key];
        let size = (headers.map_or(0, <[u8]>::len) + payload.len()) as u64;
        c.in_msgs += 1;
        c.in_bytes += size;
        self.core.stats.in_msgs += 1;
        self.core.stats.in_bytes += size;
        // Pedantic clients are told, but the message is still routed (as nats-server does).
        if c.opts.pedantic && !is_valid_literal_subject(subject) {
            self.core.send_err(key, "Invalid Publish Subject");
        }
        let c = &self.core.conns[key];
        let denied = subject.starts_with(b"_GR_.")
            || c.permissions
                .as_ref()
                .is_some_and(|p| !p.can_publish(subject));
        if denied {
            let text = format!("Permissions Violation for Publish to {}", go_quote(subject));
            return self.core.send_err(key, &text);
        }
        if let Some(r) = reply {
            if is_reserved_reply(r) {
                let text = format!(
                    "Permissions Violation for Publish with Reply of {}",
                    go_quote(r)
                );
                return self.core.send_err(key, &text);
            }
        }
        if c.opts.verbose {
            self.core.send(key, OK);
        }
        let msg = Msg {
            subject,
            reply,
            headers,
            payload,
        };
        let delivered = self.route(key, &msg);
        if !self.core.internal.is_empty() {
            self.run_internal();
        }
        if !delivered {
            if let Some(reply) = reply {
                self.no_responders(key, subject, reply);
            }
        }
    }

    /// Deliver to every matching plain subscription and to one member of each queue
    /// group (row W6). Returns whether anyone got the message.
    pub(super) fn route(&mut self, from: usize, msg: &Msg<'_>) -> bool {
        self.route_as(from, msg.subject, msg)
    }

    /// [`Server::route`] to the subscriptions matching `to`, with the
    /// message keeping its own subject (JetStream consumer deliveries).
    pub(super) fn route_as(&mut self, from: usize, to: &[u8], msg: &Msg<'_>) -> bool {
        let matches = self.index.matches(to);
        let mut delivered = false;
        for &sk in &matches.plain {
            delivered |= self.core.deliver(from, sk, msg);
        }
        for (_, members) in &matches.queues {
            let n = members.len();
            let start = if n > 1 {
                self.rng.random_range(0..n)
            } else {
                0
            };
            for i in 0..n {
                if self.core.deliver(from, members[(start + i) % n], msg) {
                    delivered = true;
                    break;
                }
            }
        }
        self.after_delivery();
        delivered
    }

    /// Apply what deliveries decided: auto-unsubscribes and slow consumers.
    pub(super) fn after_delivery(&mut self) {
        while let Some((producer, consumer)) = self.core.stalls.pop() {
            self.stall_producer(producer, consumer);
        }
        while let Some(sk) = self.core.expired.pop() {
            self.remove_sub(sk);
        }
        while let Some(key) = self.core.slow.pop() {
            if self.core.conns.get(key).is_some_and(|c| !c.closing) {
                self.core.stats.slow_consumers += 1;
                tracing::info!(
                    "cid:{} - Slow Consumer Detected: MaxPending of {} exceeded",
                    self.core.conns[key].id,
                    self.cfg.max_pending
                );
                self.close(key, CloseReason::SlowConsumerPendingBytes, None);
            }
        }
    }

    /// Row C16: a request nobody received gets a 503 status, sent to the
    /// publisher's own subscription on the reply subject.
    pub(super) fn no_responders(&mut self, key: usize, _subject: &[u8], reply: &[u8]) {
        let c = &self.core.conns[key];
        if !c.opts.no_responders {
            return;
        }
        let matches = self.index.matches(reply);
        let own = matches
            .plain
            .iter()
            .copied()
            .find(|&sk| self.core.subs.get(sk).is_some_and(|s| s.conn == key));
        let Some(sk) = own else { return };
        let sub = &self.core.subs[sk];
        let c = &mut self.core.conns[key];
        write_msg(
            &mut c.out,
            reply,
            &sub.sid,
            None,
            Some(b"NATS/1.0 503\r\n\r\n"),
            b"",
        );
        if !c.dirty {
            c.dirty = true;
            self.core.dirty.push(key);
        }
    }

    pub(super) fn process_sub(
        &mut self,
        key: usize,
        subject: &[u8],
        queue: Option<&[u8]>,
        sid: &[u8],
    ) {
        let c = &self.core.conns[key];
        if c.permissions
            .as_ref()
            .is_some_and(|p| !p.can_subscribe(subject, queue))
        {
            let mut text = format!(
                "Permissions Violation for Subscription to {}",
                go_quote(subject)
            );
            if let Some(q) = queue {
                text.push_str(&format!(" using queue {}", go_quote(q)));
            }
            return self.core.send_err(key, &text);
        }
        if !c.deny_filter
            && c.permissions
                .as_ref()
                .is_some_and(|p| p.sub_deny_overlaps(subject))
        {
            self.core.conns[key].deny_filter = true;
        }
        let c = &self.core.conns[key];
        let limit = match self.cfg.max_subscriptions {
            0 => HARD_MAX_SUBSCRIPTIONS,
            n => n.min(HARD_MAX_SUBSCRIPTIONS),
        };
        if c.sids.len() >= limit {
            return self.core.send_err(key, "maximum subscriptions exceeded");
        }
        let verbose = c.opts.verbose;
        if c.sids.contains_key(sid) {
            if verbose {
                self.core.send(key, OK);
            }
            return;
        }
        if !is_valid_subject(subject) || queue.is_some_and(|q| !is_valid_queue(q)) {
            return self.core.send_err(key, "Invalid Subject");
        }
        let sk = self.core.subs.insert(Sub {
            conn: key,
            sid: sid.into(),
            subject: subject.into(),
            queue: queue.map(Into::into),
            max: 0,
            delivered: 0,
            internal: None,
        });
        self.core.conns[key].sids.insert(sid.into(), sk);
        self.index.insert(subject, queue, sk);
        self.interest_changed = true;
        if verbose {
            self.core.send(key, OK);
        }
    }

    pub(super) fn process_unsub(&mut self, key: usize, sid: &[u8], max: Option<u64>) {
        let c = &self.core.conns[key];
        let verbose = c.opts.verbose;
        let lost = self
            .cfg
            .has_bug(crate::config::InjectedBug::DeliverAfterUnsub);
        if let Some(&sk) = c.sids.get(sid).filter(|_| !lost) {
            let sub = &mut self.core.subs[sk];
            match max {
                Some(m) if m > 0 && m > sub.delivered => sub.max = m,
                _ => self.remove_sub(sk),
            }
        }
        if verbose {
            self.core.send(key, OK);
        }
    }
}

/// Replies that clients may not use (row C19): service imports, JetStream acks
/// and gateway-routed replies. As in nats-server's `isReservedReply`, a bare
/// `_R_.` is reserved (`isServiceReply` checks `len > 3`), while `$JS.ACK.` and
/// `_GR_.` need at least one byte after the prefix.
pub(super) fn is_reserved_reply(reply: &[u8]) -> bool {
    reply.starts_with(b"_R_.")
        || (reply.len() > 8 && reply.starts_with(b"$JS.ACK."))
        || (reply.len() > 5 && reply.starts_with(b"_GR_."))
}

/// Queue group names are single tokens without whitespace.
pub(super) fn is_valid_queue(q: &[u8]) -> bool {
    !q.is_empty() && !q.iter().any(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}
