/**
 * Rulesets for the renderer-versus-kernel test (format-kernel.test.ts): iptables-restore input
 * with counters, per family, using every match and target the -L printers reproduce (both
 * seed articles included), odd cases (negations everywhere, a goto, a rule without target,
 * non-CIDR masks, ranges, names that /etc/services knows and ones it does not) and counters
 * across every K/M/G/T boundary, including 2^64 - 1 where iptables' rounding wraps around.
 * Addresses are documentation ranges only.
 */

export const IPV4_CORPUS = `*filter
:INPUT DROP [123456789:98765432109]
:FORWARD ACCEPT [100000:99999]
:OUTPUT ACCEPT [0:0]
:ALPHA - [0:0]
:LOG_AND_DROP - [0:0]
:ZED - [0:0]
[3:180] -A INPUT -p tcp -m tcp --dport 22 -m state --state NEW -m recent --set --name DEFAULT --mask 255.255.255.255 --rsource
[99999:100000] -A INPUT -p tcp -m tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name DEFAULT --mask 255.255.255.255 --rsource -j LOG_AND_DROP
[100499:100500] -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
[9999499:9999500] -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
[9999500:12345678901234] -A INPUT -s 198.51.100.0/24 -d 192.0.2.1/32 -i lo -p udp -m udp --sport 53 -j REJECT --reject-with icmp-port-unreachable
[18446744073709551615:1] -A INPUT ! -s 198.51.100.7/32 -p icmp -m icmp --icmp-type 8 -m limit --limit 5/min -j ACCEPT
[0:0] -A INPUT -p tcp -m multiport --dports 80,443 -m comment --comment "web it\\'s" -j ACCEPT
[0:0] -A INPUT -f -j DROP
[0:0] -A INPUT -p tcp -m tcp --dport 1024:65535 -j ACCEPT
[0:0] -A INPUT -p tcp -m tcp ! --sport 22 -j ACCEPT
[0:0] -A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j DROP
[0:0] -A INPUT -p tcp -m tcp --tcp-flags SYN,ACK SYN,ACK -j DROP
[0:0] -A INPUT -p tcp -m tcp ! --tcp-flags FIN,SYN,RST,PSH,ACK,URG NONE -j DROP
[0:0] -A INPUT -p tcp -m tcp --tcp-option 2 -j ACCEPT
[0:0] -A INPUT -p udp -m udp --sport 1:1023 --dport 53 -j ACCEPT
[0:0] -A INPUT -p icmp -m icmp --icmp-type 3/4 -j ACCEPT
[0:0] -A INPUT -p icmp -m icmp ! --icmp-type 0 -j ACCEPT
[0:0] -A INPUT -p icmp -m icmp --icmp-type any -j ACCEPT
[0:0] -A INPUT -p icmp -m icmp --icmp-type 8/0 -j ACCEPT
[0:0] -A INPUT -p icmp -m icmp --icmp-type 11 -j ACCEPT
[0:0] -A INPUT -p tcp -m multiport ! --sports 1:10,20 -j ACCEPT
[0:0] -A INPUT -p tcp -m multiport --ports 22,80:90 -j ACCEPT
[0:0] -A INPUT -p udp -m multiport --dports 53,123 -j ACCEPT
[0:0] -A INPUT -m state ! --state INVALID -j ACCEPT
[0:0] -A INPUT -m state --state NEW,ESTABLISHED,RELATED,INVALID,UNTRACKED
[0:0] -A INPUT -m conntrack --ctstate NEW,UNTRACKED --ctstatus ASSURED -j ACCEPT
[0:0] -A INPUT -m conntrack ! --ctstate INVALID --ctproto tcp --ctorigsrc 192.0.2.1 -j ACCEPT
[0:0] -A INPUT -m conntrack --ctstate ESTABLISHED --ctdir ORIGINAL -j ACCEPT
[0:0] -A INPUT -m conntrack --ctorigsrc 192.0.2.0/24 ! --ctrepldst 198.51.100.1 --ctorigdstport 22 -j ACCEPT
[0:0] -A INPUT -m recent --rcheck --seconds 30 --name X --rdest -j DROP
[0:0] -A INPUT -m recent --remove --name Y -j DROP
[0:0] -A INPUT -m recent --update --seconds 60 --reap --hitcount 2 --rttl --name Z --mask 255.255.255.0 -j DROP
[0:0] -A INPUT -m recent --set
[0:0] -A INPUT -m limit --limit 3/hour --limit-burst 10 -j ACCEPT
[0:0] -A INPUT -m limit --limit 10/second -j ACCEPT
[0:0] -A INPUT -m limit --limit 100/day -j ACCEPT
[0:0] -A INPUT -m limit --limit 1/s --limit-burst 1 -j ACCEPT
[0:0] -A INPUT -m comment --comment plain -j ACCEPT
[0:0] -A INPUT -m comment --comment "a \\"quoted\\" one" -j ACCEPT
[0:0] -A INPUT -m comment --comment "" -j ACCEPT
[0:0] -A INPUT -m mark --mark 0x1 -j ACCEPT
[0:0] -A INPUT -m mark ! --mark 0x1/0xff -j ACCEPT
[0:0] -A INPUT -m mark --mark 0xffffffff
[0:0] -A INPUT -m connmark --mark 5 -j ACCEPT
[0:0] -A INPUT -m iprange --src-range 192.0.2.1-192.0.2.9 ! --dst-range 198.51.100.1-198.51.100.2 -j ACCEPT
[0:0] -A INPUT -m mac --mac-source 00:11:22:aa:bb:cc -j ACCEPT
[0:0] -A INPUT -m addrtype --dst-type LOCAL --limit-iface-in -j ACCEPT
[0:0] -A INPUT -m addrtype ! --src-type UNICAST -j ACCEPT
[0:0] -A INPUT -m addrtype --src-type LOCAL,BROADCAST -j ACCEPT
[0:0] -A INPUT -m length --length 100:200 -j ACCEPT
[0:0] -A INPUT -m length ! --length 64 -j ACCEPT
[0:0] -A INPUT -m ttl --ttl-eq 64 -j ACCEPT
[0:0] -A INPUT -m ttl --ttl-gt 10 -j ACCEPT
[0:0] -A INPUT -m ttl --ttl-lt 3 -j ACCEPT
[0:0] -A INPUT -m pkttype --pkt-type broadcast -j DROP
[0:0] -A INPUT -m hashlimit --hashlimit-upto 5/sec --hashlimit-burst 10 --hashlimit-mode srcip --hashlimit-name hl1 -j ACCEPT
[0:0] -A INPUT -m hashlimit --hashlimit-above 1/min --hashlimit-mode srcip,dstport --hashlimit-name hl2 --hashlimit-htable-expire 30000 -j DROP
[0:0] -A INPUT -m hashlimit --hashlimit-upto 5/min --hashlimit-mode dstip --hashlimit-srcmask 24 --hashlimit-name hl3 --hashlimit-htable-size 128 --hashlimit-htable-max 256 --hashlimit-htable-gcinterval 500 -j ACCEPT
[0:0] -A INPUT -p tcp -j REJECT --reject-with tcp-reset
[0:0] -A INPUT -j REJECT --reject-with icmp-host-prohibited
[0:0] -A INPUT -j REJECT
[0:0] -A INPUT -j LOG
[0:0] -A INPUT -j LOG --log-prefix "x" --log-level 4 --log-tcp-sequence --log-tcp-options --log-ip-options --log-uid
[0:0] -A INPUT -j LOG --log-level 0
[0:0] -A INPUT -j LOG --log-level 3 --log-macdecode
[0:0] -A INPUT -j LOG --log-level 6 --log-prefix "v6 "
[0:0] -A INPUT -j NFLOG --nflog-group 2 --nflog-prefix "p q" --nflog-threshold 3
[0:0] -A INPUT -j NFLOG
[0:0] -A INPUT -j NFQUEUE --queue-num 3
[0:0] -A INPUT -j RETURN
[0:0] -A INPUT -p gre -j ACCEPT
[0:0] -A INPUT -p udplite -j ACCEPT
[0:0] -A INPUT -p 200 -j ACCEPT
[0:0] -A INPUT ! -f -j ACCEPT
[0:0] -A INPUT -m state --state RELATED,ESTABLISHED -m tcp -p tcp --dport 22 -m comment --comment "two matches" -j ACCEPT
[0:0] -A INPUT -j MARK --set-mark 5
[0:0] -A INPUT -j CONNMARK --set-mark 1
[0:0] -A INPUT -j CONNMARK --save-mark
[0:0] -A INPUT -j TRACE
[0:0] -A INPUT -m physdev --physdev-in eth0 --physdev-is-bridged -j ACCEPT
[0:0] -A INPUT -i veth+ -j ALPHA
[0:0] -A INPUT -j ZED
[0:0] -A INPUT
[5:300] -A FORWARD -s 192.0.2.0/24 -d 198.51.100.7/32 -o eth0 -j ACCEPT
[0:0] -A FORWARD ! -d 192.0.2.0/24 ! -i veth+ ! -o lo ! -p udp -j ACCEPT
[0:0] -A FORWARD -s 192.0.0.0/255.255.0.255 -j ACCEPT
[0:0] -A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu
[0:0] -A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1400
[0:0] -A OUTPUT -m owner --uid-owner 0 -j ACCEPT
[0:0] -A OUTPUT -m owner --socket-exists ! --gid-owner 10-20 -j ACCEPT
[0:0] -A OUTPUT -m owner --gid-owner 0 -j ACCEPT
[0:0] -A ALPHA -g ZED
[0:0] -A ALPHA -p udp -m multiport --dports 53,123 -j RETURN
[7:420] -A LOG_AND_DROP -j LOG --log-prefix "iptables deny: " --log-level 7
[7:420] -A LOG_AND_DROP -j DROP
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
[0:0] -A PREROUTING -j DSCP --set-dscp 10
[0:0] -A PREROUTING -j MARK --set-xmark 0x1/0xff
[0:0] -A PREROUTING -j MARK --set-xmark 0x0/0xf
[0:0] -A PREROUTING -j MARK --set-xmark 0x6/0x6
[0:0] -A PREROUTING -j MARK --set-xmark 0x3/0x0
[0:0] -A PREROUTING -j CONNMARK --restore-mark
[0:0] -A PREROUTING -j CONNMARK --set-xmark 0x2/0xf
[0:0] -A PREROUTING -m connmark ! --mark 0x1/0xf -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
[0:0] -A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 192.0.2.10:8080
[0:0] -A PREROUTING -p tcp -m tcp --dport 81 -j REDIRECT --to-ports 8081
[0:0] -A PREROUTING -p tcp -m tcp --dport 82 -j DNAT --to-destination 192.0.2.10
[0:0] -A POSTROUTING -o eth0 -j MASQUERADE
[0:0] -A POSTROUTING -o eth0 -p tcp -j MASQUERADE --to-ports 1024-2000
[0:0] -A POSTROUTING -s 192.0.2.0/24 -j SNAT --to-source 198.51.100.1
[0:0] -A POSTROUTING -s 192.0.2.0/24 -j SNAT --to-source 198.51.100.1-198.51.100.5 --random
COMMIT
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
[0:0] -A PREROUTING -j CT --notrack
[0:0] -A PREROUTING -j CT --zone 1
[0:0] -A OUTPUT -j NOTRACK
[0:0] -A OUTPUT -p tcp -j CT --helper ftp
COMMIT
`;

