//! What the engine needs from outside and tells the outside: the wall clock ([`Clock`]), the
//! randomness (an RNG passed in, see [`run::Env`](crate::run::Env)) and a [`Observer`] of what
//! happens ([`Event`]). The library never reads the system clock, the OS RNG or prints on its
//! own account when run through [`run::run_with`](crate::run::run_with): tests give it a fixed
//! clock, a seeded RNG and a recording observer; the CLI gives it the system's and a
//! [`Terminal`] that draws the progress bars and prints the messages.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use anyhow::Result;
use bcami_client::Caller;
use bcami_sdk::Timestamp;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The wall clock that stamps the meters' messages.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Result<Timestamp>;
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Result<Timestamp> {
        crate::cli::now()
    }
}

/// A clock that always says the same instant (the meters still stamp strictly increasing
/// timestamps: each one is at least its previous one plus a millisecond).
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Result<Timestamp> {
        Ok(self.0)
    }
}

/// A phase of `run` that has a length (a progress bar's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Meters register their keys (one step per meter).
    Registration,
    /// Readings are measured, signed and delivered (one step per reading).
    Readings,
    /// The MDMS reads everything back (one step per meter).
    ReadBack,
}

impl Phase {
    /// The progress bar's label.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Registration => "registering",
            Phase::Readings => "readings",
            Phase::ReadBack => "MDMS export",
        }
    }
}

/// Something the engine did or saw. Most have a message for people ([`Event::message`]); the
/// phase and progress events drive bars.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The administrator provisions `meters` meters.
    Provisioning {
        /// How many.
        meters: usize,
    },
    /// A completed MDMS key rotation was found pending in `folder` and completed.
    RotationCompleted {
        /// The MDMS state folder.
        folder: PathBuf,
    },
    /// `meters` meters register through `concentrators` concentrators.
    Registering {
        /// How many.
        meters: usize,
        /// Through how many concentrators.
        concentrators: usize,
    },
    /// A phase of `steps` steps starts.
    PhaseStarted {
        /// Which.
        phase: Phase,
        /// Its length.
        steps: u64,
    },
    /// A step of a phase is done (a meter registered or read back).
    Progressed {
        /// Which phase.
        phase: Phase,
    },
    /// A phase ended.
    PhaseFinished {
        /// Which.
        phase: Phase,
    },
    /// These meters failed (each `"<meter>: <why>"`) and send nothing this run.
    MetersFailed {
        /// Every failure.
        failures: Vec<String>,
    },
    /// The meters hold `readings` unconfirmed readings from an earlier run (sent first).
    Held {
        /// How many.
        readings: usize,
    },
    /// The readings phase's plan.
    Sending {
        /// Readings to send.
        readings: usize,
        /// Meters that send any.
        meters: usize,
        /// Readings per transaction (as configured).
        batch: usize,
        /// Concentrators.
        concentrators: usize,
        /// Lanes (transactions in flight).
        lanes: usize,
        /// `--tamper`: readings to corrupt, if asked to.
        tampered: Option<usize>,
    },
    /// A meter's store was full: it dropped its oldest unconfirmed interval.
    StoreFull {
        /// The meter.
        meter: String,
        /// Its store's capacity (reports).
        capacity: usize,
        /// The dropped interval's start (Unix ms).
        dropped_ms: u64,
    },
    /// A concentrator's transaction committed; `readings` of its readings are settled
    /// (stored or refused for good).
    BatchCommitted {
        /// The concentrator.
        concentrator: Caller,
        /// Readings settled.
        readings: u64,
    },
    /// A concentrator's submit failed as a whole; it resends after `wait_s`.
    Retry {
        /// The concentrator.
        concentrator: Caller,
        /// Since when the ledger is unreachable (s).
        unreachable_s: u64,
        /// Readings of the lane's meters pending.
        pending: usize,
        /// Wait before the resend (s).
        wait_s: u64,
        /// Why the submit failed.
        error: String,
    },
    /// The ledger answers a concentrator again after an outage of `after_s`.
    LedgerBack {
        /// The concentrator.
        concentrator: Caller,
        /// The outage's length (s).
        after_s: u64,
    },
    /// The ledger's MDMS key changed during the run (hex of the new key).
    MdmsKeyChanged {
        /// The new key, hex.
        key: String,
    },
    /// A concentrator gave up for this run (`--retries`).
    GaveUp {
        /// Why.
        error: String,
    },
    /// The MDMS reads `meters` meters back.
    ReadingBack {
        /// How many.
        meters: usize,
    },
    /// The MDMS's check of a reading failed.
    CheckFailed {
        /// What failed.
        problem: String,
    },
}

