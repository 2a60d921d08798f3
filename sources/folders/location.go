package folders

import (
	"errors"
	"fmt"
	"strings"
)

// Location is where a folder registry's versions live in a bucket: the
// bucket and the path prefix, as the registry URL names them.
type Location struct {
	Bucket string
	Prefix string
}

// Check reports the first thing wrong with l: an empty bucket (form is the
// URL form shown in the message), a bucket name with a character no bucket
// name has, or a prefix with an empty, "." or ".." element. l.Prefix is taken
// as trimmed of slashes.
func (l Location) Check(form string) error {
	switch {
	case l.Bucket == "":
		return errors.New("bucket is empty: want " + form)
	case strings.ContainsFunc(l.Bucket, BadNameRune):
		return fmt.Errorf("bucket %q is not a bucket name", l.Bucket)
	}
	if l.Prefix != "" {
		for seg := range strings.SplitSeq(l.Prefix, "/") {
			if seg == "" || seg == "." || seg == ".." {
				return fmt.Errorf("path prefix %q has an empty, \".\" or \"..\" element", l.Prefix)
			}
		}
	}
	return nil
}

// KeyPrefix is the prefix every object key of the registry starts with: the
// path prefix and a slash, or "" for a registry at the bucket's root.
func (l Location) KeyPrefix() string {
	if l.Prefix == "" {
		return ""
	}
	return l.Prefix + "/"
}

// BadNameRune reports characters no bucket or region name has.
func BadNameRune(r rune) bool {
	return r == '/' || r == '?' || r == '#' || r <= ' ' || r == 0x7f
}

// Holds reports whether key names an object inside the registry whose key
// prefix (KeyPrefix) is keyPrefix: below it, and not a folder.
func Holds(keyPrefix, key string) bool {
	rest, ok := strings.CutPrefix(key, keyPrefix)
	return ok && rest != "" && !strings.HasSuffix(rest, "/")
}
