package deploy_test

// Structural tests of the Oracle files. No Oracle server runs here: these
// check the text (statement splitting, parity with the PostgreSQL files,
// uninstall coverage, binds), never the behaviour on a live Oracle.

import (
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/migrate"
)

func TestOracleSeedIsGeneratedFromReference(t *testing.T) {
	t.Parallel()
	want, err := deploy.RenderOracleSeed()
	require.NoError(t, err)
	require.Equal(t, want, deploy.OracleStandinSeedSQL(), "oracle/standin/seed.sql is out of date: run `go generate ./deploy`")
	for _, c := range deploy.AlertCodes() {
		require.Contains(t, want, "'ALERT_CODE' AS DOMAIN, '"+strings.ReplaceAll(c.Code, "'", "''")+"' AS CODE", c.Code)
	}
}

// oracleScripts returns every Oracle script by name.
func oracleScripts(t *testing.T) map[string]string {
	t.Helper()
	scripts := map[string]string{}
	for _, m := range oracleMigrations(t).Migrations {
		scripts["oracle/migrations/"+m.File] = m.SQL
	}
	for _, name := range append(deploy.OracleInstallFiles(), "oracle/install/uninstall.sql",
		"oracle/standin/schema.sql", "oracle/standin/seed.sql", "oracle/journal_read.sql") {
		body, err := deploy.ReadFile(name)
		require.NoError(t, err)
		scripts[name] = body
	}
	return scripts
}

func oracleMigrations(t *testing.T) *migrate.Set {
	t.Helper()
	set, err := migrate.Load("nomis-oracle", deploy.OracleMigrations())
	require.NoError(t, err)
	require.GreaterOrEqual(t, set.Latest(), 6)
	return set
}

var (
	plsqlStartRE = regexp.MustCompile(`(?is)^(BEGIN|DECLARE|CREATE\s+OR\s+REPLACE\s+(TRIGGER|FUNCTION|PROCEDURE|PACKAGE)\b)`)
	plsqlEndRE   = regexp.MustCompile(`(?is)\bEND(\s+\w+)?;$`)
	sqlStartRE   = regexp.MustCompile(`(?is)^(CREATE|GRANT|MERGE|COMMIT|WITH|SELECT|INSERT|UPDATE|DELETE|DROP|ALTER)\b`)
)

func TestOracleScriptsSplitIntoCompleteStatements(t *testing.T) {
	t.Parallel()
	for name, body := range oracleScripts(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stmts := migrate.SplitOracle(body)
			require.NotEmpty(t, stmts)
			for _, s := range stmts {
				require.Equal(t, strings.TrimSpace(s), s)
				require.Equal(t, strings.Count(s, "("), strings.Count(s, ")"), "unbalanced parentheses in %q", s)
				require.Zero(t, strings.Count(stripQuoted(s), "'")%2, "unbalanced quote in %q", s)
				if plsqlStartRE.MatchString(s) {
					require.Regexp(t, plsqlEndRE, s, "PL/SQL unit must end with END;")
					continue
				}
				require.Regexp(t, sqlStartRE, s, "SQL statement")
				require.False(t, strings.HasSuffix(s, ";"), "SQL statement keeps its ';': %q", s)
				require.NotContains(t, stripQuoted(s), ";", "two statements in one: %q", s)
			}
		})
	}
}

// stripQuoted removes q'[…]' literals and comments.
func stripQuoted(s string) string {
	s = regexp.MustCompile(`(?s)q'\[.*?\]'`).ReplaceAllString(s, "")
	s = regexp.MustCompile(`--[^\n]*`).ReplaceAllString(s, "")
	return regexp.MustCompile(`'[^']*'`).ReplaceAllString(s, "''")
}

