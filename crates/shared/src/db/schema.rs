// The tables of `migrations/`, as diesel sees them. Keep in step with every migration;
// `db::tests::schema_matches_database` compares this file with a migrated database.

diesel::table! {
    tenants (id) {
        id -> Int8,
        context_id -> Text,
        environment -> Text,
        company_name -> Nullable<Text>,
        serial -> Nullable<Text>,
        webapi_url -> Nullable<Text>,
        netserver_url -> Nullable<Text>,
        state -> Text,
        state_reason -> Nullable<Text>,
        system_token_ciphertext -> Nullable<Bytea>,
        system_token_key_version -> Nullable<Int2>,
        token_captured_by -> Nullable<Text>,
        token_captured_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        token_generation -> Int4,
        next_attempt_at -> Nullable<Timestamptz>,
        failed_attempts -> Int4,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamptz>,
        last_success_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        last_error_at -> Nullable<Timestamptz>,
        token_issued_at -> Nullable<Timestamptz>,
        needs_attention -> Bool,
        attention_reason -> Nullable<Text>,
        attention_at -> Nullable<Timestamptz>,
        so_state -> Nullable<Text>,
        so_state_checked_at -> Nullable<Timestamptz>,
        so_not_running_since -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    tickets (context_id) {
        context_id -> Text,
        ciphertext -> Bytea,
        key_version -> Int2,
        token_generation -> Int4,
        issued_at -> Timestamptz,
        last_used_at -> Timestamptz,
        rejected_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    work_requests (id) {
        id -> Int8,
        context_id -> Text,
        kind -> Text,
        payload -> Jsonb,
        requested_by -> Text,
        idempotency_key -> Uuid,
        state -> Text,
        attempts -> Int4,
        result -> Nullable<Jsonb>,
        error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Int8,
        context_id -> Nullable<Text>,
        action -> Text,
        actor -> Text,
        detail -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    state_change_notifications (id) {
        id -> Int8,
        idempotency_key -> Text,
        context_id -> Text,
        change_type -> Text,
        token_issued_at -> Nullable<Timestamptz>,
        version_name -> Nullable<Text>,
        file_version -> Nullable<Text>,
        public_endpoint -> Nullable<Text>,
        outcome -> Text,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    web_sessions (id_hash) {
        id_hash -> Bytea,
        context_id -> Nullable<Text>,
        subject -> Nullable<Text>,
        state_ciphertext -> Bytea,
        key_version -> Int2,
        created_at -> Timestamptz,
        last_seen_at -> Timestamptz,
    }
}

diesel::table! {
    service_instances (id) {
        id -> Text,
        host -> Text,
        started_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        circuit_state -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    service_instances,
    tickets,
    work_requests,
    audit_events,
    state_change_notifications,
    web_sessions
);
