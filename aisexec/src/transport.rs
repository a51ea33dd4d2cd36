//! The UDP transport: one socket bound to this node's `ring0_addr` and the
//! cluster port, unicasting to every node of the nodelist (corosync's udpu).
//!
//! Totem hands over [`Transmit`]s; [`Destination::All`] goes to every
//! *other* configured node (a node never needs its own multicast),
//! [`Destination::Node`] to that node (itself included: a singleton ring
//! passes the token to itself). Datagrams from addresses that are not in
//! the nodelist are dropped and counted before Totem sees them. The socket
//! is non-blocking: a send the kernel cannot take now (its buffer is full)
//! is dropped and counted, as a lost datagram that Totem retransmits.
//!
//! With secauth the datagrams are sealed ([`RingCrypto`]): each transmit
//! is sealed once before it is sent, each datagram from a configured node
//! opened right after it is read; one that does not open is dropped and
//! counted there, never handed to Totem.
//!
//! Receiving copies nothing after the kernel: datagrams are read one after
//! another into a receive chunk ([`RECV_CHUNK_BYTES`]), opened there in
//! place, and handed to Totem as slices of it (`Bytes`); a chunk is
//! reused once Totem has dropped every packet in it, and a new one taken
//! otherwise. The chunk is read into uninitialised, so it is never zeroed.
//! Datagrams shorter than [`RECV_COPY_BELOW_BYTES`] (tokens, small
//! messages) are copied out instead, so that they never hold a chunk.
//!
//! Everything here is counted in [`TransportStats`]; nothing is logged per
//! datagram.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, IoSlice};
use std::net::SocketAddr;

use aisexec::ring_crypto::RingCrypto;
use bytes::{Bytes, BytesMut};
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use totem::{Destination, NodeId, Transmit};

use crate::fault_hook::FaultHook;

/// Socket buffer size asked for, in bytes (the kernel may cap it at
/// `net.core.rmem_max`/`wmem_max`; what was granted is logged).
pub const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// Largest datagram received, in bytes: the largest a UDP datagram can be,
/// so nothing is ever truncated.
pub const RECV_BUFFER_BYTES: usize = 65_536;

/// Bytes of one receive chunk: room for four of the largest datagrams, so
/// that a chunk is allocated at most once per four full-size datagrams
/// while Totem holds packets, and a held packet keeps at most this much
/// memory alive.
pub const RECV_CHUNK_BYTES: usize = 4 * RECV_BUFFER_BYTES;

/// Datagrams shorter than this, in bytes, are copied out of the receive
/// chunk (a cheap copy) rather than sliced from it, so that a small packet
/// Totem keeps a while does not keep a whole chunk alive.
pub const RECV_COPY_BELOW_BYTES: usize = 2048;

/// Counters of the transport.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Datagrams handed to the kernel.
    pub datagrams_sent: u64,
    /// Datagrams received from configured nodes.
    pub datagrams_received: u64,
    /// Datagrams from an address that is not in the nodelist, dropped.
    pub dropped_unknown_source: u64,
    /// Datagrams not sent because the socket buffer was full.
    pub send_would_block: u64,
    /// Datagrams not sent because of another error.
    pub send_errors: u64,
    /// Transmits to a node id that is not in the nodelist.
    pub send_unknown_node: u64,
    /// Failed receives (other than "nothing to read").
    pub recv_errors: u64,
}

/// What [`Transport::recv`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Recv {
    /// A datagram from a configured node.
    Datagram(Bytes),
    /// Nothing more to read for now.
    Empty,
    /// A datagram from an unknown address was dropped, or a read failed;
    /// more may follow. Returned rather than read past so that a flood of
    /// such datagrams counts against the caller's per-turn budget.
    Skipped,
}

