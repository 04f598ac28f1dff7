package rtmp

import (
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrClosed is returned by a Client or Server used after Close.
	ErrClosed = errors.New("rtmp: closed")
	// ErrBadName matches a PublishError whose code is
	// NetStream.Publish.BadName (a wrong stream key, or a stream already
	// being published).
	ErrBadName = errors.New("rtmp: stream name rejected")
	// ErrRejected matches every PublishError that carries a status code
	// from the server (as opposed to a dropped connection).
	ErrRejected = errors.New("rtmp: rejected by server")
	// ErrServerClosed is returned by Server.Serve after Server.Close.
	ErrServerClosed = errors.New("rtmp: server closed")
	// ErrNoConfig is returned when audio frames are written before their
	// decoder configuration (AAC AudioSpecificConfig).
	ErrNoConfig = errors.New("rtmp: codec configuration not sent")
	// ErrBadFrame is wrapped by the errors of frames that cannot be sent
	// as given (a malformed H.264 access unit or parameter set): nothing
	// was written, the connection is still good.
	ErrBadFrame = errors.New("rtmp: malformed frame")
)

// PublishError says why a server refused or ended a publication.
type PublishError struct {
	// Stage is the step that failed: "handshake", "connect",
	// "createStream", "publish", or "stream" once publishing had started.
	Stage string
	// Code is the status code the server sent ("NetStream.Publish.BadName",
	// "NetConnection.Connect.Rejected", ...) or "_error" for an _error
	// reply without one. Empty when the server closed the connection
	// without saying why.
	Code string
	// Description is the server's description, if any.
	Description string
	// Err is the underlying error when the connection failed (io.EOF when
	// the server closed it).
	Err error
}

// Error implements error.
func (e *PublishError) Error() string {
	switch {
	case e.Code != "" && e.Description != "":
		return fmt.Sprintf("rtmp: %s: %s (%s)", e.Stage, e.Code, e.Description)
	case e.Code != "":
		return fmt.Sprintf("rtmp: %s: %s", e.Stage, e.Code)
	case e.Err != nil:
		return fmt.Sprintf("rtmp: %s: connection lost: %v", e.Stage, e.Err)
	default:
		return fmt.Sprintf("rtmp: %s: connection closed by server", e.Stage)
	}
}

// Unwrap returns Err.
func (e *PublishError) Unwrap() error { return e.Err }

// Is matches ErrBadName and ErrRejected.
func (e *PublishError) Is(target error) bool {
	switch target {
	case ErrBadName:
		return e.Code == codePublishBadName
	case ErrRejected:
		return e.Code != ""
	}
	return false
}
