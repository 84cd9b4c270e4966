//! ICE-TCP, the tokio side: the room's TCP listener on the media port number.
//!
//! A client whose network drops UDP connects to the room's passive TCP
//! candidate (RFC 6544) and sends its packets (STUN, DTLS, SRTP) as RFC 4571
//! frames: a 16-bit length, then the packet. Each connection is a task that
//! reads frames into the room's actor as [`TcpEvent`]s and writes the frames
//! the media core sends it; the core tells the two kinds of packets apart only
//! by their [`super::Transport`] tag.
//!
//! Limits, so that TCP costs the room no more than UDP does:
//! - at most `max_links` connections at once ([`LINKS_PER_PARTICIPANT`] per
//!   participant); one more is closed as soon as it is accepted;
//! - a frame over [`DATAGRAM_BYTES`] (no media packet is that large) or of
//!   length 0 ends the connection;
//! - the first frame must arrive within [`FIRST_FRAME_TIMEOUT`] and every next
//!   one within [`IDLE_TIMEOUT`] (ICE consent checks alone come every few
//!   seconds);
//! - a first frame that is not a verified ICE check of a live session, or a
//!   session that ends, closes the connection ([`super::MediaOutput::Hangup`]);
//! - what the room sends waits in a queue of [`OUTBOX_FRAMES`]; when a client
//!   reads too slowly the newest frames are dropped, as a full UDP send buffer
//!   drops datagrams.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

use super::shell::DATAGRAM_BYTES;

/// How long a new connection may take to send its first frame (an ICE check).
pub(crate) const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a connection may stay silent; browsers send ICE consent checks
/// every 5 s on average (RFC 7675) and RTCP more often.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Frames queued for one connection's writer: about a second of one
/// subscriber's video at a few hundred packets a second.
pub(crate) const OUTBOX_FRAMES: usize = 512;

/// ICE-TCP connections the room takes per participant: as many addresses as
/// the demultiplexer keeps for one session.
pub(crate) const LINKS_PER_PARTICIPANT: usize = 4;

/// Frames written with one `write` call at most, in bytes.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// What connection tasks tell the room's actor.
#[derive(Debug)]
pub(crate) enum TcpEvent {
    /// A connection was accepted; `writer` takes the packets to frame and send.
    Open {
        peer: SocketAddr,
        writer: mpsc::Sender<Vec<u8>>,
    },
    /// One packet, unframed.
    Frame { peer: SocketAddr, data: Vec<u8> },
    /// The connection ended, whichever side ended it.
    Closed { peer: SocketAddr },
}

/// Accept connections until the actor goes away.
pub(crate) async fn serve(listener: TcpListener, events: mpsc::Sender<TcpEvent>, max_links: usize) {
    let slots = Arc::new(Semaphore::new(max_links));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::debug!(error = %e, "ICE-TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = events.closed() => return,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, max_links, "ICE-TCP connection refused: too many");
            continue;
        };
        let events = events.clone();
        tokio::spawn(async move {
            link(stream, peer, events).await;
            drop(slot);
        });
    }
}

/// One connection, from accept to close.
async fn link(stream: TcpStream, peer: SocketAddr, events: mpsc::Sender<TcpEvent>) {
    // Media is latency-bound: never wait to fill a segment.
    let _ = stream.set_nodelay(true);
    let (tx, rx) = mpsc::channel(OUTBOX_FRAMES);
    if events
        .send(TcpEvent::Open { peer, writer: tx })
        .await
        .is_err()
    {
        return;
    }
    let (read, write) = stream.into_split();
    let mut writer = tokio::spawn(write_frames(write, rx));
    let why = tokio::select! {
        why = read_frames(read, peer, &events) => why,
        _ = &mut writer => "closed by the room".into(),
    };
    writer.abort();
    tracing::debug!(%peer, %why, "ICE-TCP connection ended");
    let _ = events.send(TcpEvent::Closed { peer }).await;
}

/// Read frames into the actor until the connection ends; returns why it did.
async fn read_frames(
    read: OwnedReadHalf,
    peer: SocketAddr,
    events: &mpsc::Sender<TcpEvent>,
) -> String {
    let mut read = BufReader::with_capacity(2 * DATAGRAM_BYTES, read);
    let mut wait = FIRST_FRAME_TIMEOUT;
    loop {
        let frame = match tokio::time::timeout(wait, read_frame(&mut read)).await {
            Err(_) => return format!("nothing received for {wait:?}"),
            Ok(Err(e)) => return e.to_string(),
            Ok(Ok(data)) => data,
        };
        if events
            .send(TcpEvent::Frame { peer, data: frame })
            .await
            .is_err()
        {
            return "the room ended".into();
        }
        wait = IDLE_TIMEOUT;
    }
}

