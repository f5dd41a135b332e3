
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'sonda' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'sonda'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'sonda' {
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print diagnostics to stderr (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print diagnostics to stderr (repeat for more)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing to stderr but fatal errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing to stderr but fatal errors')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'Use IPv4 only')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'Use IPv6 only')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('listen', 'listen', [CompletionResultType]::ParameterValue, 'Accept TCP connections and relay them to stdin and stdout')
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Connect to HOST PORT over TCP and relay stdin and stdout')
            [CompletionResult]::new('udp-send', 'udp-send', [CompletionResultType]::ParameterValue, 'Send datagrams from stdin or --message over connected UDP')
            [CompletionResult]::new('udp-recv', 'udp-recv', [CompletionResultType]::ParameterValue, 'Receive datagrams, never truncating one silently')
            [CompletionResult]::new('probe', 'probe', [CompletionResultType]::ParameterValue, 'Say why a port or a Unix socket path will not bind, and prove it')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Measure throughput and latency, over loopback or between two hosts')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Write man pages or shell completions (for packagers)')
            break
        }
        'sonda;listen' {
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Listen on a Unix domain socket at PATH instead (@NAME: a Linux abstract name). The file is created, and removed when sonda exits; an existing path is never replaced (see --unlink-stale)')
            [CompletionResult]::new('--unix', '--unix', [CompletionResultType]::ParameterName, 'Listen on a Unix domain socket at PATH instead (@NAME: a Linux abstract name). The file is created, and removed when sonda exits; an existing path is never replaced (see --unlink-stale)')
            [CompletionResult]::new('--max-conns', '--max-conns', [CompletionResultType]::ParameterName, 'With -k, the most clients served at once (default 100); a connection over the limit is closed at once, unread')
            [CompletionResult]::new('--allow', '--allow', [CompletionResultType]::ParameterName, 'Accept clients only from this address or CIDR block (repeatable)')
            [CompletionResult]::new('--deny', '--deny', [CompletionResultType]::ParameterName, 'Close connections from this address or CIDR block at once, unread (repeatable; wins over --allow)')
            [CompletionResult]::new('--backlog', '--backlog', [CompletionResultType]::ParameterName, 'Length of the accept queue passed to listen(2)')
            [CompletionResult]::new('--sndbuf', '--sndbuf', [CompletionResultType]::ParameterName, 'Set SO_SNDBUF (turns off the kernel''s send buffer autotuning)')
            [CompletionResult]::new('--rcvbuf', '--rcvbuf', [CompletionResultType]::ParameterName, 'Set SO_RCVBUF (turns off the kernel''s receive buffer autotuning)')
            [CompletionResult]::new('--keepalive', '--keepalive', [CompletionResultType]::ParameterName, 'Turn on TCP keepalive, probing after DUR of silence and every DUR; whole seconds from 1s to 32767s (TCP_KEEPIDLE''s range)')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'End the session (exit 4) when no byte has moved either way for DUR (bytes the peer acknowledges count). Under listen -k the idle client is closed instead and the listener goes on')
            [CompletionResult]::new('--seqpacket', '--seqpacket', [CompletionResultType]::ParameterName, 'With -U, SOCK_SEQPACKET instead of SOCK_STREAM: each record is read whole, whatever its size, and --echo returns it as one record; an empty record reads as the end (read(2) returns 0 for both)')
            [CompletionResult]::new('--unlink-stale', '--unlink-stale', [CompletionResultType]::ParameterName, 'With -U, remove a stale socket file at PATH first: only a socket file no socket is bound to (checked in the kernel''s socket table), never a live socket or any other file')
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'Serve clients concurrently and keep listening after each one ends')
            [CompletionResult]::new('--keep-open', '--keep-open', [CompletionResultType]::ParameterName, 'Serve clients concurrently and keep listening after each one ends')
            [CompletionResult]::new('--echo', '--echo', [CompletionResultType]::ParameterName, 'Send back everything a client sends; stdin is ignored')
            [CompletionResult]::new('--sink', '--sink', [CompletionResultType]::ParameterName, 'Read and discard what clients send (bytes per client with -v); stdin is ignored and nothing is written to stdout')
            [CompletionResult]::new('--no-reuseaddr', '--no-reuseaddr', [CompletionResultType]::ParameterName, 'Leave SO_REUSEADDR off: bind fails while connections on the port are in TIME-WAIT')
            [CompletionResult]::new('--reuseport', '--reuseport', [CompletionResultType]::ParameterName, 'Set SO_REUSEPORT: share the port with other sockets that set it')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Draw a progress bar on stderr (bytes each way, rate, elapsed; a total when stdin is a regular file), only when stderr is a terminal. One client at a time (without -k)')
            [CompletionResult]::new('--nodelay', '--nodelay', [CompletionResultType]::ParameterName, 'Set TCP_NODELAY (send small writes at once, no Nagle)')
            [CompletionResult]::new('--send-only', '--send-only', [CompletionResultType]::ParameterName, 'Only send stdin; what arrives is read and discarded. Ends at stdin''s EOF once the peer has acknowledged every byte; a reset is exit 1')
            [CompletionResult]::new('--recv-only', '--recv-only', [CompletionResultType]::ParameterName, 'Only receive to stdout; stdin is never read and nothing is sent')
            [CompletionResult]::new('--no-shutdown', '--no-shutdown', [CompletionResultType]::ParameterName, 'Do not half-close the connection at stdin''s EOF')
            [CompletionResult]::new('--exit-on-eof', '--exit-on-eof', [CompletionResultType]::ParameterName, 'End when the peer closes, even while stdin is still open (the default when stdin is a terminal; a pipe or a file is sent to its end, since the peer may only have half-closed). What stdin still holds then is not sent; what was sent must still be acknowledged for exit 0')
            [CompletionResult]::new('--stay-open', '--stay-open', [CompletionResultType]::ParameterName, 'When stdin is a terminal, keep sending typed lines after the peer closed, until stdin''s EOF or until the peer refuses them')
            [CompletionResult]::new('--no-splice', '--no-splice', [CompletionResultType]::ParameterName, 'Always copy through a user-space buffer: no splice(2) from the socket into a stdout pipe')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print diagnostics to stderr (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print diagnostics to stderr (repeat for more)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing to stderr but fatal errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing to stderr but fatal errors')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'Use IPv4 only')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'Use IPv6 only')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sonda;connect' {
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Connect to the Unix domain socket at PATH instead of HOST PORT (@NAME: a Linux abstract name)')
            [CompletionResult]::new('--unix', '--unix', [CompletionResultType]::ParameterName, 'Connect to the Unix domain socket at PATH instead of HOST PORT (@NAME: a Linux abstract name)')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'Give up connecting after DUR (all addresses together; with -U, a listener whose backlog is full); exit 4. With -z, the bound on each probe (default 1s)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Give up connecting after DUR (all addresses together; with -U, a listener whose backlog is full); exit 4. With -z, the bound on each probe (default 1s)')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'With -z, the most probes in flight (default: 512, fewer if the descriptor limit is lower; the soft limit is raised to the hard one)')
            [CompletionResult]::new('--retry', '--retry', [CompletionResultType]::ParameterName, 'Try again up to N more times when the connect fails (refused, timed out, unreachable, name not found); the exit status is the last attempt''s')
            [CompletionResult]::new('--retry-delay', '--retry-delay', [CompletionResultType]::ParameterName, 'Wait DUR before the first retry, doubling after each failure up to ten times DUR')
            [CompletionResult]::new('--retry-until', '--retry-until', [CompletionResultType]::ParameterName, 'Stop retrying once DUR has passed since the first attempt')
            [CompletionResult]::new('--timeout-method', '--timeout-method', [CompletionResultType]::ParameterName, 'How the connect timeout is enforced')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Bind to this local address (and port) before connecting; a busy port is an error, never replaced by another. With a fixed port, SO_REUSEADDR is set, so the port can be used again while the last connection from it is in TIME-WAIT (as with ncat -p)')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Bind to this local address (and port) before connecting; a busy port is an error, never replaced by another. With a fixed port, SO_REUSEADDR is set, so the port can be used again while the last connection from it is in TIME-WAIT (as with ncat -p)')
            [CompletionResult]::new('--sndbuf', '--sndbuf', [CompletionResultType]::ParameterName, 'Set SO_SNDBUF (turns off the kernel''s send buffer autotuning)')
            [CompletionResult]::new('--rcvbuf', '--rcvbuf', [CompletionResultType]::ParameterName, 'Set SO_RCVBUF (turns off the kernel''s receive buffer autotuning)')
            [CompletionResult]::new('--keepalive', '--keepalive', [CompletionResultType]::ParameterName, 'Turn on TCP keepalive, probing after DUR of silence and every DUR; whole seconds from 1s to 32767s (TCP_KEEPIDLE''s range)')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'End the session (exit 4) when no byte has moved either way for DUR (bytes the peer acknowledges count). Under listen -k the idle client is closed instead and the listener goes on')
            [CompletionResult]::new('--seqpacket', '--seqpacket', [CompletionResultType]::ParameterName, 'With -U, SOCK_SEQPACKET instead of SOCK_STREAM: each read of stdin goes as one record, each record received is read whole; an empty record reads as the end (read(2) returns 0 for both)')
            [CompletionResult]::new('-z', '-z', [CompletionResultType]::ParameterName, 'Zero-I/O mode: scan PORT (a list) for listeners and send nothing; open ports are printed in port order, closed and filtered ones with -v. Every address HOST resolves to is scanned (nc scans only the first), each on lines of its own')
            [CompletionResult]::new('--zero-io', '--zero-io', [CompletionResultType]::ParameterName, 'Zero-I/O mode: scan PORT (a list) for listeners and send nothing; open ports are printed in port order, closed and filtered ones with -v. Every address HOST resolves to is scanned (nc scans only the first), each on lines of its own')
            [CompletionResult]::new('--udp', '--udp', [CompletionResultType]::ParameterName, 'With -z, probe UDP: an empty datagram per port; ICMP port unreachable is closed, a reply open, silence open|filtered. Exit 0 when any port is open or open|filtered, 3 when all are closed')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'With -z, print one JSON object per port (every port, any state)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Draw a progress bar on stderr (bytes each way, rate, elapsed; a total when stdin is a regular file), only when stderr is a terminal')
            [CompletionResult]::new('--nodelay', '--nodelay', [CompletionResultType]::ParameterName, 'Set TCP_NODELAY (send small writes at once, no Nagle)')
            [CompletionResult]::new('--send-only', '--send-only', [CompletionResultType]::ParameterName, 'Only send stdin; what arrives is read and discarded. Ends at stdin''s EOF once the peer has acknowledged every byte; a reset is exit 1')
            [CompletionResult]::new('--recv-only', '--recv-only', [CompletionResultType]::ParameterName, 'Only receive to stdout; stdin is never read and nothing is sent')
            [CompletionResult]::new('--no-shutdown', '--no-shutdown', [CompletionResultType]::ParameterName, 'Do not half-close the connection at stdin''s EOF')
            [CompletionResult]::new('--exit-on-eof', '--exit-on-eof', [CompletionResultType]::ParameterName, 'End when the peer closes, even while stdin is still open (the default when stdin is a terminal; a pipe or a file is sent to its end, since the peer may only have half-closed). What stdin still holds then is not sent; what was sent must still be acknowledged for exit 0')
            [CompletionResult]::new('--stay-open', '--stay-open', [CompletionResultType]::ParameterName, 'When stdin is a terminal, keep sending typed lines after the peer closed, until stdin''s EOF or until the peer refuses them')
            [CompletionResult]::new('--no-splice', '--no-splice', [CompletionResultType]::ParameterName, 'Always copy through a user-space buffer: no splice(2) from the socket into a stdout pipe')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print diagnostics to stderr (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print diagnostics to stderr (repeat for more)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing to stderr but fatal errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing to stderr but fatal errors')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'Use IPv4 only')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'Use IPv6 only')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sonda;udp-send' {
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Send to the Unix datagram socket at PATH instead (@NAME: a Linux abstract name). The sending socket is bound to an abstract name of its own, so replies can reach it')
            [CompletionResult]::new('--unix', '--unix', [CompletionResultType]::ParameterName, 'Send to the Unix datagram socket at PATH instead (@NAME: a Linux abstract name). The sending socket is bound to an abstract name of its own, so replies can reach it')
            [CompletionResult]::new('--size', '--size', [CompletionResultType]::ParameterName, 'Largest datagram cut from stdin, in bytes (1-65527; IPv4 carries at most 65507; a Unix datagram may be larger, up to the socket buffer)')
            [CompletionResult]::new('--message', '--message', [CompletionResultType]::ParameterName, 'Send exactly TEXT instead of reading stdin')
            [CompletionResult]::new('--count', '--count', [CompletionResultType]::ParameterName, 'Datagrams to send: the message N times (default once), or at most N from stdin (default all of it)')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Pause DUR between datagrams')
            [CompletionResult]::new('--wait-reply', '--wait-reply', [CompletionResultType]::ParameterName, 'After sending, print replies to stdout until DUR passes without one; exit 4 if none came')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Bind to this local address (and port) first')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Bind to this local address (and port) first')
            [CompletionResult]::new('--lines', '--lines', [CompletionResultType]::ParameterName, 'Send one datagram per line of stdin, without its newline, as soon as the line is complete (an empty line is an empty datagram; a line longer than --size is an error)')
            [CompletionResult]::new('--broadcast', '--broadcast', [CompletionResultType]::ParameterName, 'Set SO_BROADCAST, to send to a broadcast address (without it the kernel refuses one: "permission denied", exit 1, with a hint)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print diagnostics to stderr (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print diagnostics to stderr (repeat for more)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing to stderr but fatal errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing to stderr but fatal errors')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'Use IPv4 only')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'Use IPv6 only')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sonda;udp-recv' {
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Receive on a Unix datagram socket at PATH instead (@NAME: a Linux abstract name); the file is removed when udp-recv exits')
            [CompletionResult]::new('--unix', '--unix', [CompletionResultType]::ParameterName, 'Receive on a Unix datagram socket at PATH instead (@NAME: a Linux abstract name); the file is removed when udp-recv exits')
            [CompletionResult]::new('--buffer', '--buffer', [CompletionResultType]::ParameterName, 'Initial receive buffer, in bytes')
            [CompletionResult]::new('--max-size', '--max-size', [CompletionResultType]::ParameterName, 'Largest the buffer may grow to, in bytes; at least --buffer (default: 65535, or --buffer if that is larger)')
            [CompletionResult]::new('--count', '--count', [CompletionResultType]::ParameterName, 'Exit after N datagrams')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Exit 4 when no datagram arrives for DUR')
            [CompletionResult]::new('--no-grow', '--no-grow', [CompletionResultType]::ParameterName, 'Keep the buffer at --buffer: larger datagrams are delivered truncated and reported')
            [CompletionResult]::new('--show', '--show', [CompletionResultType]::ParameterName, 'Print a line per datagram (time, sender, length, truncated, escaped preview) instead of the raw payload')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object per datagram (payload in base64)')
            [CompletionResult]::new('--echo', '--echo', [CompletionResultType]::ParameterName, 'Send every datagram back to its sender')
            [CompletionResult]::new('--reuseaddr', '--reuseaddr', [CompletionResultType]::ParameterName, 'Set SO_REUSEADDR, to share the port on purpose with sockets that set it too. Off by default, so a port another socket holds is exit 5: of two receivers on one port, the one bound last gets every unicast datagram and the other none')
            [CompletionResult]::new('--no-reuseaddr', '--no-reuseaddr', [CompletionResultType]::ParameterName, 'What udp-recv does by default now; still accepted so scripts that asked for it keep working')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print diagnostics to stderr (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print diagnostics to stderr (repeat for more)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing to stderr but fatal errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing to stderr but fatal errors')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'Use IPv4 only')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'Use IPv6 only')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sonda;probe' {
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Probe a Unix domain socket path instead of a port (@NAME: a Linux abstract name): free, a live listener, a stale socket file, an orphaned listener, or not a socket. At most 107 bytes')
            [CompletionResult]::new('--unix', '--unix', [CompletionResultType]::ParameterName, 'Probe a Unix domain socket path instead of a port (@NAME: a Linux abstract name): free, a live listener, a stale socket file, an orphaned listener, or not a socket. At most 107 bytes')
            [CompletionResult]::new('--udp', '--udp', [CompletionResultType]::ParameterName, 'Probe UDP instead of TCP')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object (schema in DESCRIPTION) instead of text')
            [CompletionResult]::new('--reproduce', '--reproduce', [CompletionResultType]::ParameterName, 'Demonstrate TIME-WAIT and SO_REUSEADDR on loopback')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print diagnostics to stderr (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print diagnostics to stderr (repeat for more)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing to stderr but fatal errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing to stderr but fatal errors')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'Use IPv4 only')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'Use IPv6 only')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sonda;bench' {
            [CompletionResult]::new('--proto', '--proto', [CompletionResultType]::ParameterName, 'Transport to measure (-U measures a Unix stream socket instead)')
            [CompletionResult]::new('--mode', '--mode', [CompletionResultType]::ParameterName, 'stream: bulk throughput; rr: request/response latency')
            [CompletionResult]::new('--size', '--size', [CompletionResultType]::ParameterName, 'Bytes per call (TCP or Unix stream, default 1M), per datagram (UDP stream, default 1472) or per request and response (rr, default 1)')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'UDP sending rate in bits per second (K, M, G are powers of 1000); default: as fast as possible. The first datagram goes at once and each next one when the rate has earned it, so no burst exceeds the rate, and the test lasts --duration however low the rate')
            [CompletionResult]::new('--streams', '--streams', [CompletionResultType]::ParameterName, 'Parallel connections (UDP: sockets) per direction')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'How long to measure, after --omit')
            [CompletionResult]::new('--bytes', '--bytes', [CompletionResultType]::ParameterName, 'Stop after this many bytes instead of a duration (stream mode)')
            [CompletionResult]::new('--omit', '--omit', [CompletionResultType]::ParameterName, 'Warm-up excluded from the results')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Print a line of figures every DUR, from the end of --omit; the last line covers what is left of the test (at most 20000 per test)')
            [CompletionResult]::new('--pin', '--pin', [CompletionResultType]::ParameterName, 'Pin the client to CPU C and the server to CPU S (local runs; on two hosts each side pins its own). A CPU this machine does not offer the process is an error naming the CPUs available (a server refuses the test)')
            [CompletionResult]::new('--sndbuf', '--sndbuf', [CompletionResultType]::ParameterName, 'Set SO_SNDBUF on data sockets (turns off autotuning; Unix stream default: 1M, forced when root)')
            [CompletionResult]::new('--rcvbuf', '--rcvbuf', [CompletionResultType]::ParameterName, 'Set SO_RCVBUF on data sockets (UDP default: 4M, forced when root)')
            [CompletionResult]::new('--rcvlowat', '--rcvlowat', [CompletionResultType]::ParameterName, 'SO_RCVLOWAT on stream receivers: a read returns only once SIZE bytes are there (TCP default: --size, which also wakes the reader less often; Unix default: off, as the kernel wakes a Unix reader at every write anyway and it measured no faster; 0 turns it off)')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Serve tests until interrupted, on the HOST and PORT given, if any (default: every interface, port 5205). HOST PORT, HOST:PORT, an IPv6 address in brackets before :PORT, a HOST alone (::1 is one) or a PORT alone; with -U PATH and no address, on that Unix socket')
            [CompletionResult]::new('--client', '--client', [CompletionResultType]::ParameterName, 'Run the test against a sonda bench server: HOST, then PORT if not 5205; HOST:PORT works too, with an IPv6 address in brackets before :PORT (a bare ::1 is a host). With -U PATH and no address, the server listening on that Unix socket')
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Measure a Unix stream socket at PATH (@NAME: a Linux abstract name) instead of TCP: alone, a local test over a socket bench creates at PATH and removes; with --server, serve there; with --client, test against the server there. --proto does not apply')
            [CompletionResult]::new('--unix', '--unix', [CompletionResultType]::ParameterName, 'Measure a Unix stream socket at PATH (@NAME: a Linux abstract name) instead of TCP: alone, a local test over a socket bench creates at PATH and removes; with --server, serve there; with --client, test against the server there. --proto does not apply')
            [CompletionResult]::new('--control-timeout', '--control-timeout', [CompletionResultType]::ParameterName, 'Bound on every control step (connect, handshake, results). A step it ends after the connection is made is exit 1 (a connect that times out is exit 4)')
            [CompletionResult]::new('--reverse', '--reverse', [CompletionResultType]::ParameterName, 'Send from the server to the client instead')
            [CompletionResult]::new('--bidir', '--bidir', [CompletionResultType]::ParameterName, 'Send both ways at once (--streams each way)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document (schema in DESCRIPTION) instead of the table')
            [CompletionResult]::new('--no-gso', '--no-gso', [CompletionResultType]::ParameterName, 'Turn off UDP GSO (sender) and GRO (receiver)')
            [CompletionResult]::new('--unlink-stale', '--unlink-stale', [CompletionResultType]::ParameterName, 'With -U (alone or with --server), remove a stale socket file at PATH first: only a socket file no socket is bound to, never a live socket or any other file')
            [CompletionResult]::new('--once', '--once', [CompletionResultType]::ParameterName, 'With --server, exit after one test')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print diagnostics to stderr (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print diagnostics to stderr (repeat for more)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing to stderr but fatal errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing to stderr but fatal errors')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'Use IPv4 only')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'Use IPv6 only')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'sonda;generate' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Directory to write into')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print diagnostics to stderr (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print diagnostics to stderr (repeat for more)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing to stderr but fatal errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing to stderr but fatal errors')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'Use IPv4 only')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'Use IPv6 only')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
