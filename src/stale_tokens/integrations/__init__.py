"""Optional integrations, one module per extra so that each imports only its own dependency.

- `stale_tokens.integrations.smtp` (extra ``smtp``): `SmtpNotifier`.
- `stale_tokens.integrations.sql` (extra ``sql``, plus ``postgres`` for
  PostgreSQL): `SqlAuditSink`, `SqlActivitySource`,
  `SqlPersonalAccessTokenRevoker`.
- `stale_tokens.integrations.prometheus` (extra ``prometheus``): `PrometheusMetrics`.
- `stale_tokens.integrations.opentelemetry` (extra ``otel``): `OpenTelemetryMetrics`.

Importing a module without its extra raises `stale_tokens.MissingExtraError`,
which names the extra to install.
"""