/// The UDP socket and the nodelist's addresses.
#[derive(Debug)]
pub struct Transport {
    socket: UdpSocket,
    me: NodeId,
    local: SocketAddr,
    peers: BTreeMap<NodeId, SocketAddr>,
    known: HashMap<SocketAddr, NodeId>,
    /// The receive chunk: always empty between reads, its spare capacity
    /// is where the next datagram is read.
    rx: BytesMut,
    stats: TransportStats,
    /// TEST-ONLY drop/delay of received datagrams; inert unless
    /// `AISEXEC_TEST_FAULTS` is set (see `fault_hook`).
    faults: FaultHook,
    /// Seals and opens every datagram when secauth is on.
    crypto: Option<RingCrypto>,
}

impl Transport {
    /// Binds `local` (this node's address, `me` in `nodes`), non-blocking,
    /// with large socket buffers.
    ///
    /// # Errors
    /// The socket could not be created or bound (address not local, port in
    /// use).
    pub fn bind(
        me: NodeId,
        local: SocketAddr,
        nodes: BTreeMap<NodeId, SocketAddr>,
    ) -> io::Result<Transport> {
        let socket = Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))?;
        // Sizes above the system maximum are capped, not refused.
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
        socket.set_nonblocking(true)?;
        socket.bind(&local.into())?;
        log::debug!(
            "bound {local}: receive buffer {} bytes, send buffer {} bytes",
            socket.recv_buffer_size().unwrap_or(0),
            socket.send_buffer_size().unwrap_or(0)
        );
        let socket = UdpSocket::from_std(socket.into());
        let mut transport = Transport {
            socket,
            me,
            local,
            peers: BTreeMap::new(),
            known: HashMap::new(),
            rx: BytesMut::with_capacity(RECV_CHUNK_BYTES),
            stats: TransportStats::default(),
            faults: FaultHook::from_env(),
            crypto: None,
        };
        transport.set_nodes(nodes);
        Ok(transport)
    }

    /// Replaces the nodelist (SIGHUP). This node's own entry keeps its
    /// bound address whatever the new list says.
    pub fn set_nodes(&mut self, mut nodes: BTreeMap<NodeId, SocketAddr>) {
        nodes.insert(self.me, self.local);
        self.known = nodes.iter().map(|(&id, &addr)| (addr, id)).collect();
        self.peers = nodes;
    }

    /// The nodelist in use.
    pub fn nodes(&self) -> &BTreeMap<NodeId, SocketAddr> {
        &self.peers
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Registers the socket for readability.
    ///
    /// # Errors
    /// As `Registry::register`.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.socket, token, Interest::READABLE)
    }

    /// Seals every datagram from now on (`None`: plain Totem packets).
    pub fn set_crypto(&mut self, crypto: Option<RingCrypto>) {
        self.crypto = crypto;
    }

    /// The seal layer, when secauth is on.
    pub fn crypto(&self) -> Option<&RingCrypto> {
        self.crypto.as_ref()
    }

    /// The seal layer, when secauth is on (SIGHUP rekeys it).
    pub fn crypto_mut(&mut self) -> Option<&mut RingCrypto> {
        self.crypto.as_mut()
    }

    /// Sends one transmit (to several nodes for [`Destination::All`]).
    pub fn send(&mut self, transmit: &Transmit) {
        // Sealed once, the same datagram to every destination. The pieces
        // (a large frame apart from its header) are copied once, into the
        // sealed datagram; unsealed, the kernel gathers them.
        // The slices are made once, not once per destination.
        let pieces = transmit.datagram.pieces();
        let iov: [IoSlice<'_>; 3] = match &mut self.crypto {
            Some(crypto) => [
                IoSlice::new(crypto.seal_pieces(&pieces)),
                IoSlice::new(&[]),
                IoSlice::new(&[]),
            ],
            None => pieces.map(IoSlice::new),
        };
        let used = iov.iter().rposition(|s| !s.is_empty()).map_or(1, |i| i + 1);
        let payload = &iov[..used];
        match transmit.dest {
            Destination::All => {
                for (&id, &addr) in &self.peers {
                    if id != self.me {
                        send_one(&self.socket, &mut self.stats, addr, payload);
                    }
                }
            }
            Destination::Node(id) => match self.peers.get(&id) {
                Some(&addr) => send_one(&self.socket, &mut self.stats, addr, payload),
                None => self.stats.send_unknown_node += 1,
            },
        }
    }

    /// The next datagram from a configured node, or [`Recv::Empty`] once the
    /// socket has nothing more (the event loop reads until then: the socket
    /// is edge-triggered).
    pub fn recv(&mut self) -> Recv {
        if let Some(held) = self.faults.take_due() {
            return Recv::Datagram(held);
        }
        loop {
            match self.read_datagram() {
                Ok((len, from)) => {
                    let Some(&source) = self.known.get(&from) else {
                        self.rx.clear();
                        self.stats.dropped_unknown_source += 1;
                        return Recv::Skipped;
                    };
                    self.stats.datagrams_received += 1;
                    let datagram = if len < RECV_COPY_BELOW_BYTES {
                        let small = BytesMut::from(&self.rx[..]);
                        self.rx.clear();
                        small
                    } else {
                        self.rx.split()
                    };
                    let opened = match &mut self.crypto {
                        // Dropped and counted by the seal layer.
                        Some(crypto) => crypto.open(source.get(), datagram),
                        None => Some(datagram.freeze()),
                    };
                    return opened
                        .and_then(|d| self.faults.on_receive(d))
                        .map_or(Recv::Skipped, Recv::Datagram);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Recv::Empty,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // ICMP errors reported on the socket, for example; the
                    // next read goes on.
                    self.stats.recv_errors += 1;
                    log::debug!("receive failed: {e}");
                    return Recv::Skipped;
                }
            }
        }
    }

    /// Reads one datagram into the receive chunk (`self.rx`, empty before,
    /// holding exactly the datagram after): its length and source.
    fn read_datagram(&mut self) -> io::Result<(usize, SocketAddr)> {
        debug_assert!(self.rx.is_empty(), "every datagram is taken out of rx");
        // Reuse the chunk if Totem dropped every packet sliced from it;
        // else start a new one (the old one is freed with its last packet).
        if !self.rx.try_reclaim(RECV_BUFFER_BYTES) {
            self.rx = BytesMut::with_capacity(RECV_CHUNK_BYTES);
        }
        let spare = self.rx.spare_capacity_mut();
        let spare_len = spare.len();
        let (len, from) = SockRef::from(&self.socket).recv_from(spare)?;
        let from = from
            .as_socket()
            .ok_or_else(|| io::Error::other("datagram from a non-IP address"))?;
        // The kernel never reports more than it was given room for.
        let len = len.min(spare_len);
        // SAFETY: recvfrom(2) wrote `len` bytes at the start of the spare
        // capacity (socket2 passes the buffer's length, and `len` is capped
        // by it), so the first `len` bytes after the current length (0)
        // are initialised.
        #[allow(unsafe_code)]
        unsafe {
            self.rx.set_len(len);
        }
        Ok((len, from))
    }

    /// The counters.
    pub fn stats(&self) -> &TransportStats {
        &self.stats
    }

    /// The fault hook (TEST-ONLY; inert in production): the event loop
    /// bounds its poll timeout by [`FaultHook::release_in`].
    pub fn faults(&self) -> &FaultHook {
        &self.faults
    }
}

