// Package errmark gives an error a class: a sentinel that errors.Is finds in
// it, while its message and its chain (errors.As, errors.Unwrap) stay those
// of the error itself.
package errmark

// With returns err marked with class: errors.Is(With(err, class), class) holds
// and the message is err's. A nil err stays nil.
func With(err, class error) error {
	if err == nil {
		return nil
	}
	return &marked{err: err, class: class}
}

type marked struct {
	err   error
	class error
}

func (e *marked) Error() string        { return e.err.Error() }
func (e *marked) Unwrap() error        { return e.err }
func (e *marked) Is(target error) bool { return target == e.class }
