//! Which service engine a connection talks to.
//!
//! The numbers are openais's service ids where openais had the service (EVS
//! 0, CLM 1, CKPT 3, CFG 7); BACKUP is ours. A connection names its service
//! once, in its [`Hello`](crate::setup::Hello), and every frame on it carries
//! that number in its header.

use thiserror::Error;

/// A service the executive may host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum ServiceId {
    /// openais extended virtual synchrony groups (`evs.h`).
    Evs = 0,
    /// SA Forum cluster membership (`saClm.h`).
    Clm = 1,
    /// SA Forum checkpoints (`saCkpt.h`).
    Ckpt = 3,
    /// The configuration and status service (`ais-ring-status`).
    Cfg = 7,
    /// Cluster-wide backup and restore (`ais_backup.h`).
    Backup = 20,
}

/// A service number this version does not know (the executive answers a
/// Hello naming it with `SA_AIS_ERR_NOT_SUPPORTED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("unknown service id {0}")]
pub struct UnknownService(pub u16);

impl ServiceId {
    /// Every known service.
    pub const ALL: [ServiceId; 5] = [
        ServiceId::Evs,
        ServiceId::Clm,
        ServiceId::Ckpt,
        ServiceId::Cfg,
        ServiceId::Backup,
    ];

    /// The wire value.
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// A short upper-case name for logs ("EVS", "CLM", ...).
    pub const fn name(self) -> &'static str {
        match self {
            ServiceId::Evs => "EVS",
            ServiceId::Clm => "CLM",
            ServiceId::Ckpt => "CKPT",
            ServiceId::Cfg => "CFG",
            ServiceId::Backup => "BACKUP",
        }
    }
}

impl TryFrom<u16> for ServiceId {
    type Error = UnknownService;

    fn try_from(code: u16) -> Result<ServiceId, UnknownService> {
        ServiceId::ALL
            .into_iter()
            .find(|service| service.code() == code)
            .ok_or(UnknownService(code))
    }
}

impl From<ServiceId> for u16 {
    fn from(service: ServiceId) -> u16 {
        service.code()
    }
}

impl std::fmt::Display for ServiceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_openais_numbers() {
        assert_eq!(ServiceId::Evs.code(), 0);
        assert_eq!(ServiceId::Clm.code(), 1);
        assert_eq!(ServiceId::Ckpt.code(), 3);
        assert_eq!(ServiceId::Cfg.code(), 7);
        assert_eq!(ServiceId::Backup.code(), 20);
    }

    #[test]
    fn try_from_round_trips_and_rejects_unknown() {
        for service in ServiceId::ALL {
            assert_eq!(ServiceId::try_from(service.code()), Ok(service));
            assert_eq!(u16::from(service), service.code());
        }
        for code in [2, 4, 5, 6, 8, 19, 21, u16::MAX] {
            assert_eq!(ServiceId::try_from(code), Err(UnknownService(code)));
        }
    }
}