export const IPV6_CORPUS = `*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [12:3456]
:LOG_AND_DROP - [0:0]
[3:240] -A INPUT -p tcp -m tcp --dport 22 -m state --state NEW -m recent --set --name DEFAULT --mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff --rsource
[0:0] -A INPUT -p tcp -m tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name DEFAULT --mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff --rsource -j LOG_AND_DROP
[0:0] -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
[0:0] -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
[0:0] -A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT
[0:0] -A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 1/3 -j ACCEPT
[0:0] -A INPUT -p ipv6-icmp -m icmp6 ! --icmpv6-type 128 -j ACCEPT
[0:0] -A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 1/7 -j ACCEPT
[0:0] -A INPUT -s 2001:db8::1/128 -d 2001:db8:1::/48 -j ACCEPT
[0:0] -A INPUT ! -s 2001:db8::/32 -i lo -j DROP
[0:0] -A INPUT -m hl --hl-eq 255 -j ACCEPT
[0:0] -A INPUT -m hl --hl-lt 5 -j ACCEPT
[0:0] -A INPUT -p tcp -j REJECT --reject-with tcp-reset
[0:0] -A INPUT -j REJECT --reject-with icmp6-adm-prohibited
[0:0] -A INPUT -p udp -j REJECT --reject-with icmp6-port-unreachable
[0:0] -A INPUT -j LOG --log-prefix "v6 " --log-level 6
[0:0] -A INPUT -p udp -m multiport --dports 53,123 -j ACCEPT
[0:0] -A INPUT -m recent --set --name V6 --mask ffff:ffff:ffff:ffff:: --rsource
[0:0] -A INPUT -p gre
[0:0] -A INPUT
[0:0] -A INPUT -m iprange --src-range 2001:db8::1-2001:db8::9 -j ACCEPT
[0:0] -A INPUT -m comment --comment "ipv6 too" -j LOG_AND_DROP
[0:0] -A FORWARD ! -i veth+ -o eth0 -s 2001:db8::/64 -j ACCEPT
[0:0] -A LOG_AND_DROP -j LOG --log-prefix "iptables deny: " --log-level 7
[0:0] -A LOG_AND_DROP -j DROP
COMMIT
`;
