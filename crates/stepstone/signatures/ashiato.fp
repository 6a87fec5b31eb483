; ashiato's own TCP signatures (p0f 3 format, docs/stepping-stones.md).
;
; Written for ashiato; not derived from p0f's database (LGPL, 2014), which it complements:
; p0f's file calls today's Linux "???" and has no modern SYN/ACK entries. Use it alone
; (the default of `ashiato fingerprint`) or give p0f's file with --db.
;
; Every entry says where it came from:
;   measured  - captured here from a real stack or tool, the command is given;
;   capture   - read from a real third-party capture in tests/data (named);
;   published - values as widely published for that stack, NOT measured here: treat the
;               label as a hint until confirmed by a capture.
;
; Licence: Apache-2.0, like the rest of ashiato.

classes = win,unix,other

[tcp:request]

; measured: Linux 6.18 (this project's CI kernel), SYN from connect() between two network
; namespaces over veth at MTU 1280, 1500 and 9000 (`ashiato fingerprint` on the tcpdump
; capture): window = the largest multiple of the MSS not above 65535 (mss*52, mss*44,
; mss*7), so the window is a wildcard; scale 10 with tcp_rmem max 32 MiB (7 to 9 on smaller
; hosts). IPv4: DF and a nonzero ID; IPv6: a flow label. Android uses the Linux stack and
; shows the same SYN: the label cannot tell them apart.
label = s:unix:Linux:4.19 and newer (or Android)
sig   = 4:64:0:*:*,10:mss,sok,ts,nop,ws:df,id+:0
sig   = 4:64:0:*:*,9:mss,sok,ts,nop,ws:df,id+:0
sig   = 4:64:0:*:*,8:mss,sok,ts,nop,ws:df,id+:0
sig   = 4:64:0:*:*,7:mss,sok,ts,nop,ws:df,id+:0
sig   = 6:64:0:*:*,10:mss,sok,ts,nop,ws:flow:0
sig   = 6:64:0:*:*,9:mss,sok,ts,nop,ws:flow:0
sig   = 6:64:0:*:*,8:mss,sok,ts,nop,ws:flow:0
sig   = 6:64:0:*:*,7:mss,sok,ts,nop,ws:flow:0
sig   = 6:64:0:*:*,*:mss,sok,ts,nop,ws::0

; published: Windows 10 and 11 (and Server 2016+): window 64240, scale 8, no timestamps.
label = s:win:Windows:10 or 11
sig   = *:128:0:*:64240,8:mss,nop,ws,nop,nop,sok:df,id+:0
sig   = *:128:0:*:65535,8:mss,nop,ws,nop,nop,sok:df,id+:0

; published (XNU, shared by macOS 11+ and iOS 14+), confirmed by the real macOS SYN of
; tests/data/huginn-macos_tcp_flags.pcap (2022; it adds ECN: a fuzzy match): 65535,6, EOL+1.
label = s:unix:Mac OS X:11+ or iOS 14+
sig   = *:64:0:*:65535,6:mss,nop,ws,nop,nop,ts,sok,eol+1:df,id+:0
sig   = *:64:0:*:65535,6:mss,nop,ws,nop,nop,ts,sok,eol+1:df:0

; published: FreeBSD 12 to 14: window 65535, scale 6, layout mss,nop,ws,sok,ts.
label = s:unix:FreeBSD:12 to 14
sig   = *:64:0:*:65535,6:mss,nop,ws,sok,ts:df,id+:0
sig   = *:64:0:*:65535,6:mss,nop,ws,sok,ts:df:0

; capture: tests/data/esnet-masscan-tcp_0_1000_20190821.pcap (masscan 1.0.4): 1001 SYNs
; 4:252+3:0:0:1024,0:::0 (TTL 255, window 1024, no options, no DF, random ID).
label = s:!:masscan:SYN scan
sys   = @unix
sig   = *:255-:0:0:1024,0:::0

; capture: tests/data/cs-synscan.pcapng (nmap SYN scan, 1994 SYNs): random TTL, window 1024,
; 2048, 3072 or 4096, only an MSS of 1460.
label = s:!:nmap:SYN scan
sys   = @unix,@win
sig   = *:64-:0:1460:1024,0:mss::0
sig   = *:64-:0:1460:2048,0:mss::0
sig   = *:64-:0:1460:3072,0:mss::0
sig   = *:64-:0:1460:4096,0:mss::0

; capture: ../shared/data ddos/stopddos-pkt.TCP.synflood.spoofed.pcap: 37683 flood SYNs
; 4:242+13:0:0:0,0:::0 (window 0, no options): a spoofing flood tool, not an OS.
label = s:!:flood tool:window-0 SYN flood
sys   = @unix
sig   = *:255-:0:0:0,0:::0

[tcp:response]

; measured: Linux 6.18 as above, SYN/ACK from a listening socket: window = the largest
; multiple of (MSS - 12) not above 65535 (timestamps on), scale 10; IPv4 DF with ID 0.
label = s:unix:Linux:4.19 and newer (or Android)
sig   = 4:64:0:*:*,10:mss,sok,ts,nop,ws:df:0
sig   = 4:64:0:*:*,9:mss,sok,ts,nop,ws:df:0
sig   = 4:64:0:*:*,8:mss,sok,ts,nop,ws:df:0
sig   = 4:64:0:*:*,7:mss,sok,ts,nop,ws:df:0
sig   = 6:64:0:*:*,*:mss,sok,ts,nop,ws:flow:0
sig   = 6:64:0:*:*,*:mss,sok,ts,nop,ws::0

; published: Windows 10 and 11 SYN/ACK: window 65535, scale 8, no timestamps unless the SYN
; asked for them.
label = s:win:Windows:10 or 11
sig   = *:128:0:*:65535,8:mss,nop,ws,sok:df,id+:0
sig   = *:128:0:*:65535,8:mss,nop,ws,nop,nop,sok:df,id+:0
sig   = *:128:0:*:65535,8:mss,nop,ws,sok,ts:df,id+:0

; published: macOS / iOS SYN/ACK.
label = s:unix:Mac OS X:11+ or iOS 14+
sig   = *:64:0:*:65535,6:mss,nop,ws,nop,nop,ts,sok,eol+1:df,id+:0
sig   = *:64:0:*:65535,6:mss,nop,ws,sok,eol+1:df,id+:0

; published: FreeBSD 12 to 14 SYN/ACK.
label = s:unix:FreeBSD:12 to 14
sig   = *:64:0:*:65535,6:mss,nop,ws,sok,ts:df,id+:0
