package rtmp

import (
	"context"
	"io"
	"sync"
	"sync/atomic"

	"github.com/sipstream/sipstream/rtmp/flv"
)

// stream is one published (or awaited) stream, keyed by app/name. Its
// fields are guarded by Server.mu.
type stream struct {
	key        string
	publishing bool
	info       StreamInfo
	meta       *flv.Tag
	videoSeq   *flv.Tag
	audioSeq   *flv.Tag
	hasVideo   bool
	subs       map[*Subscription]struct{}
}

// Subscription receives the tags of one publication of a stream on a
// bounded queue. It is what the Server's players use, and what tests and
// embedders use to observe a published stream.
//
// A subscription made before the stream is published waits for the
// publisher. One made while it is live first gets the stream's metadata and
// sequence headers, then live tags from the next keyframe on. When the
// queue is full, tags are dropped and counted, and video resumes at the
// next keyframe: a slow reader never slows the publisher. The
// subscription ends (ReadTag returns io.EOF once the queue is drained)
// when the publisher stops.
type Subscription struct {
	s       *Server
	st      *stream
	ch      chan flv.Tag
	ended   bool // ch closed; under s.mu
	waitKey bool // skip video up to the next keyframe; under s.mu
	lagging bool // waitKey is due to an overflow (skips count as drops); under s.mu
	closed  atomic.Bool
	dropped atomic.Uint64
	once    sync.Once
}

// Subscribe returns a subscription to the stream that publishes as name in
// app (both without query string, e.g. "live" and "key"). queue is the
// number of tags the subscription buffers; zero means 1024. Close it when
// done.
func (s *Server) Subscribe(app, name string, queue int) *Subscription {
	if queue <= 0 {
		queue = 1024
	}
	sub := &Subscription{s: s, ch: make(chan flv.Tag, queue)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		sub.ended = true
		close(sub.ch)
		return sub
	}
	st := s.streamLocked(app + "/" + name)
	sub.st = st
	st.subs[sub] = struct{}{}
	if st.publishing {
		for _, t := range []*flv.Tag{st.meta, st.videoSeq, st.audioSeq} {
			if t != nil {
				select {
				case sub.ch <- *t:
				default:
					sub.dropped.Add(1)
				}
			}
		}
		sub.waitKey = st.hasVideo
	}
	return sub
}

func (s *Server) streamLocked(key string) *stream {
	st := s.streams[key]
	if st == nil {
		st = &stream{key: key, subs: map[*Subscription]struct{}{}}
		s.streams[key] = st
	}
	return st
}

// ReadTag returns the next tag. The tag's Data is shared with other
// subscribers: do not modify it. It returns io.EOF when the publication
// ended (or the Server closed), ErrClosed after Close, or ctx's error.
func (sub *Subscription) ReadTag(ctx context.Context) (flv.Tag, error) {
	select {
	case t, ok := <-sub.ch:
		if !ok {
			if sub.closed.Load() {
				return flv.Tag{}, ErrClosed
			}
			return flv.Tag{}, io.EOF
		}
		return t, nil
	case <-ctx.Done():
		return flv.Tag{}, ctx.Err()
	}
}

// Dropped returns how many tags were dropped because the queue was full,
// including the pictures skipped after an overflow up to the next
// keyframe (not those skipped by a late subscriber waiting for its first
// keyframe).
func (sub *Subscription) Dropped() uint64 { return sub.dropped.Load() }

// Close ends the subscription. It is idempotent.
func (sub *Subscription) Close() {
	sub.once.Do(func() {
		sub.closed.Store(true)
		sub.s.mu.Lock()
		defer sub.s.mu.Unlock()
		sub.endLocked()
	})
}

func (sub *Subscription) endLocked() {
	if sub.ended {
		return
	}
	sub.ended = true
	close(sub.ch)
	if st := sub.st; st != nil {
		delete(st.subs, sub)
		if !st.publishing && len(st.subs) == 0 && sub.s.streams[st.key] == st {
			delete(sub.s.streams, st.key)
		}
	}
}

// offerLocked queues t without blocking.
func (sub *Subscription) offerLocked(t flv.Tag) {
	if sub.ended {
		return
	}
	isVideo := t.Type == flv.TagVideo
	key := isVideo && len(t.Data) > 0 && t.Data[0]>>4&7 == flv.FrameKey
	if isVideo && sub.waitKey {
		if !key {
			if sub.lagging {
				sub.dropped.Add(1)
			}
			return
		}
		sub.waitKey = false
	}
	select {
	case sub.ch <- t:
	default:
		sub.dropped.Add(1)
		if isVideo {
			sub.waitKey, sub.lagging = true, true
		}
	}
}

// startPublish claims the stream for a publisher.
func (s *Server) startPublish(info StreamInfo) (*stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrServerClosed
	}
	st := s.streamLocked(info.Key())
	if st.publishing {
		return nil, errAlreadyPublishing
	}
	st.publishing = true
	st.info = info
	return st, nil
}

// publish hands a tag (which the caller no longer modifies) to every
// subscriber and caches sequence headers and metadata.
func (s *Server) publish(st *stream, t flv.Tag) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch t.Type {
	case flv.TagScript:
		st.meta = newTag(t)
	case flv.TagVideo:
		st.hasVideo = true
		if v, err := flv.ParseVideo(t.Data); err == nil && v.SequenceHeader() {
			st.videoSeq = newTag(t)
		}
	case flv.TagAudio:
		if a, err := flv.ParseAudio(t.Data); err == nil && a.SequenceHeader() {
			st.audioSeq = newTag(t)
		}
	}
	for sub := range st.subs {
		sub.offerLocked(t)
	}
}

// endPublish ends a publication and every subscription to it.
func (s *Server) endPublish(st *stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.publishing = false
	for sub := range st.subs {
		sub.endLocked()
	}
	if s.streams[st.key] == st {
		delete(s.streams, st.key)
	}
}

// Streams returns the streams being published now.
func (s *Server) Streams() []StreamInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []StreamInfo
	for _, st := range s.streams {
		if st.publishing {
			out = append(out, st.info)
		}
	}
	return out
}

// newTag returns a pointer to a copy of t (only sequence headers and
// metadata are kept, so the common path does not allocate).
func newTag(t flv.Tag) *flv.Tag { return &t }