/// One RFC 4571 frame's packet.
async fn read_frame(read: &mut BufReader<OwnedReadHalf>) -> io::Result<Vec<u8>> {
    let len = usize::from(read.read_u16().await?);
    if len == 0 || len > DATAGRAM_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes: a packet is 1 to {DATAGRAM_BYTES} bytes"),
        ));
    }
    let mut data = vec![0; len];
    read.read_exact(&mut data).await?;
    Ok(data)
}

/// Append `packet` to `out` as one RFC 4571 frame.
pub(crate) fn frame(out: &mut Vec<u8>, packet: &[u8]) {
    let len = u16::try_from(packet.len()).expect("the core sends packets under 64 KiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(packet);
}

/// Frame and write what the room sends, as many queued packets per call as fit.
async fn write_frames(mut write: OwnedWriteHalf, mut rx: mpsc::Receiver<Vec<u8>>) {
    let mut buf = Vec::with_capacity(WRITE_BATCH_BYTES);
    while let Some(packet) = rx.recv().await {
        buf.clear();
        frame(&mut buf, &packet);
        while buf.len() < WRITE_BATCH_BYTES {
            match rx.try_recv() {
                Ok(packet) => frame(&mut buf, &packet),
                Err(_) => break,
            }
        }
        if write.write_all(&buf).await.is_err() {
            return;
        }
    }
    let _ = write.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn room() -> (SocketAddr, mpsc::Receiver<TcpEvent>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(serve(listener, tx, 2));
        (addr, rx)
    }

    async fn next(rx: &mut mpsc::Receiver<TcpEvent>) -> TcpEvent {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an event in time")
            .expect("the listener runs")
    }

    #[tokio::test]
    async fn frames_are_read_and_written_whole_whatever_the_segments() {
        let (addr, mut events) = room().await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let TcpEvent::Open { peer, writer } = next(&mut events).await else {
            panic!("expected Open");
        };
        assert_eq!(peer, client.local_addr().unwrap());
        // Two frames, sent one byte at a time.
        let mut wire = Vec::new();
        frame(&mut wire, b"first");
        frame(&mut wire, &[7; DATAGRAM_BYTES]);
        for b in &wire {
            client.write_all(&[*b]).await.unwrap();
        }
        for want in [b"first".to_vec(), vec![7; DATAGRAM_BYTES]] {
            match next(&mut events).await {
                TcpEvent::Frame { peer: p, data } => {
                    assert_eq!(p, peer);
                    assert_eq!(data, want);
                }
                other => panic!("expected a frame, got {other:?}"),
            }
        }
        // The room's packets come back framed, in order.
        for i in 0..100u8 {
            writer.send(vec![i; 1 + usize::from(i)]).await.unwrap();
        }
        for i in 0..100u8 {
            let len = client.read_u16().await.unwrap();
            assert_eq!(len, 1 + u16::from(i));
            let mut data = vec![0; usize::from(len)];
            client.read_exact(&mut data).await.unwrap();
            assert!(data.iter().all(|b| *b == i));
        }
        // Dropping the writer is the room hanging up: the client sees EOF.
        drop(writer);
        assert_eq!(client.read(&mut [0; 8]).await.unwrap(), 0);
        assert!(matches!(next(&mut events).await, TcpEvent::Closed { peer: p } if p == peer));
    }

    #[tokio::test]
    async fn oversized_empty_and_silent_connections_are_closed_and_the_cap_holds() {
        let (addr, mut events) = room().await;
        for bad in [vec![0xff, 0xff, 1, 2, 3], vec![0, 0]] {
            let mut client = TcpStream::connect(addr).await.unwrap();
            let TcpEvent::Open { peer, writer: _w } = next(&mut events).await else {
                panic!("expected Open");
            };
            client.write_all(&bad).await.unwrap();
            assert!(matches!(next(&mut events).await, TcpEvent::Closed { peer: p } if p == peer));
            assert_eq!(client.read(&mut [0; 8]).await.unwrap_or(0), 0);
        }
        // Two slots: a third connection is closed on accept, without an event.
        let mut a = TcpStream::connect(addr).await.unwrap();
        let _b = TcpStream::connect(addr).await.unwrap();
        let (TcpEvent::Open { writer: _wa, .. }, TcpEvent::Open { writer: _wb, .. }) =
            (next(&mut events).await, next(&mut events).await)
        else {
            panic!("expected two Opens");
        };
        let mut c = TcpStream::connect(addr).await.unwrap();
        assert_eq!(c.read(&mut [0; 8]).await.unwrap_or(0), 0);
        // A silent one is closed after FIRST_FRAME_TIMEOUT, which frees a slot.
        tokio::time::sleep(FIRST_FRAME_TIMEOUT).await;
        for _ in 0..2 {
            assert!(matches!(next(&mut events).await, TcpEvent::Closed { .. }));
        }
        assert_eq!(a.read(&mut [0; 8]).await.unwrap_or(0), 0);
        let _d = TcpStream::connect(addr).await.unwrap();
        assert!(matches!(next(&mut events).await, TcpEvent::Open { .. }));
    }
}
