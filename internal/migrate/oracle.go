package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// OracleVersionTable is the table recording applied migrations on Oracle,
// in the schema of the connected user (OMS_OWNER for the Oracle "nomis"
// set, see deploy/oracle/README.md).
const OracleVersionTable = "ALERTSYNC_SCHEMA_MIGRATIONS"

// OracleLockID is the DBMS_LOCK user lock id that serialises migrators on
// Oracle: the first 4 bytes of "alertsync" masked into DBMS_LOCK's user
// range 0..1073741823.
const OracleLockID int64 = 0x616c6572 & 0x3fffffff

// The Oracle dialect's statements, in one place. Each is one statement
// without a trailing ';' (PL/SQL blocks keep their END;), with :n binds.
const (
	oracleVersionTableExistsSQL = `SELECT COUNT(*) FROM USER_TABLES WHERE TABLE_NAME = :1`

	oracleCreateVersionTableSQL = `CREATE TABLE ` + OracleVersionTable + ` (
    SET_NAME   VARCHAR2(32)  NOT NULL,
    VERSION    NUMBER(10)    NOT NULL,
    NAME       VARCHAR2(255) NOT NULL,
    CHECKSUM   CHAR(64)      NOT NULL,
    APPLIED_AT TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL,
    CONSTRAINT ALERTSYNC_SCHEMA_MIGRATIONS_PK PRIMARY KEY (SET_NAME, VERSION)
)`

	// oracleLockSQL takes the session-level exclusive user lock, waiting
	// as long as it takes. release_on_commit => FALSE: the lock must
	// outlive the implicit commits of the migration's DDL.
	oracleLockSQL = `BEGIN
    :1 := DBMS_LOCK.REQUEST(id => :2, lockmode => DBMS_LOCK.X_MODE,
                            timeout => DBMS_LOCK.MAXWAIT, release_on_commit => FALSE);
END;`

	oracleUnlockSQL = `BEGIN
    :1 := DBMS_LOCK.RELEASE(id => :2);
END;`
)

// Oracle is the Dialect for Oracle (godror or any database/sql driver with
// :n binds and sql.Out support). Nothing in it has been run against a live
// Oracle in this project's CI: see deploy/oracle/README.md.
//
// Version table: ALERTSYNC_SCHEMA_MIGRATIONS in the connected user's schema,
// created when USER_TABLES does not list it (Oracle has no CREATE TABLE IF
// NOT EXISTS before 23ai).
//
// Lock: DBMS_LOCK.REQUEST of user lock OracleLockID in exclusive mode,
// held by the session until Unlock calls DBMS_LOCK.RELEASE (not released by
// commits). It needs EXECUTE ON SYS.DBMS_LOCK for the migrating user
// (deploy/oracle/install/migration_owner.sql). A session that dies releases
// it.
//
// Atomicity: Oracle DDL commits implicitly, so a migration is not applied
// as a whole: the engine executes the statements one by one in its
// transaction and records the migration in the version table after the last
// one; every DDL statement commits what came before. A crash half-way
// leaves some objects created and the migration unrecorded, and the next run
// executes the whole file again. The Oracle migrations are written for that:
// each CREATE TABLE / SEQUENCE / INDEX sits in a PL/SQL block that ignores
// ORA-00955 (name already used) and code objects are CREATE OR REPLACE. A
// failing statement is reported with its migration; the statements before
// it stay applied.
//
// Statements: see SplitOracle.
type Oracle struct{}

// Name implements Dialect.
func (Oracle) Name() string { return "oracle" }

// VersionTableExists implements Dialect by looking up USER_TABLES.
func (Oracle) VersionTableExists(ctx context.Context, conn *sql.Conn) (bool, error) {
	var n int64
	if err := conn.QueryRowContext(ctx, oracleVersionTableExistsSQL, OracleVersionTable).Scan(&n); err != nil {
		return false, fmt.Errorf("looking up %s: %w", OracleVersionTable, err)
	}
	return n > 0, nil
}

