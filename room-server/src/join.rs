//! `rendezvous join`: a terminal chat client. Lines from stdin are chat messages
//! (or `/commands`); room events are printed one per line on stdout.

use std::collections::HashMap;
use std::io::Write;

use tokio::sync::mpsc;

use crate::client::{Incoming, RoomClient};
use crate::protocol::{ClientMessage, Envelope, ServerEvent, TrackKind};

/// Lines read ahead from stdin; a human types far slower than this drains.
const STDIN_BUFFER: usize = 64;

/// Configuration of `rendezvous join`.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "join", about = "Join a room from the terminal")]
pub struct JoinArgs {
    /// The room's WebSocket URL, e.g. `ws://127.0.0.1:8080/rooms/ID/ws`.
    #[arg(long, env = "RENDEZVOUS_JOIN_URL")]
    pub url: String,

    /// The room token (from the router's join endpoint).
    #[arg(long, env = "RENDEZVOUS_JOIN_TOKEN")]
    pub token: String,

    /// Print every event as its JSON frame instead of a readable line.
    #[arg(long, env = "RENDEZVOUS_JOIN_JSON", default_value_t = false)]
    pub json: bool,
}

/// Join, chat until stdin ends or the room closes, then leave.
pub async fn run_join(args: JoinArgs) -> anyhow::Result<()> {
    let (line_tx, lines) = mpsc::channel::<String>(STDIN_BUFFER);
    // Blocking stdin on its own thread: the runtime has no async stdin here.
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if line_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    run_join_with(args, lines, std::io::stdout()).await
}

/// [`run_join`] with the input lines and the output given (tests drive this).
pub async fn run_join_with(
    args: JoinArgs,
    mut lines: mpsc::Receiver<String>,
    mut out: impl Write + Send,
) -> anyhow::Result<()> {
    let mut client = RoomClient::connect(&args.url, &args.token).await?;
    let mut names: HashMap<String, String> = HashMap::new();
    print_welcome(&client, args.json, &mut names, &mut out)?;
    loop {
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line else {
                    client.close().await;
                    return Ok(());
                };
                match parse_line(&line) {
                    Ok(Some(msg)) => client.send(&msg).await?,
                    Ok(None) => {}
                    Err(help) => eprintln!("{help}"),
                }
            }
            item = client.recv() => {
                match item {
                    Some(Incoming::Event(env)) if args.json => writeln!(out, "{}", env.to_json())?,
                    Some(Incoming::Event(env)) => {
                        if let Some(line) = format_event(&env, &mut names) {
                            writeln!(out, "{line}")?;
                        }
                    }
                    Some(Incoming::Frame(text)) => writeln!(out, "{text}")?,
                    Some(Incoming::Closed { code, reason }) => {
                        writeln!(out, "* connection closed: {code} {reason}")?;
                        return Ok(());
                    }
                    None => return Ok(()),
                }
                out.flush()?;
            }
        }
    }
}

fn print_welcome(
    client: &RoomClient,
    json: bool,
    names: &mut HashMap<String, String>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let welcome = client.welcome();
    for p in &welcome.participants {
        names.insert(p.id.clone(), p.name.clone());
    }
    if json {
        let env = Envelope {
            seq: client.welcome_seq(),
            ts: 0,
            event: ServerEvent::Welcome(Box::new(welcome.clone())),
        };
        writeln!(out, "{}", env.to_json())?;
    } else {
        let who: Vec<&str> = welcome
            .participants
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        let (room, you) = (&welcome.room_id, &welcome.you);
        writeln!(
            out,
            "* joined room {room} as {you} — here: {}",
            who.join(", ")
        )?;
        for m in &welcome.backlog {
            writeln!(out, "[{}] {}: {}", m.id, name_of(names, &m.from), m.text)?;
        }
    }
    out.flush()
}

const HELP: &str = "commands: /edit ID TEXT, /delete ID, /react ID EMOJI, /unreact ID EMOJI, \
/typing, /read SEQ, /kick ID, /mute ID, /unmute ID, /lock, /unlock, /end, /leave";

/// Turn one input line into a protocol message (`Ok(None)` for a blank line).
pub fn parse_line(line: &str) -> Result<Option<ClientMessage>, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(None);
    }
    let Some(cmd) = line.strip_prefix('/') else {
        return Ok(Some(ClientMessage::Send {
            text: line.to_owned(),
            client_id: None,
        }));
    };
    let mut parts = cmd.splitn(3, ' ');
    let verb = parts.next().unwrap_or_default();
    let a = parts.next().map(str::to_owned);
    let b = parts.next().map(str::to_owned);
    let num = |s: &Option<String>| s.as_deref().and_then(|s| s.parse::<u64>().ok());
    let msg = match (verb, &a, &b) {
        ("edit", Some(_), Some(text)) => num(&a).map(|message_id| ClientMessage::Edit {
            message_id,
            text: text.clone(),
        }),
        ("delete", Some(_), None) => num(&a).map(|message_id| ClientMessage::Delete { message_id }),
        ("react" | "unreact", Some(_), Some(emoji)) => {
            num(&a).map(|message_id| ClientMessage::React {
                message_id,
                emoji: emoji.clone(),
                remove: verb == "unreact",
            })
        }
        ("typing", None, None) => Some(ClientMessage::Typing { typing: true }),
        ("read", Some(_), None) => num(&a).map(|up_to| ClientMessage::Read { up_to }),
        ("kick", Some(id), reason) => Some(ClientMessage::Kick {
            participant_id: id.clone(),
            reason: reason.clone(),
        }),
        ("mute" | "unmute", Some(id), None) => Some(ClientMessage::Mute {
            participant_id: id.clone(),
            muted: verb == "mute",
        }),
        ("lock" | "unlock", None, None) => Some(ClientMessage::Lock {
            locked: verb == "lock",
        }),
        ("end", None, None) => Some(ClientMessage::EndRoom {}),
        ("leave" | "quit", None, None) => Some(ClientMessage::Leave {}),
        _ => None,
    };
    msg.map(Some).ok_or_else(|| HELP.to_owned())
}

