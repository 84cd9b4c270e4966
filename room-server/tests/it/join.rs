//! The terminal client, driven with lines in and text out.

use std::io::Write;
use std::sync::{Arc, Mutex};

use rendezvous_room::join::{run_join_with, JoinArgs};
use tokio::sync::mpsc;

use crate::common::*;

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn lines_in_become_messages_and_events_print_as_lines() {
    let room = TestRoom::start().await;
    let mut bob = room.join("bob").await;
    let args = JoinArgs {
        url: room.url(),
        token: room.token("ada"),
        json: false,
    };
    let (lines, rx) = mpsc::channel(8);
    let out = Shared::default();
    let task = tokio::spawn(run_join_with(args, rx, out.clone()));
    expect_event(&mut bob, |e| {
        matches!(e, rendezvous_room::protocol::ServerEvent::Joined { .. })
    })
    .await;
    lines.send("hello from the terminal".into()).await.unwrap();
    expect_message(&mut bob, "hello from the terminal").await;
    bob.say("hi ada").await.unwrap();
    within(async {
        while !out.text().contains("BOB: hi ada") {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    drop(lines); // stdin ends: leave
    within(task).await.unwrap().unwrap();
    let text = out.text();
    assert!(text.starts_with("* joined room r1 as ada"), "{text}");
    assert!(text.contains("ADA: hello from the terminal"), "{text}");
}
