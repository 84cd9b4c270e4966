//! End to end: the public preview of an invite link, `GET /api/join/{code}`, through
//! `rendezvous up` as a real process: what the page shows before anyone logs in.

mod common;

use std::time::Duration;

use common::{code_of, create_room, join, Up};
use reqwest::Method;
use serde_json::{json, Value};

/// `GET /api/join/CODE` of an invite link, with no authentication.
async fn preview(up: &Up, invite_url: &str) -> (u16, Value) {
    let path = format!("/api/join/{}", code_of(invite_url));
    up.call(Method::GET, &path, None, None).await
}

/// The status and error code of an answer.
fn error_of((status, body): &(u16, Value)) -> (u16, String) {
    let code = body["error"]["code"].as_str().unwrap_or_default();
    (*status, code.to_owned())
}

#[tokio::test]
async fn a_preview_shows_title_kind_and_creator_without_auth_and_spends_no_use() {
    let up = common::start_up(&[]);
    let ada = up.register("ada").await;
    let bob = up.register("bob").await;
    let carol = up.register("carol").await;
    let room = create_room(&up, &ada, json!({"kind": "both", "title": "Tea at four"})).await;
    let id = room["id"].as_str().unwrap();
    let (status, once) = up
        .call(
            Method::POST,
            &format!("/api/rooms/{id}/invites"),
            Some(&ada),
            Some(json!({"maxUses": 1})),
        )
        .await;
    assert_eq!(status, 201, "{once}");
    let once = once["url"].as_str().unwrap().to_owned();

    // Looked at again and again, by nobody in particular: always the same four keys.
    for _ in 0..3 {
        let (status, body) = preview(&up, &once).await;
        assert_eq!(status, 200, "{body}");
        let mut keys: Vec<&str> = body.as_object().unwrap().keys().map(|k| &**k).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["creatorName", "kind", "state", "title"], "{body}");
        assert_eq!(
            body,
            json!({
                "title": "Tea at four",
                "kind": "both",
                "creatorName": "ada display",
                "state": "ready",
            })
        );
    }
    // The permanent link previews the same.
    let (status, body) = preview(&up, room["inviteUrl"].as_str().unwrap()).await;
    assert_eq!((status, &body["creatorName"]), (200, &json!("ada display")));

    // The previews spent nothing: the single use still admits a person.
    let (status, joined) = join(&up, &bob, &once).await;
    assert_eq!(status, 200, "{joined}");
    assert_eq!(joined["room"]["creatorName"], "ada display");
    assert_eq!(
        error_of(&join(&up, &carol, &once).await),
        (410, "invite_used_up".into())
    );
    // Used up by bob: an anonymous preview cannot know it is bob asking, so it says
    // used up; bob's own POST (which knows him) still gets him back in.
    assert_eq!(
        error_of(&preview(&up, &once).await),
        (410, "invite_used_up".into())
    );
    assert_eq!(join(&up, &bob, &once).await.0, 200);
}

#[tokio::test]
async fn previews_of_bad_links_answer_as_joins_do() {
    let up = common::start_up(&[]);
    let ada = up.register("ada").await;
    let bob = up.register("bob").await;
    let room = create_room(&up, &ada, json!({"kind": "chat", "title": "Doomed"})).await;
    let id = room["id"].as_str().unwrap().to_owned();
    let invites = format!("/api/rooms/{id}/invites");
    let (_, revoked) = up.call(Method::POST, &invites, Some(&ada), None).await;
    let (status, _) = up
        .call(
            Method::DELETE,
            &format!("{invites}/{}", revoked["id"].as_str().unwrap()),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, short) = up
        .call(
            Method::POST,
            &invites,
            Some(&ada),
            Some(json!({"expiresIn": 1})),
        )
        .await;
    let (revoked, short) = (
        revoked["url"].as_str().unwrap(),
        short["url"].as_str().unwrap(),
    );
    let unknown = "/join/AAAAAAAAAAAAAAAAAAAAAA";

    let seen = error_of(&preview(&up, revoked).await);
    assert_eq!(seen, (410, "invite_revoked".into()));
    assert_eq!(seen, error_of(&join(&up, &bob, revoked).await));
    let seen = error_of(&preview(&up, unknown).await);
    assert_eq!(seen, (404, "invite_not_found".into()));
    assert_eq!(seen, error_of(&join(&up, &bob, unknown).await));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let seen = error_of(&preview(&up, short).await);
    assert_eq!(seen, (410, "invite_expired".into()));
    assert_eq!(seen, error_of(&join(&up, &bob, short).await));

    // Closed: its links answer room_closed, to a preview as to a join.
    let first = room["inviteUrl"].as_str().unwrap();
    assert_eq!(preview(&up, first).await.0, 200);
    let (status, _) = up
        .call(
            Method::DELETE,
            &format!("/api/rooms/{id}"),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let seen = error_of(&preview(&up, first).await);
    assert_eq!(seen, (410, "room_closed".into()));
    assert_eq!(seen, error_of(&join(&up, &bob, first).await));
}
