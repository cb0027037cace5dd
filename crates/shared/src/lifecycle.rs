//! The tenant lifecycle: every transition of a tenant's state, as pure functions (no I/O).
//!
//! Each event (a captured token, an exchange's outcome, a work outcome, a state-change notification, an
//! operator's action, the circuit) gives the state the tenant takes and the [`Effects`] to apply with
//! it. The database layer (`db::tenants`, `db::tickets`, `db::state_changes`) and the service's worker
//! carry the decisions out; they decide nothing themselves.
//!
//! The protocol modules say what SuperOffice answered ([`StopReason`], [`TenantRunState`], [`ChangeType`]);
//! this module says what that means for the tenant.

use crate::superid::exchange::{ExchangeError, StopReason, Verdict};
use crate::tenant::status::{TenantRunState, TenantStatus};

text_enum! {
    /// Where a tenant is in its life with this application.
    TenantState, "tenant state" {
        /// A system user token is stored; no ticket obtained yet.
        Pending,
        /// A ticket was obtained; work runs.
        Active,
        /// SuperOffice suspended the tenant; work waits for a resume.
        Suspended,
        /// The tenant revoked the application; an administrator must sign in and approve again.
        Revoked,
        /// The authorization expired; an administrator must sign in again.
        Expired,
        /// SuperID denied the exchange.
        Denied,
        /// The application needs re-approval by an administrator.
        NeedsReapproval,
        /// SuperOffice deleted the tenant; data kept until an operator purges it.
        Deleted,
        /// An operator disabled the tenant.
        Disabled,
    }
}

impl TenantState {
    /// The states that allow work (`allows_work`).
    pub const WORKING: [TenantState; 2] = [Self::Pending, Self::Active];

    /// Whether the service may do work for a tenant in this state.
    pub fn allows_work(self) -> bool {
        Self::WORKING.contains(&self)
    }
}

/// A notification's `ChangeType`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeType {
    Upgrade,
    BackupRestored,
    Suspend,
    Resume,
    Delete,
    Move,
    /// A value this build does not know (a newer SuperOffice): recorded, no effect.
    Unsupported(String),
}

impl ChangeType {
    const KNOWN: [ChangeType; 6] = [
        Self::Upgrade,
        Self::BackupRestored,
        Self::Suspend,
        Self::Resume,
        Self::Delete,
        Self::Move,
    ];

    /// The documented number: 0 Upgrade … 5 Move.
    pub fn from_code(code: i64) -> Self {
        usize::try_from(code)
            .ok()
            .and_then(|i| Self::KNOWN.get(i).cloned())
            .unwrap_or_else(|| Self::Unsupported(code.to_string()))
    }

    /// The name (any case) or the number as text.
    pub fn from_name(name: &str) -> Self {
        let name = name.trim();
        if let Ok(code) = name.parse::<i64>() {
            return Self::from_code(code);
        }
        Self::KNOWN
            .into_iter()
            .find(|known| known.as_str().eq_ignore_ascii_case(name))
            .unwrap_or_else(|| Self::Unsupported(name.chars().take(40).collect()))
    }

    /// The documented name, or the raw value of an unsupported type.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Upgrade => "Upgrade",
            Self::BackupRestored => "BackupRestored",
            Self::Suspend => "Suspend",
            Self::Resume => "Resume",
            Self::Delete => "Delete",
            Self::Move => "Move",
            Self::Unsupported(raw) => raw,
        }
    }
}

/// When the tenant is due again after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schedule {
    /// As it was.
    #[default]
    Keep,
    /// Now.
    Now,
    /// Not until something new arrives (the state stops work).
    Never,
}

/// What to do besides setting the state. Every flag is off by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Effects {
    /// A new token: its generation counts up, the state's reason and the last error are cleared.
    pub new_token: bool,
    /// The cached ticket is dropped.
    pub drop_ticket: bool,
    /// The tenant's hosts are forgotten (resolved again at the next call).
    pub clear_urls: bool,
    /// When the tenant is due again.
    pub schedule: Schedule,
    /// The count of failed attempts starts again.
    pub reset_failures: bool,
    /// A success is recorded: failures reset, the operator's flag cleared.
    pub record_success: bool,
    /// The operator's flag is cleared (the refusal was the instance's fault).
    pub clear_attention: bool,
    /// Any lease on the tenant is released.
    pub release_lease: bool,
    /// The tenant's open work fails: the tenant cannot work until an administrator acts.
    pub fail_open_work: bool,
    /// partner-service is woken (`NOTIFY partner_work`).
    pub wake: bool,
}

