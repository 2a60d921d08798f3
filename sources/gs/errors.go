package gs

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/dewy-agent/dewy-agent/sources"
)

// fail turns a failed request into the source's error: a missing bucket or
// object wraps sources.ErrNotFound, a refused request wraps ErrAccessDenied,
// and a cancelled ctx is returned as such. The library's messages hold no
// credentials.
func (g *GCS) fail(ctx context.Context, what string, err error) error {
	prefix := fmt.Sprintf("gs %s: %s", g.Where, what)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", prefix, ctxErr)
	}
	switch {
	case errors.Is(err, storage.ErrBucketNotExist):
		return fmt.Errorf("%s: bucket %q does not exist: %w", prefix, g.cfg.Bucket, sources.ErrNotFound)
	case errors.Is(err, storage.ErrObjectNotExist):
		return fmt.Errorf("%s: object is gone from bucket %q: %w", prefix, g.cfg.Bucket, sources.ErrNotFound)
	}
	var api *googleapi.Error
	if errors.As(err, &api) && (api.Code == http.StatusForbidden || api.Code == http.StatusUnauthorized) {
		return fmt.Errorf("%s: %w to bucket %q (HTTP %d): check the credentials (%s) and that their account may read and write objects in the bucket: %w",
			prefix, ErrAccessDenied, g.cfg.Bucket, api.Code, credentialsHint, err)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}
