package srtest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/sr"
)

// TestNew: the client talks to the registry: a schema it registers is
// there by its id.
func TestNew(t *testing.T) {
	t.Parallel()
	reg, cl := New(t)
	require.NotEmpty(t, reg.URL())
	ss, err := cl.CreateSchema(context.Background(), "s-value", sr.Schema{Schema: `"string"`})
	require.NoError(t, err)
	got, err := cl.SchemaByID(context.Background(), ss.ID)
	require.NoError(t, err)
	require.JSONEq(t, `"string"`, got.Schema)
}
