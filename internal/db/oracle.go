package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/godror/godror"

	"github.com/alertsync/alertsync/internal/config"
)

// ErrOracleClient is returned (wrapped, with how to install it) when a
// connection to Oracle cannot be made because the Oracle client library that
// godror loads at run time (Oracle Instant Client: libclntsh) is missing or
// unusable. godror is built without it; only connecting needs it.
var ErrOracleClient = errors.New("the Oracle client library cannot be loaded")

// OracleClientLibrary is the file name of the Oracle client library godror
// loads on this platform.
func OracleClientLibrary() string {
	switch runtime.GOOS {
	case "windows":
		return "oci.dll"
	case "darwin":
		return "libclntsh.dylib"
	default:
		return "libclntsh.so"
	}
}

// oracleClientHelp says how to install the client library.
func oracleClientHelp() string {
	return "install Oracle Instant Client (the Basic or Basic Light package, 19c or later, " +
		"https://www.oracle.com/database/technologies/instant-client.html) and make " + OracleClientLibrary() +
		" findable: run ldconfig on its directory or add it to LD_LIBRARY_PATH, or name the directory " +
		`with libDir="/path/to/instantclient" in the DSN`
}

// OracleParams parses an Oracle DSN for godror and applies password (when
// set) over any password in it. Accepted forms are godror's: an Easy Connect
// string "user@host:port/service" (or "user/password@…"), a URL
// "oracle://user@host:port/service", or logfmt
// `user="…" connectString="…" libDir="…"`. Connections are standalone (no
// Oracle-side session pool): a closed connection ends its session and with
// it the session's DBMS_LOCK locks. The returned error never contains the
// DSN's password.
func OracleParams(dsn string, password config.Secret) (godror.ConnectionParams, error) {
	lower := strings.ToLower(strings.TrimSpace(dsn))
	if strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://") {
		return godror.ConnectionParams{}, fmt.Errorf("parsing Oracle DSN %q: a PostgreSQL URL; give an Oracle connect string "+
			"(user@host:1521/SERVICE, oracle://user@host:1521/SERVICE or user=\"…\" connectString=\"…\")", config.RedactDSN(dsn))
	}
	p, err := godror.ParseDSN(dsn)
	if err != nil {
		// godror's errors can quote the DSN; give only the redacted form.
		return godror.ConnectionParams{}, fmt.Errorf("parsing Oracle DSN %q: invalid connect string", config.RedactDSN(dsn))
	}
	if password.IsSet() {
		p.Password = godror.NewPassword(password.Reveal())
	}
	p.StandaloneConnection = true
	return p, nil
}

// OracleDB returns a database/sql handle on Oracle through godror without
// connecting. A connection attempt that cannot load the Oracle client
// library fails with an error wrapping ErrOracleClient that names the
// library and says how to install it.
func OracleDB(dsn string, password config.Secret) (*sql.DB, error) {
	p, err := OracleParams(dsn, password)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(oracleConnector{godror.NewConnector(p)}), nil
}

// OpenOracle is OracleDB followed by a ping bounded by timeout.
func OpenOracle(ctx context.Context, dsn string, password config.Secret, timeout time.Duration) (*sql.DB, error) {
	p, err := OracleParams(dsn, password)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(oracleConnector{godror.NewConnector(p)})
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connecting to Oracle at %q as %q: %w", p.ConnectString, p.Username, err)
	}
	return db, nil
}

// IsOracleClientError reports whether err is godror's failure to load or
// initialise the Oracle client library: ODPI-C's context creation, the
// first thing a connection does, failed (DPI-1047 library not found,
// DPI-1072 client too old, …). Such an error carries no ORA- code.
func IsOracleClientError(err error) bool {
	oe, ok := godror.AsOraErr(err)
	return ok && oe.Code() == 0 && oe.FunName() == "dpiContext_createWithParams"
}

// oracleConnector is godror's connector with the client-library failure
// turned into ErrOracleClient.
type oracleConnector struct {
	driver.Connector
}

func (c oracleConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		if IsOracleClientError(err) {
			return nil, fmt.Errorf("%w (%s): %s: %w", ErrOracleClient, OracleClientLibrary(), oracleClientHelp(), err)
		}
		return nil, err
	}
	return conn, nil
}

// Close closes godror's connector (its pools), as sql.DB.Close does for a
// connector that is an io.Closer.
func (c oracleConnector) Close() error {
	if cl, ok := c.Connector.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// OracleCode returns the ORA- code of the Oracle error in err's chain (a
// godror *OraErr, or anything with a Code() int method), if any; 0 is no
// ORA- code (ODPI-C's own DPI- errors).
func OracleCode(err error) (int, bool) {
	var oe interface{ Code() int }
	if err == nil || !errors.As(err, &oe) || oe.Code() == 0 {
		return 0, false
	}
	return oe.Code(), true
}