/// The state a tenant takes and what goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub to: TenantState,
    pub effects: Effects,
}

impl Transition {
    fn stay(state: TenantState) -> Self {
        Self {
            to: state,
            effects: Effects::default(),
        }
    }
}

/// A captured token compared with the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// The stored token again.
    Same,
    /// Another token, issued no earlier than the stored one.
    Different,
    /// Another token issued before the stored one (a sign-in that lost a race with a newer one).
    Older,
}

text_enum! {
    /// What capturing a token did; the word labels partner-web's capture metric and log line.
    CaptureOutcome, "capture outcome" {
        /// The tenant was new.
        Created,
        /// A different token replaced the stored one; the cached ticket was dropped.
        Replaced,
        /// The same token again: details refreshed, the ticket kept.
        Unchanged,
        /// A different token issued before the stored one (a sign-in that lost a race with a newer
        /// one): nothing changed.
        Superseded,
    }
}

/// What happens to a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An administrator's sign-in captured a token for a known tenant.
    Capture(Token),
    /// A system user ticket was obtained, or the tenant runs and its cached ticket is valid.
    TicketObtained,
    /// SuperID refused the tenant's authorization unambiguously.
    ExchangeRefused(StopReason),
    /// A work request succeeded.
    WorkDone,
    /// A state-change notification, confirmed where it has to be.
    Notification(ChangeType),
    /// An operator's retry; `has_token` says whether a token is stored.
    OperatorRetry { has_token: bool },
    /// An operator disabled the tenant.
    OperatorDisable,
    /// An operator enabled a disabled tenant again.
    OperatorEnable,
    /// The circuit opened: refusals seen for many tenants were the instance's fault.
    CircuitOpened,
    /// The circuit closed: exchanges it paused may run.
    CircuitClosed,
}

/// A new tenant's first capture.
pub fn created() -> (CaptureOutcome, Transition) {
    (
        CaptureOutcome::Created,
        Transition {
            to: TenantState::Pending,
            effects: Effects {
                schedule: Schedule::Now,
                wake: true,
                ..Effects::default()
            },
        },
    )
}

/// What a capture does to a known tenant, with the outcome to report.
pub fn capture(state: TenantState, token: Token) -> (CaptureOutcome, Transition) {
    use TenantState::*;
    if token == Token::Older {
        return (CaptureOutcome::Superseded, Transition::stay(state));
    }
    // A new approval revives a tenant stopped for lack of authorization; SuperOffice's own states
    // (suspended, deleted) and an operator's disable are not the user's to lift.
    let revive = matches!(state, Revoked | Expired | Denied | NeedsReapproval);
    if token == Token::Same && !revive {
        return (CaptureOutcome::Unchanged, Transition::stay(state));
    }
    let to = if matches!(state, Suspended | Deleted | Disabled) {
        state
    } else {
        Pending
    };
    (
        CaptureOutcome::Replaced,
        Transition {
            to,
            effects: Effects {
                new_token: true,
                drop_ticket: true,
                schedule: Schedule::Now,
                reset_failures: true,
                wake: true,
                ..Effects::default()
            },
        },
    )
}

/// The one activation: a pending tenant becomes active once it has a usable ticket.
pub const ACTIVATION: (TenantState, TenantState) = (TenantState::Pending, TenantState::Active);

/// The state a tenant takes on an unambiguous refusal of its authorization.
pub fn refused_state(reason: StopReason) -> TenantState {
    match reason {
        StopReason::Revoked => TenantState::Revoked,
        StopReason::Expired => TenantState::Expired,
        StopReason::NeedsReapproval => TenantState::NeedsReapproval,
    }
}

/// The transition of `state` on `event`.
pub fn next(state: TenantState, event: &Event) -> Transition {
    use TenantState::*;
    match event {
        Event::Capture(token) => capture(state, *token).1,
        Event::TicketObtained => Transition {
            to: if state == ACTIVATION.0 {
                ACTIVATION.1
            } else {
                state
            },
            effects: Effects {
                record_success: true,
                ..Effects::default()
            },
        },
        Event::ExchangeRefused(reason) => stop(refused_state(*reason), true),
        Event::WorkDone => Transition {
            to: state,
            effects: Effects {
                record_success: true,
                ..Effects::default()
            },
        },
        Event::Notification(change) => notification(change, state),
        Event::OperatorRetry { has_token } => Transition {
            to: match state {
                Suspended | Deleted => state,
                _ if *has_token && !state.allows_work() => Pending,
                _ => state,
            },
            effects: Effects {
                schedule: Schedule::Now,
                reset_failures: true,
                release_lease: true,
                wake: true,
                ..Effects::default()
            },
        },
        Event::OperatorDisable => stop(Disabled, false),
        Event::OperatorEnable if state == Disabled => set(Pending),
        Event::OperatorEnable => Transition::stay(state),
        Event::CircuitOpened => Transition {
            to: state,
            effects: Effects {
                clear_attention: true,
                ..Effects::default()
            },
        },
        Event::CircuitClosed => Transition {
            to: state,
            effects: Effects {
                schedule: Schedule::Now,
                wake: true,
                ..Effects::default()
            },
        },
    }
}