func TestOracleJournalRead(t *testing.T) {
	t.Parallel()
	stmts := migrate.SplitOracle(deploy.OracleJournalReadSQL())
	require.Len(t, stmts, 1)
	q := stmts[0]
	binds := regexp.MustCompile(`:(\d+)`).FindAllStringSubmatch(q, -1)
	require.Len(t, binds, 1)
	require.Equal(t, "1", binds[0][1], "the row limit is bind :1")
	for _, want := range []string{"ORA_ROWSCN AS COMMIT_SCN", "ORDER BY j.ORA_ROWSCN, j.JOURNAL_ID",
		"GV$TRANSACTION", "START_SCN", "FETCH FIRST :1 ROWS ONLY", "OMS_OWNER.ALERTSYNC_JOURNAL"} {
		require.Contains(t, q, want)
	}
	// It returns every column of the journal, and the capture user may read
	// what it reads.
	cols := oracleTables(t)["ALERTSYNC_JOURNAL"]
	for _, c := range cols {
		require.Contains(t, q, "j."+c, "journal column %s", c)
	}
	capture, err := deploy.ReadFile("oracle/install/capture_user.sql")
	require.NoError(t, err)
	for _, grant := range []string{"SELECT, DELETE ON OMS_OWNER.ALERTSYNC_JOURNAL", "SELECT ON SYS.GV_$TRANSACTION",
		"SELECT ON SYS.GV_$LOCKED_OBJECT"} {
		require.Contains(t, capture, grant)
	}
}

var createTableRE = regexp.MustCompile(`(?i)CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.]+)\s*\(`)

// tableColumns parses the column lists of every CREATE TABLE in sql: table
// name without schema, upper-cased -> column names, upper-cased, in order.
func tableColumns(t *testing.T, sql string) map[string][]string {
	t.Helper()
	sql = regexp.MustCompile(`--[^\n]*`).ReplaceAllString(sql, "")
	tables := map[string][]string{}
	for _, m := range createTableRE.FindAllStringSubmatchIndex(sql, -1) {
		name := strings.ToUpper(sql[m[2]:m[3]])
		name = name[strings.LastIndex(name, ".")+1:]
		open := m[1] - 1
		depth, end := 0, -1
		for i := open; i < len(sql) && end < 0; i++ {
			switch sql[i] {
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					end = i
				}
			}
		}
		require.Positive(t, end, "unbalanced CREATE TABLE %s", name)
		var cols []string
		for _, item := range splitTopLevel(sql[open+1 : end]) {
			fields := strings.Fields(item)
			if len(fields) == 0 {
				continue
			}
			word := strings.ToUpper(fields[0])
			if slices.Contains([]string{"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"}, word) {
				continue
			}
			cols = append(cols, word)
		}
		require.NotContains(t, tables, name, "table %s created twice", name)
		tables[name] = cols
	}
	return tables
}

func splitTopLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func oracleTables(t *testing.T) map[string][]string {
	t.Helper()
	var all strings.Builder
	for _, m := range oracleMigrations(t).Migrations {
		all.WriteString(m.SQL + "\n")
	}
	return tableColumns(t, all.String())
}

func TestOracleMigrationsMatchPostgres(t *testing.T) {
	t.Parallel()
	pgSet, err := migrate.Named("nomis")
	require.NoError(t, err)
	var all strings.Builder
	for _, m := range pgSet.Migrations {
		all.WriteString(m.SQL + "\n")
	}
	pg := tableColumns(t, all.String())
	require.Len(t, pg, 10, "the PostgreSQL nomis set's tables")
	// The stand-in's wake-up flag: Oracle has no NOTIFY, its capture polls.
	require.Contains(t, pg, "ALERTSYNC_LISTENER")
	delete(pg, "ALERTSYNC_LISTENER")
	ora := oracleTables(t)
	require.Equal(t, sortedKeys(pg), sortedKeys(ora), "the same sync-owned tables")
	for name, cols := range pg {
		require.ElementsMatch(t, cols, ora[name], "columns of %s", name)
	}
	require.Contains(t, strings.ToUpper(oracleMigrations(t).Migrations[0].SQL), "ROWDEPENDENCIES")
}

