package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/dewy-agent/dewy-agent/sources"
)

// ErrAccessDenied is wrapped by errors for requests S3 refused for lack of
// permission, and when the credential chain found no credentials.
var ErrAccessDenied = errors.New("access denied")

// credentialsHint names the places the AWS default chain looks.
const credentialsHint = "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, web identity, SSO, or the ECS/EC2 instance role"

// fail turns a failed request into the source's error: a missing bucket or
// object wraps sources.ErrNotFound, a refused or unsigned request wraps
// ErrAccessDenied, and a cancelled ctx is returned as such. The SDK's messages
// hold no credentials; they are kept for their request IDs.
func (s *S3) fail(ctx context.Context, what string, err error) error {
	prefix := fmt.Sprintf("s3 %s: %s", s.Where, what)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", prefix, ctxErr)
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchBucket":
			return fmt.Errorf("%s: bucket %q does not exist (region %s): %w", prefix, s.cfg.Bucket, s.cfg.Region, sources.ErrNotFound)
		case "NoSuchKey":
			return fmt.Errorf("%s: object is gone from bucket %q: %w", prefix, s.cfg.Bucket, sources.ErrNotFound)
		case "AccessDenied", "AllAccessDisabled", "AccountProblem", "InvalidAccessKeyId",
			"SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired":
			return fmt.Errorf("%s: %w to bucket %q (%s): check the credentials the AWS default chain found (%s) and the bucket's policy: %w",
				prefix, ErrAccessDenied, s.cfg.Bucket, api.ErrorCode(), credentialsHint, err)
		case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
			return fmt.Errorf("%s: bucket %q is not in region %s (check the region in the URL): %w", prefix, s.cfg.Bucket, s.cfg.Region, err)
		}
	}
	var resp *awshttp.ResponseError
	if !errors.As(err, &resp) && strings.Contains(err.Error(), "get identity") {
		// The request never left: the chain found no usable credentials.
		return fmt.Errorf("%s: %w: no usable AWS credentials for bucket %q (looked in %s): %w",
			prefix, ErrAccessDenied, s.cfg.Bucket, credentialsHint, err)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}
