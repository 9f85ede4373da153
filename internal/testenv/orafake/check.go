package orafake

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Statements parses the Go source file path and returns the value of every
// string constant whose name has prefix and suffix (e.g. "ora", "SQL"): the
// statements of a dialect, by name. Constants may be concatenations of
// literals and other constants of the file.
func Statements(path, prefix, suffix string) (map[string]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		return nil, err
	}
	exprs := map[string]ast.Expr{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if i < len(vs.Values) {
					exprs[n.Name] = vs.Values[i]
				}
			}
		}
	}
	var eval func(e ast.Expr) (string, error)
	eval = func(e ast.Expr) (string, error) {
		switch e := e.(type) {
		case *ast.BasicLit:
			return strconv.Unquote(e.Value)
		case *ast.BinaryExpr:
			if e.Op != token.ADD {
				return "", fmt.Errorf("operator %s in a statement constant", e.Op)
			}
			x, err := eval(e.X)
			if err != nil {
				return "", err
			}
			y, err := eval(e.Y)
			return x + y, err
		case *ast.Ident:
			x, ok := exprs[e.Name]
			if !ok {
				return "", fmt.Errorf("constant %s is not in %s", e.Name, path)
			}
			return eval(x)
		case *ast.ParenExpr:
			return eval(e.X)
		}
		return "", fmt.Errorf("unexpected constant expression %T", e)
	}
	out := map[string]string{}
	for name, e := range exprs {
		if strings.HasPrefix(name, prefix) && strings.HasSuffix(name, suffix) {
			v, err := eval(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			out[name] = v
		}
	}
	return out, nil
}

var (
	literalRE       = regexp.MustCompile(`(?s)'(?:[^']|'')*'|"[^"]*"|--[^\n]*|/\*.*?\*/`)
	placeholderRE   = regexp.MustCompile(`(?:^|[^A-Za-z0-9_$#:]):([A-Za-z0-9_]+)`)
	pgPlaceholderRE = regexp.MustCompile(`\$\d`)
	selectFromRE    = regexp.MustCompile(`(?i)\b(SELECT|FROM)\b`)
)

// strip blanks out literals, quoted identifiers and comments.
func strip(q string) string { return literalRE.ReplaceAllString(q, "''") }

// Placeholders returns the bind placeholders of q in order of occurrence
// (none inside literals, quoted identifiers or comments).
func Placeholders(q string) []string {
	var out []string
	for _, m := range placeholderRE.FindAllStringSubmatch(strip(q), -1) {
		out = append(out, m[1])
	}
	return out
}

// SelectListLen counts the items of the top-level SELECT list of q (after
// any WITH clause), 0 when q has none.
func SelectListLen(q string) int {
	s := strip(q)
	depth, start := 0, -1
	items := 1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
			continue
		case ')':
			depth--
			continue
		case ',':
			if depth == 0 && start >= 0 {
				items++
			}
			continue
		}
		if depth != 0 {
			continue
		}
		loc := selectFromRE.FindStringIndex(s[i:])
		if loc == nil || loc[0] != 0 || (i > 0 && isWordByte(s[i-1])) {
			continue
		}
		word := strings.ToUpper(s[i : i+loc[1]])
		switch {
		case word == "SELECT" && start < 0:
			start = i
		case word == "FROM" && start >= 0:
			return items
		}
		i += loc[1] - 1
	}
	return 0
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c == '#' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// Check returns what is wrong with one recorded statement: not one of
// stmts (unless foreign, a statement checked elsewhere, e.g. the migration
// engine's), a PostgreSQL $n placeholder, placeholders that do not match
// the arguments, or a query whose select list does not have the canned
// answer's columns.
func Check(c Call, stmts map[string]string, foreign bool) []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	known := false
	for _, s := range stmts {
		known = known || s == c.Query
	}
	if !known && !foreign {
		bad("not one of the dialect's statement constants (built ad hoc?)")
	}
	if pgPlaceholderRE.MatchString(strip(c.Query)) {
		bad("PostgreSQL $n placeholder")
	}
	ph := Placeholders(c.Query)
	if strings.HasPrefix(c.Query, "CREATE OR REPLACE TRIGGER") {
		// :OLD and :NEW are a trigger's correlation names, not binds.
		ph = slices.DeleteFunc(ph, func(p string) bool { return p == "OLD" || p == "NEW" })
	}
	var named []string
	for _, a := range c.Args {
		if a.Name != "" {
			named = append(named, a.Name)
		}
	}
	positional := 0
	for _, p := range ph {
		if _, err := strconv.Atoi(p); err == nil {
			positional++
		}
	}
	switch {
	case positional > 0 && positional != len(ph):
		bad("mixes positional and named placeholders: %v", ph)
	case positional > 0:
		for i, p := range ph {
			if p != strconv.Itoa(i+1) {
				bad("positional placeholders %v: want :1..:%d, each once, in order", ph, len(ph))
				break
			}
		}
		if len(ph) != len(c.Args) {
			bad("%d placeholders %v for %d arguments", len(ph), ph, len(c.Args))
		}
		if len(named) > 0 {
			bad("named arguments %v for positional placeholders", named)
		}
	default:
		distinct := map[string]bool{}
		for _, p := range ph {
			distinct[strings.ToUpper(p)] = true
		}
		args := map[string]bool{}
		for _, n := range named {
			args[strings.ToUpper(n)] = true
		}
		if len(c.Args) != len(named) || len(distinct) != len(args) {
			bad("placeholders %v for arguments %v (%d in all)", ph, named, len(c.Args))
		}
		for p := range distinct {
			if !args[p] {
				bad("placeholder :%s has no argument", p)
			}
		}
	}
	if c.Kind == "query" && !foreign && !c.Fails {
		if n := SelectListLen(c.Query); n != c.Cols {
			bad("select list of %d items, canned answer of %d columns", n, c.Cols)
		}
	}
	return problems
}
