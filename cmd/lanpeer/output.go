package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/lanpeer/lanpeer/node"
)

// What listen and dial share: the streams written from several goroutines,
// the one-line form of a direct message, logs, and standard input read
// line by line.

// lockedWriter serializes writes to w: notes, logs and messages come from
// several goroutines, and each Write is one whole line.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// notef writes one "lanpeer: " line to w (standard error).
func notef(w io.Writer, format string, a ...any) {
	fmt.Fprintf(w, "lanpeer: "+format+"\n", a...)
}

// printer writes direct messages to standard output, one a line.
type printer struct {
	w    io.Writer // a *lockedWriter
	json bool
}

// messageJSON is a message in --json output.
type messageJSON struct {
	From    string `json:"from"`
	Text    string `json:"text"`
	Time    string `json:"time"`
	Session string `json:"session"`
}

// message writes r as "PEERID TEXT", the text escaped to stay on one line,
// or as a JSON object.
func (p *printer) message(r node.Received) {
	var line []byte
	if p.json {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(messageJSON{From: r.From.String(), Text: r.Text,
			Time: r.Time.UTC().Format(time.RFC3339Nano), Session: hex.EncodeToString(r.Session[:])}); err != nil {
			return // a string and fixed fields always encode
		}
		line = []byte(b.String())
	} else {
		line = []byte(r.From.String() + " " + escapeLine(r.Text) + "\n")
	}
	_, _ = p.w.Write(line)
}

// lineEscaper writes a direct message's text on one line: backslash, tab
// and line feed as \\, \t and \n. The text holds no other control
// character (session.CheckDirectText), so the line cannot forge output.
var lineEscaper = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`)

func escapeLine(s string) string { return lineEscaper.Replace(s) }

// logLevels are the --log-level values.
var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

// newLogger logs to w (standard error) at level and above, one
// "lanpeer: " line a record, in slog's text form without the time.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(prefixWriter{w}, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// prefixWriter puts "lanpeer: " before each line slog writes (one Write
// per record).
type prefixWriter struct{ w io.Writer }

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := p.w.Write(append([]byte("lanpeer: "), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// inputLine is one line of standard input, without its line end (LF or
// CRLF), or errLineTooLong.
type inputLine struct {
	text string
	err  error
}

var errLineTooLong = errors.New("line too long")

// readLines reads r line by line and sends each line on the returned
// channel, which is closed at the end of input (or a read error, sent
// first). A line longer than max bytes is sent as errLineTooLong and the
// rest of it skipped. It stops once done is closed; a Read that blocks
// keeps its goroutine until the Read returns (standard input cannot be
// interrupted), which ends with the process.
func readLines(r io.Reader, max int, done <-chan struct{}) <-chan inputLine {
	ch := make(chan inputLine)
	go func() {
		defer close(ch)
		br := bufio.NewReaderSize(r, max+2) // the line, CR and LF
		send := func(l inputLine) bool {
			select {
			case ch <- l:
				return true
			case <-done:
				return false
			}
		}
		skipping := false
		for {
			b, err := br.ReadSlice('\n')
			if errors.Is(err, bufio.ErrBufferFull) {
				if !skipping && !send(inputLine{err: errLineTooLong}) {
					return
				}
				skipping = true
				continue
			}
			if skipping {
				skipping = false // the tail of a long line
			} else if len(b) > 0 {
				l := inputLine{text: strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")}
				if len(l.text) > max {
					l = inputLine{err: errLineTooLong}
				}
				if !send(l) {
					return
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					send(inputLine{err: err})
				}
				return
			}
		}
	}()
	return ch
}
