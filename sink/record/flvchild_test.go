package record_test

import (
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink/record"
)

func newFLVForChild(path string, cfg record.Config) (interface {
	WriteFrame(*media.Frame) error
	Close() error
}, error) {
	return record.NewFLV(path, cfg)
}
