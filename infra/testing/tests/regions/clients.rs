//! How a scenario talks to the world from outside, as an observer: HTTP
//! requests bounded in time, the Admin API through the writer's address,
//! and Redis commands to any server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use adcast_shared::protocol::{headers, routes};
use adcast_testing::http::{try_send, TestResponse};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::Value;

use crate::world::{wait_until, ADMIN_TOKEN, STREAM_KEY};

/// One HTTP request on a new connection, bounded in time.
pub async fn get(
    address: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<TestResponse, String> {
    request(address, Method::GET, path, headers, None).await
}

pub async fn request(
    address: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Result<TestResponse, String> {
    match tokio::time::timeout(
        Duration::from_secs(10),
        try_send(address, method, path, headers, body.map(Bytes::from)),
    )
    .await
    {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer from {address} within 10 s")),
    }
}

pub fn items(response: &TestResponse) -> Vec<(String, String)> {
    response.json()["items"]
        .as_array()
        .expect("an items array")
        .iter()
        .map(|item| {
            (
                item["title"].as_str().expect("a title").to_owned(),
                item["endAt"].as_str().expect("an endAt").to_owned(),
            )
        })
        .collect()
}

/// What a write returned.
#[derive(Clone, Debug)]
pub struct Acked {
    pub seq: u64,
    pub id: i64,
    pub title: String,
}

/// The Admin API as the test's client sees it: through the `writer` link.
#[derive(Clone)]
pub struct Admin {
    pub address: SocketAddr,
}

impl Admin {
    fn auth() -> String {
        format!("Bearer {ADMIN_TOKEN}")
    }

    /// `POST /api/v1/ad`; `Err` for anything but a `201` (or its replay).
    pub async fn create(
        &self,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<(Acked, bool), String> {
        let auth = Self::auth();
        let mut headers = vec![
            ("content-type", "application/json"),
            ("authorization", auth.as_str()),
        ];
        if let Some(key) = idempotency_key {
            headers.push((headers::IDEMPOTENCY_KEY, key));
        }
        let response = request(
            self.address,
            Method::POST,
            routes::ADS,
            &headers,
            Some(body.to_string()),
        )
        .await?;
        if response.status != StatusCode::CREATED {
            return Err(format!(
                "{}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            ));
        }
        let json = response.json();
        let replayed = response.header(headers::IDEMPOTENT_REPLAYED) == Some("true");
        Ok((
            Acked {
                seq: response.seq(),
                id: json["id"].as_i64().expect("an id"),
                title: json["title"].as_str().expect("a title").to_owned(),
            },
            replayed,
        ))
    }

    /// `PUT /api/v1/ad/{id}`: the new change's sequence number.
    pub async fn replace(&self, id: i64, body: &Value) -> Result<u64, String> {
        let auth = Self::auth();
        let headers = [
            ("content-type", "application/json"),
            ("authorization", auth.as_str()),
        ];
        let path = format!("{}{id}", routes::AD_PREFIX);
        let response = request(
            self.address,
            Method::PUT,
            &path,
            &headers,
            Some(body.to_string()),
        )
        .await?;
        if response.status != StatusCode::OK {
            return Err(format!(
                "{}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            ));
        }
        Ok(response.seq())
    }

    /// `DELETE /api/v1/ad/{id}`: the new change's sequence number.
    pub async fn delete(&self, id: i64) -> Result<u64, String> {
        let auth = Self::auth();
        let path = format!("{}{id}", routes::AD_PREFIX);
        let response = request(
            self.address,
            Method::DELETE,
            &path,
            &[("authorization", auth.as_str())],
            None,
        )
        .await?;
        if response.status != StatusCode::NO_CONTENT {
            return Err(format!(
                "{}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            ));
        }
        Ok(response.seq())
    }
}

async fn redis_connection(
    address: SocketAddr,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://{address}"))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_secs(5));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

pub async fn wait_for_redis(address: SocketAddr) {
    wait_until(
        &format!("Redis at {address} answers"),
        Duration::from_secs(20),
        || async {
            match redis_connection(address).await {
                Ok(mut connection) => redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
                    .is_ok(),
                Err(_) => false,
            }
        },
    )
    .await;
}

/// `INFO` of a Redis server as `field → value` (empty when unreachable).
pub async fn redis_info(address: SocketAddr) -> BTreeMap<String, String> {
    let Ok(mut connection) = redis_connection(address).await else {
        return BTreeMap::new();
    };
    let text: String = redis::cmd("INFO")
        .query_async(&mut connection)
        .await
        .unwrap_or_default();
    text.lines()
        .filter_map(|line| line.trim().split_once(':'))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// A command to a Redis server, from the observer.
pub async fn redis_command<T: redis::FromRedisValue>(
    address: SocketAddr,
    command: &redis::Cmd,
) -> T {
    let mut connection = redis_connection(address)
        .await
        .unwrap_or_else(|error| panic!("connecting to Redis at {address}: {error}"));
    command
        .query_async(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("Redis at {address}: {error}"))
}

/// The sequence number of the stream's last entry on one server.
pub async fn stream_last(address: SocketAddr) -> u64 {
    let reply: redis::streams::StreamRangeReply = redis_command(
        address,
        redis::cmd("XREVRANGE")
            .arg(STREAM_KEY)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1),
    )
    .await;
    reply
        .ids
        .first()
        .and_then(|entry| adcast_shared::protocol::stream::parse_entry_id(&entry.id))
        .unwrap_or(0)
}
