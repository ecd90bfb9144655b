//! `--throttle`: the service's documented rate limits (api-contract.md §10, from the ACS
//! service-limits page), so that clients can exercise their 429 handling. Counting only; the
//! 429 response is `api::chaos`'s job.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Whose requests a limit counts together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    User,
    Thread,
    UserInThread,
    /// The whole resource (identity limits).
    Resource,
}

/// One documented limit: `limit` requests per `window` for the listed operations together.
#[derive(Debug)]
struct Limit {
    operations: &'static [&'static str],
    scope: Scope,
    limit: usize,
    window: Duration,
}

const fn limit(
    operations: &'static [&'static str],
    scope: Scope,
    limit: usize,
    seconds: u64,
) -> Limit {
    Limit {
        operations,
        scope,
        limit,
        window: Duration::from_secs(seconds),
    }
}

const CREATE: &[&str] = &["Chat_CreateChatThread"];
const DELETE: &[&str] = &["Chat_DeleteChatThread"];
const UPDATE: &[&str] = &["ChatThread_UpdateChatThreadProperties"];
const PARTICIPANTS_CHANGE: &[&str] = &[
    "ChatThread_AddChatParticipants",
    "ChatThread_RemoveChatParticipant",
];
const THREAD_READ: &[&str] = &["ChatThread_GetChatThreadProperties", "Chat_ListChatThreads"];
const GET_MESSAGE: &[&str] = &["ChatThread_GetChatMessage"];
const LIST_MESSAGES: &[&str] = &["ChatThread_ListChatMessages"];
const LIST_RECEIPTS: &[&str] = &["ChatThread_ListChatReadReceipts"];
const LIST_PARTICIPANTS: &[&str] = &["ChatThread_ListChatParticipants"];
const MESSAGE_WRITE: &[&str] = &[
    "ChatThread_SendChatMessage",
    "ChatThread_UpdateChatMessage",
    "ChatThread_DeleteChatMessage",
];
const SEND_RECEIPT: &[&str] = &["ChatThread_SendChatReadReceipt"];
const TYPING: &[&str] = &["ChatThread_SendTypingNotification"];

/// The documented limits. Chat: per 10 s and per minute; Identity: per 30 s.
const LIMITS: &[Limit] = &[
    limit(CREATE, Scope::User, 10, 10),
    limit(DELETE, Scope::User, 10, 10),
    limit(UPDATE, Scope::Thread, 5, 10),
    limit(PARTICIPANTS_CHANGE, Scope::Thread, 10, 10),
    limit(PARTICIPANTS_CHANGE, Scope::Thread, 30, 60),
    limit(THREAD_READ, Scope::User, 50, 10),
    limit(GET_MESSAGE, Scope::UserInThread, 50, 10),
    limit(GET_MESSAGE, Scope::Thread, 250, 10),
    limit(LIST_MESSAGES, Scope::UserInThread, 50, 10),
    limit(LIST_MESSAGES, Scope::UserInThread, 200, 60),
    limit(LIST_MESSAGES, Scope::Thread, 250, 10),
    limit(LIST_MESSAGES, Scope::Thread, 400, 60),
    limit(LIST_RECEIPTS, Scope::UserInThread, 5, 10),
    limit(LIST_RECEIPTS, Scope::Thread, 100, 10),
    limit(LIST_PARTICIPANTS, Scope::UserInThread, 10, 10),
    limit(LIST_PARTICIPANTS, Scope::Thread, 250, 10),
    limit(MESSAGE_WRITE, Scope::Thread, 10, 10),
    limit(MESSAGE_WRITE, Scope::Thread, 30, 60),
    limit(SEND_RECEIPT, Scope::UserInThread, 10, 10),
    limit(SEND_RECEIPT, Scope::UserInThread, 30, 60),
    limit(TYPING, Scope::UserInThread, 5, 10),
    limit(TYPING, Scope::UserInThread, 15, 60),
    limit(TYPING, Scope::Thread, 10, 10),
    limit(TYPING, Scope::Thread, 30, 60),
    limit(&["IdentityOperations_Create"], Scope::Resource, 1000, 30),
    limit(&["IdentityOperations_Delete"], Scope::Resource, 500, 30),
    limit(
        &["IdentityOperations_IssueAccessToken"],
        Scope::Resource,
        1000,
        30,
    ),
    limit(
        &["IdentityOperations_RevokeAccessTokens"],
        Scope::Resource,
        500,
        30,
    ),
];

/// How many windows may exist before empty ones are dropped.
const MAX_IDLE_WINDOWS: usize = 10_000;

/// Sliding-window counters per (limit, scope key).
#[derive(Debug, Default)]
pub struct Throttle {
    windows: Mutex<Windows>,
}

