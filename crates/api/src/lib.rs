//! What crosses the network between ashiato services: request and answer types, their
//! limits, and the metrics exposition format.
//!
//! - [`probe`]: the probe's `/v1/query` and `/v1/status` (docs/protocol.md).
//! - [`federation`]: the domain controller's `/v1/trace` and the inter-domain `/v1/hop`,
//!   and the attack graph a trace yields (docs/protocol.md).
//! - [`metrics`]: the Prometheus text format every service's `/metrics` writes.
//!
//! Only serde: a client (a controller, the CLI) links these types without linking a server,
//! the digest tables or a capture library. The service stack that carries them (mutual TLS,
//! the bounded accept loop, the HTTP client) is `ashiato-net`.

pub mod federation;
pub mod metrics;
pub mod probe;
