package container

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/atomicfile"
)

// imagesFile is the record, in the app's directory, of the images this runner
// pulled for the app, oldest first: what pruning may remove, and the image of
// a version when Resume is not told it.
const imagesFile = "container-images.json"

// imageRecord is one deployed image.
type imageRecord struct {
	Version string    `json:"version"`
	Image   string    `json:"image"`
	Pulled  time.Time `json:"pulled"`
}

func (c *Container) loadImages() ([]imageRecord, error) {
	if c.appDir == "" {
		return nil, nil
	}
	var recs []imageRecord
	err := atomicfile.ReadJSON(filepath.Join(c.appDir, imagesFile), &recs)
	return recs, err
}

// saveImages writes the record atomically and durably.
func (c *Container) saveImages(recs []imageRecord) error {
	if c.appDir == "" {
		return nil
	}
	if err := os.MkdirAll(c.appDir, 0o755); err != nil {
		return err
	}
	return atomicfile.WriteJSON(filepath.Join(c.appDir, imagesFile), recs, 0o600)
}

// imageFor returns the recorded image of the version, or "".
func (c *Container) imageFor(version string) string {
	recs, err := c.loadImages()
	if err != nil {
		c.logger.Warn("read the image record", "err", err)
		return ""
	}
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Version == version {
			return recs[i].Image
		}
	}
	return ""
}

// recorded reports whether the image is in the record.
func (c *Container) recorded(img string) bool {
	recs, _ := c.loadImages()
	for _, r := range recs {
		if r.Image == img {
			return true
		}
	}
	return false
}

// recordImage adds the deployed image to the record and removes the images beyond
// the newest KeepImages. An image the engine will not remove yet (a container
// still uses it) stays in the record and is tried again at the next deploy.
func (c *Container) recordImage(ctx context.Context, eng Engine, version, img string) {
	recs, err := c.loadImages()
	if err != nil {
		c.logger.Warn("read the image record; starting a new one", "err", err)
		recs = nil
	}
	kept := recs[:0:0]
	for _, r := range recs {
		if r.Image != img {
			kept = append(kept, r)
		}
	}
	kept = append(kept, imageRecord{Version: version, Image: img, Pulled: time.Now().UTC()})
	var next []imageRecord
	if excess := len(kept) - c.cfg.KeepImages; excess > 0 {
		for _, r := range kept[:excess] {
			if err := removeImage(ctx, eng, r.Image); err != nil {
				c.logger.Warn("remove old image; will try again", "image", r.Image, "err", err)
				next = append(next, r)
				continue
			}
			c.logger.Info("removed old image", "image", r.Image, "version", r.Version)
		}
		kept = kept[excess:]
	}
	if err := c.saveImages(append(next, kept...)); err != nil {
		c.logger.Warn("write the image record", "err", err)
	}
}

// removeImage removes the runner's reference to the image; the engine deletes the
// image when no other reference remains. Gone already is not an error.
func removeImage(ctx context.Context, eng Engine, ref string) error {
	if err := eng.RemoveImage(ctx, ref); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}