func TestOracleStandinMatchesPostgresStandin(t *testing.T) {
	t.Parallel()
	pg := tableColumns(t, deploy.NOMISSchemaSQL())
	ora := tableColumns(t, deploy.OracleStandinSchemaSQL())
	require.Equal(t, []string{"OFFENDERS", "OFFENDER_ALERTS", "OFFENDER_BOOKINGS", "REFERENCE_CODES"}, sortedKeys(pg))
	require.Equal(t, pg, ora, "the same NOMIS columns in the same order")
	schema := deploy.OracleStandinSchemaSQL()
	require.Contains(t, schema, "STAND-IN OF THE REAL NOMIS TABLES")
	for _, trig := range []string{"OFFENDERS_TA", "OFFENDER_BOOKINGS_TA", "OFFENDER_ALERTS_TA"} {
		require.Contains(t, schema, "CREATE OR REPLACE TRIGGER OMS_OWNER."+trig)
	}
}

// TestOracleJournalTriggers checks the row images against the stand-in's
// columns and that session values come from the context, never the row.
func TestOracleJournalTriggers(t *testing.T) {
	t.Parallel()
	pg := tableColumns(t, deploy.NOMISSchemaSQL())
	triggers := map[string]string{}
	for _, m := range oracleMigrations(t).Migrations {
		for _, s := range migrate.SplitOracle(m.SQL) {
			if m := regexp.MustCompile(`(?s)^CREATE OR REPLACE TRIGGER (\w+)\s.*?\bON OMS_OWNER\.(\w+)`).FindStringSubmatch(s); m != nil {
				triggers[m[2]] = s
			}
		}
	}
	require.Equal(t, []string{"OFFENDERS", "OFFENDER_ALERTS", "OFFENDER_BOOKINGS"}, sortedKeys(triggers))
	imageRE := regexp.MustCompile(`'(\w+)' VALUE :(OLD|NEW)\.(\w+)`)
	for table, body := range triggers {
		t.Run(table, func(t *testing.T) {
			t.Parallel()
			keys := map[string][]string{}
			for _, m := range imageRE.FindAllStringSubmatch(body, -1) {
				require.Equal(t, strings.ToUpper(m[1]), m[3], "key %s names its column", m[1])
				keys[m[2]] = append(keys[m[2]], m[3])
			}
			require.Equal(t, pg[table], keys["OLD"], "old image")
			require.Equal(t, pg[table], keys["NEW"], "new image")
			require.Contains(t, body, "'"+strings.ToLower(table)+"'", "table name literal")
			insert := body[strings.Index(body, "INSERT INTO ALERTSYNC_JOURNAL"):]
			require.NotContains(t, insert, ":OLD", "session values never from :OLD")
			require.NotContains(t, insert, ":NEW")
			for _, want := range []string{"SYS_CONTEXT('NOMIS', 'AUDIT_MODULE_NAME', 65)", "SYS_CONTEXT('USERENV', 'MODULE')",
				"SYS_CONTEXT('NOMIS', 'AUDIT_ADDITIONAL_INFO', 256)", "SYS_CONTEXT('USERENV', 'CLIENT_INFO')",
				"DBMS_TRANSACTION.LOCAL_TRANSACTION_ID", "RETURNING CLOB"} {
				require.Contains(t, body, want)
			}
			if table == "OFFENDER_BOOKINGS" {
				require.Contains(t, body, "AFTER INSERT OR DELETE OR UPDATE OF BOOKING_SEQ, OFFENDER_ID, ROOT_OFFENDER_ID")
			} else {
				require.Contains(t, body, "AFTER INSERT OR UPDATE OR DELETE ON OMS_OWNER."+table)
			}
		})
	}
}

var (
	createdRE    = regexp.MustCompile(`(?i)\bCREATE\s+(?:OR\s+REPLACE\s+)?(TABLE|SEQUENCE|TRIGGER|INDEX|PROCEDURE)\s+([\w.]+)`)
	indexOnRE    = regexp.MustCompile(`(?i)\bCREATE\s+INDEX\s+\w+\s+ON\s+(\w+)`)
	dropRE       = regexp.MustCompile(`(?i)\bDROP\s+(TABLE|SEQUENCE|TRIGGER|USER|INDEX|VIEW|PACKAGE|FUNCTION|PROCEDURE)\s+([\w.]+)`)
	constraintRE = regexp.MustCompile(`(?i)\bCONSTRAINT\s+(\w+)`)
)

