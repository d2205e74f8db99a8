//! Authentication: user/password, token, config-file users.

use async_nats::{ConnectErrorKind, ConnectOptions};
use natrium_conformance::*;

natrium_conformance::scenarios! {
    user_password_flags => Spec::args(&["--user", "u", "--pass", "p"]);
    token_flag => Spec::args(&["--auth", "tok"]);
    config_users => Spec::config(configs::USERS_PLAIN);
    config_users_bcrypt => Spec::config(configs::USERS_BCRYPT);
    config_token => Spec::config(configs::TOKEN);
    raw_auth_violation => Spec::args(&["--user", "u", "--pass", "p"]);
}

async fn assert_works(c: &async_nats::Client) {
    let mut sub = c.subscribe("auth.check").await.unwrap();
    sync(c).await;
    c.publish("auth.check", "ok".into()).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.payload, "ok");
}

async fn assert_rejected(s: &Server, opts: ConnectOptions) {
    match within("rejected connect", s.try_connect_with(opts)).await {
        Ok(_) => panic!("connection with bad credentials must fail"),
        Err(e) => assert_eq!(e.kind(), ConnectErrorKind::AuthorizationViolation, "{e:?}"),
    }
}

/// A1, E2: `--user/--pass`: right credentials work, wrong or missing are rejected.
async fn user_password_flags(s: &Server) {
    let c = s
        .connect_with(ConnectOptions::with_user_and_password(
            "u".into(),
            "p".into(),
        ))
        .await;
    assert_works(&c).await;
    assert_rejected(
        s,
        ConnectOptions::with_user_and_password("u".into(), "wrong".into()),
    )
    .await;
    assert_rejected(
        s,
        ConnectOptions::with_user_and_password("x".into(), "p".into()),
    )
    .await;
    assert_rejected(s, ConnectOptions::new()).await;
}

/// A2, E2: `--auth <token>`: right token works, wrong or missing are rejected.
async fn token_flag(s: &Server) {
    let c = s
        .connect_with(ConnectOptions::with_token("tok".into()))
        .await;
    assert_works(&c).await;
    assert_rejected(s, ConnectOptions::with_token("nope".into())).await;
    assert_rejected(s, ConnectOptions::new()).await;
}

/// A3, E2: `authorization { users = [...] }` in a config file.
async fn config_users(s: &Server) {
    for (u, p) in [("a", "b"), ("c", "d")] {
        let c = s
            .connect_with(ConnectOptions::with_user_and_password(u.into(), p.into()))
            .await;
        assert_works(&c).await;
    }
    assert_rejected(
        s,
        ConnectOptions::with_user_and_password("a".into(), "d".into()),
    )
    .await;
    assert_rejected(
        s,
        ConnectOptions::with_user_and_password("z".into(), "b".into()),
    )
    .await;
    assert_rejected(s, ConnectOptions::new()).await;
}

/// A1, E2 (raw protocol): INFO advertises `auth_required`; a bad CONNECT gets
/// `-ERR 'Authorization Violation'` and the connection is closed.
async fn raw_auth_violation(s: &Server) {
    let mut c = s.raw().await;
    let info = c.read_info().await;
    assert_eq!(info["auth_required"], true, "{info}");
    c.send("CONNECT {\"verbose\":false,\"user\":\"u\",\"pass\":\"bad\"}\r\nPING\r\n")
        .await;
    assert_eq!(c.line().await, "-ERR 'Authorization Violation'");
    let rest = c.expect_closed(WAIT).await;
    assert!(rest.is_empty(), "nothing after the error, got {rest:?}");

    // With auth required, even a PING before CONNECT is refused.
    let mut early = s.raw().await;
    early.read_info().await;
    early.send("PING\r\n").await;
    assert_eq!(early.line().await, "-ERR 'Authorization Violation'");
    early.expect_closed(WAIT).await;

    let mut ok = s.raw().await;
    ok.read_info().await;
    ok.send("CONNECT {\"verbose\":false,\"user\":\"u\",\"pass\":\"p\"}\r\nPING\r\n")
        .await;
    assert_eq!(ok.line().await, "PONG");
}

/// A3, E2: a users list mixing a plain and a bcrypt password: both users get
/// in; a wrong password, or the hash itself as the password, is rejected.
async fn config_users_bcrypt(s: &Server) {
    for (u, p) in [("plain", "plainpass"), ("hashed", configs::BCRYPT_PASSWORD)] {
        let c = s
            .connect_with(ConnectOptions::with_user_and_password(u.into(), p.into()))
            .await;
        assert_works(&c).await;
    }
    for (u, p) in [
        ("hashed", "wrong"),
        ("hashed", configs::BCRYPT_HASH),
        ("plain", configs::BCRYPT_PASSWORD),
    ] {
        assert_rejected(
            s,
            ConnectOptions::with_user_and_password(u.into(), p.into()),
        )
        .await;
    }
    assert_rejected(s, ConnectOptions::new()).await;
}

/// A2, E2: `authorization { token: ... }` in a config file.
async fn config_token(s: &Server) {
    let c = s
        .connect_with(ConnectOptions::with_token("s3cr3t-token".into()))
        .await;
    assert_works(&c).await;
    assert_rejected(s, ConnectOptions::with_token("nope".into())).await;
    assert_rejected(s, ConnectOptions::new()).await;
}
