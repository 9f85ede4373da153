package failpoint

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHitKills runs this test binary again with a point armed at its 3rd
// hit: the child dies by SIGKILL exactly there.
func TestHitKills(t *testing.T) {
	t.Parallel()
	if os.Getenv("FAILPOINT_CHILD") == "1" {
		for i := 1; i <= 5; i++ {
			_, _ = os.Stdout.WriteString("hit " + string(rune('0'+i)) + "\n")
			Hit("test.point")
			Hit("test.unarmed")
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHitKills$") //nolint:gosec,noctx // this test binary
	cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=1", Env+"=test.point=3,bad,other=x")
	out, err := cmd.Output()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "the child must die")
	require.Equal(t, "signal: killed", ee.Error())
	require.Equal(t, "hit 1\nhit 2\nhit 3\n", string(out))
}
