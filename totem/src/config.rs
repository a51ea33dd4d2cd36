//! Totem's configuration: corosync's keys and openais's defaults, validated
//! once into a typed struct (parse, don't validate).
//!
//! Every duration ends in its unit. [`TotemConfig::validate`] is the only way
//! to obtain a [`ValidConfig`], which is what the protocol takes, so the state
//! machine never has to second-guess a zero window or a consensus timeout
//! shorter than the token timeout.

use std::time::Duration;

use crate::ids::NodeId;
use crate::wire::{MAX_MEMBERS, MAX_NETMTU_BYTES, MIN_NETMTU_BYTES};

/// Totem settings as written in a config file (corosync key names in the
/// field docs). Build with [`TotemConfig::new`] for the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotemConfig {
    /// This node's id (`nodeid`).
    pub node_id: NodeId,
    /// `token`: no token for this long means the token is lost (1000 ms).
    pub token_timeout: Duration,
    /// `token_retransmits_before_loss_const`: how many times the token is
    /// retransmitted within one token timeout (4).
    pub token_retransmits_before_loss: u32,
    /// `join`: how often a node in Gather resends its join message (50 ms).
    pub join_timeout: Duration,
    /// `consensus`: how long Gather waits for agreement before failing the
    /// silent nodes (default 1.2 x token).
    pub consensus_timeout: Duration,
    /// `merge`: how often every node announces itself to find other rings
    /// and to learn who hears whom (200 ms).
    pub merge_timeout: Duration,
    /// `fail_recv_const`: token rotations during which a member's aru may
    /// stay behind without progress before that member is removed (2500).
    pub fail_recv_const: u32,
    /// `seqno_unchanged_const`: idle rotations after which the representative
    /// holds the token for `token_hold` before passing it on (30).
    pub seqno_unchanged_const: u32,
    /// `hold`: how long the representative holds the token on an idle ring
    /// (capped at half the token retransmit timeout, so holding never looks
    /// like a lost token).
    pub token_hold: Duration,
    /// `window_size`: messages all nodes together may send per rotation (50).
    pub window_size: u32,
    /// `max_messages`: messages one node may send per token visit (17).
    pub max_messages: u32,
    /// `accelerated_window` (ours; Spread's Accelerated Ring, Babay and
    /// Amir, ICDCS 2016): of the new messages a token visit sends, at most
    /// this many are multicast after the token is passed on, the rest
    /// before it, so the next holder starts while this one still sends.
    /// 0 (the default) is the standard Totem protocol: everything before
    /// the token. At most `max_messages`. See [`crate::srp`]. Off by
    /// default because on a 3-node loopback cluster on 2 cores it gave no
    /// consistent gain (issue #7 evaluation: within run-to-run spread, and
    /// with all nodes sending, lagging clients were closed as slow
    /// consumers where the standard protocol kept them).
    pub accelerated_window: u32,
    /// `netmtu`: largest datagram we send, headers included (1500).
    pub netmtu_bytes: usize,
    /// Largest application message accepted by [`crate::Totem::handle_mcast`]
    /// (fragmented as needed): 1 MiB + slack by default.
    pub max_message_bytes: usize,
    /// Bytes of application messages that may wait for the token before
    /// `handle_mcast` refuses with `QueueFull` (8 MiB).
    pub send_queue_bytes: usize,
    /// Application messages that may wait for the token before
    /// `handle_mcast` refuses with `QueueFull` (65536): each costs about a
    /// hundred bytes of bookkeeping beyond its payload, so without this a
    /// stream of tiny messages could take ~100 x `send_queue_bytes`.
    pub send_queue_messages: usize,
    /// The lowest ring sequence number this node may use for a new ring.
    /// The driver persists the highest ring seq it saw and passes it here on
    /// restart, so a ring id is never reused with other members.
    pub ring_seq_floor: u64,
}

