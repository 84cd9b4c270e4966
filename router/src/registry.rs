//! The live rooms and their invites: a pure, synchronous in-memory index.
//!
//! The registry owns no I/O and no clock: callers pass `now` (Unix seconds). The
//! HTTP handlers consult and update it under one mutex; runtime events (a room became
//! ready, a room process exited, the Kubernetes watch saw a Room change) update it
//! too. Ended rooms leave a tombstone so an old link says "closed" (410) rather than
//! "unknown" (404).
//!
//! What an invite admits is decided by [`Room`]'s own methods, so the same rules
//! apply whether the registry is the truth (local rooms) or a mirror of the `Room`
//! objects in a cluster (where the router applies them to a fresh copy of the object
//! and writes it back with optimistic concurrency).

use std::collections::{HashMap, HashSet, VecDeque};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use rand::RngCore as _;

use crate::error::{Error, Result};
use crate::model::{Invite, RoomKind, RoomState};

/// Tombstones kept for ended rooms and their invite codes. Bounded so a long-lived
/// router does not grow without limit; past it, the oldest dead links turn 404.
const TOMBSTONES: usize = 10_000;

/// A live room as the router knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub id: String,
    pub kind: RoomKind,
    pub title: String,
    /// The creator's user id.
    pub creator: String,
    /// The creator's display name when the room was opened; empty for a `Room` object
    /// written without one.
    pub creator_name: String,
    pub created_at: i64,
    pub state: RoomState,
    /// `host:port` of the room server once it is ready.
    pub endpoint: Option<String>,
    pub max_participants: u32,
    pub idle_timeout_secs: u64,
    pub max_duration_secs: u64,
    /// Live and revoked invites, oldest first.
    pub invites: Vec<Invite>,
    /// The `resourceVersion` of the `Room` object this entry was read from
    /// (Kubernetes runtime); `None` for local rooms and rooms not yet seen by a watch.
    pub revision: Option<u64>,
    /// True while this router's start of the room is in flight: a close meanwhile is
    /// carried out by the start task when the start returns.
    pub launching: bool,
}

impl Room {
    /// The first invite that is not revoked: the room's link for its creator.
    pub fn first_live_invite(&self) -> Option<&Invite> {
        self.invites.iter().find(|i| !i.revoked)
    }

    /// Add an invite if the room has fewer than `max_invites` live ones.
    pub fn add_invite(&mut self, invite: Invite, max_invites: usize) -> Result<Invite> {
        if self.invites.iter().filter(|i| !i.revoked).count() >= max_invites {
            return Err(Error::InviteLimit(max_invites));
        }
        // Revoked invites are kept (their links answer 410), but not without bound.
        while self.invites.len() >= 2 * max_invites {
            let Some(pos) = self.invites.iter().position(|i| i.revoked) else {
                break;
            };
            self.invites.remove(pos);
        }
        self.invites.push(invite.clone());
        Ok(invite)
    }

    /// Revoke an invite; its code answers 410 from now on. Revoking twice is fine.
    pub fn revoke_invite(&mut self, invite_id: &str) -> Result<bool> {
        let inv = self
            .invites
            .iter_mut()
            .find(|i| i.id == invite_id)
            .ok_or(Error::InviteNotFound)?;
        let changed = !inv.revoked;
        inv.revoked = true;
        Ok(changed)
    }

    /// Whether the invite `code` still admits `user` at `now`. The creator, and anyone
    /// the invite admitted before, is never counted against `maxUses` again.
    pub fn check_invite(&self, code: &str, user: &str, now: i64) -> Result<&Invite> {
        self.admits(code, Some(user), now)
    }