/// A state set with a reason (`db::tenants::set_state`): due now if it allows work, else not until
/// something new arrives; failures reset; the service woken.
pub fn set(to: TenantState) -> Transition {
    stop(to, false)
}

fn stop(to: TenantState, fail_open_work: bool) -> Transition {
    Transition {
        to,
        effects: Effects {
            schedule: if to.allows_work() {
                Schedule::Now
            } else {
                Schedule::Never
            },
            reset_failures: true,
            fail_open_work,
            wake: true,
            ..Effects::default()
        },
    }
}

/// A state-change notification (the table in `db::state_changes`).
fn notification(change: &ChangeType, state: TenantState) -> Transition {
    use TenantState::*;
    let to = match change {
        ChangeType::Suspend if matches!(state, Pending | Active | Deleted) => Suspended,
        ChangeType::Delete if matches!(state, Pending | Active | Suspended) => Deleted,
        ChangeType::Resume | ChangeType::BackupRestored if matches!(state, Suspended | Deleted) => {
            Pending
        }
        _ => state,
    };
    let schedule = if to != state {
        if to.allows_work() {
            Schedule::Now
        } else {
            Schedule::Never
        }
    } else if to.allows_work()
        && matches!(
            change,
            ChangeType::Resume | ChangeType::BackupRestored | ChangeType::Move
        )
    {
        Schedule::Now
    } else {
        Schedule::Keep
    };
    Transition {
        to,
        effects: Effects {
            drop_ticket: *change == ChangeType::Delete,
            clear_urls: *change == ChangeType::Move,
            schedule,
            reset_failures: to != state,
            wake: !matches!(change, ChangeType::Unsupported(_)),
            ..Effects::default()
        },
    }
}

impl ExchangeError {
    /// The state the tenant's row should take, when the failure is an unambiguous refusal of the
    /// tenant's authorization. `None` otherwise (the clock, the key, the network, SuperOffice itself,
    /// an answer not recognised).
    pub fn tenant_state_hint(&self) -> Option<TenantState> {
        match self.verdict() {
            Verdict::Stop(reason) => Some(refused_state(reason)),
            Verdict::Transient | Verdict::Suspect => None,
        }
    }
}

