//! What logind knows of the people and programs on the machine, over the
//! system bus (zbus): the inhibitors that block a shutdown and the users'
//! sessions; and its scheduled shutdown, which warns them. Only `auto`
//! asks, on the running system; the update boot never does.

use serde::Serialize;

const LOGIND: &str = "org.freedesktop.login1";
const PATH: &str = "/org/freedesktop/login1";
const MANAGER: &str = "org.freedesktop.login1.Manager";
const SYSTEM_BUS_SOCKET: &str = "/run/dbus/system_bus_socket";
/// More than any machine holds: the rest is not looked at.
const MAX_ENTRIES: usize = 256;
/// Texts from other programs (who, why) are cut to this many characters.
const MAX_TEXT: usize = 200;

/// One inhibitor lock as ListInhibitors gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inhibitor {
    /// Colon-separated: shutdown, sleep, idle, handle-power-key, ...
    pub what: String,
    pub who: String,
    pub why: String,
    /// block, delay (or block-weak in newer systemd).
    pub mode: String,
    pub uid: u32,
    pub pid: u32,
}

impl Inhibitor {
    /// Holds a shutdown back: mode block and shutdown among what it
    /// inhibits. A delay lock only delays, and `auto` reboots through it.
    pub fn blocks_shutdown(&self) -> bool {
        self.mode == "block" && self.what.split(':').any(|w| w == "shutdown")
    }

    pub fn describe(&self) -> String {
        format!("{} (pid {}): {}", self.who, self.pid, self.why)
    }
}

/// One logged-in user's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub id: String,
    pub user: String,
    pub uid: u32,
    pub seat: String,
}

/// What logind said, once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    pub inhibitors: Vec<Inhibitor>,
    pub sessions: Vec<Session>,
}

impl Seen {
    pub fn blocking(&self) -> Vec<&Inhibitor> {
        self.inhibitors
            .iter()
            .filter(|i| i.blocks_shutdown())
            .collect()
    }
}

fn cut(s: String) -> String {
    if s.chars().count() <= MAX_TEXT {
        return s;
    }
    s.chars().take(MAX_TEXT).collect::<String>() + "…"
}

fn connect() -> anyhow::Result<zbus::blocking::Connection> {
    if !std::path::Path::new(SYSTEM_BUS_SOCKET).exists() {
        anyhow::bail!("no system bus ({SYSTEM_BUS_SOCKET})");
    }
    let conn = zbus::blocking::Connection::system()?;
    let dbus = zbus::blocking::fdo::DBusProxy::new(&conn)?;
    if !dbus.name_has_owner(zbus::names::BusName::try_from(LOGIND)?)? {
        anyhow::bail!("logind is not running");
    }
    Ok(conn)
}

type RawInhibitor = (String, String, String, String, u32, u32);
type RawSession = (String, u32, String, String, zbus::zvariant::OwnedObjectPath);

/// Asks logind for the inhibitors and the users' sessions (a person's
/// classes, [`is_person`]).
pub fn look() -> anyhow::Result<Seen> {
    let conn = connect()?;
    let call = |method: &str| conn.call_method(Some(LOGIND), PATH, Some(MANAGER), method, &());
    let raw: Vec<RawInhibitor> = call("ListInhibitors")?.body().deserialize()?;
    let inhibitors = raw
        .into_iter()
        .take(MAX_ENTRIES)
        .map(|(what, who, why, mode, uid, pid)| Inhibitor {
            what: cut(what),
            who: cut(who),
            why: cut(why),
            mode: cut(mode),
            uid,
            pid,
        })
        .collect();
    let raw: Vec<RawSession> = call("ListSessions")?.body().deserialize()?;
    let mut sessions = Vec::new();
    for (id, uid, user, seat, path) in raw.into_iter().take(MAX_ENTRIES) {
        if is_person(session_class(&conn, &path).as_deref()) {
            sessions.push(Session {
                id: cut(id),
                user: cut(user),
                uid,
                seat: cut(seat),
            });
        }
    }
    Ok(Seen {
        inhibitors,
        sessions,
    })
}

/// Whether a session of this class (logind's `Class`) is a person's:
/// `user` and, from systemd 256 on, its variants `user-early` (root before
/// systemd-user-sessions), `user-incomplete` (a login not finished yet)
/// and `user-light`; not a greeter, a lock screen, a background job nor a
/// user's service manager (`manager`, a session of its own from 256 on).
/// An unknown class is counted: a person may be there.
fn is_person(class: Option<&str>) -> bool {
    class.is_none_or(|c| c == "user" || c.starts_with("user-"))
}

fn session_class(
    conn: &zbus::blocking::Connection,
    path: &zbus::zvariant::OwnedObjectPath,
) -> Option<String> {
    let proxy = zbus::blocking::fdo::PropertiesProxy::builder(conn)
        .destination(LOGIND)
        .ok()?
        .path(path.as_ref())
        .ok()?
        .build()
        .ok()?;
    let iface = zbus::names::InterfaceName::try_from("org.freedesktop.login1.Session").ok()?;
    let v = proxy.get(iface, "Class").ok()?;
    String::try_from(v).ok()
}

/// Asks logind to reboot at `at_usec` (CLOCK_REALTIME, microseconds): it
/// tells the logged-in users (wall, and their desktops) and reboots then,
/// as `shutdown -r +N` does.
pub fn schedule_reboot(at_usec: u64) -> anyhow::Result<()> {
    let conn = connect()?;
    conn.call_method(
        Some(LOGIND),
        PATH,
        Some(MANAGER),
        "ScheduleShutdown",
        &("reboot", at_usec),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inhibitor(what: &str, mode: &str) -> Inhibitor {
        Inhibitor {
            what: what.into(),
            who: "backup".into(),
            why: "copying the disks".into(),
            mode: mode.into(),
            uid: 0,
            pid: 42,
        }
    }

    #[test]
    fn only_a_blocking_shutdown_lock_holds_the_reboot() {
        let seen = Seen {
            inhibitors: vec![
                inhibitor("sleep:idle", "block"),
                inhibitor("shutdown", "delay"),
                inhibitor("sleep:shutdown", "block"),
                inhibitor("shutdowns", "block"),
            ],
            sessions: Vec::new(),
        };
        let b = seen.blocking();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].what, "sleep:shutdown");
        assert_eq!(b[0].describe(), "backup (pid 42): copying the disks");
    }

    #[test]
    fn a_person_is_any_user_class_not_a_manager_or_greeter() {
        for class in [
            Some("user"),
            Some("user-early"),
            Some("user-incomplete"),
            Some("user-light"),
            None,
        ] {
            assert!(is_person(class), "{class:?}");
        }
        for class in [
            "manager",
            "manager-early",
            "greeter",
            "lock-screen",
            "background",
            "background-light",
            "none",
            "users",
        ] {
            assert!(!is_person(Some(class)), "{class}");
        }
    }

    #[test]
    fn texts_from_other_programs_are_cut() {
        let long = "x".repeat(5000);
        assert_eq!(cut(long).chars().count(), MAX_TEXT + 1);
        assert_eq!(cut("short".into()), "short");
    }
}
