//! Server configurations shared by the async-nats, nats.go and nats-py
//! scenarios. The credentials are also hard-coded in the client programs
//! (`clients/go/.../main.go`, `clients/python/scenario.py`).

/// `max_payload: 1024`.
pub const MAX_PAYLOAD_1024: &str = "max_payload: 1024\n";

/// Users `a`/`b` and `c`/`d` with plain passwords.
pub const USERS_PLAIN: &str =
    "authorization {\n  users = [\n    {user: a, password: b}\n    {user: c, password: d}\n  ]\n}\n";

/// Password of user `hashed` in [`USERS_BCRYPT`].
pub const BCRYPT_PASSWORD: &str = "s3cret";
/// bcrypt (cost 10) of [`BCRYPT_PASSWORD`], made with golang.org/x/crypto/bcrypt.
pub const BCRYPT_HASH: &str = "$2a$10$0kdsqr7Uqdy3xug/sG.v1.ErK3dTDoLXSvrJUxk1/ZzsrYRbxSUXG";

/// User `plain`/`plainpass` and user `hashed` whose password is stored as a
/// bcrypt hash of `s3cret`.
pub const USERS_BCRYPT: &str = "authorization {\n  users = [\n    {user: plain, password: plainpass}\n    {user: hashed, password: \"$2a$10$0kdsqr7Uqdy3xug/sG.v1.ErK3dTDoLXSvrJUxk1/ZzsrYRbxSUXG\"}\n  ]\n}\n";

/// Token authentication from a config file: token `s3cr3t-token`.
pub const TOKEN: &str = "authorization {\n  token: \"s3cr3t-token\"\n}\n";
