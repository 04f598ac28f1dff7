package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// Command sends command with params to baresip's ctrl_tcp module (see
// BaresipConfig.Control), as typed in its menu without the slash ("dial"
// with a SIP URI, "hangup", "reginfo", ...), and returns the response's
// data. It fails when baresip refuses the command (the data says why) or
// does not answer before ctx ends.
func (b *Baresip) Command(ctx context.Context, command, params string) (string, error) {
	if b.ControlPort == 0 {
		return "", errors.New("testenv: baresip started without BaresipConfig.Control")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(b.ControlPort))
	if err != nil {
		return "", fmt.Errorf("baresip ctrl_tcp: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	token := strconv.FormatInt(time.Now().UnixNano(), 36)
	msg, err := json.Marshal(map[string]string{"command": command, "params": params, "token": token})
	if err != nil {
		return "", err
	}
	if _, err := fmt.Fprintf(conn, "%d:%s,", len(msg), msg); err != nil {
		return "", fmt.Errorf("baresip ctrl_tcp: %w", err)
	}
	r := bufio.NewReader(conn)
	for {
		body, err := readNetstring(r)
		if err != nil {
			return "", fmt.Errorf("baresip ctrl_tcp: %w", err)
		}
		var res struct {
			Response bool   `json:"response"`
			OK       bool   `json:"ok"`
			Data     string `json:"data"`
			Token    string `json:"token"`
		}
		if json.Unmarshal(body, &res) != nil || !res.Response || res.Token != token {
			continue // an event, or another client's response
		}
		if !res.OK {
			return res.Data, fmt.Errorf("baresip refused %q: %s", command, res.Data)
		}
		return res.Data, nil
	}
}

// Dial has baresip call uri (through its registrar) and returns once
// baresip took the command; the call's progress shows in Output.
func (b *Baresip) Dial(ctx context.Context, uri string) error {
	_, err := b.Command(ctx, "dial", uri)
	return err
}

// maxNetstring bounds a ctrl_tcp message.
const maxNetstring = 1 << 20

// readNetstring reads one netstring ("len:data,") from r.
func readNetstring(r *bufio.Reader) ([]byte, error) {
	head, err := r.ReadString(':')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(head[:len(head)-1])
	if err != nil || n < 0 || n > maxNetstring {
		return nil, fmt.Errorf("bad netstring length %q", head)
	}
	buf := make([]byte, n+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	if buf[n] != ',' {
		return nil, errors.New("netstring without its comma")
	}
	return buf[:n], nil
}
