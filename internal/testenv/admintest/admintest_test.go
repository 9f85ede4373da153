package admintest

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStartServes(t *testing.T) {
	t.Parallel()
	_, url := Start(t)
	resp, err := http.Get(url + "/metrics") //nolint:noctx // a test's one request
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