// TestOracleUninstall checks that uninstall.sql drops every object the
// migrations and install scripts create, triggers first, and nothing else.
func TestOracleUninstall(t *testing.T) {
	t.Parallel()
	created := map[string]string{} // "TYPE NAME" -> file
	indexTable := map[string]string{}
	for _, m := range oracleMigrations(t).Migrations {
		for _, c := range createdRE.FindAllStringSubmatch(m.SQL, -1) {
			created[strings.ToUpper(c[1])+" OMS_OWNER."+strings.ToUpper(c[2])] = m.File
		}
		for _, c := range indexOnRE.FindAllStringSubmatch(m.SQL, -1) {
			indexTable[strings.ToUpper(c[0])] = strings.ToUpper(c[1])
		}
	}
	created["TABLE OMS_OWNER."+migrate.OracleVersionTable] = "internal/migrate (Oracle dialect)"
	for _, name := range deploy.OracleInstallFiles() {
		body, err := deploy.ReadFile(name)
		require.NoError(t, err)
		for _, u := range regexp.MustCompile(`(?i)CREATE\s+USER\s+(\w+)`).FindAllStringSubmatch(body, -1) {
			created["USER "+strings.ToUpper(u[1])] = name
		}
	}
	require.Contains(t, created, "USER ALERTSYNC_CAPTURE")
	require.Contains(t, created, "USER ALERTSYNC_APPLY")

	dropped := map[string]int{}
	firstTable, lastTrigger := -1, -1
	for i, s := range migrate.SplitOracle(deploy.OracleUninstallSQL()) {
		for _, d := range dropRE.FindAllStringSubmatch(s, -1) {
			kind, name := strings.ToUpper(d[1]), strings.ToUpper(d[2])
			dropped[kind+" "+name] = i
			switch kind {
			case "TABLE":
				require.True(t, strings.HasPrefix(name, "OMS_OWNER.ALERTSYNC_"), "drops only sync-owned tables: %s", name)
				if firstTable < 0 {
					firstTable = i
				}
			case "TRIGGER":
				lastTrigger = i
			}
		}
	}
	for obj, file := range created {
		if strings.HasPrefix(obj, "INDEX ") {
			continue // goes with its table, checked below
		}
		require.Contains(t, dropped, obj, "%s (created by %s) is dropped", obj, file)
	}
	for obj := range dropped {
		require.Contains(t, created, obj, "uninstall drops only what alertsync created")
	}
	for idx, table := range indexTable {
		require.Contains(t, dropped, "TABLE OMS_OWNER."+table, "%s goes with its table", idx)
	}
	require.Less(t, lastTrigger, firstTable, "triggers are dropped before tables")
	for _, nomis := range []string{"OFFENDERS", "OFFENDER_BOOKINGS", "OFFENDER_ALERTS", "REFERENCE_CODES"} {
		require.NotRegexp(t, `(?i)DROP\s+TABLE\s+(OMS_OWNER\.)?`+nomis+`\b`, deploy.OracleUninstallSQL())
	}
}

// TestOracleIdentifiers keeps every name the Oracle files create within 30
// bytes (the limit before 12.2 and with COMPATIBLE below 12.2) and prefixed
// ALERTSYNC_ where it lives in NOMIS's schema.
func TestOracleIdentifiers(t *testing.T) {
	t.Parallel()
	for name, body := range oracleScripts(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, c := range createdRE.FindAllStringSubmatch(body, -1) {
				obj := strings.ToUpper(c[2])
				obj = obj[strings.LastIndex(obj, ".")+1:]
				require.LessOrEqual(t, len(obj), 30, obj)
				if strings.HasPrefix(name, "oracle/migrations/") {
					require.True(t, strings.HasPrefix(obj, "ALERTSYNC_"), "sync-owned names carry the prefix: %s", obj)
				}
			}
			for _, c := range constraintRE.FindAllStringSubmatch(body, -1) {
				require.LessOrEqual(t, len(c[1]), 30, c[1])
			}
		})
	}
}

