use super::*;

/// What the join handler does: find the code's room, count a use on it.
fn redeem(r: &mut Registry, code: &str, user: &str, now: i64) -> Result<Room> {
    let id = r.room_of_code(code)?.id.clone();
    r.update(&id, |room| {
        room.redeem(code, user, now).map(|_| room.clone())
    })
}

/// What the invite handlers do: only the creator, then the change on the room.
fn add_invite(r: &mut Registry, id: &str, user: &str, inv: Invite, max: usize) -> Result<Invite> {
    r.owned(id, user)?;
    r.update(id, |room| room.add_invite(inv, max))
}

fn revoke_invite(r: &mut Registry, id: &str, user: &str, invite_id: &str) -> Result<()> {
    r.owned(id, user)?;
    r.update(id, |room| room.revoke_invite(invite_id).map(|_| ()))
}

fn mk_invite(max_uses: Option<u32>, expires_at: Option<i64>) -> Invite {
    Invite {
        id: random_code(),
        code: random_code(),
        created_at: 0,
        expires_at,
        max_uses,
        uses: 0,
        users: Vec::new(),
        revoked: false,
    }
}

fn mk_room(id: &str, creator: &str, invite: Invite) -> Room {
    Room {
        id: id.into(),
        kind: RoomKind::Chat,
        title: "t".into(),
        creator: creator.into(),
        creator_name: format!("{creator} display"),
        created_at: 0,
        state: RoomState::Ready,
        endpoint: Some("127.0.0.1:1".into()),
        max_participants: 10,
        idle_timeout_secs: 60,
        max_duration_secs: 600,
        invites: vec![invite],
        revision: None,
        launching: false,
    }
}

#[test]
fn codes_are_128_bit_and_distinct() {
    let a = random_code();
    assert_eq!(B64.decode(&a).unwrap().len(), 16);
    assert_ne!(a, random_code());
}

#[test]
fn per_user_and_global_limits() {
    let mut r = Registry::default();
    r.insert(mk_room("a", "u", mk_invite(None, None)), 2, 3)
        .unwrap();
    r.insert(mk_room("b", "u", mk_invite(None, None)), 2, 3)
        .unwrap();
    assert!(matches!(
        r.insert(mk_room("c", "u", mk_invite(None, None)), 2, 3),
        Err(Error::RoomLimit(2))
    ));
    r.insert(mk_room("c", "v", mk_invite(None, None)), 2, 3)
        .unwrap();
    assert!(matches!(
        r.insert(mk_room("d", "w", mk_invite(None, None)), 2, 3),
        Err(Error::AtCapacity)
    ));
    assert_eq!(r.rooms_of("u").len(), 2);
}

#[test]
fn invites_expire_run_out_get_revoked_and_die_with_the_room() {
    let mut r = Registry::default();
    let inv = mk_invite(Some(1), Some(100));
    let code = inv.code.clone();
    r.insert(mk_room("a", "owner", inv), 10, 10).unwrap();

    // The creator does not use up the invite.
    redeem(&mut r, &code, "owner", 10).unwrap();
    redeem(&mut r, &code, "guest", 10).unwrap();
    assert!(matches!(
        redeem(&mut r, &code, "guest2", 10),
        Err(Error::InviteUsedUp)
    ));
    assert!(matches!(
        r.check_invite(&code, "guest2", 100),
        Err(Error::InviteExpired)
    ));

    let extra = add_invite(&mut r, "a", "owner", mk_invite(None, None), 10).unwrap();
    assert!(matches!(
        add_invite(&mut r, "a", "guest", mk_invite(None, None), 10),
        Err(Error::NotCreator)
    ));
    assert!(matches!(
        revoke_invite(&mut r, "a", "guest", &extra.id),
        Err(Error::NotCreator)
    ));
    revoke_invite(&mut r, "a", "owner", &extra.id).unwrap();
    assert!(matches!(
        r.check_invite(&extra.code, "guest", 10),
        Err(Error::InviteRevoked)
    ));

    assert!(matches!(
        r.check_invite("nope", "guest", 10),
        Err(Error::InviteNotFound)
    ));
    r.set_closing("a");
    assert!(matches!(
        r.check_invite(&code, "owner", 10),
        Err(Error::InviteRoomClosed)
    ));
    r.remove("a").unwrap();
    assert!(matches!(
        r.check_invite(&code, "owner", 10),
        Err(Error::InviteRoomClosed)
    ));
    assert!(matches!(r.get("a"), Err(Error::RoomEnded)));
    assert!(matches!(r.get("zzz"), Err(Error::RoomNotFound)));
}

#[test]
fn invite_count_is_bounded_and_starting_rooms_admit_nobody() {
    let mut r = Registry::default();
    let inv = mk_invite(None, None);
    let code = inv.code.clone();
    let mut room = mk_room("a", "o", inv);
    room.state = RoomState::Starting;
    r.insert(room, 10, 10).unwrap();
    assert!(matches!(
        r.check_invite(&code, "g", 0),
        Err(Error::RoomNotReady)
    ));
    add_invite(&mut r, "a", "o", mk_invite(None, None), 2).unwrap();
    assert!(matches!(
        add_invite(&mut r, "a", "o", mk_invite(None, None), 2),
        Err(Error::InviteLimit(2))
    ));
    r.set_ready("a", "127.0.0.1:2".into());
    r.check_invite(&code, "g", 0).unwrap();
}

