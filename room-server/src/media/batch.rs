//! Many datagrams in one system call: `sendmmsg(2)` on Linux.
//!
//! An SFU's work is mostly sending: one packet in becomes a packet out per
//! subscriber, each to another address, and the profile of the media benchmark
//! shows the kernel's send path as most of the forwarding thread's time. GSO
//! (`UDP_SEGMENT`) only batches datagrams to one destination; `sendmmsg` takes
//! a list of (destination, bytes) and pays the system call once. Linux only;
//! elsewhere the shell sends one datagram at a time.

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
