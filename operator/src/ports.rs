//! `MediaPortPool`: which host port of the range (`--media-host-ports`) a new room
//! Pod gets.
//!
//! Agones' way for game servers: the operator picks the port before the Pod is
//! scheduled, and the scheduler's `NodePorts` filter never puts two Pods asking for
//! one host port (and protocol) on one node. So the pool only has to spread: each new
//! Pod gets the port the fewest room Pods hold (ties: the lowest). With N nodes and a
//! range of R ports, N × R Rooms fit; past that, or on a node short of the port, the
//! Pod stays `Pending` and the Room's status says `Unschedulable` with the
//! scheduler's message.
//!
//! The holders are the room Pods in the controller's cache (their `media` host port)
//! and the ports handed out whose Pods the cache does not show yet: between the
//! create call and its watch event, a second Room reconciled at the same moment must
//! not take the same port. The pool needs no memory across leadership terms: the
//! cache is the record.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt as _;
use rendezvous_crds::ROOM_LABEL;

use crate::pod::media_port_of;

/// The host-port range and the ports handed out that the cache may not show yet.
#[derive(Debug)]
pub struct MediaPortPool {
    first: u16,
    last: u16,
    /// Room key (`namespace/name`) → port, until the cache holds that Room's Pod.
    handed_out: Mutex<HashMap<String, u16>>,
}

/// The key of a room Pod or Room: `namespace/room`.
pub fn room_key(namespace: &str, room: &str) -> String {
    format!("{namespace}/{room}")
}

impl MediaPortPool {
    pub fn new(first: u16, last: u16) -> Self {
        assert!(first <= last, "an empty port range");
        Self {
            first,
            last,
            handed_out: Mutex::default(),
        }
    }

    /// The port for a new Pod of Room `key`, given the room Pods the cache holds.
    pub fn take<'a>(&self, key: &str, cached: impl IntoIterator<Item = &'a Pod>) -> u16 {
        let mut holders: HashMap<String, u16> = HashMap::new();
        for pod in cached {
            let (Some(room), Some(ns), Some(port)) = (
                pod.labels().get(ROOM_LABEL),
                pod.namespace(),
                media_port_of(pod),
            ) else {
                continue;
            };
            holders.insert(room_key(&ns, room), port);
        }
        // A poisoned lock only means another reconcile panicked mid-insert; the map
        // is still a valid map.
        let mut handed_out = self
            .handed_out
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Once the cache shows a Room's Pod, the cache speaks for it. The Room's own
        // entry goes too: a Room asking again has no Pod (it is being replaced).
        handed_out.retain(|k, _| !holders.contains_key(k) && k != key);
        holders.remove(key);
        let mut count = vec![0u32; usize::from(self.last - self.first) + 1];
        for port in holders.values().chain(handed_out.values()) {
            if (self.first..=self.last).contains(port) {
                count[usize::from(port - self.first)] += 1;
            }
        }
        let (i, _) = count
            .iter()
            .enumerate()
            .min_by_key(|(i, n)| (**n, *i))
            .expect("the range holds at least one port");
        let port = self.first + i as u16;
        handed_out.insert(key.to_owned(), port);
        port
    }

    /// Room `key` is gone: its port is free once its Pod leaves the cache.
    pub fn release(&self, key: &str) {
        self.handed_out
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::{desired_pod, tests::mk_room, MediaPorts, PodConfig};

    fn pod(ns: &str, room: &str, port: u16) -> Pod {
        let cfg = PodConfig {
            media: MediaPorts::HostPorts {
                first: 1,
                last: 65535,
            },
            ..PodConfig::test()
        };
        let mut room = mk_room(room);
        room.metadata.namespace = Some(ns.into());
        desired_pod(&room, &cfg, port)
    }

    #[test]
    fn rooms_spread_over_the_range_before_any_port_is_shared() {
        let pool = MediaPortPool::new(30000, 30002);
        let ports: Vec<u16> = (0..7).map(|i| pool.take(&format!("ns/r{i}"), [])).collect();
        assert_eq!(ports, [30000, 30001, 30002, 30000, 30001, 30002, 30000]);
    }

    #[test]
    fn ports_held_by_cached_pods_are_counted_and_a_room_asking_again_is_not() {
        let pool = MediaPortPool::new(30000, 30002);
        let cached = [pod("ns", "a", 30000), pod("other", "b", 30001)];
        assert_eq!(pool.take("ns/c", &cached), 30002);
        // `c`'s Pod is not cached yet: its port stays taken for the next Room.
        assert_eq!(pool.take("ns/d", &cached), 30000);
    }

    #[test]
    fn a_room_whose_pod_is_replaced_does_not_count_its_own_old_port() {
        let pool = MediaPortPool::new(30000, 30001);
        let cached = [pod("ns", "a", 30000)];
        assert_eq!(pool.take("ns/a", &cached), 30000);
        assert_eq!(pool.take("ns/z", &cached), 30001);
    }

    #[test]
    fn a_released_room_frees_its_port_and_the_cache_takes_over_from_the_pool() {
        let pool = MediaPortPool::new(30000, 30001);
        assert_eq!(pool.take("ns/a", []), 30000);
        assert_eq!(pool.take("ns/b", []), 30001);
        pool.release("ns/a");
        assert_eq!(pool.take("ns/c", []), 30000);
        // The cache now shows c's Pod on 30000 and b's is gone: 30001 is free.
        let cached = [pod("ns", "c", 30000)];
        pool.release("ns/b");
        assert_eq!(pool.take("ns/e", &cached), 30001);
        assert_eq!(pool.take("ns/f", &cached), 30000);
    }

    #[test]
    fn pods_outside_the_range_or_without_a_media_port_are_ignored() {
        let pool = MediaPortPool::new(30000, 30001);
        let mut bare = Pod::default();
        bare.metadata.labels = Some([(ROOM_LABEL.to_owned(), "x".to_owned())].into());
        let cached = [pod("ns", "a", 8091), bare];
        assert_eq!(pool.take("ns/b", &cached), 30000);
    }
}