/// Why a configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A duration that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// consensus must exceed the token timeout, or a slow token looks like
    /// a failed consensus (corosync requires 1.2 x token).
    #[error("consensus ({consensus_ms} ms) must be at least 1.2 x token ({token_ms} ms)")]
    ConsensusTooShort {
        /// Configured consensus timeout.
        consensus_ms: u128,
        /// Configured token timeout.
        token_ms: u128,
    },
    /// join must be shorter than consensus, or nobody ever agrees.
    #[error("join ({join_ms} ms) must be shorter than consensus ({consensus_ms} ms)")]
    JoinTooLong {
        /// Configured join timeout.
        join_ms: u128,
        /// Configured consensus timeout.
        consensus_ms: u128,
    },
    /// max_messages larger than window_size can never be used.
    #[error("max_messages ({max_messages}) must not exceed window_size ({window_size})")]
    MaxMessagesOverWindow {
        /// Configured per-visit limit.
        max_messages: u32,
        /// Configured per-rotation limit.
        window_size: u32,
    },
    /// accelerated_window larger than max_messages can never be used.
    #[error(
        "accelerated_window ({accelerated_window}) must not exceed max_messages ({max_messages})"
    )]
    AcceleratedOverMaxMessages {
        /// Configured messages per visit sent after the token.
        accelerated_window: u32,
        /// Configured per-visit limit.
        max_messages: u32,
    },
    /// netmtu outside what a datagram can carry.
    #[error("netmtu {0} is outside {MIN_NETMTU_BYTES}..={MAX_NETMTU_BYTES}")]
    NetMtu(usize),
}

/// A configuration that passed [`TotemConfig::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidConfig(TotemConfig);

impl TotemConfig {
    /// openais's defaults for node `node_id`.
    pub fn new(node_id: NodeId) -> TotemConfig {
        let token_timeout = Duration::from_millis(1000);
        TotemConfig {
            node_id,
            token_timeout,
            token_retransmits_before_loss: 4,
            join_timeout: Duration::from_millis(50),
            consensus_timeout: token_timeout * 6 / 5,
            merge_timeout: Duration::from_millis(200),
            fail_recv_const: 2500,
            seqno_unchanged_const: 30,
            token_hold: Duration::from_millis(180),
            window_size: 50,
            max_messages: 17,
            accelerated_window: 0,
            netmtu_bytes: 1500,
            max_message_bytes: (1 << 20) + 64 * 1024,
            send_queue_bytes: 8 << 20,
            send_queue_messages: 1 << 16,
            ring_seq_floor: 0,
        }
    }

    /// Sets the token timeout and, as corosync does when consensus is not
    /// given, consensus to 1.2 x token.
    pub fn with_token_timeout(mut self, token: Duration) -> TotemConfig {
        self.token_timeout = token;
        self.consensus_timeout = token * 6 / 5;
        self
    }

