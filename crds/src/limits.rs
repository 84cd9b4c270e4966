//! The bounds and defaults of a Room's spec, defined once.
//!
//! The router checks what people ask for against these (its 400 answers), and the CRD
//! schema carries the same numbers (`minimum`/`maximum`/`maxLength`/`default`), so a
//! Room the router would accept is one the API server accepts, and a Room applied with
//! `kubectl` gets the defaults the router would have chosen. The router's user-facing
//! bounds are the contract; the schema follows them.

use std::ops::RangeInclusive;

/// Longest title, in characters (Unicode scalar values: the API server's `maxLength`
/// and Rust's `chars().count()` count the same thing). A title has at least one.
pub const TITLE_MAX_CHARS: u32 = 100;

/// Longest `creatorName`, in characters: the display-name bound of the users service
/// (a creator's name is the `name` of their access token). It may be empty: a Room
/// written by hand without it shows no name.
pub const CREATOR_NAME_MAX_CHARS: u32 = rendezvous_api::DISPLAY_NAME_MAX_CHARS;

/// People in a room at once: at least two (a room for one is a notepad), at most what
/// one room server is sized for.
pub const MAX_PARTICIPANTS: RangeInclusive<u32> = 2..=1000;
/// `maxParticipants` when the creator does not say.
pub const DEFAULT_MAX_PARTICIPANTS: u32 = 50;

/// Seconds with nobody inside before a room ends: one second up to a day.
pub const IDLE_TIMEOUT_SECS: RangeInclusive<u32> = 1..=86_400;
/// `idleTimeout` when the creator does not say: five minutes.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u32 = 300;

/// Seconds a room may live at most: long enough to join, short enough that a
/// forgotten room does not live for weeks (ten seconds up to seven days).
pub const MAX_DURATION_SECS: RangeInclusive<u32> = 10..=604_800;
/// `maxDuration` when the creator does not say: eight hours.
pub const DEFAULT_MAX_DURATION_SECS: u32 = 28_800;

// The schema attributes need literals-or-paths of scalars, not ranges.
pub(crate) const MAX_PARTICIPANTS_MIN: u32 = *MAX_PARTICIPANTS.start();
pub(crate) const MAX_PARTICIPANTS_MAX: u32 = *MAX_PARTICIPANTS.end();
pub(crate) const IDLE_TIMEOUT_MIN: u32 = *IDLE_TIMEOUT_SECS.start();
pub(crate) const IDLE_TIMEOUT_MAX: u32 = *IDLE_TIMEOUT_SECS.end();
pub(crate) const MAX_DURATION_MIN: u32 = *MAX_DURATION_SECS.start();
pub(crate) const MAX_DURATION_MAX: u32 = *MAX_DURATION_SECS.end();

pub(crate) fn default_max_participants() -> u32 {
    DEFAULT_MAX_PARTICIPANTS
}
pub(crate) fn default_idle_timeout() -> u32 {
    DEFAULT_IDLE_TIMEOUT_SECS
}
pub(crate) fn default_max_duration() -> u32 {
    DEFAULT_MAX_DURATION_SECS
}

// Each default lies inside its own bounds (checked when the crate compiles).
const _: () = assert!(
    DEFAULT_MAX_PARTICIPANTS >= MAX_PARTICIPANTS_MIN
        && DEFAULT_MAX_PARTICIPANTS <= MAX_PARTICIPANTS_MAX
        && DEFAULT_IDLE_TIMEOUT_SECS >= IDLE_TIMEOUT_MIN
        && DEFAULT_IDLE_TIMEOUT_SECS <= IDLE_TIMEOUT_MAX
        && DEFAULT_MAX_DURATION_SECS >= MAX_DURATION_MIN
        && DEFAULT_MAX_DURATION_SECS <= MAX_DURATION_MAX
);

/// A title holds no control characters (Unicode category Cc, what Rust's
/// `char::is_control` means). Go's regexp syntax, which the API server uses.
pub const TITLE_PATTERN: &str = r"^\P{Cc}*$";
/// A creator's name holds no control characters either (nor does a display name).
pub const CREATOR_NAME_PATTERN: &str = TITLE_PATTERN;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Room, RoomSpec};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
    use kube::CustomResourceExt as _;

    fn spec_schema() -> JSONSchemaProps {
        let crd = Room::crd();
        let root = crd.spec.versions[0].schema.clone().unwrap();
        root.open_api_v3_schema.unwrap().properties.unwrap()["spec"].clone()
    }

    fn field(spec: &JSONSchemaProps, name: &str) -> JSONSchemaProps {
        spec.properties.as_ref().unwrap()[name].clone()
    }

    /// The API server enforces exactly the numbers the router checks against.
    #[test]
    fn schema_bounds_and_defaults_are_the_limits() {
        let spec = spec_schema();
        for (name, range, default) in [
            (
                "maxParticipants",
                &MAX_PARTICIPANTS,
                DEFAULT_MAX_PARTICIPANTS,
            ),
            ("idleTimeout", &IDLE_TIMEOUT_SECS, DEFAULT_IDLE_TIMEOUT_SECS),
            ("maxDuration", &MAX_DURATION_SECS, DEFAULT_MAX_DURATION_SECS),
        ] {
            let f = field(&spec, name);
            assert_eq!(f.minimum, Some(f64::from(*range.start())), "{name} minimum");
            assert_eq!(f.maximum, Some(f64::from(*range.end())), "{name} maximum");
            assert_eq!(
                f.default.map(|d| d.0),
                Some(serde_json::json!(default)),
                "{name} default"
            );
        }
        let title = field(&spec, "title");
        assert_eq!(title.min_length, Some(1));
        assert_eq!(title.max_length, Some(i64::from(TITLE_MAX_CHARS)));
        assert_eq!(title.pattern.as_deref(), Some(TITLE_PATTERN));
        let name = field(&spec, "creatorName");
        assert_eq!(name.min_length, None, "a hand-written Room may have none");
        assert_eq!(name.max_length, Some(i64::from(CREATOR_NAME_MAX_CHARS)));
        assert_eq!(name.pattern.as_deref(), Some(CREATOR_NAME_PATTERN));
        // Defaulted fields are optional: a minimal Room names only these.
        let mut required = spec.required.unwrap();
        required.sort();
        assert_eq!(required, ["creator", "kind", "title"]);
    }

    /// A Room read without the optional fields has the same defaults in Rust.
    #[test]
    fn a_minimal_spec_deserialises_with_the_defaults() {
        let spec: RoomSpec = serde_json::from_value(serde_json::json!({
            "kind": "chat", "title": "Tea", "creator": "ada"
        }))
        .unwrap();
        assert_eq!(spec.max_participants, DEFAULT_MAX_PARTICIPANTS);
        assert_eq!(spec.idle_timeout, DEFAULT_IDLE_TIMEOUT_SECS);
        assert_eq!(spec.max_duration, DEFAULT_MAX_DURATION_SECS);
        assert_eq!(
            spec.creator_name, "",
            "a Room from before creatorName still parses"
        );
    }
}
