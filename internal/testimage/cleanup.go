package testimage

import (
	"context"

	dcontainer "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// Clean removes from the Docker engine what a test or benchmark left there
// for one app: every container labelled containerLabel=value (running or
// not, with its anonymous volumes) and every image labelled
// imageLabel=value. It is best effort: what cannot be listed or removed is
// left, as a cleanup at the end of a run must not fail the run.
func Clean(ctx context.Context, cli *client.Client, containerLabel, imageLabel, value string) {
	list, _ := cli.ContainerList(ctx, dcontainer.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", containerLabel+"="+value))})
	for _, c := range list {
		cli.ContainerRemove(ctx, c.ID, dcontainer.RemoveOptions{Force: true, RemoveVolumes: true})
	}
	imgs, _ := cli.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", imageLabel+"="+value))})
	for _, i := range imgs {
		cli.ImageRemove(ctx, i.ID, image.RemoveOptions{Force: true, PruneChildren: true})
	}
}
