
use builtin;
use str;

set edit:completion:arg-completer[sonda] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'sonda'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'sonda'= {
            cand -v 'Print diagnostics to stderr (repeat for more)'
            cand --verbose 'Print diagnostics to stderr (repeat for more)'
            cand -q 'Print nothing to stderr but fatal errors'
            cand --quiet 'Print nothing to stderr but fatal errors'
            cand -4 'Use IPv4 only'
            cand -6 'Use IPv6 only'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand listen 'Accept TCP connections and relay them to stdin and stdout'
            cand connect 'Connect to HOST PORT over TCP and relay stdin and stdout'
            cand udp-send 'Send datagrams from stdin or --message over connected UDP'
            cand udp-recv 'Receive datagrams, never truncating one silently'
            cand probe 'Say why a port will not bind, and prove it'
            cand generate 'Write man pages or shell completions (for packagers)'
        }
        &'sonda;listen'= {
            cand --max-conns 'With -k, the most clients served at once; a connection over the limit is closed at once, unread'
            cand --allow 'Accept clients only from this address or CIDR block (repeatable)'
            cand --deny 'Close connections from this address or CIDR block at once, unread (repeatable; wins over --allow)'
            cand --backlog 'Length of the accept queue passed to listen(2)'
            cand --sndbuf 'Set SO_SNDBUF (turns off the kernel''s send buffer autotuning)'
            cand --rcvbuf 'Set SO_RCVBUF (turns off the kernel''s receive buffer autotuning)'
            cand --keepalive 'Turn on TCP keepalive, probing after DUR of silence and every DUR'
            cand --idle-timeout 'End the session (exit 4) when no byte has moved either way for DUR'
            cand -k 'Serve clients concurrently and keep listening after each one ends'
            cand --keep-open 'Serve clients concurrently and keep listening after each one ends'
            cand --echo 'Send back everything a client sends; stdin is ignored'
            cand --sink 'Read and discard what clients send (bytes per client with -v); stdin is ignored and nothing is written to stdout'
            cand --no-reuseaddr 'Leave SO_REUSEADDR off: bind fails while connections on the port are in TIME-WAIT'
            cand --reuseport 'Set SO_REUSEPORT: share the port with other sockets that set it'
            cand --nodelay 'Set TCP_NODELAY (send small writes at once, no Nagle)'
            cand --send-only 'Only send stdin; what arrives is read and discarded. Ends at stdin''s EOF once the peer has acknowledged every byte'
            cand --recv-only 'Only receive to stdout; stdin is never read and nothing is sent'
            cand --no-shutdown 'Do not half-close the connection at stdin''s EOF'
            cand --exit-on-eof 'End when the peer closes, even while stdin is still open'
            cand -v 'Print diagnostics to stderr (repeat for more)'
            cand --verbose 'Print diagnostics to stderr (repeat for more)'
            cand -q 'Print nothing to stderr but fatal errors'
            cand --quiet 'Print nothing to stderr but fatal errors'
            cand -4 'Use IPv4 only'
            cand -6 'Use IPv6 only'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sonda;connect'= {
            cand -w 'Give up connecting after DUR (all addresses together); exit 4'
            cand --timeout 'Give up connecting after DUR (all addresses together); exit 4'
            cand --timeout-method 'How the connect timeout is enforced'
            cand -s 'Bind to this local address (and port) before connecting; a busy port is an error, never replaced by another'
            cand --source 'Bind to this local address (and port) before connecting; a busy port is an error, never replaced by another'
            cand --sndbuf 'Set SO_SNDBUF (turns off the kernel''s send buffer autotuning)'
            cand --rcvbuf 'Set SO_RCVBUF (turns off the kernel''s receive buffer autotuning)'
            cand --keepalive 'Turn on TCP keepalive, probing after DUR of silence and every DUR'
            cand --idle-timeout 'End the session (exit 4) when no byte has moved either way for DUR'
            cand --nodelay 'Set TCP_NODELAY (send small writes at once, no Nagle)'
            cand --send-only 'Only send stdin; what arrives is read and discarded. Ends at stdin''s EOF once the peer has acknowledged every byte'
            cand --recv-only 'Only receive to stdout; stdin is never read and nothing is sent'
            cand --no-shutdown 'Do not half-close the connection at stdin''s EOF'
            cand --exit-on-eof 'End when the peer closes, even while stdin is still open'
            cand -v 'Print diagnostics to stderr (repeat for more)'
            cand --verbose 'Print diagnostics to stderr (repeat for more)'
            cand -q 'Print nothing to stderr but fatal errors'
            cand --quiet 'Print nothing to stderr but fatal errors'
            cand -4 'Use IPv4 only'
            cand -6 'Use IPv6 only'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sonda;udp-send'= {
            cand --size 'Largest datagram cut from stdin, in bytes (1-65527; IPv4 carries at most 65507)'
            cand --message 'Send exactly TEXT instead of reading stdin'
            cand --count 'Datagrams to send: the message N times (default once), or at most N from stdin (default all of it)'
            cand --interval 'Pause DUR between datagrams'
            cand --wait-reply 'After sending, print replies to stdout until DUR passes without one; exit 4 if none came'
            cand -s 'Bind to this local address (and port) first'
            cand --source 'Bind to this local address (and port) first'
            cand --lines 'Send one datagram per line of stdin, without its newline (an empty line is an empty datagram; a line longer than --size is an error)'
            cand --broadcast 'Set SO_BROADCAST, to send to a broadcast address'
            cand -v 'Print diagnostics to stderr (repeat for more)'
            cand --verbose 'Print diagnostics to stderr (repeat for more)'
            cand -q 'Print nothing to stderr but fatal errors'
            cand --quiet 'Print nothing to stderr but fatal errors'
            cand -4 'Use IPv4 only'
            cand -6 'Use IPv6 only'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sonda;udp-recv'= {
            cand --buffer 'Initial receive buffer, in bytes'
            cand --max-size 'Largest the buffer may grow to, in bytes'
            cand --count 'Exit after N datagrams'
            cand --timeout 'Exit 4 when no datagram arrives for DUR'
            cand --no-grow 'Keep the buffer at --buffer: larger datagrams are delivered truncated and reported'
            cand --show 'Print a line per datagram (time, sender, length, truncated, escaped preview) instead of the raw payload'
            cand --json 'Print one JSON object per datagram (payload in base64)'
            cand --echo 'Send every datagram back to its sender'
            cand --no-reuseaddr 'Leave SO_REUSEADDR off'
            cand -v 'Print diagnostics to stderr (repeat for more)'
            cand --verbose 'Print diagnostics to stderr (repeat for more)'
            cand -q 'Print nothing to stderr but fatal errors'
            cand --quiet 'Print nothing to stderr but fatal errors'
            cand -4 'Use IPv4 only'
            cand -6 'Use IPv6 only'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sonda;probe'= {
            cand --udp 'Probe UDP instead of TCP'
            cand --json 'Print one JSON object (schema in DESCRIPTION) instead of text'
            cand --reproduce 'Demonstrate TIME-WAIT and SO_REUSEADDR on loopback'
            cand -v 'Print diagnostics to stderr (repeat for more)'
            cand --verbose 'Print diagnostics to stderr (repeat for more)'
            cand -q 'Print nothing to stderr but fatal errors'
            cand --quiet 'Print nothing to stderr but fatal errors'
            cand -4 'Use IPv4 only'
            cand -6 'Use IPv6 only'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'sonda;generate'= {
            cand --dir 'Directory to write into'
            cand -v 'Print diagnostics to stderr (repeat for more)'
            cand --verbose 'Print diagnostics to stderr (repeat for more)'
            cand -q 'Print nothing to stderr but fatal errors'
            cand --quiet 'Print nothing to stderr but fatal errors'
            cand -4 'Use IPv4 only'
            cand -6 'Use IPv6 only'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
    ]
    $completions[$command]
}
