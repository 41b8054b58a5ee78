-- table events
CREATE TABLE events (
	seq INTEGER NOT NULL, 
	event_id TEXT NOT NULL, 
	run_id TEXT NOT NULL, 
	event_type TEXT NOT NULL, 
	correlation_id TEXT, 
	data TEXT NOT NULL, 
	created_at TEXT NOT NULL, 
	spec_version INTEGER NOT NULL, 
	PRIMARY KEY (seq), 
	UNIQUE (event_id)
);

-- table hooks
CREATE TABLE hooks (
	hook_id TEXT NOT NULL, 
	run_id TEXT NOT NULL, 
	token TEXT NOT NULL, 
	status TEXT NOT NULL, 
	metadata TEXT NOT NULL, 
	is_webhook INTEGER NOT NULL, 
	respond_with TEXT NOT NULL, 
	created_at TEXT NOT NULL, 
	updated_at TEXT NOT NULL, 
	PRIMARY KEY (hook_id)
);

-- table queue_messages
CREATE TABLE queue_messages (
	message_id TEXT NOT NULL, 
	seq INTEGER NOT NULL, 
	queue TEXT NOT NULL, 
	payload TEXT NOT NULL, 
	attempt INTEGER NOT NULL, 
	idempotency_key TEXT, 
	run_id TEXT, 
	created_at TEXT NOT NULL, 
	visible_at FLOAT NOT NULL, 
	PRIMARY KEY (seq), 
	UNIQUE (message_id), 
	UNIQUE (idempotency_key)
);

-- table runs
CREATE TABLE runs (
	run_id TEXT NOT NULL, 
	workflow_name TEXT NOT NULL, 
	status TEXT NOT NULL, 
	input TEXT NOT NULL, 
	output TEXT NOT NULL, 
	error TEXT NOT NULL, 
	deployment_id TEXT NOT NULL, 
	execution_context TEXT NOT NULL, 
	spec_version INTEGER NOT NULL, 
	created_at TEXT NOT NULL, 
	updated_at TEXT NOT NULL, 
	started_at TEXT, 
	completed_at TEXT, 
	idempotency_key TEXT, 
	deadline_at TEXT, 
	queue_name TEXT, 
	queue_key TEXT, 
	queue_priority INTEGER, 
	admitted_by TEXT, 
	PRIMARY KEY (run_id)
);

-- table schedules
CREATE TABLE schedules (
	schedule_id TEXT NOT NULL, 
	workflow_name TEXT NOT NULL, 
	cron TEXT NOT NULL, 
	input TEXT NOT NULL, 
	missed TEXT NOT NULL, 
	status TEXT NOT NULL, 
	last_tick_at TEXT, 
	created_at TEXT NOT NULL, 
	updated_at TEXT NOT NULL, 
	PRIMARY KEY (schedule_id)
);

-- table schema_history
CREATE TABLE schema_history (
	seq INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	summary TEXT NOT NULL, 
	applied_at TEXT NOT NULL, 
	PRIMARY KEY (seq)
);

-- table schema_version
CREATE TABLE schema_version (
	id INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	PRIMARY KEY (id)
);

-- table steps
CREATE TABLE steps (
	run_id TEXT NOT NULL, 
	step_id TEXT NOT NULL, 
	step_name TEXT NOT NULL, 
	status TEXT NOT NULL, 
	input TEXT NOT NULL, 
	output TEXT NOT NULL, 
	error TEXT NOT NULL, 
	attempt INTEGER NOT NULL, 
	retry_after TEXT, 
	created_at TEXT NOT NULL, 
	updated_at TEXT NOT NULL, 
	started_at TEXT, 
	completed_at TEXT, 
	PRIMARY KEY (run_id, step_id)
);

-- table stream_chunks
CREATE TABLE stream_chunks (
	run_id TEXT NOT NULL, 
	name TEXT NOT NULL, 
	chunk_index INTEGER NOT NULL, 
	data BLOB NOT NULL, 
	PRIMARY KEY (run_id, name, chunk_index)
);

-- table streams
CREATE TABLE streams (
	run_id TEXT NOT NULL, 
	name TEXT NOT NULL, 
	next_index INTEGER NOT NULL, 
	closed INTEGER NOT NULL, 
	PRIMARY KEY (run_id, name)
);

-- table waits
CREATE TABLE waits (
	run_id TEXT NOT NULL, 
	wait_id TEXT NOT NULL, 
	status TEXT NOT NULL, 
	resume_at TEXT NOT NULL, 
	created_at TEXT NOT NULL, 
	updated_at TEXT NOT NULL, 
	completed_at TEXT, 
	PRIMARY KEY (run_id, wait_id)
);

-- index events_by_run
CREATE INDEX events_by_run ON events (run_id, seq);

-- index events_one_creation
CREATE UNIQUE INDEX events_one_creation ON events (run_id, correlation_id, event_type) WHERE event_type = 'step_created' OR event_type = 'hook_created' OR event_type = 'hook_conflict' OR event_type = 'wait_created';

-- index events_one_run_created
CREATE UNIQUE INDEX events_one_run_created ON events (run_id) WHERE event_type = 'run_created';

-- index hooks_active_token
CREATE UNIQUE INDEX hooks_active_token ON hooks (token) WHERE status = 'active';

-- index hooks_by_run
CREATE INDEX hooks_by_run ON hooks (run_id);

-- index queue_by_run
CREATE INDEX queue_by_run ON queue_messages (run_id);

-- index queue_by_visibility
CREATE INDEX queue_by_visibility ON queue_messages (visible_at);

-- index runs_by_deployment
CREATE INDEX runs_by_deployment ON runs (deployment_id, status, run_id);

-- index runs_by_idempotency_key
CREATE UNIQUE INDEX runs_by_idempotency_key ON runs (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- index runs_by_queue
CREATE INDEX runs_by_queue ON runs (queue_name, status, queue_priority, run_id) WHERE queue_name IS NOT NULL;

-- index runs_by_queue_start
CREATE INDEX runs_by_queue_start ON runs (queue_name, started_at) WHERE queue_name IS NOT NULL;

-- index runs_by_status
CREATE INDEX runs_by_status ON runs (status);

-- index runs_by_status_id
CREATE INDEX runs_by_status_id ON runs (status, run_id);

-- index runs_by_workflow
CREATE INDEX runs_by_workflow ON runs (workflow_name);

-- index runs_by_workflow_id
CREATE INDEX runs_by_workflow_id ON runs (workflow_name, run_id);

