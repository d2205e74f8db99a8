//! Connections and subscriptions: everything a delivery touches. Kept apart from
//! the subject index so a match result can be read while deliveries are made.

use super::conn::Conn;
use super::frames::{write_err, write_msg};
use super::Stats;
use slab::Slab;

/// One subscription.
pub(super) struct Sub {
    pub(super) conn: usize,
    pub(super) sid: Box<[u8]>,
    pub(super) subject: Box<[u8]>,
    pub(super) queue: Option<Box<[u8]>>,
    /// Auto-unsubscribe after this many deliveries; 0 = no limit.
    pub(super) max: u64,
    pub(super) delivered: u64,
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
}

impl Core {
    /// Queue bytes on a connection and note it has something to transmit.
    pub(super) fn send(&mut self, key: usize, bytes: &[u8]) {
        if let Some(c) = self.conns.get_mut(key) {
            if c.closing {
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