#[test]
fn tombstones_are_bounded() {
    let mut t = Tombstones::default();
    for i in 0..TOMBSTONES + 5 {
        t.insert(i.to_string());
    }
    assert_eq!(t.order.len(), TOMBSTONES);
    assert!(!t.contains("0"));
    assert!(t.contains(&(TOMBSTONES + 4).to_string()));
}

#[test]
fn a_person_joining_again_spends_no_use() {
    let mut r = Registry::default();
    let inv = mk_invite(Some(2), None);
    let code = inv.code.clone();
    r.insert(mk_room("a", "owner", inv), 10, 10).unwrap();
    // A double-click, a reconnect: one person, one use.
    for _ in 0..3 {
        redeem(&mut r, &code, "guest", 0).unwrap();
    }
    redeem(&mut r, &code, "guest2", 0).unwrap();
    // Both admitted people may come back although the link is used up.
    redeem(&mut r, &code, "guest", 0).unwrap();
    redeem(&mut r, &code, "guest2", 0).unwrap();
    assert!(matches!(
        redeem(&mut r, &code, "guest3", 0),
        Err(Error::InviteUsedUp)
    ));
    let room = r.get("a").unwrap();
    assert_eq!(room.invites[0].uses, 2);
    assert_eq!(room.invites[0].users, ["guest", "guest2"]);
}

#[test]
fn a_refused_change_leaves_the_room_as_it_was() {
    let mut r = Registry::default();
    r.insert(mk_room("a", "o", mk_invite(None, None)), 10, 10)
        .unwrap();
    let before = r.get("a").unwrap().clone();
    let res: Result<()> = r.update("a", |room| {
        room.title = "changed".into();
        Err(Error::NotCreator)
    });
    assert!(res.is_err());
    assert_eq!(r.get("a").unwrap(), &before);
}

#[test]
fn the_watch_replaces_older_revisions_only_and_keeps_a_local_close() {
    let mut r = Registry::default();
    let inv = mk_invite(None, None);
    let code = inv.code.clone();
    let mut seen = mk_room("a", "o", inv);
    seen.revision = Some(5);
    r.upsert(seen.clone());
    // An older read (a write's answer overtaken by a newer watch event) is ignored.
    let mut old = seen.clone();
    old.revision = Some(4);
    old.title = "old".into();
    r.upsert(old);
    assert_eq!(r.get("a").unwrap().title, "t");
    // A newer one replaces the entry and its codes.
    let mut newer = seen.clone();
    newer.revision = Some(6);
    let fresh = mk_invite(None, None);
    let fresh_code = fresh.code.clone();
    newer.invites = vec![fresh];
    r.upsert(newer.clone());
    assert!(matches!(
        r.check_invite(&code, "g", 0),
        Err(Error::InviteNotFound)
    ));
    r.check_invite(&fresh_code, "g", 0).unwrap();
    // A close this router started survives a watch event from before the delete.
    r.set_closing("a");
    newer.revision = Some(7);
    r.upsert(newer.clone());
    assert_eq!(r.get("a").unwrap().state, RoomState::Closing);
    // Once it has ended, a late event from before its deletion does not revive it.
    r.remove("a");
    newer.revision = Some(8);
    r.upsert(newer);
    assert!(matches!(r.get("a"), Err(Error::RoomEnded)));
}

#[test]
fn revoked_invites_are_kept_but_bounded() {
    let mut room = mk_room("a", "o", mk_invite(None, None));
    for _ in 0..10 {
        let inv = room.add_invite(mk_invite(None, None), 3).unwrap();
        room.revoke_invite(&inv.id).unwrap();
    }
    assert!(room.invites.len() <= 6, "{}", room.invites.len());
    assert!(room.first_live_invite().is_some());
}

#[test]
fn a_preview_spends_nothing_and_refuses_like_a_join() {
    let mut r = Registry::default();
    let once = mk_invite(Some(1), None);
    let code = once.code.clone();
    r.insert(mk_room("a", "ada", once), 10, 10).unwrap();
    assert_eq!(r.preview(&code, 0).unwrap().creator_name, "ada display");
    assert_eq!(
        r.preview(&code, 0).unwrap().invites[0].uses,
        0,
        "spends no use"
    );
    redeem(&mut r, &code, "bob", 0).unwrap();
    // Used up by bob: an anonymous preview cannot know it is bob asking again.
    assert!(matches!(r.preview(&code, 0), Err(Error::InviteUsedUp)));
    assert!(r.check_invite(&code, "bob", 0).is_ok());
    assert!(matches!(r.preview("nope", 0), Err(Error::InviteNotFound)));
    let id = r.get("a").unwrap().invites[0].id.clone();
    revoke_invite(&mut r, "a", "ada", &id).unwrap();
    assert!(matches!(r.preview(&code, 0), Err(Error::InviteRevoked)));
    r.remove("a");
    assert!(matches!(r.preview(&code, 0), Err(Error::InviteRoomClosed)));
}
