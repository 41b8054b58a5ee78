-- columns
events | seq | bigint | NO | None | YES
events | event_id | text | NO | None | NO
events | run_id | text | NO | None | NO
events | event_type | text | NO | None | NO
events | correlation_id | text | YES | None | NO
events | data | text | NO | None | NO
events | created_at | timestamp with time zone | NO | None | NO
events | spec_version | integer | NO | None | NO
hooks | hook_id | text | NO | None | NO
hooks | run_id | text | NO | None | NO
hooks | seq | bigint | NO | None | YES
hooks | token | text | NO | None | NO
hooks | status | text | NO | None | NO
hooks | metadata | text | YES | None | NO
hooks | is_webhook | boolean | NO | None | NO
hooks | respond_with | text | YES | None | NO
hooks | created_at | timestamp with time zone | NO | None | NO
hooks | updated_at | timestamp with time zone | NO | None | NO
queue_messages | message_id | text | NO | None | NO
queue_messages | seq | bigint | NO | None | YES
queue_messages | queue | text | NO | None | NO
queue_messages | payload | text | NO | None | NO
queue_messages | attempt | integer | NO | None | NO
queue_messages | idempotency_key | text | YES | None | NO
queue_messages | run_id | text | YES | None | NO
queue_messages | created_at | timestamp with time zone | NO | None | NO
queue_messages | visible_at | timestamp with time zone | NO | None | NO
runs | run_id | text | NO | None | NO
runs | workflow_name | text | NO | None | NO
runs | status | text | NO | None | NO
runs | input | text | YES | None | NO
runs | output | text | YES | None | NO
runs | error | text | YES | None | NO
runs | deployment_id | text | NO | None | NO
runs | execution_context | text | NO | None | NO
runs | spec_version | integer | NO | None | NO
runs | created_at | timestamp with time zone | NO | None | NO
runs | updated_at | timestamp with time zone | NO | None | NO
runs | started_at | timestamp with time zone | YES | None | NO
runs | completed_at | timestamp with time zone | YES | None | NO
runs | idempotency_key | text | YES | None | NO
runs | deadline_at | timestamp with time zone | YES | None | NO
runs | queue_name | text | YES | None | NO
runs | queue_key | text | YES | None | NO
runs | queue_priority | integer | YES | None | NO
runs | admitted_by | text | YES | None | NO
runs | last_event_id | text | YES | None | NO
schedules | schedule_id | text | NO | None | NO
schedules | workflow_name | text | NO | None | NO
schedules | cron | text | NO | None | NO
schedules | input | text | YES | None | NO
schedules | missed | text | NO | None | NO
schedules | status | text | NO | None | NO
schedules | last_tick_at | timestamp with time zone | YES | None | NO
schedules | created_at | timestamp with time zone | NO | None | NO
schedules | updated_at | timestamp with time zone | NO | None | NO
schema_history | seq | bigint | NO | None | YES
schema_history | version | integer | NO | None | NO
schema_history | summary | text | NO | None | NO
schema_history | applied_at | timestamp with time zone | NO | None | NO
schema_version | id | integer | NO | nextval('<schema>.schema_version_id_seq'::regclass) | NO
schema_version | version | integer | NO | None | NO
schema_version | updated_at | timestamp with time zone | NO | None | NO
steps | run_id | text | NO | None | NO
steps | step_id | text | NO | None | NO
steps | seq | bigint | NO | None | YES
steps | step_name | text | NO | None | NO
steps | status | text | NO | None | NO
steps | input | text | YES | None | NO
steps | output | text | YES | None | NO
steps | error | text | YES | None | NO
steps | attempt | integer | NO | None | NO
steps | retry_after | timestamp with time zone | YES | None | NO
steps | created_at | timestamp with time zone | NO | None | NO
steps | updated_at | timestamp with time zone | NO | None | NO
steps | started_at | timestamp with time zone | YES | None | NO
steps | completed_at | timestamp with time zone | YES | None | NO
stream_chunks | run_id | text | NO | None | NO
stream_chunks | name | text | NO | None | NO
stream_chunks | idx | integer | NO | None | NO
stream_chunks | data | bytea | NO | None | NO
stream_chunks | created_at | timestamp with time zone | NO | None | NO
streams | run_id | text | NO | None | NO
streams | name | text | NO | None | NO
streams | next_index | integer | NO | None | NO
streams | closed | boolean | NO | None | NO
streams | created_at | timestamp with time zone | NO | None | NO
streams | updated_at | timestamp with time zone | NO | None | NO
waits | run_id | text | NO | None | NO
waits | wait_id | text | NO | None | NO
waits | seq | bigint | NO | None | YES
waits | status | text | NO | None | NO
waits | resume_at | timestamp with time zone | NO | None | NO
waits | created_at | timestamp with time zone | NO | None | NO
waits | updated_at | timestamp with time zone | NO | None | NO
waits | completed_at | timestamp with time zone | YES | None | NO

-- constraints
<schema>.events | events_event_id_key | UNIQUE (event_id)
<schema>.events | events_pkey | PRIMARY KEY (seq)
<schema>.hooks | hooks_pkey | PRIMARY KEY (hook_id)
<schema>.queue_messages | queue_messages_pkey | PRIMARY KEY (message_id)
<schema>.runs | runs_pkey | PRIMARY KEY (run_id)
<schema>.schedules | schedules_pkey | PRIMARY KEY (schedule_id)
<schema>.schema_history | schema_history_pkey | PRIMARY KEY (seq)
<schema>.schema_version | schema_version_pkey | PRIMARY KEY (id)
<schema>.steps | steps_pkey | PRIMARY KEY (run_id, step_id)
<schema>.stream_chunks | stream_chunks_pkey | PRIMARY KEY (run_id, name, idx)
<schema>.streams | streams_pkey | PRIMARY KEY (run_id, name)
<schema>.waits | waits_pkey | PRIMARY KEY (run_id, wait_id)

