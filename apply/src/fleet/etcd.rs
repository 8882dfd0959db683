//! etcd v3 through its JSON gateway (`POST /v3/kv/...`): keys and values
//! base64, 64-bit numbers as strings. Plain HTTP with minreq: a deadline
//! on every request and a cap on every answer, so that a stuck or hostile
//! endpoint can neither hang `auto` nor fill its memory.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::FleetError;

/// Seconds one request may take, connecting included.
const TIMEOUT_SECS: u64 = 5;
/// The largest answer read: a group's keys are a few hundred bytes each.
const ANSWER_MAX: u64 = 1 << 20;
/// Most keys one range returns (slots are at most 1000).
pub const RANGE_LIMIT: u64 = 2048;

/// Requests sent since the process started (the benchmark's round trips).
static ROUND_TRIPS: AtomicU64 = AtomicU64::new(0);

pub fn round_trips() -> u64 {
    ROUND_TRIPS.load(Ordering::Relaxed)
}

/// The endpoints of one etcd cluster; each request goes to the first that
/// answers.
pub struct Client<'a> {
    pub endpoints: &'a [String],
}

/// One key as a range returns it.
#[derive(Debug, Clone)]
pub struct Kv {
    pub key: String,
    pub value: String,
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

fn unb64(v: Option<&Value>) -> Option<String> {
    let text = v?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// The key after every key starting with `prefix`: a range's end.
fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    if let Some(last) = bytes.last_mut() {
        // Our prefixes end in '/', never 0xff.
        *last += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A comparison in a transaction.
#[derive(Debug, Clone, Serialize)]
pub struct Compare {
    key: String,
    target: &'static str,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    create_revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

impl Compare {
    /// True when `key` does not exist.
    pub fn absent(key: &str) -> Compare {
        Compare {
            key: b64(key),
            target: "CREATE",
            result: "EQUAL",
            create_revision: Some("0".into()),
            value: None,
        }
    }

    /// True when `key` holds `value`.
    pub fn holds(key: &str, value: &str) -> Compare {
        Compare {
            key: b64(key),
            target: "VALUE",
            result: "EQUAL",
            create_revision: None,
            value: Some(b64(value)),
        }
    }
}

/// An operation in a transaction.
pub enum Op<'a> {
    Put(&'a str, &'a str),
    Delete(&'a str),
}

impl Op<'_> {
    fn json(&self) -> Value {
        match self {
            Op::Put(k, v) => json!({"request_put": {"key": b64(k), "value": b64(v)}}),
            Op::Delete(k) => json!({"request_delete_range": {"key": b64(k)}}),
        }
    }
}

#[derive(Deserialize)]
struct RangeAnswer {
    #[serde(default)]
    kvs: Vec<Value>,
}

impl Client<'_> {
    /// Every key under `prefix`, in key order.
    pub fn range_prefix(&self, prefix: &str) -> Result<Vec<Kv>, FleetError> {
        let body = json!({
            "key": b64(prefix),
            "range_end": b64(&prefix_end(prefix)),
            "limit": RANGE_LIMIT.to_string(),
        });
        let (endpoint, answer) = self.post("/v3/kv/range", &body)?;
        let answer: RangeAnswer =
            serde_json::from_value(answer).map_err(|e| FleetError::protocol(&endpoint, &e))?;
        let mut kvs = Vec::new();
        for kv in &answer.kvs {
            let (Some(key), Some(value)) = (unb64(kv.get("key")), unb64(kv.get("value"))) else {
                return Err(FleetError::protocol(
                    &endpoint,
                    &"a key or value is not base64 text",
                ));
            };
            kvs.push(Kv { key, value });
        }
        Ok(kvs)
    }

    /// A transaction: `ops` when every comparison holds; true if they did.
    pub fn txn(&self, compare: &[Compare], ops: &[Op]) -> Result<bool, FleetError> {
        let success: Vec<Value> = ops.iter().map(Op::json).collect();
        let body = json!({"compare": compare, "success": success, "failure": []});
        let (_, answer) = self.post("/v3/kv/txn", &body)?;
        Ok(answer
            .get("succeeded")
            .and_then(Value::as_bool)
            .unwrap_or(false))
    }

    /// Removes `key`; true when it was there.
    pub fn delete(&self, key: &str) -> Result<bool, FleetError> {
        let (_, answer) = self.post("/v3/kv/deleterange", &json!({"key": b64(key)}))?;
        Ok(number(answer.get("deleted")).unwrap_or(0) > 0)
    }

    /// Sends to the first endpoint that answers; returns it and the answer.
    fn post(&self, path: &str, body: &Value) -> Result<(String, Value), FleetError> {
        let mut failures = Vec::new();
        for endpoint in self.endpoints {
            match post_one(endpoint, path, body) {
                Ok(answer) => return Ok((endpoint.clone(), answer)),
                Err(Attempt::Unreachable(why)) => failures.push(format!("{endpoint}: {why}")),
                Err(Attempt::Refused(why)) => return Err(FleetError::protocol(endpoint, &why)),
            }
        }
        Err(FleetError::Unreachable {
            why: failures.join("; "),
        })
    }
}

/// A 64-bit number as the gateway writes it (a string) or as a number.
fn number(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

enum Attempt {
    /// No answer: try the next endpoint.
    Unreachable(String),
    /// An answer that is not what etcd says: stop.
    Refused(String),
}

fn post_one(endpoint: &str, path: &str, body: &Value) -> Result<Value, Attempt> {
    ROUND_TRIPS.fetch_add(1, Ordering::Relaxed);
    let url = format!("{}{path}", endpoint.trim_end_matches('/'));
    let response = minreq::post(url)
        .with_header("Content-Type", "application/json")
        .with_body(body.to_string())
        .with_timeout(TIMEOUT_SECS)
        .with_max_headers_size(64 << 10)
        .with_max_status_line_length(1024)
        .with_max_redirects(0)
        .send_lazy()
        .map_err(|e| Attempt::Unreachable(e.to_string()))?;
    let status = response.status_code;
    let mut bytes = Vec::new();
    Read::take(response, ANSWER_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Attempt::Unreachable(e.to_string()))?;
    if bytes.len() as u64 > ANSWER_MAX {
        return Err(Attempt::Refused(format!(
            "an answer larger than {ANSWER_MAX} bytes"
        )));
    }
    let text = String::from_utf8_lossy(&bytes);
    if status != 200 {
        let said: String = text.chars().take(200).collect();
        return Err(Attempt::Refused(format!("HTTP {status}: {said}")));
    }
    serde_json::from_str(&text).map_err(|e| Attempt::Refused(format!("not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_key() {
        assert_eq!(prefix_end("/a/b/"), "/a/b0");
    }

    #[test]
    fn numbers_come_as_strings_or_numbers() {
        assert_eq!(number(Some(&json!("12"))), Some(12));
        assert_eq!(number(Some(&json!(7))), Some(7));
        assert_eq!(number(Some(&json!(null))), None);
    }

    #[test]
    fn nobody_listening_is_unreachable_at_once() {
        // A port just taken and given back: nobody listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let endpoints = vec![format!("http://127.0.0.1:{port}")];
        let e = Client {
            endpoints: &endpoints,
        }
        .delete("/x")
        .unwrap_err();
        assert!(matches!(e, FleetError::Unreachable { .. }), "{e}");
    }

    #[test]
    fn an_endpoint_that_never_answers_gives_up_at_the_deadline() {
        // Connections are queued by the kernel, never accepted or answered.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoints = vec![format!("http://{}", silent.local_addr().unwrap())];
        let e = Client {
            endpoints: &endpoints,
        }
        .range_prefix("/x/")
        .unwrap_err();
        assert!(matches!(e, FleetError::Unreachable { .. }), "{e}");
        assert!(e.to_string().contains("timeout"), "{e}");
    }
}
