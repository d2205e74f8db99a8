//! Client authentication (rows A1–A4, A9) and subject permissions (rows A6, A8).
//! Owns the configured credentials; knows nothing about sockets or routing.

use crate::config::{AuthConfig, Permissions, SubjectPermission};
use crate::subject::subject_matches;

/// Credentials from a client's CONNECT.
pub(crate) struct Credentials<'a> {
    pub user: Option<&'a str>,
    pub pass: Option<&'a str>,
    pub token: Option<&'a str>,
}

/// One allow or deny entry: a subject pattern, and for subscribe entries written
/// as `"subject queue"`, the queue group it is limited to.
#[derive(Debug, Clone)]
struct Entry {
    subject: Box<[u8]>,
    queue: Option<Box<[u8]>>,
}

impl Entry {
    fn parse(s: &str) -> Entry {
        let mut parts = s.split_whitespace();
        let subject = parts.next().unwrap_or("").as_bytes().into();
        let queue = parts.next().map(|q| q.as_bytes().into());
        Entry { subject, queue }
    }

    fn covers(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        if let Some(q) = &self.queue {
            if queue != Some(&**q) {
                return false;
            }
        }
        subject_matches(&self.subject, subject)
    }
}

#[derive(Debug, Clone, Default)]
struct List {
    allow: Option<Vec<Entry>>,
    deny: Vec<Entry>,
}

impl List {
    fn compile(p: &SubjectPermission) -> List {
        let allow = if p.allow.is_empty() {
            None
        } else {
            Some(p.allow.iter().map(|s| Entry::parse(s)).collect())
        };
        List {
            allow,
            deny: p.deny.iter().map(|s| Entry::parse(s)).collect(),
        }
    }

    /// Deny wins; with no allow list everything not denied is allowed.
    fn permits(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        if let Some(allow) = &self.allow {
            if !allow.iter().any(|e| e.covers(subject, queue)) {
                return false;
            }
        }
        !self.deny.iter().any(|e| e.covers(subject, queue))
    }
}

/// Publish and subscribe permissions of one authenticated user.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompiledPermissions {
    publish: Option<List>,
    subscribe: Option<List>,
}

impl CompiledPermissions {
    fn compile(p: &Permissions) -> CompiledPermissions {
        CompiledPermissions {
            publish: p.publish.as_ref().map(List::compile),
            subscribe: p.subscribe.as_ref().map(List::compile),
        }
    }

    pub fn can_publish(&self, subject: &[u8]) -> bool {
        self.publish
            .as_ref()
            .is_none_or(|l| l.permits(subject, None))
    }

    pub fn can_subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        self.subscribe
            .as_ref()
            .is_none_or(|l| l.permits(subject, queue))
    }
    /// Whether an allowed subscription to `subject` may receive messages on
    /// subjects the subscribe deny list forbids: `subject` has a wildcard token
    /// and some deny entry is a subset of it. nats-server then filters every
    /// later delivery to the connection through the deny list
    /// (`canSubscribe` / `loadMsgDenyFilter`); see [`Self::denies_delivery`].
    pub fn sub_deny_overlaps(&self, subject: &[u8]) -> bool {
        let Some(l) = &self.subscribe else {
            return false;
        };
        subject
            .split(|&b| b == b'.')
            .any(|t| t == b"*" || t == b">")
            && l.deny.iter().any(|e| is_subset_match(&e.subject, subject))
    }

    /// Whether a message on `subject` is withheld from a connection whose deny
    /// filter is on (`checkDenySub`). Entries limited to a queue never match.
    pub fn denies_delivery(&self, subject: &[u8]) -> bool {
        self.subscribe.as_ref().is_some_and(|l| {
            l.deny
                .iter()
                .any(|e| e.queue.is_none() && subject_matches(&e.subject, subject))
        })
    }
}

/// nats-server's `isSubsetMatchTokenized(tokens(subject), tokens(test))`: every
/// subject `subject` matches is also matched by `test` (both may hold wildcards).
fn is_subset_match(subject: &[u8], test: &[u8]) -> bool {
    let tokens: Vec<&[u8]> = subject.split(|&b| b == b'.').collect();
    let test: Vec<&[u8]> = test.split(|&b| b == b'.').collect();
    for (i, t2) in test.iter().enumerate() {
        let Some(t1) = tokens.get(i) else {
            return false;
        };
        if t2.is_empty() {
            return false;
        }
        if *t2 == b">" {
            return true;
        }
        if t1.is_empty() || *t1 == b">" {
            return false;
        }
        if *t1 == b"*" {
            if *t2 != b"*" {
                return false;
            }
            continue;
        }
        // As in Go, only the first byte of `t2` is looked at for `*`.
        if t2[0] != b'*' && t1 != t2 {
            return false;
        }
    }
    tokens.len() == test.len()
}

