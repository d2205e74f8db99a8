//! Connections and subscriptions: everything a delivery touches. Kept apart from
//! the subject index so a match result can be read while deliveries are made.

use super::conn::Conn;
use super::frames::{write_err, write_msg};
use super::Stats;
use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use slab::Slab;

/// The `conn` of a subscription held by a service inside the engine.
pub(crate) const INTERNAL_CONN: usize = usize::MAX;

pub(crate) use crate::jetstream::service::Target as InternalTarget;

/// A message delivered to an internal subscription, copied out of the read buffer.
#[derive(Clone, Debug)]
pub(crate) struct InternalMsg {
    pub target: InternalTarget,
    pub subject: Bytes,
    pub reply: Option<Bytes>,
    /// The header block, if the message had one.
    pub headers: Option<Bytes>,
    pub payload: Bytes,
}

/// Internal messages waiting for their service; past this, new ones are dropped
/// (each input drains the queue, so only a publish storm within one read gets here).
pub(super) const INTERNAL_QUEUE_MAX: usize = 100_000;

/// One subscription.
pub(super) struct Sub {
    pub(super) conn: usize,
    pub(super) sid: Box<[u8]>,
    pub(super) subject: Box<[u8]>,
    pub(super) queue: Option<Box<[u8]>>,
    /// Auto-unsubscribe after this many deliveries; 0 = no limit.
    pub(super) max: u64,
    pub(super) delivered: u64,
    /// Set for subscriptions of engine services (`conn` is then INTERNAL_CONN).
    pub(super) internal: Option<InternalTarget>,
}

/// A message on its way through the routing core.
pub(super) struct Msg<'a> {
    pub(super) subject: &'a [u8],
    pub(super) reply: Option<&'a [u8]>,
    pub(super) headers: Option<&'a [u8]>,
    pub(super) payload: &'a [u8],
}

/// Connections and subscriptions: everything a delivery touches, kept apart from
/// the subject index so a match result can be read while deliveries are made.
pub(super) struct Core {
    pub(super) conns: Slab<Conn>,
    pub(super) subs: Slab<Sub>,
    pub(super) dirty: Vec<usize>,
    /// Subscriptions that reached their auto-unsubscribe limit during a delivery.
    pub(super) expired: Vec<usize>,
    /// Connections found to be slow consumers during a delivery.
    pub(super) slow: Vec<usize>,
    /// (producer, consumer) pairs where a delivery took the consumer past half
    /// of max_pending: the producer is to be stalled.
    pub(super) stalls: Vec<(usize, usize)>,
    pub(super) max_pending: u64,
    pub(super) stats: Stats,
    /// Messages for engine services, handled after the current delivery.
    pub(super) internal: VecDeque<InternalMsg>,
}

impl Core {
    /// Queue bytes on a connection and note it has something to transmit.
    pub(super) fn send(&mut self, key: usize, bytes: &[u8]) {
        if let Some(c) = self.conns.get_mut(key) {
            if c.closing {
                return;
            }
            // Replies count toward max_pending as messages do (nats-server's
            // queueOutbound): a client that sends PINGs, or verbose ops, and
            // never reads is a slow consumer, not a buffer without end.
            if c.pending() + bytes.len() as u64 > self.max_pending {
                if self.slow.last() != Some(&key) {
                    self.slow.push(key);
                }
                return;
            }
            c.out.extend_from_slice(bytes);
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    pub(super) fn send_err(&mut self, key: usize, text: &str) {
        if let Some(c) = self.conns.get_mut(key) {
            if c.closing {
                return;
            }
            write_err(&mut c.out, text);
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    /// Deliver `msg` to subscription `sk`. Returns whether it was delivered.
    pub(super) fn deliver(&mut self, from: usize, sk: usize, msg: &Msg<'_>) -> bool {
        let Some(sub) = self.subs.get_mut(sk) else {
            return false;
        };
        if let Some(target) = sub.internal {
            if self.internal.len() < INTERNAL_QUEUE_MAX {
                self.internal.push_back(copy_internal(target, msg));
            }
            return true;
        }
        let Some(c) = self.conns.get_mut(sub.conn) else {
            return false;
        };
        if c.closing || (sub.conn == from && !c.opts.echo) {
            return false;
        }
        if c.deny_filter
            && c.permissions
                .as_ref()
                .is_some_and(|p| p.denies_delivery(msg.subject))
        {
            return false;
        }
        if sub.max > 0 && sub.delivered >= sub.max {
            return false;
        }
        sub.delivered += 1;
        if sub.max > 0 && sub.delivered == sub.max {
            self.expired.push(sk);
        }
        let headers = if c.opts.headers { msg.headers } else { None };
        let before = c.out.len();
        write_msg(
            &mut c.out,
            msg.subject,
            &sub.sid,
            msg.reply,
            headers,
            msg.payload,
        );
        let size = (headers.map_or(0, <[u8]>::len) + msg.payload.len()) as u64;
        c.out_msgs += 1;
        c.out_bytes += size;
        self.stats.out_msgs += 1;
        self.stats.out_bytes += size;
        let pending = c.pending();
        if pending > self.max_pending {
            c.out.truncate(before);
            self.slow.push(sub.conn);
            return true;
        }
        if pending > self.max_pending / 2
            && sub.conn != from
            && self.stalls.last() != Some(&(from, sub.conn))
        {
            self.stalls.push((from, sub.conn));
        }
        if !c.dirty {
            c.dirty = true;
            self.dirty.push(sub.conn);
        }
        true
    }
}

/// Copy a message for an internal service into one allocation.
fn copy_internal(target: InternalTarget, msg: &Msg<'_>) -> InternalMsg {
    let reply = msg.reply.unwrap_or(b"");
    let headers = msg.headers.unwrap_or(b"");
    let mut buf = BytesMut::with_capacity(
        msg.subject.len() + reply.len() + headers.len() + msg.payload.len(),
    );
    buf.extend_from_slice(msg.subject);
    buf.extend_from_slice(reply);
    buf.extend_from_slice(headers);
    buf.extend_from_slice(msg.payload);
    let all = buf.freeze();
    let (s, r, h) = (msg.subject.len(), reply.len(), headers.len());
    InternalMsg {
        target,
        subject: all.slice(..s),
        reply: msg.reply.map(|_| all.slice(s..s + r)),
        headers: msg.headers.map(|_| all.slice(s + r..s + r + h)),
        payload: all.slice(s + r + h..),
    }
}
