package events

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/twmb/franz-go/pkg/sr"
)

// ErrSchemaNotFound is what a SchemaRegistry returns for an id it does not
// have: the record is then dead-lettered rather than retried.
var ErrSchemaNotFound = errors.New("schema id not found")

// registry adapts franz-go's Schema Registry client.
type registry struct{ cl *sr.Client }

// NewSchemaRegistry returns a Confluent-compatible Schema Registry client
// for Codecs.WithRegistry; user and password may be empty.
func NewSchemaRegistry(urls []string, user, password string) (SchemaRegistry, error) {
	opts := []sr.ClientOpt{sr.URLs(urls...)}
	if user != "" {
		opts = append(opts, sr.BasicAuth(user, password))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("schema registry client: %w", err)
	}
	return registry{cl}, nil
}

func (r registry) SchemaByID(ctx context.Context, id int) (string, error) {
	s, err := r.cl.SchemaByID(ctx, id)
	var re *sr.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
		return "", fmt.Errorf("%w: %d", ErrSchemaNotFound, id)
	}
	return s.Schema, err
}
