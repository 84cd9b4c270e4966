//! The live rooms and their invites: a pure, synchronous in-memory index.
//!
//! The registry owns no I/O and no clock: callers pass `now` (Unix seconds). The
//! HTTP handlers consult and update it under one mutex; runtime events (a room became
//! ready, a room process exited) update it too. Ended rooms leave a tombstone so an
//! old link says "closed" (410) rather than "unknown" (404).

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
#[derive(Debug, Clone)]
pub struct Room {
    pub id: String,
    pub kind: RoomKind,
    pub title: String,
    pub creator: String,
    pub created_at: i64,
    pub state: RoomState,
    /// `host:port` of the room server once it is ready.
    pub endpoint: Option<String>,
    pub max_participants: u32,
    pub idle_timeout_secs: u64,
    pub max_duration_secs: u64,
    pub invites: Vec<Invite>,
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
        for inv in &room.invites {
            self.codes.insert(inv.code.clone(), room.id.clone());
        }
        self.rooms.insert(room.id.clone(), room);
        Ok(())
    }

    pub fn set_ready(&mut self, id: &str, endpoint: String) {
        if let Some(r) = self.rooms.get_mut(id) {
            if r.state == RoomState::Starting {
                r.state = RoomState::Ready;
            }
            r.endpoint = Some(endpoint);
        }
    }

    /// Mark a room closing: from now on its invites admit nobody.
    pub fn set_closing(&mut self, id: &str) {
        if let Some(r) = self.rooms.get_mut(id) {
            r.state = RoomState::Closing;
        }
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

    /// Add an invite to a room `user` created.
    pub fn add_invite(
        &mut self,
        id: &str,
        user: &str,
        invite: Invite,
        max_invites: usize,
    ) -> Result<Invite> {
        let room = self.owned(id, user)?;
        if room.invites.iter().filter(|i| !i.revoked).count() >= max_invites {
            return Err(Error::InviteLimit(max_invites));
        }
        let room = self.rooms.get_mut(id).expect("checked above");
        self.codes.insert(invite.code.clone(), id.to_owned());
        room.invites.push(invite.clone());
        Ok(invite)
    }

    /// Revoke an invite of a room `user` created. Revoked codes answer 410.
    pub fn revoke_invite(&mut self, id: &str, user: &str, invite_id: &str) -> Result<()> {
        self.owned(id, user)?;
        let room = self.rooms.get_mut(id).expect("checked above");
        let inv = room
            .invites
            .iter_mut()
            .find(|i| i.id == invite_id)
            .ok_or(Error::InviteNotFound)?;
        inv.revoked = true;
        Ok(())
    }

    /// The room behind an invite code, if the invite still admits `user` at `now`.
    /// The creator is never counted against `maxUses`.
    pub fn check_invite(&self, code: &str, user: &str, now: i64) -> Result<&Room> {
        let Some(room_id) = self.codes.get(code) else {
            return Err(if self.ended_codes.contains(code) {
                Error::InviteRoomClosed
            } else {
                Error::InviteNotFound
            });
        };
        let room = self.rooms.get(room_id).ok_or(Error::InviteRoomClosed)?;
        match room.state {
            RoomState::Ready => {}
            RoomState::Starting => return Err(Error::RoomNotReady),
            RoomState::Closing | RoomState::Ended => return Err(Error::InviteRoomClosed),
        }
        let inv = room
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
        if room.creator != user && inv.max_uses.is_some_and(|m| inv.uses >= m) {
            return Err(Error::InviteUsedUp);
        }
        Ok(room)
    }

    /// Check the invite again and count one use of it.
    pub fn redeem(&mut self, code: &str, user: &str, now: i64) -> Result<Room> {
        let creator = self.check_invite(code, user, now)?.creator == user;
        let room_id = self.codes[code].clone();
        let room = self.rooms.get_mut(&room_id).expect("checked above");
        if !creator {
            if let Some(inv) = room.invites.iter_mut().find(|i| i.code == code) {
                inv.uses += 1;
            }
        }
        Ok(room.clone())
    }
}

#[cfg(test)]
mod tests;
