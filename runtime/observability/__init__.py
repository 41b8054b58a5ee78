"""Operating a worker: logs (``logs``), OpenTelemetry spans (``tracing``) and metrics (``metrics``).

The engine and the client call these hooks at the moments an operator cares about
(a step attempt, a run handled, a retry, a failure). Logs go through stdlib
``logging`` under ``wfkit.*``. Spans and metrics exist only when the application
configured OpenTelemetry (``pip install 'wfkit[otel]'`` plus the SDK's set-up);
otherwise every hook returns at once (``otel`` says how that is decided).
"""
