package rtmp

import (
	"crypto/md5"
	"encoding/base64"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bluenviron/gortmplib/pkg/handshake"
)

// adobeServer plays a Wowza-style server with Adobe authentication for
// user "bob" with password "s3cr3t-PW". It records the app of every
// connect it receives.
func adobeServer(t *testing.T, apps *[]string, mu *sync.Mutex) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				if _, _, err := handshake.DoServer(nc, false); err != nil {
					return
				}
				c := newConn(nc, nc, testTimeout)
				cmd, err := nextCommand(c)
				if err != nil || cmd.name != "connect" {
					return
				}
				ps, _ := objectOf(cmd.obj)
				app, _ := ps.GetString("app")
				tcURL, _ := ps.GetString("tcUrl")
				mu.Lock()
				*apps = append(*apps, app)
				mu.Unlock()
				if !strings.HasSuffix(tcURL, strings.TrimPrefix(app, "live")) {
					return
				}
				reject := func(desc string) {
					_ = c.writeCommand(csidCommand, 0, typeCommandAMF0, "_error", cmd.txn, nil,
						statusObject("error", codeConnectRejected, desc))
					_, _ = nextCommand(c) // until the client hangs up
				}
				_, query, _ := strings.Cut(app, "?")
				q, _ := url.ParseQuery(query)
				switch {
				case q.Get("authmod") != "adobe":
					reject("[ AccessManager.Reject ] : [ code=403 need auth; authmod=adobe ] : ")
				case q.Get("response") == "":
					reject("[ AccessManager.Reject ] : [ authmod=adobe ] : ?reason=needauth&user=bob&salt=SALT1&challenge=CH1&opaque=OP1")
				default:
					// The expected answer, computed here step by step.
					sum1 := md5.Sum([]byte("bob" + "SALT1" + "s3cr3t-PW"))
					sum2 := md5.Sum([]byte(base64.StdEncoding.EncodeToString(sum1[:]) + "OP1" + q.Get("challenge")))
					want := base64.StdEncoding.EncodeToString(sum2[:])
					// The response is sent raw (as FFmpeg does): a '+'
					// in it would read as a space.
					got := strings.ReplaceAll(q.Get("response"), " ", "+")
					if q.Get("user") != "bob" || q.Get("opaque") != "OP1" || got != want {
						reject("[ AccessManager.Reject ] : [ authmod=adobe ] : ?reason=authfailed&opaque=OP1")
						return
					}
					if result(c, cmd.txn, nil, statusObject("status", codeConnectSuccess, "ok")) != nil {
						return
					}
					_ = serveUntilPublish(c, func(command) error { return onStatus(c, "status", codePublishStart) })
					_, _ = nextCommand(c)
				}
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return l.Addr().String()
}

func TestAdobeAuth(t *testing.T) {
	var apps []string
	var mu sync.Mutex
	addr := adobeServer(t, &apps, &mu)
	c, err := Dial(testCtx(t), "rtmp://bob:s3cr3t-PW@"+addr+"/live/key", ClientConfig{})
	require.NoError(t, err)
	require.NoError(t, c.Close())
	mu.Lock()
	require.Len(t, apps, 3)
	require.Equal(t, "live", apps[0])
	require.Equal(t, "live?authmod=adobe&user=bob", apps[1])
	require.True(t, strings.HasPrefix(apps[2], "live?authmod=adobe&user=bob&challenge="), apps[2])
	for _, a := range apps {
		require.NotContains(t, a, "s3cr3t")
	}
	apps = nil
	mu.Unlock()

	_, err = Dial(testCtx(t), "rtmp://bob:wrong-PW@"+addr+"/live/key", ClientConfig{})
	require.ErrorIs(t, err, ErrAuth)
	require.ErrorIs(t, err, ErrRejected)
	require.NotContains(t, err.Error(), "wrong-PW")
	require.NotContains(t, err.Error(), "key")

	// Without credentials the refusal comes back as it is.
	_, err = Dial(testCtx(t), "rtmp://"+addr+"/live/key", ClientConfig{})
	var pe *PublishError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, codeConnectRejected, pe.Code)
	require.NotErrorIs(t, err, ErrAuth)
}

func TestAdobeResponse(t *testing.T) {
	// Known value, computed with coreutils:
	//   k=$(printf 'uSp' | md5sum | cut -d' ' -f1 | xxd -r -p | base64)   # X0THtxLrpaPYRrDGj1p6Hg==
	//   printf '%sCc2' "$k" | md5sum | cut -d' ' -f1 | xxd -r -p | base64
	require.Equal(t, "I+2ciJEKF7pX9xzIGMXJtw==", adobeResponse("u", "p", "S", "", "C", "c2"))
	// The opaque value, when given, replaces the challenge.
	require.Equal(t, "I+2ciJEKF7pX9xzIGMXJtw==", adobeResponse("u", "p", "S", "C", "ignored", "c2"))
}
