//! Fault rules: what `POST /_emulator/faults` installs and the request path consults. Matching
//! and bookkeeping only; applying an effect to a response is `api::chaos`'s job.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Which requests a rule applies to; every given field must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultMatch {
    /// Spec operationId, e.g. `ChatThread_SendChatMessage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Thread id (`19:…@thread.v2`), as decoded from the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// Calling user (`8:acs:…`): the bearer token's identity, or the identity in an identity path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// HTTP method, any case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Decoded request path; `*` matches any run of characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// What happens to a matching request. Latency is added first; then the connection is dropped,
/// or the error is returned, or (latency only) the request proceeds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultEffect {
    /// HTTP status to answer with (400–599), with the ACS error body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// ACS error code (default from the status, e.g. 429 → `TooManyRequests`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Error message (default: "Injected fault.").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `Retry-After` header, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
    /// Delay before answering, in milliseconds (at most 60000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Break the connection instead of answering.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop_connection: bool,
}

/// A rule as clients send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    #[serde(rename = "match", default)]
    pub matcher: FaultMatch,
    pub effect: FaultEffect,
    /// Chance that a matching request is affected, 0 to 1 (default 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub probability: f64,
    /// How many requests to affect before the rule retires itself (default: unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

fn one() -> f64 {
    1.0
}

fn is_one(p: &f64) -> bool {
    (*p - 1.0).abs() < f64::EPSILON
}

/// An installed rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    pub id: String,
    #[serde(flatten)]
    pub spec: FaultSpec,
    /// Requests affected so far.
    pub applied: u64,
}

/// Longest latency a rule may add.
const MAX_LATENCY_MS: u64 = 60_000;

impl FaultSpec {
    /// Checks the rule makes sense; `Err` says why not.
    pub fn validate(&self) -> Result<(), String> {
        let effect = &self.effect;
        if effect.status.is_none() && effect.latency_ms.is_none() && !effect.drop_connection {
            return Err("effect needs status, latencyMs or dropConnection".to_owned());
        }
        if effect.status.is_some() && effect.drop_connection {
            return Err(
                "effect cannot both answer with a status and drop the connection".to_owned(),
            );
        }
        if let Some(status) = effect.status
            && !(400..=599).contains(&status)
        {
            return Err(format!(
                "effect.status {status} is not an error status (400-599)"
            ));
        }
        if effect.latency_ms.is_some_and(|ms| ms > MAX_LATENCY_MS) {
            return Err(format!("effect.latencyMs is at most {MAX_LATENCY_MS}"));
        }
        if !(0.0..=1.0).contains(&self.probability) {
            return Err("probability must be between 0 and 1".to_owned());
        }
        if self.count == Some(0) {
            return Err("count must be at least 1".to_owned());
        }
        Ok(())
    }
}

/// What a request looks like to the rules.
#[derive(Debug, Default)]
pub struct RequestFacts<'a> {
    pub operation: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    pub thread_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
}

impl FaultMatch {
    fn matches(&self, facts: &RequestFacts<'_>) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| Some(w) == have)
        };
        eq(&self.operation, facts.operation)
            && eq(&self.thread_id, facts.thread_id)
            && eq(&self.user_id, facts.user_id)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(facts.method))
            && self
                .path
                .as_deref()
                .is_none_or(|p| glob_match(p, facts.path))
    }
}

/// `*` matches any run of characters (including `/`); everything else is literal.
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first)
        || !text[first.len()..].ends_with(last)
        || text.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// The installed rules.
#[derive(Debug, Default)]
pub struct FaultRules {
    rules: Mutex<Vec<FaultRule>>,
}

impl FaultRules {
    /// Installs a validated rule; returns it with its id.
    pub fn add(&self, spec: FaultSpec) -> FaultRule {
        let rule = FaultRule {
            id: uuid::Uuid::new_v4().to_string(),
            spec,
            applied: 0,
        };
        self.lock().push(rule.clone());
        rule
    }

