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

diesel::allow_tables_to_appear_in_same_query!(tenants, audit_events);