struct UserEntry {
    name: String,
    password: String,
    permissions: Option<std::sync::Arc<CompiledPermissions>>,
}

/// The server's authenticator.
pub(crate) struct Authenticator {
    users: Vec<UserEntry>,
    single: Option<(String, String)>,
    token: Option<String>,
    no_auth_user: Option<String>,
    /// bcrypt is slow on purpose; remember the last few (hash, password) pairs that
    /// verified so a reconnect storm does not stall the engine. Bounded.
    bcrypt_ok: Vec<(String, String)>,
}

const BCRYPT_CACHE: usize = 64;

/// The outcome of a successful authentication.
pub(crate) type Grant = Option<std::sync::Arc<CompiledPermissions>>;

impl Authenticator {
    pub fn new(cfg: &AuthConfig) -> Authenticator {
        let default = cfg
            .default_permissions
            .as_ref()
            .map(|p| std::sync::Arc::new(CompiledPermissions::compile(p)));
        let users = cfg
            .users
            .iter()
            .map(|u| UserEntry {
                name: u.user.clone(),
                password: u.password.clone(),
                permissions: match &u.permissions {
                    Some(p) => Some(std::sync::Arc::new(CompiledPermissions::compile(p))),
                    None => default.clone(),
                },
            })
            .collect();
        let single = match (&cfg.user, &cfg.password) {
            (Some(u), p) if cfg.users.is_empty() => {
                Some((u.clone(), p.clone().unwrap_or_default()))
            }
            _ => None,
        };
        Authenticator {
            users,
            single,
            token: cfg.token.clone(),
            no_auth_user: cfg.no_auth_user.clone(),
            bcrypt_ok: Vec::new(),
        }
    }

    /// Whether clients must authenticate before anything else.
    pub fn required(&self) -> bool {
        !self.users.is_empty() || self.single.is_some() || self.token.is_some()
    }

    /// Whether a client that sends no credentials is bound to `no_auth_user`.
    pub fn has_no_auth_user(&self) -> bool {
        self.no_auth_user
            .as_ref()
            .is_some_and(|n| self.users.iter().any(|u| &u.name == n))
    }

    /// Check a CONNECT's credentials. `Err(())` is an authorization violation.
    pub fn authenticate(&mut self, c: &Credentials<'_>) -> Result<Grant, ()> {
        if !self.users.is_empty() {
            let no_creds =
                c.user.is_none_or(str::is_empty) && c.pass.is_none() && c.token.is_none();
            if no_creds {
                if let Some(n) = &self.no_auth_user {
                    if let Some(u) = self.users.iter().find(|u| &u.name == n) {
                        return Ok(u.permissions.clone());
                    }
                }
            }
            let name = c.user.ok_or(())?;
            let idx = self.users.iter().position(|u| u.name == name).ok_or(())?;
            let hash = self.users[idx].password.clone();
            if self.password_ok(&hash, c.pass.unwrap_or("")) {
                return Ok(self.users[idx].permissions.clone());
            }
            return Err(());
        }
        if let Some((user, pass)) = self.single.clone() {
            let name_ok = constant_time_eq(c.user.unwrap_or("").as_bytes(), user.as_bytes());
            return if name_ok && self.password_ok(&pass, c.pass.unwrap_or("")) {
                Ok(None)
            } else {
                Err(())
            };
        }
        if let Some(token) = self.token.clone() {
            return if self.password_ok(&token, c.token.unwrap_or("")) {
                Ok(None)
            } else {
                Err(())
            };
        }
        Ok(None)
    }

    fn password_ok(&mut self, configured: &str, given: &str) -> bool {
        if !is_bcrypt(configured) {
            return constant_time_eq(configured.as_bytes(), given.as_bytes());
        }
        if self
            .bcrypt_ok
            .iter()
            .any(|(h, p)| h == configured && constant_time_eq(p.as_bytes(), given.as_bytes()))
        {
            return true;
        }
        let ok = bcrypt::verify(given, configured).unwrap_or(false);
        if ok {
            if self.bcrypt_ok.len() >= BCRYPT_CACHE {
                self.bcrypt_ok.remove(0);
            }
            self.bcrypt_ok
                .push((configured.to_string(), given.to_string()));
        }
        ok
    }
}