// TestOracleGrants checks that the install scripts grant on objects that
// exist, and that the capture user cannot write.
func TestOracleGrants(t *testing.T) {
	t.Parallel()
	tables := oracleTables(t)
	nomis := tableColumns(t, deploy.NOMISSchemaSQL())
	grantRE := regexp.MustCompile(`(?i)GRANT\s+([\w, ]+?)\s+ON\s+([\w.$]+)\s+TO\s+(\w+)`)
	var procedures []string
	for _, m := range oracleMigrations(t).Migrations {
		for _, c := range createdRE.FindAllStringSubmatch(m.SQL, -1) {
			if strings.EqualFold(c[1], "PROCEDURE") {
				procedures = append(procedures, strings.ToUpper(c[2]))
			}
		}
	}
	require.Contains(t, procedures, "ALERTSYNC_REQUEST_RESYNCS")
	privsOf := func(g []string) string { return strings.ToUpper(g[1]) }
	for _, name := range deploy.OracleInstallFiles() {
		body, err := deploy.ReadFile(name)
		require.NoError(t, err)
		for _, g := range grantRE.FindAllStringSubmatch(body, -1) {
			obj := strings.ToUpper(g[2])
			switch {
			case strings.HasPrefix(privsOf(g), "EXECUTE") && strings.HasPrefix(obj, "OMS_OWNER.ALERTSYNC_"):
				require.Contains(t, procedures, strings.TrimPrefix(obj, "OMS_OWNER."), "%s: grant on a migrated procedure", name)
			case strings.HasPrefix(obj, "OMS_OWNER.ALERTSYNC_"):
				require.Contains(t, tables, strings.TrimPrefix(obj, "OMS_OWNER."), "%s: grant on a migrated table", name)
			case strings.HasPrefix(obj, "OMS_OWNER."):
				require.Contains(t, nomis, strings.TrimPrefix(obj, "OMS_OWNER."), "%s: grant on a NOMIS table", name)
			default:
				require.Contains(t, []string{"SYS.DBMS_LOCK", "SYS.DBMS_FLASHBACK", "SYS.GV_$TRANSACTION", "SYS.GV_$LOCKED_OBJECT",
					"SYS.GV_$LOCK", "SYS.GV_$SESSION", "SYS.DBMS_LOCK_ALLOCATED"}, obj, name)
			}
			if strings.EqualFold(g[3], "ALERTSYNC_CAPTURE") {
				// The capture writes only its own bookkeeping (resyncs,
				// initial-load record) and deletes published journal rows.
				privs := strings.ToUpper(g[1])
				own := obj == "OMS_OWNER.ALERTSYNC_RESYNC" || obj == "OMS_OWNER.ALERTSYNC_CAPTURE_STATE"
				if strings.Contains(privs, "INSERT") || strings.Contains(privs, "UPDATE") {
					require.True(t, own, "capture writes only its bookkeeping: %s", g[0])
				}
				if strings.Contains(privs, "DELETE") {
					require.Contains(t, []string{"OMS_OWNER.ALERTSYNC_JOURNAL", "OMS_OWNER.ALERTSYNC_RESYNC"}, obj,
						"capture deletes only journal rows and done resyncs")
				}
			}
		}
	}
}

func TestOracleFilesSayTheyAreUntested(t *testing.T) {
	t.Parallel()
	for name, body := range oracleScripts(t) {
		require.Contains(t, body, "ever run against a live Oracle in this project's CI", name)
	}
	readme, err := deploy.ReadFile("oracle/README.md")
	require.NoError(t, err)
	readme = strings.Join(strings.Fields(strings.ReplaceAll(readme, "*", "")), " ")
	require.Contains(t, readme, "has never been run against a live Oracle in this project's CI")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
