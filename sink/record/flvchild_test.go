package record_test

import (
	"errors"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink/record"
)

func newFLVForChild(path string, cfg record.Config) (interface {
	WriteFrame(*media.Frame) error
	Close() error
}, error) { return nil, errors.New("no flv yet") }