// CreateVersionTable implements Dialect: CREATE TABLE when USER_TABLES does
// not list the table. The caller holds the lock, so no other migrator
// creates it in between.
func (Oracle) CreateVersionTable(ctx context.Context, tx *sql.Tx) error {
	var n int64
	if err := tx.QueryRowContext(ctx, oracleVersionTableExistsSQL, OracleVersionTable).Scan(&n); err != nil {
		return fmt.Errorf("looking up %s: %w", OracleVersionTable, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, oracleCreateVersionTableSQL); err != nil {
		return fmt.Errorf("creating %s: %w", OracleVersionTable, err)
	}
	return nil
}

// Lock implements Dialect with DBMS_LOCK.REQUEST (session lock, kept across
// commits); Unlock releases it.
func (Oracle) Lock(ctx context.Context, _ *sql.Conn, tx *sql.Tx) error {
	var status int64
	if _, err := tx.ExecContext(ctx, oracleLockSQL, sql.Out{Dest: &status}, OracleLockID); err != nil {
		return fmt.Errorf("taking migration lock: %w", err)
	}
	// 0 granted, 4 already held by this session.
	if status != 0 && status != 4 {
		return fmt.Errorf("taking migration lock: DBMS_LOCK.REQUEST returned %d (%s)", status, oracleLockStatus(status))
	}
	return nil
}

// Unlock implements Dialect with DBMS_LOCK.RELEASE. Status 4 (not held) is
// no error: Lock may have failed before taking it.
func (Oracle) Unlock(ctx context.Context, conn *sql.Conn) error {
	var status int64
	if _, err := conn.ExecContext(ctx, oracleUnlockSQL, sql.Out{Dest: &status}, OracleLockID); err != nil {
		return fmt.Errorf("releasing migration lock: %w", err)
	}
	if status != 0 && status != 4 {
		return fmt.Errorf("releasing migration lock: DBMS_LOCK.RELEASE returned %d (%s)", status, oracleLockStatus(status))
	}
	return nil
}

func oracleLockStatus(status int64) string {
	switch status {
	case 1:
		return "timeout"
	case 2:
		return "deadlock"
	case 3:
		return "parameter error"
	case 4:
		return "already owned or not owned"
	case 5:
		return "illegal lock handle"
	default:
		return "unknown status"
	}
}

// Statements implements Dialect with SplitOracle.
func (Oracle) Statements(body string) []string { return SplitOracle(body) }

// Query implements Dialect: ? becomes :1, :2, … and {table} the version
// table. Queries must not contain a literal '?'.
func (Oracle) Query(q string) string {
	q = strings.ReplaceAll(q, "{table}", OracleVersionTable)
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString(":" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// SplitOracle splits an Oracle script into statements to execute one by one,
// following SQL*Plus's rule:
//
//   - A PL/SQL unit -- a statement whose first words are BEGIN, DECLARE, or
//     CREATE [OR REPLACE] [EDITIONABLE|NONEDITIONABLE] followed by TRIGGER,
//     FUNCTION, PROCEDURE, PACKAGE [BODY], TYPE [BODY] or LIBRARY -- runs to
//     a line holding only "/" (blanks around it allowed). Its text keeps
//     every ';' (the final "END;" included); the "/" line is dropped.
//   - Any other statement ends at a ';' outside quotes and comments (the ';'
//     is dropped, as Oracle refuses it in SQL), or at a "/" line.
//   - '…' and q'[…]' literals (any q-quote delimiter), "…" identifiers,
//     -- and /* */ comments are skipped when looking for ';' and "/" lines.
//     A "/" alone on a line inside PL/SQL code ends the unit, as it does in
//     SQL*Plus: never write a division that way.
//   - Comments and blanks before a statement are dropped; a piece holding
//     only comments and blanks is no statement. Unterminated text at the end
//     is returned as a last statement (and fails on the server).
func SplitOracle(body string) []string {
	var out []string
	s := oracleScanner{src: body}
	for {
		s.skipBlanksAndComments()
		if s.pos >= len(s.src) {
			return out
		}
		start := s.pos
		if isPLSQLStart(s.src[start:]) {
			end, next := s.scanToSlashLine()
			out = append(out, strings.TrimSpace(s.src[start:end]))
			s.pos = next
			continue
		}
		end, next := s.scanToSemicolon()
		if stmt := strings.TrimSpace(s.src[start:end]); stmt != "" {
			out = append(out, stmt)
		}
		s.pos = next
	}
}

type oracleScanner struct {
	src string
	pos int
}

// skipBlanksAndComments moves past white space and comments.
func (s *oracleScanner) skipBlanksAndComments() {
	for s.pos < len(s.src) {
		switch {
		case isSpace(s.src[s.pos]):
			s.pos++
		case strings.HasPrefix(s.src[s.pos:], "--"):
			s.pos = lineEnd(s.src, s.pos)
		case strings.HasPrefix(s.src[s.pos:], "/*"):
			s.pos = blockCommentEnd(s.src, s.pos)
		default:
			return
		}
	}
}

// skipToken moves past one quoted literal, identifier or comment starting
// at pos and reports whether there was one.
func (s *oracleScanner) skipToken() bool {
	rest := s.src[s.pos:]
	switch {
	case strings.HasPrefix(rest, "--"):
		s.pos = lineEnd(s.src, s.pos)
	case strings.HasPrefix(rest, "/*"):
		s.pos = blockCommentEnd(s.src, s.pos)
	case len(rest) >= 3 && (rest[0] == 'q' || rest[0] == 'Q') && rest[1] == '\'' &&
		(s.pos == 0 || !isIdentByte(s.src[s.pos-1])):
		closing := qClose(rest[2])
		i := strings.Index(rest[3:], string(closing)+"'")
		if i < 0 {
			s.pos = len(s.src)
		} else {
			s.pos += 3 + i + 2
		}
	case rest[0] == '\'':
		s.pos = quotedEnd(s.src, s.pos, '\'')
	case rest[0] == '"':
		s.pos = quotedEnd(s.src, s.pos, '"')
	default:
		return false
	}
	return true
}

// atSlashLine reports whether pos starts a line holding only "/" and blanks,
// and returns the position after that line.
func (s *oracleScanner) atSlashLine() (bool, int) {
	if s.pos > 0 && s.src[s.pos-1] != '\n' {
		return false, 0
	}
	end := lineEnd(s.src, s.pos)
	if strings.TrimSpace(s.src[s.pos:end]) != "/" {
		return false, 0
	}
	if end < len(s.src) {
		end++ // the newline
	}
	return true, end
}

// scanToSlashLine returns the end of the PL/SQL unit at pos and where the
// next statement may start.
func (s *oracleScanner) scanToSlashLine() (end, next int) {
	for s.pos < len(s.src) {
		if ok, after := s.atSlashLine(); ok {
			return s.pos, after
		}
		if s.skipToken() {
			continue
		}
		s.pos++
	}
	return len(s.src), len(s.src)
}

// scanToSemicolon returns the end of the SQL statement at pos (without its
// ';') and where the next statement may start.
func (s *oracleScanner) scanToSemicolon() (end, next int) {
	for s.pos < len(s.src) {
		if ok, after := s.atSlashLine(); ok {
			return s.pos, after
		}
		if s.src[s.pos] == ';' {
			return s.pos, s.pos + 1
		}
		if s.skipToken() {
			continue
		}
		s.pos++
	}
	return len(s.src), len(s.src)
}

// isPLSQLStart reports whether the statement text starts a PL/SQL unit.
func isPLSQLStart(stmt string) bool {
	words := leadingWords(stmt, 5)
	if len(words) == 0 {
		return false
	}
	switch words[0] {
	case "BEGIN", "DECLARE":
		return true
	case "CREATE":
	default:
		return false
	}
	i := 1
	if i+1 < len(words) && words[i] == "OR" && words[i+1] == "REPLACE" {
		i += 2
	}
	if i < len(words) && (words[i] == "EDITIONABLE" || words[i] == "NONEDITIONABLE") {
		i++
	}
	if i >= len(words) {
		return false
	}
	switch words[i] {
	case "TRIGGER", "FUNCTION", "PROCEDURE", "PACKAGE", "TYPE", "LIBRARY":
		return true
	}
	return false
}

// leadingWords returns up to n leading words of s, upper-cased, skipping
// comments between them.
func leadingWords(s string, n int) []string {
	sc := oracleScanner{src: s}
	var words []string
	for len(words) < n {
		sc.skipBlanksAndComments()
		start := sc.pos
		for sc.pos < len(s) && isIdentByte(s[sc.pos]) {
			sc.pos++
		}
		if sc.pos == start {
			break
		}
		words = append(words, strings.ToUpper(s[start:sc.pos]))
	}
	return words
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c == '#' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// lineEnd returns the index of the newline ending the line at pos (or the
// end of s).
func lineEnd(s string, pos int) int {
	if i := strings.IndexByte(s[pos:], '\n'); i >= 0 {
		return pos + i
	}
	return len(s)
}

func blockCommentEnd(s string, pos int) int {
	if i := strings.Index(s[pos+2:], "*/"); i >= 0 {
		return pos + 2 + i + 2
	}
	return len(s)
}

// quotedEnd returns the position after the literal or identifier opened by
// quote at pos; a doubled quote stands for itself.
func quotedEnd(s string, pos int, quote byte) int {
	for i := pos + 1; i < len(s); i++ {
		if s[i] != quote {
			continue
		}
		if i+1 < len(s) && s[i+1] == quote {
			i++
			continue
		}
		return i + 1
	}
	return len(s)
}

// qClose returns the closing delimiter of a q'…' literal opened with open.
func qClose(open byte) byte {
	switch open {
	case '[':
		return ']'
	case '{':
		return '}'
	case '(':
		return ')'
	case '<':
		return '>'
	default:
		return open
	}
}

var _ Dialect = Oracle{}
