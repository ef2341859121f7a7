//! paranoid-execwatch: makes foreign code execution loud. It reads the kernel audit stream
//! (the read-log netlink multicast group, beside auditd), gathers each exec event's records,
//! decides whether code from outside /nix/store and the allow-list ran or was attempted, and
//! says so at priority `alert` in the journal (so it travels with paranoid.logs.remote), on an
//! optional webhook and command; floods are summarised with exact counts; audit switched off,
//! rules removed and lost records are alerts too. See docs/execwatch.md.

pub mod alert;
pub mod cli;
pub mod decide;
pub mod event;
pub mod netlink;
pub mod ratelimit;
pub mod sinks;
pub mod tamper;
pub mod watch;