impl Event {
    /// The line(s) for people, if the event has any (progress events have none).
    pub fn message(&self) -> Option<String> {
        Some(match self {
            Event::PhaseStarted { .. }
            | Event::Progressed { .. }
            | Event::PhaseFinished { .. }
            | Event::BatchCommitted { .. } => return None,
            other => other.to_string(),
        })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Provisioning { meters } => {
                write!(f, "provisioning {meters} meters as the administrator")
            }
            Event::RotationCompleted { folder } => write!(
                f,
                "completed the MDMS key rotation found pending in {}",
                folder.display()
            ),
            Event::Registering {
                meters,
                concentrators,
            } => write!(
                f,
                "registering {meters} meters through {concentrators} concentrators"
            ),
            Event::PhaseStarted { phase, steps } => write!(f, "{}: {steps} steps", phase.label()),
            Event::Progressed { phase } => write!(f, "{}: a step", phase.label()),
            Event::PhaseFinished { phase } => write!(f, "{}: done", phase.label()),
            Event::MetersFailed { failures } => {
                write!(
                    f,
                    "{} meters failed to register and send nothing:",
                    failures.len()
                )?;
                for failure in failures.iter().take(10) {
                    write!(f, "\n  {failure}")?;
                }
                Ok(())
            }
            Event::Held { readings } => write!(
                f,
                "the meters hold {readings} unconfirmed readings from an earlier run: sending them first"
            ),
            Event::Sending {
                readings,
                meters,
                batch,
                concentrators,
                lanes,
                tampered,
            } => {
                write!(
                    f,
                    "sending {readings} readings from {meters} meters in batches of {batch} through {concentrators} concentrators ({lanes} lanes)"
                )?;
                match tampered {
                    Some(n) => write!(f, "; tampering with {n} readings"),
                    None => Ok(()),
                }
            }
            Event::StoreFull { .. }
            | Event::BatchCommitted { .. }
            | Event::Retry { .. }
            | Event::LedgerBack { .. }
            | Event::MdmsKeyChanged { .. }
            | Event::GaveUp { .. }
            | Event::ReadingBack { .. }
            | Event::CheckFailed { .. } => self.fmt_lanes(f),
        }
    }
}

impl Event {
    /// The concentrator lanes' and the read-back's events.
    fn fmt_lanes(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::StoreFull {
                meter,
                capacity,
                dropped_ms,
            } => write!(
                f,
                "meter {meter}: store full ({capacity} reports); dropped the oldest unconfirmed interval, {}",
                crate::civil::format_datetime_ms(*dropped_ms)
            ),
            Event::BatchCommitted {
                concentrator,
                readings,
            } => write!(f, "{concentrator}: {readings} readings settled"),
            Event::Retry {
                concentrator,
                unreachable_s,
                pending,
                wait_s,
                error,
            } => write!(
                f,
                "{concentrator}: ledger unreachable for {unreachable_s} s; {pending} readings of this lane's meters pending; resending in {wait_s} s: {error}"
            ),
            Event::LedgerBack {
                concentrator,
                after_s,
            } => write!(
                f,
                "{concentrator}: the ledger is back after {after_s} s; delivering what the meters held"
            ),
            Event::MdmsKeyChanged { key } => write!(
                f,
                "the ledger's MDMS key changed (rotated to {key}); meters encrypt to it from now on"
            ),
            Event::GaveUp { error } => write!(
                f,
                "a concentrator gave up for this run (the meters keep what it held): {error}"
            ),
            Event::ReadingBack { meters } => {
                write!(f, "reading back {meters} meters as the MDMS")
            }
            Event::CheckFailed { problem } => write!(f, "MDMS check failed: {problem}"),
            // The others are written by `fmt`.
            _ => Ok(()),
        }
    }
}