    /// Whether the invite `code` would admit somebody at `now`; `None` is nobody in
    /// particular (an anonymous preview), for whom a used-up limited invite is used up:
    /// that the asker is among the people it admitted before cannot be known.
    fn admits(&self, code: &str, user: Option<&str>, now: i64) -> Result<&Invite> {
        match self.state {
            RoomState::Ready => {}
            RoomState::Starting => return Err(Error::RoomNotReady),
            RoomState::Closing | RoomState::Ended => return Err(Error::InviteRoomClosed),
        }
        let inv = self
            .invites
            .iter()
            .find(|i| i.code == code)
            .ok_or(Error::InviteNotFound)?;
        if inv.revoked {
            return Err(Error::InviteRevoked);
        }
        if inv.expires_at.is_some_and(|t| t <= now) {
            return Err(Error::InviteExpired);
        }
        let known = user.is_some_and(|u| self.creator == u || inv.users.iter().any(|v| v == u));
        if !known && inv.max_uses.is_some_and(|m| inv.uses >= m) {
            return Err(Error::InviteUsedUp);
        }
        Ok(inv)
    }

    /// Check the invite again and count one use of it for `user`. Returns whether
    /// anything changed that a runtime keeping invites must write: only a limited
    /// invite's first use by a person counts (its list of people is its use count).
    pub fn redeem(&mut self, code: &str, user: &str, now: i64) -> Result<bool> {
        self.check_invite(code, user, now)?;
        let creator = self.creator == user;
        let Some(inv) = self.invites.iter_mut().find(|i| i.code == code) else {
            return Err(Error::InviteNotFound);
        };
        if creator || inv.users.iter().any(|u| u == user) {
            return Ok(false);
        }
        inv.uses += 1;
        if inv.max_uses.is_some() {
            // Bounded by maxUses (itself bounded at creation).
            inv.users.push(user.to_owned());
            return Ok(true);
        }
        Ok(false)
    }
}