/// Sends `pieces`, back to back, as one datagram to `to`.
fn send_one(
    socket: &UdpSocket,
    stats: &mut TransportStats,
    to: SocketAddr,
    pieces: &[IoSlice<'_>],
) {
    loop {
        let sent = match pieces {
            [one] => socket.send_to(one, to),
            _ => SockRef::from(socket).send_to_vectored(pieces, &to.into()),
        };
        match sent {
            Ok(_) => stats.datagrams_sent += 1,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stats.send_would_block += 1,
            Err(_) => stats.send_errors += 1,
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> NodeId {
        NodeId::new(n).expect("nonzero")
    }

    fn transmit(dest: Destination, payload: &'static [u8]) -> Transmit {
        Transmit {
            dest,
            datagram: Bytes::from_static(payload).into(),
        }
    }

    /// Reads until a datagram arrives (the sockets are non-blocking).
    fn recv_wait(t: &mut Transport) -> Bytes {
        for _ in 0..1000 {
            if let Recv::Datagram(d) = t.recv() {
                return d;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("no datagram arrived");
    }

    #[test]
    fn unicasts_to_the_nodelist_and_drops_strangers() {
        let a: SocketAddr = "127.0.0.1:0".parse().expect("literal");
        // Bind on ephemeral ports first, then tell each the other's address.
        let mut t1 = Transport::bind(id(1), a, BTreeMap::new()).expect("bind");
        let mut t2 = Transport::bind(id(2), a, BTreeMap::new()).expect("bind");
        let a1 = t1.socket.local_addr().expect("addr");
        let a2 = t2.socket.local_addr().expect("addr");
        t1.local = a1;
        t2.local = a2;
        let nodes: BTreeMap<NodeId, SocketAddr> = [(id(1), a1), (id(2), a2)].into();
        t1.set_nodes(nodes.clone());
        t2.set_nodes(nodes);

        t1.send(&transmit(Destination::All, b"all"));
        assert_eq!(&recv_wait(&mut t2)[..], b"all");
        assert_eq!(t1.recv(), Recv::Empty, "All does not loop back");
        t1.send(&transmit(Destination::Node(id(1)), b"self"));
        assert_eq!(&recv_wait(&mut t1)[..], b"self");
        t1.send(&transmit(Destination::Node(id(9)), b"nobody"));
        assert_eq!(t1.stats().send_unknown_node, 1);

        let stranger = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        stranger.send_to(b"hostile", a2).expect("send");
        t1.send(&transmit(Destination::Node(id(2)), b"after"));
        assert_eq!(&recv_wait(&mut t2)[..], b"after");
        assert_eq!(t2.stats().dropped_unknown_source, 1);
        // A stranger's datagram ends the read (counted against the
        // caller's budget) instead of being read past.
        stranger.send_to(b"again", a2).expect("send");
        let mut skipped = false;
        for _ in 0..1000 {
            match t2.recv() {
                Recv::Skipped => {
                    skipped = true;
                    break;
                }
                Recv::Empty => std::thread::sleep(std::time::Duration::from_millis(1)),
                Recv::Datagram(d) => panic!("unexpected datagram {d:?}"),
            }
        }
        assert!(skipped, "the stranger's datagram is reported as skipped");
        assert_eq!(t2.stats().dropped_unknown_source, 2);
        assert_eq!(t2.stats().datagrams_received, 2);
        assert_eq!(t1.stats().datagrams_sent, 3);
    }

    /// Two transports on ephemeral loopback ports that know each other,
    /// sealing with one key if `sealed`.
    fn pair(sealed: bool) -> (Transport, Transport) {
        let a: SocketAddr = "127.0.0.1:0".parse().expect("literal");
        let mut t1 = Transport::bind(id(1), a, BTreeMap::new()).expect("bind");
        let mut t2 = Transport::bind(id(2), a, BTreeMap::new()).expect("bind");
        t1.local = t1.socket.local_addr().expect("addr");
        t2.local = t2.socket.local_addr().expect("addr");
        let nodes: BTreeMap<NodeId, SocketAddr> = [(id(1), t1.local), (id(2), t2.local)].into();
        t1.set_nodes(nodes.clone());
        t2.set_nodes(nodes);
        if sealed {
            t1.set_crypto(Some(crypto(1)));
            t2.set_crypto(Some(crypto(2)));
        }
        (t1, t2)
    }

    fn crypto(me: u32) -> RingCrypto {
        use aisexec::ring_crypto::{Cipher, KdfHash, KeyMaterial, SecureRing};
        let settings = SecureRing {
            cipher: Cipher::Aes256Gcm,
            hash: KdfHash::Sha256,
            keyfile: "/unused".into(),
        };
        RingCrypto::from_material(me, settings, &KeyMaterial::from_bytes(&[9; 64]), None)
            .expect("keys")
    }

    /// A Mcast with a large frame leaves Totem in pieces (header, the
    /// frame as the log holds it, CRC): sealed or not, the peer receives
    /// exactly the packet's one-buffer encoding, and it decodes.
    #[test]
    fn a_datagram_in_pieces_arrives_as_one_packet() {
        use totem::wire::{Body, Mcast, McastContent, Packet};
        use totem::{Guarantee, RingId, Seq};
        for sealed in [false, true] {
            let (mut t1, mut t2) = pair(sealed);
            for len in [10, 1024, 65_000] {
                let frame: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
                let packet = Packet {
                    sender: id(1),
                    ring_id: RingId { rep: id(1), seq: 4 },
                    body: Body::Mcast(Mcast {
                        seq: Seq(7),
                        origin: id(1),
                        guarantee: Guarantee::Agreed,
                        content: McastContent::Frame(Bytes::from(frame)),
                    }),
                };
                let datagram = packet.encode_datagram();
                assert_eq!(datagram.pieces()[1].is_empty(), len < 1024, "len {len}");
                t1.send(&Transmit {
                    dest: Destination::Node(id(2)),
                    datagram,
                });
                let got = recv_wait(&mut t2);
                assert_eq!(got, packet.encode(), "sealed {sealed}, len {len}");
                assert_eq!(Packet::decode(&got), Ok(packet));
            }
        }
    }

    /// Packets are slices of the receive chunks: the ones Totem still
    /// holds must keep their bytes while later datagrams are read into
    /// the same and new chunks, sealed or not, large or small (copied out).
    #[test]
    fn held_packets_keep_their_bytes_across_later_reads() {
        for sealed in [false, true] {
            let (mut t1, mut t2) = pair(sealed);
            let sizes = [
                60_000,
                100,
                RECV_COPY_BELOW_BYTES - 1,
                RECV_COPY_BELOW_BYTES,
                30_000,
                65_000,
                1,
                40_000,
            ];
            let mut held = Vec::new();
            // Five rounds: several RECV_CHUNK_BYTES, so chunks fill up
            // and new ones are taken while the old ones are held.
            for round in 0..5 {
                for (i, &len) in sizes.iter().enumerate() {
                    let seed = round * 31 + i;
                    let payload: Vec<u8> = (0..len).map(|j| (j * 7 + seed) as u8).collect();
                    t1.send(&Transmit {
                        dest: Destination::Node(id(2)),
                        datagram: Bytes::from(payload.clone()).into(),
                    });
                    held.push((recv_wait(&mut t2), payload));
                }
            }
            let total: usize = held.iter().map(|(p, _)| p.len()).sum();
            assert!(total > 3 * RECV_CHUNK_BYTES, "spans several chunks");
            for (i, (got, want)) in held.iter().enumerate() {
                assert!(got[..] == want[..], "sealed {sealed}: packet {i} changed");
            }
            assert_eq!(t2.stats().datagrams_received, held.len() as u64);
            if sealed {
                let stats = t2.crypto().expect("on").stats();
                assert_eq!(stats.opened, held.len() as u64);
            }
            // Once nothing is held, the chunk is reused: more reads still
            // deliver intact packets.
            drop(held);
            for len in [65_000, 10] {
                let payload = vec![0xC3; len];
                t1.send(&Transmit {
                    dest: Destination::Node(id(2)),
                    datagram: Bytes::from(payload.clone()).into(),
                });
                assert_eq!(recv_wait(&mut t2)[..], payload[..]);
            }
        }
    }
}
