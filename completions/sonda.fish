# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_sonda_global_optspecs
    string join \n v/verbose q/quiet 4 6 h/help V/version
end

function __fish_sonda_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_sonda_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_sonda_using_subcommand
    set -l cmd (__fish_sonda_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c sonda -n "__fish_sonda_needs_command" -s v -l verbose -d 'Print diagnostics to stderr (repeat for more)'
complete -c sonda -n "__fish_sonda_needs_command" -s q -l quiet -d 'Print nothing to stderr but fatal errors'
complete -c sonda -n "__fish_sonda_needs_command" -s 4 -d 'Use IPv4 only'
complete -c sonda -n "__fish_sonda_needs_command" -s 6 -d 'Use IPv6 only'
complete -c sonda -n "__fish_sonda_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sonda -n "__fish_sonda_needs_command" -s V -l version -d 'Print version'
complete -c sonda -n "__fish_sonda_needs_command" -f -a "listen" -d 'Accept TCP connections and relay them to stdin and stdout'
complete -c sonda -n "__fish_sonda_needs_command" -f -a "connect" -d 'Connect to HOST PORT over TCP and relay stdin and stdout'
complete -c sonda -n "__fish_sonda_needs_command" -f -a "udp-send" -d 'Send datagrams from stdin or --message over connected UDP'
complete -c sonda -n "__fish_sonda_needs_command" -f -a "udp-recv" -d 'Receive datagrams, never truncating one silently'
complete -c sonda -n "__fish_sonda_needs_command" -f -a "probe" -d 'Say why a port or a Unix socket path will not bind, and prove it'
complete -c sonda -n "__fish_sonda_needs_command" -f -a "bench" -d 'Measure throughput and latency, over loopback or between two hosts'
complete -c sonda -n "__fish_sonda_needs_command" -f -a "generate" -d 'Write man pages or shell completions (for packagers)'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -s U -l unix -d 'Listen on a Unix domain socket at PATH instead (@NAME: a Linux abstract name). The file is created, and removed when sonda exits; an existing path is never replaced (see --unlink-stale)' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l max-conns -d 'With -k, the most clients served at once (default 100); a connection over the limit is closed at once, unread' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l allow -d 'Accept clients only from this address or CIDR block (repeatable)' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l deny -d 'Close connections from this address or CIDR block at once, unread (repeatable; wins over --allow)' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l backlog -d 'Length of the accept queue passed to listen(2)' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l sndbuf -d 'Set SO_SNDBUF (turns off the kernel\'s send buffer autotuning)' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l rcvbuf -d 'Set SO_RCVBUF (turns off the kernel\'s receive buffer autotuning)' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l keepalive -d 'Turn on TCP keepalive, probing after DUR of silence and every DUR; whole seconds from 1s to 32767s (TCP_KEEPIDLE\'s range)' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l mark -d 'Set SO_MARK to N, the mark firewall rules and policy routing see (needs CAP_NET_ADMIN)' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l bind-device -d 'Use only interface IFACE (SO_BINDTODEVICE; needs CAP_NET_RAW)' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l tos -d 'Set the IP TOS byte (IPv6 traffic class), 0-255; DSCP is the top six bits (0xb8 is EF). Hex with 0x' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l ttl -d 'Set the IP TTL (IPv6 hop limit) of outgoing packets, 1-255' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l idle-timeout -d 'End the session (exit 4) when no byte has moved either way for DUR (bytes the peer acknowledges count). Under listen -k the idle client is closed instead and the listener goes on' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l hexdump -d 'Dump both directions as hex and text, each chunk with its direction (> sent, < received), time since the start and offset, to stderr or to FILE (--hexdump=FILE). Turns splice off' -r -F
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l quit-after -d 'End DUR after stdin\'s EOF even if the peer has not closed, exit 0 (nc -q; 0 ends once what was sent is acknowledged). For peers that never close' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l cert -d 'The certificate chain to present (PEM), with --key' -r -F
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l key -d 'The private key (PEM) of --cert' -r -F
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l client-ca -d 'Require a client certificate issued by a CA in FILE (PEM); -v names each client\'s subject' -r -F
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l alpn -d 'Accept these ALPN protocols, comma-separated, in order of preference' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l to -d 'Forward each client to TARGET instead of relaying stdin and stdout: HOST:PORT (an IPv6 HOST in brackets) or unix:PATH (unix:@NAME, an abstract name). Each client gets its own upstream connection, bytes go both ways and each end of stream is passed on (half-close); with -k, clients at once. A failed upstream connect resets the client' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l to-timeout -d 'Give up each upstream connect after DUR (default 10s)' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l to-ca -d 'Trust the CA certificates in FILE (PEM) for the upstream instead of the system roots' -r -F
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l to-pin-sha256 -d 'Trust the upstream whose leaf certificate has this SHA-256' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l to-servername -d 'Verify the upstream\'s certificate for NAME instead of HOST (and send it as SNI)' -r
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l seqpacket -d 'With -U, SOCK_SEQPACKET instead of SOCK_STREAM: each record is read whole, whatever its size, and --echo returns it as one record; an empty record reads as the end (read(2) returns 0 for both)'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l unlink-stale -d 'With -U, remove a stale socket file at PATH first: only a socket file no socket is bound to (checked in the kernel\'s socket table), never a live socket or any other file'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -s k -l keep-open -d 'Serve clients concurrently and keep listening after each one ends (a client\'s EOF ends its session: it cannot be told from a close)'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l echo -d 'Send back everything a client sends; stdin is ignored'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l sink -d 'Read and discard what clients send (bytes per client with -v); stdin is ignored and nothing is written to stdout'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l no-reuseaddr -d 'Leave SO_REUSEADDR off: bind fails while connections on the port are in TIME-WAIT'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l reuseport -d 'Set SO_REUSEPORT: share the port with other sockets that set it'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l progress -d 'Draw a progress bar on stderr (bytes each way, rate, elapsed; a total when stdin is a regular file), only when stderr is a terminal. One client at a time (without -k)'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l nodelay -d 'Set TCP_NODELAY (send small writes at once, no Nagle)'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l send-only -d 'Only send stdin; what arrives is read and discarded. Ends at stdin\'s EOF once the peer has acknowledged every byte; a reset is exit 1'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l recv-only -d 'Only receive to stdout; stdin is never read and nothing is sent'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l no-shutdown -d 'Do not half-close the connection at stdin\'s EOF'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l exit-on-eof -d 'End when the peer closes, even while stdin is still open (the default when stdin is a terminal; a pipe or a file is sent to its end, since the peer may only have half-closed). What stdin still holds then is not sent; what was sent must still be acknowledged for exit 0'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l stay-open -d 'When stdin is a terminal, keep sending typed lines after the peer closed, until stdin\'s EOF or until the peer refuses them'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l no-splice -d 'Always copy through a user-space buffer: no splice(2) from the socket into a stdout pipe'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l crlf -d 'Send each LF of stdin as CRLF (an LF already after a CR is left alone), for SMTP or HTTP typed by hand'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l tls -d 'Speak TLS to each client. Without --cert/--key an ephemeral self-signed ECDSA certificate is made for the listening names, and its SHA-256 fingerprint printed on stderr (for connect --pin-sha256)'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l to-tls -d 'Speak TLS to the upstream, verified against the system roots (or --to-ca) for the HOST of --to; an untrusted upstream resets the client'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -l to-insecure -d 'Go on with an upstream certificate that is not trusted'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -s v -l verbose -d 'Print diagnostics to stderr (repeat for more)'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -s q -l quiet -d 'Print nothing to stderr but fatal errors'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -s 4 -d 'Use IPv4 only'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -s 6 -d 'Use IPv6 only'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sonda -n "__fish_sonda_using_subcommand listen" -s V -l version -d 'Print version'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -s U -l unix -d 'Connect to the Unix domain socket at PATH instead of HOST PORT (@NAME: a Linux abstract name)' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -s w -l timeout -d 'Give up connecting after DUR (all addresses together; with -U, a listener whose backlog is full); exit 4. With -z, the bound on each probe (default 1s)' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l concurrency -d 'With -z, the most probes in flight (default: 512, fewer if the descriptor limit is lower; the soft limit is raised to the hard one)' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l retry -d 'Try again up to N more times when the connect fails (refused, timed out, unreachable, name not found); the exit status is the last attempt\'s' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l retry-delay -d 'Wait DUR before the first retry, doubling after each failure up to ten times DUR' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l retry-until -d 'Stop retrying once DUR has passed since the first attempt' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l timeout-method -d 'How the connect timeout is enforced' -r -f -a "poll\t'Non-blocking connect, poll(2) for writability until the deadline, then SO_ERROR'
alarm\t'Blocking connect interrupted by SIGALRM from a sub-second timer'"
complete -c sonda -n "__fish_sonda_using_subcommand connect" -s s -l source -d 'Bind to this local address (and port) before connecting; a busy port is an error, never replaced by another. With a fixed port, SO_REUSEADDR is set, so the port can be used again while the last connection from it is in TIME-WAIT (as with ncat -p)' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -s p -l source-port -d 'Connect from this local port (a number or a service name), on any local address (nc -p), or on the -s address; SO_REUSEADDR as with -s ADDR:PORT. With -z every probe comes from this port' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l sndbuf -d 'Set SO_SNDBUF (turns off the kernel\'s send buffer autotuning)' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l rcvbuf -d 'Set SO_RCVBUF (turns off the kernel\'s receive buffer autotuning)' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l keepalive -d 'Turn on TCP keepalive, probing after DUR of silence and every DUR; whole seconds from 1s to 32767s (TCP_KEEPIDLE\'s range)' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l mark -d 'Set SO_MARK to N, the mark firewall rules and policy routing see (needs CAP_NET_ADMIN)' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l bind-device -d 'Use only interface IFACE (SO_BINDTODEVICE; needs CAP_NET_RAW)' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l tos -d 'Set the IP TOS byte (IPv6 traffic class), 0-255; DSCP is the top six bits (0xb8 is EF). Hex with 0x' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l ttl -d 'Set the IP TTL (IPv6 hop limit) of outgoing packets, 1-255' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l idle-timeout -d 'End the session (exit 4) when no byte has moved either way for DUR (bytes the peer acknowledges count). Under listen -k the idle client is closed instead and the listener goes on' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l hexdump -d 'Dump both directions as hex and text, each chunk with its direction (> sent, < received), time since the start and offset, to stderr or to FILE (--hexdump=FILE). Turns splice off' -r -F
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l quit-after -d 'End DUR after stdin\'s EOF even if the peer has not closed, exit 0 (nc -q; 0 ends once what was sent is acknowledged). For peers that never close' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l ca -d 'Trust the CA certificates in FILE (PEM) instead of the system roots' -r -F
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l servername -d 'The name sent as SNI and verified (default: HOST; an IP address is verified against the certificate\'s IP SANs and sends no SNI)' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l alpn -d 'Offer these ALPN protocols, comma-separated (h2,http/1.1)' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l cert -d 'Present this client certificate chain (PEM), with --key' -r -F
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l key -d 'The private key (PEM) of --cert' -r -F
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l pin-sha256 -d 'Trust exactly the leaf certificate whose SHA-256 is HEX (64 hex digits, colons allowed), whatever its chain and names' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l tls-min -d 'The lowest TLS version accepted (1.2 by default)' -r -f -a "1.2\t''
1.3\t''"
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l starttls -d 'Speak PROTO\'s plaintext preamble first (SMTP EHLO+STARTTLS, IMAP STARTTLS, POP3 STLS, FTP AUTH TLS, PostgreSQL SSLRequest), then the handshake on the same connection; bytes the server sends after its go-ahead are an error (exit 7), never passed on. -v shows the exchange' -r -f -a "smtp\t''
imap\t''
pop3\t''
ftp\t''
postgres\t''"
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l proxy -d 'Connect through this proxy: socks5://[USER[:PASS]@]HOST:PORT, socks4a://[USER@]HOST:PORT or http://[USER[:PASS]@]HOST:PORT (HTTP CONNECT). A user without a password takes it from SONDA_PROXY_PASSWORD, so it never shows in ps. -w bounds the connect and the proxy\'s answer together (30s for the answer without -w); -v reports each stage with its time. --tls and --starttls run over the tunnel.' -r
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l proxy-dns -d 'Who resolves HOST: the proxy (remote, the default) or this host (local, the first address in the -4/-6 family goes to the proxy)' -r -f -a "remote\t''
local\t''"
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l seqpacket -d 'With -U, SOCK_SEQPACKET instead of SOCK_STREAM: each read of stdin goes as one record, each record received is read whole; an empty record reads as the end (read(2) returns 0 for both)'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -s z -l zero-io -d 'Zero-I/O mode: scan PORT (a list) for listeners and send nothing; open ports are printed in port order, closed and filtered ones with -v. Every address HOST resolves to is scanned (nc scans only the first), each on lines of its own. Every probe comes from -s/-p and carries the socket options (--mark, --bind-device, --tos, --ttl)'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l udp -d 'With -z, probe UDP: an empty datagram per port; ICMP port unreachable is closed, a reply open, silence open|filtered. Exit 0 when any port is open or open|filtered, 3 when all are closed'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l json -d 'With -z, print one JSON object per port (every port, any state)'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l progress -d 'Draw a progress bar on stderr (bytes each way, rate, elapsed; a total when stdin is a regular file), only when stderr is a terminal'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l sequential -d 'Try the addresses of a name one at a time, in the resolver\'s order, instead of racing IPv6 and IPv4 (RFC 8305: IPv6 first, the next address 250 ms later, the first to connect wins). The alarm method is always sequential. Under -w each address gets an equal share of the time left (two addresses, -w 2s: 1s each), so one that never answers does not keep the next from being tried'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l nodelay -d 'Set TCP_NODELAY (send small writes at once, no Nagle)'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l send-only -d 'Only send stdin; what arrives is read and discarded. Ends at stdin\'s EOF once the peer has acknowledged every byte; a reset is exit 1'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l recv-only -d 'Only receive to stdout; stdin is never read and nothing is sent'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l no-shutdown -d 'Do not half-close the connection at stdin\'s EOF'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l exit-on-eof -d 'End when the peer closes, even while stdin is still open (the default when stdin is a terminal; a pipe or a file is sent to its end, since the peer may only have half-closed). What stdin still holds then is not sent; what was sent must still be acknowledged for exit 0'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l stay-open -d 'When stdin is a terminal, keep sending typed lines after the peer closed, until stdin\'s EOF or until the peer refuses them'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l no-splice -d 'Always copy through a user-space buffer: no splice(2) from the socket into a stdout pipe'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l crlf -d 'Send each LF of stdin as CRLF (an LF already after a CR is left alone), for SMTP or HTTP typed by hand'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l tls -d 'Speak TLS, verifying the server\'s certificate against the system roots (or --ca): exit 7 when the handshake fails or the certificate is not trusted. With -z, handshake only and print the report on stdout (--json: one object); -v prints it on stderr in a relay'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l insecure -d 'Go on when the certificate is not trusted, with a warning naming every problem on stderr'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -l no-sni -d 'Send no SNI (the name is still verified)'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -s v -l verbose -d 'Print diagnostics to stderr (repeat for more)'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -s q -l quiet -d 'Print nothing to stderr but fatal errors'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -s 4 -d 'Use IPv4 only'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -s 6 -d 'Use IPv6 only'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sonda -n "__fish_sonda_using_subcommand connect" -s V -l version -d 'Print version'
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -s U -l unix -d 'Send to the Unix datagram socket at PATH instead (@NAME: a Linux abstract name). The sending socket is bound to an abstract name of its own, so replies can reach it' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -l size -d 'Largest datagram cut from stdin, in bytes (1-65527; IPv4 carries at most 65507; a Unix datagram may be larger, up to the socket buffer)' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -l message -d 'Send exactly TEXT instead of reading stdin' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -l count -d 'Datagrams to send: the message N times (default once), or at most N from stdin (default all of it)' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -l interval -d 'Pause DUR between datagrams' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -l wait-reply -d 'After sending, print replies to stdout until DUR passes without one; exit 4 if none came' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -s s -l source -d 'Bind to this local address (and port) first' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -s p -l source-port -d 'Send from this local port (a number or a service name), on any local address (nc -u -p), or on the -s address' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -l multicast-if -d 'To a multicast group: send out of interface IFACE (IP_MULTICAST_IF, IPV6_MULTICAST_IF) rather than where the group\'s route leads' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -l mark -d 'Set SO_MARK to N, the mark firewall rules and policy routing see (needs CAP_NET_ADMIN)' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -l bind-device -d 'Use only interface IFACE (SO_BINDTODEVICE; needs CAP_NET_RAW)' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -l tos -d 'Set the IP TOS byte (IPv6 traffic class), 0-255; DSCP is the top six bits (0xb8 is EF). Hex with 0x' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -l ttl -d 'Set the IP TTL (IPv6 hop limit) of outgoing packets, 1-255' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -l lines -d 'Send one datagram per line of stdin, without its newline, as soon as the line is complete (an empty line is an empty datagram; a line longer than --size is an error)'
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -l broadcast -d 'Set SO_BROADCAST, to send to a broadcast address (without it the kernel refuses one: "permission denied", exit 1, with a hint)'
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -l no-multicast-loop -d 'To a multicast group: no copy for receivers on this host (the kernel\'s default, kept otherwise, loops one back)'
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -s v -l verbose -d 'Print diagnostics to stderr (repeat for more)'
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -s q -l quiet -d 'Print nothing to stderr but fatal errors'
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -s 4 -d 'Use IPv4 only'
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -s 6 -d 'Use IPv6 only'
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sonda -n "__fish_sonda_using_subcommand udp-send" -s V -l version -d 'Print version'
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -s U -l unix -d 'Receive on a Unix datagram socket at PATH instead (@NAME: a Linux abstract name); the file is removed when udp-recv exits' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -l buffer -d 'Initial receive buffer, in bytes' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -l max-size -d 'Largest the buffer may grow to, in bytes; at least --buffer (default: 65535, or --buffer if that is larger)' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -l count -d 'Exit after N datagrams' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -l timeout -d 'Exit 4 when no datagram arrives for DUR' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -l join -d 'Join multicast GROUP (IPv4 224.0.0.0/4, IPv6 ff00::/8) on interface IFACE, by default the one the group\'s route leads to; repeat for more groups. Only joined groups are delivered (IP_MULTICAST_ALL off)' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -l source -d 'With --join: a source-specific join (SSM): only datagrams sent by address S' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -l mark -d 'Set SO_MARK to N, the mark firewall rules and policy routing see (needs CAP_NET_ADMIN)' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -l bind-device -d 'Use only interface IFACE (SO_BINDTODEVICE; needs CAP_NET_RAW)' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -l tos -d 'Set the IP TOS byte (IPv6 traffic class), 0-255; DSCP is the top six bits (0xb8 is EF). Hex with 0x' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -l ttl -d 'Set the IP TTL (IPv6 hop limit) of outgoing packets, 1-255' -r
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -l no-grow -d 'Keep the buffer at --buffer: larger datagrams are delivered truncated and reported'
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -l show -d 'Print a line per datagram (time, sender, length, truncated, escaped preview; for UDP also destination, TTL and TOS) instead of the raw payload'
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -l json -d 'Print one JSON object per datagram (payload in base64)'
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -l echo -d 'Send every datagram back to its sender'
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -l reuseaddr -d 'Set SO_REUSEADDR, to share the port on purpose with sockets that set it too. Off by default, so a port another socket holds is exit 5: of two receivers on one port, the one bound last gets every unicast datagram and the other none'
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -l no-reuseaddr -d 'What udp-recv does by default now; still accepted so scripts that asked for it keep working'
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -l reply -d 'Send stdin to the last sender, the \'nc -u -l\' session: each read of stdin (or each line, with --lines) is one datagram, held until a first datagram names the peer'
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -l lines -d 'With --reply: one datagram per line of stdin, without its newline'
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -s v -l verbose -d 'Print diagnostics to stderr (repeat for more)'
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -s q -l quiet -d 'Print nothing to stderr but fatal errors'
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -s 4 -d 'Use IPv4 only'
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -s 6 -d 'Use IPv6 only'
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sonda -n "__fish_sonda_using_subcommand udp-recv" -s V -l version -d 'Print version'
complete -c sonda -n "__fish_sonda_using_subcommand probe" -s U -l unix -d 'Probe a Unix domain socket path instead of a port (@NAME: a Linux abstract name): free, a live listener, a stale socket file, an orphaned listener, or not a socket. At most 107 bytes' -r
complete -c sonda -n "__fish_sonda_using_subcommand probe" -l mark -d 'Set SO_MARK to N, the mark firewall rules and policy routing see (needs CAP_NET_ADMIN)' -r
complete -c sonda -n "__fish_sonda_using_subcommand probe" -l bind-device -d 'Use only interface IFACE (SO_BINDTODEVICE; needs CAP_NET_RAW)' -r
complete -c sonda -n "__fish_sonda_using_subcommand probe" -l tos -d 'Set the IP TOS byte (IPv6 traffic class), 0-255; DSCP is the top six bits (0xb8 is EF). Hex with 0x' -r
complete -c sonda -n "__fish_sonda_using_subcommand probe" -l ttl -d 'Set the IP TTL (IPv6 hop limit) of outgoing packets, 1-255' -r
complete -c sonda -n "__fish_sonda_using_subcommand probe" -l udp -d 'Probe UDP instead of TCP'
complete -c sonda -n "__fish_sonda_using_subcommand probe" -l json -d 'Print one JSON object (schema in DESCRIPTION) instead of text'
complete -c sonda -n "__fish_sonda_using_subcommand probe" -l reproduce -d 'Demonstrate TIME-WAIT and SO_REUSEADDR on loopback'
complete -c sonda -n "__fish_sonda_using_subcommand probe" -s v -l verbose -d 'Print diagnostics to stderr (repeat for more)'
complete -c sonda -n "__fish_sonda_using_subcommand probe" -s q -l quiet -d 'Print nothing to stderr but fatal errors'
complete -c sonda -n "__fish_sonda_using_subcommand probe" -s 4 -d 'Use IPv4 only'
complete -c sonda -n "__fish_sonda_using_subcommand probe" -s 6 -d 'Use IPv6 only'
complete -c sonda -n "__fish_sonda_using_subcommand probe" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sonda -n "__fish_sonda_using_subcommand probe" -s V -l version -d 'Print version'
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l proto -d 'Transport to measure (-U measures a Unix stream socket instead)' -r -f -a "tcp\t''
udp\t''"
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l mode -d 'stream: bulk throughput; rr: request/response latency' -r -f -a "stream\t''
rr\t''"
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l size -d 'Bytes per call (TCP or Unix stream, default 1M), per datagram (UDP stream, default 1472) or per request and response (rr, default 1)' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l rate -d 'UDP sending rate in bits per second (K, M, G are powers of 1000); default: as fast as possible. The first datagram goes at once and each next one when the rate has earned it, so no burst exceeds the rate, and the test lasts --duration however low the rate' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l streams -d 'Parallel connections (UDP: sockets) per direction' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l duration -d 'How long to measure, after --omit' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l bytes -d 'Stop after this many bytes instead of a duration (stream mode)' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l omit -d 'Warm-up excluded from the results' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l interval -d 'Print a line of figures every DUR, from the end of --omit; the last line covers what is left of the test (at most 20000 per test)' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l pin -d 'Pin the client to CPU C and the server to CPU S (local runs; on two hosts each side pins its own). A CPU this machine does not offer the process is an error naming the CPUs available (a server refuses the test)' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l multicast -d 'UDP stream to multicast GROUP: the client sends to the group (out of the interface toward the server, TTL --ttl or 1), the server joins it there and counts rate, loss and reordering. See MULTICAST in sonda-bench(1)' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l receiver -d 'With --client and --multicast: one more receiver, a bench server on another host (or this one) that joins the group on the same port and reports its own rate, loss and reordering, a result each (repeatable; PORT defaults to the --client server\'s)' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l sndbuf -d 'Set SO_SNDBUF on data sockets (turns off autotuning; Unix stream default: 1M, forced when root)' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l rcvbuf -d 'Set SO_RCVBUF on data sockets (UDP default: 4M, forced when root)' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l rcvlowat -d 'SO_RCVLOWAT on stream receivers: a read returns only once SIZE bytes are there (TCP default: --size, which also wakes the reader less often; Unix default: off, as the kernel wakes a Unix reader at every write anyway and it measured no faster; 0 turns it off)' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l server -d 'Serve tests until interrupted, on the HOST and PORT given, if any (default: every interface, port 5205). HOST PORT, HOST:PORT, an IPv6 address in brackets before :PORT, a HOST alone (::1 is one) or a PORT alone; with -U PATH and no address, on that Unix socket. Each client chooses its test: a test parameter (--proto, --duration, --size and the rest) given to a server is a usage error' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l client -d 'Run the test against a sonda bench server: HOST, then PORT if not 5205; HOST:PORT works too, with an IPv6 address in brackets before :PORT (a bare ::1 is a host). With -U PATH and no address, the server listening on that Unix socket' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -s U -l unix -d 'Measure a Unix stream socket at PATH (@NAME: a Linux abstract name) instead of TCP: alone, a local test over a socket bench creates at PATH and removes; with --server, serve there; with --client, test against the server there. --proto does not apply' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l control-timeout -d 'Bound on every control step (connect, handshake, results). A step it ends after the connection is made is exit 1 (a connect that times out is exit 4)' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l mark -d 'Set SO_MARK to N, the mark firewall rules and policy routing see (needs CAP_NET_ADMIN)' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l bind-device -d 'Use only interface IFACE (SO_BINDTODEVICE; needs CAP_NET_RAW)' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l tos -d 'Set the IP TOS byte (IPv6 traffic class), 0-255; DSCP is the top six bits (0xb8 is EF). Hex with 0x' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l ttl -d 'Set the IP TTL (IPv6 hop limit) of outgoing packets, 1-255' -r
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l reverse -d 'Send from the server to the client instead'
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l bidir -d 'Send both ways at once (--streams each way)'
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l json -d 'Print one JSON document (schema in DESCRIPTION) instead of the table'
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l no-gso -d 'Turn off UDP GSO (sender) and GRO (receiver)'
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l unlink-stale -d 'With -U (alone or with --server), remove a stale socket file at PATH first: only a socket file no socket is bound to, never a live socket or any other file'
complete -c sonda -n "__fish_sonda_using_subcommand bench" -l once -d 'With --server, exit after one test'
complete -c sonda -n "__fish_sonda_using_subcommand bench" -s v -l verbose -d 'Print diagnostics to stderr (repeat for more)'
complete -c sonda -n "__fish_sonda_using_subcommand bench" -s q -l quiet -d 'Print nothing to stderr but fatal errors'
complete -c sonda -n "__fish_sonda_using_subcommand bench" -s 4 -d 'Use IPv4 only'
complete -c sonda -n "__fish_sonda_using_subcommand bench" -s 6 -d 'Use IPv6 only'
complete -c sonda -n "__fish_sonda_using_subcommand bench" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sonda -n "__fish_sonda_using_subcommand bench" -s V -l version -d 'Print version'
complete -c sonda -n "__fish_sonda_using_subcommand generate" -l dir -d 'Directory to write into' -r -F
complete -c sonda -n "__fish_sonda_using_subcommand generate" -s v -l verbose -d 'Print diagnostics to stderr (repeat for more)'
complete -c sonda -n "__fish_sonda_using_subcommand generate" -s q -l quiet -d 'Print nothing to stderr but fatal errors'
complete -c sonda -n "__fish_sonda_using_subcommand generate" -s 4 -d 'Use IPv4 only'
complete -c sonda -n "__fish_sonda_using_subcommand generate" -s 6 -d 'Use IPv6 only'
complete -c sonda -n "__fish_sonda_using_subcommand generate" -s h -l help -d 'Print help'
complete -c sonda -n "__fish_sonda_using_subcommand generate" -s V -l version -d 'Print version'