    /// Checks the settings against each other.
    ///
    /// # Errors
    /// The first [`ConfigError`] found; nothing is changed.
    pub fn validate(self) -> Result<ValidConfig, ConfigError> {
        for (name, d) in [
            ("token", self.token_timeout),
            ("join", self.join_timeout),
            ("consensus", self.consensus_timeout),
            ("merge", self.merge_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.window_size == 0 {
            return Err(ConfigError::Zero("window_size"));
        }
        if self.max_messages == 0 {
            return Err(ConfigError::Zero("max_messages"));
        }
        if self.token_retransmits_before_loss == 0 {
            return Err(ConfigError::Zero("token_retransmits_before_loss_const"));
        }
        if self.fail_recv_const == 0 {
            return Err(ConfigError::Zero("fail_recv_const"));
        }
        if self.send_queue_messages == 0 {
            return Err(ConfigError::Zero("send_queue_messages"));
        }
        if self.consensus_timeout * 5 < self.token_timeout * 6 {
            return Err(ConfigError::ConsensusTooShort {
                consensus_ms: self.consensus_timeout.as_millis(),
                token_ms: self.token_timeout.as_millis(),
            });
        }
        if self.join_timeout >= self.consensus_timeout {
            return Err(ConfigError::JoinTooLong {
                join_ms: self.join_timeout.as_millis(),
                consensus_ms: self.consensus_timeout.as_millis(),
            });
        }
        if self.max_messages > self.window_size {
            return Err(ConfigError::MaxMessagesOverWindow {
                max_messages: self.max_messages,
                window_size: self.window_size,
            });
        }
        if self.accelerated_window > self.max_messages {
            return Err(ConfigError::AcceleratedOverMaxMessages {
                accelerated_window: self.accelerated_window,
                max_messages: self.max_messages,
            });
        }
        if !(MIN_NETMTU_BYTES..=MAX_NETMTU_BYTES).contains(&self.netmtu_bytes) {
            return Err(ConfigError::NetMtu(self.netmtu_bytes));
        }
        Ok(ValidConfig(self))
    }
}

impl ValidConfig {
    /// The validated settings.
    pub fn get(&self) -> &TotemConfig {
        &self.0
    }

    /// How long to wait for evidence that the next node got the token before
    /// sending it again: token / (retransmits + 0.2), as corosync computes.
    pub fn token_retransmit_timeout(&self) -> Duration {
        let c = &self.0;
        c.token_timeout * 5 / (c.token_retransmits_before_loss * 5 + 1)
    }

    /// A peer counts as heard if we received anything from it this recently:
    /// long enough that several announcements (every `merge`) fit, so 30%
    /// loss does not make links flap.
    pub fn heard_window(&self) -> Duration {
        (self.0.merge_timeout * 10).max(self.0.token_timeout * 2)
    }

    /// On token loss, members silent for this long are failed at once
    /// instead of after the consensus timeout: a live member announces
    /// itself every `merge` interval, so three missed announcements and half
    /// a token timeout of silence is a crashed or cut-off node.
    pub fn fast_fail_silence(&self) -> Duration {
        let c = &self.0;
        (c.token_timeout / 2)
            .max(c.merge_timeout * 3)
            .min(c.token_timeout)
    }

    /// Largest ring the wire format can describe.
    pub const fn max_members(&self) -> usize {
        MAX_MEMBERS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n1() -> NodeId {
        NodeId::new(1).expect("nonzero")
    }

    #[test]
    fn defaults_are_openais_and_valid() {
        let c = TotemConfig::new(n1());
        assert_eq!(c.token_timeout, Duration::from_millis(1000));
        assert_eq!(c.consensus_timeout, Duration::from_millis(1200));
        assert_eq!(c.join_timeout, Duration::from_millis(50));
        assert_eq!(c.merge_timeout, Duration::from_millis(200));
        assert_eq!(
            (c.window_size, c.max_messages, c.netmtu_bytes),
            (50, 17, 1500)
        );
        assert_eq!(c.token_retransmits_before_loss, 4);
        assert_eq!(c.fail_recv_const, 2500);
        assert_eq!(c.accelerated_window, 0, "the standard protocol");
        let v = c.validate().expect("defaults validate");
        assert_eq!(
            v.token_retransmit_timeout(),
            Duration::from_nanos(238_095_238)
        );
    }

    #[test]
    fn inconsistent_settings_are_refused() {
        let mut c = TotemConfig::new(n1());
        c.consensus_timeout = Duration::from_millis(1000);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::ConsensusTooShort { .. })
        ));
        let mut c = TotemConfig::new(n1());
        c.max_messages = 51;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::MaxMessagesOverWindow { .. })
        ));
        let mut c = TotemConfig::new(n1());
        c.accelerated_window = 18;
        assert_eq!(
            c.clone().validate(),
            Err(ConfigError::AcceleratedOverMaxMessages {
                accelerated_window: 18,
                max_messages: 17
            })
        );
        c.accelerated_window = 17;
        assert!(c.validate().is_ok(), "every message after the token");
        let mut c = TotemConfig::new(n1());
        c.netmtu_bytes = 100;
        assert_eq!(c.validate(), Err(ConfigError::NetMtu(100)));
        let mut c = TotemConfig::new(n1());
        c.join_timeout = Duration::ZERO;
        assert_eq!(c.validate(), Err(ConfigError::Zero("join")));
        let mut c = TotemConfig::new(n1());
        c.send_queue_messages = 0;
        assert_eq!(c.validate(), Err(ConfigError::Zero("send_queue_messages")));
        let c = TotemConfig::new(n1()).with_token_timeout(Duration::from_millis(300));
        assert_eq!(c.consensus_timeout, Duration::from_millis(360));
        assert!(c.validate().is_ok());
    }
}