-- indexes
events | events_creation_uq | CREATE UNIQUE INDEX events_creation_uq ON <schema>.events USING btree (run_id, event_type, COALESCE(correlation_id, ''::text)) WHERE (event_type = ANY (ARRAY['run_created'::text, 'step_created'::text, 'hook_created'::text, 'hook_conflict'::text, 'wait_created'::text]))
events | events_event_id_key | CREATE UNIQUE INDEX events_event_id_key ON <schema>.events USING btree (event_id)
events | events_pkey | CREATE UNIQUE INDEX events_pkey ON <schema>.events USING btree (seq)
events | events_run_seq | CREATE INDEX events_run_seq ON <schema>.events USING btree (run_id, seq)
hooks | hooks_active_token_uq | CREATE UNIQUE INDEX hooks_active_token_uq ON <schema>.hooks USING btree (token) WHERE (status = 'active'::text)
hooks | hooks_pkey | CREATE UNIQUE INDEX hooks_pkey ON <schema>.hooks USING btree (hook_id)
hooks | hooks_run | CREATE INDEX hooks_run ON <schema>.hooks USING btree (run_id, seq)
queue_messages | queue_messages_key_uq | CREATE UNIQUE INDEX queue_messages_key_uq ON <schema>.queue_messages USING btree (idempotency_key) WHERE (idempotency_key IS NOT NULL)
queue_messages | queue_messages_pkey | CREATE UNIQUE INDEX queue_messages_pkey ON <schema>.queue_messages USING btree (message_id)
queue_messages | queue_messages_run | CREATE INDEX queue_messages_run ON <schema>.queue_messages USING btree (run_id)
queue_messages | queue_messages_visible | CREATE INDEX queue_messages_visible ON <schema>.queue_messages USING btree (visible_at, seq)
runs | runs_deployment_status_run_id | CREATE INDEX runs_deployment_status_run_id ON <schema>.runs USING btree (deployment_id, status, run_id)
runs | runs_idempotency_key_uq | CREATE UNIQUE INDEX runs_idempotency_key_uq ON <schema>.runs USING btree (idempotency_key) WHERE (idempotency_key IS NOT NULL)
runs | runs_pkey | CREATE UNIQUE INDEX runs_pkey ON <schema>.runs USING btree (run_id)
runs | runs_queue_started | CREATE INDEX runs_queue_started ON <schema>.runs USING btree (queue_name, started_at) WHERE (queue_name IS NOT NULL)
runs | runs_queue_status | CREATE INDEX runs_queue_status ON <schema>.runs USING btree (queue_name, status, queue_priority, run_id) WHERE (queue_name IS NOT NULL)
runs | runs_status | CREATE INDEX runs_status ON <schema>.runs USING btree (status)
runs | runs_status_run_id | CREATE INDEX runs_status_run_id ON <schema>.runs USING btree (status, run_id)
runs | runs_workflow_name | CREATE INDEX runs_workflow_name ON <schema>.runs USING btree (workflow_name)
runs | runs_workflow_name_run_id | CREATE INDEX runs_workflow_name_run_id ON <schema>.runs USING btree (workflow_name, run_id)
schedules | schedules_pkey | CREATE UNIQUE INDEX schedules_pkey ON <schema>.schedules USING btree (schedule_id)
schema_history | schema_history_pkey | CREATE UNIQUE INDEX schema_history_pkey ON <schema>.schema_history USING btree (seq)
schema_version | schema_version_pkey | CREATE UNIQUE INDEX schema_version_pkey ON <schema>.schema_version USING btree (id)
steps | steps_pkey | CREATE UNIQUE INDEX steps_pkey ON <schema>.steps USING btree (run_id, step_id)
stream_chunks | stream_chunks_pkey | CREATE UNIQUE INDEX stream_chunks_pkey ON <schema>.stream_chunks USING btree (run_id, name, idx)
streams | streams_pkey | CREATE UNIQUE INDEX streams_pkey ON <schema>.streams USING btree (run_id, name)
waits | waits_pkey | CREATE UNIQUE INDEX waits_pkey ON <schema>.waits USING btree (run_id, wait_id)

-- triggers
queue_messages | queue_messages_notify | INSERT | AFTER | STATEMENT | EXECUTE FUNCTION <schema>.notify_queue()
streams | streams_notify | INSERT | AFTER | ROW | EXECUTE FUNCTION <schema>.notify_stream()
streams | streams_notify | UPDATE | AFTER | ROW | EXECUTE FUNCTION <schema>.notify_stream()

-- functions
notify_queue | CREATE OR REPLACE FUNCTION <schema>.notify_queue()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
            BEGIN PERFORM pg_notify('wfkit_q_<digest>', ''); RETURN NULL; END $function$

notify_stream | CREATE OR REPLACE FUNCTION <schema>.notify_stream()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
            DECLARE payload text := json_build_array(NEW.run_id, NEW.name)::text;
            BEGIN
                IF octet_length(payload) >= 7900 THEN payload := ''; END IF;
                PERFORM pg_notify('wfkit_s_<digest>', payload);
                RETURN NULL;
            END $function$