/// A bounded FIFO set: remembers the last `cap` keys.
#[derive(Debug, Default)]
struct Tombstones {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Tombstones {
    fn insert(&mut self, key: String) {
        if self.set.insert(key.clone()) {
            self.order.push_back(key);
            if self.order.len() > TOMBSTONES {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    fn contains(&self, key: &str) -> bool {
        self.set.contains(key)
    }
}

/// Rooms by id, invite codes to rooms, and tombstones.
#[derive(Debug, Default)]
pub struct Registry {
    rooms: HashMap<String, Room>,
    codes: HashMap<String, String>,
    ended_rooms: Tombstones,
    ended_codes: Tombstones,
}

/// A new unguessable id: 128 random bits, base64url.
pub fn random_code() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    B64.encode(b)
}

impl Registry {
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Live rooms of `user`, oldest first.
    pub fn rooms_of(&self, user: &str) -> Vec<&Room> {
        let mut v: Vec<_> = self.rooms.values().filter(|r| r.creator == user).collect();
        v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        v
    }

    pub fn ids(&self) -> Vec<String> {
        self.rooms.keys().cloned().collect()
    }

    /// A live room, or why not: ended (410) or never known (404).
    pub fn get(&self, id: &str) -> Result<&Room> {
        match self.rooms.get(id) {
            Some(r) => Ok(r),
            None if self.ended_rooms.contains(id) => Err(Error::RoomEnded),
            None => Err(Error::RoomNotFound),
        }
    }

    /// Admit a new room if `user` and the router are under their limits.
    pub fn insert(&mut self, room: Room, per_user: usize, max_rooms: usize) -> Result<()> {
        let mine = self
            .rooms
            .values()
            .filter(|r| r.creator == room.creator)
            .count();
        if mine >= per_user {
            return Err(Error::RoomLimit(per_user));
        }
        if self.rooms.len() >= max_rooms {
            return Err(Error::AtCapacity);
        }
        self.put(room);
        Ok(())
    }

    /// Take in a room as the cluster holds it (a watch event or a write's answer),
    /// without limits: what the cluster holds is the truth. An entry read from an
    /// older revision than the one kept is ignored, a close this router started stays
    /// a close, and an ended room stays ended.
    pub fn upsert(&mut self, mut room: Room) {
        // A room this router saw end does not come back from a late watch event (ids
        // are never reused).
        if self.ended_rooms.contains(&room.id) {
            return;
        }
        if let Some(old) = self.rooms.get(&room.id) {
            if old.revision.is_some() && old.revision >= room.revision {
                return;
            }
            if old.state == RoomState::Closing {
                room.state = RoomState::Closing;
            }
            room.launching = old.launching;
        }
        self.put(room);
    }

    /// Insert or replace `room`, keeping the code index in step with its invites.
    fn put(&mut self, room: Room) {
        if let Some(old) = self.rooms.get(&room.id) {
            for inv in &old.invites {
                self.codes.remove(&inv.code);
            }
        }
        for inv in &room.invites {
            self.codes.insert(inv.code.clone(), room.id.clone());
        }
        self.rooms.insert(room.id.clone(), room);
    }

    /// Apply `f` to a copy of a live room and keep the copy if `f` succeeds (a refused
    /// change leaves the room as it was), re-indexing its invite codes.
    pub fn update<T>(&mut self, id: &str, f: impl FnOnce(&mut Room) -> Result<T>) -> Result<T> {
        let mut room = self.get(id)?.clone();
        let out = f(&mut room)?;
        self.put(room);
        Ok(out)
    }

    pub fn set_ready(&mut self, id: &str, endpoint: String) {
        if let Some(r) = self.rooms.get_mut(id) {
            if r.state == RoomState::Starting {
                r.state = RoomState::Ready;
            }
            r.endpoint = Some(endpoint);
        }
    }

    /// Mark a room closing: from now on its invites admit nobody. Returns the state
    /// it had, or `None` if it is not live.
    pub fn set_closing(&mut self, id: &str) -> Option<RoomState> {
        let r = self.rooms.get_mut(id)?;
        Some(std::mem::replace(&mut r.state, RoomState::Closing))
    }

    /// Put a room that failed to close back into `state`, so a later close retries.
    pub fn reopen(&mut self, id: &str, state: RoomState) {
        if let Some(r) = self.rooms.get_mut(id) {
            if r.state == RoomState::Closing {
                r.state = state;
            }
        }
    }

    /// The start of a room returned; whether a close came in meanwhile.
    pub fn launched(&mut self, id: &str) -> Option<bool> {
        let r = self.rooms.get_mut(id)?;
        r.launching = false;
        Some(r.state == RoomState::Closing)
    }

    /// Forget a room; its id and invite codes become tombstones.
    pub fn remove(&mut self, id: &str) -> Option<Room> {
        let room = self.rooms.remove(id)?;
        for inv in &room.invites {
            self.codes.remove(&inv.code);
            self.ended_codes.insert(inv.code.clone());
        }
        self.ended_rooms.insert(room.id.clone());
        Some(room)
    }

    /// The room of `id` if `user` created it.
    pub fn owned(&self, id: &str, user: &str) -> Result<&Room> {
        let room = self.get(id)?;
        if room.creator != user {
            return Err(Error::NotCreator);
        }
        Ok(room)
    }

    /// The live room an invite code belongs to, or why there is none.
    pub fn room_of_code(&self, code: &str) -> Result<&Room> {
        let Some(room_id) = self.codes.get(code) else {
            return Err(if self.ended_codes.contains(code) {
                Error::InviteRoomClosed
            } else {
                Error::InviteNotFound
            });
        };
        self.rooms.get(room_id).ok_or(Error::InviteRoomClosed)
    }

    /// The room behind an invite code, if the invite still admits `user` at `now`.
    pub fn check_invite(&self, code: &str, user: &str, now: i64) -> Result<&Room> {
        let room = self.room_of_code(code)?;
        room.check_invite(code, user, now)?;
        Ok(room)
    }

    /// The room behind an invite code, if the invite would admit somebody at `now`
    /// who has not used it before: what an anonymous preview of the link may show.
    /// Reads only; the same refusals as [`Registry::check_invite`].
    pub fn preview(&self, code: &str, now: i64) -> Result<&Room> {
        let room = self.room_of_code(code)?;
        room.admits(code, None, now)?;
        Ok(room)
    }
}

#[cfg(test)]
mod tests;
