//! What the routes accept, checked before any recorder is asked: each
//! refusal names its field, so a client's mistake is a 400, never a 500.

use crate::error::ApiError;
use async_tasks_recorder::TaskState;
use std::time::Duration;

/// Longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;
/// Longest long-poll of `GET /payments/{id}?wait=SECS`, in seconds.
pub const MAX_WAIT_SECS: f64 = 30.0;
/// Most ids in one page of a listing.
pub const MAX_LIMIT: usize = 1000;
/// Ids in a page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;

/// Checks a payment id: 1 to [`MAX_ID_LEN`] bytes of ASCII letters, digits
/// and `-_.~:`, so an id is safe in a path, a page and a log line as it is.
pub fn id(field: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(ApiError::invalid(
            field,
            format!("is {} bytes long; at most {MAX_ID_LEN}", id.len()),
        ));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.~:".contains(*c)))
    {
        return Err(ApiError::invalid(
            field,
            format!("holds {bad:?}; only ASCII letters, digits and - _ . ~ : are allowed"),
        ));
    }
    Ok(())
}

/// The query parameters of a route, each allowed name at most once.
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// The parameters `pairs`, refusing any name not in `allowed` and any
    /// name given twice.
    pub fn new(pairs: Vec<(String, String)>, allowed: &[&str]) -> Result<Query, ApiError> {
        for (n, (name, _)) in pairs.iter().enumerate() {
            if !allowed.contains(&name.as_str()) {
                let known = allowed.join(", ");
                return Err(ApiError::invalid(
                    name.as_str(),
                    format!("unknown parameter; this route takes: {known}"),
                ));
            }
            if pairs[..n].iter().any(|(earlier, _)| earlier == name) {
                return Err(ApiError::invalid(name.as_str(), "given more than once"));
            }
        }
        Ok(Query { pairs })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `wait`: seconds to long-poll, `0` to [`MAX_WAIT_SECS`]; none if absent.
    pub fn wait(&self) -> Result<Option<Duration>, ApiError> {
        let Some(text) = self.get("wait") else {
            return Ok(None);
        };
        match text.parse::<f64>() {
            Ok(secs) if (0.0..=MAX_WAIT_SECS).contains(&secs) => {
                Ok(Some(Duration::from_secs_f64(secs)))
            }
            _ => Err(ApiError::invalid(
                "wait",
                format!("{text:?} is not a number of seconds from 0 to {MAX_WAIT_SECS}"),
            )),
        }
    }

    /// `state`: `working`, `success` or `failed` (required when `required`,
    /// else `failed` by default).
    pub fn state(&self, required: bool) -> Result<TaskState, ApiError> {
        match self.get("state") {
            Some("working") => Ok(TaskState::Working),
            Some("success") => Ok(TaskState::Success),
            Some("failed") => Ok(TaskState::Failed),
            None if !required => Ok(TaskState::Failed),
            Some(got) => Err(ApiError::invalid(
                "state",
                format!("{got:?} is not one of working, success, failed"),
            )),
            None => Err(ApiError::invalid(
                "state",
                "missing: one of working, success, failed",
            )),
        }
    }

    /// `after`: the cursor, an id or empty (the first page).
    pub fn after(&self) -> Result<String, ApiError> {
        match self.get("after") {
            None | Some("") => Ok(String::new()),
            Some(after) => id("after", after).map(|()| after.to_string()),
        }
    }

    /// `limit`: 1 to `max` ids, `default` if absent.
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        let Some(text) = self.get("limit") else {
            return Ok(default);
        };
        match text.parse::<usize>() {
            Ok(limit) if (1..=max).contains(&limit) => Ok(limit),
            _ => Err(ApiError::invalid(
                "limit",
                format!("{text:?} is not a whole number from 1 to {max}"),
            )),
        }
    }
}

/// The name clients and the page use for `state`.
pub fn state_name(state: TaskState) -> &'static str {
    match state {
        TaskState::Working => "working",
        TaskState::Success => "success",
        TaskState::Failed => "failed",
        TaskState::NotFound => "not_found",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Result<Query, ApiError> {
        let pairs = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        Query::new(pairs, &["wait", "state", "after", "limit"])
    }

    fn field(error: ApiError) -> String {
        match error {
            ApiError::Invalid { field, .. } => field,
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn ids_are_bounded_and_plain() {
        assert!(id("id", "pay-1_a.b~c:d").is_ok());
        assert!(id("id", &"x".repeat(MAX_ID_LEN)).is_ok());
        for bad in ["", "a b", "a/b", "é", &"x".repeat(MAX_ID_LEN + 1)] {
            assert_eq!(field(id("id", bad).unwrap_err()), "id", "{bad:?}");
        }
    }

    #[test]
    fn wait_is_a_bounded_number_of_seconds() {
        let q = query(&[("wait", "2.5")]).unwrap();
        assert_eq!(q.wait().unwrap(), Some(Duration::from_millis(2500)));
        assert_eq!(query(&[]).unwrap().wait().unwrap(), None);
        for bad in ["-1", "31", "NaN", "inf", "soon", ""] {
            let q = query(&[("wait", bad)]).unwrap();
            assert_eq!(field(q.wait().unwrap_err()), "wait", "{bad:?}");
        }
    }

    #[test]
    fn limits_states_and_cursors_name_their_field() {
        let q = query(&[("limit", "0"), ("state", "done"), ("after", "a b")]).unwrap();
        assert_eq!(field(q.limit(10, 100).unwrap_err()), "limit");
        assert_eq!(field(q.state(true).unwrap_err()), "state");
        assert_eq!(field(q.after().unwrap_err()), "after");
        let q = query(&[("limit", "100"), ("state", "working")]).unwrap();
        assert_eq!(q.limit(10, 100).unwrap(), 100);
        assert_eq!(q.state(true).unwrap(), TaskState::Working);
        assert_eq!(field(query(&[]).unwrap().state(true).unwrap_err()), "state");
        assert_eq!(query(&[]).unwrap().state(false).unwrap(), TaskState::Failed);
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused() {
        assert_eq!(field(query(&[("color", "red")]).err().unwrap()), "color");
        let twice = query(&[("limit", "1"), ("limit", "2")]).err().unwrap();
        assert_eq!(field(twice), "limit");
    }
}
