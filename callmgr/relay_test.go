package callmgr

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every subscriber gets every event, in order; a cancelled one no more;
// subscribing while events flow is safe.
func TestRelay(t *testing.T) {
	var r Relay
	r.OnEvent(Event{CallID: "before"}) // nobody yet
	var a, b []string
	cancelA := r.Subscribe(func(ev Event) { a = append(a, ev.CallID) })
	r.Subscribe(func(ev Event) { b = append(b, ev.CallID) })
	r.OnEvent(Event{CallID: "1"})
	r.OnEvent(Event{CallID: "2"})
	cancelA()
	cancelA()
	r.OnEvent(Event{CallID: "3"})
	require.Equal(t, []string{"1", "2"}, a)
	require.Equal(t, []string{"1", "2", "3"}, b)

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 100; i++ {
			r.OnEvent(Event{})
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 100; i++ {
			r.Subscribe(func(Event) {})()
		}
	}()
	wg.Wait()
}
