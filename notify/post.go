package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// userAgent is sent with every HTTP request.
const userAgent = "dewy-agent"

// maxAnswer bounds how much of an HTTP answer a notifier reads.
const maxAnswer = 64 << 10

// jsonPost is one delivery as the Slack and webhook notifiers make it: a
// JSON POST whose answer decides whether it was delivered and whether trying
// again could help. Both notifiers send through it, so they cannot drift
// apart on what they retry or on keeping secrets out of errors.
type jsonPost struct {
	// what names the request in errors ("slack://deploys: chat.postMessage").
	what string
	// endpoint is the URL; it never appears in errors (it may hold a token).
	endpoint string
	payload  any
	// header sets the request's own headers (content type, credentials).
	header func(*http.Request)
	// answer reads the body of a 2xx answer; nil when any 2xx means
	// delivered.
	answer func(body []byte) error
	// secrets are scrubbed from errors.
	secrets []string
}

// send delivers p. An answer other than 2xx is the error "<what>: HTTP
// <code>", permanent for a 4xx other than 408 and 429.
func (p jsonPost) send(ctx context.Context, t Transport) error {
	body, err := json.Marshal(p.payload)
	if err != nil {
		return fmt.Errorf("%s: encode message: %w", p.what, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(body))
	if err != nil {
		return permanent(scrub(fmt.Errorf("%s: build request: %w", p.what, unwrapURLError(err)), p.secrets...))
	}
	req.Header.Set("User-Agent", userAgent)
	p.header(req)
	resp, err := t.HTTPClient.Do(req)
	if err != nil {
		return scrub(fmt.Errorf("%s: %w", p.what, unwrapURLError(err)), p.secrets...)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer)) // let the connection be reused
		err := fmt.Errorf("%s: HTTP %d", p.what, resp.StatusCode)
		if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout {
			return permanent(err)
		}
		return err
	}
	if p.answer == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s: read answer: %w", p.what, err)
	}
	return scrub(p.answer(b), p.secrets...)
}

// unwrapURLError drops the URL that net/http puts in its errors (it may hold
// a token); the caller names the notifier instead.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
