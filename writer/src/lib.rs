//! adcast-writer: the central write service.
//!
//! A request goes `server` (hyper + tower layers) → `routes` (auth, method,
//! handler) → `store` (one PostgreSQL transaction: advisory lock, next
//! sequence number, ad row, outbox row) → answer with `Adcast-Seq`. After the
//! commit the handler wakes the `relay`, which copies outbox rows the Redis
//! Stream lacks, in order, as entries `<seq>-0`. `snapshots` writes compacted
//! state files for edges and trims what they make unnecessary. `catalog`
//! holds the bulk queries of the ad operations (preview, explain, import,
//! export) and `bulk` splits an import into its ads; `cli` is the `import`
//! and `export` commands, clients of a running writer. `state` is what every
//! handler may use; `startup` builds it and wires the parts
//! together from `config`; `metrics` and `telemetry` report on them.
//! `heartbeat` tells edges, through the stream's Redis, how current the
//! stream is. `console` serves the web console's static files at `/admin/`.
//! `auth` holds the tokens and their scopes; `audit` records who made each
//! change, in the change's transaction.

#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod body;
pub mod bulk;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod console;
pub mod heartbeat;
pub mod metrics;
pub mod relay;
pub mod response;
pub mod routes;
pub mod schema;
pub mod server;
pub mod snapshots;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