/// nats-server treats a configured secret as bcrypt when it looks like `$2a$NN$…`.
fn is_bcrypt(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 7
        && b[0] == b'$'
        && b[1] == b'2'
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::User;

    fn perms(
        pub_allow: &[&str],
        pub_deny: &[&str],
        sub_allow: &[&str],
        sub_deny: &[&str],
    ) -> Permissions {
        let l = |a: &[&str], d: &[&str]| SubjectPermission {
            allow: a.iter().map(|s| s.to_string()).collect(),
            deny: d.iter().map(|s| s.to_string()).collect(),
        };
        Permissions {
            publish: Some(l(pub_allow, pub_deny)),
            subscribe: Some(l(sub_allow, sub_deny)),
        }
    }

    // A6: a wildcard subscription overlapping the subscribe deny list turns on
    // nats-server's per-connection delivery filter.
    #[test]
    fn subscribe_deny_delivery_filter() {
        let p =
            CompiledPermissions::compile(&perms(&[], &[], &["foo.>"], &["foo.hidden", "foo.q q"]));
        assert!(p.sub_deny_overlaps(b"foo.*"));
        assert!(p.sub_deny_overlaps(b"foo.>"));
        assert!(p.sub_deny_overlaps(b">"));
        assert!(
            !p.sub_deny_overlaps(b"foo.hidden"),
            "literal subscriptions never do"
        );
        assert!(!p.sub_deny_overlaps(b"foo.*.x"));
        assert!(!p.sub_deny_overlaps(b"bar.*"));
        assert!(p.denies_delivery(b"foo.hidden"));
        assert!(
            !p.denies_delivery(b"foo.q"),
            "queue-limited entries never match"
        );
        assert!(!p.denies_delivery(b"foo.ok"));
        assert!(is_subset_match(b"foo.*", b"*.*"));
        assert!(!is_subset_match(b"foo.*", b"foo.bar"));
        assert!(!is_subset_match(b"foo.>", b"foo.*"));
    }

    // A6: allow lists, deny lists, deny wins, queue-qualified subscribe entries.
    #[test]
    fn permissions_allow_and_deny() {
        let p = CompiledPermissions::compile(&perms(
            &["foo.>"],
            &["foo.secret"],
            &["bar.*", "q.* workers"],
            &["bar.x"],
        ));
        assert!(p.can_publish(b"foo.a"));
        assert!(!p.can_publish(b"foo.secret"));
        assert!(!p.can_publish(b"other"));
        assert!(p.can_subscribe(b"bar.y", None));
        assert!(!p.can_subscribe(b"bar.x", None));
        assert!(p.can_subscribe(b"q.a", Some(b"workers")));
        assert!(!p.can_subscribe(b"q.a", Some(b"others")));
        assert!(!p.can_subscribe(b"q.a", None));
        let deny_only = CompiledPermissions::compile(&perms(&[], &["x"], &[], &[]));
        assert!(deny_only.can_publish(b"y") && !deny_only.can_publish(b"x"));
    }

    // A1, A2, A3, A4, A9.
    #[test]
    fn authenticates_each_mode() {
        let creds = |u: Option<&'static str>, p: Option<&'static str>, t: Option<&'static str>| {
            Credentials {
                user: u,
                pass: p,
                token: t,
            }
        };
        let mut single = Authenticator::new(&AuthConfig {
            user: Some("u".into()),
            password: Some("p".into()),
            ..Default::default()
        });
        assert!(single.required());
        assert!(single
            .authenticate(&creds(Some("u"), Some("p"), None))
            .is_ok());
        assert!(single
            .authenticate(&creds(Some("u"), Some("x"), None))
            .is_err());
        assert!(single.authenticate(&creds(None, None, None)).is_err());

        let mut token = Authenticator::new(&AuthConfig {
            token: Some("s3cr3t".into()),
            ..Default::default()
        });
        assert!(token
            .authenticate(&creds(None, None, Some("s3cr3t")))
            .is_ok());
        assert!(token
            .authenticate(&creds(None, None, Some("nope")))
            .is_err());

        let hash = bcrypt::hash("pw", 4).unwrap();
        let cfg = AuthConfig {
            users: vec![
                User {
                    user: "a".into(),
                    password: hash,
                    permissions: None,
                },
                User {
                    user: "b".into(),
                    password: "plain".into(),
                    permissions: Some(perms(&["x"], &[], &[], &[])),
                },
            ],
            no_auth_user: Some("b".into()),
            ..Default::default()
        };
        let mut users = Authenticator::new(&cfg);
        assert!(users
            .authenticate(&creds(Some("a"), Some("pw"), None))
            .unwrap()
            .is_none());
        assert!(
            users
                .authenticate(&creds(Some("a"), Some("pw"), None))
                .is_ok(),
            "cached bcrypt result"
        );
        assert!(users
            .authenticate(&creds(Some("a"), Some("bad"), None))
            .is_err());
        assert!(users
            .authenticate(&creds(Some("zz"), Some("pw"), None))
            .is_err());
        let grant = users
            .authenticate(&creds(None, None, None))
            .unwrap()
            .expect("no_auth_user permissions");
        assert!(grant.can_publish(b"x") && !grant.can_publish(b"y"));
        assert!(users.has_no_auth_user());
    }
}