    /// The rules now installed.
    pub fn list(&self) -> Vec<FaultRule> {
        self.lock().clone()
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Removes one rule; false if there was none with this id.
    pub fn remove(&self, id: &str) -> bool {
        let mut rules = self.lock();
        let before = rules.len();
        rules.retain(|r| r.id != id);
        rules.len() != before
    }

    /// The effect of the first rule that matches and wins its dice roll (`roll` in 0..1), if
    /// any. Counts the application and retires a rule whose count is used up.
    pub fn apply(&self, facts: &RequestFacts<'_>, roll: impl Fn() -> f64) -> Option<FaultEffect> {
        let mut rules = self.lock();
        let index = rules
            .iter()
            .position(|r| r.spec.matcher.matches(facts) && roll() < r.spec.probability)?;
        let rule = &mut rules[index];
        rule.applied += 1;
        let effect = rule.spec.effect.clone();
        if rule.spec.count.is_some_and(|count| rule.applied >= count) {
            rules.remove(index);
        }
        Some(effect)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<FaultRule>> {
        // A panic while holding the lock cannot leave the list half-changed (every change is one
        // Vec call), so a poisoned lock is still usable.
        self.rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(matcher: FaultMatch, count: Option<u64>, probability: f64) -> FaultSpec {
        FaultSpec {
            matcher,
            effect: FaultEffect {
                status: Some(503),
                ..FaultEffect::default()
            },
            probability,
            count,
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match(
            "/chat/threads/*/messages",
            "/chat/threads/19:a@thread.v2/messages"
        ));
        assert!(glob_match("*", "/anything"));
        assert!(glob_match("/chat/*", "/chat/threads"));
        assert!(!glob_match(
            "/chat/threads/*/messages",
            "/chat/threads/19:a@thread.v2/typing"
        ));
        assert!(!glob_match("/a*b*c", "/ac"));
        assert!(glob_match("/exact", "/exact") && !glob_match("/exact", "/exactly"));
    }

    #[test]
    fn count_retires_and_fields_must_all_match() {
        let rules = FaultRules::default();
        rules.add(spec(
            FaultMatch {
                operation: Some("Op".into()),
                user_id: Some("u".into()),
                ..FaultMatch::default()
            },
            Some(2),
            1.0,
        ));
        let hit = RequestFacts {
            operation: Some("Op"),
            method: "GET",
            path: "/p",
            thread_id: None,
            user_id: Some("u"),
        };
        let other_user = RequestFacts {
            user_id: Some("v"),
            ..RequestFacts {
                operation: Some("Op"),
                method: "GET",
                path: "/p",
                ..RequestFacts::default()
            }
        };
        assert!(rules.apply(&other_user, || 0.0).is_none());
        assert!(rules.apply(&hit, || 0.0).is_some());
        assert_eq!(rules.list()[0].applied, 1);
        assert!(rules.apply(&hit, || 0.0).is_some());
        assert!(
            rules.apply(&hit, || 0.0).is_none(),
            "retired after its count"
        );
        assert!(rules.list().is_empty());
    }

    #[test]
    fn probability_is_a_dice_roll() {
        let rules = FaultRules::default();
        rules.add(spec(FaultMatch::default(), None, 0.25));
        let facts = RequestFacts {
            method: "GET",
            path: "/",
            ..RequestFacts::default()
        };
        assert!(rules.apply(&facts, || 0.2).is_some());
        assert!(rules.apply(&facts, || 0.3).is_none());
    }

    #[test]
    fn validation() {
        assert!(spec(FaultMatch::default(), None, 1.0).validate().is_ok());
        assert!(
            spec(FaultMatch::default(), Some(0), 1.0)
                .validate()
                .is_err()
        );
        assert!(spec(FaultMatch::default(), None, 1.5).validate().is_err());
        let mut nothing = spec(FaultMatch::default(), None, 1.0);
        nothing.effect.status = None;
        assert!(nothing.validate().is_err());
        let mut ok_status = spec(FaultMatch::default(), None, 1.0);
        ok_status.effect.status = Some(200);
        assert!(ok_status.validate().is_err(), "200 is not a fault");
    }
}