/// Whoever wants to know what the engine does. Called from the concentrator lanes' tasks too:
/// it must be cheap and must not block for long.
pub trait Observer: Send + Sync {
    /// `event` happened.
    fn event(&self, event: Event);
}

/// Hears nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _event: Event) {}
}

/// Keeps every event, in order (for tests and tools that inspect a run).
#[derive(Debug, Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    /// The events so far, in the order they arrived.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Observer for Recorder {
    fn event(&self, event: Event) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }
}

/// The CLI's rendering: messages on stderr, and a progress bar per phase when `bars` (on a
/// terminal).
#[derive(Debug)]
pub struct Terminal {
    bars: bool,
    active: Mutex<BTreeMap<Phase, ProgressBar>>,
}

impl Terminal {
    /// Messages on stderr; bars too if `bars`.
    pub fn new(bars: bool) -> Terminal {
        Terminal {
            bars,
            active: Mutex::new(BTreeMap::new()),
        }
    }

    fn bar(&self, phase: Phase, len: u64) -> ProgressBar {
        let target = if self.bars {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(len), target);
        let style = ProgressStyle::with_template(
            "{msg:>12} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(phase.label());
        bar
    }

    fn advance(&self, phase: Phase, steps: u64) {
        if let Some(bar) = self
            .active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&phase)
        {
            bar.inc(steps);
        }
    }
}

impl Observer for Terminal {
    fn event(&self, event: Event) {
        match event {
            Event::PhaseStarted { phase, steps } => {
                let bar = self.bar(phase, steps);
                self.active
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(phase, bar);
            }
            Event::Progressed { phase } => self.advance(phase, 1),
            Event::BatchCommitted { readings, .. } => self.advance(Phase::Readings, readings),
            Event::PhaseFinished { phase } => {
                if let Some(bar) = self
                    .active
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&phase)
                {
                    bar.finish_and_clear();
                }
            }
            other => eprintln!("{other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_the_cli_text() {
        let sending = Event::Sending {
            readings: 12,
            meters: 3,
            batch: 5,
            concentrators: 2,
            lanes: 4,
            tampered: Some(1),
        };
        assert_eq!(
            sending.message().as_deref(),
            Some(
                "sending 12 readings from 3 meters in batches of 5 through 2 concentrators (4 lanes); tampering with 1 readings"
            )
        );
        let failed = Event::MetersFailed {
            failures: (0..12).map(|i| format!("m{i}: no")).collect(),
        };
        let text = failed.message().unwrap_or_default();
        assert!(text.starts_with("12 meters failed to register and send nothing:\n  m0: no"));
        assert_eq!(text.lines().count(), 11, "the first ten failures: {text}");
        assert_eq!(
            Event::BatchCommitted {
                concentrator: Caller::Concentrator(0),
                readings: 5
            }
            .message(),
            None
        );
    }

    #[test]
    fn the_recorder_keeps_the_order() {
        let recorder = Recorder::default();
        recorder.event(Event::Held { readings: 1 });
        recorder.event(Event::ReadingBack { meters: 2 });
        assert_eq!(
            recorder.events(),
            vec![
                Event::Held { readings: 1 },
                Event::ReadingBack { meters: 2 }
            ]
        );
    }
}
