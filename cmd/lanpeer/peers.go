package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lanpeer/lanpeer/discovery"
)

// defaultPeersTimeout is how long `lanpeer peers` waits for answers:
// peers answer within discovery.MaxAnswerDelay, so this leaves room for a
// second query.
const defaultPeersTimeout = 2 * time.Second

func peersCommand() *cli.Command {
	return command(&cli.Command{
		Name:      "peers",
		Usage:     "list the peers that announce themselves on the LAN ('lanpeer listen --discovery')",
		UsageText: "lanpeer peers [--iface NAME]... [--timeout D] [--json] [--discovery-group GROUP] [--discovery-port PORT]",
		Description: "Asks the LAN's discovery group who is there, waits --timeout for the answers, and prints one\n" +
			"line per peer: peer ID, display name (escaped as messages are), TCP addresses, HTTP shim URLs\n" +
			"('lanpeer listen --http', http://HOST:PORT, or https://HOST:PORT with --https; each list\n" +
			"comma-separated, \"-\" for none) and the age of its last announcement, separated by tabs.\n" +
			"--json prints one JSON\n" +
			"object a line instead. It prints nothing and exits 0 when no peer answers. It does not announce\n" +
			"this peer. What it lists are hints: 'lanpeer dial' still checks each peer's key.",
		Flags: append([]cli.Flag{
			&cli.DurationFlag{Name: "timeout", Value: defaultPeersTimeout, Usage: "wait `D`uration for answers"},
			jsonFlag("print each peer as a JSON object"),
			logLevelFlag(),
		}, discoveryFlags()...),
		Action: peersAction,
	})
}

// peerJSON is one line of `lanpeer peers --json`.
type peerJSON struct {
	PeerID    string   `json:"peer_id"`
	Name      string   `json:"name"`
	TCP       []string `json:"tcp"`
	HTTP      []string `json:"http"` // base URLs: http://host:port or https://host:port
	Interface string   `json:"interface"`
	Source    string   `json:"source"`
	Instance  string   `json:"instance"`
	AgeMillis int64    `json:"age_ms"`
}

func peersAction(c *cli.Context) error {
	if _, err := positionals(c, 0); err != nil {
		return err
	}
	level, ok := logLevels[c.String("log-level")]
	if !ok {
		return usagef("--log-level: unknown level %q (want debug, info, warn or error)", c.String("log-level"))
	}
	timeout := c.Duration("timeout")
	if timeout <= 0 {
		return usagef("--timeout %v: must be positive", timeout)
	}
	cfg, err := discoveryConfig(c, newLogger(&lockedWriter{w: c.App.ErrWriter}, level))
	if err != nil {
		return err
	}
	peers, err := queryPeers(c.Context, cfg, timeout)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, p := range peers {
		tcp, http := addrStrings(p.TCPAddrs), p.HTTPURLs()
		age := p.Age(now)
		if c.Bool("json") {
			b, err := json.Marshal(peerJSON{PeerID: p.ID.String(), Name: p.Name, TCP: tcp, HTTP: http,
				Interface: p.Interface, Source: p.Source.String(), Instance: p.Instance, AgeMillis: age.Milliseconds()})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s\n", b)
			continue
		}
		fmt.Fprintf(c.App.Writer, "%s\t%s\t%s\t%s\t%s\n", p.ID, escapeLine(p.Name), addrList(tcp), addrList(http), age.Round(time.Second))
	}
	return nil
}

// queryPeers runs a passive discovery Service for one query.
func queryPeers(ctx context.Context, cfg discovery.Config, timeout time.Duration) ([]discovery.Peer, error) {
	svc, err := discovery.New(cfg)
	if err != nil {
		return nil, usageIfBadConfig(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if err := runDiscovery(ctx, &wg, svc); err != nil {
		return nil, fmt.Errorf("%w: name interfaces that exist and can multicast with --iface", err)
	}
	return svc.Query(ctx, timeout)
}

// addrList is a column of addresses: comma-separated, "-" for none.
func addrList(as []string) string {
	if len(as) == 0 {
		return "-"
	}
	return strings.Join(as, ",")
}

func addrStrings[A fmt.Stringer](as []A) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}