#[derive(Debug, Default)]
struct Windows {
    by_key: HashMap<(usize, String), VecDeque<Instant>>,
    /// Size above which the next request drops empty windows: twice what a drop left, so that
    /// many active callers do not make every request scan them all.
    prune_above: usize,
}

impl Throttle {
    /// Counts a request of `operation` by `user` in `thread` at `now`. `Err(wait)` when a limit
    /// is reached: the request is refused (and not counted) and may be retried after `wait`.
    pub fn admit(
        &self,
        operation: &str,
        user: Option<&str>,
        thread: Option<&str>,
        now: Instant,
    ) -> Result<(), Duration> {
        let mut guard = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Windows {
            by_key: windows,
            prune_above,
        } = &mut *guard;
        // Callers come and go: now and then drop the windows with nothing left in them, so the
        // map holds only the subjects of recent requests.
        if windows.len() > MAX_IDLE_WINDOWS.max(*prune_above) {
            windows.retain(|(index, _), window| {
                window.retain(|t| now.duration_since(*t) < LIMITS[*index].window);
                !window.is_empty()
            });
            *prune_above = 2 * windows.len();
        }
        let mut keys = Vec::new();
        for (index, rule) in LIMITS.iter().enumerate() {
            if !rule.operations.contains(&operation) {
                continue;
            }
            let key = match (rule.scope, user, thread) {
                (Scope::User, Some(u), _) => u.to_owned(),
                (Scope::Thread, _, Some(t)) => t.to_owned(),
                (Scope::UserInThread, Some(u), Some(t)) => format!("{u}\n{t}"),
                (Scope::Resource, _, _) => String::new(),
                // A request without the scope's subject (no caller yet) is not counted by it.
                _ => continue,
            };
            let window = windows.entry((index, key.clone())).or_default();
            while window
                .front()
                .is_some_and(|t| now.duration_since(*t) >= rule.window)
            {
                window.pop_front();
            }
            if window.len() >= rule.limit {
                let oldest = window.front().copied().unwrap_or(now);
                return Err(rule.window.saturating_sub(now.duration_since(oldest)));
            }
            keys.push((index, key));
        }
        for key in keys {
            windows.entry(key).or_default().push_back(now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_is_limited_per_user_in_thread_and_recovers() {
        let throttle = Throttle::default();
        let start = Instant::now();
        for i in 0..5 {
            assert!(
                throttle
                    .admit(
                        "ChatThread_SendTypingNotification",
                        Some("u"),
                        Some("t"),
                        start + Duration::from_millis(i)
                    )
                    .is_ok()
            );
        }
        let wait = throttle
            .admit(
                "ChatThread_SendTypingNotification",
                Some("u"),
                Some("t"),
                start + Duration::from_secs(1),
            )
            .expect_err("6th in 10 s is refused");
        assert!(
            wait <= Duration::from_secs(9) && wait > Duration::from_secs(8),
            "{wait:?}"
        );
        // Another user in the same thread still has their own budget.
        assert!(
            throttle
                .admit(
                    "ChatThread_SendTypingNotification",
                    Some("v"),
                    Some("t"),
                    start + Duration::from_secs(1)
                )
                .is_ok()
        );
        // After the window the first user may type again.
        assert!(
            throttle
                .admit(
                    "ChatThread_SendTypingNotification",
                    Some("u"),
                    Some("t"),
                    start + Duration::from_secs(11)
                )
                .is_ok()
        );
    }

    #[test]
    fn idle_windows_are_dropped() {
        let throttle = Throttle::default();
        let start = Instant::now();
        for n in 0..=MAX_IDLE_WINDOWS {
            let user = format!("u{n}");
            assert!(
                throttle
                    .admit("Chat_CreateChatThread", Some(&user), None, start)
                    .is_ok()
            );
        }
        let later = start + Duration::from_secs(11);
        assert!(
            throttle
                .admit("Chat_CreateChatThread", Some("fresh"), None, later)
                .is_ok()
        );
        let left = throttle
            .windows
            .lock()
            .map(|w| w.by_key.len())
            .unwrap_or_default();
        assert_eq!(left, 1, "only the fresh caller's window is left");
    }

    #[test]
    fn refused_requests_are_not_counted_and_unlisted_operations_pass() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for _ in 0..10 {
            assert!(
                throttle
                    .admit("Chat_CreateChatThread", Some("u"), None, now)
                    .is_ok()
            );
        }
        for _ in 0..5 {
            assert!(
                throttle
                    .admit("Chat_CreateChatThread", Some("u"), None, now)
                    .is_err()
            );
        }
        assert!(
            throttle
                .admit(
                    "Chat_CreateChatThread",
                    Some("u"),
                    None,
                    now + Duration::from_secs(10)
                )
                .is_ok()
        );
        for _ in 0..1000 {
            assert!(throttle.admit("Emulator_Health", None, None, now).is_ok());
        }
    }
}