fn name_of<'a>(names: &'a HashMap<String, String>, id: &'a str) -> &'a str {
    names.get(id).map(String::as_str).unwrap_or(id)
}

/// A readable line for an event (`None` for ones not worth a line).
pub fn format_event(env: &Envelope, names: &mut HashMap<String, String>) -> Option<String> {
    let seq = env.seq;
    let line = match &env.event {
        ServerEvent::Welcome(_) => return None,
        ServerEvent::Joined { participant } => {
            names.insert(participant.id.clone(), participant.name.clone());
            format!("* {} joined", participant.name)
        }
        ServerEvent::Disconnected { participant_id } => {
            format!("* {} lost connection", name_of(names, participant_id))
        }
        ServerEvent::Reconnected { participant_id } => {
            format!("* {} is back", name_of(names, participant_id))
        }
        ServerEvent::Left {
            participant_id,
            reason,
        } => format!("* {} left ({reason:?})", name_of(names, participant_id)),
        ServerEvent::Message { id, from, text, .. } => {
            format!("[{id}] {}: {text}", name_of(names, from))
        }
        ServerEvent::Edited { message_id, text } => format!("[{message_id}] (edited) {text}"),
        ServerEvent::Deleted { message_id } => format!("[{message_id}] (deleted)"),
        ServerEvent::Reacted {
            message_id,
            participant_id,
            emoji,
            removed,
        } => {
            let verb = if *removed { "took back" } else { "reacted" };
            format!(
                "[{message_id}] {} {verb} {emoji}",
                name_of(names, participant_id)
            )
        }
        ServerEvent::Typing {
            participant_id,
            typing: true,
        } => format!("* {} is typing…", name_of(names, participant_id)),
        ServerEvent::Typing { .. } | ServerEvent::Read { .. } => return None,
        // WebRTC signalling: the terminal client has no media.
        ServerEvent::Answer { .. }
        | ServerEvent::Offer { .. }
        | ServerEvent::IceCandidate { .. }
        | ServerEvent::Track { .. }
        | ServerEvent::MediaState { .. }
        | ServerEvent::MediaEnded { .. }
        | ServerEvent::ActiveSpeaker { .. } => return None,
        ServerEvent::MediaMuted {
            participant_id,
            kind,
            muted,
            ..
        } => {
            let what = match kind {
                TrackKind::Audio => "microphone",
                TrackKind::Video => "camera",
            };
            let verb = if *muted {
                "turned off"
            } else {
                "allowed again"
            };
            let who = name_of(names, participant_id);
            format!("* {who}'s {what} was {verb} by a moderator")
        }
        ServerEvent::Muted {
            participant_id,
            muted,
            ..
        } => {
            let verb = if *muted { "muted" } else { "unmuted" };
            format!("* {} was {verb}", name_of(names, participant_id))
        }
        ServerEvent::Locked { locked, .. } => {
            format!("* the room is {}", if *locked { "locked" } else { "open" })
        }
        ServerEvent::RoomClosed { reason } => format!("* the room closed ({reason:?})"),
        ServerEvent::Error { code, message, .. } => format!("! {}: {message}", code.as_str()),
    };
    Some(format!("{seq:>6} {line}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_messages_and_commands() {
        assert_eq!(parse_line("  "), Ok(None));
        assert!(
            matches!(parse_line("hi there"), Ok(Some(ClientMessage::Send { text, .. })) if text == "hi there")
        );
        assert_eq!(
            parse_line("/edit 4 new text"),
            Ok(Some(ClientMessage::Edit {
                message_id: 4,
                text: "new text".into()
            }))
        );
        assert_eq!(
            parse_line("/lock"),
            Ok(Some(ClientMessage::Lock { locked: true }))
        );
        assert!(parse_line("/edit x").is_err());
    }

    #[test]
    fn messages_print_with_names() {
        let mut names = HashMap::from([("u1".to_owned(), "Ada".to_owned())]);
        let env = Envelope {
            seq: 7,
            ts: 0,
            event: ServerEvent::Message {
                id: 7,
                from: "u1".into(),
                text: "hello".into(),
                client_id: None,
            },
        };
        assert_eq!(
            format_event(&env, &mut names).unwrap(),
            "     7 [7] Ada: hello"
        );
    }
}
