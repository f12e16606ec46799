"""Linux constants and kernel struct layouts that Python's socket module lacks.

One place for each (include/uapi/linux/*.h): the socket shells (multicast sockets, the raw
IGMP socket, packet-socket taps and the userspace data plane) import them from here, so a
layout is written once. Struct layouts use native byte order and sizes for ints and keep
addresses as 4 raw bytes (network order).
"""

from __future__ import annotations

import enum
import struct

ETH_P_ALL = 0x0003  # every protocol (linux/if_ether.h)
ETH_P_IP = 0x0800
SOL_PACKET = 263
PACKET_MULTICAST = 2  # sll_pkttype / skb->pkt_type of a frame sent to a multicast address
PACKET_OUTGOING = 4  # sll_pkttype of a frame this host sends
SO_TIMESTAMPNS = 35  # SOL_SOCKET; the control message SCM_TIMESTAMPNS has the same value
IPPROTO_IGMP = 2

# Byte offsets into an IPv4 header (RFC 791 §3.1), for code that looks at raw packets
# without decoding them: the BPF programs, the upcall test, ``igmp watch``, the userspace
# data plane's header rewrite.
IPV4_TTL_OFFSET = 8
IPV4_PROTOCOL_OFFSET = 9  # also where struct igmpmsg has im_mbz (always 0 in an upcall)
IPV4_CHECKSUM_OFFSET = 10
IPV4_SRC_OFFSET = 12
IPV4_DST_OFFSET = 16

INT = struct.Struct("@i")
"""A C ``int``: the value of most socket options (MRT_INIT, IP_MULTICAST_LOOP, ...) and
of an IP_TTL control message."""

IP_MREQN = struct.Struct("=4s4si")
"""struct ip_mreqn { struct in_addr imr_multiaddr; struct in_addr imr_address;
int imr_ifindex; };  (IP_ADD_MEMBERSHIP and IP_MULTICAST_IF accept it; ifindex wins)"""

IN_PKTINFO = struct.Struct("=i4s4s")
"""struct in_pktinfo { int ipi_ifindex; struct in_addr ipi_spec_dst; struct in_addr ipi_addr; };
(ipi_addr is the destination address of the IP header: the group)"""

TIMESPEC = struct.Struct("=qq")
"""struct timespec { time_t tv_sec; long tv_nsec; };  (x86_64/aarch64: two 64-bit ints)"""

# IPv6 (linux/if_ether.h, RFC 8200 §3): the MLD tap and ``mld watch`` look at raw IPv6
# packets without decoding them.
ETH_P_IPV6 = 0x86DD
IPPROTO_ICMPV6 = 58
IPV6_NEXT_HEADER_OFFSET = 6
IPV6_HEADER_LEN = 40
IPV6_HOP_BY_HOP = 0  # the next-header value of a Hop-by-Hop Options header

#: The kernel's limit on multicast interfaces: MAXVIFS in linux/mroute.h and MAXMIFS in
#: linux/mroute6.h (both 32). The config refuses more; the kernel bindings check indexes.
MAXVIFS = 32
#: IP_PKTINFO (linux/in.h): the ancillary data that names a datagram's interface.
IP_PKTINFO = 8


# --- IPv6 socket options and structs (shared by the socket API and the raw MLD socket) ---

class Ipv6Option(enum.IntEnum):
    """IPPROTO_IPV6 socket options (include/uapi/linux/in6.h, in.h for MCAST_*)."""

    IPV6_MULTICAST_IF = 17
    IPV6_MULTICAST_HOPS = 18
    IPV6_MULTICAST_LOOP = 19
    IPV6_JOIN_GROUP = 20  # IPV6_ADD_MEMBERSHIP
    IPV6_LEAVE_GROUP = 21  # IPV6_DROP_MEMBERSHIP
    IPV6_V6ONLY = 26
    IPV6_MULTICAST_ALL = 29
    MCAST_JOIN_GROUP = 42
    MCAST_BLOCK_SOURCE = 43
    MCAST_UNBLOCK_SOURCE = 44
    MCAST_LEAVE_GROUP = 45
    MCAST_JOIN_SOURCE_GROUP = 46
    MCAST_LEAVE_SOURCE_GROUP = 47
    IPV6_RECVPKTINFO = 49
    IPV6_PKTINFO = 50  # the control message IPV6_RECVPKTINFO asks for
    IPV6_RECVHOPLIMIT = 51
    IPV6_HOPLIMIT = 52  # the control message IPV6_RECVHOPLIMIT asks for
    IPV6_RECVHOPOPTS = 53
    IPV6_HOPOPTS = 54  # the control message IPV6_RECVHOPOPTS asks for, a sticky option too


IPV6_MREQ = struct.Struct("=16si")
"""struct ipv6_mreq { struct in6_addr ipv6mr_multiaddr; int ipv6mr_ifindex; };"""

SOCKADDR_IN6 = struct.Struct("=HHI16sI")
"""struct sockaddr_in6 { sa_family_t sin6_family; __be16 sin6_port; __be32 sin6_flowinfo;
struct in6_addr sin6_addr; __u32 sin6_scope_id; };  (port and flowinfo are 0 here)"""

SOCKADDR_STORAGE_LEN = 128

GROUP_SOURCE_REQ = struct.Struct(f"=I4x{SOCKADDR_STORAGE_LEN}s{SOCKADDR_STORAGE_LEN}s")
"""struct group_source_req { __u32 gsr_interface; struct __kernel_sockaddr_storage
gsr_group; struct __kernel_sockaddr_storage gsr_source; };  (264 bytes on x86-64: the
storage is 8-aligned, so 4 bytes of padding follow the interface)"""

IN6_PKTINFO = struct.Struct("=16si")
"""struct in6_pktinfo { struct in6_addr ipi6_addr; int ipi6_ifindex; };"""
