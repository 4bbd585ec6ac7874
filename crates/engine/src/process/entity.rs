//! The entity id: one process for its whole life (boot id, pid, start time),
//! and its one string form, `BOOT_ID:PID:START` or `BOOT_ID:PID:sesSES`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Names one process: a pid is reused, a pid with its start time within one
/// boot is not.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityId {
    pub boot_id: Arc<str>,
    pub pid: u32,
    pub start: Start,
}

/// What tells this process from others that had its pid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Start {
    /// Start time in clock ticks since boot (field 22 of /proc/PID/stat).
    Ticks(u64),
    /// The audit session id of a process never seen alive: the start time is
    /// unknown, and the session at least keeps one vanished process's events
    /// together.
    Session(String),
}

impl EntityId {
    pub fn new(boot_id: impl Into<Arc<str>>, pid: u32, start_ticks: u64) -> EntityId {
        EntityId {
            boot_id: boot_id.into(),
            pid,
            start: Start::Ticks(start_ticks),
        }
    }

    /// The fallback form, for a process whose start time was never seen.
    pub fn fallback(boot_id: impl Into<Arc<str>>, pid: u32, session: &str) -> EntityId {
        EntityId {
            boot_id: boot_id.into(),
            pid,
            start: Start::Session(session.to_owned()),
        }
    }

    /// The start time in clock ticks, unless this is the fallback form.
    pub fn start_ticks(&self) -> Option<u64> {
        match self.start {
            Start::Ticks(t) => Some(t),
            Start::Session(_) => None,
        }
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let EntityId { boot_id, pid, .. } = self;
        match &self.start {
            Start::Ticks(t) => write!(f, "{boot_id}:{pid}:{t}"),
            Start::Session(ses) => write!(f, "{boot_id}:{pid}:ses{ses}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an entity id (BOOT_ID:PID:START or BOOT_ID:PID:sesSES): {0:?}")]
pub struct EntityIdError(String);

impl FromStr for EntityId {
    type Err = EntityIdError;

    /// The boot id ends at the first ':' (boot ids are UUIDs); what follows
    /// the pid is the start, whatever it holds in the fallback form.
    fn from_str(s: &str) -> Result<EntityId, EntityIdError> {
        let bad = || EntityIdError(s.to_owned());
        let (boot_id, rest) = s.split_once(':').ok_or_else(bad)?;
        let (pid, start) = rest.split_once(':').ok_or_else(bad)?;
        let pid = pid.parse().map_err(|_| bad())?;
        let start = match start.strip_prefix("ses") {
            Some(ses) => Start::Session(ses.to_owned()),
            None => Start::Ticks(start.parse().map_err(|_| bad())?),
        };
        Ok(EntityId {
            boot_id: boot_id.into(),
            pid,
            start,
        })
    }
}

impl serde::Serialize for EntityId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for EntityId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<EntityId, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOT: &str = "0b8c9a2e-3d4f-4a5b-9c6d-7e8f90a1b2c3";

    #[test]
    fn the_string_form_is_boot_pid_start() {
        let id = EntityId::new(BOOT, 4242, 930_250);
        assert_eq!(id.to_string(), format!("{BOOT}:4242:930250"));
        assert_eq!(id.to_string().parse::<EntityId>(), Ok(id.clone()));
        assert_eq!(id.start_ticks(), Some(930_250));
        assert_eq!(
            serde_json::to_value(&id).unwrap(),
            serde_json::json!(format!("{BOOT}:4242:930250"))
        );
        let back: EntityId = serde_json::from_str(&format!("\"{BOOT}:4242:930250\"")).unwrap();
        assert_eq!(back, id);
    }

    #[test]
    fn the_fallback_form_carries_the_session() {
        let id = EntityId::fallback("boot", 9, "4294967295");
        assert_eq!(id.to_string(), "boot:9:ses4294967295");
        assert_eq!("boot:9:ses4294967295".parse::<EntityId>(), Ok(id.clone()));
        assert_eq!(id.start_ticks(), None);
        // A record without ses= gives an empty session.
        let empty = EntityId::fallback("boot", 9, "");
        assert_eq!(empty.to_string(), "boot:9:ses");
        assert_eq!("boot:9:ses".parse::<EntityId>(), Ok(empty));
    }

    #[test]
    fn malformed_ids_do_not_parse() {
        for s in [
            "",
            "boot",
            "boot:9",
            "boot:x:1",
            "boot:9:",
            "boot:9:x1",
            "boot:-1:5",
        ] {
            assert!(s.parse::<EntityId>().is_err(), "{s:?}");
        }
    }
}
