//! Many datagrams in one system call: `sendmmsg(2)` and `recvmmsg(2)` on Linux.
//!
//! An SFU's work is mostly sending: one packet in becomes a packet out per
//! subscriber, each to another address, and the profile of the media benchmark
//! shows the kernel's send path as most of the forwarding thread's time. GSO
//! (`UDP_SEGMENT`) only batches datagrams to one destination; `sendmmsg` takes
//! a list of (destination, bytes) and pays the system call once. On the way in,
//! `recvmmsg` takes what a busy room's publishers sent since the last wake-up
//! in one call, and the core's output for all of it leaves in one batch of
//! sends. Linux only; elsewhere the shell sends and receives one datagram at a
//! time.

use std::io;
use std::net::SocketAddr;

/// Datagrams per system call at most (the kernel's `UIO_MAXIOV` is 1024).
pub const MAX_BATCH: usize = 64;

/// Send a prefix of `datagrams` from the non-blocking socket `fd` without
/// waiting; returns how many went. An error names the first datagram that did
/// not go (`WouldBlock`: the send buffer is full).
pub fn send_batch(
    fd: std::os::fd::BorrowedFd<'_>,
    datagrams: &[(SocketAddr, &[u8])],
) -> io::Result<usize> {
    use nix::sys::socket::{sendmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;

    let n = datagrams.len().min(MAX_BATCH);
    if n == 0 {
        return Ok(0);
    }
    let slices: Vec<[IoSlice<'_>; 1]> = datagrams[..n]
        .iter()
        .map(|(_, data)| [IoSlice::new(data)])
        .collect();
    let addrs: Vec<Option<SockaddrStorage>> = datagrams[..n]
        .iter()
        .map(|(to, _)| Some(SockaddrStorage::from(*to)))
        .collect();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(n, None);
    let sent = sendmmsg(
        fd.as_raw_fd(),
        &mut headers,
        &slices,
        &addrs,
        [],
        MsgFlags::MSG_DONTWAIT,
    )?;
    Ok(sent.count())
}

/// Datagrams one [`recv_batch`] call takes at most.
pub const RECV_BATCH: usize = 32;

/// Receive up to `bufs.len()` datagrams from the non-blocking socket `fd`
/// without waiting, one into each buffer, appending (length, source) of each
/// to `got` in arrival order. A datagram longer than its buffer is cut short.
/// `WouldBlock` when none is waiting.
pub fn recv_batch(
    fd: std::os::fd::BorrowedFd<'_>,
    bufs: &mut [Vec<u8>],
    got: &mut Vec<(usize, SocketAddr)>,
) -> io::Result<usize> {
    use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;

    if bufs.is_empty() {
        return Ok(0);
    }
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(bufs.len(), None);
    let mut slices: Vec<[IoSliceMut<'_>; 1]> =
        bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
    let received = recvmmsg(
        fd.as_raw_fd(),
        &mut headers,
        slices.iter_mut(),
        MsgFlags::MSG_DONTWAIT,
        None,
    )?;
    let before = got.len();
    for msg in received {
        let source = msg.address.and_then(|a| {
            if let Some(v4) = a.as_sockaddr_in() {
                Some(SocketAddr::from(std::net::SocketAddrV4::from(*v4)))
            } else {
                a.as_sockaddr_in6()
                    .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6)))
            }
        });
        // A datagram without a source address is no packet anyone can answer.
        if let Some(source) = source {
            got.push((msg.bytes, source));
        }
    }
    Ok(got.len() - before)
}

/// Send every datagram, `MAX_BATCH` per call, skipping one that the kernel
/// refuses (an unreachable address) and stopping when the send buffer is full:
/// a datagram that cannot go now is dropped, as a congested network would, and
/// RTP copes. Returns (sent, dropped).
pub fn send_all(
    fd: std::os::fd::BorrowedFd<'_>,
    datagrams: &[(SocketAddr, &[u8])],
) -> (usize, usize) {
    let (mut at, mut sent) = (0, 0);
    while at < datagrams.len() {
        match send_batch(fd, &datagrams[at..]) {
            Ok(0) => break,
            Ok(n) => {
                sent += n;
                at += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => {
                tracing::trace!(error = %e, destination = %datagrams[at].0, "datagram dropped");
                at += 1;
            }
        }
    }
    (sent, datagrams.len() - sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn one_call_sends_to_many_addresses_in_order() {
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.set_nonblocking(true).unwrap();
        let rx: Vec<std::net::UdpSocket> = (0..3)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let payloads: Vec<Vec<u8>> = (0..150u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let datagrams: Vec<(SocketAddr, &[u8])> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| (rx[i % 3].local_addr().unwrap(), p.as_slice()))
            .collect();
        // More than one batch: the rest goes in the next calls.
        assert_eq!(send_batch(tx.as_fd(), &datagrams).unwrap(), MAX_BATCH);
        let (sent, dropped) = send_all(tx.as_fd(), &datagrams[MAX_BATCH..]);
        assert_eq!((sent, dropped), (150 - MAX_BATCH, 0));
        let mut buf = [0u8; 256];
        for (i, p) in payloads.iter().enumerate() {
            let (n, from) = rx[i % 3].recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], p.as_slice(), "datagram {i}");
            assert_eq!(from, tx.local_addr().unwrap());
        }
        assert_eq!(send_batch(tx.as_fd(), &[]).unwrap(), 0);
    }

    #[test]
    fn one_call_receives_what_is_waiting_in_order_with_sources() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx: Vec<std::net::UdpSocket> = (0..2)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut bufs = vec![vec![0u8; 64]; RECV_BATCH];
        let mut got = Vec::new();
        let err = recv_batch(rx.as_fd(), &mut bufs, &mut got).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        for i in 0..40u8 {
            let len = if i == 5 { 100 } else { 1 + usize::from(i) };
            tx[usize::from(i % 2)]
                .send_to(&vec![i; len], rx.local_addr().unwrap())
                .unwrap();
        }
        // 32 in the first call, the other 8 in the next.
        assert_eq!(
            recv_batch(rx.as_fd(), &mut bufs, &mut got).unwrap(),
            RECV_BATCH
        );
        for (i, (len, from)) in got.iter().enumerate() {
            let want = if i == 5 { 64 } else { 1 + i };
            assert_eq!(*len, want, "datagram {i}, the long one cut short");
            assert!(bufs[i][..*len].iter().all(|b| usize::from(*b) == i));
            assert_eq!(*from, tx[i % 2].local_addr().unwrap());
        }
        got.clear();
        assert_eq!(recv_batch(rx.as_fd(), &mut bufs, &mut got).unwrap(), 8);
        assert_eq!(got[7].0, 40);
        assert_eq!(recv_batch(rx.as_fd(), &mut [], &mut got).unwrap(), 0);
    }

    #[test]
    fn an_address_the_kernel_refuses_is_skipped_not_fatal() {
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.set_nonblocking(true).unwrap();
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // An IPv6 destination from an IPv4 socket: EAFNOSUPPORT / EINVAL.
        let bad: SocketAddr = "[::1]:9".parse().unwrap();
        let datagrams = [(bad, &b"no"[..]), (rx.local_addr().unwrap(), &b"yes"[..])];
        assert_eq!(send_all(tx.as_fd(), &datagrams), (1, 1));
        let mut buf = [0u8; 8];
        let (n, _) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"yes");
    }
}
