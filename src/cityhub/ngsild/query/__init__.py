"""The NGSI-LD query languages (q, entity type selection, scopeQ): parse, print, expand,
evaluate in memory, index an entity's values and compile to SQL over that index.

A pure domain package (no I/O). Typical use by a store:

    expr = expand(parse_q(text), context.expand_term)
    sql, params = compile_q(expr, "sqlite", alias="e", tenant=tenant)
    rows = conn.execute(f"SELECT ... FROM entities e WHERE e.tenant = ? AND {sql}",
                        [tenant, *params])

and by the notifier: `matches(expr, entity)`.
"""

from cityhub.ngsild.query.ast import (
    CORE_MEMBERS,
    And,
    Bool,
    Compare,
    Date,
    DateTime,
    Exists,
    NotExists,
    Number,
    Op,
    Or,
    Path,
    Pattern,
    QExpr,
    Range,
    ScopeAnd,
    ScopeExpr,
    ScopeOr,
    ScopePattern,
    Text,
    Time,
    TypeAnd,
    TypeExpr,
    TypeName,
    TypeOr,
    Uri,
    ValueList,
)
from cityhub.ngsild.query.evaluate import matches, scope_matches, type_matches
from cityhub.ngsild.query.expand import expand
from cityhub.ngsild.query.index import (
    INDEX_COLUMNS,
    IndexRow,
    attribute_rows,
    index_ddl,
    index_rows,
)
from cityhub.ngsild.query.parser import parse_q, parse_scope_q, parse_type_expr
from cityhub.ngsild.query.plan import needs_recheck
from cityhub.ngsild.query.sql import (
    compile_q,
    compile_scope,
    compile_type,
    lookup_rows,
    probe_q,
    sqlite_regexp,
    type_rows,
)

__all__ = [
    "CORE_MEMBERS",
    "INDEX_COLUMNS",
    "And",
    "Bool",
    "Compare",
    "Date",
    "DateTime",
    "Exists",
    "IndexRow",
    "NotExists",
    "Number",
    "Op",
    "Or",
    "Path",
    "Pattern",
    "QExpr",
    "Range",
    "ScopeAnd",
    "ScopeExpr",
    "ScopeOr",
    "ScopePattern",
    "Text",
    "Time",
    "TypeAnd",
    "TypeExpr",
    "TypeName",
    "TypeOr",
    "Uri",
    "ValueList",
    "attribute_rows",
    "compile_q",
    "compile_scope",
    "compile_type",
    "expand",
    "index_ddl",
    "index_rows",
    "lookup_rows",
    "matches",
    "needs_recheck",
    "parse_q",
    "parse_scope_q",
    "parse_type_expr",
    "probe_q",
    "scope_matches",
    "sqlite_regexp",
    "type_matches",
    "type_rows",
]
