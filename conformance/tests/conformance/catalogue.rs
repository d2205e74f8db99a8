// The scenario catalogue run through an external client library's scenario
// program (`include!`d by go.rs and python.rs, which define `LIB`). Each
// scenario is one run of `<program> <name> <url>` that must print `OK`; see
// natrium_conformance::clients. Scenario names match the async-nats ones so
// the results table lines them up.

macro_rules! external_scenarios {
    ( $( $name:ident $( => $spec:expr )? ; )* ) => {
        $(
            async fn $name(s: &Server) {
                run_client(LIB, stringify!($name), s).await;
            }
        )*
        natrium_conformance::scenarios! {
            client = LIB.label();
            $( $name $( => $spec )? ; )*
            reconnect_after_restart;
        }
    };
}

external_scenarios! {
    pub_sub_ordering;
    wildcard_star;
    wildcard_full;
    queue_groups;
    request_reply;
    request_reply_old_style;
    no_responders;
    no_responders_after_unsubscribe;
    headers_multi_value;
    auto_unsubscribe;
    auto_unsubscribe_after_partial;
    max_msgs_exactly_once;
    subscription_drain;
    client_drain;
    flush_rtt;
    max_payload_client_side => Spec::config(configs::MAX_PAYLOAD_1024);
    config_users => Spec::config(configs::USERS_PLAIN);
    config_users_bcrypt => Spec::config(configs::USERS_BCRYPT);
    config_token => Spec::config(configs::TOKEN);
    js_stream_crud => Spec::jetstream();
    js_publish_acks => Spec::jetstream();
    js_limits_example => Spec::jetstream();
    js_get_and_purge => Spec::jetstream();
    js_pull_work_queue => Spec::jetstream();
    js_push_durable_resume => Spec::jetstream();
    js_deliver_policies => Spec::jetstream();
    js_nak_redelivery => Spec::jetstream();
    js_max_deliver => Spec::jetstream();
    js_kv_basic => Spec::jetstream();
    js_kv_watch => Spec::jetstream();
    js_object_store => Spec::jetstream();
}

/// The server is killed and restarted on the same port while the client is
/// subscribed; the client reconnects and its subscriptions resume.
async fn reconnect_after_restart(s: &Server) {
    run_client_reconnect(LIB, s).await;
}
