package errmark

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestWith(t *testing.T) {
	class := errors.New("class")
	other := errors.New("other")
	inner := &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist}
	err := With(fmt.Errorf("read: %w", inner), class)
	if got, want := err.Error(), "read: open /x: file does not exist"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	if !errors.Is(err, class) {
		t.Error("the mark is not found")
	}
	if errors.Is(err, other) {
		t.Error("another sentinel matches")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("the wrapped chain is lost")
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe != inner {
		t.Errorf("errors.As found %v, want the wrapped *fs.PathError", pe)
	}
	if With(nil, class) != nil {
		t.Error("With(nil) is not nil")
	}
}
