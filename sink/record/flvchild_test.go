package record_test

import (
	"context"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink/record"
)

func newFLVForChild(path string, cfg record.Config) (interface {
	WriteFrame(*media.Frame) error
	Close(context.Context) error
}, error) {
	return record.NewFLV(path, cfg)
}