impl TenantStatus {
    /// The lifecycle state this answer implies for the tenant's row, if it stops work for a while:
    /// `Suspended` for a suspended tenant, `Deleted` for a deleted or deleting one.
    pub fn lifecycle_hint(&self) -> Option<TenantState> {
        match self.state {
            TenantRunState::Suspended => Some(TenantState::Suspended),
            TenantRunState::Deleted | TenantRunState::Deleting => Some(TenantState::Deleted),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TenantState::*;
    use super::*;

    use std::collections::HashMap;

    /// `testdata/lifecycle.toml`: the transition table and the effect sets its rows name.
    #[derive(serde::Deserialize)]
    struct Table {
        transitions: Vec<Row>,
        effects: HashMap<String, Vec<String>>,
    }

    /// state × event → state, effects.
    #[derive(serde::Deserialize)]
    struct Row {
        from: TenantState,
        event: String,
        to: TenantState,
        effects: String,
    }

    /// Every flag off, the schedule kept: spelled out, so that a new flag is a decision here too.
    const NONE: Effects = Effects {
        new_token: false,
        drop_ticket: false,
        clear_urls: false,
        schedule: Schedule::Keep,
        reset_failures: false,
        record_success: false,
        clear_attention: false,
        release_lease: false,
        fail_open_work: false,
        wake: false,
    };

    /// The event a row names: an [`Event`] variant in snake_case, its argument in parentheses.
    fn event(text: &str) -> Event {
        let (name, argument) = match text.strip_suffix(')').and_then(|call| call.split_once('(')) {
            Some((name, argument)) => (name, Some(argument)),
            None => (text, None),
        };
        match (name, argument) {
            ("capture", Some("same")) => Event::Capture(Token::Same),
            ("capture", Some("different")) => Event::Capture(Token::Different),
            ("capture", Some("older")) => Event::Capture(Token::Older),
            ("ticket_obtained", None) => Event::TicketObtained,
            ("exchange_refused", Some(reason)) => Event::ExchangeRefused(stop_reason(reason)),
            ("work_done", None) => Event::WorkDone,
            ("notification", Some(change)) => Event::Notification(change_type(change)),
            ("operator_retry", Some("token")) => Event::OperatorRetry { has_token: true },
            ("operator_retry", Some("no_token")) => Event::OperatorRetry { has_token: false },
            ("operator_disable", None) => Event::OperatorDisable,
            ("operator_enable", None) => Event::OperatorEnable,
            ("circuit_opened", None) => Event::CircuitOpened,
            ("circuit_closed", None) => Event::CircuitClosed,
            _ => panic!("unknown event {text:?}"),
        }
    }

    fn stop_reason(name: &str) -> StopReason {
        match name {
            "revoked" => StopReason::Revoked,
            "expired" => StopReason::Expired,
            "needs_reapproval" => StopReason::NeedsReapproval,
            _ => panic!("unknown stop reason {name:?}"),
        }
    }

    /// A documented `ChangeType` name, or `unsupported:RAW`.
    fn change_type(name: &str) -> ChangeType {
        if let Some(raw) = name.strip_prefix("unsupported:") {
            return ChangeType::Unsupported(raw.into());
        }
        ChangeType::KNOWN
            .into_iter()
            .find(|known| known.as_str() == name)
            .unwrap_or_else(|| panic!("unknown ChangeType {name:?}"))
    }

    /// The effects of a set: [`Effects`] field names, and `schedule_now` or `schedule_never`.
    fn effects(flags: &[String]) -> Effects {
        let mut effects = NONE;
        for flag in flags {
            match flag.as_str() {
                "new_token" => effects.new_token = true,
                "drop_ticket" => effects.drop_ticket = true,
                "clear_urls" => effects.clear_urls = true,
                "schedule_now" => effects.schedule = Schedule::Now,
                "schedule_never" => effects.schedule = Schedule::Never,
                "reset_failures" => effects.reset_failures = true,
                "record_success" => effects.record_success = true,
                "clear_attention" => effects.clear_attention = true,
                "release_lease" => effects.release_lease = true,
                "fail_open_work" => effects.fail_open_work = true,
                "wake" => effects.wake = true,
                other => panic!("unknown effect {other:?}"),
            }
        }
        effects
    }

    /// state × event → state, effects: every row of the lifecycle, one row a line of
    /// `testdata/lifecycle.toml`.
    #[test]
    fn the_transition_table() {
        let table: Table = toml::from_str(include_str!("../testdata/lifecycle.toml"))
            .unwrap_or_else(|error| panic!("testdata/lifecycle.toml: {error}"));
        assert!(!table.transitions.is_empty());
        for row in &table.transitions {
            let case = format!("{} on {}", row.from, row.event);
            let set = table
                .effects
                .get(&row.effects)
                .unwrap_or_else(|| panic!("{case}: unknown effect set {:?}", row.effects));
            let transition = next(row.from, &event(&row.event));
            assert_eq!(transition.to, row.to, "{case}");
            assert_eq!(transition.effects, effects(set), "{case}");
        }
    }

    #[test]
    fn captures_report_their_outcome() {
        assert_eq!(created().0, CaptureOutcome::Created);
        assert_eq!(created().1.to, Pending);
        assert_eq!(
            capture(Active, Token::Different).0,
            CaptureOutcome::Replaced
        );
        assert_eq!(capture(Active, Token::Same).0, CaptureOutcome::Unchanged);
        assert_eq!(capture(Revoked, Token::Same).0, CaptureOutcome::Replaced);
        assert_eq!(capture(Active, Token::Older).0, CaptureOutcome::Superseded);
    }

    #[test]
    fn states_round_trip_through_text() {
        for state in TenantState::ALL {
            assert_eq!(state.as_str().parse::<TenantState>(), Ok(state));
        }
        assert!("paused".parse::<TenantState>().is_err());
    }

    #[test]
    fn only_pending_and_active_allow_work() {
        let working: Vec<_> = TenantState::ALL
            .into_iter()
            .filter(|s| s.allows_work())
            .collect();
        assert_eq!(working, vec![Pending, Active]);
    }
}
